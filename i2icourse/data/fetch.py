"""Getting a registered dataset onto the disk: ``fetch(name)`` downloads, verifies and unpacks it once.

**Where data goes (the cache).** ``root=`` if given, else ``$I2I_DATA``, else ``/content/data`` on
Colab, else ``~/.cache/i2icourse`` (``$XDG_CACHE_HOME/i2icourse`` when that is set). Inside it::

    downloads/<archive>.part   an unfinished download: the next fetch resumes it (HTTP Range request)
    downloads/<archive>        a finished, verified archive (deleted once unpacked, unless keep_archive)
    <name>/                    the unpacked dataset, renamed into place in one step when complete
    <name>/.i2icourse.json     the marker that makes a second fetch instant

**Mirror.** ``mirror=`` or ``$I2I_DATA_MIRROR`` names a folder staged in advance: an instructor's copy
for a classroom without internet, or the repository's ``../shared/data`` in CI. With a mirror set,
fetch never goes online. It returns, in this order,

1. the dataset already in the cache;
2. the dataset unpacked in the mirror: ``<mirror>/<p>`` for each of the entry's ``mirror_paths``
   (Set5: ``sr_benchmarks/Set5``), then ``<mirror>/<name>``, laid out as after unpacking (or holding
   the unpacked archive). The returned path points into the mirror, which is only ever read;
3. the archive itself, ``<mirror>/<archive>`` or ``<mirror>/<name>/<archive>``: verified and unpacked
   into the cache exactly as if it had been downloaded.

**Pointing the registry elsewhere.** ``$I2I_DATA_SOURCES`` names a JSON file that gives some datasets
another source, e.g. a classroom server, or the miniature copies the tests serve on 127.0.0.1::

    {"facades": {"urls": ["http://127.0.0.1:8000/facades.tar.gz"],
                 "sha256": "<64 hex digits>", "size": 52311, "n_images": 7}}

Names are matched as :func:`~i2icourse.data.registry.get` matches them (aliases, any case). Only
``urls`` is required. For a listed dataset fetch uses the registry's entry with just its addresses and
what verifies them replaced: ``sha256``, ``size`` and ``n_images`` come from the file, and one left out
is not checked (the registry's values describe the registry's archive). Everything else stays: the
archive's file name, the folder inside it, the layout checked after unpacking, the splits. So an archive
from elsewhere must be laid out as the published one, and a dataset that needs a manual download can be
given a URL too. An unknown dataset name or field in the file is an error. A mirror, when set, still
comes first. :func:`resolve` shows the entry fetch uses.

**Two at once.** Two notebooks, or two users of one shared cache, may fetch the same dataset at the
same time. Each install holds a lock, the file ``.<name>.lock`` beside ``<name>/`` (see
:func:`~i2icourse.data.locks.dataset_lock`): the first process downloads and unpacks, the second
waits, then finds the complete dataset and returns it.

**What is verified.** A download is checked against the size and sha256 recorded in the registry. Where
none is recorded, and the server sends no length either, nothing can tell a complete download from
one cut short, so the archive is checked when it is unpacked: it must read to its end (gzip, zip and
RAR carry their own checks), and the dataset must hold the number of image files recorded for it
(``n_images``). A short dataset is never installed.

**Limits.** A download with a recorded size is stopped as soon as the server sends more than that
(a wrong or hostile server cannot fill the disk), and so is one whose announced length is larger.
Unpacking one archive is refused as soon as it passes a limit on its unpacked size, its count of
members or its depth (:class:`~i2icourse.data.archives.ArchiveLimits`; :mod:`i2icourse.data.archives`
says why each is there).

**Failures** raise one exception with what failed and what to do next:
:class:`~i2icourse.data.errors.DataUnavailableError` (offline, server gone, a login needed, not in the
mirror), :class:`~i2icourse.data.download.ChecksumError` (wrong bytes: never left under a name that
looks complete; a download longer than recorded), :class:`~i2icourse.data.archives.UnsafeArchiveError`
(an archive member that would land outside its folder: ``..``, absolute paths, links of any kind,
device files; and an archive past one of the limits above) and :class:`~i2icourse.data.errors.DataError`
(an archive that is damaged, incomplete, or does not hold the dataset).

**The parts.** This module keeps the dataset-level steps; each of the others holds one idea, and
their names can be imported from here too: :mod:`~i2icourse.data.download` (one file over HTTP,
resumed and verified), :mod:`~i2icourse.data.archives` (unpacking safely, within limits),
:mod:`~i2icourse.data.layout` (does a folder hold a dataset; the marker of an install),
:mod:`~i2icourse.data.locks` (one install at a time) and :mod:`~i2icourse.data.errors`.
"""
from __future__ import annotations

