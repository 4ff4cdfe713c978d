"""Chapter 7's recipe (``notebooks/07_flow_matching.ipynb``): conditional flow matching for image-to-image.

Flow matching (Lipman et al. 2023) with straight paths (rectified flow, Liu et al. 2023). The
condition ``x`` (for super-resolution: the bicubic-upscaled Y) and the target ``y`` are mapped to
[-1, 1]; a noise image ``z ~ N(0, I)`` of ``y``'s shape and a time ``t ~ U(0, 1)`` per image are
drawn, and the network learns the velocity of the straight path from ``z`` to ``y``::

    x_t = (1 - t) z + t y              # the point at time t on the path
    loss = || v(x_t, t, x) - (y - z) ||^2

Averaged over ``z`` and ``y``, the minimiser is the velocity ``E[y - z | x_t, x]``; following it from
a fresh ``z`` at ``t = 0`` to ``t = 1`` (:func:`i2icourse.inference.flow_sample`) draws a sample of
the targets that fit the condition. Different ``z`` give different samples: the mean of many is
close to the MSE-optimal estimate (sharp where the condition decides, blurred where it does not),
one sample is sharp everywhere -- the perception-distortion trade-off that chapter 7 measures.

* :class:`FlowMatching` -- the network (:class:`i2icourse.models.flow_unet.FlowUNet`), Adam and the
  loss; ``step`` is for :func:`i2icourse.train.fit`.
* :func:`path` -- ``x_t`` and the regression target for given ``z``, ``y``, ``t``;
  :func:`sample` -- the network's samples for conditions in [0, 1], reproducible from a seed.
"""
from __future__ import annotations

from typing import Mapping, NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from i2icourse import images, inference
from i2icourse.precision import Precision
from i2icourse.recipes.base import Recipe


