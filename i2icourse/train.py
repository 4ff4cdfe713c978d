"""The course's one training loop: progress bar, history, atomic checkpoints and exact resume.

Every chapter trains through :func:`fit`. The chapter supplies a *step function* -- one optimisation
step on one batch, returning the numbers to log -- and ``fit`` does the rest:

* draws batches in a reproducible order (:class:`ResumableSampler`), epoch after epoch;
* shows a tqdm progress bar and keeps a :class:`History` of every logged number;
* every ``checkpoint_every`` steps writes a checkpoint atomically (write to a temporary file,
  flush it to the disk, then rename), so a Colab disconnect mid-write never leaves a broken file;
  a checksum in the file catches one damaged later (a cut-short copy or sync);
* on the next call with the same checkpoint path it resumes where it stopped -- exactly: the
  models, optimisers, schedulers, the sampler position and all random-number generators are
  restored, so N steps + reload + N steps equal 2N steps straight. If the checkpoint already
  holds ``steps`` steps, ``fit`` trains nothing: "load the checkpoint if it exists, else train";
* every checkpoint records the settings that shaped it (the chapter's settings, the models'
  parameter shapes, the optimisers' hyperparameters), and a checkpoint made with other settings is
  refused (:class:`StaleCheckpointError`) instead of silently reused;
* after a few steps of a long run it prints, once, how long the rest will take on this device.

Checkpoints hold only tensors and plain Python values and are read with
``torch.load(weights_only=True)``, which cannot execute code from a file.
"""
from __future__ import annotations

import hashlib
import io
import itertools
import numbers
import os
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Protocol

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, Sampler
from tqdm.auto import tqdm

from . import distributed
from .inference import device_of


class Stateful(Protocol):
    """Anything with ``state_dict``/``load_state_dict``: models, optimisers, schedulers, image pools."""

    def state_dict(self) -> dict: ...

    def load_state_dict(self, state: dict) -> Any: ...


# ----------------------------------------------------------------------------------------------
# History
# ----------------------------------------------------------------------------------------------

@dataclass
class History:
    """Logged numbers over training: ``history['loss']`` is a list of (step, value) pairs."""

    records: dict[str, list[tuple[int, float]]] = field(default_factory=dict)

    def log(self, step: int, values: Mapping[str, float]) -> None:
        for name, value in values.items():
            self.records.setdefault(name, []).append((step, float(value)))

    def __getitem__(self, name: str) -> list[tuple[int, float]]:
        return self.records[name]

    def __contains__(self, name: str) -> bool:
        return name in self.records

    def names(self) -> list[str]:
        return list(self.records)

    def steps(self, name: str) -> list[int]:
        return [s for s, _ in self.records[name]]

    def values(self, name: str) -> list[float]:
        return [v for _, v in self.records[name]]

    def last(self, name: str) -> float:
        return self.records[name][-1][1]

    def mean_last(self, name: str, n: int) -> float:
        """Mean of the last ``n`` values: a steadier figure than the last one for noisy losses."""
        vals = self.values(name)[-n:]
        return sum(vals) / len(vals)

    def state_dict(self) -> dict:
        return {name: torch.tensor(rows, dtype=torch.float64) for name, rows in self.records.items()}

    def load_state_dict(self, state: dict) -> None:
        self.records = {name: [(int(s), float(v)) for s, v in t.tolist()] for name, t in state.items()}


# ----------------------------------------------------------------------------------------------
# A sampler whose position can be saved
# ----------------------------------------------------------------------------------------------

