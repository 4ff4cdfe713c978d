"""Images in and out: files <-> float tensors in [0, 1] of shape (C, H, W), colour spaces, resizing, crops.

One image path for the whole course: every dataset and notebook reads and writes images here, so
every image is checked the same way, and a bad file is reported with its name and its problem.

This module imports nothing else of the package.
"""
from __future__ import annotations

from pathlib import Path
from typing import Literal, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, UnidentifiedImageError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm")

Mode = Literal["rgb", "grey", "keep"]


class ImageError(ValueError):
    """An image file or tensor that cannot be used, with what is wrong and where."""


# ----------------------------------------------------------------------------------------------
# Checks
# ----------------------------------------------------------------------------------------------

def check_image(x: torch.Tensor, name: str = "image", channels: Sequence[int] | None = None,
                batched: bool | None = None) -> torch.Tensor:
    """Raise :class:`ImageError` unless ``x`` is a float image in [0, 1], (C,H,W) or (N,C,H,W).

    ``channels`` restricts the allowed channel counts (e.g. ``(1, 3)``); ``batched`` requires (or
    forbids) the batch dimension. Returns ``x`` so the check can wrap an expression.
    """
    if not isinstance(x, torch.Tensor):
        raise ImageError(f"{name}: expected a torch.Tensor, got {type(x).__name__}")
    dims = {3: "(C, H, W)", 4: "(N, C, H, W)"}
    if batched is True and x.dim() != 4 or batched is False and x.dim() != 3 or x.dim() not in dims:
        want = dims[4] if batched else dims[3] if batched is False else "(C, H, W) or (N, C, H, W)"
        raise ImageError(f"{name}: expected shape {want}, got {tuple(x.shape)}")
    if not x.is_floating_point():
        raise ImageError(f"{name}: expected a float tensor in [0, 1], got dtype {x.dtype} "
                         "(convert with x.float() / 255 for 8-bit data)")
    c = x.shape[-3]
    if channels is not None and c not in channels:
        raise ImageError(f"{name}: expected {' or '.join(map(str, channels))} channels, got {c} "
                         f"(shape {tuple(x.shape)}; channels come first)")
    if x.numel():
        lo, hi = float(x.min()), float(x.max())
        if not (np.isfinite(lo) and np.isfinite(hi)):
            raise ImageError(f"{name}: contains NaN or infinite values")
        if lo < -1e-6 or hi > 1 + 1e-6:
            raise ImageError(f"{name}: values must lie in [0, 1], found [{lo:.4g}, {hi:.4g}]"
                             + (" (looks like [-1, 1]: use from_signed())" if lo < 0 else "")
                             + (" (looks like 0..255: divide by 255)" if hi > 2 else ""))
    return x


# ----------------------------------------------------------------------------------------------
# Files and arrays
# ----------------------------------------------------------------------------------------------

def from_numpy(a: np.ndarray, name: str = "array") -> torch.Tensor:
    """An (H,W) or (H,W,C) array (uint8, uint16, bool or float in [0, 1]) as a (C,H,W) float tensor."""
    a = np.asarray(a)
    if a.ndim == 2:
        a = a[:, :, None]
    if a.ndim != 3:
        raise ImageError(f"{name}: expected an (H, W) or (H, W, C) array, got shape {a.shape}")
    if a.dtype == np.uint8:
        t = torch.from_numpy(a.astype(np.float32) / 255.0)
    elif a.dtype == np.uint16:
        t = torch.from_numpy(a.astype(np.float32) / 65535.0)
    elif a.dtype == bool:
        t = torch.from_numpy(a.astype(np.float32))
    else:
        t = torch.from_numpy(a.astype(np.float32))
    return check_image(t.permute(2, 0, 1).contiguous(), name)


