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
:func:`_dataset_lock`): the first process downloads and unpacks, the second waits, then finds the
complete dataset and returns it. A staging folder ``.<name>.<pid>.*.tmp`` names the process unpacking
into it, and is removed by a later install only once that process is gone (killed half-way).

**What is verified.** A download is checked against the size and sha256 recorded in the registry. Where
none is recorded, and the server sends no length either, nothing can tell a complete download from
one cut short, so the archive is checked when it is unpacked: it must read to its end (gzip, zip and
RAR carry their own checks), and the dataset must hold the number of image files recorded for it
(``n_images``). A short dataset is never installed.

**Failures** raise one exception with what failed and what to do next: :class:`DataUnavailableError`
(offline, server gone, a login needed, not in the mirror), :class:`ChecksumError` (wrong bytes: never
left under a name that looks complete), :class:`UnsafeArchiveError` (an archive member that would
land outside its folder: ``..``, absolute paths, links of any kind, device files) and
:class:`DataError` (an archive that is damaged, incomplete, or does not hold the dataset).
"""
from __future__ import annotations

import gzip
import hashlib
import http.client
import json
import lzma
import os
import re
import shutil
import socket
import stat
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
import warnings
import zipfile
import zlib
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Iterator, NoReturn, Sequence

from tqdm.auto import tqdm

from i2icourse import REPOSITORY_URL, __version__
from i2icourse import io as image_io
from i2icourse.data.registry import REGISTRY, Dataset, UnknownDatasetError, get

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None

MARKER = ".i2icourse.json"
HAVE_FLOCK = fcntl is not None  #: whether the dataset lock can use fcntl.flock (else: a pid file)
_CHUNK = 1 << 20
_USER_AGENT = f"i2icourse/{__version__} (+{REPOSITORY_URL})"


class DataError(RuntimeError):
    """A dataset that could not be made available; the message says why and what to do."""


class DataUnavailableError(DataError):
    """The data cannot be reached from here: offline, gone, behind a login, or missing from the mirror."""


class ChecksumError(DataError):
    """A file whose size or sha256 is not the one recorded for it."""


class UnsafeArchiveError(DataError):
    """An archive with a member that would be written outside its folder, or a special file."""


class UnverifiedDownloadWarning(UserWarning):
    """A download that worked but could not be verified: no checksum is recorded for it."""


class _BadArchive(DataError):
    """An archive that cannot be read whole (cut short, damaged, not an archive): a fresh copy should fix it."""

    def __init__(self, archive: Path, problem: str) -> None:
        self.problem = f"{archive.name}: {problem}"
        super().__init__(f"{self.problem}\nDelete {archive} (or replace it with a complete copy) and fetch the "
                         "dataset again.")


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

    ``name`` is a registered name (see :func:`i2icourse.data.registry.table`) or a :class:`Dataset`.
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
    with _dataset_lock(target):
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
            _verify_file(archive, entry.sha256, entry.size)
    else:
        try:
            download(entry.urls, archive, sha256=entry.sha256 if verify else None,
                     size=entry.size if verify else None, progress=progress)
        except DataUnavailableError as e:
            raise DataUnavailableError(_offline_message(entry, archive, str(e))) from None
    try:
        path = _install(archive, target, entry)
    except _BadArchive as e:
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


def _read_marker(target: Path) -> dict | None:
    """What the marker in ``target`` says was installed there; None without a readable marker."""
    try:
        info = json.loads((target / MARKER).read_text())
    except (OSError, ValueError):
        return None
    return info if isinstance(info, dict) else None


def _completed(target: Path) -> Path | None:
    info = _read_marker(target)
    if info is None:
        return None
    path = target / info.get("subdir", "")
    return path if path.exists() else None


def _count_images(folder: Path) -> int:
    """The image files in ``folder`` and its subfolders; hidden files and folders (``.name``) do not count."""
    count = 0
    for _, dirs, files in os.walk(folder):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        count += sum(1 for f in files if not f.startswith(".")
                     and os.path.splitext(f)[1].lower() in image_io.IMAGE_SUFFIXES)
    return count


def _has_images(folder: Path) -> bool:
    return any(p.suffix.lower() in image_io.IMAGE_SUFFIXES and p.is_file() for p in folder.iterdir())


def _missing(folder: Path, entry: Dataset, *, count: bool = True) -> list[str]:
    """What ``folder`` lacks to be ``entry`` (empty when it is complete); ``count=False`` checks the layout only."""
    if not folder.is_dir():
        return [f"the folder {folder.name}/"]
    missing = [p for p in entry.layout if p != "." and not (folder / p).exists()]
    if "." in entry.layout and not _has_images(folder):
        missing.append("the images")
    if count and not missing and entry.n_images is not None:
        found = _count_images(folder)
        if found != entry.n_images:
            missing.append(f"{entry.n_images} image files (found {found})")
    return missing


def _locate(folder: Path, entry: Dataset, *, count: bool = True) -> str | None:
    """The folder (relative to ``folder``) that holds ``entry``: its subdir, itself, or a top-level folder."""
    if not folder.is_dir():
        return None
    children = sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    for sub in dict.fromkeys((entry.subdir, "", *children)):
        if (folder / sub).is_dir() and not _missing(folder / sub, entry, count=count):
            return sub
    return None


def _write_marker(folder: Path, entry: Dataset | None, sub: str, source: str) -> None:
    info = {"name": entry and entry.name, "subdir": sub, "source": source, "sha256": entry and entry.sha256}
    (folder / MARKER).write_text(json.dumps(info, indent=1) + "\n")


def _adopt(entry: Dataset, target: Path) -> Path:
    sub = _locate(target, entry)
    if sub is None:
        raise DataUnavailableError(
            f"{target} exists but does not hold {entry.name!r}: it lacks {', '.join(_missing(target, entry))}. "
            f"Complete it or remove it, then call fetch({entry.name!r}) again."
            + (f"\n{_manual_message(entry, target)}" if entry.manual else ""))
    _write_marker(target, entry, sub, source="found in place")
    return target / sub


def _mirror_folder(entry: Dataset, mirror: Path) -> Path | None:
    """The dataset unpacked in the mirror, if it is there (only read, never written)."""
    for rel in entry.mirror_candidates:
        sub = _locate(mirror / rel, entry)
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
                _verify_file(archive, entry.sha256, entry.size)
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


# ----------------------------------------------------------------------------------------------
# download
# ----------------------------------------------------------------------------------------------

class _Unreachable(Exception):
    """This URL cannot be used now (no connection, HTTP error): try the next one."""


class _Interrupted(Exception):
    """The transfer stopped early: resume it."""


def sha256sum(path: str | Path) -> str:
    """The sha256 of a file, as 64 hex digits."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(_CHUNK):
            digest.update(block)
    return digest.hexdigest()


