"""Reconstruction losses: pixel losses (L1, L2, their mix) and structural ones (1 - SSIM, 1 - MS-SSIM).

Every loss takes ``(pred, target)``, two float tensors of the same shape, (C,H,W) or (N,C,H,W), and
returns a scalar: the mean over the batch, ready for ``.backward()``. The data range is [0, 1]. The
target is checked (shape, [0, 1]; a 0..255 or [-1, 1] target is the usual mistake); the prediction
may leave [0, 1] a little, as a network's linear output layer does, but must be finite.

Each loss exists as a function (``ssim_loss(pred, target)``) and as a module (``SSIMLoss()``); a
chapter that compares losses picks them by name with :func:`get_loss` (Zhao et al. 2017 compare
exactly these for image restoration).

* ``ssim`` is ``pytorch_msssim.ssim``: the same number as :func:`i2icourse.metrics.ssim`'s score.
* ``ms_ssim`` is :func:`i2icourse.metrics.ms_ssim`, not pytorch-msssim's: that one refuses images
  below 161 pixels (the course trains on 96x96 STL-10 images and 33x33 SRCNN patches) and clips
  negative contrast-structure terms at 0, where the gradient of t**w is infinite; ours clips at 1e-4.
"""
from __future__ import annotations

from typing import Callable

import pytorch_msssim
import torch
from torch import nn

from i2icourse import metrics
from i2icourse.io import ImageError, check_image


def _check(pred: torch.Tensor, target: torch.Tensor, fn: str, min_size: int = 1) -> None:
    """Target in [0, 1] with pred of the same shape, both float; pred finite."""
    check_image(target, f"{fn}: target")
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


def _batch(x: torch.Tensor) -> torch.Tensor:
    return x if x.dim() == 4 else x.unsqueeze(0)


# ----------------------------------------------------------------------------------------------
# Pixel losses
# ----------------------------------------------------------------------------------------------

def l1(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean absolute error: the median-seeking loss, sharper than L2 (pix2pix's reconstruction term)."""
    _check(pred, target, "l1")
    return (pred - target).abs().mean()


def l2(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared error: the mean-seeking loss, the one PSNR measures (SRCNN trains on it)."""
    _check(pred, target, "l2")
    return (pred - target).pow(2).mean()


def mixed_l1_l2(pred: torch.Tensor, target: torch.Tensor, alpha: float = 0.5) -> torch.Tensor:
    """``alpha * L1 + (1 - alpha) * L2``: alpha = 1 is pure L1, alpha = 0 pure L2."""
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"mixed_l1_l2: alpha must lie in [0, 1], got {alpha}")
    _check(pred, target, "mixed_l1_l2")
    diff = pred - target
    return alpha * diff.abs().mean() + (1 - alpha) * diff.pow(2).mean()


# ----------------------------------------------------------------------------------------------
# Structural losses
# ----------------------------------------------------------------------------------------------

def ssim_loss(pred: torch.Tensor, target: torch.Tensor, data_range: float = 1.0, win_size: int = 11,
              sigma: float = 1.5) -> torch.Tensor:
    """``1 - SSIM``, averaged over the batch (Gaussian 11x11 window, sigma 1.5; images from 11x11 up)."""
    _check(pred, target, "ssim_loss", win_size)
    score = pytorch_msssim.ssim(_batch(pred), _batch(target), data_range=data_range, size_average=True,
                                win_size=win_size, win_sigma=sigma)
    return 1 - score


def ms_ssim_loss(pred: torch.Tensor, target: torch.Tensor, data_range: float = 1.0,
                 weights: metrics.Weights = None, win_size: int = 11) -> torch.Tensor:
    """``1 - MS-SSIM``, averaged over the batch; for images from 33x33 up (see :func:`metrics.ms_ssim`)."""
    scales = len(metrics._ms_weights(weights))
    _check(pred, target, "ms_ssim_loss", 2 ** scales + 1)
    # metrics.ms_ssim itself requires both images in [0, 1]; its core measures pred as it is.
    dtype = torch.promote_types(pred.dtype, target.dtype)
    score = metrics._ms_ssim(_batch(pred).to(dtype), _batch(target).to(dtype), data_range=data_range,
                             weights=weights, win_size=win_size)
    return 1 - score.mean()


class L1Loss(nn.Module):
    """Module form of :func:`l1`."""

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return l1(pred, target)


class L2Loss(nn.Module):
    """Module form of :func:`l2`."""

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return l2(pred, target)


class MixedL1L2Loss(nn.Module):
    """Module form of :func:`mixed_l1_l2`."""

    def __init__(self, alpha: float = 0.5):
        super().__init__()
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f"MixedL1L2Loss: alpha must lie in [0, 1], got {alpha}")
        self.alpha = alpha

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return mixed_l1_l2(pred, target, self.alpha)

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}"


class SSIMLoss(nn.Module):
    """Module form of :func:`ssim_loss`."""

    def __init__(self, data_range: float = 1.0, win_size: int = 11, sigma: float = 1.5):
        super().__init__()
        self.data_range, self.win_size, self.sigma = data_range, win_size, sigma

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return ssim_loss(pred, target, self.data_range, self.win_size, self.sigma)

    def extra_repr(self) -> str:
        return f"data_range={self.data_range}, win_size={self.win_size}, sigma={self.sigma}"


class MSSSIMLoss(nn.Module):
    """Module form of :func:`ms_ssim_loss`; ``weights`` is ``'standard'``, ``'equal'`` or a sequence."""

    def __init__(self, data_range: float = 1.0, weights: metrics.Weights = None, win_size: int = 11):
        super().__init__()
        self.data_range, self.weights, self.win_size = data_range, weights, win_size

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return ms_ssim_loss(pred, target, self.data_range, self.weights, self.win_size)

    def extra_repr(self) -> str:
        return f"data_range={self.data_range}, weights={self.weights!r}, win_size={self.win_size}"


#: The losses :func:`get_loss` knows, by name.
LOSSES: dict[str, Callable[..., nn.Module]] = {
    "l1": L1Loss,
    "l2": L2Loss,
    "mixed": MixedL1L2Loss,
    "ssim": SSIMLoss,
    "ms_ssim": MSSSIMLoss,
}


def get_loss(name: str, **options) -> nn.Module:
    """The loss module ``name`` (``l1``, ``l2``, ``mixed``, ``ssim``, ``ms_ssim``), built with ``options``.

    Lets an ablation be a list of names: ``for name in ("l1", "l2", "ssim"): loss = get_loss(name)``;
    ``get_loss("mixed", alpha=0.84)``.
    """
    key = name.strip().lower().replace("-", "_")
    if key not in LOSSES:
        raise ValueError(f"get_loss: unknown loss {name!r}; choose one of {', '.join(LOSSES)}")
    return LOSSES[key](**options)


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
    _check(pred, target, "kl_loss")
    if eps < 0:
        raise ValueError(f"kl_loss: eps must be >= 0, got {eps}")
    p = _batch(target).flatten(2) + eps                       # (N, C, H*W)
    q = _batch(pred).clamp(0, 1).flatten(2) + eps
    p = p / p.sum(-1, keepdim=True)
    q = q / q.sum(-1, keepdim=True)
    return (p * (p.log() - q.log())).sum(-1).mean()
