"""Chapter 01 (learning SSIM quality maps): the checks of the SSIM map, impulse noise and the U-Net's size."""
from __future__ import annotations

from typing import Any, Callable

import torch

from i2icourse.checks import Wrong, register
from i2icourse.checks.helpers import noisy, number, photo

#: Every name here, the private ones too: the package re-exports them, and the grader finds a
#: probe (or a function handed to an answer) by its name in the package.
__all__ = ["_check_ssim_map", "_check_impulse_version", "_check_unet_params"]


@register("ex-01-1")
def _check_ssim_map(my_ssim_map: Callable[..., Any]) -> str:
    """my_ssim_map(x, y): the SSIM map (1,H,W) of two grey (1,H,W) images in [0, 1] (Gaussian 11x11, sigma 1.5)."""
    from i2icourse import distortions, metrics
    x = photo("camera", 100, 150, 48, 48, grey=True)
    cases = [("camera vs a noisy copy", noisy(x, 0.1, 1), x),
             ("camera vs a blurred copy", distortions.gaussian_blur(x, 1.5), x),
             ("camera vs itself", x, x)]
    for what, a, b in cases:
        got = my_ssim_map(a.clone(), b.clone())
        if not isinstance(got, torch.Tensor) or got.shape != a.shape:
            raise Wrong(f"on {what}, expected a tensor of shape {tuple(a.shape)}, got "
                        f"{tuple(got.shape) if isinstance(got, torch.Tensor) else type(got).__name__}")
        want = metrics.ssim(a, b, full=True)[1]
        gi, wi = got[..., 5:-5, 5:-5].float(), want[..., 5:-5, 5:-5]   # borders may be padded any way
        if torch.allclose(gi, wi, atol=1e-3):
            continue
        hint = ""
        if float((gi - wi).abs().mean()) < 0.05:
            hint = " (close: check the constants C1 = (0.01 L)^2, C2 = (0.03 L)^2 and divide by N, not N - 1)"
        raise Wrong(f"on {what}, the map differs from SSIM's by up to {float((gi - wi).abs().max()):.3g} "
                    f"away from the border{hint}")
    return "my_ssim_map matches metrics.ssim(full=True) away from the border on 3 image pairs"


@register("ex-01-2")
def _check_impulse_version(my_impulse_version: Callable[..., Any]) -> str:
    """my_impulse_version(x, level, seed): salt & pepper noise, level 0 = unchanged, SSIM falling with level."""
    from i2icourse import metrics
    x = photo("astronaut", 0, 100, 64, 64)
    if not torch.equal(my_impulse_version(x.clone(), 0, 0), x):
        raise Wrong("level 0 must return the image unchanged")
    scores = []
    for level in range(1, 6):
        a, b = my_impulse_version(x.clone(), level, 3), my_impulse_version(x.clone(), level, 3)
        if not isinstance(a, torch.Tensor) or a.shape != x.shape:
            raise Wrong(f"level {level}: expected a tensor of shape {tuple(x.shape)}")
        if not torch.equal(a, b):
            raise Wrong(f"level {level}: two calls with the same seed differ (use a seeded torch.Generator)")
        if float(a.min()) < 0 or float(a.max()) > 1:
            raise Wrong(f"level {level}: values leave [0, 1]")
        scores.append(float(metrics.ssim(a, x)))
    if scores[0] > 0.98:
        raise Wrong(f"level 1 is invisible (SSIM {scores[0]:.3f}): start with a stronger distortion")
    if any(s2 >= s1 for s1, s2 in zip(scores, scores[1:])):
        raise Wrong("SSIM must fall as the level rises, got " + ", ".join(f"{s:.3f}" for s in scores))
    return "levels 0..5 are deterministic and SSIM falls: " + ", ".join(f"{s:.2f}" for s in scores)


@register("ex-01-3")
def _check_unet_params(unet_param_count: Callable[[int, int], Any]) -> str:
    """unet_param_count(levels, base): the parameters of ssim_map_nets.UNet(levels, base), by formula."""
    from i2icourse.models.layers import count_parameters
    from i2icourse.models.ssim_map_nets import UNet
    for levels, base in [(4, 16), (5, 32), (2, 8), (3, 24)]:
        got = number(unet_param_count(levels, base), "unet_param_count's result")
        want = count_parameters(UNet(levels, base))
        if got == want:
            continue
        hint = ""
        diff = want - got
        if diff > 0 and diff == 2 * sum(2 * base * 2 ** i for i in range(levels)) + 2 * sum(
                2 * base * 2 ** i for i in range(levels - 1)):
            hint = " (every BatchNorm has a weight and a bias per channel)"
        raise Wrong(f"for levels={levels}, base={base}: got {got:,.0f}, expected {want:,}{hint}")
    return "unet_param_count matches count_parameters for 4 U-Nets"
