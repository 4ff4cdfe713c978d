"""Feature-based metrics of a set of generated images: FID, KID and improved precision/recall.

All three compare two *sets* of images through the features of a fixed network, not pairs pixel by pixel:

* **FID** (Heusel et al. 2017): fit a Gaussian to each set's features and take the Frechet
  distance ``|mu_r - mu_g|^2 + Tr(S_r + S_g - 2 (S_r S_g)^(1/2))``. Lower is better; it mixes
  fidelity and diversity into one number and is biased upwards for small sets.
* **KID** (Binkowski et al. 2018): the squared maximum mean discrepancy between the two feature
  sets with the cubic kernel ``k(x, y) = (x.y / d + 1)^3``, estimated without bias and averaged
  over random subsets. Unlike FID it has no bias from the set size, so it suits the course's test
  sets of a few hundred images; being unbiased it can come out slightly below 0.
* **Improved precision and recall** (Kynkaanniemi et al. 2019), implemented from the paper: the
  real features' manifold is the union of balls around every real feature vector, each with the
  radius of its distance to its k-th nearest real neighbour (k = 3). *Precision* is the fraction
  of generated samples inside the real manifold (are fakes realistic?), *recall* the fraction of
  real samples inside the generated manifold (is the real variety covered?). The paper uses
  VGG-16's fc2 features (4096-d); the course uses the same 2048-d Inception pool features as for
  FID, as the Group 32 CycleGAN/pix2pix report did ("Both the metrics are calculated using the
  feature maps ... Inception V3"), so our values are not the paper's VGG-16 numbers.

Features come from a module passed in; :func:`inception_features` gives three versions of
Inception-v3's 2048-d pool features, and :func:`label` names each in a table header:

* ``weights="fid"``, **the standard**: the network FID is defined on, TensorFlow's 2015-12-05
  Inception graph, as ported to PyTorch by pytorch-fid (``pt_inception-2015-12-05`` weights,
  downloaded once, e.g. on Colab). Only these numbers can be compared with published FIDs. We use
  pytorch-fid because it is the reference PyTorch implementation of FID that the CycleGAN/pix2pix
  literature reports with, and it is small: it needs only numpy, pillow, scipy, torch and
  torchvision, so installing it never replaces Colab's torch (torchmetrics' FID would need
  torch-fidelity as well).
* ``weights="imagenet"``: torchvision's ImageNet Inception-v3. A different network (other
  weights, slightly other blocks), so its FIDs are **not comparable to published ones**.
* ``weights=None``: the same architecture with *random* weights, offline. The code runs and the
  numbers still rank models, but they mean nothing outside the table they appear in.
"""
from __future__ import annotations

from typing import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from i2icourse.inference import predict

_MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
_STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)

#: The table-header name of each feature network (``weights`` of :class:`InceptionFeatures`).
LABELS = {
    "fid": "FID Inception (pytorch-fid, the standard)",
    "imagenet": "ImageNet Inception-v3 (torchvision; not comparable to published FIDs)",
    None: "random-weight Inception-v3 (offline fallback; ranks models only)",
}


def label(weights: str | None) -> str:
    """The name of the feature network for ``weights`` ("fid", "imagenet" or None), for table headers."""
    if weights not in LABELS:
        raise ValueError(f"weights must be 'fid', 'imagenet' or None, got {weights!r}")
    return LABELS[weights]


def _fid_inception() -> nn.Module:
    """pytorch-fid's Inception up to the 2048-d pool; it resizes to 299 and maps [0, 1] to [-1, 1] itself."""
    from pytorch_fid.inception import InceptionV3

    try:
        return InceptionV3([InceptionV3.BLOCK_INDEX_BY_DIM[2048]], resize_input=True, normalize_input=True)
    except OSError as error:  # no network: urllib's URLError and HTTPError are OSErrors
        raise RuntimeError("the FID Inception weights (pytorch-fid's pt_inception-2015-12-05) could not be "
                           "downloaded; weights=None gives the labelled offline fallback "
                           f"({LABELS[None]})") from error


def _torchvision_inception(imagenet: bool, seed: int) -> nn.Module:
    """torchvision's Inception-v3 without its classifier: ImageNet weights, or random ones drawn from ``seed``."""
    from torchvision.models import Inception_V3_Weights, inception_v3

    if imagenet:
        net = inception_v3(weights=Inception_V3_Weights.IMAGENET1K_V1)
    else:
        with torch.random.fork_rng():  # the random features are the same in every run
            torch.manual_seed(seed)
            net = inception_v3(weights=None, aux_logits=False, init_weights=True)
            for m in net.modules():  # He initialisation keeps activations at unit scale through
                if isinstance(m, nn.Conv2d):  # the 94 layers (torchvision's std 0.1 lets them explode)
                    nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu")
    net.fc = nn.Identity()
    net.aux_logits, net.AuxLogits = False, None
    return net


