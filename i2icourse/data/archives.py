"""Unpacking an archive safely, all at once or not at all (:func:`extract`).

Members that would land outside the target folder (``..``, absolute paths), links of any kind and
device files are refused (:class:`UnsafeArchiveError`), and so is an archive that unpacks to too
much. Unpacking one archive is refused as soon as it passes any of these (:class:`ArchiveLimits`,
whose defaults are far above every registered dataset):

* **size**: at most ``max_ratio`` = 200 times the archive's size (the registry's recorded ``size``
  where there is one, else the file's size on disk), and never more than ``max_bytes`` = 64 GiB.
  Photos barely compress, so a real dataset unpacks to about its archive's size; a "zip bomb" (a
  1 MB zip that unpacks to 1 GiB of zeros) is refused before it is written out;
* **members**: at most ``max_members`` = 200,000 files and folders;
* **depth**: at most ``max_depth`` = 32 folders from the top to a member (deep trees overflow the
  recursive file-system code of Python before 3.12, and of tools).

Zip and tar archives are checked member by member before each is written (a zip's listing first of
all); a RAR archive, unpacked by an external tool, is checked when the tool is done. A trusted
archive beyond a limit can be unpacked with ``extract(..., limits=ArchiveLimits(...))``.
"""
from __future__ import annotations

import gzip
import lzma
import os
import re
import shutil
import stat
import subprocess
import tarfile
import tempfile
import zipfile
import zlib
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Iterator, NoReturn

from i2icourse.data.download import CHUNK
from i2icourse.data.errors import DataError, DataUnavailableError
from i2icourse.data.layout import count_images, locate, missing_parts, read_marker, write_marker
from i2icourse.data.locks import dataset_lock, process_alive
from i2icourse.data.registry import Dataset, human_size

class UnsafeArchiveError(DataError):
    """An archive with a member that would be written outside its folder, a special file, or past a limit."""


class BadArchive(DataError):
    """An archive that cannot be read whole (cut short, damaged, not an archive): a fresh copy should fix it."""

    def __init__(self, archive: Path, problem: str) -> None:
        self.problem = f"{archive.name}: {problem}"
        super().__init__(f"{self.problem}\nDelete {archive} (or replace it with a complete copy) and fetch the "
                         "dataset again.")


class NoRarTool(DataUnavailableError):
    """No program that unpacks RAR is installed."""


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


@dataclass(frozen=True)
class ArchiveLimits:
    """What one archive may unpack to; past any limit it is refused (:class:`UnsafeArchiveError`) as it is read.

    The defaults are far above every registered dataset and far below what fills a disk or overflows
    a stack; the module docstring says why each one is there.
    """

    max_ratio: float = 200.0     #: unpacked bytes per byte of the archive (its recorded size, else its size on disk)
    max_bytes: int = 64 << 30    #: unpacked bytes in all, however large the archive (64 GiB)
    max_members: int = 200_000   #: files and folders
    max_depth: int = 32          #: folders from the top to a member, counting the member ('a/b/c.png' is 3)


class _Budget:
    """What unpacking one archive has written so far, checked against its :class:`ArchiveLimits`."""

    def __init__(self, archive: Path, entry: Dataset | None, limits: ArchiveLimits) -> None:
        recorded = entry.size if entry is not None else None
        base = recorded if recorded else archive.stat().st_size
        by_ratio = int(limits.max_ratio * max(base, 1))
        self.archive, self.limits = archive, limits
        self.max_bytes = min(limits.max_bytes, by_ratio)
        if by_ratio <= limits.max_bytes:
            self.why = (f"{limits.max_ratio:g} times the archive's {'recorded ' if recorded else ''}size of "
                        f"{human_size(base)}")
            self.verdict = ("refused as a decompression bomb (photos barely compress, so a dataset unpacks to "
                            "about its archive's size)")
        else:
            self.why, self.verdict = "the limit for any archive", "refused: no dataset is so large"
        self.members = self.bytes = 0

    def listing(self, count: int, total: int) -> None:
        """Check what an archive's listing announces (a zip's), before anything is written."""
        self._check_count(count)
        self._check_bytes(total)

    def member(self, name: str) -> None:
        """Count one more member, and check how deep its path lies."""
        self.members += 1
        self._check_count(self.members)
        depth = len(PurePosixPath(name.replace("\\", "/")).parts)
        if depth > self.limits.max_depth:
            shown = name if len(name) <= 80 else f"{name[:60]}...{name[-12:]}"
            raise UnsafeArchiveError(f"{self.archive.name}: member {shown!r} lies {depth} folders deep, more than "
                                     f"the {self.limits.max_depth} allowed; no dataset nests so deep, so the "
                                     "archive is refused")

    def spend(self, n: int) -> None:
        """Count ``n`` more unpacked bytes."""
        self.bytes += n
        self._check_bytes(self.bytes)

    def _check_count(self, count: int) -> None:
        if count > self.limits.max_members:
            raise UnsafeArchiveError(f"{self.archive.name}: more than {self.limits.max_members:,} files and folders; "
                                     "no dataset has so many, so the archive is refused" + _TRUSTED)

    def _check_bytes(self, total: int) -> None:
        if total > self.max_bytes:
            raise UnsafeArchiveError(f"{self.archive.name}: unpacks to more than {human_size(self.max_bytes)} "
                                     f"({self.why}); {self.verdict}" + _TRUSTED)