class ResumableSampler(Sampler[int]):
    """An endless stream of dataset indices: a fresh seeded permutation every epoch.

    Index ``i`` of the stream depends only on (seed, i), so a resumed run that starts the stream at
    ``start`` sees exactly the batches the uninterrupted run would have seen.

    With ``world_size`` processes (:mod:`i2icourse.distributed`) every process draws the same
    stream and process ``rank`` yields its items ``start + rank``, ``start + rank + world_size``, ...:
    disjoint shares of every global batch.
    """

    def __init__(self, length: int, seed: int = 0, shuffle: bool = True, start: int = 0,
                 rank: int = 0, world_size: int = 1):
        if length <= 0:
            raise ValueError("ResumableSampler: the dataset is empty")
        self.length, self.seed, self.shuffle, self.start = length, seed, shuffle, start
        self.rank, self.world_size = rank, world_size

    def _order(self, epoch: int) -> list[int]:
        if not self.shuffle:
            return list(range(self.length))
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
        return torch.randperm(self.length, generator=g).tolist()

    def _stream(self) -> Iterator[int]:
        epoch, pos = divmod(self.start, self.length)
        while True:
            order = self._order(epoch)
            yield from order[pos:]
            epoch, pos = epoch + 1, 0

    def __iter__(self) -> Iterator[int]:
        return itertools.islice(self._stream(), self.rank, None, self.world_size)


def batches(dataset: Dataset, batch_size: int, seed: int = 0, start_step: int = 0, shuffle: bool = True,
            num_workers: int = 0, drop_last: bool = True, rank: int = 0, world_size: int = 1,
            **loader_kwargs: Any) -> Iterator[Any]:
    """Endless batches of ``dataset`` in a reproducible order, starting at batch ``start_step``.

    With ``num_workers=0`` a resumed run is bit-identical (random augmentations draw from the
    restored global RNG). Worker processes keep the batch order but reseed augmentations. With
    ``world_size`` processes, process ``rank`` gets its ``batch_size`` items of each global batch
    of ``world_size * batch_size`` (:class:`ResumableSampler`).
    """
    n = len(dataset)  # type: ignore[arg-type]
    if drop_last and n < batch_size:
        raise ValueError(f"dataset has {n} items, fewer than one batch of {batch_size}")
    sampler = ResumableSampler(n, seed=seed, shuffle=shuffle, start=start_step * batch_size * world_size,
                               rank=rank, world_size=world_size)
    loader = DataLoader(dataset, batch_size=batch_size, sampler=sampler, num_workers=num_workers,
                        drop_last=drop_last, **loader_kwargs)
    return iter(loader)


# ----------------------------------------------------------------------------------------------
# Checkpoints
# ----------------------------------------------------------------------------------------------

def _rng_state() -> dict:
    np_state = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": {"keys": torch.from_numpy(np_state[1].astype(np.int64)), "pos": int(np_state[2]),
                  "has_gauss": int(np_state[3]), "cached_gaussian": float(np_state[4])},
        "python": _python_state_to_plain(random.getstate()),
    }


def _python_state_to_plain(state: tuple) -> dict:
    version, internal, gauss = state
    return {"version": version, "internal": torch.tensor(internal, dtype=torch.int64), "gauss": gauss}


def _set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    n = state["numpy"]
    np.random.set_state(("MT19937", n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"],
                         n["cached_gaussian"]))
    p = state["python"]
    random.setstate((p["version"], tuple(p["internal"].tolist()), p["gauss"]))


#: A checkpoint file starts with this line's first part, the sha256 of the rest of the file (64 hex
#: digits) and a newline; the rest is what ``torch.save`` writes. Files without it were written
#: before checkpoints had a checksum and load without a check.
CHECKPOINT_HEADER = b"i2icourse checkpoint, sha256 "
_DIGEST_LENGTH = 64
#: A temporary ``*.pt.tmp`` file untouched for this long belongs to no live save (a save writes it
#: in one go): the next save in its folder deletes it.
STALE_TMP_SECONDS = 15 * 60


class CorruptCheckpointError(RuntimeError):
    """A checkpoint file that cannot be what :func:`save_checkpoint` wrote: damaged, cut short, or no checkpoint."""


