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

**Failures** raise one exception with what failed and what to do next: :class:`DataUnavailableError`
(offline, server gone, a login needed, not in the mirror), :class:`ChecksumError` (wrong bytes: never
left under a name that looks complete) and :class:`UnsafeArchiveError` (an archive member that would
land outside its folder: ``..``, absolute paths, links pointing out, device files).
"""
from __future__ import annotations

import hashlib
import http.client
import json
import os
import shutil
import socket
import stat
import subprocess
import sys
import tarfile
import tempfile
import urllib.error
import urllib.request
import warnings
import zipfile
from contextlib import contextmanager
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Iterator, Sequence

from tqdm.auto import tqdm

from i2icourse import REPOSITORY_URL, __version__
from i2icourse import io as image_io
from i2icourse.data.registry import Dataset, get

MARKER = ".i2icourse.json"
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

def fetch(name: str | Dataset, root: str | Path | None = None, *, mirror: str | Path | None = None,
          progress: bool = True, keep_archive: bool = False, verify: bool = True) -> Path:
    """The folder holding dataset ``name``, downloading, verifying and unpacking it the first time.

    ``name`` is a registered name (see :func:`i2icourse.data.registry.table`) or a :class:`Dataset`.
    ``verify=False`` skips the sha256 check: only for a file you trust whose publisher changed it.
    The module docstring says where data goes and how a mirror is searched.
    """
    entry = name if isinstance(name, Dataset) else get(name)
    target = data_root(root) / entry.name
    done = _completed(target)
    if done is not None:
        return done
    where = mirror_dir(mirror)
    if where is not None:
        found = _mirror_folder(entry, where)
        if found is not None:
            return found
    if target.exists():  # put there by hand: a manual dataset, or an archive the user unpacked
        return _adopt(entry, target)
    if where is not None:
        return _mirror_archive(entry, where, target, verify=verify)
    if entry.manual:
        raise DataUnavailableError(_manual_message(entry, target))
    archive = target.parent / "downloads" / entry.archive_name
    if archive.is_file():  # left by keep_archive, or saved there by hand
        if verify:
            _verify_file(archive, entry.sha256, entry.size)
    else:
        try:
            download(entry.urls, archive, sha256=entry.sha256 if verify else None,
                     size=entry.size if verify else None, progress=progress)
        except DataUnavailableError as e:
            raise DataUnavailableError(_offline_message(entry, archive, str(e))) from None
    path = _install(archive, target, entry)
    if not keep_archive:
        archive.unlink()
    return path


def image_files(name: str | Dataset, split: str | None = None, *, root: str | Path | None = None,
                mirror: str | Path | None = None) -> list[Path]:
    """The image files of dataset ``name`` (of one ``split``, e.g. 'train'), fetching it if needed."""
    entry = name if isinstance(name, Dataset) else get(name)
    folder = fetch(entry, root, mirror=mirror)
    if split is not None:
        folder = folder / entry.splits.get(split, split)
    return image_io.list_images(folder)


def _completed(target: Path) -> Path | None:
    marker = target / MARKER
    if not marker.is_file():
        return None
    try:
        sub = json.loads(marker.read_text()).get("subdir", "")
    except (OSError, ValueError):
        return None
    path = target / sub
    return path if path.exists() else None


def _missing(folder: Path, entry: Dataset) -> list[str]:
    """What ``folder`` lacks to be ``entry`` (empty when it is complete)."""
    if not folder.is_dir():
        return [f"the folder {folder.name}/"]
    missing = [p for p in entry.layout if p != "." and not (folder / p).exists()]
    if not missing and entry.n_images is not None:
        found = sum(1 for p in folder.iterdir() if p.suffix.lower() in image_io.IMAGE_SUFFIXES and p.is_file())
        if found != entry.n_images:
            missing.append(f"{entry.n_images} images (found {found})")
    return missing


def _locate(folder: Path, entry: Dataset) -> str | None:
    """The folder (relative to ``folder``) that holds ``entry``: its subdir, itself, or a top-level folder."""
    if not folder.is_dir():
        return None
    children = sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    for sub in dict.fromkeys((entry.subdir, "", *children)):
        if (folder / sub).is_dir() and not _missing(folder / sub, entry):
            return sub
    return None


def _write_marker(folder: Path, entry: Dataset, sub: str, source: str) -> None:
    info = {"name": entry.name, "subdir": sub, "source": source, "sha256": entry.sha256}
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
    and :class:`ChecksumError` raised. Without a checksum, :class:`UnverifiedDownloadWarning` says so.
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

    Members go to a temporary folder beside ``target`` and are checked one by one: none may land
    outside it (``..``, absolute paths, symbolic or hard links pointing out), and device files are
    refused (:class:`UnsafeArchiveError`). The folder is renamed to ``target`` only when complete (and,
    given ``entry``, only when it holds that dataset's layout), with a marker file inside. Returns the
    folder holding the data: ``target``, or the entry's folder inside it.
    """
    archive, target = Path(archive), Path(target)
    if target.exists():
        raise DataError(f"{target} already exists: unpack into a new folder")
    target.parent.mkdir(parents=True, exist_ok=True)
    for stale in target.parent.glob(f".{target.name}.*.tmp"):  # left by a run that was killed
        shutil.rmtree(stale, ignore_errors=True)
    with _staging(target) as tmp:
        _unpack(archive, tmp)
        sub = ""
        if entry is not None:
            found = _locate(tmp, entry)
            if found is None:
                top = ", ".join(sorted(p.name for p in tmp.iterdir())) or "nothing"
                raise DataError(f"{archive.name} was unpacked, but it does not hold {entry.name!r}: it lacks "
                                f"{', '.join(_missing(tmp / entry.subdir, entry))} (its top level: {top})")
            sub = found
            _write_marker(tmp, entry, sub, source=str(archive))
        else:
            (tmp / MARKER).write_text(json.dumps({"subdir": "", "source": str(archive)}) + "\n")
    return target / sub


