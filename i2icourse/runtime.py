"""Where and at what size the course runs: the run profile, the device and the seed.

Every notebook runs in one of four profiles, chosen by the environment variable ``I2I_PROFILE``:

* ``smoke`` -- a few seconds per notebook; CI uses it to prove the code runs. Its numbers mean nothing.
* ``cpu``   -- real but reduced experiments that finish in minutes on a laptop CPU (the book's outputs).
* ``gpu``   -- sized for a free Colab GPU (a T4): each chapter in at most about 30 minutes, on the
  papers' real datasets where they can be downloaded without a login.
* ``full``  -- paper scale, hours on a GPU; only when asked for (``I2I_PROFILE=full``).

Without ``I2I_PROFILE`` the profile is ``gpu`` when CUDA is available, else ``cpu``.
A notebook states its sizes once, per profile, with :func:`settings`, and never branches on the
profile elsewhere. ``I2I_SETTINGS`` changes single values of the active profile without editing the
notebook, e.g. ``I2I_SETTINGS="steps=20000; train=('CBSD68',)"`` (Python literals, ``;`` between them).
Its values are bounded: at most ``MAX_SETTINGS_CHARS`` (2,000) characters in all, literals nested at
most ``MAX_SETTINGS_DEPTH`` (16) deep, and finite numbers only (``1e999`` is infinity: refused).

This module imports nothing else of the package.
"""
from __future__ import annotations

import ast
import math
import os
import random
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import torch

PROFILES = ("smoke", "cpu", "gpu", "full")


def profile() -> str:
    """The active run profile: ``I2I_PROFILE`` if set, else ``gpu`` with CUDA, else ``cpu``."""
    name = os.environ.get("I2I_PROFILE", "").strip().lower()
    if not name:
        return "gpu" if torch.cuda.is_available() else "cpu"
    if name not in PROFILES:
        raise ValueError(f"I2I_PROFILE={name!r} is not a profile; choose one of {', '.join(PROFILES)}")
    return name


def settings(*, smoke: dict[str, Any], cpu: dict[str, Any], gpu: dict[str, Any],
             full: dict[str, Any]) -> SimpleNamespace:
    """The sizes of an experiment for the active profile, as attributes (``P.steps``, ``P.size``).

    All four profiles must be given and name the same keys, so a setting cannot be forgotten in one
    of them. The result also carries ``profile``, the name of the active profile.
    """
    table = {"smoke": smoke, "cpu": cpu, "gpu": gpu, "full": full}
    keys = set(full)
    for name, values in table.items():
        if set(values) != keys:
            missing = sorted(keys ^ set(values))
            raise ValueError(f"profile {name!r} does not set the same keys as 'full': {missing}")
    active = profile()
    changed = overrides(keys)
    for key, value in changed.items():
        _check_type(key, value, [values[key] for values in table.values()])
    return SimpleNamespace(profile=active, **{**table[active], **changed})


def _check_type(key: str, value: Any, examples: list[Any]) -> None:
    """Refuse an ``I2I_SETTINGS`` value of another type than the profiles use for ``key``.

    ``None`` is allowed where a profile uses it, an int where a profile uses a float.
    """
    kinds = {type(v) for v in examples}
    if type(value) in kinds or (type(value) is int and float in kinds):
        return
    names = " or ".join(sorted(t.__name__ for t in kinds))
    shown = ", ".join(repr(v) for v in examples)
    raise ValueError(f"I2I_SETTINGS: {key}={value!r} is a {type(value).__name__}, but the profiles set {key} "
                     f"to a {names} ({shown}); write it as they do")


MAX_SETTINGS_CHARS = 2_000  #: the longest ``I2I_SETTINGS`` read; Python's parser overflows on some longer texts
MAX_SETTINGS_DEPTH = 16     #: how deeply a value's literals may nest (``((1,),)`` is 3 deep)


def overrides(keys: set[str] | None = None) -> dict[str, Any]:
    """The values set by ``I2I_SETTINGS`` (``"key=literal; key=literal"``); unknown keys are refused."""
    found: dict[str, Any] = {}
    settings_text = os.environ.get("I2I_SETTINGS", "")
    if len(settings_text) > MAX_SETTINGS_CHARS:
        raise ValueError(f"I2I_SETTINGS: {len(settings_text)} characters, more than the {MAX_SETTINGS_CHARS} "
                         "allowed; set a few values, not a program")
    for item in filter(None, (part.strip() for part in settings_text.split(";"))):
        key, sep, text = (t.strip() for t in item.partition("="))
        if not sep:
            raise ValueError(f"I2I_SETTINGS: {item!r} is not key=value")
        if keys is not None and key not in keys:
            raise ValueError(f"I2I_SETTINGS: {key!r} is not a setting here; choose from {', '.join(sorted(keys))}")
        found[key] = _literal(key, text)
    return found


