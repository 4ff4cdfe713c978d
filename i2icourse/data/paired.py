"""Aligned (paired) datasets for pix2pix: (A, B) image pairs with *joint* random transforms.

pix2pix's datasets store each pair as one image, A on the left and B on the right ("A|B"). A pair's
augmentation must move both halves together -- the same resize, the same random crop, the same
flip -- or the target no longer matches the input pixel for pixel. :class:`AlignedDataset` does that
with torchvision's transforms v2: one call on two ``tv_tensors.Image`` draws its random parameters
once and applies them to both.

Sources: a folder, or pairs in memory. A folder holds one of the two layouts of the reference
pytorch-CycleGAN-and-pix2pix code, one folder per split:

* A|B files, A on the left half and B on the right (facades, maps, edges2shoes)::

      facades/train/1.jpg  2.jpg ...        facades/test/1.jpg ...

* two subfolders ``A/`` and ``B/`` of equally named files, the input and its target::

      my_sketches/train/A/0001.png  0002.png ...
      my_sketches/train/B/0001.png  0002.png ...

  ``AlignedDataset("my_sketches/train", 256, load_size=286)`` trains on them. Files are matched by
  name; a name on one side only is an error.

A folder is read lazily: :class:`LazyPairs` lists the files (cheap, and the A/B names are checked
then) and decodes a pair only when it is indexed, so a dataset larger than memory still trains, in
DataLoader workers too. :func:`read_pairs` reads a whole folder into memory at once, for small sets.

Offline paired tasks built from real photos (for the cpu/smoke profiles):

* :func:`colourisation_pair` -- grey (BT.601 luma) -> colour;
* :func:`edges_pair` -- Canny edges (black on white, like edges2shoes) -> photo;
* :func:`phone_pair` -- a phone-like degradation (blur, noise, a colour cast, JPEG) -> the clean photo,
  the DPED task of Group 9 in miniature.

Items are ``{'A': (C_A,H,W), 'B': (C_B,H,W)}`` float tensors in [0, 1]. This module never imports models.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Callable

import torch
from torch.utils.data import Dataset
from torchvision import tv_tensors
from torchvision.transforms import v2

from i2icourse import distortions
from i2icourse import images as image_io

Pair = tuple[torch.Tensor, torch.Tensor]


# ----------------------------------------------------------------------------------------------
# The A|B format
# ----------------------------------------------------------------------------------------------

def split_side_by_side(ab: torch.Tensor) -> Pair:
    """An A|B image (C, H, 2W) -> (A, B), the left and the right halves."""
    w = ab.shape[-1]
    if w % 2:
        raise ValueError(f"an A|B image must have an even width, got {w}")
    return ab[..., : w // 2], ab[..., w // 2:]


def join_side_by_side(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """(A, B) of equal size -> one A|B image (grey halves are repeated to 3 channels if the other is RGB)."""
    if a.shape[-2:] != b.shape[-2:]:
        raise ValueError(f"A and B must have the same size, got {tuple(a.shape)} and {tuple(b.shape)}")
    c = max(a.shape[-3], b.shape[-3])
    a, b = a.expand(c, -1, -1), b.expand(c, -1, -1)
    return torch.cat([a, b], dim=-1)


def write_pairs(pairs: Sequence[Pair], folder: str | Path, layout: str = "side_by_side") -> Path:
    """Save pairs as ``0000.png`` A|B files (``side_by_side``) or in ``A/`` and ``B/`` subfolders (``folders``)."""
    folder = Path(folder)
    for i, (a, b) in enumerate(pairs):
        if layout == "side_by_side":
            image_io.save_image(join_side_by_side(a, b), folder / f"{i:04d}.png")
        elif layout == "folders":
            image_io.save_image(a, folder / "A" / f"{i:04d}.png")
            image_io.save_image(b, folder / "B" / f"{i:04d}.png")
        else:
            raise ValueError(f"layout must be 'side_by_side' or 'folders', got {layout!r}")
    return folder


class LazyImages(Sequence):
    """Image files that are decoded (with :func:`i2icourse.images.load_image`) only when indexed.

    ``images[i]`` reads file ``i`` as a (C,H,W) tensor, every time: nothing is cached, so memory
    holds the file list only. Iterating reads the files one by one. It keeps paths, not open files,
    so it pickles, and DataLoader workers can read it.
    """

    def __init__(self, files: Sequence[str | Path], mode: image_io.Mode = "rgb"):
        self.files, self.mode = [Path(f) for f in files], mode

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int) -> torch.Tensor:
        return image_io.load_image(self.files[i], self.mode)

    def __repr__(self) -> str:
        where = f" in {self.files[0].parent}" if self.files else ""
        return f"LazyImages({len(self)} files{where}, mode={self.mode!r})"


class LazyPairs(Sequence):
    """The (A, B) pairs of a folder (A|B files, or ``A/`` and ``B/`` subfolders), decoded when indexed.

    Construction only lists the files -- and checks that ``A/`` and ``B/`` hold the same names; each
    ``pairs[i]`` reads its file(s) and returns the same tensors as ``read_pairs(folder)[i]``. The
    files: ``.side_by_side`` (:class:`LazyImages` of the A|B files) or ``.A`` and ``.B`` (the subfolders').
    """

    def __init__(self, folder: str | Path, mode_a: image_io.Mode = "rgb", mode_b: image_io.Mode = "rgb"):
        folder = Path(folder)
        self.mode_a, self.mode_b = mode_a, mode_b
        if (folder / "A").is_dir() and (folder / "B").is_dir():
            a_files = {p.name: p for p in image_io.list_images(folder / "A")}
            b_files = {p.name: p for p in image_io.list_images(folder / "B")}
            if set(a_files) != set(b_files):
                odd = sorted(set(a_files) ^ set(b_files))[:5]
                raise ValueError(f"{folder}: A/ and B/ hold different file names, e.g. {odd}")
            names = sorted(a_files)
            self.side_by_side: LazyImages | None = None
            self.A = LazyImages([a_files[n] for n in names], mode_a)
            self.B = LazyImages([b_files[n] for n in names], mode_b)
            return
        self.side_by_side, self.A, self.B = LazyImages(image_io.list_images(folder), "rgb"), None, None

    def __len__(self) -> int:
        return len(self.side_by_side if self.side_by_side is not None else self.A)

    def __getitem__(self, i: int) -> Pair:
        if self.side_by_side is None:
            a, b = self.A[i], self.B[i]
            check_aligned(a, b, f"{self.A.files[i]} and {self.B.files[i]}")
            return a, b
        ab = self.side_by_side[i]
        try:
            a, b = split_side_by_side(ab)
        except ValueError as e:
            raise ValueError(f"{self.side_by_side.files[i]}: {e}") from None
        return _mode(a, self.mode_a), _mode(b, self.mode_b)


def read_pairs(folder: str | Path, mode_a: str = "rgb", mode_b: str = "rgb") -> list[Pair]:
    """The pairs of ``folder``: ``A/`` and ``B/`` subfolders (matched by file name) if present, else A|B files.

    All of them, decoded now: for a small set to inspect or rearrange in memory. :class:`LazyPairs`
    reads the same pairs one at a time.
    """
    return list(LazyPairs(folder, mode_a, mode_b))


def check_aligned(a: torch.Tensor, b: torch.Tensor, name: str) -> None:
    """Raise ``ValueError`` unless A and B have the same height and width (a pair must line up)."""
    if a.shape[-2:] != b.shape[-2:]:
        raise ValueError(f"{name}: A is {tuple(a.shape)}, B is {tuple(b.shape)}: not aligned")


def _mode(x: torch.Tensor, mode: str) -> torch.Tensor:
    return image_io.rgb_to_grey(x) if mode == "grey" and x.shape[0] == 3 else x


# ----------------------------------------------------------------------------------------------
# The dataset
# ----------------------------------------------------------------------------------------------

def crop_transform(size: int, load_size: int | None = None, flip: bool = True, train: bool = True) -> v2.Transform:
    """pix2pix's and CycleGAN's random jitter: resize to ``load_size`` (286 for 256), random crop ``size``,
    horizontal flip; with ``train=False`` the same resize and a centre crop, nothing random.

    Without ``load_size`` the crop is taken at the stored resolution (crops from large photos).
    Called on two ``tv_tensors.Image`` at once, both get the same parameters (pix2pix's aligned pairs);
    called on one image at a time, each gets its own (CycleGAN's unaligned domains).
    """
    steps: list[v2.Transform] = [v2.Resize(load_size, antialias=True)] if load_size is not None else []
    if not train:
        return v2.Compose(steps + [v2.CenterCrop(size)])
    steps.append(v2.RandomCrop(size))
    if flip:
        steps.append(v2.RandomHorizontalFlip(0.5))
    return v2.Compose(steps)


class AlignedDataset(Dataset):
    """Paired images ``{'A': input, 'B': target}`` with the same random crop/flip applied to both.

    ``source``: a folder (A|B files, or ``A/`` and ``B/``), read lazily as :class:`LazyPairs`, or a
    list of (A, B) tensors. ``size``: crop side; ``load_size``: resize before cropping (pix2pix: 286
    -> crop 256); ``train=False``: a deterministic centre crop, no flip. ``repeat`` lists each pair several times per epoch (many
    random crops from few large photos). ``transform``: a callable ``(A, B) -> (A, B)`` that replaces
    the crop/flip above (e.g. chapter 5's :class:`i2icourse.data.augment.JointAugment`).
    """

    def __init__(self, source: str | Path | Sequence[Pair], size: int, load_size: int | None = None,
                 flip: bool = True, train: bool = True, repeat: int = 1, mode_a: str = "rgb", mode_b: str = "rgb",
                 transform: Callable[[torch.Tensor, torch.Tensor], Pair] | None = None):
        if isinstance(source, (str, Path)):
            self.pairs: Sequence[Pair] = LazyPairs(source, mode_a, mode_b)   # checked as each pair is read
        else:
            self.pairs = list(source)
            for i, (a, b) in enumerate(self.pairs):
                check_aligned(a, b, f"pair {i}")
        if not self.pairs:
            raise ValueError("AlignedDataset: no pairs")
        self.size, self.repeat, self.train, self.pair_transform = size, repeat, train, transform
        self.transform = crop_transform(size, load_size, flip, train)

    def __len__(self) -> int:
        return len(self.pairs) * self.repeat

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        a, b = self.pairs[i % len(self.pairs)]
        if self.pair_transform is not None:
            a, b = self.pair_transform(a, b)
            return {"A": a, "B": b}
        a, b = self.transform(tv_tensors.Image(a), tv_tensors.Image(b))  # one draw, applied to both
        return {"A": a.as_subclass(torch.Tensor).clamp(0, 1), "B": b.as_subclass(torch.Tensor).clamp(0, 1)}


# ----------------------------------------------------------------------------------------------
# Offline paired tasks built from real photos
# ----------------------------------------------------------------------------------------------

def colourisation_pair(photo: torch.Tensor) -> Pair:
    """(grey, colour): the input is the photo's BT.601 luma, the target the colour photo."""
    return image_io.rgb_to_grey(photo), photo


def edges_pair(photo: torch.Tensor, sigma: float = 2.0) -> Pair:
    """(edges, photo): Canny edges of the grey photo drawn black on white, like edges2shoes."""
    from skimage.feature import canny

    grey = image_io.rgb_to_grey(photo)[0].numpy()
    edges = torch.from_numpy(canny(grey, sigma=sigma)).float()
    return (1 - edges).unsqueeze(0), photo


#: The default phone-like degradation: mild blur, a flat tone curve, a warm colour cast, sensor noise, JPEG.
PHONE = dict(blur=1.0, contrast=0.5, lift=0.2, cast=(1.15, 1.0, 0.75), cast_jitter=0.05, noise=0.015, jpeg=60)


def phone_pair(photo: torch.Tensor, seed: int = 0, blur: float = PHONE["blur"], contrast: float = PHONE["contrast"],
               lift: float = PHONE["lift"], cast: Sequence[float] = PHONE["cast"],
               cast_jitter: float = PHONE["cast_jitter"], noise: float = PHONE["noise"],
               jpeg: int = PHONE["jpeg"]) -> Pair:
    """(phone-like photo, clean photo): blur, ``lift + contrast * gains * x`` (flat tones, a colour cast), noise, JPEG.

    A consistent cast (the "phone's" white balance) with a little per-photo jitter, like one camera
    model of DPED; ``seed`` makes the noise and the jitter repeatable.
    """
    g = torch.Generator().manual_seed(seed)
    x = distortions.gaussian_blur(photo, blur)
    gains = torch.tensor(cast) * (1 + cast_jitter * (2 * torch.rand(3, generator=g) - 1))
    x = (lift + contrast * x * gains.view(3, 1, 1)).clamp(0, 1)
    x = distortions.gaussian_noise(x, noise, generator=g)
    x = distortions.jpeg(x, jpeg)
    return x, photo


TASKS: dict[str, Callable[..., Pair]] = {"colourisation": colourisation_pair, "edges": edges_pair,
                                         "phone": phone_pair}


def make_pairs(photos: Sequence[torch.Tensor], task: str, seed: int = 0) -> list[Pair]:
    """Build the (A, B) pairs of ``task`` (``colourisation``, ``edges``, ``phone``) from RGB photos."""
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; choose one of {', '.join(TASKS)}")
    if task == "phone":
        return [phone_pair(p, seed=seed * 100_003 + i) for i, p in enumerate(photos)]
    return [TASKS[task](p) for p in photos]
