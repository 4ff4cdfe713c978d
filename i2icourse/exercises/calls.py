"""The grader's calls of a student's answer: they travel as data, and the submission's kernel serves them.

The autograder runs each check in its own process (:mod:`i2icourse.exercises.judge`); the answer
stays in the kernel that ran the student's cells. Every call of the answer is one request, sent to
that kernel in a grader's cell, and one reply, printed there behind the run's nonce. Both are
trees of plain nodes, saved with :func:`torch.save` and written in base64, read with
``torch.load(weights_only=True)``; :func:`unpack` accepts nothing but these nodes:

* ``("value", x)``: ``None``, a bool, an int, a float or a str;
* ``("tensor", t, requires_grad)``: a tensor (detached, on the CPU) and whether it required a gradient;
* ``("array", t)`` and ``("scalar", t)``: a NumPy array or scalar, carried as a tensor;
* ``("list", nodes)``, ``("tuple", nodes)``, ``("dict", [[key, value], ...])`` (keys are values);
* ``("other", name)``: a result that is none of these, as the name of its type (it comes back as an
  object of a class of that name, and nothing more: a check can say what it got, not use it);
* in requests only, ``("generator", state)`` (a ``torch.Generator``) and ``("function", name)``:
  one of the functions of :mod:`i2icourse.checks`, by its name in that package, taken in the kernel
  from a fresh copy of the package's folder. A probe (:func:`i2icourse.checks.beside`) travels this way.

A request is ``("evaluate", expression)`` (is there an answer?) or ``("call", expression, node)``,
where the node holds ``(probe, args, kwargs)``: ``probe`` is None to call the answer itself. A
reply is ``("returned", node)`` or ``("raised", type name, message)``.

This module uses the standard library and torch only: :func:`serve` runs in the kernel, from this
file's source, apart from the notebook's names.
"""
from __future__ import annotations

import base64
import importlib.util
import io
import sys
import types
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any, Callable, Iterator

import torch

PACKAGE = "i2icourse"
#: How deep lists, tuples and dicts may nest in a result; deeper ones come back as ``("other", name)``.
DEPTH = 32
_VALUES = (bool, int, float, str)


class NotData(Exception):
    """Raised by :func:`loads` and :func:`unpack` on anything that is not a tree of the module's nodes."""


class Other:
    """Stands in for a result that could not travel as data: an object of a class with its type's name."""

    def __repr__(self) -> str:
        return f"<a {type(self).__name__} from the submission's kernel>"


# ----------------------------------------------------------------------------------------------
# Data as nodes, and nodes as text
# ----------------------------------------------------------------------------------------------

def pack(value: Any, extra: Callable[[Any], tuple | None] | None = None, depth: int = 0) -> tuple:
    """``value`` as a tree of nodes; ``extra`` packs what only requests carry (None: not one of those).

    With ``extra``, a value of no known kind raises ``TypeError``; without, it becomes ``("other", name)``.
    """
    node = extra(value) if extra is not None else None
    if node is not None:
        return node
    if value is None:
        return ("value", None)
    if isinstance(value, _VALUES):  # bool before int: the first kind that fits, as that kind itself
        return ("value", next(kind for kind in _VALUES if isinstance(value, kind))(value))
    if isinstance(value, torch.Tensor):
        return ("tensor", _plain(value), bool(value.requires_grad))
    inner = partial(pack, extra=extra, depth=depth + 1)
    if depth < DEPTH and isinstance(value, (list, tuple)):
        return ("list" if isinstance(value, list) else "tuple", [inner(v) for v in value])
    if depth < DEPTH and isinstance(value, dict) and all(k is None or isinstance(k, _VALUES) for k in value):
        return ("dict", [[pack(k), inner(v)] for k, v in value.items()])
    numpy = sys.modules.get("numpy")
    if numpy is not None and isinstance(value, (numpy.ndarray, numpy.generic)):
        try:
            return ("array" if isinstance(value, numpy.ndarray) else "scalar",
                    torch.from_numpy(numpy.array(value, copy=True)))
        except (TypeError, ValueError):  # a dtype torch has no tensors of
            pass
    if extra is not None:
        raise TypeError(f"a {type(value).__name__} cannot be sent to the kernel as data")
    return ("other", type(value).__name__)


def _plain(t: torch.Tensor) -> torch.Tensor:
    """A detached, dense, compact CPU copy of ``t``, of class ``torch.Tensor`` itself."""
    t = t.detach().to("cpu").as_subclass(torch.Tensor)
    if t.layout != torch.strided:
        t = t.to_dense()
    return t.clone(memory_format=torch.contiguous_format)


