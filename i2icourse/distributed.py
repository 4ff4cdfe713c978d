"""Training on several GPUs (or several CPU processes) with PyTorch's own engine, ``torch.distributed``.

``torchrun --nproc_per_node N script.py`` starts N copies of the same script, one per GPU. Each copy
(a *process*, numbered by its *rank* from 0 to ``world_size - 1``) holds a full copy of the models,
trains on its own share of every batch, and the copies average their gradients before each
optimiser step, so that all of them take the same step and stay identical. The course's code
does this in four places:

* :func:`setup` reads what ``torchrun`` puts in the environment (``RANK``, ``WORLD_SIZE``,
  ``LOCAL_RANK``), joins the process group (NCCL between GPUs, gloo on the CPU) and chooses this
  process's GPU. Without ``torchrun`` it does nothing: one process, rank 0 of 1.
* **Data.** :func:`i2icourse.train.fit` draws one *global* stream of indices,
  :class:`i2icourse.train.ResumableSampler` with the same seed in every process, and process ``r``
  takes items ``r, r + W, r + 2W, ...`` of it (``W`` the world size). With a per-process batch
  ``b``, each global batch of ``W * b`` items is split into ``W`` disjoint shares. The stream
  position after ``s`` steps is ``s * W * b`` whatever happened before, so a resumed run sees
  exactly the batches of the uninterrupted one, under ``torchrun`` as without it.
* **Gradients.** :func:`data_parallel` wraps a model in PyTorch's
  :class:`~torch.nn.parallel.DistributedDataParallel` (DDP), which averages the gradients over the
  processes during ``backward`` (all-reduce, overlapped with the rest of the backward pass).
  The recipes need no change: ``sr.model = data_parallel(sr.model)``, or ``gan.G`` and ``gan.D``
  for pix2pix, after the recipe is built (the optimisers hold the same parameter tensors, which
  DDP shares). Two checks made this the choice over a hand-written all-reduce hook:

  - pix2pix freezes D (``requires_grad`` off) while G learns through it. DDP counts a
    parameter as "ready" when its gradient hook fires; a frozen D fires none, so that backward
    leaves D's reducer untouched and D's next update starts afresh. No ``find_unused_parameters``
    (an extra traversal of the autograd graph every step) is needed. D's two forward passes
    (real and fake) before one backward are fine too: each parameter's gradient hook fires once.
  - DDP keeps the model under ``.module``, so its ``state_dict`` names every tensor
    ``module.…``. :func:`i2icourse.train.fit` therefore saves the unwrapped models
    (:func:`unwrapped`): a checkpoint of a ``torchrun`` run loads without ``torchrun``, into a plain
    model, and the other way round.

* **BatchNorm.** DDP keeps BatchNorm as it is: each process normalises over its own per-process
  batch. pix2pix trains with batch 1, so its BatchNorm uses the statistics of one image, as the
  paper does; run with per-process batch 1 and the paper's setting is kept on any number of GPUs
  (the global batch, and so the gradient, is then an average over N images). Converting to
  :class:`~torch.nn.SyncBatchNorm` would normalise over all processes' images together, which is
  another model; the course deliberately does not. The running statistics are rank 0's: DDP
  copies its buffers to the others before every forward pass (``broadcast_buffers``).
* **Checkpoints and output.** Only rank 0 writes checkpoints and shows the progress bar and
  messages; the others wait at a barrier after each save, so none runs ahead of a checkpoint
  being written. On resume every process loads the same file. All processes start from the same
  seed and draw the same random numbers (dropout masks, augmentations), each for its own images,
  so rank 0's saved random state is every process's and resume stays exact.

The numbers that ``fit`` logs are averaged over the processes (:func:`mean_over_processes`):
the loss in the history is the loss of the global batch, comparable with one process's loss at
batch ``W * b``. Tested on the CPU with gloo and two processes on one machine; see the book's
"Scaling up" page for what was not.
"""
from __future__ import annotations

import os
from typing import Any, Mapping

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from . import runtime


def launched() -> bool:
    """Whether this process was started by ``torchrun`` (which sets ``RANK`` and ``WORLD_SIZE``)."""
    return "RANK" in os.environ and "WORLD_SIZE" in os.environ


def active() -> bool:
    """Whether a process group is running (after :func:`setup` under ``torchrun``)."""
    return dist.is_available() and dist.is_initialized()


def rank_and_world_size() -> tuple[int, int]:
    """This process's rank and the number of processes: ``(0, 1)`` without a process group."""
    if not active():
        return 0, 1
    return dist.get_rank(), dist.get_world_size()


def setup() -> tuple[int, int, torch.device]:
    """Join ``torchrun``'s process group; return ``(rank, world_size, device)``.

    On CUDA each process takes the GPU ``LOCAL_RANK`` (its number on this machine) and the
    processes talk through NCCL; elsewhere (``I2I_DEVICE=cpu`` or no GPU) through gloo. Without
    ``torchrun`` nothing is joined: ``(0, 1, runtime.device())``. Calling it again returns the same.
    """
    device = runtime.device()
    if not launched():
        return 0, 1, device
    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
        torch.cuda.set_device(device)
    if not active():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    rank, world_size = rank_and_world_size()
    return rank, world_size, device


def cleanup() -> None:
    """Leave the process group (at the end of a script run by ``torchrun``); nothing without one."""
    if active():
        dist.destroy_process_group()


def barrier() -> None:
    """Wait until every process gets here; nothing without a process group."""
    if active():
        dist.barrier()


def data_parallel(module: nn.Module) -> nn.Module:
    """``module`` in :class:`~torch.nn.parallel.DistributedDataParallel`, which averages its gradients
    over the processes; ``module`` itself without a process group.

    Wrap a recipe's model after the recipe is built (its device is then set):
    ``gan.G, gan.D = data_parallel(gan.G), data_parallel(gan.D)``. Plain (not synchronised)
    BatchNorm, no search for unused parameters: see the module's docstring. Every process must
    run every forward pass of the wrapped model, evaluations included (DDP exchanges the BatchNorm
    buffers there); to use the model in one process only, use :func:`unwrap`.
    """
    if not active():
        return module
    device = next(module.parameters()).device
    return DistributedDataParallel(module, device_ids=[device] if device.type == "cuda" else None)


def unwrap(obj: Any) -> Any:
    """The model inside a :class:`~torch.nn.parallel.DistributedDataParallel`; anything else as it is."""
    return obj.module if isinstance(obj, DistributedDataParallel) else obj


def unwrapped(objects: Mapping[str, Any]) -> dict[str, Any]:
    """``objects`` with every DDP model replaced by the model inside: what a checkpoint holds, without
    DDP's ``module.`` prefix, so that it loads with or without ``torchrun``."""
    return {name: unwrap(obj) for name, obj in objects.items()}


def mean_over_processes(values: Mapping[str, float]) -> dict[str, float]:
    """Each number averaged over the processes (one all-reduce); ``values`` as floats with one process.

    Every process's loss is the mean over its own share of the global batch, so their average is
    the loss of the whole global batch. Every process must call it at the same steps.
    """
    if not active() or dist.get_world_size() == 1:
        return {name: float(value) for name, value in values.items()}
    device = torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else None
    t = torch.tensor([float(v) for v in values.values()], dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return dict(zip(values, (t / dist.get_world_size()).tolist()))
