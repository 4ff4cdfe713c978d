"""What a checkpoint was made with, and the refusal of a checkpoint made otherwise.

Every checkpoint that :func:`i2icourse.train.fit` writes carries a *record* (:func:`run_record`):
the settings that shaped the run (a chapter's profile values and call options, as plain values),
the names and shapes of each model's parameters and each optimiser's hyperparameters. Before a
checkpoint is loaded, its record is compared with the current run's (:func:`check_record`); a
difference is a :class:`StaleCheckpointError` that lists what changed, one line each as
``key: <in the checkpoint> -> <now>``, instead of one experiment's model silently passed off as
another's.

Imports nothing of the package: a record is plain Python values.
"""
from __future__ import annotations

import numbers
from pathlib import Path
from typing import Any, Mapping

import torch
from torch import nn

#: Settings that may differ between a checkpoint and the run that loads it. ``steps``: a run of N
#: steps resumed to 2N trains on from its own shorter checkpoint. ``profile``: it is part of the
#: checkpoint's path already (:func:`i2icourse.runtime.checkpoint_path`).
UNCHECKED_SETTINGS = ("steps", "profile")
#: Optimiser flags that choose how a step is computed, not what it computes: they are not compared.
_IMPLEMENTATION_FLAGS = ("foreach", "fused", "capturable", "differentiable")
#: A refusal lists at most this many differences, then says how many more there are.
_MAX_LISTED = 8


class StaleCheckpointError(RuntimeError):
    """A checkpoint made with other settings than the run that would load it (another learning rate,
    width, loss...): reusing it would pass off one experiment's model as another's."""


def _plain(value: Any) -> Any:
    """``value`` as what ``torch.load(weights_only=True)`` reads back unchanged: tuples become lists,
    numbers and tensors become Python numbers. Anything else is a TypeError."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, numbers.Integral):  # also NumPy's integers
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value)
    if isinstance(value, torch.Tensor):
        return value.tolist()
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    raise TypeError(f"{value!r} ({type(value).__name__}) is not a plain value: use numbers, strings, "
                    "booleans, None, and lists, tuples or dicts of them")


def _module_record(module: nn.Module) -> dict:
    """The names and shapes of ``module``'s state: they change with its architecture (width, channels, depth)."""
    return {"shapes": {name: list(t.shape) if isinstance(t, torch.Tensor) else None
                       for name, t in module.state_dict().items()}}


def _optimizer_record(optimizer: torch.optim.Optimizer) -> dict:
    """The optimiser's kind and each parameter group's hyperparameters, ``params`` left out.

    The learning rate is the one the optimiser was made with (``initial_lr``, which a scheduler
    sets), not the one a schedule has reached. Values that are not plain are left out.
    """
    groups = []
    for group in optimizer.param_groups:
        values = {}
        for key, value in {**group, "lr": group.get("initial_lr", group.get("lr"))}.items():
            if key in ("params", "initial_lr", *_IMPLEMENTATION_FLAGS):
                continue
            try:
                values[key] = _plain(value)
            except TypeError:
                pass
        groups.append(values)
    return {"type": type(optimizer).__name__, "groups": groups}


def run_record(objects: Mapping[str, object], settings: Mapping[str, Any] | None = None) -> dict:
    """What a checkpoint of this run records about how it was made: ``settings`` (a chapter's profile
    values and call options, as plain values) and a description of each model and optimiser in
    ``objects``. Take it from fresh objects, before a checkpoint is loaded into them."""
    described = {}
    for name, obj in objects.items():
        if isinstance(obj, nn.Module):
            described[name] = _module_record(obj)
        elif isinstance(obj, torch.optim.Optimizer):
            described[name] = _optimizer_record(obj)
    plain_settings = {}
    for key, value in (settings or {}).items():
        try:
            plain_settings[str(key)] = _plain(value)
        except TypeError as e:
            raise TypeError(f"setting {key!r}: {e}") from None
    return {"settings": plain_settings, "objects": described}


def _shape(shape: list[int] | None) -> str:
    return "(no tensor)" if shape is None else "(" + ",".join(str(n) for n in shape) + ")"


def _names(names: list[str], at_most: int = 3) -> str:
    more = f" and {len(names) - at_most} more" if len(names) > at_most else ""
    return ", ".join(names[:at_most]) + more


