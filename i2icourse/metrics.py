"""Image quality on tensors: PSNR, SSIM (its map and its three components), MS-SSIM, UQI and VIF; and two
no-reference statistics of generated images, texture energy and checkerboard (chapter 4).

Every metric takes two float images in [0, 1], either one image (C,H,W) or a batch (N,C,H,W) of
the same shape, and scores each image on its own: a batch gives a tensor of shape (N,), one image a
0-dim tensor. Average over a test set yourself (``score.mean()``), so per-image numbers stay
available for tables and worst-case examples. Everything is plain batched torch: it runs on the GPU
and, except where noted, is differentiable.

Reference implementations, and how closely each function follows them (tested in
``tests/test_metrics.py``):

* :func:`psnr` -- ``skimage.metrics.peak_signal_noise_ratio``.
* :func:`ssim` -- ``skimage.metrics.structural_similarity(gaussian_weights=True, sigma=1.5,
  use_sample_covariance=False, data_range=1)``, i.e. Wang et al. 2004: the map pixel for pixel
  (borders by symmetric padding), the score as the mean of the map without its 5-pixel border,
  which is also ``pytorch_msssim.ssim``'s number.
* :func:`ms_ssim` -- Wang, Simoncelli & Bovik 2003; ``pytorch_msssim.ms_ssim``'s number (to 1e-5, the
  rounding of its float32 window) on images of at least 176 pixels whose sides are multiples of 16,
  and also defined on small images, down to 33x33 (see there).
* :func:`uqi` -- Wang & Bovik 2002, the authors' ``img_qi.m``.
* :func:`vifp` -- Sheikh & Bovik 2006, the authors' pixel-domain ``vifp_mscale.m`` (as ``piq.vif_p``).

Colour: SSIM, MS-SSIM and UQI measure each channel and average the scores (as skimage's
``channel_axis`` does); VIF measures the luma 0.299 R + 0.587 G + 0.114 B, as its authors' grey-level
code and ``piq`` do; PSNR pools the squared error over all channels.

Taught in chapter 0 (``notebooks/00_measuring_image_quality.ipynb``: every metric, and the code of
the SSIM map); chapter 1 learns the SSIM map, chapter 2 trains with MS-SSIM and shows its scales.
This module imports only torch and the image checks of :mod:`i2icourse.images`.
"""
from __future__ import annotations

import math
from typing import Literal, Sequence

import torch
import torch.nn.functional as F

from i2icourse.images import ImageError, check_image

#: The MS-SSIM exponents of Wang, Simoncelli & Bovik 2003, finest scale first (they sum to 1).
MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)

Weights = Sequence[float] | Literal["standard", "equal"] | None


# ----------------------------------------------------------------------------------------------
# Shared plumbing: input checks, windows, filtering
# ----------------------------------------------------------------------------------------------

def _pair(x: torch.Tensor, y: torch.Tensor, fn: str, min_size: int = 1,
          why: str = "") -> tuple[torch.Tensor, torch.Tensor, bool]:
    """Check both images, then return them as a batch of one dtype and whether the input was batched."""
    check_image(x.detach() if isinstance(x, torch.Tensor) else x, f"{fn}: x")
    check_image(y.detach() if isinstance(y, torch.Tensor) else y, f"{fn}: y")
    if x.shape != y.shape:
        raise ImageError(f"{fn}: x and y must have the same shape, got {tuple(x.shape)} and {tuple(y.shape)}")
    h, w = x.shape[-2:]
    if min(h, w) < min_size:
        raise ImageError(f"{fn}: images must be at least {min_size}x{min_size} pixels{why}, got {h}x{w}")
    dtype = torch.promote_types(x.dtype, y.dtype)
    batched = x.dim() == 4
    x, y = x.to(dtype), y.to(dtype)
    return (x, y, True) if batched else (x.unsqueeze(0), y.unsqueeze(0), False)


def _unbatch(t: torch.Tensor, batched: bool) -> torch.Tensor:
    return t if batched else t[0]


