"""Super-resolution data: (bicubic-upscaled low-res Y, high-res Y) pairs, as SRCNN is trained and tested.

The usual SR convention, so that our numbers compare with published ones:

1. crop the high-resolution (HR) image so that its sides are multiples of the scale;
2. make the low-resolution (LR) image by bicubic downscaling *with antialiasing* (``images.resize``, within
   ~0.1 grey level of MATLAB's ``imresize``) and store it in 8 bits, as an LR image file would be;
3. upscale it back by bicubic interpolation to the HR size: the network's input;
4. keep the Y channel of YCbCr as MATLAB computes it (``images.rgb_to_y``): 16 + 65.481 R + 128.553 G +
   24.966 B for RGB in [0, 1], i.e. Y in [16, 235] / 255.

:func:`sr_pair` does this for one image; :class:`SRPatches` cuts aligned 33x33 patches from the pairs
of a set of photos (the SRCNN training set), gathered by :func:`i2icourse.data.photos.load_photos`.

This module knows files and tensors only; it never imports ``models``.
"""
from __future__ import annotations

from typing import Iterable

import torch
from torch.utils.data import Dataset

from i2icourse import images as image_io
from i2icourse.data.photos import SKIMAGE_TRAIN, PhotoSource, load_photos  # noqa: F401 (re-exported)

def y_channel(x: torch.Tensor) -> torch.Tensor:
    """The MATLAB Y channel of a (3,H,W) or (N,3,H,W) RGB image in [0, 1]; grey images count as R = G = B."""
    image_io.check_image(x, "y_channel input", channels=(1, 3))
    if x.shape[-3] == 1:
        x = x.expand(*x.shape[:-3], 3, *x.shape[-2:])
    return image_io.rgb_to_y(x)


def quantize(x: torch.Tensor, bits: int = 8) -> torch.Tensor:
    """Round to ``bits``-bit grey levels, as saving to an 8-bit file does."""
    levels = 2 ** bits - 1
    return torch.round(x * levels) / levels


def degrade(hr: torch.Tensor, scale: int, quantized: bool = True) -> torch.Tensor:
    """The LR image of an HR image whose sides are multiples of ``scale``: antialiased bicubic, 8 bits."""
    H, W = hr.shape[-2:]
    if H % scale or W % scale:
        raise image_io.ImageError(f"degrade: the HR image is {H}x{W}, not a multiple of the scale {scale} "
                                  "(crop it with images.crop_to_multiple first)")
    lr = image_io.resize(hr, size=(H // scale, W // scale))
    return quantize(lr) if quantized else lr


def sr_pair(image: torch.Tensor, scale: int, quantized: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """One image -> ``(y_in, y_hr)``: the bicubic-upscaled LR Y and the HR Y, both (1, H', W').

    ``H'``, ``W'`` are the image's sides cropped down to multiples of ``scale``. The LR image is made in
    RGB (as an LR file would be), then upscaled back and converted to Y.
    """
    if not isinstance(scale, int) or scale < 1:
        raise ValueError(f"sr_pair: scale must be a positive integer, got {scale!r}")
    image_io.check_image(image, "sr_pair image", channels=(1, 3), batched=False)
    hr = image_io.crop_to_multiple(image, scale)
    if min(hr.shape[-2:]) < scale:
        raise image_io.ImageError(f"sr_pair: a {tuple(image.shape[-2:])} image is smaller than the scale {scale}")
    up = image_io.resize(degrade(hr, scale, quantized), size=tuple(hr.shape[-2:]))
    return y_channel(up), y_channel(hr)


# ----------------------------------------------------------------------------------------------
# Training patches
# ----------------------------------------------------------------------------------------------

class SRPatches(Dataset):
    """Aligned patch pairs ``{"A": y_in, "B": y_hr}``, each (1, patch, patch), cut from the SR pairs of some photos.

    ``A`` is the input and ``B`` the target, as in every paired dataset of the course
    (:class:`i2icourse.data.paired.AlignedDataset`), so every recipe's ``step`` reads one batch format.

    Every photo becomes one :func:`sr_pair` at ``scale`` (degraded as a whole, so patches see the same
    LR image the full photo would); ``patches`` windows are then drawn at random positions, spread over
    the photos in proportion to their areas, once, from ``seed``: a fixed training set, as the paper's
    5 million cropped sub-images. Photos smaller than a patch are skipped. ``source`` is anything
    :func:`load_photos` accepts.
    """

    def __init__(self, source: PhotoSource | Iterable[PhotoSource], scale: int = 4, patch: int = 33,
                 patches: int = 10_000, seed: int = 0, quantized: bool = True):
        for what, value in (("patch", patch), ("patches", patches)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"SRPatches: {what} must be a positive integer, got {value!r}")
        photos = load_photos(source)
        self.scale, self.patch = scale, patch
        self.names: list[str] = []
        self.inputs: list[torch.Tensor] = []
        self.targets: list[torch.Tensor] = []
        for name, x in photos.items():
            if min(x.shape[-2:]) < max(patch, scale):
                continue
            y_in, y_hr = sr_pair(x, scale, quantized)
            self.names.append(name)
            self.inputs.append(y_in)
            self.targets.append(y_hr)
        if not self.inputs:
            raise image_io.ImageError(f"SRPatches: no photo is at least {patch}x{patch} pixels")
        g = torch.Generator().manual_seed(seed)
        areas = torch.tensor([float((t.shape[-2] - patch + 1) * (t.shape[-1] - patch + 1)) for t in self.targets])
        which = torch.multinomial(areas / areas.sum(), patches, replacement=True, generator=g)
        boxes = []
        for i in which.tolist():
            top, left, _, _ = image_io.random_crop_box(tuple(self.targets[i].shape[-2:]), patch, generator=g)
            boxes.append((i, top, left))
        self.boxes = torch.tensor(boxes, dtype=torch.long)   # (patches, 3): photo index, top, left

    def __len__(self) -> int:
        return len(self.boxes)

    def __getitem__(self, k: int) -> dict[str, torch.Tensor]:
        i, top, left = (int(v) for v in self.boxes[k])
        p = self.patch
        return {"A": self.inputs[i][:, top:top + p, left:left + p],    # (1, p, p) bicubic-upscaled LR Y
                "B": self.targets[i][:, top:top + p, left:left + p]}   # (1, p, p) HR Y

    def __repr__(self) -> str:
        return (f"SRPatches({len(self)} patches of {self.patch}x{self.patch} at x{self.scale} "
                f"from {len(self.names)} photos)")
