"""Reconstruction losses: pixel losses (L1, L2, their mix) and structural ones (1 - SSIM, 1 - MS-SSIM, -log MS-SSIM).

Every loss takes ``(pred, target)``, two float tensors of the same shape, (C,H,W) or (N,C,H,W), and
returns a scalar: the mean over the batch, ready for ``.backward()``. The target is checked (shape,
range; a 0..255 target, or a [-1, 1] one where [0, 1] is expected, is the usual mistake); the
prediction may leave the range a little, as a network's linear output layer does, but must be finite.
The range is [0, 1]; the pixel losses also take ``value_range=(-1, 1)``, the tanh range in which the
GAN chapters measure their reconstruction terms (pix2pix's ``lambda = 100`` is meant there).

The chapters pick losses by name with :func:`get_loss` from the one registry :data:`LOSSES`:
chapter 2 trains autoencoders with ``mse``, ``mae`` and ``log_ms_ssim``, chapter 3 SRCNN with
``l2``, ``l1`` and ``ms_ssim`` (Zhao et al. 2017 compare exactly these for image restoration),
chapters 4 and 6 weigh ``l1``, ``l2`` or ``mix`` against the adversarial term.

* ``ssim`` is ``pytorch_msssim.ssim``: the same number as :func:`i2icourse.metrics.ssim`'s score.
* ``ms_ssim`` is :func:`i2icourse.metrics.ms_ssim`, not pytorch-msssim's: that one refuses images
  below 161 pixels (the course trains on 96x96 STL-10 images and 33x33 SRCNN patches) and clips
  negative contrast-structure terms at 0, where the gradient of t**w is infinite; ours clips at 1e-4.
"""
from __future__ import annotations

from functools import partial
from typing import Callable

import pytorch_msssim
import torch
from torch import nn

from i2icourse import metrics
from i2icourse.images import ImageError, check_image

#: A loss: ``loss(pred, target)`` -> a scalar tensor.
LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
#: The range of the images' values: (0, 1), or (-1, 1) for images mapped by ``images.to_signed``.
Range = tuple[float, float]


def check_pair(pred: torch.Tensor, target: torch.Tensor, fn: str, min_size: int = 1,
               value_range: Range = (0.0, 1.0)) -> None:
    """Raise :class:`~i2icourse.images.ImageError` unless ``target`` is an image in ``value_range`` and ``pred`` a
    finite float tensor of its shape, both at least ``min_size`` pixels a side; ``fn`` names the loss in the message.

    Every loss of the course starts with it, so that a wrong target fails with a message, not a
    silently meaningless number.
    """
    check_image(target, f"{fn}: target", value_range=value_range)
    if not isinstance(pred, torch.Tensor):
        raise ImageError(f"{fn}: pred: expected a torch.Tensor, got {type(pred).__name__}")
    if pred.shape != target.shape:
        raise ImageError(f"{fn}: pred and target must have the same shape, got {tuple(pred.shape)} "
                         f"and {tuple(target.shape)}")
    if not pred.is_floating_point():
        raise ImageError(f"{fn}: pred: expected a float tensor, got dtype {pred.dtype}")
    if not bool(torch.isfinite(pred.detach()).all()):
        raise ImageError(f"{fn}: pred contains NaN or infinite values (has the model diverged?)")
    h, w = target.shape[-2:]
    if min(h, w) < min_size:
        raise ImageError(f"{fn}: images must be at least {min_size}x{min_size} pixels, got {h}x{w}")


def as_batch(x: torch.Tensor) -> torch.Tensor:
    """A (C,H,W) image as a batch of one, (1,C,H,W); a batch as it is."""
    return x if x.dim() == 4 else x.unsqueeze(0)


# ----------------------------------------------------------------------------------------------
# Pixel losses
# ----------------------------------------------------------------------------------------------

def l1(pred: torch.Tensor, target: torch.Tensor, value_range: Range = (0.0, 1.0)) -> torch.Tensor:
    """Mean absolute error: the median-seeking loss, sharper than L2 (pix2pix's reconstruction term)."""
    check_pair(pred, target, "l1", value_range=value_range)
    return (pred - target).abs().mean()


def l2(pred: torch.Tensor, target: torch.Tensor, value_range: Range = (0.0, 1.0)) -> torch.Tensor:
    """Mean squared error: the mean-seeking loss, the one PSNR measures (SRCNN trains on it)."""
    check_pair(pred, target, "l2", value_range=value_range)
    return (pred - target).pow(2).mean()


