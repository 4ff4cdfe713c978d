"""Chapter 02 (autoencoders trained with MS-SSIM): the checks of MS-SSIM's windows and the mixed loss."""
from __future__ import annotations

from typing import Any, Callable

import torch

from i2icourse.checks import Wrong, register
from i2icourse.checks.helpers import close, noisy, photo

#: Every name here, the private ones too: the package re-exports them, and the grader finds a
#: probe (or a function handed to an answer) by its name in the package.
__all__ = ["reference_window_sizes", "_floor_window_sizes", "_check_window_sizes", "_crop_pair",
           "_check_mixed_loss"]


def reference_window_sizes(side: int, scales: int = 5, win_size: int = 11) -> list[int]:
    """The SSIM window at each MS-SSIM scale under the course's rule (``metrics.ms_ssim``): the Gaussian
    trimmed to the largest odd size that fits the image at that scale; sides halve rounding up."""
    sizes = []
    for _ in range(scales):
        sizes.append(min(win_size, side if side % 2 else side - 1))
        side = (side + 1) // 2
    return sizes


def _floor_window_sizes(side: int, scales: int, win_size: int) -> list[int]:
    sizes = []
    for _ in range(scales):
        sizes.append(min(win_size, side if side % 2 else side - 1))
        side = side // 2
    return sizes


@register("ex-02-1")
def _check_window_sizes(window_sizes: Callable[..., Any]) -> str:
    """window_sizes(side, scales=5, win_size=11) -> list of the window side at each scale."""
    cases = [(96, 5, 11), (48, 5, 11), (33, 5, 11), (161, 5, 11), (100, 5, 11), (35, 4, 7), (256, 5, 11)]
    for side, scales, win in cases:
        got = window_sizes(side, scales=scales, win_size=win)
        if not isinstance(got, (list, tuple)) or not all(isinstance(k, int) for k in got):
            raise Wrong(f"for side {side}, expected a list of ints, got {got!r}")
        want = reference_window_sizes(side, scales, win)
        if list(got) != want:
            hint = ""
            if len(got) != scales:
                hint = f" (one window per scale: {scales} scales)"
            elif any(k % 2 == 0 for k in got):
                hint = " (a Gaussian window has an odd side, so that it has a centre pixel)"
            elif list(got) == _floor_window_sizes(side, scales, win):
                hint = " (how does a 2x2 average pool with ceil_mode=True round an odd side?)"
            raise Wrong(f"for a {side}-pixel image, {scales} scales, window {win}: got {list(got)}{hint}")
    return f"window_sizes follows the trimming rule on {len(cases)} image sizes"


def _crop_pair(seed: int, side: int = 96) -> tuple[torch.Tensor, torch.Tensor]:
    x = photo("camera", 150 + 7 * seed, 200 + 11 * seed, side, side).unsqueeze(0)   # (1, 1, side, side)
    return x, noisy(x, 0.08, seed)


@register("ex-02-2")
def _check_mixed_loss(mixed_loss: Callable[..., Any]) -> str:
    """mixed_loss(pred, target, alpha=0.84) = alpha (1 - MS-SSIM) + (1 - alpha) L1, on grey 96 and 48 px pairs."""
    from i2icourse import metrics

    cases = [(0, 96, None), (1, 96, 0.5), (2, 48, 0.84), (3, 48, 1.0), (4, 96, 0.0)]
    for seed, side, alpha in cases:
        target, pred = _crop_pair(seed, side)
        pred = pred.clone().requires_grad_()
        got = mixed_loss(pred, target) if alpha is None else mixed_loss(pred, target, alpha=alpha)
        if not isinstance(got, torch.Tensor) or got.numel() != 1:
            raise Wrong("mixed_loss should return a one-element tensor (a loss to call .backward() on)")
        if not got.requires_grad:
            raise Wrong("mixed_loss's result has no gradient: compute it with torch operations on pred")
        a = 0.84 if alpha is None else alpha
        ms = float(metrics.ms_ssim(pred.detach(), target).mean())
        l1 = float((pred.detach() - target).abs().mean())
        want = a * (1 - ms) + (1 - a) * l1
        value = float(got.detach())
        if close(value, want, 1e-4):
            continue
        hint = ""
        if close(value, (1 - a) * (1 - ms) + a * l1, 1e-4):
            hint = " (alpha weighs the MS-SSIM term)"
        elif close(value, a * ms + (1 - a) * l1, 1e-4):
            hint = " (a loss falls as the images get more alike: use 1 - MS-SSIM)"
        elif close(value, a * (1 - float(metrics.ms_ssim(pred.detach(), target, weights="equal").mean()))
                    + (1 - a) * l1, 1e-4):
            hint = " (Zhao et al. use the standard MS-SSIM exponents)"
        raise Wrong(f"on a {side}x{side} photo crop and a noisy copy with alpha={a}, got {value:.5f}, "
                    f"expected {want:.5f}{hint}")
    return f"mixed_loss matches alpha (1 - MS-SSIM) + (1 - alpha) L1 on {len(cases)} pairs"
