"""Datasets of chapter 2 (autoencoders trained with MS-SSIM vs pixel losses).

* Reconstruction: grey 96x96 images. ``full``: STL-10's images (:class:`STL10Grey`, read straight from
  the binary files of the registry's ``STL10`` folder, memory-mapped so the 2.7 GB "unlabeled" split
  never has to fit in memory). ``cpu``/``smoke``: random 96x96 crops of real offline photos
  (:class:`RandomCrops`) and fixed crops for the hold-out set (:func:`grid_crops`).
* Representation probe: a labelled set of small grey images (:class:`ProbeSet`). ``full``: Extended
  Yale B, cropped (:func:`yale_b`: identity, light azimuth and elevation, resized to 48x48 as in the
  paper). ``cpu``/``smoke``: scikit-image's LFW subset, faces vs non-faces (:func:`lfw_probe`).

Images are grey by the ITU-R 601-2 luma transform (:func:`i2icourse.images.rgb_to_grey`), as in the paper.
This module never imports ``models``.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from i2icourse import images as image_io
from i2icourse.data.fetch import fetch
from i2icourse.data.photos import lfw_faces, load_photos


# ----------------------------------------------------------------------------------------------
# Photos -> grey crops (cpu / smoke profiles)
# ----------------------------------------------------------------------------------------------

def grey_photos(names: Sequence[str | tuple[str, str | None]], limit: int | None = None) -> list[torch.Tensor]:
    """The photos of the registered datasets ``names`` (e.g. ``["CBSD68"]``) as grey (1,H,W) tensors.

    A name may be ``(dataset, split)``, or ``"skimage"`` for scikit-image's bundled photos (no download);
    each is read by :func:`i2icourse.data.photos.load_photos` (``"dataset/split"``). ``limit`` keeps the first
    ``limit`` images (sorted by file name).
    """
    sources = [name if isinstance(name, str) else "/".join(p for p in name if p) for name in names]
    photos = list(load_photos(sources, mode="grey").values())
    return photos[:limit] if limit is not None else photos


class RandomCrops(Dataset):
    """Random ``size`` x ``size`` crops (with random horizontal flips) of a list of grey images.

    ``length`` items per epoch; item ``i`` is cut from image ``i % len(images)`` at a position drawn
    from torch's global random generator, so :func:`i2icourse.train.fit` replays it exactly on resume.
    """

    def __init__(self, images: Sequence[torch.Tensor], size: int = 96, length: int = 1000, flip: bool = True):
        small = [tuple(im.shape[-2:]) for im in images if min(im.shape[-2:]) < size]
        if not images or small:
            raise ValueError(f"RandomCrops: need images of at least {size}x{size} pixels"
                             + (f", got {small[0]}" if small else ", got none"))
        self.images, self.size, self.length, self.flip = list(images), size, length, flip

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, i: int) -> torch.Tensor:
        img = self.images[i % len(self.images)]
        h, w = img.shape[-2:]
        top = int(torch.randint(0, h - self.size + 1, ()))
        left = int(torch.randint(0, w - self.size + 1, ()))
        crop = img[..., top:top + self.size, left:left + self.size]
        if self.flip and bool(torch.rand(()) < 0.5):
            crop = crop.flip(-1)
        return crop.contiguous()                            # (1, size, size)


def grid_crops(images: Sequence[torch.Tensor], size: int = 96, per_image: int = 4) -> torch.Tensor:
    """Up to ``per_image`` non-overlapping ``size`` crops of each image, spread evenly: an (N,1,size,size) batch.

    Deterministic (no randomness), so the hold-out set is the same in every run.
    """
    crops = []
    for img in images:
        h, w = img.shape[-2:]
        rows, cols = h // size, w // size
        cells = [(r, c) for r in range(rows) for c in range(cols)]
        if not cells:
            continue
        pick = np.linspace(0, len(cells) - 1, min(per_image, len(cells))).round().astype(int)
        oy, ox = (h - rows * size) // 2, (w - cols * size) // 2   # centre the grid
        for k in sorted(set(pick.tolist())):
            r, c = cells[k]
            crops.append(img[..., oy + r * size:oy + (r + 1) * size, ox + c * size:ox + (c + 1) * size])
    if not crops:
        raise ValueError(f"grid_crops: no image is at least {size}x{size} pixels")
    return torch.stack(crops).contiguous()


# ----------------------------------------------------------------------------------------------
# STL-10 (full profile)
# ----------------------------------------------------------------------------------------------

STL10_SPLITS = {"unlabeled": "unlabeled_X.bin", "train": "train_X.bin", "test": "test_X.bin"}


class STL10Grey(Dataset):
    """STL-10 images as grey (1, 96, 96) tensors in [0, 1], read from the binary ``*_X.bin`` files.

    The files hold uint8 arrays (N, 3, 96, 96) stored column-major (each channel transposed); they are
    memory-mapped, so only the images used are read. ``folder`` defaults to ``fetch("STL10")``;
    ``indices`` selects a subset (e.g. a hold-out slice).
    """

    def __init__(self, split: str = "unlabeled", folder: str | Path | None = None,
                 indices: Sequence[int] | None = None):
        if split not in STL10_SPLITS:
            raise ValueError(f"STL10Grey: split must be one of {', '.join(STL10_SPLITS)}, got {split!r}")
        path = Path(folder if folder is not None else fetch("STL10")) / STL10_SPLITS[split]
        if not path.is_file():
            raise FileNotFoundError(f"STL10Grey: {path} is missing")
        n = path.stat().st_size // (3 * 96 * 96)
        self.array = np.memmap(path, dtype=np.uint8, mode="r", shape=(n, 3, 96, 96))
        self.indices = list(range(n)) if indices is None else [int(i) for i in indices]

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int) -> torch.Tensor:
        rgb = torch.from_numpy(np.array(self.array[self.indices[i]])).transpose(1, 2)  # (3, 96, 96) row-major
        return image_io.rgb_to_grey(rgb.float() / 255)                                # (1, 96, 96)

    def stack(self, limit: int | None = None) -> torch.Tensor:
        """The first ``limit`` items (all by default) as one (N, 1, 96, 96) batch."""
        n = len(self) if limit is None else min(limit, len(self))
        return torch.stack([self[i] for i in range(n)])


# ----------------------------------------------------------------------------------------------
# Probe sets: images with labels
# ----------------------------------------------------------------------------------------------

@dataclass
class ProbeSet:
    """Labelled images for the representation probe.

    ``images``: (N, 1, size, size) in [0, 1]. ``targets``: task name -> (N,) tensor, int64 class labels
    for classification tasks, float for regression. ``kinds``: task name -> ``"class"`` or ``"regress"``.
    """

    images: torch.Tensor
    targets: dict[str, torch.Tensor]
    kinds: dict[str, str]
    description: str = ""

    def __len__(self) -> int:
        return len(self.images)

    def subset(self, index: torch.Tensor | Sequence[int]) -> "ProbeSet":
        index = torch.as_tensor(index, dtype=torch.long)
        return ProbeSet(self.images[index], {k: v[index] for k, v in self.targets.items()}, dict(self.kinds),
                        self.description)


def stratified_split(labels: torch.Tensor, test_fraction: float = 0.3, seed: int = 0
                     ) -> tuple[torch.Tensor, torch.Tensor]:
    """Indices (train, test): ``test_fraction`` of every class goes to test (at least one item per class
    that has two or more), drawn with a seeded generator."""
    if not 0 < test_fraction < 1:
        raise ValueError(f"stratified_split: test_fraction must lie in (0, 1), got {test_fraction}")
    g = torch.Generator().manual_seed(seed)
    train, test = [], []
    for c in torch.unique(labels).tolist():
        idx = torch.nonzero(labels == c).flatten()
        idx = idx[torch.randperm(len(idx), generator=g)]
        k = max(1, round(test_fraction * len(idx))) if len(idx) > 1 else 0
        test.append(idx[:k])
        train.append(idx[k:])
    return torch.cat(train).sort().values, torch.cat(test).sort().values


def lfw_probe(size: int = 48) -> ProbeSet:
    """scikit-image's LFW subset: 100 faces and 100 non-faces (25x25 grey), resized to ``size``.

    One task, ``face``: 1 for a face, 0 for a non-face patch.
    """
    images = lfw_faces(include_non_faces=True)                         # (200, 1, 25, 25)
    images = image_io.resize(images, size=(size, size))               # (200, 1, size, size)
    labels = torch.cat([torch.ones(100), torch.zeros(100)]).long()
    return ProbeSet(images.contiguous(), {"face": labels}, {"face": "class"},
                    "scikit-image LFW subset: faces vs non-faces")


_YALE_NAME = re.compile(r"^yaleB(\d{2})_P\d{2}A([+-]\d{3})E([+-]\d{2})\.pgm$", re.I)


def yale_b(size: int = 48, folder: str | Path | None = None, limit: int | None = None) -> ProbeSet:
    """Extended Yale B, cropped: every lit image (the ``*_Ambient`` ones are skipped) resized to ``size``.

    Three tasks, as in Snell et al.'s Table 1: ``identity`` (class of the person), ``azimuth`` and
    ``elevation`` of the light source in degrees (from the file names, ``yaleB01_P00A+035E+15.pgm``).
    ``folder`` defaults to ``fetch("yale_b_cropped")``; ``limit`` keeps the first files (for tests).
    """
    root = Path(folder if folder is not None else fetch("yale_b_cropped"))
    files = sorted(p for p in root.rglob("*") if p.is_file() and _YALE_NAME.match(p.name))
    files = files[:limit] if limit is not None else files
    if not files:
        raise FileNotFoundError(f"yale_b: no yaleBxx_P00A...E....pgm images under {root}")
    images, person, azimuth, elevation = [], [], [], []
    for f in files:
        m = _YALE_NAME.match(f.name)
        assert m is not None
        img = image_io.load_image(f, mode="grey")
        images.append(image_io.resize(img, size=(size, size)))        # (1, size, size)
        person.append(int(m.group(1)))
        azimuth.append(float(m.group(2)))
        elevation.append(float(m.group(3)))
    people = sorted(set(person))
    identity = torch.tensor([people.index(p) for p in person])
    return ProbeSet(torch.stack(images), {"identity": identity, "azimuth": torch.tensor(azimuth),
                                          "elevation": torch.tensor(elevation)},
                    {"identity": "class", "azimuth": "regress", "elevation": "regress"},
                    "Extended Yale B (cropped): identity, light azimuth and elevation")