import json
import os
import sys
from dataclasses import replace
from pathlib import Path

from i2icourse import images as image_io
from i2icourse.data.archives import (ArchiveLimits, BadArchive, NoRarTool, UnsafeArchiveError, archive_kind, extract,
                                     extract_locked)
from i2icourse.data.download import ChecksumError, UnverifiedDownloadWarning, download, sha256sum, verify_file
from i2icourse.data.errors import DataError, DataUnavailableError
from i2icourse.data.layout import MARKER, locate, missing_parts, read_marker, write_marker
from i2icourse.data.locks import HAVE_FLOCK, dataset_lock
from i2icourse.data.registry import REGISTRY, Dataset, UnknownDatasetError, get

__all__ = [
    "fetch", "image_files", "resolve", "data_root", "mirror_dir", "SOURCES_ENV",
    # defined in the modules of each step, and importable from here as before
    "ArchiveLimits", "ChecksumError", "DataError", "DataUnavailableError", "HAVE_FLOCK", "MARKER",
    "UnsafeArchiveError", "UnverifiedDownloadWarning", "archive_kind", "download", "extract", "sha256sum",
]


# ----------------------------------------------------------------------------------------------
# Where
# ----------------------------------------------------------------------------------------------

def _on_colab() -> bool:
    return "COLAB_RELEASE_TAG" in os.environ or "google.colab" in sys.modules


def data_root(root: str | Path | None = None) -> Path:
    """The cache folder: ``root``, else ``$I2I_DATA``, else ``/content/data`` on Colab, else ``~/.cache/i2icourse``."""
    if root is not None and str(root).strip():
        return Path(root).expanduser()
    env = os.environ.get("I2I_DATA", "").strip()
    if env:
        return Path(env).expanduser()
    if _on_colab():
        return Path("/content/data")
    cache = os.environ.get("XDG_CACHE_HOME", "").strip()
    return (Path(cache) if cache else Path.home() / ".cache") / "i2icourse"


def mirror_dir(mirror: str | Path | None = None) -> Path | None:
    """The data mirror: ``mirror``, else ``$I2I_DATA_MIRROR``; None when neither is set (``mirror=""`` turns it off)."""
    value = str(mirror) if mirror is not None else os.environ.get("I2I_DATA_MIRROR", "")
    if not value.strip():
        return None
    path = Path(value.strip()).expanduser()
    if not path.is_dir():
        how = "mirror=" if mirror is not None else "I2I_DATA_MIRROR="
        raise DataUnavailableError(f"{how}{value} is not a folder: point it at the folder that holds the "
                                   "pre-staged datasets, or unset it to download from the internet")
    return path


# ----------------------------------------------------------------------------------------------
# fetch
# ----------------------------------------------------------------------------------------------

SOURCES_ENV = "I2I_DATA_SOURCES"
_SOURCE_FIELDS = ("urls", "sha256", "size", "n_images")


def resolve(name: str | Dataset) -> Dataset:
    """The entry fetch uses for ``name``: the registry's, with its source replaced where ``$I2I_DATA_SOURCES`` says.

    A :class:`Dataset` that is not a registry entry (one made by hand, or one already resolved) is used as given.
    """
    entry = name if isinstance(name, Dataset) else get(name)
    if REGISTRY.get(entry.name) != entry:
        return entry
    return _read_sources().get(entry.name, entry)


def _read_sources() -> dict[str, Dataset]:
    """The registry entries re-pointed by the JSON file ``$I2I_DATA_SOURCES`` names, by name; {} when unset."""
    value = os.environ.get(SOURCES_ENV, "").strip()
    if not value:
        return {}
    where = f"{SOURCES_ENV}={value}"
    try:
        table = json.loads(Path(value).expanduser().read_text())
    except OSError as e:
        raise DataError(f"{where}: cannot read it ({e.strerror}); point it at a JSON file or unset it") from None
    except ValueError as e:
        raise DataError(f"{where}: not valid JSON ({e})") from None
    if not isinstance(table, dict):
        raise DataError(f"{where}: must hold a JSON object, dataset name -> {{{', '.join(_SOURCE_FIELDS)}}}")
    sources: dict[str, Dataset] = {}
    labels: dict[str, str] = {}
    for label, fields in table.items():
        try:
            entry = get(label)
        except UnknownDatasetError as e:
            raise DataError(f"{where}: {e}") from None
        if entry.name in labels:
            raise DataError(f"{where}: {labels[entry.name]!r} and {label!r} both name {entry.name!r}: list it once")
        labels[entry.name] = label
        sources[entry.name] = _repointed(entry, fields, f"{where}, {label!r}")
    return sources


