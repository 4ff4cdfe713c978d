"""Chapter 2's recipe (``notebooks/02_msssim_autoencoders.ipynb``): train an autoencoder with a chosen
loss, measure its reconstructions, probe its bottleneck with a linear model, and tally rankings of
reconstructions (the paper's Fig. 1).

* :data:`LOSSES` / :func:`make_loss` -- the three losses of Snell et al. (2017): MSE, MAE and MS-SSIM
  with all exponents equal to 1 (``metrics.ms_ssim(weights='equal')``), minimised as -log MS-SSIM
  (:func:`log_ms_ssim_loss`; the paper's 1 - MS-SSIM is :data:`paper_ms_ssim_loss`).
* :func:`reconstruction_step` -- one optimisation step, for :func:`i2icourse.train.fit`.
* :func:`reconstruct`, :func:`quality_table` -- reconstructions and their per-image PSNR/SSIM/MS-SSIM.
* :func:`logistic_probe`, :func:`ridge_probe` -- linear read-outs of bottleneck features (the paper
  uses SVMs; scikit-learn is not a dependency of the course, so these are small torch models).
* :class:`RankingTally`, :func:`rank_by_score` -- pure Python: count how often each model is ranked
  first, second, third.
"""
from __future__ import annotations

import random
from functools import partial
from typing import Callable, Iterable, Mapping, Sequence

import torch
from torch import nn

from i2icourse import losses, metrics

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]

#: The paper's MS-SSIM loss as written: 1 - MS-SSIM with all exponents 1 (5 scales), batch mean.
paper_ms_ssim_loss: LossFn = partial(losses.ms_ssim_loss, weights="equal")


def log_ms_ssim_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """-log MS-SSIM (all exponents 1, 5 scales), averaged over the batch: 0 for identical images (chapter 2).

    Per image it has the same minimum as the paper's 1 - MS-SSIM (log is increasing), but each image's
    gradient is divided by its score. With exponents 1 the score is a product of five terms below 1,
    tiny (1e-4..1e-6) early in training; 1 - score then scales every image's gradient by its own score,
    so a batch is steered by its few best-reconstructed (flat) images and training crawls. The log
    turns the product into a sum, and every image and every scale counts.
    """
    losses._check(pred, target, "log_ms_ssim_loss", 33)
    score = metrics._ms_ssim(losses._batch(pred), losses._batch(target), weights="equal")   # (N,)
    return -torch.log(score).mean()


#: The three training objectives, by the names the paper's figures use.
LOSSES: dict[str, LossFn] = {
    "MSE": losses.l2,
    "MAE": losses.l1,
    "MS-SSIM": log_ms_ssim_loss,
}


def make_loss(name: str) -> LossFn:
    """The loss ``name``: ``MSE``, ``MAE`` or ``MS-SSIM`` (:func:`log_ms_ssim_loss`), as ``loss(pred, target)``."""
    if name not in LOSSES:
        raise ValueError(f"make_loss: unknown loss {name!r}; choose one of {', '.join(LOSSES)}")
    return LOSSES[name]


# ----------------------------------------------------------------------------------------------
# Training and reconstruction
# ----------------------------------------------------------------------------------------------

def reconstruction_step(model: nn.Module, loss_fn: LossFn, optimizer: torch.optim.Optimizer,
                        device: torch.device | str = "cpu") -> Callable[[torch.Tensor, int], dict[str, float]]:
    """A step function for :func:`i2icourse.train.fit`: reconstruct the batch, minimise ``loss_fn`` (chapter 2)."""
    def step(batch: torch.Tensor, step: int) -> dict[str, float]:
        model.train()
        x = batch.to(device)                       # (N, 1, H, W)
        loss = loss_fn(model(x), x)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return {"loss": float(loss.detach())}
    return step


@torch.no_grad()
def reconstruct(model: nn.Module, images: torch.Tensor, batch_size: int = 128) -> torch.Tensor:
    """The model's reconstructions of ``images`` (N, C, H, W), in eval mode, on the CPU, clamped to [0, 1]."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    try:
        out = [model(images[i:i + batch_size].to(device)).cpu() for i in range(0, len(images), batch_size)]
    finally:
        model.train(was_training)
    return torch.cat(out).clamp(0, 1)


def quality_table(originals: torch.Tensor, reconstructions: Mapping[str, torch.Tensor]) -> dict[str, dict[str, float]]:
    """Mean PSNR, SSIM and MS-SSIM (standard weights) of each model's reconstructions: {model: {metric: value}}."""
    table = {}
    for name, rec in reconstructions.items():
        table[name] = {"PSNR": float(metrics.psnr(rec, originals).mean()),
                       "SSIM": float(metrics.ssim(rec, originals).mean()),
                       "MS-SSIM": float(metrics.ms_ssim(rec, originals).mean())}
    return table


