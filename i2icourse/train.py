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
  holds ``steps`` steps, ``fit`` trains nothing: "load the checkpoint if it exists, else train".

Checkpoints hold only tensors and plain Python values and are read with
``torch.load(weights_only=True)``, which cannot execute code from a file.
"""
from __future__ import annotations

import hashlib
import io
import os
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Protocol

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler
from tqdm.auto import tqdm


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
    """

    def __init__(self, length: int, seed: int = 0, shuffle: bool = True, start: int = 0):
        if length <= 0:
            raise ValueError("ResumableSampler: the dataset is empty")
        self.length, self.seed, self.shuffle, self.start = length, seed, shuffle, start

    def _order(self, epoch: int) -> list[int]:
        if not self.shuffle:
            return list(range(self.length))
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
        return torch.randperm(self.length, generator=g).tolist()

    def __iter__(self) -> Iterator[int]:
        epoch, pos = divmod(self.start, self.length)
        while True:
            order = self._order(epoch)
            yield from order[pos:]
            epoch, pos = epoch + 1, 0


def batches(dataset: Dataset, batch_size: int, seed: int = 0, start_step: int = 0, shuffle: bool = True,
            num_workers: int = 0, drop_last: bool = True, **loader_kwargs: Any) -> Iterator[Any]:
    """Endless batches of ``dataset`` in a reproducible order, starting at batch ``start_step``.

    With ``num_workers=0`` a resumed run is bit-identical (random augmentations draw from the
    restored global RNG). Worker processes keep the batch order but reseed augmentations.
    """
    n = len(dataset)  # type: ignore[arg-type]
    if drop_last and n < batch_size:
        raise ValueError(f"dataset has {n} items, fewer than one batch of {batch_size}")
    sampler = ResumableSampler(n, seed=seed, shuffle=shuffle, start=start_step * batch_size)
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
                    map_location: str | torch.device | None = "cpu", restore_rng: bool = True) -> dict:
    """Restore what :func:`save_checkpoint` wrote into ``objects`` (and ``history``); return the raw state.

    A damaged file is a :class:`CorruptCheckpointError` naming it, never a silently wrong model. A
    checkpoint missing one of the named objects is an error naming it: a silently half-loaded GAN
    would train on from random weights. The file is read with ``torch.load(weights_only=True)``,
    which cannot execute code from it.
    """
    path = Path(path)
    state = _read_checkpoint(path, map_location)
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
        desc: str = "train", **loader_kwargs: Any) -> History:
    """Train for ``steps`` steps of ``step_fn(batch, step) -> {name: value}`` and return the history.

    ``objects`` names everything whose state must survive an interruption (models, optimisers,
    schedulers, image pools). Schedulers are the step function's business: it calls
    ``scheduler.step()`` when its schedule says so. ``eval_fn(step)`` runs every ``eval_every``
    steps and after the last one; its numbers go into the history too.

    With ``checkpoint`` set, an existing file is resumed from (or, if it is complete, simply loaded)
    and the file is rewritten every ``checkpoint_every`` steps and at the end.
    """
    history = History()
    start = 0
    state = None
    if checkpoint is not None and Path(checkpoint).exists():
        state = load_checkpoint(checkpoint, objects, history, restore_rng=False)
        start = int(state["step"])
        if start >= steps:
            if progress:
                print(f"loaded {checkpoint} (trained {start} steps)")
            return history
    stream = batches(dataset, batch_size, seed=seed, start_step=start, num_workers=num_workers, **loader_kwargs)
    if state is not None:
        _set_rng_state(state["rng"])  # after the loader drew its base seed, so the resumed run matches
    bar = tqdm(range(start, steps), initial=start, total=steps, desc=desc, disable=not progress,
               dynamic_ncols=True, mininterval=1.0)
    for step in bar:
        values = step_fn(next(stream), step)
        if log_every and (step + 1) % log_every == 0:
            history.log(step + 1, values)
            bar.set_postfix({k: f"{float(v):.4g}" for k, v in list(values.items())[:4]}, refresh=False)
        done = step + 1
        if eval_fn is not None and (eval_every and done % eval_every == 0 or done == steps):
            history.log(done, _without_touching_rng(eval_fn, done))
        if checkpoint is not None and (done % checkpoint_every == 0 or done == steps):
            save_checkpoint(checkpoint, done, objects, history)
    bar.close()
    return history
