"""Chapter 00 (measuring image quality): the checks of PSNR, grey conversion and global SSIM."""
from __future__ import annotations

import math
from typing import Any, Callable

import torch

from i2icourse import images
from i2icourse.checks import Wrong, register
from i2icourse.checks.helpers import close, noisy, number, photo

#: Every name here, the private ones too: the package re-exports them, and the grader finds a
#: probe (or a function handed to an answer) by its name in the package.
__all__ = ["reference_psnr", "_check_psnr", "_check_grey", "reference_global_ssim", "_check_global_ssim"]


def reference_psnr(x: torch.Tensor, y: torch.Tensor, data_range: float = 1.0) -> float:
    """10 log10(data_range^2 / MSE), in float64."""
    mse = ((x.double() - y.double()) ** 2).mean()
    return float(10 * torch.log10(data_range ** 2 / mse))


@register("ex-00-1")
def _check_psnr(my_psnr: Callable[..., Any]) -> str:
    """my_psnr(x, y, data_range=1.0): PSNR in dB, on photo crops with noise, for data ranges 1, 255 and 2."""
    rgb = photo("astronaut", 40, 180, 48, 64)
    grey = photo("camera", 100, 200, 40, 56)
    cases = [
        ("a 48x64 RGB photo crop and a noisy copy (default data_range)", rgb, noisy(rgb, 0.05, 0), None),
        ("a 40x56 grey crop and a noisy copy, data_range=1.0", grey, noisy(grey, 0.1, 1), 1.0),
        ("the RGB pair scaled to 0..255, data_range=255", rgb * 255, noisy(rgb, 0.05, 0) * 255, 255.0),
        ("the grey pair scaled to [-1, 1], data_range=2.0", grey * 2 - 1, noisy(grey, 0.1, 1) * 2 - 1, 2.0),
    ]
    for i, (what, x, y, data_range) in enumerate(cases):
        got = my_psnr(x, y) if data_range is None else my_psnr(x, y, data_range=data_range)
        got = number(got, "my_psnr's result")
        want = reference_psnr(x, y, 1.0 if data_range is None else data_range)
        if close(got, want, 1e-4):
            continue
        hint = ""
        if math.isfinite(got) and close(-got, want, 1e-4):
            hint = " (check the sign)"
        elif math.isfinite(got) and close(got, want * math.log(10), 1e-4):
            hint = " (check the base of the logarithm)"
        elif data_range not in (None, 1.0) and i > 1:
            hint = " (it was right for data_range=1: check how data_range enters the formula)"
        raise Wrong(f"on {what}, got {got:.4f}, expected {want:.4f} dB{hint}")
    return f"my_psnr matches the reference on {len(cases)} image pairs"


@register("ex-00-2")
def _check_grey(my_grey: Callable[[torch.Tensor], Any]) -> str:
    """my_grey(rgb): (3,H,W) in [0, 1] -> (1,H,W) ITU-R 601-2 luma, on a photo crop and random pixels."""
    cases = [
        ("a 40x56 RGB photo crop", photo("coffee", 150, 200, 40, 56)),
        ("a random 3x5x7 image", torch.rand(3, 5, 7, generator=torch.Generator().manual_seed(2))),
    ]
    for what, x in cases:
        h, w = x.shape[-2:]
        got = my_grey(x.clone())
        if not isinstance(got, torch.Tensor):
            raise Wrong(f"on {what}, my_grey should return a torch.Tensor, got {type(got).__name__}")
        if tuple(got.shape) != (1, h, w):
            hint = " (keep the channel dimension)" if tuple(got.shape) == (h, w) else ""
            raise Wrong(f"on {what} of shape {tuple(x.shape)}, got shape {tuple(got.shape)}, "
                        f"expected (1, {h}, {w}){hint}")
        if not got.is_floating_point():
            raise Wrong(f"on {what}, expected a float tensor, got dtype {got.dtype}")
        got = got.detach().double().cpu()
        lo, hi = float(got.min()), float(got.max())
        if not (lo >= -1e-6 and hi <= 1 + 1e-6):
            hint = " (like the input, grey levels lie in [0, 1], not 0..255)" if hi > 2 else ""
            raise Wrong(f"on {what}, values lie in [{lo:.4g}, {hi:.4g}], expected [0, 1]{hint}")
        want = images.rgb_to_grey(x).double()
        diff = (got - want).abs()
        if float(diff.max()) > 1e-4:
            _, r, c = (int(i) for i in torch.nonzero(diff == diff.max())[0])
            hint = ""
            if torch.allclose(got, x.double().mean(0, keepdim=True), atol=1e-4):
                hint = " (the eye is not equally sensitive to red, green and blue)"
            raise Wrong(f"on {what}, at row {r}, column {c} got {float(got[0, r, c]):.4f}, "
                        f"expected {float(want[0, r, c]):.4f}{hint}")
    return f"my_grey matches the ITU-R 601-2 luma on {len(cases)} images"


def reference_global_ssim(x: torch.Tensor, y: torch.Tensor, data_range: float = 1.0, ddof: int = 0) -> float:
    """SSIM with one window covering the whole image, in float64; statistics divide by N - ``ddof``."""
    x, y = x.double().flatten(), y.double().flatten()
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    n = x.numel() - ddof
    mx, my = x.mean(), y.mean()
    vx, vy = ((x - mx) ** 2).sum() / n, ((y - my) ** 2).sum() / n
    cxy = ((x - mx) * (y - my)).sum() / n
    return float((2 * mx * my + c1) * (2 * cxy + c2) / ((mx ** 2 + my ** 2 + c1) * (vx + vy + c2)))


@register("ex-00-3")
def _check_global_ssim(global_ssim: Callable[..., Any]) -> str:
    """global_ssim(x, y, data_range=1.0): one-window SSIM, on photos, constant images and a low-contrast 8x8 pair."""
    grey = photo("camera", 200, 150, 32, 32, grey=True)
    g = torch.Generator().manual_seed(3)
    low = 0.5 + 0.015 * torch.randn(1, 8, 8, generator=g)  # variances near C2: normalisation matters
    cases = [
        ("a 32x32 grey crop and a noisy copy (default data_range)", grey, noisy(grey, 0.1, 4), None),
        ("a grey crop and itself", grey, grey.clone(), 1.0),
        ("two constant images (0.2 and 0.6)", torch.full((1, 8, 8), 0.2), torch.full((1, 8, 8), 0.6), 1.0),
        ("a low-contrast 8x8 image and a noisy copy", low, low + 0.03 * torch.randn(1, 8, 8, generator=g), 1.0),
        ("the 32x32 pair scaled to 0..255, data_range=255", grey * 255, noisy(grey, 0.1, 4) * 255, 255.0),
    ]
    for what, x, y, data_range in cases:
        got = global_ssim(x, y) if data_range is None else global_ssim(x, y, data_range=data_range)
        got = number(got, "global_ssim's result")
        data_range = 1.0 if data_range is None else data_range
        want = reference_global_ssim(x, y, data_range)
        if close(got, want, 1e-4):
            continue
        hint = ""
        if not math.isfinite(got):
            hint = " (what keeps the fraction defined when an image is flat?)"
        elif close(got, reference_global_ssim(x, y, data_range, ddof=1), 1e-4):
            hint = " (check what the variances and the covariance are divided by)"
        raise Wrong(f"on {what}, got {got:.6f}, expected {want:.6f}{hint}")
    return f"global_ssim matches the reference on {len(cases)} image pairs"
