"""Checkpoints: atomic saves, checksummed loads, and the random-number states that make a resume exact.

:func:`save_checkpoint` writes the states of everything named (models, optimisers, schedulers,
image pools: anything :class:`Stateful`), the step, the :class:`~i2icourse.train.history.History`
and every random-number generator's state to a temporary file, flushes it to the disk and renames
it over the checkpoint, so a Colab disconnect mid-write never leaves a broken file; a checksum in
the file catches one damaged later (a cut-short copy or sync). :func:`load_checkpoint` puts it all
back, after checking the run's record (:mod:`i2icourse.train.provenance`) if it is given one.

Checkpoints hold only tensors and plain Python values and are read with
``torch.load(weights_only=True)``, which cannot execute code from a file.
"""
from __future__ import annotations

import hashlib
import io
import os
import random
import time
from pathlib import Path
from typing import Any, Mapping, Protocol

import numpy as np
import torch

from .history import History
from .provenance import check_record


class Stateful(Protocol):
    """Anything with ``state_dict``/``load_state_dict``: models, optimisers, schedulers, image pools."""

    def state_dict(self) -> dict: ...

    def load_state_dict(self, state: dict) -> Any: ...


def rng_state() -> dict:
    """The states of all random-number generators (torch, CUDA, NumPy, Python) as tensors and plain
    values: what a checkpoint stores, so that a resumed run draws the numbers the uninterrupted one would."""
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


def set_rng_state(state: dict) -> None:
    """Restore the random-number generators to ``state``, as :func:`rng_state` returned it."""
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
        "rng": rng_state(),
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

    With ``expect_record`` (a :func:`~i2icourse.train.provenance.run_record` of the current run) the
    record stored in the file is checked before anything is loaded: a different one is a
    :class:`~i2icourse.train.provenance.StaleCheckpointError`; a file written before checkpoints had
    records loads with a printed note.
    """
    path = Path(path)
    state = _read_checkpoint(path, map_location)
    if expect_record is not None:
        check_record(path, state["extra"].get("record"), expect_record)
    missing = [name for name in objects if name not in state["objects"]]
    if missing:
        raise KeyError(f"{path}: the checkpoint has no state for {missing} "
                       f"(it holds {sorted(state['objects'])})")
    for name, obj in objects.items():
        obj.load_state_dict(state["objects"][name])
    if history is not None:
        history.load_state_dict(state["history"])
    if restore_rng:
        set_rng_state(state["rng"])
    return state