def _verify_file(path: Path, sha256: str | None, size: int | None) -> None:
    """Check a file that is not ours to delete (a mirror's, or one saved by hand)."""
    got = path.stat().st_size
    if size is not None and got != size:
        raise ChecksumError(f"{path}: {got} bytes, expected {size}: an incomplete or different file. "
                            "Replace it with a complete copy.")
    if sha256 is not None:
        actual = sha256sum(path)
        if actual != sha256:
            raise ChecksumError(f"{path}: checksum mismatch\n  expected sha256 {sha256}\n  actual   sha256 {actual}\n"
                                "Replace it with a good copy (the file was left untouched).")
    else:
        warnings.warn(f"{path.name}: could not verify it, no checksum is recorded for it", UnverifiedDownloadWarning,
                      stacklevel=3)


def download(urls: str | Sequence[str], dest: str | Path, *, sha256: str | None = None, size: int | None = None,
             progress: bool = True, timeout: float = 30.0, retries: int = 3) -> Path:
    """Download one file to ``dest`` from the first of ``urls`` that answers, with resume and verification.

    Bytes go to ``dest.part``; a ``.part`` left by an interrupted run is resumed with an HTTP Range
    request (a server that ignores Range sends the whole file, which then replaces the part). Only a
    file of the right ``size`` and ``sha256`` (when given) is renamed to ``dest``; a wrong one is deleted
    and :class:`ChecksumError` raised. Without a checksum, :class:`UnverifiedDownloadWarning` says so:
    then a body cut short by a server that sends no length looks complete here, and only unpacking
    it (as :func:`fetch` does) can tell.
    """
    urls = [urls] if isinstance(urls, str) else list(urls)
    dest = Path(dest)
    if dest.is_file():
        _verify_file(dest, sha256, size)
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    failures = []
    for url in urls:
        try:
            _transfer_with_retries(url, part, size=size, progress=progress, timeout=timeout, retries=retries)
        except _Unreachable as e:
            failures.append(f"{url}: {e}")
            continue
        _check_download(part, dest.name, url, sha256, size)
        os.replace(part, dest)
        return dest
    raise DataUnavailableError("\n".join(failures) if failures else "no URL to download from")