# ----------------------------------------------------------------------------------------------
# Linear probes on bottleneck features
# ----------------------------------------------------------------------------------------------

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


def plot_tally(tally: RankingTally, title: str = ""):
    """A Fig. 1-style bar chart: for each place (1st, 2nd, ...) one bar per model, counting rankings."""
    import matplotlib.pyplot as plt
    import numpy as np

    places = len(tally.models)
    fig, ax = plt.subplots(figsize=(5, 3))
    x = np.arange(places)
    w = 0.8 / places
    for i, m in enumerate(tally.models):
        ax.bar(x + (i - (places - 1) / 2) * w, tally.counts[m], w, label=m)
    ax.set_xticks(x, [ordinal(i + 1) for i in range(places)])
    ax.set_xlabel("place in the ranking")
    ax.set_ylabel(f"count (of {len(tally)} rankings)")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return fig


def judge_widget(originals: torch.Tensor, reconstructions: Mapping[str, torch.Tensor], tally: RankingTally,
                 seed: int = 0, zoom: int = 2):
    """A "be the judge" ipywidgets panel: an original and its reconstructions in shuffled order (A, B, C);
    the student picks the best, middle and worst, and every submitted ranking goes into ``tally``, whose
    Fig. 1-style chart is redrawn below. Returns the panel (display it in Jupyter or Colab).

    Needs a live kernel: in a static page (the book) the buttons do nothing.
    """
    import io as bytes_io

    import ipywidgets as w
    import matplotlib.pyplot as plt
    from IPython.display import display
    from PIL import Image as PILImage

    names = list(reconstructions)
    letters = [chr(ord("A") + i) for i in range(len(names))]
    state = {"i": 0, "order": shuffled(names, seed)}

    def png(img: torch.Tensor) -> bytes:
        a = (img.detach().clamp(0, 1)[0].cpu().numpy() * 255).round().astype("uint8")
        buf = bytes_io.BytesIO()
        pil = PILImage.fromarray(a)
        pil.resize((pil.width * zoom, pil.height * zoom), PILImage.NEAREST).save(buf, format="PNG")
        return buf.getvalue()

    side = originals.shape[-1] * zoom
    pics = [w.Image(format="png", width=side, height=side) for _ in range(len(names) + 1)]
    captions = [w.Label("original")] + [w.Label(f"reconstruction {c}") for c in letters]
    places = [w.Dropdown(options=letters, value=letters[i], description=ordinal(i + 1), layout=w.Layout(width="140px"))
              for i in range(len(names))]
    submit = w.Button(description="Submit ranking", button_style="primary")
    message = w.Label()
    chart = w.Output()

    def show() -> None:
        i = state["i"] % len(originals)
        state["order"] = shuffled(names, seed * 100_003 + state["i"])
        pics[0].value = png(originals[i])
        for pic, model in zip(pics[1:], state["order"]):
            pic.value = png(reconstructions[model][i])

    def redraw() -> None:
        with chart:
            chart.clear_output(wait=True)
            fig = plot_tally(tally, "your rankings")
            display(fig)
            plt.close(fig)

    def on_submit(_=None) -> None:
        picked = [d.value for d in places]
        if len(set(picked)) != len(picked):
            message.value = "Each reconstruction needs its own place: pick A, B and C once each."
            return
        tally.add([state["order"][letters.index(p)] for p in picked])
        message.value = f"{len(tally)} rankings so far. Next image."
        state["i"] += 1
        show()
        redraw()

    submit.on_click(on_submit)
    show()
    column = lambda pic, cap: w.VBox([pic, cap], layout=w.Layout(align_items="center"))  # noqa: E731
    panel = w.VBox([w.HBox([column(p, c) for p, c in zip(pics, captions)]), w.HBox(places), w.HBox([submit, message]),
                    chart])
    panel.submit = on_submit  # for tests: submit the current dropdown choice
    panel.order = lambda: list(state["order"])
    panel.places = places
    return panel
