"""Analysis of what the networks learned and how people and metrics rank them (chapters 1 and 2).

* The closed-form baseline of an autoencoder (chapter 2): :class:`PCA`, fitted by :func:`fit_pca`,
  the best linear code of ``k`` numbers for the mean squared error -- what a trained one must beat.
* Linear probes (chapter 2): :func:`bottleneck_features` reads an autoencoder's codes;
  :func:`logistic_probe` and :func:`ridge_probe` are linear read-outs of them, the penalty picked by
  cross-validation (the paper uses SVMs; scikit-learn is not a dependency of the course, so these
  are small torch models).
* Rankings (chapter 2, the paper's Fig. 1): :class:`RankingTally` counts how often each model is
  ranked first, second, third; :func:`rank_by_score` ranks by a metric, :func:`shuffled` hides the
  order from a judge. The chart and the "be the judge" panel are
  :func:`i2icourse.plot.rankings.plot_tally` and :func:`i2icourse.plot.rankings.judge_widget`.
* Rank statistics (chapter 1): :func:`pearson` (PLCC) and :func:`spearman` (SRCC, ties get their
  average rank, :func:`rankdata`), in NumPy.

Imports nothing of the package but :mod:`i2icourse.inference`.
"""
from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Callable, Iterable, Mapping, Sequence

import numpy as np
import torch
from torch import nn

from i2icourse.inference import predict


# ----------------------------------------------------------------------------------------------
# Principal components: the best linear autoencoder
# ----------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class PCA:
    """A linear code of ``k`` numbers: ``encode(x) = (x - mean) W`` and ``decode(z) = z W^T + mean``.

    ``W`` (D, k) holds the top ``k`` eigenvectors of the training images' covariance, so among all
    linear codes of ``k`` numbers this one has the least mean squared reconstruction error on them
    (Eckart-Young): the closed-form answer to the MSE autoencoder of chapter 2, and its baseline.
    """

    mean: torch.Tensor         # (D,) the mean training image, flattened
    components: torch.Tensor   # (D, k) orthonormal columns, by decreasing variance
    shape: tuple[int, ...]     # an image's (C, H, W)

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """Images (N, C, H, W) -> codes (N, k)."""
        return ((images.flatten(1).double() - self.mean) @ self.components).float()

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """Codes (N, k) -> images (N, C, H, W), clamped to [0, 1]."""
        return (codes.double() @ self.components.T + self.mean).clamp(0, 1).float().view(-1, *self.shape)

    def reconstruct(self, images: torch.Tensor) -> torch.Tensor:
        """``decode(encode(images))``: the projection of ``images`` on the ``k`` components."""
        return self.decode(self.encode(images))


def fit_pca(images: torch.Tensor, k: int) -> PCA:
    """The principal components of ``images`` (N, C, H, W), N > k, exactly.

    With centred images ``X`` (N x D) and N < D, the eigenvectors of the covariance ``X^T X`` are
    ``X^T u / s`` for the eigenpairs ``(u, s^2)`` of the small N x N matrix ``X X^T``, which is what is
    diagonalised here (in float64; no randomness).
    """
    if images.dim() != 4 or not 0 < k < len(images):
        raise ValueError(f"fit_pca: need (N, C, H, W) images with N > k > 0, got {tuple(images.shape)} and k={k}")
    x = images.flatten(1).double()
    mean = x.mean(0)
    x = x - mean
    if x.shape[0] < x.shape[1]:
        eigvals, u = torch.linalg.eigh(x @ x.T)                        # ascending
        top = eigvals.flip(0)[:k].clamp_min(1e-12).sqrt()
        components = (x.T @ u.flip(1)[:, :k]) / top                    # (D, k)
    else:
        eigvals, v = torch.linalg.eigh(x.T @ x)
        components = v.flip(1)[:, :k]
    return PCA(mean, components, tuple(images.shape[1:]))


# ----------------------------------------------------------------------------------------------
# Linear probes on bottleneck features
# ----------------------------------------------------------------------------------------------