def _transfer_with_retries(url: str, part: Path, *, size: int | None, progress: bool, timeout: float,
                           retries: int) -> None:
    for attempt in range(retries + 1):
        try:
            return _transfer(url, part, size=size, progress=progress, timeout=timeout)
        except (_Interrupted, OSError, http.client.HTTPException) as e:
            if attempt == retries:
                kept = f"; the partial file {part} is kept and the next call resumes it" if part.exists() else ""
                raise _Unreachable(f"the transfer broke off {retries + 1} times (last: {e}){kept}") from None


def _reason(e: BaseException) -> str:
    reason = getattr(e, "reason", e)
    if isinstance(reason, socket.gaierror):
        return f"the host name could not be resolved, so there is probably no internet connection ({reason})"
    if isinstance(reason, ConnectionRefusedError):
        return f"the connection was refused ({reason})"
    if isinstance(reason, (socket.timeout, TimeoutError)):
        return "the server did not answer in time"
    return f"{type(reason).__name__}: {reason}"


def _range_start(content_range: str | None) -> int | None:
    # "bytes 100-199/200" -> 100
    try:
        return int(content_range.split()[1].split("-")[0])  # type: ignore[union-attr]
    except (AttributeError, IndexError, ValueError):
        return None


def _range_total(content_range: str | None) -> int | None:
    # "bytes */200" or "bytes 100-199/200" -> 200
    try:
        return int(content_range.rsplit("/", 1)[1])  # type: ignore[union-attr]
    except (AttributeError, IndexError, ValueError):
        return None


def _transfer(url: str, part: Path, *, size: int | None, progress: bool, timeout: float) -> None:
    """One request: append to ``part`` from where it ends, or start it again from byte 0."""
    offset = part.stat().st_size if part.exists() else 0
    if size is not None and offset > size:
        part.unlink()
        offset = 0
    if size is not None and offset == size:
        return
    headers = {"User-Agent": _USER_AGENT}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    try:
        response = urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout)
    except urllib.error.HTTPError as e:
        if e.code == 416 and offset:  # nothing after `offset`: complete if the server's size agrees
            if _range_total(e.headers.get("Content-Range")) in (offset, None):
                return
            part.unlink()
            raise _Interrupted("the partial file is longer than the server's; starting again") from None
        raise _Unreachable(f"the server answered HTTP {e.code} {e.reason}") from None
    except (urllib.error.URLError, OSError, http.client.HTTPException, ValueError) as e:
        raise _Unreachable(_reason(e)) from None
    with response:
        resumed = offset > 0 and response.status == 206
        if resumed and _range_start(response.headers.get("Content-Range")) != offset:
            part.unlink()
            raise _Interrupted("the server sent another range than asked for; starting again")
        if not resumed:
            offset = 0  # a fresh download, or a server that ignores Range: the whole file replaces the part
        length = response.headers.get("Content-Length")
        total = offset + int(length) if length and length.isdigit() else size
        with open(part, "ab" if resumed else "wb") as out, \
                tqdm(total=total, initial=offset, unit="B", unit_scale=True, unit_divisor=1024,
                     desc=part.name[:-len(".part")], disable=not progress, leave=False) as bar:
            while chunk := response.read(_CHUNK):
                out.write(chunk)
                bar.update(len(chunk))
    got = part.stat().st_size
    if total is not None and got < total:
        raise _Interrupted(f"the connection closed after {got} of {total} bytes")


