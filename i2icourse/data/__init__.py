"""Data: which datasets exist (``registry``), getting them onto the disk (``fetch``), bundled photos (``photos``).

    from i2icourse import data
    folder = data.fetch("facades")              # downloads, verifies and unpacks once; instant afterwards
    files = data.image_files("facades", "train")
    photos = data.skimage_photos(size=256)      # real photos, no download
    photos = data.load_photos("CBSD68")         # any photo set by name or folder: {name: (C,H,W) tensor}

Environment: ``I2I_DATA`` (the cache folder, default ``~/.cache/i2icourse``, ``/content/data`` on
Colab) and ``I2I_DATA_MIRROR`` (a pre-staged folder used instead of the internet). See
:mod:`i2icourse.data.fetch`. ``python data_scripts/download.py --list`` is the command-line front.

This package knows files and tensors; it never imports ``models`` or ``train``.
"""
from i2icourse.data.fetch import (ArchiveLimits, ChecksumError, DataError, DataUnavailableError,
                                  UnsafeArchiveError, UnverifiedDownloadWarning, data_root, download, extract, fetch, image_files,
                                  mirror_dir, sha256sum)
from i2icourse.data.photos import (EXAMPLE_PHOTO, PHOTOS, SKIMAGE_TRAIN, lfw_faces, load_photos, skimage_photos,
                                   your_photo)
from i2icourse.data.registry import DATASETS, REGISTRY, Dataset, UnknownDatasetError, catalogue, get, names

__all__ = [
    "ArchiveLimits", "ChecksumError", "DataError", "DataUnavailableError", "UnsafeArchiveError",
    "UnverifiedDownloadWarning", "data_root", "download", "extract", "fetch", "image_files", "mirror_dir", "sha256sum",
    "EXAMPLE_PHOTO", "PHOTOS", "SKIMAGE_TRAIN", "lfw_faces", "load_photos", "skimage_photos", "your_photo",
    "DATASETS", "REGISTRY", "Dataset", "UnknownDatasetError", "catalogue", "get", "names",
]