def _install(archive: Path, target: Path, entry: Dataset) -> Path:
    try:
        return extract(archive, target, entry)
    except _NoRarTool as e:
        raise DataUnavailableError(
            f"{e}\nOr unpack it yourself so that {target} holds "
            f"{entry.subdir + '/' if entry.subdir else ''}{_layout_text(entry)}, "
            f"and call fetch({entry.name!r}) again.") from None


@contextmanager
def _staging(target: Path) -> Iterator[Path]:
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    try:
        tmp.chmod(0o755)
        yield tmp
        os.replace(tmp, target)  # atomic: the target appears complete or not at all
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _unpack(archive: Path, dest: Path) -> None:
    kind = archive_kind(archive)
    if kind == "zip":
        _unzip(archive, dest)
    elif kind == "tar":
        _untar(archive, dest)
    elif kind == "rar":
        _unrar(archive, dest)
    else:
        with open(archive, "rb") as f:
            head = f.read(16)
        raise DataError(f"{archive}: not a zip, tar or rar archive (it starts with {head!r}); "
                        "a download that is an HTML error page looks like this")


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


def _check_destination(archive: Path, dest: Path, name: str, follow_last: bool) -> Path:
    """Where member ``name`` will be written, checked against what is already on disk (links included)."""
    root = os.path.realpath(dest)
    path = dest / name
    real = os.path.realpath(path) if follow_last else os.path.join(os.path.realpath(path.parent), path.name)
    if not _within(real, root):
        raise UnsafeArchiveError(f"{archive.name}: member {name!r} would be written outside the target "
                                 f"folder (through a link); refused")
    return path