def _check_download(part: Path, name: str, url: str, sha256: str | None, size: int | None) -> None:
    """Verify a finished download; delete it when wrong, so that nothing wrong looks complete."""
    got = part.stat().st_size
    if size is not None and got != size:
        part.unlink()
        raise ChecksumError(f"{name}: downloaded {got} bytes from {url}, but {size} are expected; "
                            "the download was deleted. Call fetch again to retry.")
    actual = sha256sum(part)
    if sha256 is None:
        warnings.warn(f"{name}: downloaded from {url} but could not verify it: no checksum is recorded "
                      f"for it (its sha256 is {actual})", UnverifiedDownloadWarning, stacklevel=4)
    elif actual != sha256:
        part.unlink()
        raise ChecksumError(
            f"{name}: checksum mismatch for the file downloaded from {url}\n"
            f"  expected sha256 {sha256}\n  actual   sha256 {actual}\n"
            "The download was deleted, so nothing that looks complete is left. Call fetch again to retry; if "
            "it fails again, the server's file differs from the recorded one: report it, or pass verify=False "
            "if you trust the source.")


# ----------------------------------------------------------------------------------------------
# One install at a time
# ----------------------------------------------------------------------------------------------

def _lock_path(target: Path) -> Path:
    return target.parent / f".{target.name}.lock"


@contextmanager
def _dataset_lock(target: Path, method: str = "flock" if HAVE_FLOCK else "pidfile") -> Iterator[None]:
    """Hold the lock of dataset folder ``target``: one process installs it, the others wait their turn.

    The lock is the file ``.<name>.lock`` beside ``target``, holding the owner's process id, and removed
    when let go. ``"flock"`` (Linux, macOS: wherever :mod:`fcntl` exists) locks it with ``fcntl.flock``,
    which the system lets go of when the owner exits, even when it is killed. ``"pidfile"`` (elsewhere,
    e.g. Windows) creates it exclusively (``O_EXCL``); a waiter removes it once its owner no longer
    runs. The pid file has one gap flock has not: two waiters that find the same dead owner at the same
    instant may both go on.
    """
    path = _lock_path(target)
    path.parent.mkdir(parents=True, exist_ok=True)
    with (_flock(path) if method == "flock" else _pidfile(path)):
        yield


@contextmanager
def _flock(path: Path) -> Iterator[None]:
    fd = _take_flock(path)
    try:
        yield
    finally:
        path.unlink(missing_ok=True)  # while still locked: a waiter that gets this file next sees it gone
        os.close(fd)


@contextmanager
def _pidfile(path: Path) -> Iterator[None]:
    _take_pidfile(path)
    try:
        yield
    finally:
        path.unlink(missing_ok=True)


def _take_flock(path: Path) -> int:
    """Open and flock ``path``, starting again when the file locked was removed by its previous owner."""
    waiting = False
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                if not waiting:
                    _say_waiting(path)
                waiting = True
                fcntl.flock(fd, fcntl.LOCK_EX)
            if _is_file_at(fd, path):
                os.ftruncate(fd, 0)
                os.write(fd, f"{os.getpid()}\n".encode())
                return fd
        except BaseException:
            os.close(fd)
            raise
        os.close(fd)


def _take_pidfile(path: Path, poll: float = 0.1) -> None:
    """Create ``path`` exclusively with this process's id in it, waiting while a running process owns it."""
    waiting = False
    while True:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            owner = _lock_owner(path)
            if owner is not None and not _process_alive(owner):
                path.unlink(missing_ok=True)  # left by a process that died holding it
                continue
            if not waiting:
                _say_waiting(path)
            waiting = True
            time.sleep(poll)
            continue
        with os.fdopen(fd, "w") as f:
            f.write(f"{os.getpid()}\n")
        return


def _is_file_at(fd: int, path: Path) -> bool:
    try:
        return os.path.samestat(os.fstat(fd), os.stat(path))
    except FileNotFoundError:
        return False


def _lock_owner(path: Path) -> int | None:
    """The process id written in a lock file; None while it is still being written, or unreadable."""
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def _say_waiting(path: Path) -> None:
    owner = _lock_owner(path)
    print(f"Waiting for {f'process {owner}' if owner else 'another process'}, which is installing "
          f"{path.name[1:-len('.lock')]!r} into {path.parent} (lock file {path.name}) ...", file=sys.stderr)


def _process_alive(pid: int) -> bool:
    """Whether process ``pid`` runs on this machine."""
    if os.name == "nt":
        return _windows_process_alive(pid)
    try:
        os.kill(pid, 0)  # signal 0 sends nothing: it only asks whether the process exists
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, under another user
        return True
    return True


