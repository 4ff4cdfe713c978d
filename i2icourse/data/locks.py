"""One install at a time: the lock of a dataset folder (:func:`dataset_lock`).

Two notebooks, or two users of one shared cache, may fetch the same dataset at the same time. Each
install holds a lock, the file ``.<name>.lock`` beside ``<name>/``: the first process downloads and
unpacks, the second waits, then finds the complete dataset and returns it. A staging folder
``.<name>.<pid>.*.tmp`` names the process unpacking into it, and is removed by a later install only
once that process is gone (killed half-way): :func:`process_alive` tells.
"""
from __future__ import annotations

import os
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None

HAVE_FLOCK = fcntl is not None  #: whether the dataset lock can use fcntl.flock (else: a pid file)
#: How :func:`dataset_lock` locks unless told: ``"flock"`` where ``fcntl`` exists, else ``"pidfile"``.
DEFAULT_METHOD = "flock" if HAVE_FLOCK else "pidfile"


def _lock_path(target: Path) -> Path:
    return target.parent / f".{target.name}.lock"


@contextmanager
def dataset_lock(target: Path, method: str = DEFAULT_METHOD) -> Iterator[None]:
    """Hold the lock of dataset folder ``target``: one process installs it, the others wait their turn.

    The lock is the file ``.<name>.lock`` beside ``target``, holding the owner's process id, and removed
    when let go. ``"flock"`` (Linux, macOS: wherever ``fcntl`` exists) locks it with ``fcntl.flock``,
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
            if owner is not None and not process_alive(owner):
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


def process_alive(pid: int) -> bool:
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
