"""Super-resolution evaluation as the SR literature does it: Y-channel PSNR and SSIM, border shaved.

For each test image (see :mod:`i2icourse.data.sr` for the pair): crop the HR image to a multiple of the
scale, make the LR image by antialiased bicubic downscaling (8 bits), upscale it back by bicubic, take
the MATLAB Y channel, let the method improve the upscaled Y, clamp to [0, 1], drop a border of
``scale`` pixels from both images and measure PSNR and SSIM against the HR Y. PSNR is averaged per
image (the mean of the images' PSNRs, not the PSNR of the pooled error), as published tables do.

The bicubic baseline is the same code with the identity as the "method" (:func:`bicubic`), so any
difference between two rows of a table comes from the method alone.

    sets = {"Set5": sr_eval.load_set("Set5"), "Set14": sr_eval.load_set("Set14")}
    table = sr_eval.evaluate({"bicubic": sr_eval.bicubic, "SRCNN": sr_eval.upscaler(net)}, sets, scale=4)
    sr_eval.per_set(table)
"""
from __future__ import annotations

from typing import Callable, Mapping

import pandas as pd
import torch
from torch import nn

from i2icourse import images as image_io, metrics
from i2icourse.inference import predict
from i2icourse.data.sr import degrade, load_photos, sr_pair
from i2icourse.tiling import tiled_apply

#: A method: a batch (1, 1, H, W) of bicubic-upscaled Y -> its high-resolution estimate, same shape.
Upscaler = Callable[[torch.Tensor], torch.Tensor]


def bicubic(y_in: torch.Tensor) -> torch.Tensor:
    """The bicubic baseline: the upscaled input itself."""
    return y_in


def upscaler(net: nn.Module, device: torch.device | str | None = None) -> Upscaler:
    """``net`` as an :data:`Upscaler`: eval mode and no gradients while it runs, then its mode restored."""
    return lambda y_in: predict(net, y_in, batch_size=len(y_in), device=device)


def upscale_photo(net: nn.Module, image: torch.Tensor, scale: int, tile: int = 256, overlap: int = 64) -> torch.Tensor:
    """A real low-resolution photo ``image`` (3, H, W) upscaled ``scale`` times: bicubic, then ``net`` on
    the Y channel, tile by tile with blending (any size fits in memory); colour from the bicubic Cb, Cr.

    Unlike :func:`evaluate_image` nothing is shrunk first: the photo itself is the input (chapter 3's
    "your own photo", and ``python -m i2icourse apply`` for an SRCNN checkpoint).
    """
    up = image_io.rgb_to_ycbcr(image_io.resize(image, scale=scale).clamp(0, 1))         # (3, sH, sW)
    y = tiled_apply(lambda y_in: upscaler(net)(y_in).clamp(0, 1), up[:1], tile, overlap)
    return image_io.ycbcr_to_rgb(torch.cat([y.to(up), up[1:]])).clamp(0, 1)


def load_set(name: str) -> dict[str, torch.Tensor]:
    """An evaluation set by dataset name (``"Set5"``, ``"Set14"``, ``"BSDS500/test"``) or folder, RGB by image name."""
    return load_photos(name)


def evaluate_image(method: Upscaler, image: torch.Tensor, scale: int, shave: int | None = None
                   ) -> tuple[float, float, torch.Tensor]:
    """``(psnr, ssim, y_out)`` of ``method`` on one RGB (or grey) HR image at ``scale``; shaves ``scale`` px."""
    border = scale if shave is None else shave
    y_in, y_hr = sr_pair(image, scale)
    y_out = method(y_in.unsqueeze(0))[0].float().clamp(0, 1)   # (1, H, W)
    if y_out.shape != y_hr.shape:
        raise image_io.ImageError(f"evaluate: the method returned shape {tuple(y_out.shape)} for an input of "
                            f"shape {tuple(y_in.shape)}; it must keep the size")
    a, b = image_io.shave(y_out, border), image_io.shave(y_hr, border)
    return float(metrics.psnr(a, b)), float(metrics.ssim(a, b)), y_out


def evaluate(methods: Mapping[str, Upscaler] | Upscaler, sets: Mapping[str, Mapping[str, torch.Tensor]],
             scale: int = 4, shave: int | None = None) -> pd.DataFrame:
    """Per-image table: one row per (method, set, image) with its Y-channel ``PSNR`` and ``SSIM``.

    ``methods`` maps a name to an :data:`Upscaler` (a single callable is named ``"method"``); ``sets``
    maps a set name to ``{image name: (C,H,W) HR image}``. Identical images give PSNR = inf (and the
    set's mean PSNR is inf too), never an error.
    """
    if callable(methods):
        methods = {"method": methods}
    rows = []
    for method_name, method in methods.items():
        for set_name, images in sets.items():
            for image_name, image in images.items():
                p, s, _ = evaluate_image(method, image, scale, shave)
                rows.append({"method": method_name, "set": set_name, "image": image_name, "scale": scale,
                             "PSNR": p, "SSIM": s})
    return pd.DataFrame(rows, columns=["method", "set", "image", "scale", "PSNR", "SSIM"])


def per_set(table: pd.DataFrame) -> pd.DataFrame:
    """Per-set means of an :func:`evaluate` table: rows (set, method) in order of appearance, PSNR and SSIM."""
    return (table.groupby(["set", "method"], sort=False)[["PSNR", "SSIM"]].mean())


def colour(y: torch.Tensor, image: torch.Tensor, scale: int) -> torch.Tensor:
    """An RGB picture of a super-resolved Y: ``y`` (1,H,W) with the bicubic Cb and Cr of ``image``, for figures.

    Methods work on Y only; colour comes from the bicubic-upscaled LR image, as in SRCNN's figures.
    """
    image = image.expand(3, *image.shape[-2:]) if image.shape[-3] == 1 else image
    hr = image_io.crop_to_multiple(image, scale)
    up = image_io.resize(degrade(hr, scale), size=tuple(hr.shape[-2:]))
    ycbcr = image_io.rgb_to_ycbcr(up)
    return image_io.ycbcr_to_rgb(torch.cat([y.to(ycbcr), ycbcr[1:]], dim=0))