def _check_link(archive: Path, dest: Path, name: str, link: str, hard: bool) -> None:
    kind = "hard link" if hard else "link"
    if not link or link.replace("\\", "/").startswith("/") or PureWindowsPath(link).drive:
        raise UnsafeArchiveError(f"{archive.name}: member {name!r} is a {kind} to the absolute path {link!r}; refused")
    base = dest if hard else (dest / name).parent  # hard links name archive paths, symlinks are relative
    if not _within(os.path.realpath(base / link), os.path.realpath(dest)):
        raise UnsafeArchiveError(f"{archive.name}: member {name!r} is a {kind} to {link!r}, outside the "
                                 "target folder; refused")


def _untar(archive: Path, dest: Path) -> None:
    extra = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}  # a second guard where Python has one
    with tarfile.open(archive) as tar:
        for member in tar:
            _check_name(archive, member.name)
            if not (member.isreg() or member.isdir() or member.issym() or member.islnk()):
                raise UnsafeArchiveError(f"{archive.name}: member {member.name!r} is a device file, FIFO or "
                                         "other special file; refused")
            link = member.issym() or member.islnk()
            if link:
                _check_link(archive, dest, member.name, member.linkname, hard=member.islnk())
            _check_destination(archive, dest, member.name, follow_last=not link)
            try:
                tar.extract(member, dest, set_attrs=False, **extra)
            except tarfile.TarError as e:  # FilterError and friends
                raise UnsafeArchiveError(f"{archive.name}: member {member.name!r} refused: {e}") from None


def _unzip(archive: Path, dest: Path) -> None:
    with zipfile.ZipFile(archive) as zf:
        for info in zf.infolist():
            name = info.filename
            _check_name(archive, name)
            kind = stat.S_IFMT(info.external_attr >> 16)
            if kind not in (0, stat.S_IFREG, stat.S_IFDIR, stat.S_IFLNK):
                raise UnsafeArchiveError(f"{archive.name}: member {name!r} is a device file, FIFO or other "
                                         "special file; refused")
            if kind == stat.S_IFLNK:
                link = zf.read(info).decode("utf-8")
                _check_link(archive, dest, name, link, hard=False)
                path = _check_destination(archive, dest, name.rstrip("/"), follow_last=False)
                path.parent.mkdir(parents=True, exist_ok=True)
                if os.path.lexists(path):
                    path.unlink()
                os.symlink(link, path)
                continue
            path = _check_destination(archive, dest, name.rstrip("/"), follow_last=True)
            if info.is_dir() or kind == stat.S_IFDIR:
                path.mkdir(parents=True, exist_ok=True)
                continue
            path.parent.mkdir(parents=True, exist_ok=True)
            with zf.open(info) as src, open(path, "wb") as out:
                shutil.copyfileobj(src, out, _CHUNK)


class _NoRarTool(DataUnavailableError):
    """No program that unpacks RAR is installed."""


def _unrar(archive: Path, dest: Path) -> None:
    """RAR needs an external program (they refuse '..' themselves); the result is checked afterwards."""
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
        _check_tree(archive, dest)
        return
    raise _NoRarTool(f"{archive} is a RAR archive and Python cannot unpack RAR by itself: install unrar, 7z "
                     "or bsdtar (on Colab or Debian: apt-get install unrar) and call fetch again.")


def _check_tree(archive: Path, dest: Path) -> None:
    root = os.path.realpath(dest)
    for folder, dirs, files in os.walk(dest):
        for name in dirs + files:
            path = os.path.join(folder, name)
            mode = os.lstat(path).st_mode
            if stat.S_ISLNK(mode):
                if not _within(os.path.realpath(path), root):
                    raise UnsafeArchiveError(f"{archive.name}: {os.path.relpath(path, dest)!r} is a link to "
                                             f"{os.readlink(path)!r}, outside the target folder; refused")
            elif not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
                raise UnsafeArchiveError(f"{archive.name}: {os.path.relpath(path, dest)!r} is a special file; refused")
