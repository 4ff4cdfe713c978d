"""Does a folder hold a dataset? Its layout, its count of image files, and the marker of a finished install.

A registry entry says what its unpacked folder holds (``layout``) and how many image files
(``n_images``); :func:`locate` finds the folder that holds all of it. The marker file :data:`MARKER`
is written into a dataset's folder when it is complete, and makes the next fetch instant.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

from i2icourse import images as image_io
from i2icourse.data.registry import Dataset

MARKER = ".i2icourse.json"  #: the file in a dataset's folder that says it is complete, and what it holds


def read_marker(target: Path) -> dict | None:
    """What the marker in ``target`` says was installed there; None without a readable marker."""
    try:
        info = json.loads((target / MARKER).read_text())
    except (OSError, ValueError):
        return None
    return info if isinstance(info, dict) else None


def write_marker(folder: Path, entry: Dataset | None, sub: str, source: str) -> None:
    """Mark ``folder`` complete: it holds ``entry`` in its subfolder ``sub``, installed from ``source``."""
    info = {"name": entry and entry.name, "subdir": sub, "source": source, "sha256": entry and entry.sha256}
    (folder / MARKER).write_text(json.dumps(info, indent=1) + "\n")


def count_images(folder: Path) -> int:
    """The image files in ``folder`` and its subfolders; hidden files and folders (``.name``) do not count."""
    count = 0
    for _, dirs, files in os.walk(folder):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        count += sum(1 for f in files if not f.startswith(".")
                     and os.path.splitext(f)[1].lower() in image_io.IMAGE_SUFFIXES)
    return count


def _has_images(folder: Path) -> bool:
    return any(p.suffix.lower() in image_io.IMAGE_SUFFIXES and p.is_file() for p in folder.iterdir())


def missing_parts(folder: Path, entry: Dataset, *, count: bool = True) -> list[str]:
    """What ``folder`` lacks to be ``entry`` (empty when it is complete); ``count=False`` checks the layout only."""
    if not folder.is_dir():
        return [f"the folder {folder.name}/"]
    missing = [p for p in entry.layout if p != "." and not (folder / p).exists()]
    if "." in entry.layout and not _has_images(folder):
        missing.append("the images")
    if count and not missing and entry.n_images is not None:
        found = count_images(folder)
        if found != entry.n_images:
            missing.append(f"{entry.n_images} image files (found {found})")
    return missing


def locate(folder: Path, entry: Dataset, *, count: bool = True) -> str | None:
    """The folder (relative to ``folder``) that holds ``entry``: its subdir, itself, or a top-level folder."""
    if not folder.is_dir():
        return None
    children = sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    for sub in dict.fromkeys((entry.subdir, "", *children)):
        if (folder / sub).is_dir() and not missing_parts(folder / sub, entry, count=count):
            return sub
    return None
