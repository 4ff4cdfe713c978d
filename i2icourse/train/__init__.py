"""The course's one training loop: progress bar, history, atomic checkpoints and exact resume.

Every chapter trains through :func:`fit`. The chapter supplies a *step function* -- one optimisation
step on one batch, returning the numbers to log -- and ``fit`` does the rest:

* draws batches in a reproducible order (:class:`ResumableSampler`), epoch after epoch;
* shows a tqdm progress bar and keeps a :class:`~i2icourse.train.history.History` of every logged
  number;
* every ``checkpoint_every`` steps writes a checkpoint atomically (write to a temporary file,
  flush it to the disk, then rename), so a Colab disconnect mid-write never leaves a broken file;
  a checksum in the file catches one damaged later (a cut-short copy or sync);
* on the next call with the same checkpoint path it resumes where it stopped -- exactly: the
  models, optimisers, schedulers, the sampler position and all random-number generators are
  restored, so N steps + reload + N steps equal 2N steps straight. If the checkpoint already
  holds ``steps`` steps, ``fit`` trains nothing: "load the checkpoint if it exists, else train";
* every checkpoint records the settings that shaped it (the chapter's settings, the models'
  parameter shapes, the optimisers' hyperparameters), and a checkpoint made with other settings is
  refused (:class:`~i2icourse.train.provenance.StaleCheckpointError`) instead of silently reused;
* after a few steps of a long run it prints, once, how long the rest will take on this device.

This module is the loop and the stream of batches it draws. The rest has a module each, and every
name of them can be used from here as well (``train.save_checkpoint``, ``train.History``):

* :mod:`i2icourse.train.history` -- :class:`~i2icourse.train.history.History`, the logged numbers;
* :mod:`i2icourse.train.checkpoints` -- atomic, checksummed saves and loads, random-number states;
* :mod:`i2icourse.train.provenance` -- what a checkpoint was made with, and the refusal of a stale one;
* :mod:`i2icourse.train.time_estimate` -- the printed estimate of how long a run will take.

Checkpoints hold only tensors and plain Python values and are read with
``torch.load(weights_only=True)``, which cannot execute code from a file.
"""
from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, Sampler
from tqdm.auto import tqdm

from .. import distributed
from ..inference import device_of
# The parts of training, a module each; imported here also so that ``train.save_checkpoint(...)``,
# ``train.History`` and the rest work from this module as well.
from .checkpoints import (CHECKPOINT_HEADER, STALE_TMP_SECONDS, CorruptCheckpointError, Stateful, load_checkpoint,
                          rng_state, save_checkpoint, set_rng_state)
from .history import History
from .provenance import UNCHECKED_SETTINGS, StaleCheckpointError, run_record
from .time_estimate import ANNOUNCE_MIN_STEPS, TIMED_STEPS, TimeEstimate, device_name


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
# The loop
# ----------------------------------------------------------------------------------------------

def _training_device(objects: Mapping[str, Stateful]) -> torch.device | None:
    """The device of the first model in ``objects``; None without one."""
    module = next((obj for obj in objects.values() if isinstance(obj, nn.Module)), None)
    return device_of(module) if module is not None else None


def _without_touching_rng(fn: Callable[[int], Mapping[str, float]], step: int) -> Mapping[str, float]:
    # An evaluation must not shift the training's random stream, or where evaluations happen
    # (e.g. at the end of a shorter run) would change the training that follows.
    saved = rng_state()
    try:
        return fn(step)
    finally:
        set_rng_state(saved)


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

    Each checkpoint records how its run was made (:func:`~i2icourse.train.provenance.run_record`):
    ``settings`` -- the chapter's profile values and call options, e.g. ``{**vars(P), "rec": "l1"}``
    -- and, taken from the fresh ``objects`` before anything is loaded, the models' parameter shapes
    and the optimisers' hyperparameters. A checkpoint whose record differs is refused with a
    :class:`~i2icourse.train.provenance.StaleCheckpointError` listing the differences. ``steps``
    and ``profile`` are not compared: a run of N steps resumed to 2N trains on from its own
    checkpoint, and the profile is part of the checkpoint's path.

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
        set_rng_state(state["rng"])  # after the loader drew its base seed, so the resumed run matches
    bar = tqdm(range(start, steps), initial=start, total=steps, desc=desc, disable=not progress,
               dynamic_ncols=True, mininterval=1.0)
    estimate = None
    if announce and steps - start >= ANNOUNCE_MIN_STEPS:
        estimate = TimeEstimate(desc, start, steps, device_name(_training_device(objects)))
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