def _accurate_dtype(x: torch.Tensor) -> torch.dtype:
    """float64 for sums where float32 rounding matters (UQI, VIF); float32 on Apple's MPS (no float64)."""
    return torch.float32 if x.device.type == "mps" else torch.float64


def gaussian_window(size: int = 11, sigma: float = 1.5, device: torch.device | str | None = None,
                    dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """The 1-D Gaussian window of ``size`` taps, summing to 1 (its outer product is the 2-D SSIM window).

    Wang et al. 2004 use 11 taps with sigma 1.5 -- the same window as ``scipy.ndimage.gaussian_filter``
    with ``truncate=3.5``, which skimage uses.
    """
    if size < 1 or size % 2 == 0:
        raise ValueError(f"gaussian_window: size must be a positive odd number, got {size}")
    r = torch.arange(size, device=device, dtype=dtype) - size // 2
    g = torch.exp(-r ** 2 / (2 * sigma ** 2))
    return g / g.sum()


def _pad_symmetric(x: torch.Tensor, p: int) -> torch.Tensor:
    """Pad the last two dims by ``p`` mirroring *with* the edge pixel: (c b a | a b c d | d c b).

    This is NumPy's ``mode='symmetric'`` and scipy.ndimage's ``mode='reflect'`` (what skimage's SSIM
    uses). ``F.pad(mode='reflect')`` is different: it mirrors *without* the edge pixel (d c b | a b c d).
    """
    if p == 0:
        return x
    x = torch.cat([x[..., :p, :].flip(-2), x, x[..., -p:, :].flip(-2)], dim=-2)
    return torch.cat([x[..., :, :p].flip(-1), x, x[..., :, -p:].flip(-1)], dim=-1)


def _filter(x: torch.Tensor, win: torch.Tensor) -> torch.Tensor:
    """Separable 'valid' filtering of every channel of (N,K,H,W) by the 1-D window ``win``: (H-k+1, W-k+1)."""
    k, ch = win.numel(), x.shape[1]
    w = win.to(x).view(1, 1, k, 1).expand(ch, 1, k, 1)
    if x.device.type == "cpu":   # the CPU's (oneDNN) depthwise convolution is ~2x faster channels-last
        x = x.contiguous(memory_format=torch.channels_last)
    x = F.conv2d(x, w, groups=ch)                       # along H
    return F.conv2d(x, w.transpose(2, 3), groups=ch)    # along W


def _local_stats(x: torch.Tensor, y: torch.Tensor, win: torch.Tensor, pad: bool
                 ) -> tuple[torch.Tensor, ...]:
    """Windowed means, variances and covariance of x and y (population statistics, as Wang et al.).

    ``pad=True`` pads symmetrically so that the maps keep the image size; ``pad=False`` is 'valid'.
    """
    c = x.shape[1]
    # Variances are shift-invariant: centring each channel on its mean first keeps E[x^2] - E[x]^2 from
    # cancelling away float32's digits (10x smaller errors against skimage's float64).
    a = x.mean((2, 3), keepdim=True).detach()
    b = y.mean((2, 3), keepdim=True).detach()
    x, y = x - a, y - b
    if pad:   # padding is a re-indexing, so padding x and y pads their products too
        x, y = _pad_symmetric(x, win.numel() // 2), _pad_symmetric(y, win.numel() // 2)
    stack = torch.cat([x, y, x * x, y * y, x * y], dim=1)   # one filtering pass for all five
    mx, my, mxx, myy, mxy = _filter(stack, win).split(c, dim=1)
    return mx + a, my + b, mxx - mx * mx, myy - my * my, mxy - mx * my


def _check_data_range(data_range: float, fn: str) -> None:
    """Refuse a ``data_range`` (the span of the pixel values) that is not a positive, finite number."""
    value = float(data_range)
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{fn}: data_range must be a positive, finite number (the span of the pixel values: "
                         f"1 for images in [0, 1], 255 for 0..255), got {data_range!r}")


def _ssim_constants(data_range: float, K: Sequence[float]) -> tuple[float, float]:
    _check_data_range(data_range, "ssim")
    return (K[0] * data_range) ** 2, (K[1] * data_range) ** 2


def _luminance_cs(x: torch.Tensor, y: torch.Tensor, win: torch.Tensor, data_range: float,
                  K: Sequence[float], pad: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """The luminance map l and the contrast-structure map cs = c * s (with C3 = C2 / 2) of SSIM."""
    c1, c2 = _ssim_constants(data_range, K)
    mx, my, vx, vy, cxy = _local_stats(x, y, win, pad)
    luminance = (2 * mx * my + c1) / (mx * mx + my * my + c1)
    cs = (2 * cxy + c2) / (vx + vy + c2)
    return luminance, cs


# ----------------------------------------------------------------------------------------------
# PSNR
# ----------------------------------------------------------------------------------------------

def psnr(x: torch.Tensor, y: torch.Tensor, data_range: float = 1.0) -> torch.Tensor:
    """Peak signal-to-noise ratio in dB, 10 log10(data_range^2 / MSE), the MSE over all channels.

    Identical images give ``inf``. Symmetric in x and y.
    """
    _check_data_range(data_range, "psnr")
    xb, yb, batched = _pair(x, y, "psnr")
    mse = (xb - yb).pow(2).flatten(1).mean(1)
    return _unbatch(10 * torch.log10(data_range ** 2 / mse), batched)


# ----------------------------------------------------------------------------------------------
# SSIM
# ----------------------------------------------------------------------------------------------

def ssim(x: torch.Tensor, y: torch.Tensor, data_range: float = 1.0, full: bool = False, *,
         win_size: int = 11, sigma: float = 1.5, K: Sequence[float] = (0.01, 0.03)
         ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """Structural similarity (Wang et al. 2004): the score, or with ``full=True`` ``(score, map)``; chapter 0.

    Gaussian 11x11 window with sigma 1.5, K = (0.01, 0.03), population (co)variances -- the paper's
    settings. The map has the image's shape, (N,C,H,W) or (C,H,W); near the border the window is
    completed by symmetric padding, as skimage does. The score leaves those padded borders out: it is
    the mean of the map without its outer ``win_size // 2`` pixels (skimage's and pytorch-msssim's
    convention), over all channels. Images must be at least ``win_size`` pixels on each side.
    """
    xb, yb, batched = _pair(x, y, "ssim", win_size, " (the size of the SSIM window)")
    win = gaussian_window(win_size, sigma, xb.device, xb.dtype)
    if not full:
        luminance, cs = _luminance_cs(xb, yb, win, data_range, K, pad=False)
        return _unbatch((luminance * cs).mean((1, 2, 3)), batched)
    luminance, cs = _luminance_cs(xb, yb, win, data_range, K, pad=True)
    ssim_map = (luminance * cs).contiguous()
    p = win_size // 2
    h, w = ssim_map.shape[-2:]
    score = ssim_map[..., p:h - p, p:w - p].mean((1, 2, 3))
    return _unbatch(score, batched), _unbatch(ssim_map, batched)


def ssim_components(x: torch.Tensor, y: torch.Tensor, data_range: float = 1.0, *, win_size: int = 11,
                    sigma: float = 1.5, K: Sequence[float] = (0.01, 0.03)) -> dict[str, torch.Tensor]:
    """SSIM's three comparisons as maps of the image's shape: ``luminance``, ``contrast``, ``structure``.

    With local means mu, standard deviations sigma and covariance sigma_xy (same window and padding
    as :func:`ssim`)::

        luminance = (2 mu_x mu_y + C1) / (mu_x^2 + mu_y^2 + C1)
        contrast  = (2 sigma_x sigma_y + C2) / (sigma_x^2 + sigma_y^2 + C2)
        structure = (sigma_xy + C3) / (sigma_x sigma_y + C3),    C3 = C2 / 2

    and ``ssim`` = luminance * contrast * structure, the map of ``ssim(x, y, full=True)`` (with
    C3 = C2 / 2 the product of the last two simplifies to (2 sigma_xy + C2) / (sigma_x^2 + sigma_y^2 + C2)).
    Meant for looking at; for training use :func:`ssim`, whose gradient has no square roots.
    """
    _check_data_range(data_range, "ssim_components")
    xb, yb, batched = _pair(x, y, "ssim_components", win_size, " (the size of the SSIM window)")
    win = gaussian_window(win_size, sigma, xb.device, xb.dtype)
    c1, c2 = _ssim_constants(data_range, K)
    c3 = c2 / 2
    mx, my, vx, vy, cxy = _local_stats(xb, yb, win, pad=True)
    sx, sy = vx.clamp_min(0).sqrt(), vy.clamp_min(0).sqrt()
    maps = {
        "luminance": (2 * mx * my + c1) / (mx * mx + my * my + c1),
        "contrast": (2 * sx * sy + c2) / (vx + vy + c2),
        "structure": (cxy + c3) / (sx * sy + c3),
    }
    maps["ssim"] = maps["luminance"] * (2 * cxy + c2) / (vx + vy + c2)
    return {k: _unbatch(v.contiguous(), batched) for k, v in maps.items()}


# ----------------------------------------------------------------------------------------------
# MS-SSIM
# ----------------------------------------------------------------------------------------------

def ms_ssim_weights(weights: Weights) -> tuple[float, ...]:
    """The exponents ``weights`` names, finest scale first: ``'standard'`` (or None) for the paper's, ``'equal'``
    for five 1s, or the sequence itself. Their count is the number of scales, which sets the smallest image
    (``2 ** scales + 1`` pixels), so :mod:`i2icourse.losses` reads it too."""
    if weights is None or isinstance(weights, str) and weights == "standard":
        return MS_SSIM_WEIGHTS
    if isinstance(weights, str):
        if weights == "equal":
            return (1.0,) * len(MS_SSIM_WEIGHTS)
        raise ValueError(f"ms_ssim: weights must be 'standard', 'equal' or a sequence, got {weights!r}")
    weights = tuple(float(w) for w in weights)
    if not weights:
        raise ValueError("ms_ssim: weights must name at least one scale")
    if not all(math.isfinite(w) and w >= 0 for w in weights) or not any(weights):
        raise ValueError(f"ms_ssim: weights must be finite and non-negative, and not all zero (they are the "
                         f"exponents of the scales), got {weights}")
    return weights


def ms_ssim(x: torch.Tensor, y: torch.Tensor, data_range: float = 1.0, weights: Weights = None,
            win_size: int = 11, sigma: float = 1.5, K: Sequence[float] = (0.01, 0.03),
            eps: float = 1e-4) -> torch.Tensor:
    """Multi-scale SSIM (Wang, Simoncelli & Bovik 2003), differentiable, for images from 33x33 pixels up.

    The image is halved four times (2x2 averages, as in the authors' MATLAB code) to give five
    scales. At every scale the contrast-structure term cs is averaged over the image; at the coarsest
    one the luminance term too; the score is the product of these per-scale means raised to the
    ``weights``: ``l_5^w5 * prod_j cs_j^wj``. ``weights`` is ``'standard'`` (or None) for the paper's
    (0.0448, 0.2856, 0.3001, 0.2363, 0.1333), ``'equal'`` for all exponents 1 (as in Snell et al. 2017),
    or a sequence whose length sets the number of scales.

    Small images -- the choice made here. With the paper's 11x11 window, the fifth scale must still be
    11 pixels wide, so the image at least 161 (pytorch-msssim refuses anything smaller, whatever the
    weights); but the fifth scale of a 96x96 STL-10 image is 6x6 pixels, of a 33x33 SRCNN patch 3x3. Instead of dropping scales (which changes
    what the number means) or shrinking the window everywhere (which changes the finest scales too),
    the window is cut only where it does not fit: at each scale it is the paper's Gaussian, trimmed to
    the largest odd size that fits inside the image at that scale. So a 96-pixel image uses 11x11
    windows at the first four scales and 5x5 at the fifth; a 33-pixel patch uses 11, 11, 9, 5 and 3,
    and its coarse scales each compare the whole (tiny) image at once. Five scales need at least
    3x3 pixels at the coarsest scale, hence images of at least 33x33 (``2**scales + 1`` in general).
    From 161 pixels up nothing is trimmed, and the score is ``pytorch_msssim.ms_ssim``'s when the
    sides are multiples of 16, e.g. 176 or 256 (for other sizes pytorch-msssim's zero padding darkens
    the border of odd-sized scales; the MATLAB code's edge replication, used here, does not).

    Terms below ``eps`` are raised to ``eps`` before the powers (pytorch-msssim clips at 0): cs is
    negative where the images are anti-correlated, and a negative number has no real power w (NaN),
    while just above 0 the gradient of t**w, w t**(w-1), explodes.
    Colour images are scored per channel and averaged.
    """
    _check_data_range(data_range, "ms_ssim")
    scales = len(ms_ssim_weights(weights))
    xb, yb, batched = _pair(x, y, "ms_ssim", 2 ** scales + 1,
                            f" ({scales} scales need 3x3 pixels at the coarsest; use fewer weights for "
                            "smaller images)")
    return _unbatch(ms_ssim_core(xb, yb, data_range, weights, win_size, sigma, K, eps), batched)


def ms_ssim_core(xb: torch.Tensor, yb: torch.Tensor, data_range: float = 1.0, weights: Weights = None,
                 win_size: int = 11, sigma: float = 1.5, K: Sequence[float] = (0.01, 0.03),
                 eps: float = 1e-4) -> torch.Tensor:
    """:func:`ms_ssim` of two (N,C,H,W) batches of one dtype, (N,), without its input checks.

    For :mod:`i2icourse.losses`, which checks the pair itself: a network's prediction may leave
    [0, 1] a little, which :func:`ms_ssim` refuses. Its loop over the scales is shown in chapter 2."""
    w = ms_ssim_weights(weights)
    scales = len(w)
    terms = []
    for j in range(scales):
        side = min(xb.shape[-2:])
        k = min(win_size, side if side % 2 else side - 1)      # the window, trimmed to fit
        win = gaussian_window(k, sigma, xb.device, xb.dtype)
        luminance, cs = _luminance_cs(xb, yb, win, data_range, K, pad=False)
        if j < scales - 1:
            terms.append(cs.mean((2, 3)))                       # (N, C)
            xb = F.avg_pool2d(xb, 2, ceil_mode=True)           # odd sides: the last pixel is kept
            yb = F.avg_pool2d(yb, 2, ceil_mode=True)
        else:
            terms.append((luminance * cs).mean((2, 3)))         # l * cs at the coarsest scale
    terms = torch.stack(terms).clamp_min(eps)                   # (scales, N, C)
    exponents = torch.tensor(w, device=terms.device, dtype=terms.dtype).view(-1, 1, 1)
    return terms.pow(exponents).prod(0).mean(1)


# ----------------------------------------------------------------------------------------------
# UQI
# ----------------------------------------------------------------------------------------------

def _box_sum(x: torch.Tensor, size: int) -> torch.Tensor:
    """Sums over every size x size window ('valid'), as MATLAB's ``filter2(ones(size), x, 'valid')``."""
    ch = x.shape[1]
    return F.conv2d(x, x.new_ones(ch, 1, size, size), groups=ch)


def uqi(x: torch.Tensor, y: torch.Tensor, block_size: int = 8, full: bool = False
        ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """Universal Quality Index (Wang & Bovik 2002), following their ``img_qi.m``.

    In every 8x8 window (uniform weights, 'valid' positions only, so the map is (H-7, W-7))::

        Q = 4 sigma_xy mu_x mu_y / ((sigma_x^2 + sigma_y^2) (mu_x^2 + mu_y^2))

    SSIM without its constants C1, C2. Where the formula is 0/0, as ``img_qi.m``: windows where both
    images are flat but not both black score 2 mu_x mu_y / (mu_x^2 + mu_y^2), both black score 1.
    "Flat" means a variance term below 1e-10 of the window's energy -- zero up to rounding (the sums
    are taken in float64). The score is the mean of the map; colour channels are scored separately
    and averaged, as for SSIM. With ``full=True`` returns ``(score, map)``. Symmetric in x and y.
    """
    xb, yb, batched = _pair(x, y, "uqi", block_size, " (the UQI window)")
    dtype = xb.dtype
    xb, yb = xb.to(_accurate_dtype(xb)), yb.to(_accurate_dtype(yb))
    n = block_size ** 2
    sx, sy = _box_sum(xb, block_size), _box_sum(yb, block_size)
    sxx, syy = _box_sum(xb * xb, block_size), _box_sum(yb * yb, block_size)
    sxy = _box_sum(xb * yb, block_size)
    # img_qi.m's names: numerator, denominator1 (variances), img12_sq_sum_mul (squared means)
    sum_mul = sx * sy
    sq_sum_mul = sx * sx + sy * sy
    numerator = 4 * (n * sxy - sum_mul) * sum_mul
    denominator1 = n * (sxx + syy) - sq_sum_mul
    energy = n * (sxx + syy)
    flat = denominator1 <= 1e-10 * energy
    black = sq_sum_mul <= 1e-10 * energy
    denominator1 = torch.where(flat, torch.zeros_like(denominator1), denominator1)
    denominator = denominator1 * sq_sum_mul
    safe = torch.where(denominator != 0, denominator, torch.ones_like(denominator))
    q = torch.where(denominator != 0, numerator / safe, torch.ones_like(numerator))
    lum = 2 * sum_mul / torch.where(black, torch.ones_like(sq_sum_mul), sq_sum_mul)
    q = torch.where(flat & ~black, lum, q)
    q = q.to(dtype)
    score = _unbatch(q.mean((1, 2, 3)), batched)
    return (score, _unbatch(q, batched)) if full else score


# ----------------------------------------------------------------------------------------------
# VIF
# ----------------------------------------------------------------------------------------------

def _luma(x: torch.Tensor) -> torch.Tensor:
    """ITU-R 601-2 luma of (N,3,H,W), as :func:`i2icourse.images.rgb_to_grey`; one channel is kept as is."""
    if x.shape[1] == 1:
        return x
    return 0.299 * x[:, 0:1] + 0.587 * x[:, 1:2] + 0.114 * x[:, 2:3]


def vifp(x: torch.Tensor, y: torch.Tensor, sigma_nsq: float = 2.0) -> torch.Tensor:
    """Visual Information Fidelity, pixel domain (Sheikh & Bovik 2006): x the REFERENCE, y the DISTORTED.

    Not symmetric: how much of the information the reference x carries survives in y. Follows the
    authors' ``vifp_mscale.m``: four scales with Gaussian windows of N = 2^(5-scale)+1 taps
    (17, 9, 5, 3) and sigma N/5, 'valid' filtering and halving between scales, on the 0..255 scale
    with visual noise variance ``sigma_nsq`` = 2. Returns sum of log(1 + g^2 sigma_x^2 / (sigma_v^2 +
    sigma_n^2)) over sum of log(1 + sigma_x^2 / sigma_n^2): 1 for identical images, near 0 for a
    destroyed one, above 1 for a contrast-enhanced y. A flat reference carries no information and
    scores 1 (the MATLAB code divides 0 by 0 there). Colour images are measured on their luma, as
    the authors' grey-level code and ``piq.vif_p`` do. Images must be at least 41x41 pixels.

    ``piq.vif_p`` takes its arguments the other way round: ``vifp(ref, dist) == piq.vif_p(dist, ref)``.
    """
    xb, yb, batched = _pair(x, y, "vifp", 41, " (four scales of valid filtering)")
    dtype = xb.dtype
    ref = _luma(xb).to(_accurate_dtype(xb)) * 255
    dist = _luma(yb).to(_accurate_dtype(yb)) * 255
    num = ref.new_zeros(ref.shape[0])
    den = ref.new_zeros(ref.shape[0])
    tiny = 1e-10
    for scale in range(1, 5):
        n = 2 ** (4 - scale + 1) + 1
        win = gaussian_window(n, n / 5, ref.device, ref.dtype)
        if scale > 1:
            ref, dist = _filter(ref, win)[..., ::2, ::2], _filter(dist, win)[..., ::2, ::2]
        mu1, mu2, sigma1_sq, sigma2_sq, sigma12 = _local_stats(ref, dist, win, pad=False)
        sigma1_sq, sigma2_sq = sigma1_sq.clamp_min(0), sigma2_sq.clamp_min(0)
        g = sigma12 / (sigma1_sq + tiny)
        sv_sq = sigma2_sq - g * sigma12
        # the special cases of vifp_mscale.m, in its order
        ref_flat = sigma1_sq < tiny
        g = torch.where(ref_flat, torch.zeros_like(g), g)
        sv_sq = torch.where(ref_flat, sigma2_sq, sv_sq)
        sigma1_sq = torch.where(ref_flat, torch.zeros_like(sigma1_sq), sigma1_sq)
        dist_flat = sigma2_sq < tiny
        g = torch.where(dist_flat, torch.zeros_like(g), g)
        sv_sq = torch.where(dist_flat, torch.zeros_like(sv_sq), sv_sq)
        sv_sq = torch.where(g < 0, sigma2_sq, sv_sq)
        g = g.clamp_min(0)
        sv_sq = sv_sq.clamp_min(tiny)
        num = num + torch.log10(1 + g * g * sigma1_sq / (sv_sq + sigma_nsq)).sum((1, 2, 3))
        den = den + torch.log10(1 + sigma1_sq / sigma_nsq).sum((1, 2, 3))
    score = torch.where(den > 0, num / torch.where(den > 0, den, torch.ones_like(den)), torch.ones_like(num))
    return _unbatch(score.to(dtype), batched)


# ----------------------------------------------------------------------------------------------
# Two no-reference statistics of generated images (chapter 4): texture energy and checkerboard
# ----------------------------------------------------------------------------------------------

def gradient_energy(x: torch.Tensor) -> torch.Tensor:
    """Mean absolute difference between neighbouring pixels of the luma: how much fine texture an image has.

    A blurred output has less than its target (a ratio below 1), one with invented texture or noise
    more. Chapter 4 compares L1-only and pix2pix outputs with it.
    """
    xb, _, batched = _pair(x, x, "gradient_energy", 2)
    g = _luma(xb)
    dy = (g[..., 1:, :] - g[..., :-1, :]).abs().mean((1, 2, 3))
    dx = (g[..., :, 1:] - g[..., :, :-1]).abs().mean((1, 2, 3))
    return _unbatch((dx + dy) / 2, batched)


def checkerboard(x: torch.Tensor) -> torch.Tensor:
    """The fraction of an image's luma power (its mean removed) at the three Nyquist frequencies.

    A pattern that repeats every 2 pixels -- the checkerboard that strided transposed convolutions
    leave (Odena et al. 2016) -- puts its power exactly there; natural photos put almost none (about
    1e-4). Sides must be even. Chapter 4 measures where its generators' artefacts come from.
    """
    xb, _, batched = _pair(x, x, "checkerboard", 2)
    h, w = xb.shape[-2:]
    if h % 2 or w % 2:
        raise ImageError(f"checkerboard: sides must be even, got {h}x{w}")
    g = _luma(xb)[:, 0].double()
    power = torch.fft.fft2(g - g.mean((-2, -1), keepdim=True)).abs() ** 2
    nyquist = power[:, h // 2, w // 2] + power[:, h // 2, 0] + power[:, 0, w // 2]
    total = power.sum((-2, -1)).clamp_min(1e-20)
    return _unbatch((nyquist / total).to(x.dtype), batched)