def to_numpy(x: torch.Tensor) -> np.ndarray:
    """A (C,H,W) image as an (H,W,C) float array (or (H,W) for one channel), for plotting and saving."""
    x = x.detach().float().cpu()
    if x.dim() == 4 and x.shape[0] == 1:
        x = x[0]
    if x.dim() != 3:
        raise ImageError(f"to_numpy: expected (C, H, W), got {tuple(x.shape)}")
    a = x.permute(1, 2, 0).numpy()
    return a[:, :, 0] if a.shape[2] == 1 else a


def load_image(path: str | Path, mode: Mode = "rgb") -> torch.Tensor:
    """Read an image file as a float tensor in [0, 1], (3,H,W) for ``rgb``, (1,H,W) for ``grey``.

    ``grey`` uses the ITU-R 601-2 luma transform (PIL's ``L``), as the MS-SSIM paper does;
    ``keep`` keeps the file's own channels (alpha dropped).
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such image file")
    if path.is_dir():
        raise ImageError(f"{path}: is a folder, not an image file")
    try:
        with Image.open(path) as im:
            im.load()
            if mode == "rgb":
                im = im.convert("RGB")
            elif mode == "grey":
                im = im.convert("L")
            elif im.mode not in ("L", "RGB"):
                im = im.convert("RGBA" if "A" in im.getbands() else "RGB")
                if im.mode == "RGBA":
                    im = im.convert("RGB")
            a = np.asarray(im)
    except UnidentifiedImageError:
        raise ImageError(f"{path}: not a readable image (corrupt, or not an image format PIL knows)") from None
    except OSError as e:
        raise ImageError(f"{path}: the image file is damaged or truncated ({e})") from None
    return from_numpy(a, str(path))


def save_image(x: torch.Tensor, path: str | Path) -> Path:
    """Write a (C,H,W) image in [0, 1] to ``path`` (8 bits per channel; format from the suffix)."""
    path = Path(path)
    check_image(x, f"save_image({path.name})", channels=(1, 3))
    a = (to_numpy(x.clamp(0, 1)) * 255.0 + 0.5).astype(np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(a).save(path)
    return path


def list_images(folder: str | Path) -> list[Path]:
    """The image files directly inside ``folder``, sorted by name; an error if there are none."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: no such folder of images")
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not files:
        raise ImageError(f"{folder}: contains no image files ({', '.join(IMAGE_SUFFIXES)})")
    return files


# ----------------------------------------------------------------------------------------------
# Colour spaces
# ----------------------------------------------------------------------------------------------

# ITU-R BT.601 for RGB in [0, 1], as MATLAB's rgb2ycbcr: Y in [16, 235], Cb/Cr in [16, 240] (in /255 units).
_YCBCR = torch.tensor([[65.481, 128.553, 24.966],
                       [-37.797, -74.203, 112.0],
                       [112.0, -93.786, -18.214]]) / 255.0
_YCBCR_OFFSET = torch.tensor([16.0, 128.0, 128.0]) / 255.0

# ITU-R 601-2 luma, as PIL's convert("L"): the grey level of the MS-SSIM paper.
_LUMA = torch.tensor([0.299, 0.587, 0.114])


