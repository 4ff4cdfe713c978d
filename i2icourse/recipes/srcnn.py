"""Chapter 3's recipe (``notebooks/03_srcnn.ipynb``): train SRCNN on aligned (bicubic, HR) patches.

* :class:`SuperResolution` -- a network (:class:`i2icourse.models.srcnn.SRCNN`), Adam, a learning rate
  divided by 10 at step ``lr_drop_at`` and a loss from :func:`i2icourse.losses.get_loss`; ``step`` is
  for :func:`i2icourse.train.fit` and also keeps the training clock.
* The evaluation protocol (Y channel, shaved border, Set5/Set14) is :mod:`i2icourse.sr_eval`.
"""
from __future__ import annotations

import time
from typing import Mapping

import torch
from torch import nn

from i2icourse import inference
from i2icourse.losses import LossFn
from i2icourse.precision import Precision
from i2icourse.recipes.base import Recipe


class SuperResolution(Recipe):
    """A super-resolution network trained on ``loss_fn(net(x), y)`` with Adam (chapter 3 shows :meth:`step`).

    ``lr_drop_at``: divide the learning rate by 10 from this step on (None: never). ``seconds`` adds up
    the wall-clock time spent in :meth:`step`; it starts at 0 in every session, a resumed run included.
    ``precision``: how the step computes (default: the device's, :func:`i2icourse.precision.policy`:
    mixed precision on CUDA, float32 elsewhere).
    """

    def __init__(self, model: nn.Module, loss_fn: LossFn, lr: float = 1e-3, lr_drop_at: int | None = None,
                 device: torch.device | str = "cpu", precision: Precision | str | None = None):
        super().__init__(device, precision)
        self.model = self.precision.to_model(model)
        self.loss_fn = loss_fn
        self.opt = torch.optim.Adam(self.model.parameters(), lr=lr)
        milestones = [] if lr_drop_at is None else [lr_drop_at]
        self.sched = torch.optim.lr_scheduler.MultiStepLR(self.opt, milestones=milestones, gamma=0.1)
        self.seconds = 0.0

    def networks(self) -> dict[str, nn.Module]:
        return {"net": self.model}

    def training_state(self) -> dict[str, torch.optim.Optimizer | torch.optim.lr_scheduler.LRScheduler]:
        return {"opt": self.opt, "sched": self.sched}

    def step(self, batch: Mapping[str, torch.Tensor], step: int = 0) -> dict[str, float]:
        """One Adam step on Y patches: bicubic inputs ``batch['A']``, HR targets ``batch['B']``, each (N, 1, H, W)."""
        start = time.perf_counter()
        self.train_mode()
        x, y = self.precision.to_input(batch["A"]), self.precision.to_input(batch["B"])
        with self.precision.autocast():                    # mixed precision on a GPU
            pred = self.model(x).float()
        loss = self.loss_fn(pred, y)                       # in float32
        self.update(loss, self.opt)                        # zero the gradients, back-propagate, step
        self.finish_step()                                 # the learning-rate schedule
        self.seconds += time.perf_counter() - start
        return {"loss": loss.item(), "seconds": self.seconds}

    def translate(self, x: torch.Tensor, batch_size: int = 16) -> torch.Tensor:
        """The network's outputs for bicubic-upscaled inputs ``x`` (C,H,W) or (N,C,H,W), in eval mode."""
        return inference.translate(self.model, x, batch_size, signed=False)