def _windows_process_alive(pid: int) -> bool:
    import ctypes  # os.kill(pid, 0) would end the process on Windows
    kernel32 = ctypes.WinDLL("kernel32", use_last_error=True)
    handle = kernel32.OpenProcess(0x1000, False, pid)  # PROCESS_QUERY_LIMITED_INFORMATION
    if not handle:
        return ctypes.get_last_error() == 5  # ERROR_ACCESS_DENIED: it exists, under another user
    try:
        code = ctypes.c_ulong()
        return bool(kernel32.GetExitCodeProcess(handle, ctypes.byref(code))) and code.value == 259  # STILL_ACTIVE
    finally:
        kernel32.CloseHandle(handle)


def _staging_owner(folder: Path, target: Path) -> int | None:
    """The process that unpacks into staging folder ``folder`` (``.<target>.<pid>.<random>.tmp``), if it is one."""
    found = re.fullmatch(rf"\.{re.escape(target.name)}\.(\d+)\.[a-z0-9_]+\.tmp", folder.name)
    return int(found.group(1)) if found else None


def _remove_abandoned_staging(target: Path) -> None:
    """Remove the staging folders of ``target`` whose process is gone: installs killed half-way."""
    for folder in target.parent.iterdir():
        owner = _staging_owner(folder, target)
        if owner is not None and not _process_alive(owner):
            shutil.rmtree(folder, ignore_errors=True)


# ----------------------------------------------------------------------------------------------
# unpack
# ----------------------------------------------------------------------------------------------

def archive_kind(path: str | Path) -> str | None:
    """'zip', 'tar' (plain or gz/bz2/xz) or 'rar', read from the file's content (not its name); None otherwise."""
    with open(path, "rb") as f:
        head = f.read(8)
    if head.startswith(b"Rar!\x1a\x07"):
        return "rar"
    if zipfile.is_zipfile(path):
        return "zip"
    if tarfile.is_tarfile(path):
        return "tar"
    return None


def extract(archive: str | Path, target: str | Path, entry: Dataset | None = None) -> Path:
    """Unpack ``archive`` safely into the new folder ``target``, all at once or not at all.

    Members go to a staging folder beside ``target`` and are checked one by one: none may land outside
    it (``..``, absolute paths), and links (symbolic or hard) and device files are refused
    (:class:`UnsafeArchiveError`): no registered dataset needs a link, and a chain of links that each
    point inside can still lead out. The finished tree is checked again, whatever the archive's kind.
    The folder is renamed to ``target`` only when complete (and, given ``entry``, only when it holds that
    dataset's layout and its ``n_images`` image files), with a marker file inside. Returns the folder
    holding the data: ``target``, or the entry's folder inside it.

    Two processes extracting into one ``target`` take turns (:func:`_dataset_lock`); the second finds
    the first one's install of the same archive and returns it. Any other existing ``target`` is an error.
    """
    archive, target = Path(archive), Path(target)
    with _dataset_lock(target):
        installed = _installed_from(target, archive, entry)
        if installed is not None:
            return installed
        return _extract_locked(archive, target, entry)


def _source(archive: Path) -> str:
    return str(archive.absolute())


def _installed_from(target: Path, archive: Path, entry: Dataset | None) -> Path | None:
    """The data folder in ``target`` if its marker says it was unpacked from ``archive`` as ``entry``."""
    info = _read_marker(target)
    if info is None or info.get("source") != _source(archive) or info.get("name") != (entry and entry.name):
        return None
    path = target / info.get("subdir", "")
    return path if path.exists() else None


def _extract_locked(archive: Path, target: Path, entry: Dataset | None) -> Path:
    """:func:`extract`, for a caller that holds the dataset's lock."""
    if target.exists():
        raise DataError(f"{target} already exists: unpack into a new folder")
    _remove_abandoned_staging(target)
    with _staging(target) as tmp:
        _unpack(archive, tmp)
        _check_tree(archive, tmp)
        sub = "" if entry is None else _dataset_folder(archive, tmp, entry)
        _write_marker(tmp, entry, sub, source=_source(archive))
    return target / sub