class InceptionFeatures(nn.Module):
    """Inception-v3 up to its 2048-d average pool; takes (N,3,H,W) or (N,1,H,W) images in [0, 1].

    ``weights`` is "fid" (pytorch-fid's FID network, the standard), "imagenet" (torchvision's) or
    None (random, offline); see the module docstring. Grey images are repeated to 3 channels.
    Images are resized (bilinear) to ``size`` (299 in every published FID; at least 75) and
    normalised as the network was trained: ImageNet's mean and standard deviation, or [-1, 1] for
    the FID network, which is defined at 299 pixels only.
    """

    def __init__(self, weights: str | None = None, size: int = 299, seed: int = 0):
        super().__init__()
        label(weights)  # a known network
        if size < 75:
            raise ValueError(f"Inception-v3 needs inputs of at least 75 pixels, got {size}")
        if weights == "fid" and size != 299:
            raise ValueError(f"the FID network is defined at 299 pixels, got size={size}")
        net = _fid_inception() if weights == "fid" else _torchvision_inception(weights == "imagenet", seed)
        self.net, self.size, self.weights = net.eval(), size, weights
        self.requires_grad_(False)

    @torch.no_grad()
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        if self.weights == "fid":
            return self.net(x.float())[0].flatten(1)  # (N, 2048)
        x = F.interpolate(x.float(), size=(self.size, self.size), mode="bilinear", align_corners=False)
        x = (x - _MEAN.to(x.device)) / _STD.to(x.device)
        return self.net(x)  # (N, 2048)


def inception_features(weights: str | None = None, size: int = 299) -> InceptionFeatures:
    """Inception-v3 pool features: ``weights="fid"`` (the standard) or ``"imagenet"`` (each downloads once), or ``None`` (random, offline)."""
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


def _polynomial_kernel(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """KID's cubic kernel ``(a.b / d + 1)^3`` between every row of ``a`` and every row of ``b``."""
    return (a @ b.T / a.shape[1] + 1) ** 3


def _unbiased_mmd2(x: torch.Tensor, y: torch.Tensor) -> float:
    """Unbiased MMD^2 of two equal-size sets: the kernel means within each set leave out the diagonal k(x_i, x_i)."""
    m = x.shape[0]
    k_xx, k_yy, k_xy = _polynomial_kernel(x, x), _polynomial_kernel(y, y), _polynomial_kernel(x, y)
    within = (k_xx.sum() - k_xx.diagonal().sum() + k_yy.sum() - k_yy.diagonal().sum()) / (m * (m - 1))
    return float(within - 2 * k_xy.mean())


def kernel_inception_distance(real: torch.Tensor, fake: torch.Tensor, subsets: int = 100, subset_size: int = 1000,
                              seed: int = 0) -> tuple[float, float]:
    """KID (Binkowski et al. 2018) of two (N, D) feature sets: the mean and standard deviation over subsets.

    Each of ``subsets`` rounds draws ``subset_size`` samples without replacement from each set and
    takes the unbiased MMD^2 with the kernel ``(x.y / D + 1)^3``; the standard deviation is the
    population one, as torch-fidelity reports it. ``subset_size`` is clipped to the smaller set
    (the course's test sets have 100-350 images), so when both sets are that small every round
    uses all of them and the deviation is 0. The same ``seed`` gives the same subsets.
    """
    real, fake = real.double(), fake.double()
    m = min(subset_size, len(real), len(fake))
    if m < 2:
        raise ValueError("kernel_inception_distance needs at least 2 samples per set")
    g = torch.Generator().manual_seed(seed)
    values = torch.tensor([_unbiased_mmd2(real[torch.randperm(len(real), generator=g)[:m].to(real.device)],
                                          fake[torch.randperm(len(fake), generator=g)[:m].to(fake.device)])
                           for _ in range(subsets)], dtype=torch.float64)
    return float(values.mean()), float(values.std(unbiased=False))


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
    """``{'precision', 'recall', 'FID', 'KID'}`` of generated images ``fake`` against ``real`` (image batches
    in [0, 1]); KID is the mean of :func:`kernel_inception_distance`, unbiased at small test sets."""
    fr = real_features if real_features is not None else features(extractor, real)
    fg = features(extractor, fake)
    p, r = precision_recall(fr, fg, k)
    return {"precision": p, "recall": r, "FID": frechet_distance(fr, fg), "KID": kernel_inception_distance(fr, fg)[0]}
