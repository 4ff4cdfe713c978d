"""Image distortions: blur, noise, compression, impulse noise, contrast and brightness changes.

Chapter 00 uses them to build images with *equal* mean squared error but very different looks
(Wang et al. 2004, Fig. 2); chapter 01 uses them to build the distorted images whose SSIM maps a
network learns to predict. Every function takes and returns a (C,H,W) or (N,C,H,W) image in [0, 1];
randomness comes from an explicit ``torch.Generator`` so a distortion can be repeated.
"""
from __future__ import annotations

import io as _bytes
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from i2icourse.images import check_image, from_numpy, to_numpy
from i2icourse.metrics import gaussian_window


def gaussian_blur(x: torch.Tensor, sigma: float, size: int | None = None) -> torch.Tensor:
    """Gaussian blur with standard deviation ``sigma`` (kernel ``size`` defaults to 6σ+1, odd).

    Borders are replicated, so a blurred flat image stays flat.
    """
    check_image(x, "gaussian_blur input")
    if sigma <= 0:
        return x.clone()
    size = size or 2 * int(np.ceil(3 * sigma)) + 1
    k = gaussian_window(size, sigma).to(x)
    xb = x if x.dim() == 4 else x.unsqueeze(0)
    c = xb.shape[1]
    pad = size // 2
    # A kernel wider than the image needs repeated padding; 'replicate' pads any width.
    y = F.pad(xb, (pad, pad, 0, 0), mode="replicate")
    y = F.conv2d(y, k.view(1, 1, 1, -1).repeat(c, 1, 1, 1), groups=c)
    y = F.pad(y, (0, 0, pad, pad), mode="replicate")
    y = F.conv2d(y, k.view(1, 1, -1, 1).repeat(c, 1, 1, 1), groups=c)
    return y if x.dim() == 4 else y[0]


