"""Joint geometric augmentation of a (label map, photo) pair: rotation, crop, flips -- one draw for both.

CV2 augmented its drone pairs online with "rotation, cropping, horizontal and vertical flip". For a
paired task the draw must be *shared*: the same angle, the same window, the same flips for A and B,
or the target stops matching the input pixel for pixel. Two details matter:

* **Interpolation per side.** A colour-coded label map holds a few exact class colours; bilinear
  resampling would invent in-between colours (classes that do not exist) along every boundary. Label
  maps are resampled with *nearest neighbour*, photos *bilinearly*.
* **No empty corners.** Rotating a square by theta leaves four empty triangles. We **crop** them
  away: the largest axis-aligned square inside a side-``s`` square rotated by theta has side
  ``s / (|cos theta| + |sin theta|)`` (we keep 2 pixels less: a bilinear tap on its rim would still
  reach the fill); the random crop is drawn inside that square only, so the
  network never sees fill values.

:class:`JointAugment` is a callable ``(A, B) -> (A, B)`` built on ``torchvision.transforms.v2.functional``;
pass it as ``AlignedDataset(..., transform=JointAugment(...))``. This module never imports models.
"""
from __future__ import annotations

import math

import torch
from torchvision.transforms import InterpolationMode
from torchvision.transforms.v2 import functional as TF

Pair = tuple[torch.Tensor, torch.Tensor]


def _check_size(size: int, who: str) -> None:
    """Refuse an output side that is not a positive integer (a negative one would crop to nothing)."""
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise ValueError(f"{who}: size must be a positive integer (the side of the output square), got {size!r}")


def inscribed_side(side: float, degrees: float) -> int:
    """Side of the largest axis-aligned square inside a ``side`` square rotated by ``degrees``."""
    t = math.radians(degrees)
    return int(math.floor(side / (abs(math.cos(t)) + abs(math.sin(t)))))


class JointAugment:
    """Random rotation (cropped, no empty corners), random crop, h/v flips, resize to ``size`` -- shared by A and B.

    ``degrees``: angles drawn uniformly in [-degrees, degrees]; ``scale``: the crop side is drawn in
    [scale * s, s], s the valid side after rotation; ``hflip``/``vflip``: probabilities;
    ``nearest``: which sides are label maps (nearest neighbour), e.g. ``("A",)``; the others are
    resampled bilinearly (antialiased when shrinking). ``generator`` makes draws repeatable.
    Inputs (C, H, W) in [0, 1] of equal H, W; outputs (C, size, size).
    """

    def __init__(self, size: int, degrees: float = 15.0, scale: float = 0.7, hflip: float = 0.5,
                 vflip: float = 0.5, nearest: tuple[str, ...] = ("A",), generator: torch.Generator | None = None):
        _check_size(size, "JointAugment")
        if not 0 < scale <= 1:
            raise ValueError(f"JointAugment: scale must lie in (0, 1], got {scale}")
        self.size, self.degrees, self.scale, self.hflip, self.vflip = size, degrees, scale, hflip, vflip
        self.nearest, self.generator = tuple(nearest), generator

    def _u(self) -> float:
        return float(torch.rand((), generator=self.generator))

    def draw(self, h: int, w: int) -> dict:
        """The random parameters for an H x W pair: angle, crop box (top, left, side), flips."""
        angle = (2 * self._u() - 1) * self.degrees
        # the square without empty corners, less a 2-pixel margin: bilinear taps at its rim would reach the fill
        valid = max(1, min(inscribed_side(min(h, w), angle) - 2, h, w))
        side = max(1, round(valid * (self.scale + (1 - self.scale) * self._u())))
        # the valid square is centred; the crop lies anywhere inside it
        top0, left0 = (h - valid) // 2, (w - valid) // 2
        top = top0 + int(self._u() * (valid - side + 1))
        left = left0 + int(self._u() * (valid - side + 1))
        return {"angle": angle, "top": top, "left": left, "side": side,
                "hflip": self._u() < self.hflip, "vflip": self._u() < self.vflip}

    def apply(self, x: torch.Tensor, p: dict, nearest: bool) -> torch.Tensor:
        """Apply drawn parameters ``p`` to one image, with nearest or bilinear resampling."""
        mode = InterpolationMode.NEAREST if nearest else InterpolationMode.BILINEAR
        x = TF.rotate(x, p["angle"], interpolation=mode)             # (C, H, W), corners empty ...
        x = TF.crop(x, p["top"], p["left"], p["side"], p["side"])     # ... and cropped away here
        x = TF.resize(x, [self.size, self.size], interpolation=mode, antialias=not nearest)
        if p["hflip"]:
            x = x.flip(-1)
        if p["vflip"]:
            x = x.flip(-2)
        return x.clamp(0, 1)

    def __call__(self, a: torch.Tensor, b: torch.Tensor) -> Pair:
        if a.shape[-2:] != b.shape[-2:]:
            raise ValueError(f"JointAugment: A {tuple(a.shape)} and B {tuple(b.shape)} are not aligned")
        p = self.draw(*a.shape[-2:])
        return self.apply(a, p, "A" in self.nearest), self.apply(b, p, "B" in self.nearest)


class JointResize:
    """No augmentation: resize both images to ``size`` x ``size`` (nearest for the ``nearest`` sides)."""

    def __init__(self, size: int, nearest: tuple[str, ...] = ("A",)):
        _check_size(size, "JointResize")
        self.size, self.nearest = size, tuple(nearest)

    def _one(self, x: torch.Tensor, nearest: bool) -> torch.Tensor:
        mode = InterpolationMode.NEAREST if nearest else InterpolationMode.BILINEAR
        return TF.resize(x, [self.size, self.size], interpolation=mode, antialias=not nearest).clamp(0, 1)

    def __call__(self, a: torch.Tensor, b: torch.Tensor) -> Pair:
        return self._one(a, "A" in self.nearest), self._one(b, "B" in self.nearest)