def _repointed(entry: Dataset, fields: object, where: str) -> Dataset:
    """``entry`` with the addresses and checks of ``fields`` (one value of the sources file) and nothing else changed."""
    if not isinstance(fields, dict):
        raise DataError(f"{where}: must be an object with the fields {', '.join(_SOURCE_FIELDS)}")
    unknown = sorted(set(fields) - set(_SOURCE_FIELDS))
    if unknown:
        raise DataError(f"{where}: unknown field(s) {', '.join(unknown)}; the fields are {', '.join(_SOURCE_FIELDS)}")
    urls = fields.get("urls")
    if not isinstance(urls, list) or not urls or not all(isinstance(u, str) for u in urls):
        raise DataError(f"{where}: 'urls' must be a non-empty list of addresses")
    sha256, size, n_images = fields.get("sha256"), fields.get("size"), fields.get("n_images")
    if sha256 is not None and not isinstance(sha256, str):
        raise DataError(f"{where}: 'sha256' must be a string of 64 hex digits")
    for key, value in (("size", size), ("n_images", n_images)):
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 0):
            raise DataError(f"{where}: {key!r} must be a whole number")
    try:
        return replace(entry, urls=tuple(urls), filename=entry.archive_name, manual=None,
                       sha256=sha256, size=size, n_images=n_images)
    except ValueError as e:  # Dataset's own checks: http(s) URLs, the sha256's form, a positive count
        raise DataError(f"{where}: {e}") from None


def fetch(name: str | Dataset, root: str | Path | None = None, *, mirror: str | Path | None = None,
          progress: bool = True, keep_archive: bool = False, verify: bool = True) -> Path:
    """The folder holding dataset ``name``, downloading, verifying and unpacking it the first time.

    ``name`` is a registered name (see :func:`i2icourse.data.registry.catalogue`) or a :class:`Dataset`.
    ``verify=False`` skips the sha256 check: only for a file you trust whose publisher changed it.
    Processes that fetch the same dataset at once take turns, and all get the one complete install.
    The module docstring says where data goes, how a mirror is searched and what is verified.
    """
    entry = resolve(name)
    target = data_root(root) / entry.name
    done = _completed(target)
    if done is not None:
        return done
    where = mirror_dir(mirror)
    if where is not None:
        found = _mirror_folder(entry, where)
        if found is not None:
            return found
    with dataset_lock(target):
        done = _completed(target)  # installed by another process while this one waited for the lock
        if done is not None:
            return done
        if target.exists():  # put there by hand: a manual dataset, or an archive the user unpacked
            return _adopt(entry, target)
        if where is not None:
            return _mirror_archive(entry, where, target, verify=verify)
        if entry.manual:
            raise DataUnavailableError(_manual_message(entry, target))
        return _download_and_install(entry, target, progress=progress, keep_archive=keep_archive, verify=verify)


def _download_and_install(entry: Dataset, target: Path, *, progress: bool, keep_archive: bool,
                          verify: bool) -> Path:
    """Download the archive (unless it is already in ``downloads/``), unpack it; a broken download is deleted."""
    archive = target.parent / "downloads" / entry.archive_name
    downloaded = not archive.is_file()
    if not downloaded:  # left by keep_archive, or saved there by hand
        if verify:
            verify_file(archive, entry.sha256, entry.size)
    else:
        try:
            download(entry.urls, archive, sha256=entry.sha256 if verify else None,
                     size=entry.size if verify else None, progress=progress)
        except DataUnavailableError as e:
            raise DataUnavailableError(_offline_message(entry, archive, str(e))) from None
    try:
        path = _install(archive, target, entry)
    except BadArchive as e:
        if not downloaded:
            raise
        archive.unlink()
        raise DataError(f"{e.problem}\nThe download was deleted; call fetch({entry.name!r}) again to download it "
                        "anew.") from None
    if not keep_archive:
        archive.unlink()
    return path