def _dataset_folder(archive: Path, tmp: Path, entry: Dataset) -> str:
    """The folder in the unpacked ``tmp`` that holds ``entry``, complete; an error says what is missing."""
    found = _locate(tmp, entry)
    if found is not None:
        return found
    laid_out = _locate(tmp, entry, count=False)
    if laid_out is not None:  # the layout is there, but not every image file
        raise _BadArchive(archive, f"it holds {_count_images(tmp / laid_out)} image files of {entry.name!r}, "
                                   f"expected {entry.n_images}: the archive is incomplete (a download cut short?) "
                                   "or another version of the dataset.")
    top = ", ".join(sorted(p.name for p in tmp.iterdir())) or "nothing"
    raise DataError(f"{archive.name} was unpacked, but it does not hold {entry.name!r}: it lacks "
                    f"{', '.join(_missing(tmp / entry.subdir, entry))} (its top level: {top})")


def _install(archive: Path, target: Path, entry: Dataset) -> Path:
    try:
        return _extract_locked(archive, target, entry)
    except _NoRarTool as e:
        raise DataUnavailableError(
            f"{e}\nOr unpack it yourself so that {target} holds "
            f"{entry.subdir + '/' if entry.subdir else ''}{_layout_text(entry)}, "
            f"and call fetch({entry.name!r}) again.") from None


@contextmanager
def _staging(target: Path) -> Iterator[Path]:
    """A new folder ``.<target>.<pid>.<random>.tmp`` beside ``target``, renamed to ``target`` at the end."""
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.{os.getpid()}.", suffix=".tmp", dir=target.parent))
    try:
        tmp.chmod(0o755)
        yield tmp
        os.replace(tmp, target)  # atomic: the target appears complete or not at all
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


_DAMAGED = (EOFError, zlib.error, tarfile.ReadError, zipfile.BadZipFile, gzip.BadGzipFile, lzma.LZMAError)
_COMPRESSED = {b"PK\x03\x04": "a zip archive", b"\x1f\x8b": "a gzip file", b"BZh": "a bzip2 file",
               b"\xfd7zXZ": "an xz file"}


def _unpack(archive: Path, dest: Path) -> None:
    kind = archive_kind(archive)
    try:
        if kind == "zip":
            _unzip(archive, dest)
        elif kind == "tar":
            _untar(archive, dest)
        elif kind == "rar":
            _unrar(archive, dest)
        else:
            _not_an_archive(archive)
    except _DAMAGED as e:  # the data ends early, or fails its own check (CRC)
        raise _BadArchive(archive, f"the archive is damaged or incomplete ({type(e).__name__}: {e}); "
                                   "a download cut short looks like this.") from None


def _not_an_archive(archive: Path) -> NoReturn:
    with open(archive, "rb") as f:
        head = f.read(16)
    for magic, what in _COMPRESSED.items():
        if head.startswith(magic):
            raise _BadArchive(archive, f"it starts as {what} but cannot be read to its end: it is "
                                       "incomplete (a download cut short?) or damaged.")
    raise _BadArchive(archive, f"not a zip, tar or rar archive (it starts with {head!r}); a download that is "
                               "an HTML error page looks like this.")


def _within(path: str, root: str) -> bool:
    return os.path.commonpath([path, root]) == root


def _check_name(archive: Path, name: str) -> None:
    posix = name.replace("\\", "/")
    if not name or "\x00" in name:
        raise UnsafeArchiveError(f"{archive.name}: a member has an empty or invalid name")
    if posix.startswith("/") or PureWindowsPath(name).drive:
        raise UnsafeArchiveError(f"{archive.name}: member {name!r} has an absolute path; refused")
    if ".." in PurePosixPath(posix).parts:
        raise UnsafeArchiveError(f"{archive.name}: member {name!r} climbs out with '..'; refused")


def _refuse_link(archive: Path, name: str, kind: str) -> NoReturn:
    raise UnsafeArchiveError(f"{archive.name}: member {name!r} is a {kind}; dataset archives never need links "
                             "(a chain of them can lead out of the folder), so it is refused")


def _refuse_special(archive: Path, name: str) -> NoReturn:
    raise UnsafeArchiveError(f"{archive.name}: member {name!r} is a device file, FIFO or other special file; "
                             "refused")