def _channels_last(m: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return torch.einsum("ij,...jhw->...ihw", m.to(x), x)


def rgb_to_ycbcr(x: torch.Tensor) -> torch.Tensor:
    """RGB in [0, 1] -> YCbCr as MATLAB's ``rgb2ycbcr`` (Y in [16, 235]/255), for (3,H,W) or (N,3,H,W)."""
    check_image(x, "rgb_to_ycbcr input", channels=(3,))
    return _channels_last(_YCBCR, x) + _YCBCR_OFFSET.to(x).view(3, 1, 1)


def ycbcr_to_rgb(x: torch.Tensor) -> torch.Tensor:
    """The inverse of :func:`rgb_to_ycbcr` (results clamped to [0, 1])."""
    inv = torch.linalg.inv(_YCBCR).to(x)
    return _channels_last(inv, x - _YCBCR_OFFSET.to(x).view(3, 1, 1)).clamp(0, 1)


def rgb_to_y(x: torch.Tensor) -> torch.Tensor:
    """The Y channel of :func:`rgb_to_ycbcr`: the channel super-resolution is measured on. Shape (1,H,W)."""
    return rgb_to_ycbcr(x)[..., :1, :, :]


def rgb_to_grey(x: torch.Tensor) -> torch.Tensor:
    """ITU-R 601-2 luma (0.299 R + 0.587 G + 0.114 B) in [0, 1]; one-channel input is returned as is."""
    check_image(x, "rgb_to_grey input", channels=(1, 3))
    if x.shape[-3] == 1:
        return x
    return _channels_last(_LUMA.view(1, 3), x)


def to_signed(x: torch.Tensor) -> torch.Tensor:
    """[0, 1] -> [-1, 1], the range of a tanh generator's output."""
    return x * 2 - 1


def from_signed(x: torch.Tensor) -> torch.Tensor:
    """[-1, 1] -> [0, 1] (clamped), to show or measure a tanh generator's output."""
    return ((x + 1) / 2).clamp(0, 1)


# ----------------------------------------------------------------------------------------------
# Geometry
# ----------------------------------------------------------------------------------------------

def resize(x: torch.Tensor, size: int | tuple[int, int] | None = None, scale: float | None = None,
           antialias: bool = True) -> torch.Tensor:
    """Bicubic resize of a (C,H,W) or (N,C,H,W) image to ``size`` (H, W) or by ``scale``, clamped to [0, 1].

    Antialiasing on is what MATLAB's ``imresize`` and PIL do when shrinking; without it, a downscaled
    image aliases and SR baselines come out ~1 dB off.
    """
    if (size is None) == (scale is None):
        raise ValueError("resize: give exactly one of size or scale")
    batched = x.dim() == 4
    xb = x if batched else x.unsqueeze(0)
    if size is not None:
        hw = (size, size) if isinstance(size, int) else tuple(size)
    else:
        hw = (round(xb.shape[-2] * scale), round(xb.shape[-1] * scale))
    y = F.interpolate(xb, size=hw, mode="bicubic", align_corners=False, antialias=antialias).clamp(0, 1)
    return y if batched else y[0]


def crop(x: torch.Tensor, top: int, left: int, height: int, width: int) -> torch.Tensor:
    """The (height, width) window at (top, left), with an error if it does not fit inside the image."""
    H, W = x.shape[-2:]
    if top < 0 or left < 0 or top + height > H or left + width > W:
        raise ImageError(f"crop: window {height}x{width} at ({top}, {left}) does not fit in a {H}x{W} image")
    return x[..., top:top + height, left:left + width]


def center_crop(x: torch.Tensor, size: int | tuple[int, int]) -> torch.Tensor:
    """The central ``size`` window of the image."""
    h, w = (size, size) if isinstance(size, int) else size
    H, W = x.shape[-2:]
    return crop(x, (H - h) // 2, (W - w) // 2, h, w)


def random_crop_box(image_hw: tuple[int, int], size: int | tuple[int, int],
                    generator: torch.Generator | None = None) -> tuple[int, int, int, int]:
    """A random (top, left, height, width) window; apply it with :func:`crop` to several images at once."""
    h, w = (size, size) if isinstance(size, int) else size
    H, W = image_hw
    if h > H or w > W:
        raise ImageError(f"random crop of {h}x{w} is larger than the {H}x{W} image")
    top = int(torch.randint(0, H - h + 1, (1,), generator=generator))
    left = int(torch.randint(0, W - w + 1, (1,), generator=generator))
    return top, left, h, w


def crop_to_multiple(x: torch.Tensor, multiple: int) -> torch.Tensor:
    """Crop the bottom/right edge so that height and width are multiples of ``multiple`` (SR convention)."""
    H, W = x.shape[-2:]
    return x[..., : H - H % multiple, : W - W % multiple]


def shave(x: torch.Tensor, border: int) -> torch.Tensor:
    """Drop ``border`` pixels on every side (SR evaluation ignores the border of ``scale`` pixels)."""
    return x[..., border:x.shape[-2] - border, border:x.shape[-1] - border] if border else x