def bottleneck_features(model: nn.Module, images: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    """The bottleneck codes ``model.encode(images)`` of ``images`` (N, C, H, W), (N, bottleneck), on the CPU.

    The model runs in eval mode (batch norm uses its running statistics), its mode restored afterwards.
    """
    return predict(model, images, batch_size, fn=model.encode)


def _standardise(train: torch.Tensor, test: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    mean, std = train.mean(0), train.std(0).clamp_min(1e-6)
    return (train - mean) / std, (test - mean) / std


def _folds(n: int, k: int, seed: int) -> list[torch.Tensor]:
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    return [order[i::k] for i in range(k)]


def _fit_logistic(x: torch.Tensor, y: torch.Tensor, classes: int, l2: float, iters: int = 100) -> nn.Linear:
    """Multinomial logistic regression (softmax + cross-entropy + l2 * |W|^2), full-batch L-BFGS."""
    torch.manual_seed(0)
    lin = nn.Linear(x.shape[1], classes).double()
    nn.init.zeros_(lin.weight)
    nn.init.zeros_(lin.bias)
    opt = torch.optim.LBFGS(lin.parameters(), lr=1, max_iter=iters, line_search_fn="strong_wolfe")
    x = x.double()

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = nn.functional.cross_entropy(lin(x), y) + l2 * lin.weight.pow(2).sum()
        loss.backward()
        return loss

    with torch.enable_grad():
        opt.step(closure)
    return lin


def _pick_by_cv(grid: Sequence[float], val_error: Callable[[float, torch.Tensor, torch.Tensor], float], n: int,
                folds: int, seed: int) -> float:
    """The value of ``grid`` with the smallest validation error summed over ``folds`` folds (the first on ties);
    ``val_error(value, fit_indices, val_indices)`` trains on one part and scores the held-out fold."""
    if len(grid) == 1:
        return grid[0]
    parts = _folds(n, folds, seed)
    best, best_err = grid[0], float("inf")
    for value in grid:
        err = sum(val_error(value, torch.cat([parts[j] for j in range(folds) if j != k]), parts[k])
                  for k in range(folds))
        if err < best_err:
            best, best_err = value, err
    return best


def logistic_probe(train_x: torch.Tensor, train_y: torch.Tensor, test_x: torch.Tensor, test_y: torch.Tensor,
                   l2_grid: Sequence[float] = (1e-4, 1e-3, 1e-2, 1e-1), folds: int = 5, seed: int = 0
                   ) -> dict[str, float]:
    """Classification error (%) of a logistic regression on standardised features, the L2 penalty picked
    by ``folds``-fold cross-validation on the training set. Returns ``{"error": %, "l2": chosen}``."""
    train_x, test_x = _standardise(train_x.double(), test_x.double())
    classes = int(max(train_y.max(), test_y.max())) + 1

    def wrong(l2: float, fit: torch.Tensor, val: torch.Tensor) -> float:
        lin = _fit_logistic(train_x[fit], train_y[fit], classes, l2)
        with torch.no_grad():
            return int((lin(train_x[val]).argmax(1) != train_y[val]).sum())

    best = _pick_by_cv(l2_grid, wrong, len(train_x), folds, seed)
    lin = _fit_logistic(train_x, train_y, classes, best)
    with torch.no_grad():
        err = float((lin(test_x).argmax(1) != test_y).double().mean()) * 100
    return {"error": err, "l2": best}


def _ridge(x: torch.Tensor, y: torch.Tensor, lam: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Weights and intercept of ridge regression (x standardised; the intercept is not penalised)."""
    ym = y.mean()
    a = x.T @ x + lam * torch.eye(x.shape[1], dtype=x.dtype)
    w = torch.linalg.solve(a, x.T @ (y - ym))
    return w, ym


def ridge_probe(train_x: torch.Tensor, train_y: torch.Tensor, test_x: torch.Tensor, test_y: torch.Tensor,
                lam_grid: Sequence[float] = (0.1, 1.0, 10.0, 100.0, 1000.0), folds: int = 5, seed: int = 0
                ) -> dict[str, float]:
    """Test mean squared error of ridge regression on standardised features, lambda picked by cross-validation.
    Returns ``{"mse": ..., "lam": chosen}``."""
    train_x, test_x = _standardise(train_x.double(), test_x.double())
    train_y, test_y = train_y.double(), test_y.double()

    def squared_error(lam: float, fit: torch.Tensor, val: torch.Tensor) -> float:
        w, b = _ridge(train_x[fit], train_y[fit], lam)
        return float(((train_x[val] @ w + b - train_y[val]) ** 2).sum())

    best = _pick_by_cv(lam_grid, squared_error, len(train_x), folds, seed)
    w, b = _ridge(train_x, train_y, best)
    return {"mse": float(((test_x @ w + b - test_y) ** 2).mean()), "lam": best}


# ----------------------------------------------------------------------------------------------
# Rankings (pure Python)
# ----------------------------------------------------------------------------------------------

class RankingTally:
    """Counts how often each model's reconstruction was ranked first, second, ... (the paper's Fig. 1).

    >>> t = RankingTally(["MSE", "MAE", "MS-SSIM"])
    >>> t.add(["MS-SSIM", "MSE", "MAE"])          # best first
    >>> t.counts["MS-SSIM"]
    [1, 0, 0]
    """

    def __init__(self, models: Iterable[str]):
        self.models = list(models)
        if len(set(self.models)) != len(self.models) or not self.models:
            raise ValueError(f"RankingTally: model names must be distinct and at least one, got {self.models}")
        self.counts: dict[str, list[int]] = {m: [0] * len(self.models) for m in self.models}
        self.rankings: list[list[str]] = []

    def add(self, ranking: Sequence[str]) -> None:
        """Record one ranking: every model exactly once, best first."""
        ranking = list(ranking)
        if sorted(ranking) != sorted(self.models):
            raise ValueError(f"RankingTally.add: a ranking must list each of {self.models} exactly once, "
                             f"got {ranking}")
        for place, model in enumerate(ranking):
            self.counts[model][place] += 1
        self.rankings.append(ranking)

    def __len__(self) -> int:
        return len(self.rankings)

    def firsts(self) -> dict[str, int]:
        """How many times each model was ranked best."""
        return {m: c[0] for m, c in self.counts.items()}

    def mean_rank(self) -> dict[str, float]:
        """Each model's average place (1 = always best); NaN before the first ranking."""
        n = len(self.rankings)
        return {m: (sum((i + 1) * k for i, k in enumerate(c)) / n if n else float("nan"))
                for m, c in self.counts.items()}

    def table(self) -> dict[str, dict[str, int]]:
        """{model: {"1st": count, "2nd": count, ...}}, ready for ``pandas.DataFrame(...).T``."""
        return {m: {ordinal(i + 1): k for i, k in enumerate(c)} for m, c in self.counts.items()}


def ordinal(n: int) -> str:
    """1 -> '1st', 2 -> '2nd', 3 -> '3rd', 4 -> '4th', 11 -> '11th'."""
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def rank_by_score(scores: Mapping[str, float], higher_is_better: bool = True) -> list[str]:
    """Model names ordered best first by ``scores`` (ties keep the mapping's order)."""
    names = list(scores)
    return sorted(names, key=lambda m: (-scores[m] if higher_is_better else scores[m], names.index(m)))


def shuffled(names: Sequence[str], seed: int) -> list[str]:
    """``names`` in a random order drawn from ``seed`` (the order in which a judge sees them)."""
    order = list(names)
    random.Random(seed).shuffle(order)
    return order


# ----------------------------------------------------------------------------------------------
# Rank statistics
# ----------------------------------------------------------------------------------------------

def rankdata(a: np.ndarray) -> np.ndarray:
    """Ranks 1..n of ``a``; tied values get the average of their ranks (as ``scipy.stats.rankdata``)."""
    a = np.asarray(a, dtype=float)
    order = np.argsort(a, kind="mergesort")
    ranks = np.empty(len(a), dtype=float)
    sorted_a = a[order]
    i = 0
    while i < len(a):
        j = i
        while j + 1 < len(a) and sorted_a[j + 1] == sorted_a[i]:
            j += 1
        ranks[order[i:j + 1]] = (i + j) / 2 + 1   # average of ranks i+1 .. j+1
        i = j + 1
    return ranks


def pearson(x, y) -> float:
    """PLCC: the Pearson linear correlation coefficient."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    x, y = x - x.mean(), y - y.mean()
    return float((x * y).sum() / np.sqrt((x * x).sum() * (y * y).sum()))


def spearman(x, y) -> float:
    """SRCC: Spearman's rank correlation, the Pearson correlation of the ranks."""
    return pearson(rankdata(x), rankdata(y))