def _module_differences(name: str, old: dict, new: dict) -> list[str]:
    old_shapes, new_shapes = old["shapes"], new["shapes"]
    lines = []
    only_old = [k for k in old_shapes if k not in new_shapes]
    only_new = [k for k in new_shapes if k not in old_shapes]
    if only_old or only_new:
        parts = ([f"only in the checkpoint: {_names(only_old)}"] if only_old else []) + \
                ([f"only now: {_names(only_new)}"] if only_new else [])
        lines.append(f"{name}: parameter names differ ({'; '.join(parts)})")
    changed = [k for k in new_shapes if k in old_shapes and old_shapes[k] != new_shapes[k]]
    if changed:
        first = changed[0]
        more = f", and {len(changed) - 1} more" if len(changed) > 1 else ""
        lines.append(f"{name}: parameter shapes differ "
                     f"({first} {_shape(old_shapes[first])} -> {_shape(new_shapes[first])}{more})")
    return lines


def _optimizer_differences(name: str, old: dict, new: dict) -> list[str]:
    if old["type"] != new["type"]:
        return [f"{name}: {old['type']} -> {new['type']}"]
    if len(old["groups"]) != len(new["groups"]):
        return [f"{name}: {len(old['groups'])} parameter groups -> {len(new['groups'])}"]
    lines = []
    for i, (a, b) in enumerate(zip(old["groups"], new["groups"])):
        where = f"group {i} " if len(new["groups"]) > 1 else ""
        # A hyperparameter only one side has comes from another torch version, not from the chapter.
        lines += [f"{name}: {where}{key} {a[key]} -> {b[key]}" for key in b if key in a and a[key] != b[key]]
    return lines


def _keys(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    """The keys of ``new``, then those only ``old`` has."""
    return [*new, *(k for k in old if k not in new)]


def _setting(settings: Mapping[str, Any], key: str) -> str:
    return repr(settings[key]) if key in settings else "(not set)"


def _record_differences(stored: Mapping[str, Any], current: Mapping[str, Any]) -> list[str]:
    """The settings and objects in which two :func:`run_record` records differ, one line each as
    ``key: <in the checkpoint> -> <now>``. A setting only one record has counts; the settings in
    ``UNCHECKED_SETTINGS`` (``steps``, ``profile``) do not."""
    old_settings, new_settings = stored.get("settings", {}), current.get("settings", {})
    lines = [f"{key}: {_setting(old_settings, key)} -> {_setting(new_settings, key)}"
             for key in _keys(old_settings, new_settings)
             if key not in UNCHECKED_SETTINGS
             and (key not in old_settings or key not in new_settings or old_settings[key] != new_settings[key])]
    old_objects, new_objects = stored.get("objects", {}), current.get("objects", {})
    for name in _keys(old_objects, new_objects):
        if name not in old_objects:
            lines.append(f"{name}: not in the checkpoint -> given now")
        elif name not in new_objects:
            lines.append(f"{name}: in the checkpoint -> not given now")
        elif "shapes" in new_objects[name] and "shapes" in old_objects[name]:
            lines += _module_differences(name, old_objects[name], new_objects[name])
        elif "groups" in new_objects[name] and "groups" in old_objects[name]:
            lines += _optimizer_differences(name, old_objects[name], new_objects[name])
        else:
            lines.append(f"{name}: another kind of object")
    return lines


def check_record(path: Path, stored: Mapping[str, Any] | None, current: Mapping[str, Any]) -> None:
    """Refuse the checkpoint at ``path`` if its ``stored`` record differs from ``current``.

    Raises :class:`StaleCheckpointError` naming the file, each difference and what to do. A
    checkpoint without a record (written before checkpoints had one) passes with a printed note.
    """
    if stored is None:
        print(f"{path}: made before checkpoints recorded their settings; they cannot be checked")
        return
    lines = _record_differences(stored, current)
    if not lines:
        return
    listed = [f"  {line}" for line in lines[:_MAX_LISTED]]
    if len(lines) > _MAX_LISTED:
        listed.append(f"  and {len(lines) - _MAX_LISTED} more")
    raise StaleCheckpointError(
        f"{path}: this checkpoint was made with other settings than the current run's "
        "(in the checkpoint -> now):\n" + "\n".join(listed) + "\n"
        "Delete the file to train with the new settings, or set I2I_CHECKPOINTS to another folder "
        "to keep both, or undo the change to reuse it.")
