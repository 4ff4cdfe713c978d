"""The grader's own cell: check one answer inside a submission's kernel, with a fresh copy of the checks.

After a submission's cells have run, the autograder sends the source of this module to the same
kernel, in one cell per graded exercise, followed by a call of :func:`report`. The student's code
has run in that process before, so nothing it could have changed is used as found:

* :func:`fresh_package` hides the kernel's ``i2icourse`` modules and imports the package anew from
  its files, and :func:`load_checks` makes a new module object from ``checks.py``, so that
  ``i2icourse.checks.CHECKS[...] = ...`` (or a patched ``i2icourse.io``) in the notebook changes
  nothing the grader uses;
* the one line of result starts with a nonce that the grader draws for each run and that only
  its own cells carry, so a line printed by the notebook's cells counts for nothing.

This module uses the standard library only, and runs in the grader's process in the tests.
"""
from __future__ import annotations

import importlib.util
import json
import sys
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any, Iterator

PACKAGE = "i2icourse"
#: The statuses a check can give; "no answer" means the answer's expression could not be evaluated.
VERDICTS = ("pass", "fail", "error", "not attempted", "no answer")


def _ours(name: str) -> bool:
    return name == PACKAGE or name.startswith(PACKAGE + ".")


@contextmanager
def fresh_package(package_dir: str | Path) -> Iterator[None]:
    """While inside, ``import i2icourse...`` loads the package anew from ``package_dir``; the kernel's own
    modules come back after."""
    kept = {name: sys.modules.pop(name) for name in list(sys.modules) if _ours(name)}
    try:
        init = Path(package_dir) / "__init__.py"
        spec = importlib.util.spec_from_file_location(PACKAGE, init, submodule_search_locations=[str(init.parent)])
        package = importlib.util.module_from_spec(spec)
        sys.modules[PACKAGE] = package
        spec.loader.exec_module(package)
        yield
    finally:
        for name in [name for name in sys.modules if _ours(name)]:
            del sys.modules[name]
        sys.modules.update(kept)


def load_checks(checks_file: str | Path) -> ModuleType:
    """A new module object made from the checks' file (call it inside :func:`fresh_package`)."""
    spec = importlib.util.spec_from_file_location(f"{PACKAGE}.checks", checks_file)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def verdict(label: str, status: str, message: str) -> dict[str, str]:
    """One result, as the grader reads it back."""
    return {"label": label, "status": status, "message": message}


def judge(label: str, expression: str, checks_file: str | Path, namespace: dict[str, Any]) -> dict[str, str]:
    """Evaluate the answer ``expression`` in ``namespace`` and test it with a fresh copy of the check of ``label``.

    The status is ``pass``, ``fail`` (the check said what differs), ``error`` (the answer raised),
    ``not attempted`` (the answer raised ``NotImplementedError``: an unfinished stub) or
    ``no answer`` (the expression itself could not be evaluated).
    """
    try:
        answer = eval(expression, namespace)
    except Exception as e:
        return verdict(label, "no answer", f"{type(e).__name__}: {e}")
    with fresh_package(Path(checks_file).parent):
        try:
            checks = load_checks(checks_file)
        except Exception as e:
            return verdict(label, "error", f"the checks would not load in this notebook's kernel "
                                           f"({type(e).__name__}: {e})")
        check = checks.CHECKS.get(label)
        if check is None:
            return verdict(label, "error", f"no check is registered for {label}")
        try:
            message = check(answer)
        except NotImplementedError as e:
            return verdict(label, "not attempted", f"NotImplementedError: {e}")
        except checks.Wrong as e:
            return verdict(label, "fail", str(e))
        except (Exception, SystemExit) as e:
            return verdict(label, "error", f"your code raised {type(e).__name__}: {e}")
    return verdict(label, "pass", str(message))


def report(result: dict[str, str], nonce: str) -> None:
    """Print the result as the one line the grader reads: the nonce, a space, the result as JSON."""
    sys.stdout.write(f"{nonce} {json.dumps(result)}\n")
    sys.stdout.flush()
