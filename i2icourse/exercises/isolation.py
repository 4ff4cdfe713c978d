"""Keep one submission's run to itself: its own folder, a minimal environment, no process left behind.

:func:`run_folder` gives each run a fresh temporary folder (which holds the kernel's working
directory and ``HOME``), a random token, and the environment the kernel gets: only
:data:`PASSED_ON` from the grader's environment, never the rest of it. When the run ends, every
process it may have left is killed before the folder is removed:

* the kernel's process group (what ``subprocess`` and ``os.fork`` start in the kernel);
* on Linux, any process that carries the run's token in its environment or has its working
  directory inside the run's folder (found by scanning ``/proc``);
* on Linux, any new descendant of the grader. While a run lasts the grader is a *child subreaper*
  (``prctl(PR_SET_CHILD_SUBREAPER)``), so a detached child (double fork, ``setsid``) whose parent
  exits is adopted by the grader rather than by ``init``, and is found even with a cleaned
  environment and ``/`` as its working directory.

Every new descendant of the grader counts as the run's, so runs go one at a time (as in
:func:`i2icourse.exercises.grade`). SIGINT and SIGTERM wait while a run's processes are killed, so
a signal cannot cut that short. This is what keeps runs apart with or without a sandbox; the
sandbox (:mod:`i2icourse.exercises.sandbox`) adds what this cannot: a kernel that cannot see the
grader or the instructor's files, write outside its folder, reach the network, or outlive its PID
namespace. What escapes this module alone: a job handed to another service (``cron``, ``at``,
``systemd-run --user``), and everything the grader's user may read or write.
"""
from __future__ import annotations

import contextlib
import ctypes
import os
import secrets
import shutil
import signal
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import AbstractSet, Iterator, NamedTuple

#: The environment variable that marks a run's processes.
TOKEN = "I2I_GRADE_RUN"
#: What the kernel takes from the grader's environment, when set: finding programs, the language,
#: where Python finds the package, the number of BLAS threads; Windows needs SYSTEMROOT.
PASSED_ON = ("PATH", "LANG", "LC_ALL", "LC_CTYPE", "PYTHONPATH", "OMP_NUM_THREADS", "MKL_NUM_THREADS",
             "OPENBLAS_NUM_THREADS", "SYSTEMROOT")

_PR_SET_CHILD_SUBREAPER, _PR_GET_CHILD_SUBREAPER = 36, 37


@dataclass
class Run:
    """One submission's run: its folder, its token, and the process groups of its kernels.

    The folder holds ``work`` (the kernel's working directory, with the copy of the notebook),
    ``home`` and ``tmp``.
    """
    folder: Path
    token: str
    groups: set[int] = field(default_factory=set)

    @property
    def work(self) -> Path:
        """The kernel's working directory."""
        return self.folder / "work"

    def env(self) -> dict[str, str]:
        """The kernel's whole environment: :data:`PASSED_ON`, ``HOME`` and ``TMPDIR`` inside the run's folder,
        the smoke profile and the run's token."""
        env = {name: os.environ[name] for name in PASSED_ON if name in os.environ}
        env.setdefault("LANG", "C.UTF-8")
        env.update(HOME=str(self.folder / "home"), TMPDIR=str(self.folder / "tmp"), I2I_PROFILE="smoke",
                   **{TOKEN: self.token})
        return env


@contextmanager
def run_folder(prefix: str = "i2i-grade-") -> Iterator[Run]:
    """A fresh folder and token for one run; on exit, kill every process the run left, then remove the folder.

    SIGINT and SIGTERM wait while that is done (:func:`signals_held`): a signal cannot cut the cleanup short.
    """
    with _adopting_orphans():
        before = _descendants(os.getpid(), _processes() or {})
        run = Run(Path(tempfile.mkdtemp(prefix=prefix)).resolve(), secrets.token_hex(16))
        try:
            for name in ("work", "home", "tmp"):
                (run.folder / name).mkdir()
            yield run
        finally:
            with signals_held():
                end_processes(run, before)
                shutil.rmtree(run.folder, ignore_errors=True)