@contextmanager
def _name_clash(archive: Path, name: str) -> Iterator[None]:
    """Turn the error of a member whose path is taken (a file and a folder of one name) into a message."""
    try:
        yield
    except (FileExistsError, NotADirectoryError, IsADirectoryError) as e:
        raise DataError(f"{archive.name}: member {name!r} cannot be unpacked: the archive holds a file and a "
                        f"folder of the same name on its path ({e.strerror}). The archive is damaged or was "
                        "not made for a file system: get a fresh copy, or report it to its publisher.") from None


def _untar(archive: Path, dest: Path) -> None:
    extra = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}  # a second guard where Python has one
    with tarfile.open(archive) as tar:
        for member in tar:
            _check_name(archive, member.name)
            if member.issym() or member.islnk():
                _refuse_link(archive, member.name, "hard link" if member.islnk() else "symbolic link")
            if not (member.isreg() or member.isdir()):
                _refuse_special(archive, member.name)
            with _name_clash(archive, member.name):
                try:
                    tar.extract(member, dest, set_attrs=False, **extra)
                except tarfile.ReadError:
                    raise  # the data ends early: damaged, not unsafe
                except tarfile.TarError as e:  # FilterError and friends
                    raise UnsafeArchiveError(f"{archive.name}: member {member.name!r} refused: {e}") from None


def _unzip(archive: Path, dest: Path) -> None:
    with zipfile.ZipFile(archive) as zf:
        for info in zf.infolist():
            name = info.filename
            _check_name(archive, name)
            kind = stat.S_IFMT(info.external_attr >> 16)
            if kind == stat.S_IFLNK:
                _refuse_link(archive, name, "symbolic link")
            if kind not in (0, stat.S_IFREG, stat.S_IFDIR):
                _refuse_special(archive, name)
            with _name_clash(archive, name):
                _unzip_member(zf, info, dest)


def _unzip_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, dest: Path) -> None:
    path = dest / info.filename.rstrip("/")
    if info.is_dir() or stat.S_IFMT(info.external_attr >> 16) == stat.S_IFDIR:
        path.mkdir(parents=True, exist_ok=True)
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with zf.open(info) as src, open(path, "wb") as out:
        shutil.copyfileobj(src, out, _CHUNK)


class _NoRarTool(DataUnavailableError):
    """No program that unpacks RAR is installed."""


def _unrar(archive: Path, dest: Path) -> None:
    """RAR needs an external program (they refuse '..' themselves); extract() checks the result afterwards."""
    commands = {"unrar": ["x", "-o+", "-y", str(archive), str(dest) + os.sep],
                "7z": ["x", "-y", f"-o{dest}", str(archive)],
                "bsdtar": ["-xf", str(archive), "-C", str(dest)]}
    for tool, args in commands.items():
        exe = shutil.which(tool)
        if exe is None:
            continue
        result = subprocess.run([exe, *args], capture_output=True, text=True)
        if result.returncode != 0:
            raise DataError(f"{tool} could not unpack {archive}: {(result.stderr or result.stdout).strip()[-500:]}")
        return
    raise _NoRarTool(f"{archive} is a RAR archive and Python cannot unpack RAR by itself: install unrar, 7z "
                     "or bsdtar (on Colab or Debian: apt-get install unrar) and call fetch again.")


def _check_tree(archive: Path, dest: Path) -> None:
    """Check what unpacking left in ``dest``, whatever wrote it: plain files and folders only, no links."""
    root = os.path.realpath(dest)
    for folder, dirs, files in os.walk(dest):
        for name in dirs + files:
            path = os.path.join(folder, name)
            where = os.path.relpath(path, dest)
            info = os.lstat(path)
            if stat.S_ISLNK(info.st_mode):
                out = "" if _within(os.path.realpath(path), root) else ", outside the target folder"
                raise UnsafeArchiveError(f"{archive.name}: {where!r} is a link to {os.readlink(path)!r}{out}; "
                                         "dataset archives never need links, so it is refused")
            if stat.S_ISREG(info.st_mode) and info.st_nlink > 1:
                raise UnsafeArchiveError(f"{archive.name}: {where!r} is a hard link (one file under two names); "
                                         "refused")
            if not (stat.S_ISREG(info.st_mode) or stat.S_ISDIR(info.st_mode)):
                raise UnsafeArchiveError(f"{archive.name}: {where!r} is a special file; refused")
