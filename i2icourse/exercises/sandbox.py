"""The sandbox a submission's kernel runs in: Linux namespaces made with bubblewrap (``bwrap``).

The kernel's command is wrapped in ``bwrap``, which gives it namespaces of its own:

* **user**: it runs as user 65534 (``nobody``). Where the grader is root and ``nobody`` can reach
  the Python environment, ``setpriv`` drops to that user *before* ``bwrap`` starts, so the kernel
  is ``nobody`` outside its namespace too and root's files stay closed to it. Otherwise (the
  grader is not root, or its Python lies under ``/root``) it is 65534 inside its namespace and the
  grader's own user outside, without any capability there: it can read what that user can read
  and is not hidden, and write nothing but its run's folder.
* **PID**: it sees only its own processes in its ``/proc``; the grader and its command line, its
  environment and its signals are out of reach. When the kernel ends (``--die-with-parent``:
  when the grader does too) the namespace's first process dies, and the kernel kills every
  process left in it, however it forked or whatever session it started.
* **mount**: ``/`` (the package, the Python environment) is read-only. Empty folders replace the
  instructor's files (the chapter notebooks, the repository's ``notebooks/``, ``.git`` and built
  book), the submissions folder, the grader's ``HOME`` and the machine's shared places (``/tmp``,
  ``/run`` with its sockets, ``/home``, ``/root``); what Python needs from those (its prefix, the
  folders on ``sys.path``) comes back read-only. The run's folder is the only writable place.
* **network**, IPC, UTS: no network at all (only a loopback of its own). The kernel and the grader
  talk over ZMQ's ``ipc`` transport, through socket files in the run's folder.
* a new session (``--new-session``): it cannot push keys into the grader's terminal.

:func:`find` tries this once per grading and says what it could make; inside a container that
forbids namespaces (Docker's default seccomp profile), ``bwrap`` fails and :func:`find` says why.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from jupyter_client import AsyncKernelManager

NOBODY = 65534
#: The machine's shared places, replaced by empty folders in the sandbox.
SHARED = ("/tmp", "/var/tmp", "/run", "/home", "/root", "/mnt", "/media", "/srv")
#: The namespaces ``bwrap`` makes, besides the user namespace.
NAMESPACES = ("--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try")


class Unavailable(RuntimeError):
    """No sandbox can be made here; the message says why."""


@dataclass(frozen=True)
class Sandbox:
    """How to wrap a kernel's command: the folders to empty, those to give back read-only, and whether to drop root."""
    hidden: tuple[str, ...]
    exposed: tuple[str, ...]
    drop_root: bool

    def describe(self) -> str:
        """One line for the grader's output."""
        outside = "dropped from root" if self.drop_root else "the grader's own user outside its namespace"
        return (f"bubblewrap (pid, mount, net, ipc, uts and user namespaces; uid {NOBODY}, {outside}; "
                f"/ read-only; {len(self.hidden)} folders emptied, the instructor's among them)")

    @property
    def uid(self) -> int | None:
        """The user the kernel's files must belong to, where it differs from the grader's (None: the grader's)."""
        return NOBODY if self.drop_root else None

    def wrap(self, argv: list[str], folder: Path, workdir: Path) -> list[str]:
        """``argv`` as run in the sandbox, with ``folder`` writable and ``workdir`` its working directory."""
        drop = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", "--"] if self.drop_root else []
        cmd = drop + ["bwrap", "--unshare-user", "--uid", str(NOBODY), "--gid", str(NOBODY), *NAMESPACES,
                      "--die-with-parent", "--new-session",
                      "--unsetenv", "JPY_PARENT_PID",  # the kernel would watch a pid it cannot see, and quit
                      "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc"]
        for path in self.hidden:
            cmd += ["--tmpfs", path]
        for path in self.exposed:
            cmd += ["--ro-bind", path, path]
        return cmd + ["--bind", str(folder), str(folder), "--chdir", str(workdir), "--", *argv]

    def give(self, *paths: Path) -> None:
        """Make ``paths`` the kernel's, where it runs as another user than the grader."""
        if self.uid is not None:
            for path in paths:
                os.chown(path, self.uid, self.uid)