def save_checkpoint(path: str | Path, step: int, objects: Mapping[str, Stateful],
                    history: History | None = None, extra: Mapping[str, Any] | None = None) -> Path:
    """Write models/optimisers/... states, the step, history and RNG states to ``path`` atomically.

    The file is written next to ``path`` as ``path.tmp``, flushed to the disk (``fsync``: on Colab's
    Google Drive a rename can otherwise land before the data) and renamed over ``path``, so ``path``
    is always the old or the new checkpoint, whole. It carries the sha256 of its contents, which
    :func:`load_checkpoint` checks. Temporaries of killed saves in the same folder are deleted.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {
        "step": step,
        "objects": {name: obj.state_dict() for name, obj in objects.items()},
        "history": history.state_dict() if history is not None else {},
        "rng": _rng_state(),
        "extra": dict(extra or {}),
    }
    buffer = io.BytesIO()
    torch.save(state, buffer)
    payload = buffer.getbuffer()
    tmp = path.with_name(path.name + ".tmp")
    _remove_stale_temporaries(path.parent, f"*{path.suffix}.tmp" if path.suffix else tmp.name)
    try:
        with open(tmp, "wb") as f:
            f.write(CHECKPOINT_HEADER + hashlib.sha256(payload).hexdigest().encode("ascii") + b"\n")
            f.write(payload)
            f.flush()
            os.fsync(f.fileno())  # the data are on the disk before the rename makes them the checkpoint
        os.replace(tmp, path)  # atomic on POSIX and Windows: the old checkpoint stays valid until here
    except BaseException:
        tmp.unlink(missing_ok=True)  # a failed save leaves nothing behind but the old checkpoint
        raise
    _fsync_folder(path.parent)
    return path


def _remove_stale_temporaries(folder: Path, pattern: str) -> None:
    """Delete the files ``folder/pattern`` (temporaries like ``unet.pt.tmp``) older than STALE_TMP_SECONDS."""
    now = time.time()
    for tmp in folder.glob(pattern):
        try:
            if tmp.is_file() and now - tmp.stat().st_mtime > STALE_TMP_SECONDS:
                tmp.unlink()
        except FileNotFoundError:
            pass  # its save finished meanwhile


def _fsync_folder(folder: Path) -> None:
    """Make a rename in ``folder`` durable, where the system allows it (POSIX; not Windows, where a
    folder cannot be opened, nor file systems that refuse to sync a folder)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _read_checkpoint(path: Path, map_location: str | torch.device | None) -> dict:
    """The state stored in the checkpoint at ``path``, its checksum verified (files written before
    checkpoints had one are read without a check)."""
    with open(path, "rb") as f:  # FileNotFoundError goes to the caller as it is
        header = f.read(len(CHECKPOINT_HEADER))
        if header == CHECKPOINT_HEADER:
            digest = f.read(_DIGEST_LENGTH + 1)
            payload = f.read()
            if digest != hashlib.sha256(payload).hexdigest().encode("ascii") + b"\n":
                raise CorruptCheckpointError(
                    f"{path}: the checkpoint is corrupted: its contents do not match the checksum written "
                    "with them (a copy or a sync was cut short, or the disk damaged the file). "
                    "Delete the file to train again.")
            source: Path | io.BytesIO = io.BytesIO(payload)
        else:
            source = path
    try:
        return torch.load(source, map_location=map_location, weights_only=True)
    except Exception as e:
        raise CorruptCheckpointError(
            f"{path}: not a readable checkpoint, the file is corrupted or is no checkpoint "
            f"({type(e).__name__}: {e}). Delete it to train again.") from None


def load_checkpoint(path: str | Path, objects: Mapping[str, Stateful], history: History | None = None,
                    map_location: str | torch.device | None = "cpu", restore_rng: bool = True,
                    expect_record: Mapping[str, Any] | None = None) -> dict:
    """Restore what :func:`save_checkpoint` wrote into ``objects`` (and ``history``); return the raw state.

    A damaged file is a :class:`CorruptCheckpointError` naming it, never a silently wrong model. A
    checkpoint missing one of the named objects is an error naming it: a silently half-loaded GAN
    would train on from random weights. The file is read with ``torch.load(weights_only=True)``,
    which cannot execute code from it.

    With ``expect_record`` (a :func:`run_record` of the current run) the record stored in the file
    is checked before anything is loaded: a different one is a :class:`StaleCheckpointError`; a file
    written before checkpoints had records loads with a printed note.
    """
    path = Path(path)
    state = _read_checkpoint(path, map_location)
    if expect_record is not None:
        _check_record(path, state["extra"].get("record"), expect_record)
    missing = [name for name in objects if name not in state["objects"]]
    if missing:
        raise KeyError(f"{path}: the checkpoint has no state for {missing} "
                       f"(it holds {sorted(state['objects'])})")
    for name, obj in objects.items():
        obj.load_state_dict(state["objects"][name])
    if history is not None:
        history.load_state_dict(state["history"])
    if restore_rng:
        _set_rng_state(state["rng"])
    return state