def gaussian_noise(x: torch.Tensor, std: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """Add white Gaussian noise of standard deviation ``std`` and clip to [0, 1]."""
    check_image(x, "gaussian_noise input")
    noise = torch.randn(x.shape, generator=generator, dtype=x.dtype).to(x.device)
    return (x + std * noise).clamp(0, 1)


def salt_and_pepper(x: torch.Tensor, amount: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """Set a fraction ``amount`` of pixels (all channels together) to 0 or 1 at random: impulse noise."""
    check_image(x, "salt_and_pepper input")
    shape = x.shape[:-3] + (1,) + x.shape[-2:]
    u = torch.rand(shape, generator=generator).to(x.device)
    y = x.clone()
    y = torch.where(u < amount / 2, torch.zeros_like(y), y)
    y = torch.where((u >= amount / 2) & (u < amount), torch.ones_like(y), y)
    return y


def contrast_stretch(x: torch.Tensor, factor: float) -> torch.Tensor:
    """Scale the deviations from the image mean by ``factor`` (>1 stretches contrast), clipped to [0, 1]."""
    check_image(x, "contrast_stretch input")
    mean = x.mean(dim=(-3, -2, -1), keepdim=True)
    return (mean + factor * (x - mean)).clamp(0, 1)


def mean_shift(x: torch.Tensor, delta: float) -> torch.Tensor:
    """Add ``delta`` to every pixel (a brightness change), clipped to [0, 1]."""
    check_image(x, "mean_shift input")
    return (x + delta).clamp(0, 1)


def _pil_roundtrip(x: torch.Tensor, fmt: str, **save_kwargs) -> torch.Tensor:
    check_image(x, f"{fmt} input", channels=(1, 3), batched=False)
    a = (to_numpy(x) * 255 + 0.5).astype(np.uint8)
    buf = _bytes.BytesIO()
    Image.fromarray(a).save(buf, format=fmt, **save_kwargs)
    buf.seek(0)
    with Image.open(buf) as im:
        out = np.asarray(im.convert("L" if a.ndim == 2 else "RGB"))
    return from_numpy(out, f"{fmt} output").to(x.device)


def jpeg(x: torch.Tensor, quality: int) -> torch.Tensor:
    """JPEG compression at ``quality`` (1 = worst, 95 = nearly lossless), through PIL (libjpeg)."""
    return _pil_roundtrip(x, "JPEG", quality=int(quality))


def jpeg2000(x: torch.Tensor, ratio: float) -> torch.Tensor:
    """JPEG 2000 compression at compression ``ratio`` (e.g. 50 means 50:1), through PIL (OpenJPEG)."""
    return _pil_roundtrip(x, "JPEG2000", quality_mode="rates", quality_layers=[float(ratio)], irreversible=True)


def mse(x: torch.Tensor, y: torch.Tensor) -> float:
    """Mean squared error between two images, in (0..1)^2 units."""
    return float(((x - y) ** 2).mean())


def with_mse(distort: Callable[[torch.Tensor, float], torch.Tensor], x: torch.Tensor, target: float,
             lo: float, hi: float, iters: int = 30, integer: bool = False) -> tuple[torch.Tensor, float]:
    """Find the strength ``p`` in [lo, hi] at which ``distort(x, p)`` has mean squared error ``target``.

    Bisection: it assumes the error grows (or shrinks) monotonically with ``p``. Returns the
    distorted image and ``p``. ``integer=True`` searches whole numbers (JPEG quality).
    """
    f_lo = mse(distort(x, lo), x) - target
    f_hi = mse(distort(x, hi), x) - target
    if f_lo * f_hi > 0:
        raise ValueError(f"target MSE {target:.3g} is not reachable between strengths {lo} and {hi} "
                         f"(MSE {f_lo + target:.3g} .. {f_hi + target:.3g})")
    for _ in range(iters):
        mid = (lo + hi) / 2
        if integer:
            mid = round(mid)
            if mid in (lo, hi):
                break
        f_mid = mse(distort(x, mid), x) - target
        if (f_mid > 0) == (f_hi > 0):
            hi, f_hi = mid, f_mid
        else:
            lo, f_lo = mid, f_mid
    best = lo if abs(f_lo) < abs(f_hi) else hi
    return distort(x, best), best


# ----------------------------------------------------------------------------------------------
# The Waterloo Exploration Database's levels (chapter 01): 4 types x 5 levels
# ----------------------------------------------------------------------------------------------

#: The four distortion types of the Waterloo Exploration Database (Ma et al. 2017), in its order.
WATERLOO_TYPES = ("blur", "noise", "jpeg", "jpeg2000")

#: The five levels of each type, from the database's own generator script (level 1 = mildest):
#: blur -- Gaussian kernel size (sigma = size / 6); noise -- variance of white Gaussian noise on a
#: [0, 1] scale; jpeg -- quality factor; jpeg2000 -- bits per pixel.
WATERLOO_LEVELS: dict[str, tuple[float, ...]] = {
    "blur": (7, 15, 39, 91, 199),
    "noise": (2 ** -10, 2 ** -7.5, 2 ** -5.5, 2 ** -3.5, 2 ** 0),
    "jpeg": (43, 12, 7, 4, 0),
    "jpeg2000": (0.46, 0.16, 0.07, 0.04, 0.02),
}


def jpeg2000_bpp(x: torch.Tensor, bpp: float) -> torch.Tensor:
    """JPEG 2000 at ``bpp`` bits per pixel: ratio = (8 bits x channels) / bpp, i.e. 24 / bpp for RGB.

    OpenJPEG's rate control lands within about 0.5% of the target size on photos of a few hundred pixels.
    """
    channels = x.shape[-3]
    return jpeg2000(x, 8 * channels / float(bpp))


def waterloo_distort(x: torch.Tensor, kind: str, level: int, seed: int = 0) -> torch.Tensor:
    """``x`` (C,H,W) distorted by ``kind`` (one of :data:`WATERLOO_TYPES`) at ``level`` 1..5 (0 = unchanged).

    Deterministic: the noise is drawn from a generator seeded with ``seed``, so the same call gives the
    same image. JPEG quality 0 (level 5) is what libjpeg does with it -- it clamps the quality to 1, as
    MATLAB's ``imwrite`` (the database's tool) does too -- so level 5 is quality 1 here, explicitly.
    """
    if kind not in WATERLOO_LEVELS:
        raise ValueError(f"unknown distortion {kind!r}; choose one of {', '.join(WATERLOO_TYPES)}")
    if not 0 <= int(level) <= 5:
        raise ValueError(f"level must be 0 (pristine) .. 5, got {level}")
    check_image(x, "waterloo_distort input", channels=(1, 3), batched=False)
    if level == 0:
        return x.clone()
    p = WATERLOO_LEVELS[kind][int(level) - 1]
    if kind == "blur":
        return gaussian_blur(x, sigma=p / 6, size=int(p))
    if kind == "noise":
        return gaussian_noise(x, float(np.sqrt(p)), torch.Generator().manual_seed(int(seed)))
    if kind == "jpeg":
        return jpeg(x, max(int(p), 1))
    return jpeg2000_bpp(x, p)


def waterloo_versions(x: torch.Tensor, seed: int = 0) -> dict[tuple[str, int], torch.Tensor]:
    """All 20 distorted versions of ``x``, keyed by (type, level); noise of level L uses seed ``seed * 10 + L``."""
    return {(k, lv): waterloo_distort(x, k, lv, seed * 10 + lv) for k in WATERLOO_TYPES for lv in range(1, 6)}
