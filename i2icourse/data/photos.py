"""Photos: the one way every chapter loads a set of photos, and the photos that ship with scikit-image.

:func:`load_photos` takes a folder, a file, a tensor, a registered dataset's name (``"CBSD68"``,
``"BSDS500/train"``) or ``"skimage"``, so a chapter names its photos in one setting and the same code
runs on the bundled photos (the smoke profile, offline), a fetched dataset (``cpu``) or your own folder.

The bundled photos are real photographs (scikit-image's ``skimage.data`` documents each one's source
and licence: public domain or free to use), so a notebook can show a model on a real picture from its
first cell, before any dataset is fetched. Every photo passes through :mod:`i2icourse.images`.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterable, Mapping, Sequence

import torch

from i2icourse import images as image_io

#: The bundled photos of ``skimage.data`` (no download needed); camera, brick, grass and gravel are grey.
PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "camera", "brick", "grass", "gravel", "retina",
          "hubble_deep_field")
#: The bundled photos that are natural scenes (retina and hubble_deep_field are mostly black): ``"skimage"``.
SKIMAGE_TRAIN = ("astronaut", "coffee", "chelsea", "rocket", "camera", "brick", "grass", "gravel")

PhotoSource = str | Path | torch.Tensor | Mapping[str, torch.Tensor] | Sequence

#: The bundled photo of the chapters' "your own photo" sections when none is given: the left view of
#: scikit-image's stereo motorcycle, in no training set of the course.
EXAMPLE_PHOTO = "stereo_motorcycle"


def crop_resize(x: torch.Tensor, size: int | tuple[int, int]) -> torch.Tensor:
    """The largest centred window of ``x`` with the aspect ratio of ``size``, resized to ``size`` (H, W)."""
    h, w = (size, size) if isinstance(size, int) else size
    H, W = x.shape[-2:]
    if W * h > H * w:  # too wide: keep the full height
        ch, cw = H, max(1, round(H * w / h))
    else:
        ch, cw = max(1, round(W * h / w)), W
    x = image_io.center_crop(x, (ch, cw))
    return x if (ch, cw) == (h, w) else image_io.resize(x, size=(h, w))


def to_mode(x: torch.Tensor, mode: image_io.Mode) -> torch.Tensor:
    """A (C,H,W) photo with the channels of ``mode``: ``grey`` 1 (ITU-R 601 luma), ``rgb`` 3, ``keep`` as it is."""
    if mode == "grey":
        return image_io.rgb_to_grey(x)
    if mode == "rgb" and x.shape[-3] == 1:
        return x.expand(3, -1, -1).contiguous()
    return x


def skimage_photos(names: Sequence[str] | None = None, size: int | tuple[int, int] | None = None,
                   mode: image_io.Mode = "rgb") -> dict[str, torch.Tensor]:
    """The named photos (all of :data:`PHOTOS` by default) as (C,H,W) tensors in [0, 1], by name.

    ``mode``: ``rgb`` gives 3 channels (grey photos repeated), ``grey`` 1 (ITU-R 601 luma, as
    ``images.load_image``), ``keep`` the photo's own. ``size`` (an int or (H, W)) centre-crops to that aspect
    ratio and resizes, so that the photos can be stacked into one batch.
    """
    import skimage.data  # imported here: only the functions that need it pay for it

    names = list(PHOTOS if names is None else names)
    unknown = [n for n in names if n not in PHOTOS]
    if unknown:
        raise ValueError(f"not a bundled scikit-image photo: {', '.join(unknown)}; choose from {', '.join(PHOTOS)}")
    photos = {}
    for name in names:
        x = to_mode(image_io.from_numpy(getattr(skimage.data, name)(), f"skimage.data.{name}"), mode)
        photos[name] = crop_resize(x, size) if size is not None else x
    return photos


def lfw_faces(include_non_faces: bool = False) -> torch.Tensor:
    """The 100 grey 25x25 faces of scikit-image's LFW subset as a (100, 1, 25, 25) batch in [0, 1].

    With ``include_non_faces`` the subset's 100 non-face patches follow (200 in all), in its own order.
    """
    import skimage.data

    a = skimage.data.lfw_subset()  # (200, 25, 25): 100 faces, then 100 non-faces
    a = a if include_non_faces else a[:100]
    return torch.stack([image_io.from_numpy(face, f"lfw_subset[{i}]") for i, face in enumerate(a)])


def load_photos(source: PhotoSource | Iterable[PhotoSource], mode: image_io.Mode = "rgb") -> dict[str, torch.Tensor]:
    """Photos as ``{name: (C,H,W) tensor}`` from a folder, a file, a tensor, a dict, or a list of those.

    Strings that are not existing paths name datasets of the data layer: ``"CBSD68"``, ``"BSDS500/train"``
    (name/split, fetched through :func:`i2icourse.data.image_files`) or ``"skimage"`` (the bundled photos
    of :data:`SKIMAGE_TRAIN`, which need no download). A folder's photos come in file-name order.
    ``mode`` (``"rgb"`` or ``"grey"``) is how files are read (:func:`i2icourse.images.load_image`); tensors
    and dicts are returned as given.
    """
    out: dict[str, torch.Tensor] = {}
    if isinstance(source, torch.Tensor):
        if source.dim() == 4:
            return {f"image{i:04d}": image_io.check_image(x, f"image {i}") for i, x in enumerate(source)}
        return {"image": image_io.check_image(source, "image", batched=False)}
    if isinstance(source, Mapping):
        return {str(k): image_io.check_image(v, str(k), batched=False) for k, v in source.items()}
    if isinstance(source, (str, Path)):
        path = Path(source)
        if path.is_dir():
            return {p.stem: image_io.load_image(p, mode) for p in image_io.list_images(path)}
        if path.is_file():
            return {path.stem: image_io.load_image(path, mode)}
        name = str(source)
        if name == "skimage":
            return skimage_photos(SKIMAGE_TRAIN, mode=mode)
        from i2icourse.data.fetch import image_files  # only a dataset name needs the fetch layer
        dataset, _, split = name.partition("/")
        return {p.stem: image_io.load_image(p, mode) for p in image_files(dataset, split or None)}
    for item in source:   # a sequence of sources
        for key, x in load_photos(item, mode).items():
            while key in out:
                key += "_"
            out[key] = x
    return out


def your_photo(source: str | Path | None = None, max_side: int | None = 1024) -> tuple[str, torch.Tensor]:
    """A photo to run a trained model on, as ``(name, (3, H, W) tensor in [0, 1])``.

    ``source``: a file's path; ``"upload"`` on Colab opens the browser's upload dialog; None gives
    :data:`EXAMPLE_PHOTO`. Phone photos come in upright (:func:`i2icourse.images.load_image` applies their EXIF
    orientation). A photo whose longer side exceeds ``max_side`` is resized down, with a note: on a CPU
    a 12-megapixel photo takes minutes through a network; ``max_side=None`` keeps every pixel (the
    models run tile by tile, so any size fits in memory). Taught in chapters 3, 4 and 6.
    """
    if source is None:
        import skimage.data
        name, x = EXAMPLE_PHOTO, image_io.from_numpy(skimage.data.stereo_motorcycle()[0], EXAMPLE_PHOTO)
    else:
        path = _uploaded() if str(source) == "upload" else Path(source)
        name, x = path.stem, image_io.load_image(path, mode="rgb")
    side = max(x.shape[-2:])
    if max_side is not None and side > max_side:
        resized = image_io.resize(x, scale=max_side / side).clamp(0, 1)
        print(f"{name}: {x.shape[-1]}x{x.shape[-2]} resized to {resized.shape[-1]}x{resized.shape[-2]} "
              f"(max_side={max_side}; max_side=None keeps the full size)")
        x = resized
    return name, x


def _uploaded() -> Path:
    """The file the user picks in Colab's upload dialog (saved in the current folder)."""
    try:
        from google.colab import files  # type: ignore[import-not-found]
    except ImportError:
        raise ValueError('"upload" works on Colab only; elsewhere give the path of a photo') from None
    chosen = files.upload()
    if not chosen:
        raise ValueError("no file was uploaded")
    name, content = next(iter(chosen.items()))
    path = Path(name)
    path.write_bytes(content)
    return path
