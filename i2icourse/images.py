"""Images in and out: files <-> float tensors in [0, 1] of shape (C, H, W), colour spaces, resizing, crops.

One image path for the whole course: every dataset and notebook reads and writes images here, so
every image is checked the same way, and a bad file is reported with its name and its problem.

This module imports nothing else of the package.
"""
from __future__ import annotations

import operator
import warnings
from pathlib import Path
from typing import Literal, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps, UnidentifiedImageError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm")

Mode = Literal["rgb", "grey", "keep"]


class ImageError(ValueError):
    """An image file or tensor that cannot be used, with what is wrong and where."""


# ----------------------------------------------------------------------------------------------
# Checks
# ----------------------------------------------------------------------------------------------

def check_image(x: torch.Tensor, name: str = "image", channels: Sequence[int] | None = None,
                batched: bool | None = None, value_range: tuple[float, float] = (0.0, 1.0)) -> torch.Tensor:
    """Raise :class:`ImageError` unless ``x`` is a float image in [0, 1], (C,H,W) or (N,C,H,W).

    ``channels`` restricts the allowed channel counts (e.g. ``(1, 3)``); ``batched`` requires (or
    forbids) the batch dimension; ``value_range`` is the allowed range, ``(-1, 1)`` for images
    mapped by :func:`to_signed`. Returns ``x`` so the check can wrap an expression.
    """
    if not isinstance(x, torch.Tensor):
        raise ImageError(f"{name}: expected a torch.Tensor, got {type(x).__name__}")
    dims = {3: "(C, H, W)", 4: "(N, C, H, W)"}
    if batched is True and x.dim() != 4 or batched is False and x.dim() != 3 or x.dim() not in dims:
        want = dims[4] if batched else dims[3] if batched is False else "(C, H, W) or (N, C, H, W)"
        raise ImageError(f"{name}: expected shape {want}, got {tuple(x.shape)}")
    if not x.is_floating_point():
        raise ImageError(f"{name}: expected a float tensor in {_interval(value_range)}, got dtype {x.dtype} "
                         "(convert with x.float() / 255 for 8-bit data)")
    c = x.shape[-3]
    if channels is not None and c not in channels:
        raise ImageError(f"{name}: expected {' or '.join(map(str, channels))} channels, got {c} "
                         f"(shape {tuple(x.shape)}; channels come first)")
    if x.numel():
        lo, hi = torch.stack([x.min(), x.max()]).tolist()   # one transfer from the device, not two
        if not (np.isfinite(lo) and np.isfinite(hi)):
            raise ImageError(f"{name}: contains NaN or infinite values")
        low, high = value_range
        if lo < low - 1e-6 or hi > high + 1e-6:
            raise ImageError(f"{name}: values must lie in {_interval(value_range)}, found [{lo:.4g}, {hi:.4g}]"
                             + (" (looks like [-1, 1]: use from_signed())" if lo < 0 <= low else "")
                             + (" (looks like 0..255: divide by 255)" if hi > 2 else ""))
    return x


