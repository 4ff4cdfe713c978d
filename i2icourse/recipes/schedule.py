"""The learning-rate schedule of pix2pix and CycleGAN: constant, then linear decay to zero.

Both papers train 100 epochs at the initial rate and 100 more with the rate going linearly to 0
(``decay_from = 0.5``). Counted in optimisation steps, :func:`linear_decay` is the factor of
``torch.optim.lr_scheduler.LambdaLR``; the step function calls ``scheduler.step()`` once per step.
"""
from __future__ import annotations

from typing import Callable

import torch


def linear_decay(steps: int | None, decay_from: float = 0.5) -> Callable[[int], float]:
    """The factor at ``step``: 1 for the first ``decay_from * steps`` steps, then linear to 0 at ``steps``.

    ``steps=None`` keeps the rate constant.
    """
    keep = int(decay_from * steps) if steps else None

    def factor(step: int) -> float:
        if keep is None or step < keep:
            return 1.0
        return max(0.0, 1 - (step - keep) / max(1, steps - keep))

    return factor


def linear_decay_scheduler(optimizer: torch.optim.Optimizer, steps: int | None,
                           decay_from: float = 0.5) -> torch.optim.lr_scheduler.LambdaLR:
    """A ``LambdaLR`` with :func:`linear_decay` (its state goes into a checkpoint like any scheduler's)."""
    return torch.optim.lr_scheduler.LambdaLR(optimizer, linear_decay(steps, decay_from))
