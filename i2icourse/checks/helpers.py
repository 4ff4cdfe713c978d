"""What every chapter's checks use: one number from an answer, photo crops, seeded noise, a tolerant comparison."""
from __future__ import annotations

import math
from typing import Any

import torch

from i2icourse import images
from i2icourse.checks import Wrong

__all__ = ["number", "photo", "noisy", "close"]


def number(value: Any, what: str) -> float:
    """``value`` as a float if it is one number (a float, a NumPy scalar, a one-element tensor), else :class:`Wrong`."""
    if isinstance(value, torch.Tensor):
        if value.numel() != 1:
            raise Wrong(f"{what} should be one number, got a tensor of shape {tuple(value.shape)}")
        return float(value.detach().cpu().item())
    if isinstance(value, bool) or not hasattr(value, "__float__"):
        raise Wrong(f"{what} should be one number (a float or a 0-dim tensor), got {type(value).__name__}")
    return float(value)


def photo(name: str, top: int, left: int, height: int, width: int, grey: bool = False) -> torch.Tensor:
    """A crop of one of scikit-image's bundled photos (``astronaut``, ``camera``, ``coffee``) as a (C,H,W) tensor."""
    from skimage import data
    x = images.from_numpy(getattr(data, name)(), name)
    if grey and x.shape[0] == 3:
        x = images.rgb_to_grey(x)
    return images.crop(x, top, left, height, width)


def noisy(x: torch.Tensor, sigma: float, seed: int) -> torch.Tensor:
    """``x`` plus Gaussian noise of standard deviation ``sigma``, clamped to [0, 1] (seeded, repeatable)."""
    g = torch.Generator().manual_seed(seed)
    return (x + sigma * torch.randn(x.shape, generator=g)).clamp(0, 1)


def close(a: float, b: float, tol: float) -> bool:
    """Whether ``a`` is finite and within ``tol`` of ``b``, relative to ``b`` once ``|b|`` exceeds 1."""
    return math.isfinite(a) and abs(a - b) <= tol * max(1.0, abs(b))