_TRUSTED = ". For an archive you trust, unpack it with extract(archive, folder, limits=ArchiveLimits(...))."


def extract(archive: str | Path, target: str | Path, entry: Dataset | None = None, *,
            limits: ArchiveLimits = ArchiveLimits()) -> Path:
    """Unpack ``archive`` safely into the new folder ``target``, all at once or not at all.

    Members go to a staging folder beside ``target`` and are checked one by one: none may land outside
    it (``..``, absolute paths), and links (symbolic or hard) and device files are refused
    (:class:`UnsafeArchiveError`): no registered dataset needs a link, and a chain of links that each
    point inside can still lead out. An archive past one of ``limits`` (its unpacked size, from the
    entry's recorded ``size`` where there is one, its count of members, its depth) is refused too.
    The finished tree is checked again, whatever the archive's kind.
    The folder is renamed to ``target`` only when complete (and, given ``entry``, only when it holds that
    dataset's layout and its ``n_images`` image files), with a marker file inside. Returns the folder
    holding the data: ``target``, or the entry's folder inside it.

    Two processes extracting into one ``target`` take turns (:func:`~i2icourse.data.locks.dataset_lock`); the
    second finds the first one's install of the same archive and returns it. Any other existing ``target`` is an error.
    """
    archive, target = Path(archive), Path(target)
    with dataset_lock(target):
        installed = _installed_from(target, archive, entry)
        if installed is not None:
            return installed
        return extract_locked(archive, target, entry, limits)


def _source(archive: Path) -> str:
    return str(archive.absolute())


def _installed_from(target: Path, archive: Path, entry: Dataset | None) -> Path | None:
    """The data folder in ``target`` if its marker says it was unpacked from ``archive`` as ``entry``."""
    info = read_marker(target)
    if info is None or info.get("source") != _source(archive) or info.get("name") != (entry and entry.name):
        return None
    path = target / info.get("subdir", "")
    return path if path.exists() else None


def extract_locked(archive: Path, target: Path, entry: Dataset | None,
                    limits: ArchiveLimits = ArchiveLimits()) -> Path:
    """:func:`extract`, for a caller that holds the dataset's lock."""
    if target.exists():
        raise DataError(f"{target} already exists: unpack into a new folder")
    _remove_abandoned_staging(target)
    with _staging(target) as tmp:
        _unpack(archive, tmp, _Budget(archive, entry, limits))
        _check_tree(archive, tmp, _Budget(archive, entry, limits))
        sub = "" if entry is None else _dataset_folder(archive, tmp, entry)
        write_marker(tmp, entry, sub, source=_source(archive))
    return target / sub


def _dataset_folder(archive: Path, tmp: Path, entry: Dataset) -> str:
    """The folder in the unpacked ``tmp`` that holds ``entry``, complete; an error says what is missing."""
    found = locate(tmp, entry)
    if found is not None:
        return found
    laid_out = locate(tmp, entry, count=False)
    if laid_out is not None:  # the layout is there, but not every image file
        raise BadArchive(archive, f"it holds {count_images(tmp / laid_out)} image files of {entry.name!r}, "
                                   f"expected {entry.n_images}: the archive is incomplete (a download cut short?) "
                                   "or another version of the dataset.")
    top = ", ".join(sorted(p.name for p in tmp.iterdir())) or "nothing"
    raise DataError(f"{archive.name} was unpacked, but it does not hold {entry.name!r}: it lacks "
                    f"{', '.join(missing_parts(tmp / entry.subdir, entry))} (its top level: {top})")


@contextmanager
def _staging(target: Path) -> Iterator[Path]:
    """A new folder ``.<target>.<pid>.<random>.tmp`` beside ``target``, renamed to ``target`` at the end."""
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.{os.getpid()}.", suffix=".tmp", dir=target.parent))
    try:
        tmp.chmod(0o755)
        yield tmp
        os.replace(tmp, target)  # atomic: the target appears complete or not at all
    except BaseException:
        _remove_tree(tmp)
        raise


def _remove_tree(path: Path) -> None:
    """``shutil.rmtree(path, ignore_errors=True)`` without its recursion, which a deep tree overflows (Python < 3.12)."""
    stack = [(str(path), False)]
    while stack:
        folder, emptied = stack.pop()
        if emptied:
            with suppress(OSError):
                os.rmdir(folder)
            continue
        stack.append((folder, True))  # removed once everything in it is
        try:
            with os.scandir(folder) as entries:
                for item in entries:
                    if item.is_dir(follow_symlinks=False):
                        stack.append((item.path, False))
                    else:
                        with suppress(OSError):
                            os.unlink(item.path)
        except OSError:
            pass


