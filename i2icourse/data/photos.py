"""Real photos that ship with scikit-image: tiny demos that work offline, before any dataset is fetched.

They are real photographs (scikit-image's ``skimage.data`` documents each one's source and licence:
public domain or free to use), so a notebook can show a model on a real picture from its first cell.
They pass through :mod:`i2icourse.io` like every other image of the course.
"""
from __future__ import annotations

from typing import Sequence

import torch

from i2icourse import io as image_io

#: The bundled photos of ``skimage.data`` (no download needed); camera, brick, grass and gravel are grey.
PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "camera", "brick", "grass", "gravel", "retina",
          "hubble_deep_field")


def fit(x: torch.Tensor, size: int | tuple[int, int]) -> torch.Tensor:
    """The largest centred window of ``x`` with the aspect ratio of ``size``, resized to ``size`` (H, W)."""
    h, w = (size, size) if isinstance(size, int) else size
    H, W = x.shape[-2:]
    if W * h > H * w:  # too wide: keep the full height
        ch, cw = H, max(1, round(H * w / h))
    else:
        ch, cw = max(1, round(W * h / w)), W
    x = image_io.center_crop(x, (ch, cw))
    return x if (ch, cw) == (h, w) else image_io.resize(x, size=(h, w))


def _channels(x: torch.Tensor, mode: image_io.Mode) -> torch.Tensor:
    if mode == "grey":
        return image_io.rgb_to_grey(x)
    if mode == "rgb" and x.shape[-3] == 1:
        return x.expand(3, -1, -1).contiguous()
    return x


def skimage_photos(names: Sequence[str] | None = None, size: int | tuple[int, int] | None = None,
                   mode: image_io.Mode = "rgb") -> dict[str, torch.Tensor]:
    """The named photos (all of :data:`PHOTOS` by default) as (C,H,W) tensors in [0, 1], by name.

    ``mode``: ``rgb`` gives 3 channels (grey photos repeated), ``grey`` 1 (ITU-R 601 luma, as
    ``io.load_image``), ``keep`` the photo's own. ``size`` (an int or (H, W)) centre-crops to that aspect
    ratio and resizes, so that the photos can be stacked into one batch.
    """
    import skimage.data  # imported here: only the functions that need it pay for it

    names = list(PHOTOS if names is None else names)
    unknown = [n for n in names if n not in PHOTOS]
    if unknown:
        raise ValueError(f"not a bundled scikit-image photo: {', '.join(unknown)}; choose from {', '.join(PHOTOS)}")
    photos = {}
    for name in names:
        x = _channels(image_io.from_numpy(getattr(skimage.data, name)(), f"skimage.data.{name}"), mode)
        photos[name] = fit(x, size) if size is not None else x
    return photos


def lfw_faces(include_non_faces: bool = False) -> torch.Tensor:
    """The 100 grey 25x25 faces of scikit-image's LFW subset as a (100, 1, 25, 25) batch in [0, 1].

    With ``include_non_faces`` the subset's 100 non-face patches follow (200 in all), in its own order.
    """
    import skimage.data

    a = skimage.data.lfw_subset()  # (200, 25, 25): 100 faces, then 100 non-faces
    a = a if include_non_faces else a[:100]
    return torch.stack([image_io.from_numpy(face, f"lfw_subset[{i}]") for i, face in enumerate(a)])
