"""(distorted image, SSIM map) pairs for learning quality maps (chapter 01).

The recipe of the source paper, on any set of pristine photos:

1. split the *pristine* photos into train and validation (400/100 of Waterloo's in the paper), so no
   photo -- in any of its versions -- is seen on both sides (:func:`split_by_image`);
2. distort every photo with the 4 Waterloo types x 5 levels (:func:`i2icourse.distortions.waterloo_versions`);
3. compute each version's SSIM map against its pristine photo *before* training (grey, 11x11 Gaussian
   window, :func:`i2icourse.metrics.ssim`), clamped to [0, 1] (see :func:`ssim_target`);
4. balance the classes: the pristine photo (map = all ones) is a sixth class, repeated 5 times, so
   every photo gives 25 samples -- 5 pristine + 20 distorted (:class:`QualityMapPairs`);
5. cut *identical* patches from image and map (random ones for training, fixed for validation).

Building the pairs costs about a second per photo on a CPU; :func:`build_pairs` caches them in a file.
This module knows files and tensors; it never imports models.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import torch
from torch.utils.data import Dataset

from i2icourse import images as image_io
from i2icourse import metrics
from i2icourse.distortions import WATERLOO_TYPES, waterloo_versions

#: The classes of a sample: the pristine photo (type "pristine", level 0) and the 4 distortion types.
CLASSES = ("pristine",) + WATERLOO_TYPES

#: How often the pristine version is repeated so that it weighs as much as one distortion type.
PRISTINE_REPEATS = 5


def ssim_target(distorted: torch.Tensor, pristine: torch.Tensor) -> torch.Tensor:
    """The learning target: the SSIM map (1,H,W) of the grey distorted image against the grey pristine one,
    clamped to [0, 1].

    SSIM can be slightly negative where the structure is inverted (heavy noise); a network with a
    sigmoid output cannot reach those values, so we learn max(SSIM, 0) and say so.
    """
    _, m = metrics.ssim(image_io.rgb_to_grey(distorted) if distorted.shape[-3] == 3 else distorted,
                        image_io.rgb_to_grey(pristine) if pristine.shape[-3] == 3 else pristine, full=True)
    return m.clamp(0, 1)


def split_by_image(names: Sequence[str], valid: int | float = 0.2, seed: int = 0) -> tuple[list[str], list[str]]:
    """Split photo *names* (not samples) into (train, valid): ``valid`` is a count or a fraction.

    A seeded permutation, so the split is repeatable; both lists keep the input order.
    """
    names = list(names)
    if len(set(names)) != len(names):
        raise ValueError("split_by_image: photo names must be unique")
    n_valid = int(round(valid * len(names))) if isinstance(valid, float) else int(valid)
    if not 0 < n_valid < len(names):
        raise ValueError(f"split_by_image: {n_valid} validation photos out of {len(names)} leaves a side empty")
    order = torch.randperm(len(names), generator=torch.Generator().manual_seed(seed)).tolist()
    chosen = set(order[:n_valid])
    train = [n for i, n in enumerate(names) if i not in chosen]
    val = [n for i, n in enumerate(names) if i in chosen]
    return train, val


@dataclass
class Pairs:
    """All versions of some photos, as stored tensors.

    ``images``: (N, 3, h, w) uint8; ``maps``: (N, 1, h, w) float16 SSIM maps in [0, 1]; ``photo``,
    ``kind``, ``level``: per version, the photo's name, the class name and the level (0 = pristine).
    """

    images: torch.Tensor
    maps: torch.Tensor
    photo: list[str]
    kind: list[str]
    level: list[int]

    def __len__(self) -> int:
        return len(self.photo)

    def subset(self, photos: Iterable[str]) -> "Pairs":
        """The versions of the named photos only."""
        keep = set(photos)
        idx = [i for i, p in enumerate(self.photo) if p in keep]
        return Pairs(self.images[idx], self.maps[idx], [self.photo[i] for i in idx],
                     [self.kind[i] for i in idx], [self.level[i] for i in idx])

    def image(self, i: int) -> torch.Tensor:
        """Version ``i`` as a float (3, h, w) image in [0, 1]."""
        return self.images[i].float() / 255

    def map(self, i: int) -> torch.Tensor:
        """The SSIM map of version ``i`` as float (1, h, w)."""
        return self.maps[i].float()

    def score(self, i: int) -> float:
        """The SSIM score of version ``i``: the mean of its (clamped) map."""
        return float(self.maps[i].float().mean())


def _region(x: torch.Tensor, keep: int | None) -> torch.Tensor:
    """The central ``keep`` x ``keep`` window (None: the whole image)."""
    return x if keep is None else image_io.center_crop(x, keep)


def _cache_key(photos: dict[str, torch.Tensor], keep: int | None, seed: int) -> str:
    h = hashlib.sha256(json.dumps({"keep": keep, "seed": seed, "version": 1}).encode())
    for name in sorted(photos):
        x = photos[name]
        h.update(name.encode())
        h.update(str(tuple(x.shape)).encode())
        h.update((x[..., ::7, ::7] * 255).round().to(torch.uint8).numpy().tobytes())
    return h.hexdigest()[:16]


def build_pairs(photos: dict[str, torch.Tensor], keep: int | None = None, seed: int = 0,
                cache: str | Path | None = None, progress: bool = True) -> Pairs:
    """Distort every photo at the 20 Waterloo settings and compute the SSIM maps: 21 versions per photo.

    The distortions and maps are computed on the *whole* photo (so the levels mean what they mean
    on Waterloo's ~500 px photos); ``keep`` then stores only the central ``keep`` x ``keep`` window of
    image and map (the same window for both), to save memory; ``None`` keeps whole photos, which then
    must all have one size. Photo ``k`` (in sorted name order) uses noise seed ``seed * 1000 + k``.
    ``cache``: a folder; the pairs are saved there under a key of the photos and settings and reloaded
    on the next call.
    """
    if cache is not None:
        path = Path(cache) / f"quality_pairs_{_cache_key(photos, keep, seed)}.pt"
        if path.exists():
            state = torch.load(path, weights_only=True)
            return Pairs(state["images"], state["maps"], state["photo"], state["kind"],
                         [int(v) for v in state["level"]])
    images, maps, names, kinds, levels = [], [], [], [], []
    items = sorted(photos.items())
    iterator = items
    if progress:
        from tqdm.auto import tqdm
        iterator = tqdm(items, desc="distort + SSIM maps", mininterval=1.0)
    for k, (name, x) in enumerate(iterator):
        x = x.expand(3, -1, -1) if x.shape[-3] == 1 else x
        x = image_io.from_numpy((image_io.to_numpy(x) * 255 + 0.5).astype("uint8"))  # 8-bit, like a file
        versions = {("pristine", 0): x, **waterloo_versions(x, seed=seed * 1000 + k)}
        for (kind, level), y in versions.items():
            m = torch.ones_like(x[:1]) if kind == "pristine" else ssim_target(y, x)
            images.append((_region(y, keep) * 255 + 0.5).to(torch.uint8))
            maps.append(_region(m, keep).to(torch.float16))
            names.append(name)
            kinds.append(kind)
            levels.append(level)
    pairs = Pairs(torch.stack(images), torch.stack(maps), names, kinds, levels)
    if cache is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        torch.save({"images": pairs.images, "maps": pairs.maps, "photo": pairs.photo, "kind": pairs.kind,
                    "level": pairs.level}, tmp)
        tmp.replace(path)
    return pairs


def load_pristine(source, size: int | None = None, limit: int | None = None) -> dict[str, torch.Tensor]:
    """Pristine photos by name from a folder, a dataset name (``"CBSD68"``, ``"waterloo"``), ``"skimage"``,
    a tensor or a dict (see :func:`i2icourse.data.photos.load_photos`); RGB; the first ``limit`` by name.

    ``size``: centre-crop and resize every photo to ``size`` x ``size`` (None keeps them as they are).
    """
    from i2icourse.data.photos import crop_resize, load_photos, to_mode

    photos = load_photos(source)
    names = sorted(photos)[:limit] if limit else sorted(photos)
    out = {}
    for n in names:
        x = to_mode(photos[n], "rgb")
        out[n] = crop_resize(x, size) if size is not None else x
    return out


class QualityMapPairs(Dataset):
    """The balanced samples of some :class:`Pairs`: every photo's 20 distorted versions once and its
    pristine version :data:`PRISTINE_REPEATS` times (25 per photo, as in the paper).

    ``patch``: side of the crops (None: the whole stored region). ``train=True`` draws a random
    window per sample (from torch's global generator, which ``train.fit`` seeds and checkpoints);
    ``train=False`` takes the central window, so validation is fixed. Image and map are always cut
    with the same window. A sample is ``{"A": image (3,p,p), "B": map (1,p,p), "kind": int (index in
    CLASSES), "level": int, "index": int (version)}`` -- ``A``/``B`` as :class:`i2icourse.recipes.pix2pix.Pix2Pix`
    expects them.
    """

    def __init__(self, pairs: Pairs, patch: int | None = None, train: bool = True,
                 pristine_repeats: int = PRISTINE_REPEATS):
        self.pairs, self.patch, self.train = pairs, patch, train
        self.index = []
        for i, kind in enumerate(pairs.kind):
            self.index += [i] * (pristine_repeats if kind == "pristine" else 1)

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, j: int) -> dict:
        i = self.index[j]
        x, m = self.pairs.image(i), self.pairs.map(i)
        if self.patch is not None:
            H, W = x.shape[-2:]
            box = (image_io.random_crop_box((H, W), self.patch) if self.train
                   else ((H - self.patch) // 2, (W - self.patch) // 2, self.patch, self.patch))
            x, m = image_io.crop(x, *box), image_io.crop(m, *box)  # one window for both
        return {"A": x, "B": m, "kind": CLASSES.index(self.pairs.kind[i]), "level": self.pairs.level[i], "index": i}
