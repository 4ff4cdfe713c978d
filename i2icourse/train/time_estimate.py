"""How long the rest of a run will take: timed on its own first steps, printed once.

After a few steps of a long run, :func:`i2icourse.train.fit` prints one line, ``<desc>: <n> steps to
go, about <time> on this device (<device>)``, so that a reader knows whether to wait or to pick a
smaller profile. :class:`TimeEstimate` does the timing; it only reads the clock, so a run
trains the same with it or without it.
"""
from __future__ import annotations

import time

import torch
from tqdm.auto import tqdm


#: :func:`~i2icourse.train.fit` announces how long a run will take when it has at least this many
#: steps to go. It times TIMED_STEPS steps after the run's first one, which also warms up (memory,
#: cuDNN autotuning).
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


class TimeEstimate:
    """Times a few of a run's own first steps and prints, once, how long the rest will take.

    It only reads the clock: no extra step, no random number, so the training is the same without it.
    """

    def __init__(self, desc: str, start: int, steps: int, device: str):
        self.desc, self.steps, self.device = desc, steps, device
        self.first, self.last = start + 1, start + 1 + TIMED_STEPS  # timed: steps first+1 .. last
        self.began = 0.0

    def after_step(self, done: int) -> None:
        """Call after every step with the number of steps ``done``: starts the clock, then prints the estimate."""
        if done == self.first:
            self.began = _clock()
        elif done == self.last:
            per_step = (_clock() - self.began) / TIMED_STEPS
            left = self.steps - done
            tqdm.write(f"{self.desc}: {left} steps to go, about {_duration(per_step * left)} "
                       f"on this device ({self.device})")