# ----------------------------------------------------------------------------------------------
# What a checkpoint was made with
# ----------------------------------------------------------------------------------------------

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


def run_record(objects: Mapping[str, Stateful], settings: Mapping[str, Any] | None = None) -> dict:
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


def _check_record(path: Path, stored: Mapping[str, Any] | None, current: Mapping[str, Any]) -> None:
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


# ----------------------------------------------------------------------------------------------
# The time estimate
# ----------------------------------------------------------------------------------------------

#: ``fit`` announces how long a run will take when it has at least this many steps to go. It times
#: TIMED_STEPS steps after the run's first one, which also warms up (memory, cuDNN autotuning).
ANNOUNCE_MIN_STEPS = 50
TIMED_STEPS = 3


def device_name(device: torch.device | None = None) -> str:
    """The name of what computes, for the time estimate: the GPU's name, else the device type
    (``cpu``, ``mps``). Without ``device``: the current GPU if CUDA is in use, else ``cpu``."""
    if device is None:
        device = torch.device("cuda") if torch.cuda.is_initialized() else torch.device("cpu")
    return torch.cuda.get_device_name(device) if device.type == "cuda" else device.type


def _duration(seconds: float) -> str:
    """``seconds`` in the unit a person plans with: seconds under 2 min, minutes under 2 h, then hours."""
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def _clock() -> float:
    # A GPU runs behind the Python code: wait for its queued work, or the clock would time only the queueing.
    if torch.cuda.is_initialized():
        torch.cuda.synchronize()
    return time.perf_counter()


class _TimeEstimate:
    """Times a few of a run's own first steps and prints, once, how long the rest will take.

    It only reads the clock: no extra step, no random number, so the training is the same without it.
    """

    def __init__(self, desc: str, start: int, steps: int, device: str):
        self.desc, self.steps, self.device = desc, steps, device
        self.first, self.last = start + 1, start + 1 + TIMED_STEPS  # timed: steps first+1 .. last
        self.began = 0.0

    def after_step(self, done: int) -> None:
        if done == self.first:
            self.began = _clock()
        elif done == self.last:
            per_step = (_clock() - self.began) / TIMED_STEPS
            left = self.steps - done
            tqdm.write(f"{self.desc}: {left} steps to go, about {_duration(per_step * left)} "
                       f"on this device ({self.device})")


def _training_device(objects: Mapping[str, Stateful]) -> torch.device | None:
    """The device of the first model in ``objects``; None without one."""
    module = next((obj for obj in objects.values() if isinstance(obj, nn.Module)), None)
    return device_of(module) if module is not None else None


# ----------------------------------------------------------------------------------------------
# The loop
# ----------------------------------------------------------------------------------------------

def _without_touching_rng(fn: Callable[[int], Mapping[str, float]], step: int) -> Mapping[str, float]:
    # An evaluation must not shift the training's random stream, or where evaluations happen
    # (e.g. at the end of a shorter run) would change the training that follows.
    saved = _rng_state()
    try:
        return fn(step)
    finally:
        _set_rng_state(saved)


StepFn = Callable[[Any, int], Mapping[str, float]]


