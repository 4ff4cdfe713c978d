"""Check a student's answer to an exercise: ``check("ex-00-1", my_psnr)`` prints PASS or FAIL.

Each exercise with code has one check in this package, registered under its label with :func:`register`. A
check tries the answer on a few small inputs against a reference computation and either returns a
one-line success message or raises :class:`Wrong` saying what differs (shape, range, the value at a
point) without giving the solution away. Checks run offline in seconds on a CPU, and need no widgets.

A check calls the answer on data only: tensors, numbers, strings, lists, tuples, dicts, a
``torch.Generator``, and this package's own functions. What data cannot carry (modules and
optimisers to train, a backward pass through the result) a *probe* of this package does beside the
answer, returning data (:func:`beside`). So the check can run in another process than the answer.

What :func:`check` prints is for the student only. The autograder (``python -m i2icourse.exercises
grade``) does not read it: after a submission's cells have run, it runs each check itself, in its
own process, on an :class:`Elsewhere` that calls the answer in the submission's kernel
(:mod:`i2icourse.exercises.judge`).

The registry and the functions above live here; each chapter's checks live in a module of their
own (``ch00_image_quality`` ... ``ch06_cyclegan``), importing the helpers of ``helpers``. Importing
this package registers them all, and every function of those modules is a name of this package too:
the grader finds a probe by its name here.

Nothing in the package imports this one: it sits on top, next to :mod:`i2icourse.exercises`.
"""
from __future__ import annotations

from functools import partial
from typing import Any, Callable

#: A check: takes the student's answer, returns a success message or raises :class:`Wrong`.
Check = Callable[[Any], str]

#: The registered checks, by exercise label.
CHECKS: dict[str, Check] = {}


class Wrong(Exception):
    """Raised by a check when the answer is wrong; its message says what differs."""


def register(label: str) -> Callable[[Check], Check]:
    """Decorator: make ``fn`` the check of exercise ``label``."""
    def add(fn: Check) -> Check:
        old = CHECKS.get(label)
        if old is not None and old.__qualname__ != fn.__qualname__:
            raise ValueError(f"{label} already has a check ({old.__qualname__})")
        CHECKS[label] = fn
        return fn
    return add


def check(label: str, answer: Any) -> None:
    """Test ``answer`` with the check of exercise ``label`` and print PASS or FAIL.

    Returns nothing, so a notebook cell ending in ``check(...)`` shows only the PASS/FAIL line;
    :func:`passes` is the same test returning whether it passed.
    """
    passes(label, answer)


def passes(label: str, answer: Any) -> bool:
    """Test ``answer`` with the check of exercise ``label``; print PASS or FAIL and return whether it passed.

    A ``NotImplementedError`` raised by the answer (an unfinished stub) propagates unchanged. Any
    other exception raised by the answer prints a FAIL line and is raised again, so that the cell
    shows its traceback.
    """
    if label not in CHECKS:
        raise KeyError(f"no check is registered for {label!r} (known: {', '.join(sorted(CHECKS))})")
    try:
        message = CHECKS[label](answer)
    except NotImplementedError:
        raise
    except Wrong as e:
        return _report(label, False, str(e))
    except Exception as e:
        _report(label, False, f"your code raised {type(e).__name__}: {e}")
        raise
    return _report(label, True, message)


def _report(label: str, passed: bool, message: str) -> bool:
    """Print the result for the student; return whether it passed."""
    print(f"{'PASS' if passed else 'FAIL'} {label}: {message}")
    return passed


class Elsewhere:
    """An answer held by another process, as the autograder's checks see it (the answer stays in its kernel).

    ``call(probe, args, kwargs)`` calls the answer there, ``answer(*args, **kwargs)`` when ``probe`` is
    None, else ``probe(answer, *args, **kwargs)``, and returns the result, data.
    """

    def __init__(self, call: Callable[[Callable[..., Any] | None, tuple, dict], Any]) -> None:
        self._call = call

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._call(None, args, kwargs)

    def beside(self, probe: Callable[..., Any]) -> Callable[..., Any]:
        """``probe(answer, ...)`` run where the answer is, as a function of probe's other arguments."""
        return lambda *args, **kwargs: self._call(probe, args, kwargs)


def beside(answer: Any, probe: Callable[..., Any]) -> Callable[..., Any]:
    """``probe(answer, ...)`` as a function of probe's other arguments, run in the process that holds the answer.

    A probe is a function of this package that uses the answer the way data cannot (trains modules
    with it, back-propagates through its result) and returns only data. In a notebook it runs here;
    for the autograder it runs in the submission's kernel, and the check compares what it returned.
    """
    if isinstance(answer, Elsewhere):
        return answer.beside(probe)
    return partial(probe, answer)


# The chapters' checks, in chapter order: importing each registers its checks. Every name of theirs
# (the references and probes included) is a name of this package: ``checks.reference_psnr``, and the
# grader's lookup of a probe by its name.
from i2icourse.checks.helpers import *  # noqa: E402,F401,F403
from i2icourse.checks.ch00_image_quality import *  # noqa: E402,F401,F403
from i2icourse.checks.ch01_ssim_maps import *  # noqa: E402,F401,F403
from i2icourse.checks.ch02_autoencoders import *  # noqa: E402,F401,F403
from i2icourse.checks.ch03_srcnn import *  # noqa: E402,F401,F403
from i2icourse.checks.ch04_pix2pix import *  # noqa: E402,F401,F403
from i2icourse.checks.ch05_kl_pix2pix import *  # noqa: E402,F401,F403
from i2icourse.checks.ch06_cyclegan import *  # noqa: E402,F401,F403
