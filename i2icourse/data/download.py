"""Downloading one file: resume, a size limit, and checksums (:func:`download`).

Bytes go to ``<file>.part``, and an interrupted download is resumed with an HTTP Range request. A
download with a recorded size is stopped as soon as the server sends more than that (a wrong or
hostile server cannot fill the disk), and so is one whose announced length is larger. Only a file
of the recorded size and sha256 is renamed into place; without a checksum,
:class:`UnverifiedDownloadWarning` says so. :func:`i2icourse.data.fetch.fetch` downloads through here.
"""
from __future__ import annotations

import hashlib
import http.client
import os
import socket
import urllib.error
import urllib.request
import warnings
from pathlib import Path
from typing import NoReturn, Sequence

from tqdm.auto import tqdm

from i2icourse import REPOSITORY_URL, __version__
from i2icourse.data.errors import DataError, DataUnavailableError

CHUNK = 1 << 20  #: bytes read at a time, from a server or a file
_USER_AGENT = f"i2icourse/{__version__} (+{REPOSITORY_URL})"


class ChecksumError(DataError):
    """A file whose size or sha256 is not the one recorded for it."""


class UnverifiedDownloadWarning(UserWarning):
    """A download that worked but could not be verified: no checksum is recorded for it."""


class _Unreachable(Exception):
    """This URL cannot be used now (no connection, HTTP error): try the next one."""


class _Interrupted(Exception):
    """The transfer stopped early: resume it."""


def sha256sum(path: str | Path) -> str:
    """The sha256 of a file, as 64 hex digits."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(CHUNK):
            digest.update(block)
    return digest.hexdigest()


def verify_file(path: Path, sha256: str | None, size: int | None) -> None:
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
    and :class:`ChecksumError` raised; a response longer than ``size`` is stopped as soon as it passes
    it, so a wrong server cannot fill the disk. Without a checksum, :class:`UnverifiedDownloadWarning` says so:
    then a body cut short by a server that sends no length looks complete here, and only unpacking
    it (as :func:`~i2icourse.data.fetch.fetch` does) can tell.
    """
    urls = [urls] if isinstance(urls, str) else list(urls)
    dest = Path(dest)
    if dest.is_file():
        verify_file(dest, sha256, size)
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
        if size is not None and total is not None and total > size:
            _too_long(part, url, size, f"the server announces {total} bytes")
        got = offset
        with open(part, "ab" if resumed else "wb") as out, \
                tqdm(total=total, initial=offset, unit="B", unit_scale=True, unit_divisor=1024,
                     desc=part.name[:-len(".part")], disable=not progress, leave=False) as bar:
            while chunk := response.read(CHUNK):
                got += len(chunk)
                if size is not None and got > size:  # stopped at once: a wrong server cannot fill the disk
                    out.close()
                    _too_long(part, url, size, f"more than {size} bytes came")
                out.write(chunk)
                bar.update(len(chunk))
    got = part.stat().st_size
    if total is not None and got < total:
        raise _Interrupted(f"the connection closed after {got} of {total} bytes")


def _too_long(part: Path, url: str, size: int, what: str) -> NoReturn:
    """Stop a download that is longer than its recorded size, deleting what it wrote."""
    part.unlink(missing_ok=True)
    raise ChecksumError(f"{part.name[:-len('.part')]}: {what} from {url}, but its recorded size is {size} bytes: "
                        "another file than the one recorded, so the download was stopped and deleted. Call fetch "
                        "again to retry; if it fails again, the server's file has changed: report it.")


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