def _literal(key: str, text: str) -> Any:
    """The Python literal ``text``, checked for depth and finite numbers before it is evaluated."""
    not_literal = f"I2I_SETTINGS: the value of {key!r}, {text!r}, is not a Python literal"
    try:
        tree = ast.parse(text, mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        raise ValueError(not_literal) from None
    stack = [(tree.body, 1)]
    while stack:  # iterative: a recursive walk is what deep nesting would overflow
        node, depth = stack.pop()
        if depth > MAX_SETTINGS_DEPTH:
            raise ValueError(f"I2I_SETTINGS: the value of {key!r} nests deeper than {MAX_SETTINGS_DEPTH} levels")
        if isinstance(node, ast.Constant) and isinstance(node.value, (float, complex)) \
                and not all(math.isfinite(v) for v in (node.value.real, node.value.imag)):
            raise ValueError(f"I2I_SETTINGS: the value of {key!r}, {text!r}, is not a finite number "
                             f"({node.value!r}); settings take finite numbers only")
        stack.extend((child, depth + 1) for child in ast.iter_child_nodes(node))
    try:
        return ast.literal_eval(tree)
    except (ValueError, SyntaxError, TypeError):
        raise ValueError(not_literal) from None


def device(prefer: str | None = None) -> torch.device:
    """The device to compute on: ``I2I_DEVICE`` or ``prefer`` if given, else cuda, mps, cpu in that order."""
    name = prefer or os.environ.get("I2I_DEVICE")
    if name:
        return torch.device(name)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def seed_everything(seed: int, deterministic: bool = False) -> None:
    """Seed Python, NumPy and torch (CPU and every GPU) so that a run can be repeated.

    With ``deterministic=True`` cuDNN also picks deterministic kernels (slower, but bit-identical reruns).
    """
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)  # seeds CUDA devices too
    torch.backends.cudnn.deterministic = deterministic
    torch.backends.cudnn.benchmark = not deterministic


def checkpoint_path(chapter: str, name: str) -> Path:
    """Where a chapter keeps a trained model: ``$I2I_CHECKPOINTS/<profile>/<chapter>/<name>.pt``.

    ``I2I_CHECKPOINTS`` defaults to ``./checkpoints``; on Colab point it at a Google Drive folder
    so that checkpoints outlive the virtual machine (:func:`keep_on_drive`). The profile is part of the path, so a smoke
    run never loads (or overwrites) the model of a cpu or full run.
    """
    root = Path(os.environ.get("I2I_CHECKPOINTS", "checkpoints"))
    return root / profile() / chapter / f"{name}.pt"


def describe() -> str:
    """One line naming the active profile and device, printed at the top of every notebook."""
    dev = device()
    extra = f" ({torch.cuda.get_device_name(dev)})" if dev.type == "cuda" else ""
    changed = "".join(f" | {k}={v!r}" for k, v in overrides().items())
    return f"profile: {profile()} | device: {dev}{extra} | torch {torch.__version__}{changed}"


def keep_on_drive(folder: str = "/content/drive/MyDrive/i2icourse") -> Path:
    """On Colab: mount Google Drive and keep checkpoints and datasets there, so a recycled VM loses neither.

    Sets ``I2I_CHECKPOINTS`` to ``<folder>/checkpoints`` and ``I2I_DATA`` to ``<folder>/data`` for this
    session (the first cell of every chapter calls it when its ``KEEP_ON_DRIVE`` flag is set).
    Elsewhere it refuses: set the two variables to any folder you like instead.
    """
    try:
        from google.colab import drive  # type: ignore[import-not-found]
    except ImportError:
        raise RuntimeError("keep_on_drive works on Colab only; elsewhere set I2I_CHECKPOINTS and I2I_DATA "
                           "to folders of your choice") from None
    drive.mount("/content/drive")
    root = Path(folder)
    for variable, sub in (("I2I_CHECKPOINTS", "checkpoints"), ("I2I_DATA", "data")):
        (root / sub).mkdir(parents=True, exist_ok=True)
        os.environ[variable] = str(root / sub)
    print(f"checkpoints and datasets are kept in {root} on Google Drive")
    return root
