"""Feature-based metrics of a set of generated images: FID and improved precision/recall.

Both compare two *sets* of images through the features of a fixed network, not pairs pixel by pixel:

* **FID** (Heusel et al. 2017): fit a Gaussian to each set's features and take the Frechet
  distance ``|mu_r - mu_g|^2 + Tr(S_r + S_g - 2 (S_r S_g)^(1/2))``. Lower is better; it mixes
  fidelity and diversity into one number and is biased upwards for small sets.
* **Improved precision and recall** (Kynkaanniemi et al. 2019), implemented from the paper: the
  real features' manifold is the union of balls around every real feature vector, each with the
  radius of its distance to its k-th nearest real neighbour (k = 3). *Precision* is the fraction
  of generated samples inside the real manifold (are fakes realistic?), *recall* the fraction of
  real samples inside the generated manifold (is the real variety covered?).

Features come from a module passed in. The standard one is Inception-v3's 2048-d pool features
with ImageNet weights (:func:`inception_features` with ``weights="imagenet"``: torchvision
downloads them once, e.g. on Colab). Offline, ``weights=None`` gives the same architecture with
*random* weights: the code runs and the numbers still rank models, but they are **not comparable
to published FIDs**, which all use the trained network.
"""
from __future__ import annotations

from typing import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from i2icourse.inference import predict

_MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
_STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)


class InceptionFeatures(nn.Module):
    """Inception-v3 up to its 2048-d average pool; takes (N,3,H,W) or (N,1,H,W) images in [0, 1].

    Images are resized (bilinear) to ``size`` (299 in every published FID; at least 75) and
    normalised with ImageNet's mean and standard deviation.
    """

    def __init__(self, weights: str | None = None, size: int = 299, seed: int = 0):
        super().__init__()
        from torchvision.models import Inception_V3_Weights, inception_v3

        if size < 75:
            raise ValueError(f"Inception-v3 needs inputs of at least 75 pixels, got {size}")
        if weights == "imagenet":
            net = inception_v3(weights=Inception_V3_Weights.IMAGENET1K_V1)
        elif weights is None:
            with torch.random.fork_rng():  # the random features are the same in every run
                torch.manual_seed(seed)
                net = inception_v3(weights=None, aux_logits=False, init_weights=True)
                for m in net.modules():  # He initialisation keeps activations at unit scale through
                    if isinstance(m, nn.Conv2d):  # the 94 layers (torchvision's std 0.1 lets them explode)
                        nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu")
        else:
            raise ValueError(f"weights must be 'imagenet' or None, got {weights!r}")
        net.fc = nn.Identity()
        net.aux_logits, net.AuxLogits = False, None
        self.net, self.size, self.weights = net.eval(), size, weights
        self.requires_grad_(False)

    @torch.no_grad()
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        x = F.interpolate(x.float(), size=(self.size, self.size), mode="bilinear", align_corners=False)
        x = (x - _MEAN.to(x.device)) / _STD.to(x.device)
        return self.net(x)  # (N, 2048)


def inception_features(weights: str | None = None, size: int = 299) -> InceptionFeatures:
    """Inception-v3 pool features: ``weights="imagenet"`` (downloads once) or ``None`` (random, offline)."""
    return InceptionFeatures(weights, size)


def features(extractor: Callable[[torch.Tensor], torch.Tensor], images: torch.Tensor | Sequence[torch.Tensor],
             batch_size: int = 32) -> torch.Tensor:
    """The (N, D) float64 features of a batch or a list of (C,H,W) images in [0, 1]."""
    xs = images if isinstance(images, torch.Tensor) else torch.stack(list(images))
    return predict(extractor, xs, batch_size, fn=lambda x: extractor(x).double())


def frechet_distance(real: torch.Tensor, fake: torch.Tensor) -> float:
    """FID between two (N, D) feature sets: ``|mu_r - mu_g|^2 + Tr(S_r) + Tr(S_g) - 2 Tr((S_r S_g)^(1/2))``.

    ``Tr((S_r S_g)^(1/2))`` is the sum of the square roots of the eigenvalues of ``S_r S_g``. With
    centred features ``X_r`` (n x D) and ``X_g`` (m x D), ``S_r S_g`` has the same non-zero eigenvalues
    as ``(X_r X_g^T)(X_r X_g^T)^T / ((n-1)(m-1))``, so the trace is the sum of the singular values of
    the small n x m matrix ``X_r X_g^T / sqrt((n-1)(m-1))`` -- exact, and fast when there are fewer
    samples than features (2048 for Inception). Otherwise it uses the symmetric form
    ``S_r^(1/2) S_g S_r^(1/2)`` (same eigenvalues, no complex round-off).
    """
    real, fake = real.double(), fake.double()
    n, m = real.shape[0], fake.shape[0]
    if n < 2 or m < 2:
        raise ValueError("frechet_distance needs at least 2 samples per set")
    mu_r, mu_g = real.mean(0), fake.mean(0)
    xr, xg = real - mu_r, fake - mu_g
    trace_r, trace_g = xr.pow(2).sum() / (n - 1), xg.pow(2).sum() / (m - 1)
    if min(n, m) < real.shape[1]:
        cross = torch.linalg.svdvals(xr @ xg.T).sum() / ((n - 1) * (m - 1)) ** 0.5
    else:
        s_r, s_g = xr.T @ xr / (n - 1), xg.T @ xg / (m - 1)
        ev, vecs = torch.linalg.eigh(s_r)
        sqrt_r = (vecs * ev.clamp(min=0).sqrt()) @ vecs.T
        cross = torch.linalg.eigvalsh(sqrt_r @ s_g @ sqrt_r).clamp(min=0).sqrt().sum()
    return float((mu_r - mu_g).pow(2).sum() + trace_r + trace_g - 2 * cross)


def _radii(feats: torch.Tensor, k: int) -> torch.Tensor:
    """Distance of every sample to its k-th nearest neighbour in the same set (itself excluded)."""
    d = torch.cdist(feats, feats)
    return d.kthvalue(k + 1, dim=1).values  # the 1st smallest is the point itself (distance 0)


def _coverage(manifold: torch.Tensor, radii: torch.Tensor, samples: torch.Tensor) -> float:
    """Fraction of ``samples`` inside at least one ball (centre in ``manifold``, radius ``radii``)."""
    d = torch.cdist(samples, manifold)              # (n_samples, n_manifold)
    return float((d <= radii[None, :]).any(dim=1).double().mean())


def precision_recall(real: torch.Tensor, fake: torch.Tensor, k: int = 3) -> tuple[float, float]:
    """Improved precision and recall (Kynkaanniemi et al. 2019) of ``fake`` against ``real``, with k = 3."""
    real, fake = real.double(), fake.double()
    if min(len(real), len(fake)) <= k:
        raise ValueError(f"precision_recall needs more than k={k} samples per set")
    precision = _coverage(real, _radii(real, k), fake)
    recall = _coverage(fake, _radii(fake, k), real)
    return precision, recall


def feature_metrics(extractor: Callable[[torch.Tensor], torch.Tensor], real: torch.Tensor, fake: torch.Tensor,
                    k: int = 3, real_features: torch.Tensor | None = None) -> dict[str, float]:
    """``{'precision', 'recall', 'FID'}`` of generated images ``fake`` against ``real`` (image batches in [0, 1])."""
    fr = real_features if real_features is not None else features(extractor, real)
    fg = features(extractor, fake)
    p, r = precision_recall(fr, fg, k)
    return {"precision": p, "recall": r, "FID": frechet_distance(fr, fg)}