def _staging_owner(folder: Path, target: Path) -> int | None:
    """The process that unpacks into staging folder ``folder`` (``.<target>.<pid>.<random>.tmp``), if it is one."""
    found = re.fullmatch(rf"\.{re.escape(target.name)}\.(\d+)\.[a-z0-9_]+\.tmp", folder.name)
    return int(found.group(1)) if found else None


def _remove_abandoned_staging(target: Path) -> None:
    """Remove the staging folders of ``target`` whose process is gone: installs killed half-way."""
    for folder in target.parent.iterdir():
        owner = _staging_owner(folder, target)
        if owner is not None and not process_alive(owner):
            _remove_tree(folder)


_DAMAGED = (EOFError, zlib.error, tarfile.ReadError, zipfile.BadZipFile, gzip.BadGzipFile, lzma.LZMAError)
_COMPRESSED = {b"PK\x03\x04": "a zip archive", b"\x1f\x8b": "a gzip file", b"BZh": "a bzip2 file",
               b"\xfd7zXZ": "an xz file"}


def _unpack(archive: Path, dest: Path, budget: _Budget) -> None:
    kind = archive_kind(archive)
    try:
        if kind == "zip":
            _unzip(archive, dest, budget)
        elif kind == "tar":
            _untar(archive, dest, budget)
        elif kind == "rar":
            _unrar(archive, dest)
        else:
            _not_an_archive(archive)
    except _DAMAGED as e:  # the data ends early, or fails its own check (CRC)
        raise BadArchive(archive, f"the archive is damaged or incomplete ({type(e).__name__}: {e}); "
                                   "a download cut short looks like this.") from None


def _not_an_archive(archive: Path) -> NoReturn:
    with open(archive, "rb") as f:
        head = f.read(16)
    for magic, what in _COMPRESSED.items():
        if head.startswith(magic):
            raise BadArchive(archive, f"it starts as {what} but cannot be read to its end: it is "
                                       "incomplete (a download cut short?) or damaged.")
    raise BadArchive(archive, f"not a zip, tar or rar archive (it starts with {head!r}); a download that is "
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


def _untar(archive: Path, dest: Path, budget: _Budget) -> None:
    extra = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}  # a second guard where Python has one
    with tarfile.open(archive) as tar:
        for member in tar:
            _check_name(archive, member.name)
            budget.member(member.name)
            budget.spend(member.size)  # what extracting it writes: counted before it is written
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


def _unzip(archive: Path, dest: Path, budget: _Budget) -> None:
    with zipfile.ZipFile(archive) as zf:
        infos = zf.infolist()
        budget.listing(len(infos), sum(info.file_size for info in infos))  # what it says, before writing a byte
        for info in infos:
            name = info.filename
            _check_name(archive, name)
            budget.member(name)
            kind = stat.S_IFMT(info.external_attr >> 16)
            if kind == stat.S_IFLNK:
                _refuse_link(archive, name, "symbolic link")
            if kind not in (0, stat.S_IFREG, stat.S_IFDIR):
                _refuse_special(archive, name)
            with _name_clash(archive, name):
                _unzip_member(zf, info, dest, budget)


def _unzip_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, dest: Path, budget: _Budget) -> None:
    path = dest / info.filename.rstrip("/")
    if info.is_dir() or stat.S_IFMT(info.external_attr >> 16) == stat.S_IFDIR:
        path.mkdir(parents=True, exist_ok=True)
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with zf.open(info) as src, open(path, "wb") as out:
        while block := src.read(CHUNK):
            budget.spend(len(block))  # the bytes themselves, whatever the listing said
            out.write(block)


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
    raise NoRarTool(f"{archive} is a RAR archive and Python cannot unpack RAR by itself: install unrar, 7z "
                     "or bsdtar (on Colab or Debian: apt-get install unrar) and call fetch again.")


def _check_tree(archive: Path, dest: Path, budget: _Budget) -> None:
    """Check what unpacking left in ``dest``, whatever wrote it: plain files and folders only, no links, and
    within the limits of ``budget`` (a RAR tool's output is checked here only)."""
    root = os.path.realpath(dest)
    folders = [str(dest)]
    while folders:  # not os.walk, which recurses once per level (Python < 3.12): a deep tree overflows it
        folder = folders.pop()
        for name in sorted(os.listdir(folder)):
            path = os.path.join(folder, name)
            where = os.path.relpath(path, dest)
            budget.member(where)
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
            if stat.S_ISDIR(info.st_mode):
                folders.append(path)
            else:
                budget.spend(info.st_size)
