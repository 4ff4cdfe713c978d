"""The grader's verdict on one answer: the check runs in the grader's process, the answer in the submission's kernel.

After a submission's cells have run, :func:`judge` tests each answer with a fresh copy of its
check, loaded from the checks' folder (the package :mod:`i2icourse.checks`, every chapter's module anew). The check never sees the student's object: it gets an
:class:`i2icourse.checks.Elsewhere`, each call of which is a request to the kernel
(:mod:`i2icourse.exercises.calls`): the arguments go there as data, the answer runs there, and its
result comes back as data, read with ``torch.load(weights_only=True)``. Where a check needs more
than data (modules and optimisers, a backward pass), a probe of the course's own checks, taken from
the checks' folder in the kernel, runs beside the answer and returns data. The verdict is computed
here, from what came back.

What this defends: code that the notebook leaves in its kernel (a patched ``json.dumps``,
``print`` or ``sys.stdout``, ``builtins.exec`` or ``compile`` that read the grader's cells, a
replaced ``i2icourse.checks`` or ``torch`` function, an IPython hook, a thread) can change what
the kernel sends back, but what it sends back is only the answer's result: tensors, numbers,
lists. A forged result is an answer like any other, and it passes only if it is right; a reply that
is not data is an ``error``; no reply, or more than one, is an ``error`` too. Nothing the kernel
sends is run, or unpickled as objects, on this side. What it does not defend: the answer computes
its result as it likes, so an answer that calls the course's own reference code passes; and the
kernel's process, files and network are the sandbox's business, not this module's.
"""
from __future__ import annotations

import types
from functools import partial
from pathlib import Path
from typing import Any, Callable

import torch

from i2icourse.exercises import calls

#: The statuses a check can give; "no answer" means the answer's expression could not be evaluated.
VERDICTS = ("pass", "fail", "error", "not attempted", "no answer", "timeout")

#: Sends one request to the kernel that holds the answers and returns its reply (both as text).
Send = Callable[[str], str]


class Raised(Exception):
    """The answer raised, in its kernel: the exception's type name and message (the exception itself stays there)."""

    def __init__(self, name: str, message: str) -> None:
        super().__init__(message)
        self.name, self.message = name, message


class Unchecked(BaseException):
    """The kernel gave no reply to read (it ran out of time, died, or printed none): the check stops with this
    status and message. A ``BaseException``, so that no check's ``except Exception`` takes it for the answer's."""

    def __init__(self, status: str, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


def verdict(label: str, status: str, message: str) -> dict[str, str]:
    """One result, as the grader records it."""
    return {"label": label, "status": status, "message": message}


def judge(label: str, expression: str, checks_dir: str | Path, kernel: Send | dict[str, Any]) -> dict[str, str]:
    """Test the answer ``expression`` with a fresh copy of the check of ``label``, run here; the answer is called
    where it lives: in the kernel that ``kernel`` sends requests to, or in this process's namespace ``kernel``.
    ``checks_dir`` is the folder of the checks package (``i2icourse/checks``).

    The status is ``pass``, ``fail`` (the check said what differs), ``error`` (the answer raised,
    or gave back what is not data), ``not attempted`` (it raised ``NotImplementedError``: an
    unfinished stub), ``no answer`` (the expression itself could not be evaluated), or the status of
    an :class:`Unchecked` the sender raised (``timeout``, ``error``).
    """
    send = kernel if callable(kernel) else partial(calls.reply, checks_dir=checks_dir, namespace=kernel)
    try:
        try:
            ask(send, ("evaluate", expression))
        except (Raised, NotImplementedError) as e:
            name = e.name if isinstance(e, Raised) else "NotImplementedError"
            return verdict(label, "no answer", f"{name}: {e}")
        with calls.fresh_package(Path(checks_dir).parent):
            try:
                checks = calls.load_checks(checks_dir)
            except Exception as e:
                return verdict(label, "error", f"the checks would not load ({type(e).__name__}: {e})")
            check = checks.CHECKS.get(label)
            if check is None:
                return verdict(label, "error", f"no check is registered for {label}")
            answer = checks.Elsewhere(partial(_call, send, expression, checks))
            try:
                message = check(answer)
            except NotImplementedError as e:
                return verdict(label, "not attempted", f"NotImplementedError: {e}")
            except checks.Wrong as e:
                return verdict(label, "fail", str(e))
            except Raised as e:
                return verdict(label, "error", f"your code raised {e.name}: {e.message}")
            except calls.NotData as e:
                return verdict(label, "error", f"your code gave back what the grader does not read as data ({e})")
            except (Exception, SystemExit) as e:
                return verdict(label, "error", f"your code raised {type(e).__name__}: {e}")
    except calls.NotData as e:
        return verdict(label, "error", f"the kernel's reply was not data ({e}): the notebook may have changed its "
                                       "kernel; read it")
    except Unchecked as e:
        return verdict(label, e.status, e.message)
    return verdict(label, "pass", str(message))


def ask(send: Send, request: tuple) -> Any:
    """Send one request and return the value it replied, or raise what the answer raised there
    (``NotImplementedError`` as itself, anything else as :class:`Raised`); :class:`calls.NotData` for a reply
    that is neither."""
    found = calls.loads(send(calls.dumps(request)))
    if isinstance(found, tuple) and len(found) == 2 and found[0] == "returned":
        return calls.unpack(found[1])
    if isinstance(found, tuple) and len(found) == 3 and found[0] == "raised" \
            and type(found[1]) is str and type(found[2]) is str:
        if found[1] == "NotImplementedError":
            raise NotImplementedError(found[2])
        raise Raised(found[1], found[2])
    raise calls.NotData("a reply that is neither a result nor an exception")


def _call(send: Send, expression: str, checks: types.ModuleType, probe: Callable[..., Any] | None,
          args: tuple, kwargs: dict) -> Any:
    """Call the answer (``probe`` None) or ``probe`` beside it, in the kernel, on these arguments; the result."""
    if probe is not None and not _travels(probe, checks):
        raise TypeError(f"{probe!r} is not a function of the checks: it cannot run beside the answer")
    node = calls.pack((probe, args, kwargs), extra=partial(_request_node, checks))
    return ask(send, ("call", expression, node))


def _travels(fn: Any, checks: types.ModuleType) -> bool:
    """Whether ``fn`` is a function of the ``checks`` package, which the kernel finds by its name."""
    return calls.of_checks(fn, checks)


def _request_node(checks: types.ModuleType, value: Any) -> tuple | None:
    """The node of what only requests carry (a generator's state, a function of the checks by name), else None."""
    if isinstance(value, torch.Generator):
        return ("generator", value.get_state())
    if _travels(value, checks):
        return ("function", value.__name__)
    return None