def path(z: torch.Tensor, y: torch.Tensor, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(x_t, target)`` on the straight path from noise ``z`` to target ``y`` at times ``t`` (N,).

    ``x_t = (1 - t) z + t y`` (``z`` at ``t = 0``, ``y`` at ``t = 1``); the path's velocity
    ``d x_t / dt = y - z`` is the same at every ``t``, and is what the network regresses.
    """
    t = t.reshape(-1, *([1] * (y.dim() - 1)))      # (N,) -> (N, 1, 1, 1): one time per image
    return (1 - t) * z + t * y, y - z


def sample(net: nn.Module, x: torch.Tensor, steps: int = 16, method: str = "euler", seed: int = 0,
           batch_size: int = 16) -> torch.Tensor:
    """Samples of ``net``'s flow for conditions ``x`` in [0, 1], (C, H, W) or (N, C, H, W), in [0, 1].

    The noise is drawn on the CPU by a generator seeded with ``seed`` (the same samples on every
    device, for every ``batch_size``), of the network's ``out_channels``; each chunk of
    ``batch_size`` images is integrated in ``steps`` steps of ``method`` (``"euler"`` or ``"heun"``,
    :func:`i2icourse.inference.flow_sample`) in eval mode, in float32, and mapped back to [0, 1].
    """
    batch = x if x.dim() == 4 else x.unsqueeze(0)
    N, _, H, W = batch.shape
    noise = torch.Generator().manual_seed(seed)
    z = torch.randn(N, net.out_channels, H, W, generator=noise)        # (N, C_out, H, W) on the CPU
    device = inference.device_of(net)
    out = []
    with inference.evaluating(net):
        for i in range(0, N, batch_size):
            condition = images.to_signed(batch[i:i + batch_size].to(device))      # [0, 1] -> [-1, 1]
            x1 = inference.flow_sample(net, z[i:i + batch_size].to(device), steps, method, condition)
            out.append(images.from_signed(x1.float()).cpu())                     # [-1, 1] -> [0, 1]
    result = torch.cat(out)
    return result if x.dim() == 4 else result[0]


class Samples(NamedTuple):
    """``k`` samples for the same conditions (``draws``: (k, ...) the conditions' shape), their per-pixel
    ``mean`` and standard deviation ``std`` (the conditions' shape each)."""

    draws: torch.Tensor
    mean: torch.Tensor
    std: torch.Tensor


class FlowMatching(Recipe):
    """A velocity network trained by flow matching with Adam (chapter 7 shows :meth:`loss` and :meth:`step`).

    ``model``: ``v(x_t, t, condition)``, e.g. a :class:`~i2icourse.models.flow_unet.FlowUNet`;
    ``lr_drop_at``: divide the learning rate by 10 from this step on (None: never); ``precision``:
    how the step computes (default: the device's, :func:`i2icourse.precision.policy`: mixed precision
    on CUDA, float32 elsewhere).
    """

    def __init__(self, model: nn.Module, lr: float = 1e-3, lr_drop_at: int | None = None,
                 device: torch.device | str = "cpu", precision: Precision | str | None = None):
        super().__init__(device, precision)
        self.model = self.precision.to_model(model)
        self.opt = torch.optim.Adam(self.model.parameters(), lr=lr)
        milestones = [] if lr_drop_at is None else [lr_drop_at]
        self.sched = torch.optim.lr_scheduler.MultiStepLR(self.opt, milestones=milestones, gamma=0.1)

    def networks(self) -> dict[str, nn.Module]:
        return {"net": self.model}

    def training_state(self) -> dict[str, torch.optim.Optimizer | torch.optim.lr_scheduler.LRScheduler]:
        return {"opt": self.opt, "sched": self.sched}

    def loss(self, x: torch.Tensor, y: torch.Tensor, z: torch.Tensor | None = None,
             t: torch.Tensor | None = None) -> torch.Tensor:
        """The flow-matching loss for conditions ``x`` and targets ``y`` in [-1, 1]; ``z``, ``t`` drawn unless given."""
        z = torch.randn_like(y) if z is None else z                      # noise of y's shape
        t = torch.rand(len(y), device=y.device) if t is None else t      # one time per image, U(0, 1)
        x_t, target = path(z, y, t)                                      # (1 - t) z + t y,  y - z
        with self.precision.autocast():                                  # mixed precision on a GPU
            v = self.model(x_t, t, x).float()
        return F.mse_loss(v, target)                                     # in float32

    def step(self, batch: Mapping[str, torch.Tensor], step: int = 0) -> dict[str, float]:
        """One Adam step on conditions ``batch['A']`` and targets ``batch['B']`` in [0, 1], each (N, C, H, W)."""
        self.train_mode()
        x, y = (images.to_signed(self.precision.to_input(batch[k])) for k in "AB")   # [0, 1] -> [-1, 1]
        loss = self.loss(x, y)
        self.update(loss, self.opt)                     # zero the gradients, back-propagate, step
        self.finish_step()                              # the learning-rate schedule
        return {"loss": loss.item()}

    def translate(self, x: torch.Tensor, steps: int = 16, method: str = "euler", seed: int = 0,
                  batch_size: int = 16) -> torch.Tensor:
        """One sample per condition ``x`` in [0, 1], (C,H,W) or (N,C,H,W); the same for one ``seed`` (:func:`sample`)."""
        return sample(self.model, x, steps, method, seed, batch_size)

    def samples(self, x: torch.Tensor, k: int, steps: int = 16, method: str = "euler", seed: int = 0,
                batch_size: int = 16) -> Samples:
        """``k`` samples for each condition ``x``, from seeds ``seed, seed + 1, ...``, with their mean and std.

        The first draw is :meth:`translate`'s with the same ``seed``. The mean of many draws tends to
        the MSE-optimal estimate (high PSNR, blurred); each draw is sharp (lower PSNR): chapter 7's
        perception-distortion study. The std is where the condition leaves the target uncertain.
        """
        if k < 1:
            raise ValueError(f"samples: k must be at least 1, got {k}")
        draws = torch.stack([self.translate(x, steps, method, seed + i, batch_size) for i in range(k)])
        return Samples(draws, draws.mean(dim=0), draws.std(dim=0, unbiased=False))