def fit(step_fn: StepFn, dataset: Dataset, *, steps: int, batch_size: int,
        objects: Mapping[str, Stateful], checkpoint: str | Path | None = None, checkpoint_every: int = 500,
        log_every: int = 1, eval_fn: Callable[[int], Mapping[str, float]] | None = None,
        eval_every: int = 0, seed: int = 0, num_workers: int = 0, progress: bool = True,
        desc: str = "train", settings: Mapping[str, Any] | None = None, announce: bool = True,
        **loader_kwargs: Any) -> History:
    """Train for ``steps`` steps of ``step_fn(batch, step) -> {name: value}`` and return the history.

    ``objects`` names everything whose state must survive an interruption (models, optimisers,
    schedulers, image pools). Schedulers are the step function's business: it calls
    ``scheduler.step()`` when its schedule says so. ``eval_fn(step)`` runs every ``eval_every``
    steps and after the last one; its numbers go into the history too.

    With ``checkpoint`` set, an existing file is resumed from (or, if it is complete, simply loaded)
    and the file is rewritten every ``checkpoint_every`` steps and at the end.

    Each checkpoint records how its run was made (:func:`run_record`): ``settings`` -- the chapter's
    profile values and call options, e.g. ``{**vars(P), "rec": "l1"}`` -- and, taken from the fresh
    ``objects`` before anything is loaded, the models' parameter shapes and the optimisers'
    hyperparameters. A checkpoint whose record differs is refused with a
    :class:`StaleCheckpointError` listing the differences. ``steps`` and ``profile`` are not
    compared: a run of N steps resumed to 2N trains on from its own checkpoint, and the profile is
    part of the checkpoint's path.

    With ``announce``, a run with at least ``ANNOUNCE_MIN_STEPS`` steps to go prints once, after
    timing a few of its first steps, about how long the rest will take on this device (also
    with ``progress=False``). Batches are copied to pinned memory when CUDA is available, unless
    ``pin_memory`` is given.

    Under ``torchrun`` (:mod:`i2icourse.distributed`), ``batch_size`` is each process's share of
    a global batch of ``world_size * batch_size``; the logged numbers are averaged over the
    processes; only rank 0 writes checkpoints and shows progress, and every process resumes from
    its checkpoint. Models wrapped in DDP are saved unwrapped, loadable without ``torchrun``.
    """
    objects = distributed.unwrapped(objects)  # checkpoints without DDP's "module." prefix
    rank, world_size = distributed.rank_and_world_size()
    progress = progress and rank == 0
    announce = announce and rank == 0
    history = History()
    start = 0
    state = None
    record = run_record(objects, settings) if checkpoint is not None else None
    if checkpoint is not None and Path(checkpoint).exists():
        state = load_checkpoint(checkpoint, objects, history, restore_rng=False, expect_record=record)
        start = int(state["step"])
        if start >= steps:
            if progress:
                print(f"loaded {checkpoint} (trained {start} steps)")
            return history
    loader_kwargs.setdefault("pin_memory", torch.cuda.is_available())  # lets a batch copy to the GPU asynchronously
    stream = batches(dataset, batch_size, seed=seed, start_step=start, num_workers=num_workers,
                     rank=rank, world_size=world_size, **loader_kwargs)
    if state is not None:
        _set_rng_state(state["rng"])  # after the loader drew its base seed, so the resumed run matches
    bar = tqdm(range(start, steps), initial=start, total=steps, desc=desc, disable=not progress,
               dynamic_ncols=True, mininterval=1.0)
    estimate = None
    if announce and steps - start >= ANNOUNCE_MIN_STEPS:
        estimate = _TimeEstimate(desc, start, steps, device_name(_training_device(objects)))
    for step in bar:
        values = step_fn(next(stream), step)
        if log_every and (step + 1) % log_every == 0:
            values = distributed.mean_over_processes(values)
            history.log(step + 1, values)
            bar.set_postfix({k: f"{float(v):.4g}" for k, v in list(values.items())[:4]}, refresh=False)
        done = step + 1
        if eval_fn is not None and (eval_every and done % eval_every == 0 or done == steps):
            history.log(done, _without_touching_rng(eval_fn, done))
        if checkpoint is not None and (done % checkpoint_every == 0 or done == steps):
            if rank == 0:
                save_checkpoint(checkpoint, done, objects, history, extra={"record": record})
            distributed.barrier()  # no process runs ahead of the checkpoint being written
        if estimate is not None:
            estimate.after_step(done)
    bar.close()
    return history