def unpack(node: Any, extra: Callable[[tuple], Any] | None = None) -> Any:
    """The value of a tree of nodes; ``extra`` reads the nodes that only requests carry. Anything else: :class:`NotData`."""
    if not isinstance(node, tuple) or not node or not isinstance(node[0], str):
        raise NotData(f"expected a node, got a {type(node).__name__}")
    tag, rest = node[0], node[1:]
    if tag == "value" and len(rest) == 1 and (rest[0] is None or type(rest[0]) in _VALUES):
        return rest[0]
    if tag == "tensor" and len(rest) == 2 and _is_tensor(rest[0]) and type(rest[1]) is bool:
        t = rest[0]
        return t.requires_grad_() if rest[1] and (t.is_floating_point() or t.is_complex()) else t
    if tag in ("array", "scalar") and len(rest) == 1 and _is_tensor(rest[0]):
        array = rest[0].numpy()
        return array if tag == "array" else array[()]
    if tag in ("list", "tuple") and len(rest) == 1 and type(rest[0]) is list:
        items = [unpack(n, extra) for n in rest[0]]
        return items if tag == "list" else tuple(items)
    if tag == "dict" and len(rest) == 1 and type(rest[0]) is list \
            and all(type(pair) is list and len(pair) == 2 and type(pair[0]) is tuple and pair[0][:1] == ("value",)
                for pair in rest[0]):
        return {unpack(k): unpack(v, extra) for k, v in rest[0]}
    if tag == "other" and len(rest) == 1 and type(rest[0]) is str:
        name = rest[0][:100] if rest[0][:100].isidentifier() else "object"
        return type(name, (Other,), {"__module__": "kernel"})()
    if extra is not None and tag in ("generator", "function"):
        return extra(node)
    raise NotData(f"an unknown or malformed node {tag!r}")


def _is_tensor(t: Any) -> bool:
    return type(t) is torch.Tensor and t.layout == torch.strided


def dumps(tree: Any) -> str:
    """A tree of nodes as one line of text: :func:`torch.save`, in base64."""
    buffer = io.BytesIO()
    torch.save(tree, buffer)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def loads(text: str) -> Any:
    """The tree that :func:`dumps` wrote; :class:`NotData` for text that is not one (``weights_only``: no code runs)."""
    try:
        return torch.load(io.BytesIO(base64.b64decode(text, validate=True)), weights_only=True)
    except Exception as e:  # not base64, not a torch file, or a pickle of anything but plain data
        raise NotData(f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}") from None


# ----------------------------------------------------------------------------------------------
# A fresh copy of the course's package
# ----------------------------------------------------------------------------------------------

def _ours(name: str) -> bool:
    return name == PACKAGE or name.startswith(PACKAGE + ".")


@contextmanager
def fresh_package(package_dir: str | Path) -> Iterator[None]:
    """While inside, ``import i2icourse...`` loads the package anew from ``package_dir``; the process's own
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


def load_checks(checks_dir: str | Path) -> types.ModuleType:
    """A new package object made from the checks' folder, its chapters' modules loaded anew with it (call it
    inside :func:`fresh_package` of the folder above)."""
    init = Path(checks_dir) / "__init__.py"
    spec = importlib.util.spec_from_file_location(f"{PACKAGE}.checks", init,
                                                  submodule_search_locations=[str(init.parent)])
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def of_checks(fn: Any, checks: types.ModuleType) -> bool:
    """Whether ``fn`` is a function of the checks package ``checks`` (defined in it or one of its chapters'
    modules) that the package holds under its own name, so that the kernel finds it by that name."""
    return isinstance(fn, types.FunctionType) and getattr(checks, fn.__name__, None) is fn \
        and (fn.__module__ == checks.__name__ or fn.__module__.startswith(checks.__name__ + "."))


# ----------------------------------------------------------------------------------------------
# The kernel's side
# ----------------------------------------------------------------------------------------------

def reply(request: str, checks_dir: str | Path, namespace: dict[str, Any]) -> str:
    """Answer one request: evaluate its expression in ``namespace`` and, for a call, call the answer (or a probe
    of a fresh copy of the checks beside it) inside a fresh copy of the package; the reply, as text."""
    try:
        request = loads(request)
        if not (isinstance(request, tuple) and (request[:1], len(request)) in ((("evaluate",), 2), (("call",), 3))
                and type(request[1]) is str):
            raise NotData("a malformed request")
        answer = eval(request[1], namespace)
        if request[0] == "evaluate":
            return dumps(("returned", pack(None)))
        with fresh_package(Path(checks_dir).parent):
            checks: list[types.ModuleType] = []  # loaded at the first function the request names
            probe, args, kwargs = unpack(request[2], partial(_request_node, checks, checks_dir))
            result = answer(*args, **kwargs) if probe is None else probe(answer, *args, **kwargs)
            return dumps(("returned", pack(result)))
    except (Exception, SystemExit) as e:
        return dumps(("raised", type(e).__name__, str(e)))


def _request_node(checks: list[types.ModuleType], checks_dir: str | Path, node: tuple) -> Any:
    """A generator from its state, or a function of the checks (loaded into ``checks`` the first time)."""
    tag, value = node if len(node) == 2 else (None, None)
    if tag == "generator" and _is_tensor(value) and value.dtype == torch.uint8:
        return torch.Generator().set_state(value)
    if tag == "function" and type(value) is str:
        if not checks:
            checks.append(load_checks(checks_dir))
        found = getattr(checks[0], value, None)
        if of_checks(found, checks[0]):
            return found
    raise NotData(f"a malformed node {tag!r}")


def serve(request: str, checks_dir: str, namespace: dict[str, Any], nonce: str) -> None:
    """In the kernel: print the reply to ``request`` as the one line the grader reads, the nonce, a space, the reply."""
    sys.stdout.write(f"{nonce} {reply(request, checks_dir, namespace)}\n")
    sys.stdout.flush()