@contextmanager
def signals_held() -> Iterator[None]:
    """Hold SIGINT and SIGTERM while inside; one sent meanwhile is delivered on the way out (POSIX)."""
    held = {signal.SIGINT, signal.SIGTERM}
    if not hasattr(signal, "pthread_sigmask"):
        yield
        return
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, held)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


@contextmanager
def neutral_directory() -> Iterator[Path]:
    """Work from an empty temporary folder while inside, so the grader's working directory tells a notebook nothing."""
    previous = os.getcwd()
    with tempfile.TemporaryDirectory(prefix="i2i-grader-") as tmp:
        os.chdir(tmp)
        try:
            yield Path(tmp)
        finally:
            os.chdir(previous)


def end_processes(run: Run, spared: AbstractSet[int] = frozenset()) -> None:
    """Kill the run's process groups, then every process that belongs to the run, until none is left.

    ``spared``: the grader's descendants from before the run, which are not the run's.
    """
    for group in run.groups:
        with contextlib.suppress(OSError):
            os.killpg(group, signal.SIGKILL)
    for _ in range(100):  # a process may fork while we kill: look again until nothing is found
        procs = _processes()
        if procs is None:  # no /proc: the process groups were all we could do
            return
        _reap(procs, spared)
        found = stragglers(run, procs, spared)
        if not found:
            return
        for pid in found:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.02)


def stragglers(run: Run, procs: dict[int, Proc], spared: AbstractSet[int] = frozenset()) -> set[int]:
    """The live processes that belong to the run: in its process groups, new descendants of the grader, or
    carrying its token or its folder."""
    me = os.getpid()
    new = _descendants(me, procs) - spared
    return {pid for pid, p in procs.items()
            if pid != me and p.state != "Z" and (pid in new or p.group in run.groups or belongs(pid, run))}


def belongs(pid: int, run: Run) -> bool:
    """Whether process ``pid`` has the run's token in its environment or its working directory in the run's folder."""
    with contextlib.suppress(OSError):
        if f"{TOKEN}={run.token}".encode() in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0"):
            return True
    with contextlib.suppress(OSError):
        cwd = Path(os.readlink(f"/proc/{pid}/cwd"))
        return cwd == run.folder or run.folder in cwd.parents
    return False


class Proc(NamedTuple):
    """What ``/proc/PID/stat`` says of a process."""
    parent: int
    group: int
    state: str


def _processes() -> dict[int, Proc] | None:
    """Every process on the machine (None where there is no ``/proc``)."""
    if not os.path.isdir("/proc/self"):
        return None
    procs = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            with contextlib.suppress(OSError, ValueError, IndexError):
                stat = Path(entry.path, "stat").read_text()
                state, parent, group = stat[stat.rindex(")") + 2:].split()[:3]  # the name may hold spaces
                procs[int(entry.name)] = Proc(int(parent), int(group), state)
    return procs


def _descendants(root: int, procs: dict[int, Proc]) -> set[int]:
    """The processes below ``root`` (its children, theirs, and so on)."""
    children: dict[int, list[int]] = {}
    for pid, p in procs.items():
        children.setdefault(p.parent, []).append(pid)
    found, todo = set(), [root]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def _reap(procs: dict[int, Proc], spared: AbstractSet[int]) -> None:
    """Collect the exit status of the run's dead children of the grader (adopted orphans become such zombies)."""
    me = os.getpid()
    for pid, p in procs.items():
        if p.parent == me and p.state == "Z" and pid not in spared:
            with contextlib.suppress(ChildProcessError, OSError):
                os.waitpid(pid, os.WNOHANG)


@contextmanager
def _adopting_orphans() -> Iterator[bool]:
    """Make this process adopt its orphaned descendants while inside (Linux); yields whether it could."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        previous = ctypes.c_int(0)
        ok = libc.prctl(_PR_GET_CHILD_SUBREAPER, ctypes.byref(previous), 0, 0, 0) == 0 \
            and libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    except (OSError, AttributeError):  # not Linux
        ok = False
    try:
        yield ok
    finally:
        if ok:
            libc.prctl(_PR_SET_CHILD_SUBREAPER, previous.value, 0, 0, 0)