def mixed_l1_l2(pred: torch.Tensor, target: torch.Tensor, alpha: float = 0.5,
                value_range: Range = (0.0, 1.0)) -> torch.Tensor:
    """``alpha * L1 + (1 - alpha) * L2``: alpha = 1 is pure L1, alpha = 0 pure L2 (0.5: Group 32's convex mix)."""
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"mixed_l1_l2: alpha must lie in [0, 1], got {alpha}")
    check_pair(pred, target, "mixed_l1_l2", value_range=value_range)
    diff = pred - target
    return alpha * diff.abs().mean() + (1 - alpha) * diff.pow(2).mean()


# ----------------------------------------------------------------------------------------------
# Structural losses
# ----------------------------------------------------------------------------------------------

def ssim_loss(pred: torch.Tensor, target: torch.Tensor, data_range: float = 1.0, win_size: int = 11,
              sigma: float = 1.5) -> torch.Tensor:
    """``1 - SSIM``, averaged over the batch (Gaussian 11x11 window, sigma 1.5; images from 11x11 up)."""
    check_pair(pred, target, "ssim_loss", win_size)
    score = pytorch_msssim.ssim(as_batch(pred), as_batch(target), data_range=data_range, size_average=True,
                                win_size=win_size, win_sigma=sigma)
    return 1 - score


def ms_ssim_loss(pred: torch.Tensor, target: torch.Tensor, data_range: float = 1.0,
                 weights: metrics.Weights = None, win_size: int = 11) -> torch.Tensor:
    """``1 - MS-SSIM``, averaged over the batch; for images from 33x33 up (see :func:`metrics.ms_ssim`)."""
    scales = len(metrics.ms_ssim_weights(weights))
    check_pair(pred, target, "ms_ssim_loss", 2 ** scales + 1)
    # metrics.ms_ssim itself requires both images in [0, 1]; its core measures pred as it is.
    dtype = torch.promote_types(pred.dtype, target.dtype)
    score = metrics.ms_ssim_core(as_batch(pred).to(dtype), as_batch(target).to(dtype), data_range=data_range,
                                 weights=weights, win_size=win_size)
    return 1 - score.mean()


#: Snell et al.'s (2017) MS-SSIM loss as the paper writes it: 1 - MS-SSIM with all exponents 1 (5 scales), batch mean.
paper_ms_ssim_loss: LossFn = partial(ms_ssim_loss, weights="equal")


def log_ms_ssim_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """-log MS-SSIM (all exponents 1, 5 scales), averaged over the batch: 0 for identical images (chapter 2).

    Per image it has the same minimum as the paper's 1 - MS-SSIM (log is increasing), but each image's
    gradient is divided by its score. With exponents 1 the score is a product of five terms below 1,
    tiny (1e-4..1e-6) early in training; 1 - score then scales every image's gradient by its own score,
    so a batch is steered by its few best-reconstructed (flat) images and training crawls. The log
    turns the product into a sum, and every image and every scale counts.
    """
    check_pair(pred, target, "log_ms_ssim_loss", 33)
    score = metrics.ms_ssim_core(as_batch(pred), as_batch(target), weights="equal")   # (N,)
    return -torch.log(score).mean()


# ----------------------------------------------------------------------------------------------
# The registry: every reconstruction loss of the course, by name
# ----------------------------------------------------------------------------------------------

#: The losses :func:`get_loss` knows, by name.
LOSSES: dict[str, LossFn] = {
    "l1": l1,
    "l2": l2,
    "mixed": mixed_l1_l2,
    "ssim": ssim_loss,
    "ms_ssim": ms_ssim_loss,
    "log_ms_ssim": log_ms_ssim_loss,
}
#: Other names for them: chapter 2's (the paper's MAE and MSE) and the GAN steps' ``mix``.
ALIASES = {"mae": "l1", "mse": "l2", "mix": "mixed"}