def _interval(value_range: tuple[float, float]) -> str:
    """``(0.0, 1.0)`` -> ``'[0, 1]'``, for messages."""
    return "[{:g}, {:g}]".format(*value_range)


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
    ``keep`` keeps the file's own colour channels: 1 for a grey file, 3 for a colour one (alpha dropped).
    Photos are turned upright by their EXIF orientation, as a phone or a photo viewer shows them.

    Values are scaled by the range the file can hold, never clipped:

    - 8-bit images (and what PIL reads as 8 bits, such as 16-bit colour PNGs) are divided by 255;
    - deeper integer images (16-bit grey PNG, PGM or TIFF, 32-bit integer TIFF) are divided by the
      largest value of their bit depth: 65535 for 16 bits, 2**32 - 1 for 32 bits (2**(bits - 1) - 1
      for signed samples, which must not be negative);
    - floating-point images (TIFF, PIL mode ``F``) are used as they are if they lie in [0, 1] and refused
      otherwise: the file does not say which value is white, and a guess would change the picture.
    """
    if mode not in ("rgb", "grey", "keep"):
        raise ValueError(f"load_image: mode must be 'rgb', 'grey' or 'keep', got {mode!r}")
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such image file")
    if path.is_dir():
        raise ImageError(f"{path}: is a folder, not an image file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                a = _read_upright(im, mode, path)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise ImageError(f"{path}: more pixels than PIL's limit against decompression bombs ({e}). Resize "
                         "the file first (a few thousand pixels a side is plenty here), or, if you trust it, "
                         "raise PIL.Image.MAX_IMAGE_PIXELS before loading it") from None
    except ImageError:
        raise  # our own checks of what was read: already named
    except ValueError as e:  # PIL's limits on compressed metadata (PNG zTXt, iTXt, iCCP chunks), and the like
        if "MAX_TEXT" in str(e):
            raise ImageError(f"{path}: a compressed text or colour-profile chunk unpacks to more than PIL's "
                             f"limit against decompression bombs ({e}). Save the pixels to a new file without "
                             "the metadata, or, if you trust it, raise PIL.PngImagePlugin.MAX_TEXT_CHUNK "
                             "(and MAX_TEXT_MEMORY) before loading it") from None
        raise ImageError(f"{path}: PIL cannot read this image ({e})") from None
    except UnidentifiedImageError:
        raise ImageError(f"{path}: not a readable image (corrupt, or not an image format PIL knows)") from None
    except OSError as e:
        raise ImageError(f"{path}: the image file is damaged or truncated ({e})") from None
    x = from_numpy(a, str(path))
    return x.expand(3, -1, -1).contiguous() if mode == "rgb" and x.shape[0] == 1 else x


def _read_upright(im: Image.Image, mode: Mode, path: Path) -> np.ndarray:
    """The pixels of an open image, turned by its EXIF orientation: uint8 (8-bit modes) or float in [0, 1]."""
    im.load()
    samples = _deep_samples(im, path)   # before the transpose, which returns an image without the file's tags
    im = ImageOps.exif_transpose(im)
    if samples is None:
        return np.asarray(_convert_8bit(im, mode))
    return _scale_deep(np.asarray(im), *samples, f"{path} (PIL mode {im.mode})")


def _convert_8bit(im: Image.Image, mode: Mode) -> Image.Image:
    """An 8-bit image as ``L`` or ``RGB``; for ``keep``, ``L`` if the image has no colour bands. Alpha dropped."""
    if mode == "keep":
        mode = "grey" if set(im.getbands()) <= {"1", "L", "A", "a"} else "rgb"
    if mode == "grey":
        return im.convert("L")
    if im.mode in ("P", "PA") and (im.mode == "PA" or "transparency" in im.info):
        im = im.convert("RGBA")   # PIL wants palette transparency resolved through RGBA
    return im.convert("RGB")


#: The PIL modes whose samples are deeper than 8 bits, read without PIL's 8-bit conversion (which clips).
_DEEP_MODES = ("I", "I;16", "I;16L", "I;16B", "I;16N", "F")


def _deep_samples(im: Image.Image, path: Path) -> tuple[str, int] | None:
    """How a deep image stores a sample: (``uint``, ``int`` or ``float``, bits); None for 8-bit modes.

    A TIFF says so in its BitsPerSample and SampleFormat tags; PIL reads deep PNG and PGM files as
    16-bit samples (a PGM of another maximum is rescaled to 0..65535 by PIL).
    """
    if im.mode not in _DEEP_MODES:
        return None
    if im.mode == "F":
        return "float", 32
    if im.format == "TIFF":
        bits, sample_format = _tiff_tag(im, 258, 16), _tiff_tag(im, 339, 1)   # BitsPerSample, SampleFormat
        return ("int" if sample_format == 2 else "uint"), bits
    if im.format in ("PNG", "PPM"):
        return "uint", 16
    raise ImageError(f"{path}: a {im.format} image of integers (PIL mode {im.mode}) whose bit depth is not "
                     "known here; save it as a 16-bit PNG or TIFF first")


def _tiff_tag(im: Image.Image, tag: int, default: int) -> int:
    """A TIFF tag of a one-sample image (PIL gives some tags as one value per sample)."""
    value = im.tag_v2.get(tag, default)
    return int(value[0] if isinstance(value, tuple) else value)


def _scale_deep(a: np.ndarray, kind: str, bits: int, where: str) -> np.ndarray:
    """(H, W) samples of ``bits`` bits as float32 in [0, 1], by the largest value their format can hold."""
    if kind == "float":
        a = a.astype(np.float32)
        lo, hi = float(a.min()), float(a.max())
        if not (np.isfinite(lo) and np.isfinite(hi)) or lo < -1e-6 or hi > 1 + 1e-6:
            raise ImageError(f"{where}: floating-point values in [{lo:.4g}, {hi:.4g}]; only values in [0, 1] "
                             "can be read, as the file does not say which value is white. Rescale it to "
                             "[0, 1], or save it as a 16-bit PNG, first")
        return a.clip(0, 1)
    if kind == "uint" and bits == 32:
        a = a.view(np.uint32)   # PIL holds 32-bit samples as signed int32: undo the wrap-around
    top = 2 ** (bits - 1) - 1 if kind == "int" else 2 ** bits - 1
    lo, hi = int(a.min()), int(a.max())
    if lo < 0 or hi > top:
        raise ImageError(f"{where}: {bits}-bit {'signed' if kind == 'int' else 'unsigned'} samples in "
                         f"[{lo}, {hi}], outside 0..{top}; an image needs values from 0 (black) to {top} "
                         "(white). Rescale it, and save it as a 16-bit PNG, first")
    return (a.astype(np.float64) / top).astype(np.float32)


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


def _ycbcr(x: torch.Tensor) -> torch.Tensor:
    return _channels_last(_YCBCR, x) + _YCBCR_OFFSET.to(x).view(3, 1, 1)


def rgb_to_ycbcr(x: torch.Tensor) -> torch.Tensor:
    """RGB in [0, 1] -> YCbCr as MATLAB's ``rgb2ycbcr`` (Y in [16, 235]/255), for (3,H,W) or (N,3,H,W)."""
    return _ycbcr(check_image(x, "rgb_to_ycbcr input", channels=(3,)))


