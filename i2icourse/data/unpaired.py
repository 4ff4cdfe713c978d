"""Unaligned (unpaired) datasets for CycleGAN, and an offline unpaired task with a hidden ground truth.

CycleGAN's public datasets (horse2zebra, maps, facades, ...) are folders ``trainA/ trainB/ testA/
testB/`` of images with no correspondence, the layout of the reference pytorch-CycleGAN-and-pix2pix
code. A folder of your own works the same way; the names need not match, nor the counts::

    my_paintings/trainA/0001.jpg  0002.jpg ...      (photos)
    my_paintings/trainB/monet_01.png ...            (paintings)
    my_paintings/testA/ ...   my_paintings/testB/ ...

``UnalignedDataset("my_paintings", 256, load_size=286)`` trains on ``trainA/`` and ``trainB/``;
``phase="test"`` reads ``testA/`` and ``testB/``. A folder is read lazily: its ``.A`` and ``.B`` are
:class:`~i2icourse.data.paired.LazyImages`, file lists that decode an image only when it is indexed,
so a dataset larger than memory still trains. :func:`read_unaligned` reads both domains into memory.

:class:`UnalignedDataset` returns ``{'A': a, 'B': b}`` where ``a`` walks through domain A and ``b``
is drawn from domain B *independently* -- by a generator seeded with ``(seed, index)``, so the draw
is reproducible and does not depend on the order in which items are read. Each image gets its own
random crop and flip.

The offline task (:func:`hidden_truth_task`): domain A is real photos; domain B is *other* real
photos passed through a known transform T. Training never sees a pair, but since T is known, the
"right answer" T(a) for every held-out A photo is known too, and a trained G can be *measured*.

* :func:`film_negative` (T, chapter 6's task) -- a colour film negative ``y_c = base_c (1 - x_c)``
  with an orange base. Invertible: :func:`film_positive` is T^-1, exactly.
* :func:`dusk_grade` -- a per-channel tone curve ``y_c = x_c ** gamma_c``: warm highlights, deep blue
  shadows; invertible (:func:`dusk_ungrade`), but nearly invisible to an instance-normalised
  generator, which chapter 6 measures.
* :func:`flat_colour` -- a non-invertible "poster" look (blur, then 3 levels per channel): many
  photos map to the same flat image, so no F can undo it -- unless G hides information.

Items are float tensors in [0, 1]. This module never imports models.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import torch
from torch.utils.data import Dataset

from i2icourse import distortions
from i2icourse import images as image_io
from i2icourse.data.paired import LazyImages, crop_transform

#: The dusk grade's exponents per channel (R, G, B): < 1 brightens, > 1 darkens.
DUSK_GAMMA = (0.7, 1.0, 1.6)


def dusk_grade(x: torch.Tensor, gamma: Sequence[float] = DUSK_GAMMA) -> torch.Tensor:
    """T: a colour grade and tone curve, ``x_c ** gamma_c`` per RGB channel ((..., 3, H, W) in [0, 1])."""
    g = torch.tensor(gamma, dtype=x.dtype, device=x.device).view(3, 1, 1)
    return x.clamp(0, 1).pow(g)


def dusk_ungrade(y: torch.Tensor, gamma: Sequence[float] = DUSK_GAMMA) -> torch.Tensor:
    """T^-1: ``y_c ** (1 / gamma_c)``."""
    g = torch.tensor(gamma, dtype=y.dtype, device=y.device).view(3, 1, 1)
    return y.clamp(0, 1).pow(1 / g)


#: The film negative's orange base: what each channel (R, G, B) of a clear part of the film transmits.
FILM_BASE = (1.0, 0.8, 0.6)


def film_negative(x: torch.Tensor, base: Sequence[float] = FILM_BASE) -> torch.Tensor:
    """T: a colour film negative, ``base_c * (1 - x_c)`` per RGB channel: light becomes dark, an orange cast.

    Chapter 6's hidden truth. Unlike a tone curve, it changes the *pattern* of every crop (its sign), which
    survives instance normalisation, while a tone curve mostly changes each crop's level and contrast,
    which instance norm removes.
    """
    b = torch.tensor(base, dtype=x.dtype, device=x.device).view(3, 1, 1)
    return b * (1 - x.clamp(0, 1))


def film_positive(y: torch.Tensor, base: Sequence[float] = FILM_BASE) -> torch.Tensor:
    """T^-1: ``1 - y_c / base_c``, the print of a negative."""
    b = torch.tensor(base, dtype=y.dtype, device=y.device).view(3, 1, 1)
    return (1 - y / b).clamp(0, 1)


def flat_colour(x: torch.Tensor, levels: int = 3, blur: float = 1.0) -> torch.Tensor:
    """A non-invertible flat-colour look: Gaussian blur, then ``levels`` values per channel."""
    y = distortions.gaussian_blur(x, blur) if blur > 0 else x
    return torch.round(y.clamp(0, 1) * (levels - 1)) / (levels - 1)


TRANSFORMS = {"negative": film_negative, "dusk": dusk_grade, "flat": flat_colour}


def hidden_truth_task(photos: Sequence[torch.Tensor], transform: str = "negative", test: int = 10,
                      ) -> dict[str, list[torch.Tensor]]:
    """Split ``photos`` into an unpaired task: ``trainA`` (first half), ``trainB`` = T(second half), ``testA``, ``testB``.

    The last ``test`` photos are held out: ``testA`` is them, ``testB`` = T(them) -- the hidden truth
    of G on ``testA``. The two training halves hold *different* photos: no pair exists.
    """
    if transform not in TRANSFORMS:
        raise ValueError(f"unknown transform {transform!r}; choose one of {', '.join(TRANSFORMS)}")
    T = TRANSFORMS[transform]
    photos = list(photos)
    train, held = photos[:-test], photos[-test:]
    half = len(train) // 2
    return {"trainA": train[:half], "trainB": [T(p) for p in train[half:]],
            "testA": held, "testB": [T(p) for p in held]}


def unaligned_files(root: str | Path, phase: str = "train", mode: image_io.Mode = "rgb"
                    ) -> tuple[LazyImages, LazyImages]:
    """The images of ``root/{phase}A`` and ``root/{phase}B`` (CycleGAN's layout), listed, not yet decoded."""
    root = Path(root)
    out = []
    for side in "AB":
        folder = root / f"{phase}{side}"
        if not folder.is_dir():
            raise FileNotFoundError(f"{folder}: missing (expected {phase}A/ and {phase}B/ under {root})")
        out.append(LazyImages(image_io.list_images(folder), mode))
    return out[0], out[1]


def read_unaligned(root: str | Path, phase: str = "train", mode: str = "rgb") -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """The images of ``root/{phase}A`` and ``root/{phase}B`` (CycleGAN's layout), as two lists, decoded now."""
    a, b = unaligned_files(root, phase, mode)
    return list(a), list(b)


class UnalignedDataset(Dataset):
    """Unpaired items ``{'A': a, 'B': b}``: ``a`` = A[i mod |A|], ``b`` drawn at random from B, independently.

    ``source``: a folder in CycleGAN's layout (read with ``phase``, lazily: ``.A`` and ``.B`` are then
    :class:`~i2icourse.data.paired.LazyImages`) or a pair of image lists.
    ``size``: crop side; ``load_size``: resize (shorter side) first (CycleGAN: 286 -> 256);
    ``train=False``: centre crops, and ``b`` = B[i mod |B|]. ``seed`` fixes the B draws: item ``i``
    is the same every time it is read. ``repeat`` lists A several times per epoch.
    """

    def __init__(self, source: str | Path | tuple[Sequence[torch.Tensor], Sequence[torch.Tensor]], size: int,
                 load_size: int | None = None, flip: bool = True, train: bool = True, repeat: int = 1,
                 seed: int = 0, phase: str = "train"):
        if isinstance(source, (str, Path)):
            self.A, self.B = unaligned_files(source, phase)
        else:
            self.A, self.B = list(source[0]), list(source[1])
        if not self.A or not self.B:
            raise ValueError("UnalignedDataset: domain A or B is empty")
        self.size, self.train, self.repeat, self.seed = size, train, repeat, seed
        self.transform = crop_transform(size, load_size, flip, train)

    def __len__(self) -> int:
        return max(len(self.A), len(self.B)) * self.repeat

    def b_index(self, i: int) -> int:
        """Which B image item ``i`` gets: a seeded draw (training) or ``i mod |B|`` (testing)."""
        if not self.train:
            return i % len(self.B)
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + i)
        return int(torch.randint(0, len(self.B), (1,), generator=g).item())

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        a = self.transform(self.A[i % len(self.A)])   # its own crop and flip ...
        b = self.transform(self.B[self.b_index(i)])   # ... and B's: nothing lines up
        return {"A": a.clamp(0, 1), "B": b.clamp(0, 1)}