def plan(instructor: Iterable[str | Path], drop_root: bool) -> Sandbox:
    """The sandbox that hides ``instructor``'s folders (and the repository's), the shared places and ``HOME``."""
    package = Path(__file__).resolve().parents[1]  # i2icourse/
    repository = package.parent
    private = [Path(p) for p in instructor]
    if (repository / "pyproject.toml").is_file():  # a checkout: its notebooks, history and built book
        private += [repository / "notebooks", repository / ".git", repository / "book" / "_build"]
    private = [p.resolve() for p in private if p.exists()]
    shared = [Path(p).resolve() for p in (*SHARED, os.environ.get("HOME", "/root")) if Path(p).is_dir()]
    hidden = _outermost(private + shared)
    needed = [Path(p).resolve() for p in (sys.prefix, sys.base_prefix, Path(sys.executable).resolve().parent,
                                          package, *sys.path) if p and Path(p).is_dir()]
    exposed = _outermost(p for p in needed  # never a folder holding the instructor's (a checkout on sys.path)
                         if _under(p, shared) and not _under(p, private) and not any(_under(h, [p]) for h in private))
    return Sandbox(tuple(map(str, hidden)), tuple(map(str, exposed)), drop_root)


def find(instructor: Iterable[str | Path]) -> Sandbox:
    """A sandbox that works here (a Python with the package starts in it), or :class:`Unavailable` with why not."""
    if not sys.platform.startswith("linux"):
        raise Unavailable(f"sandboxes need Linux namespaces; this is {sys.platform}")
    if shutil.which("bwrap") is None:
        raise Unavailable("bubblewrap (bwrap) is not installed (Debian, Ubuntu: apt-get install bubblewrap)")
    instructor = list(instructor)
    tries = [True, False] if os.geteuid() == 0 and shutil.which("setpriv") else [False]
    why = ""
    for drop_root in tries:
        sandbox = plan(instructor, drop_root)
        why = _try(sandbox)
        if not why:
            return sandbox
    raise Unavailable(f"bubblewrap could not make its namespaces here ({why}); inside a container, "
                      "run it with namespaces allowed, or rely on the container and pass --no-sandbox")


def _try(sandbox: Sandbox) -> str:
    """Start Python with the package in ``sandbox``: "" if it ran, else what went wrong."""
    with tempfile.TemporaryDirectory(prefix="i2i-sandbox-probe-") as tmp:
        folder = Path(tmp).resolve()
        sandbox.give(folder)
        probe = [sys.executable, "-c", "import i2icourse.checks, ipykernel"]
        try:
            done = subprocess.run(sandbox.wrap(probe, folder, folder), capture_output=True, text=True, timeout=60,
                                  env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8"})
        except (OSError, subprocess.TimeoutExpired) as e:
            return str(e)
    lines = (done.stderr or done.stdout).strip().splitlines()
    return "" if done.returncode == 0 else (lines[-1] if lines else f"exit status {done.returncode}")


def _under(path: Path, folders: Iterable[Path]) -> bool:
    """Whether ``path`` is one of ``folders`` or inside one."""
    return any(path == f or f in path.parents for f in folders)


def _outermost(paths: Iterable[Path]) -> list[Path]:
    """The paths, without duplicates or any that lies inside another, sorted."""
    paths = sorted(set(paths))
    return [p for p in paths if not any(q in p.parents for q in paths)]


def kernel_manager(kernel: str, sandbox: Sandbox, folder: Path, workdir: Path) -> AsyncKernelManager:
    """A manager for kernel ``kernel`` run in ``sandbox``, talking to the grader through socket files in ``folder``.

    Its network namespace has no way to the grader's ``127.0.0.1``, so the kernel uses ZMQ's ``ipc``
    transport; it is interrupted by a message, since a signal would reach ``bwrap``, not the kernel.
    """
    sockets = folder / "ipc"
    sockets.mkdir(exist_ok=True)
    sandbox.give(sockets)
    km = _SandboxedKernelManager(kernel_name=kernel, transport="ipc", ip=str(sockets / "kernel"),
                                 connection_file=str(sockets / "kernel.json"))
    km.sandbox, km.folder, km.workdir = sandbox, folder, workdir
    km.kernel_spec.interrupt_mode = "message"
    return km


class _SandboxedKernelManager(AsyncKernelManager):
    """A kernel manager that wraps the kernel's command in the sandbox and gives it its connection file."""
    sandbox: Sandbox
    folder: Path
    workdir: Path

    def format_kernel_cmd(self, extra_arguments: list[str] | None = None) -> list[str]:
        return self.sandbox.wrap(super().format_kernel_cmd(extra_arguments), self.folder, self.workdir)

    def write_connection_file(self, **kwargs: object) -> None:
        super().write_connection_file(**kwargs)
        self.sandbox.give(Path(self.connection_file))
