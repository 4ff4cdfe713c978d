"""What every recipe is: the networks of one model family, their optimisers, and one training step.

:func:`i2icourse.train.fit` needs two things of a recipe: ``step(batch, step)`` -- one optimisation
step, returning the numbers to log -- and ``objects()`` -- everything a checkpoint must hold. The
chapters need a third, ``translate(x)``: the trained network's outputs for inputs in [0, 1]. The
six recipes share the rest through :class:`Recipe`:

* one batch format: a paired batch is ``{"A": inputs, "B": targets}`` (pix2pix, the SSIM maps, SRCNN's
  patches, flow matching), an unpaired one ``{"A": domain A, "B": domain B}`` (CycleGAN); only the
  autoencoder, whose target is its input, takes a plain batch of images;

* :meth:`Recipe.networks` names the networks; the names are their keys in a checkpoint -- ``G`` and
  ``D`` (pix2pix), ``G``, ``F``, ``D_A`` and ``D_B`` (CycleGAN), ``net`` for a recipe with one network;
* :meth:`Recipe.objects` is the networks, :meth:`Recipe.training_state` (optimisers, learning-rate
  schedules, image pools) and the gradient scaler of fp16 (:meth:`i2icourse.precision.Precision.objects`);
* :meth:`Recipe.update` is one optimiser update -- zero the old gradients, back-propagate, step --
  in the recipe's numeric precision, and :meth:`Recipe.finish_step` what comes once per step after
  the updates (the fp16 scale, the schedules).

So a step reads like the paper: the forward passes under ``with self.precision.autocast():``, the
losses, ``self.update(loss, self.opt)``::

    with self.precision.autocast():         # mixed precision on a GPU; float32 on the CPU
        pred = self.model(x).float()
    loss = self.loss_fn(pred, y)
    self.update(loss, self.opt)             # opt.zero_grad(); loss.backward(); opt.step()
    self.finish_step()                      # sched.step()

Each recipe logs the numbers of its chapter, under the names the chapter prints: ``loss``
(chapters 2, 3), ``mae`` (chapter 1), pix2pix's ``D``, ``G_GAN``, ``G_L1``, ``G`` and CycleGAN's
``G``, ``F``, ``D_A``, ``D_B``, ``cycle``, ``identity``; flow matching's ``loss`` (chapter 7).
"""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

from i2icourse.precision import Precision, policy


class Recipe:
    """The networks, optimisers and training step of one model family, on ``device`` in ``precision``.

    ``precision``: how the step computes, a :class:`~i2icourse.precision.Precision` or its name
    (default: the device's, :func:`i2icourse.precision.policy`: mixed precision and channels-last on
    CUDA, float32 elsewhere). A subclass builds its networks with ``self.precision.to_model`` and
    defines the four methods that differ from recipe to recipe: :meth:`networks`, :meth:`training_state`,
    :meth:`step` and :meth:`translate`.
    """

    def __init__(self, device: torch.device | str = "cpu", precision: Precision | str | None = None):
        self.device = torch.device(device)
        self.precision = policy(self.device, precision)

    def networks(self) -> dict[str, nn.Module]:
        """The networks by name; the names are their keys in a checkpoint."""
        raise NotImplementedError(f"{type(self).__name__} must name its networks")

    def training_state(self) -> dict[str, Any]:
        """What else a resumed run needs: the optimisers, the learning-rate schedules (and the image pools)."""
        raise NotImplementedError(f"{type(self).__name__} must name its optimisers")

    def step(self, batch: Any, step: int = 0) -> dict[str, float]:
        """One optimisation step on ``batch``, for :func:`i2icourse.train.fit`: the numbers to log."""
        raise NotImplementedError(f"{type(self).__name__} must define its training step")

    def translate(self, x: torch.Tensor) -> torch.Tensor:
        """The trained network's outputs for inputs ``x`` in [0, 1], in eval mode, in float32.

        All by :func:`~i2icourse.inference.translate`: a tanh generator's inputs and outputs are mapped
        to [-1, 1] and back, the others' are as they are.
        """
        raise NotImplementedError(f"{type(self).__name__} must define how its network translates")

    def objects(self) -> dict[str, Any]:
        """Everything a checkpoint must hold (for ``train.fit(objects=...)``); with fp16 the gradient scaler too."""
        return {**self.networks(), **self.training_state(), **self.precision.objects()}

    def train_mode(self) -> None:
        """Every network in training mode (dropout on, batch norm on the batch's statistics)."""
        for net in self.networks().values():
            net.train()

    def update(self, loss: torch.Tensor, optimizer: torch.optim.Optimizer) -> None:
        """One update of ``optimizer``'s parameters on ``loss``: ``zero_grad(); loss.backward(); step()``.

        In fp16 the loss is multiplied by the gradient scaler's factor before the backward pass and
        the gradients divided by it before the step, which is skipped if one of them is inf or NaN
        (:class:`~i2icourse.precision.Precision`); in float32 and bf16 it is exactly the three calls.
        """
        optimizer.zero_grad(set_to_none=True)
        self.precision.backward(loss)
        self.precision.step(optimizer)

    def finish_step(self) -> None:
        """Once per step, after every :meth:`update`: adapt the fp16 scale, advance each learning-rate schedule."""
        self.precision.update()
        for schedule in self.training_state().values():
            if isinstance(schedule, torch.optim.lr_scheduler.LRScheduler):
                schedule.step()
