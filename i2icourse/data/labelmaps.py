"""Label map -> photo pairs: an offline colour-coded segmentation task, and the TU-Graz drone converter.

CV2 translates TU-Graz drone label maps (one flat colour per class) into aerial photos. Offline, we
build the same *kind* of pair from any real photo (:func:`labelmap_pair`): SLIC superpixels
(scikit-image) split the photo into regions; each region's mean colour picks the nearest of a few
fixed class *prototypes* (vegetation, sky/water, soil, ...), and the region is painted in that
class's *code colour* from :data:`PALETTE`. The input is then a flat colour-coded map with a few
classes, the target the photo: the network must invent texture and shading per class, as for drone
maps. :func:`convert_drone` prepares the real dataset as CV2 did (downscale, A|B files, 350/50 split).

Items are (C, H, W) float tensors in [0, 1]. This module never imports models.
"""
from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import torch

from i2icourse import images as image_io

#: Classes: name -> (prototype colour a region's mean colour is matched to, code colour painted in the map).
CLASSES: dict[str, tuple[tuple[int, int, int], tuple[int, int, int]]] = {
    "dark":       ((25, 25, 25),    (0, 0, 0)),
    "grey":       ((110, 110, 110), (128, 64, 128)),
    "bright":     ((215, 215, 210), (255, 255, 255)),
    "vegetation": ((70, 100, 40),   (0, 102, 0)),
    "sky/water":  ((100, 140, 190), (0, 128, 255)),
    "soil":       ((140, 100, 60),  (130, 76, 0)),
    "red":        ((170, 50, 40),   (255, 0, 0)),
    "yellow":     ((200, 170, 60),  (255, 255, 0)),
}
#: The code colours of the label maps, (K, 3) in [0, 1]; a label map holds no other colour.
PALETTE = torch.tensor([code for _, code in CLASSES.values()], dtype=torch.float32) / 255
_PROTOTYPES = torch.tensor([proto for proto, _ in CLASSES.values()], dtype=torch.float32) / 255


def segment(photo: torch.Tensor, n_segments: int = 120, compactness: float = 10.0) -> torch.Tensor:
    """Class indices (H, W) of an RGB photo: SLIC superpixels, each given the class nearest its mean colour."""
    from skimage.segmentation import slic

    rgb = photo.permute(1, 2, 0).numpy().astype(np.float64)
    seg = torch.from_numpy(slic(rgb, n_segments=n_segments, compactness=compactness, start_label=0,
                                channel_axis=-1)).long()
    n = int(seg.max()) + 1
    flat = photo.flatten(1)                                              # (3, H*W)
    counts = torch.bincount(seg.flatten(), minlength=n).clamp_min(1).float()
    means = torch.stack([torch.bincount(seg.flatten(), weights=c, minlength=n) for c in flat]) / counts  # (3, n)
    region_class = torch.cdist(means.T, _PROTOTYPES).argmin(1)          # (n,)
    return region_class[seg]


def colour_code(classes: torch.Tensor) -> torch.Tensor:
    """(H, W) class indices -> (3, H, W) colour-coded label map in the :data:`PALETTE` colours."""
    return PALETTE[classes].permute(2, 0, 1).contiguous()


def labelmap_pair(photo: torch.Tensor, n_segments: int = 120) -> tuple[torch.Tensor, torch.Tensor]:
    """(colour-coded label map, photo) for an RGB photo in [0, 1]."""
    return colour_code(segment(photo, n_segments)), photo


def palette_fraction(label_map: torch.Tensor, tol: float = 1e-6) -> float:
    """Fraction of pixels whose colour is exactly (within ``tol``) one of the :data:`PALETTE` colours."""
    px = label_map.flatten(1).T                                          # (H*W, 3)
    d = (px[:, None, :] - PALETTE.to(px)[None]).abs().amax(-1).min(1).values  # (H*W,) distance to nearest code
    return float((d <= tol).float().mean())


# ----------------------------------------------------------------------------------------------
# The TU-Graz semantic drone dataset, converted as CV2 did
# ----------------------------------------------------------------------------------------------

def convert_drone(root: str | Path, out: str | Path, scale: int = 10, n_train: int = 350, n_test: int = 50,
                  seed: int = 0, images: str = "training_set/images",
                  labels: str = "training_set/gt/semantic/label_images") -> dict[str, int]:
    """Write ``out/train`` and ``out/test`` A|B files (A = colour label map, B = photo) from the drone dataset.

    Every 6000x4000 photo is downscaled ``scale`` times (600x400, antialiased bicubic), its colour label
    image by nearest neighbour (class colours stay exact); A|B files are 1200x400. The pairs are
    shuffled with ``seed`` and split ``n_train`` / ``n_test`` (CV2: 350 / 50). Returns the counts.
    """
    from PIL import Image

    root, out = Path(root), Path(out)
    photos = {p.stem: p for p in image_io.list_images(root / images)}
    maps = {p.stem: p for p in image_io.list_images(root / labels)}
    names = sorted(set(photos) & set(maps))
    if not names:
        raise FileNotFoundError(f"{root}: no photo with a label image under {images} and {labels}")
    random.Random(seed).shuffle(names)
    splits = {"train": names[:n_train], "test": names[n_train:n_train + n_test]}
    for split, chosen in splits.items():
        for name in chosen:
            photo = Image.open(photos[name]).convert("RGB")
            size = (max(1, photo.width // scale), max(1, photo.height // scale))
            b = photo.resize(size, Image.BICUBIC, reducing_gap=None)
            a = Image.open(maps[name]).convert("RGB").resize(size, Image.NEAREST)
            ab = Image.new("RGB", (2 * size[0], size[1]))
            ab.paste(a, (0, 0))
            ab.paste(b, (size[0], 0))
            (out / split).mkdir(parents=True, exist_ok=True)
            ab.save(out / split / f"{name}.png")
    return {k: len(v) for k, v in splits.items()}