def get_loss(name: str, **options) -> LossFn:
    """The loss ``name`` of :data:`LOSSES` (or :data:`ALIASES`) as ``loss(pred, target)``, with ``options`` fixed.

    Lets an ablation be a list of names: ``for name in ("l1", "l2", "ssim"): loss = get_loss(name)``;
    ``get_loss("mixed", alpha=0.84)``; ``get_loss("l1", value_range=(-1, 1))`` for tanh-range images.
    Case, spaces and dashes do not matter (``"MS-SSIM"`` is ``ms_ssim``).
    """
    key = name.strip().lower().replace("-", "_")
    key = ALIASES.get(key, key)
    if key not in LOSSES:
        raise ValueError(f"get_loss: unknown loss {name!r}; choose one of {', '.join([*LOSSES, *ALIASES])}")
    return partial(LOSSES[key], **options) if options else LOSSES[key]


# ----------------------------------------------------------------------------------------------
# GAN losses (chapter 4, pix2pix; reused by CycleGAN)
# ----------------------------------------------------------------------------------------------

def gan_loss(logits: torch.Tensor, real: bool, mode: str = "vanilla") -> torch.Tensor:
    """The adversarial loss of a discriminator's raw outputs (logits) against the label real/fake.

    * ``vanilla`` -- binary cross-entropy on the logits (Goodfellow et al. 2014; pix2pix): for
      ``real=True`` it is ``-log sigmoid(l)``, for ``real=False`` ``-log(1 - sigmoid(l))``, computed
      stably by ``binary_cross_entropy_with_logits``.
    * ``lsgan`` -- least squares (Mao et al. 2017; CycleGAN): ``(l - 1)**2`` or ``l**2``; the
      gradient does not vanish for confidently classified samples.

    A PatchGAN's map of logits is averaged: every patch is one real/fake decision. The generator
    uses ``real=True`` on its fakes (the "non-saturating" loss of the paper).
    """
    if not isinstance(logits, torch.Tensor) or not logits.is_floating_point():
        raise TypeError("gan_loss: logits must be a float tensor")
    target = torch.ones_like(logits) if real else torch.zeros_like(logits)
    if mode == "vanilla":
        return nn.functional.binary_cross_entropy_with_logits(logits, target)
    if mode in ("lsgan", "least_squares"):
        return nn.functional.mse_loss(logits, target)
    raise ValueError(f"gan_loss: mode must be 'vanilla' or 'lsgan', got {mode!r}")


class GANLoss(nn.Module):
    """Module form of :func:`gan_loss`: ``GANLoss('lsgan')(logits, real=True)``."""

    def __init__(self, mode: str = "vanilla"):
        super().__init__()
        if mode not in ("vanilla", "lsgan", "least_squares"):
            raise ValueError(f"GANLoss: mode must be 'vanilla' or 'lsgan', got {mode!r}")
        self.mode = mode

    def forward(self, logits: torch.Tensor, real: bool) -> torch.Tensor:
        return gan_loss(logits, real, self.mode)

    def extra_repr(self) -> str:
        return f"mode={self.mode!r}"


# ----------------------------------------------------------------------------------------------
# A Kullback-Leibler term between images (chapter 5, KL-augmented pix2pix)
# ----------------------------------------------------------------------------------------------

def kl_loss(pred: torch.Tensor, target: torch.Tensor, eps: float = 1e-4) -> torch.Tensor:
    """KL(P_target || P_pred) between the *spatial intensity distributions* of two images in [0, 1].

    An image is not a probability distribution, so one is made from each channel: its intensities
    (plus ``eps``) normalised to sum to 1 over the H x W pixels,

        p_c(i) = (y_c(i) + eps) / sum_j (y_c(j) + eps),     q_c(i) = (x_c(i) + eps) / sum_j (x_c(j) + eps),

    "where in the image channel c's light is". The loss is

        KL = mean over images n and channels c of  sum_i p_c(i) * (log p_c(i) - log q_c(i))

    with ``p`` from the target and ``q`` from the prediction (the direction CV2 wrote and torch's
    ``kl_div(log q, p)`` computes). It is >= 0, zero iff the two channels are proportional, blind to
    a global brightness factor, and differentiable; ``eps`` keeps the logs finite at black pixels.
    ``pred`` is clamped to [0, 1] (a tanh output mapped to [0, 1] already is).
    """
    check_pair(pred, target, "kl_loss")
    if eps < 0:
        raise ValueError(f"kl_loss: eps must be >= 0, got {eps}")
    p = as_batch(target).flatten(2) + eps                       # (N, C, H*W)
    q = as_batch(pred).clamp(0, 1).flatten(2) + eps
    p = p / p.sum(-1, keepdim=True)
    q = q / q.sum(-1, keepdim=True)
    return (p * (p.log() - q.log())).sum(-1).mean()