def ycbcr_to_rgb(x: torch.Tensor) -> torch.Tensor:
    """The inverse of :func:`rgb_to_ycbcr` (results clamped to [0, 1]), for (3,H,W) or (N,3,H,W)."""
    check_image(x, "ycbcr_to_rgb input", channels=(3,))
    inv = torch.linalg.inv(_YCBCR).to(x)
    return _channels_last(inv, x - _YCBCR_OFFSET.to(x).view(3, 1, 1)).clamp(0, 1)


def rgb_to_y(x: torch.Tensor) -> torch.Tensor:
    """The Y channel of :func:`rgb_to_ycbcr`: the channel super-resolution is measured on. Shape (1,H,W)."""
    return _ycbcr(check_image(x, "rgb_to_y input", channels=(3,)))[..., :1, :, :]


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
    """Bicubic resize of a (C,H,W) or (N,C,H,W) image in [0, 1] to ``size`` (H, W) or by ``scale``.

    The result is clamped to [0, 1] (bicubic overshoots at edges), so the input must lie there too.

    Antialiasing on is what MATLAB's ``imresize`` and PIL do when shrinking; without it, a downscaled
    image aliases and SR baselines come out ~1 dB off.
    """
    if (size is None) == (scale is None):
        raise ValueError("resize: give exactly one of size or scale")
    check_image(x, "resize input")
    batched = x.dim() == 4
    xb = x if batched else x.unsqueeze(0)
    if size is not None:
        hw = (size, size) if isinstance(size, int) else tuple(size)
    else:
        hw = (round(xb.shape[-2] * scale), round(xb.shape[-1] * scale))
    y = F.interpolate(xb, size=hw, mode="bicubic", align_corners=False, antialias=antialias).clamp(0, 1)
    return y if batched else y[0]


def _window(size: int | tuple[int, int], fn: str) -> tuple[int, int]:
    """``size`` (one side, or (height, width)) as (h, w); a ValueError unless both are positive integers."""
    sides = tuple(size) if isinstance(size, (tuple, list)) else (size, size)
    try:
        h, w = (operator.index(side) for side in sides)   # ints and NumPy ints; a float is refused
    except (TypeError, ValueError):
        raise ValueError(f"{fn}: give one side or (height, width) as whole numbers, got {size!r}") from None
    if h < 1 or w < 1 or any(isinstance(side, bool) for side in sides):
        raise ValueError(f"{fn}: window sides must be positive integers, got {size!r}")
    return h, w


def crop(x: torch.Tensor, top: int, left: int, height: int, width: int) -> torch.Tensor:
    """The (height, width) window at (top, left), with an error if it does not fit inside the image."""
    _window((height, width), "crop")
    H, W = x.shape[-2:]
    if top < 0 or left < 0 or top + height > H or left + width > W:
        raise ImageError(f"crop: window {height}x{width} at ({top}, {left}) does not fit in a {H}x{W} image")
    return x[..., top:top + height, left:left + width]


def center_crop(x: torch.Tensor, size: int | tuple[int, int]) -> torch.Tensor:
    """The central ``size`` window of the image."""
    h, w = _window(size, "center_crop")
    H, W = x.shape[-2:]
    return crop(x, (H - h) // 2, (W - w) // 2, h, w)


def random_crop_box(image_hw: tuple[int, int], size: int | tuple[int, int],
                    generator: torch.Generator | None = None) -> tuple[int, int, int, int]:
    """A random (top, left, height, width) window; apply it with :func:`crop` to several images at once."""
    h, w = _window(size, "random_crop_box")
    H, W = image_hw
    if h > H or w > W:
        raise ImageError(f"random crop of {h}x{w} is larger than the {H}x{W} image")
    top = int(torch.randint(0, H - h + 1, (1,), generator=generator))
    left = int(torch.randint(0, W - w + 1, (1,), generator=generator))
    return top, left, h, w


def crop_to_multiple(x: torch.Tensor, multiple: int) -> torch.Tensor:
    """Crop the bottom/right edge so that height and width are multiples of ``multiple`` (SR convention)."""
    if isinstance(multiple, bool) or not hasattr(multiple, "__index__") or multiple < 1:
        raise ValueError(f"crop_to_multiple: multiple must be a positive integer, got {multiple!r}")
    H, W = x.shape[-2:]
    return x[..., : H - H % multiple, : W - W % multiple]


def shave(x: torch.Tensor, border: int) -> torch.Tensor:
    """Drop ``border`` pixels on every side (SR evaluation ignores the border of ``scale`` pixels)."""
    if isinstance(border, bool) or not hasattr(border, "__index__") or border < 0:
        raise ValueError(f"shave: border must be a whole number of pixels, 0 or more, got {border!r}")
    H, W = x.shape[-2:]
    if 2 * border >= min(H, W):
        raise ImageError(f"shave: a border of {border} pixels leaves nothing of a {H}x{W} image")
    return x[..., border:H - border, border:W - border] if border else x