def image_files(name: str | Dataset, split: str | None = None, *, root: str | Path | None = None,
                mirror: str | Path | None = None) -> list[Path]:
    """The image files of dataset ``name`` (of one ``split``, e.g. 'train'), fetching it if needed.

    Without ``split``, a dataset with named splits (BSDS500) gives the files of all of them, in order.
    """
    entry = resolve(name)
    folder = fetch(entry, root, mirror=mirror)
    if split is not None:
        return image_io.list_images(folder / entry.splits.get(split, split))
    if entry.splits:
        return [f for sub in entry.splits.values() for f in image_io.list_images(folder / sub)]
    return image_io.list_images(folder)


def _completed(target: Path) -> Path | None:
    info = read_marker(target)
    if info is None:
        return None
    path = target / info.get("subdir", "")
    return path if path.exists() else None


def _adopt(entry: Dataset, target: Path) -> Path:
    sub = locate(target, entry)
    if sub is None:
        raise DataUnavailableError(
            f"{target} exists but does not hold {entry.name!r}: it lacks {', '.join(missing_parts(target, entry))}. "
            f"Complete it or remove it, then call fetch({entry.name!r}) again."
            + (f"\n{_manual_message(entry, target)}" if entry.manual else ""))
    write_marker(target, entry, sub, source="found in place")
    return target / sub


def _install(archive: Path, target: Path, entry: Dataset) -> Path:
    try:
        return extract_locked(archive, target, entry)
    except NoRarTool as e:
        raise DataUnavailableError(
            f"{e}\nOr unpack it yourself so that {target} holds "
            f"{entry.subdir + '/' if entry.subdir else ''}{_layout_text(entry)}, "
            f"and call fetch({entry.name!r}) again.") from None


def _mirror_folder(entry: Dataset, mirror: Path) -> Path | None:
    """The dataset unpacked in the mirror, if it is there (only read, never written)."""
    for rel in entry.mirror_candidates:
        sub = locate(mirror / rel, entry)
        if sub is not None:
            return mirror / rel / sub
    return None


def _mirror_archives(entry: Dataset, mirror: Path) -> list[Path]:
    name = entry.archive_name
    return [mirror / name, mirror / entry.name / name] if name else []


def _mirror_archive(entry: Dataset, mirror: Path, target: Path, verify: bool) -> Path:
    """Unpack the mirror's copy of the archive into the cache, or say where it was looked for."""
    for archive in _mirror_archives(entry, mirror):
        if archive.is_file():
            if verify:
                verify_file(archive, entry.sha256, entry.size)
            return _install(archive, target, entry)
    looked = [f"{mirror / rel}/  (unpacked, holding {_layout_text(entry)})" for rel in entry.mirror_candidates]
    looked += [f"{archive}  (the archive)" for archive in _mirror_archives(entry, mirror)]
    listing = "\n".join(f"  {line}" for line in looked)
    source = (f"unset I2I_DATA_MIRROR to download it from {entry.urls[0]}." if entry.urls
              else f"get it by hand:\n{_manual_message(entry, target)}")
    raise DataUnavailableError(
        f"{entry.name!r} is not in the data mirror {mirror} (set by I2I_DATA_MIRROR or mirror=), and with a "
        f"mirror set nothing is downloaded. Looked for:\n{listing}\nAdd it there, or {source}")


def _layout_text(entry: Dataset) -> str:
    return ", ".join("the images" if p == "." else p for p in entry.layout)


def _manual_message(entry: Dataset, target: Path) -> str:
    return (f"{entry.name!r} cannot be downloaded automatically. {entry.manual}\n"
            f"Then put it at {target} so that this folder holds {_layout_text(entry)}, and call "
            f"fetch({entry.name!r}) again (or stage it in a data mirror as <I2I_DATA_MIRROR>/{entry.name}/).")


def _offline_message(entry: Dataset, archive: Path, failure: str) -> str:
    places = " or ".join(f"<mirror>/{p}/" for p in entry.mirror_candidates)
    reasons = "\n".join(f"  {line}" for line in failure.splitlines())
    return (f"Could not download the dataset {entry.name!r}:\n{reasons}\n"
            "To go on, do one of these:\n"
            f"  * set I2I_DATA_MIRROR to a folder that holds it, unpacked as {places} "
            f"(holding {_layout_text(entry)}), or as the archive <mirror>/{entry.archive_name};\n"
            f"  * download {entry.urls[0]} on a machine with internet (if it has moved, look on "
            f"{entry.homepage}) and save it as {archive}, then call fetch({entry.name!r}) again;\n"
            "  * run the notebook on Google Colab, which has internet.")
