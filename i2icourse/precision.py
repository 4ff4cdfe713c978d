"""The numeric precision of training steps: float32, or mixed precision with bfloat16 or float16.

Taught in chapter 4's GPU section. Most of a training step is convolutions, and a GPU's tensor
cores run them several times faster on 16-bit numbers than on 32-bit ones. *Mixed* precision keeps
the weights, the optimisers' states and the losses in float32 and runs the forward passes under
``torch.autocast``, which chooses per operation: convolutions in 16 bits, reductions such as a
mean or a norm in 32. There are two 16-bit formats:

* ``bf16`` (bfloat16) has float32's range with fewer digits, so training needs nothing else. It is
  fast on GPUs of compute capability 8.0 and above (Ampere on: A100, RTX 30xx, H100, H200).
* ``fp16`` (float16) has more digits but a small range: a gradient below about 6e-8 becomes 0. A
  gradient scaler (:class:`torch.amp.GradScaler`) multiplies each loss before its backward pass
  and divides the gradients before the optimiser's step, so they stay in range; a step whose
  gradients overflowed is skipped and the factor lowered. It is the choice for older GPUs such as
  Colab's T4 (capability 7.5), whose tensor cores do float16 only.

On a GPU the convolutions are also faster in the channels-last memory order (NHWC, one pixel's
channels side by side). pix2pix's step on an H200 at batch 16 ran 1.58-1.69 times as many images
per second with bf16 and channels-last as in plain float32 (``benchmarks/RESULTS.md``); on the CPU
channels-last measured no gain, so there the default is plain float32, and a CPU run is
bit-identical to a step written without any of this.

:func:`policy` gives a device's default, or the precision asked for by name (argument or the
environment variable ``I2I_PRECISION``: ``auto``, ``fp32``, ``bf16``, ``fp16``). A recipe's step
uses the :class:`Precision` it gets like this (the last three calls are the recipes' one optimiser
update, :meth:`i2icourse.recipes.base.Recipe.update`, and :meth:`~i2icourse.recipes.base.Recipe.finish_step`)::

    with precision.autocast():                     # forward passes in 16 bits where it pays
        pred = model(precision.to_input(x))
    loss = loss_fn(pred.float(), y)                # the loss in float32, outside autocast
    precision.backward(loss)                       # (loss * scale).backward() with fp16
    precision.step(opt)                            # unscale, skip if inf/NaN, opt.step()
    precision.update()                             # once per training step: adapt the scale

Imports only torch.
"""
from __future__ import annotations

import os
from contextlib import contextmanager
from typing import Iterator

import torch
from torch import nn

#: The precisions by name: the dtype of the forward passes (None: plain float32).
DTYPES: dict[str, torch.dtype | None] = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}
#: What :func:`policy` accepts: a name of :data:`DTYPES`, or ``auto`` for the device's default.
CHOICES = ("auto", *DTYPES)


class Precision:
    """How a training step computes on ``device``: the autocast dtype (None: float32) and the memory order.

    With ``dtype=torch.float16`` it holds an enabled gradient scaler, which a checkpoint must keep
    (:meth:`objects`); otherwise the scaler is disabled and :meth:`backward`, :meth:`step` and
    :meth:`update` are plain ``loss.backward()``, ``optimizer.step()`` and nothing.
    """

    def __init__(self, dtype: torch.dtype | None = None, channels_last: bool = False,
                 device: torch.device | str = "cpu"):
        if dtype not in DTYPES.values():
            raise ValueError(f"Precision: dtype must be None, torch.bfloat16 or torch.float16, got {dtype}")
        self.dtype, self.channels_last, self.device = dtype, channels_last, torch.device(device)
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=dtype is torch.float16)

    @property
    def name(self) -> str:
        """``fp32``, ``bf16`` or ``fp16``."""
        return next(name for name, dtype in DTYPES.items() if dtype == self.dtype)

    def __repr__(self) -> str:
        layout = ", channels_last" if self.channels_last else ""
        return f"Precision({self.name}{layout}, {self.device})"

    @contextmanager
    def autocast(self) -> Iterator[None]:
        """Inside the block forward passes run in ``dtype`` where it pays (``torch.autocast``); fp32: no change."""
        if self.dtype is None:
            yield
        else:
            with torch.autocast(self.device.type, dtype=self.dtype):
                yield

    def to_model(self, module: nn.Module) -> nn.Module:
        """``module`` moved to the device, its 4-d weights in the memory order of the inputs."""
        return module.to(self.device, memory_format=self.memory_format)

    def to_input(self, x: torch.Tensor) -> torch.Tensor:
        """A batch (N, C, H, W) moved to the device, in the memory order of the models."""
        return x.to(self.device, memory_format=self.memory_format)

    def backward(self, loss: torch.Tensor) -> None:
        """``loss.backward()``, the loss multiplied by the scaler's factor first when it is enabled (fp16)."""
        self.scaler.scale(loss).backward()

    def step(self, optimizer: torch.optim.Optimizer) -> None:
        """``optimizer.step()``; with fp16 the gradients are unscaled first, the step skipped if one is inf or NaN."""
        self.scaler.step(optimizer)

    def update(self) -> None:
        """Adapt the scaler's factor, once per training step after every optimiser's :meth:`step` (fp16 only)."""
        self.scaler.update()

    def objects(self) -> dict[str, torch.amp.GradScaler]:
        """What a checkpoint must hold of it: the scaler while it is enabled (fp16), else nothing.

        A recipe adds these to its ``objects()``, so float32 and bf16 checkpoints look as before.
        """
        return {"scaler": self.scaler} if self.scaler.is_enabled() else {}


def policy(device: torch.device | str, choice: str | Precision | None = None) -> Precision:
    """The precision of training steps on ``device``: ``choice``, else ``I2I_PRECISION``, else ``auto``.

    ``auto``: on CUDA bf16 where it is fast (compute capability 8.0 and above), else fp16 with a
    gradient scaler; on any other device fp32. ``fp32``, ``bf16`` and ``fp16`` ask for that one (the
    CPU has all three). The memory order follows the device: channels-last on CUDA only. A
    :class:`Precision` given as ``choice`` is returned as it is, if it is made for ``device``.
    """
    device = torch.device(device)
    if isinstance(choice, Precision):
        if choice.device != device:
            raise ValueError(f"{choice} is made for the device {choice.device}, not {device}")
        return choice
    name = (choice or os.environ.get("I2I_PRECISION") or "auto").strip().lower()
    if name not in CHOICES:
        raise ValueError(f"precision {name!r} is not one of {', '.join(CHOICES)} "
                         "(the argument, or the environment variable I2I_PRECISION)")
    on_cuda = device.type == "cuda"
    if name == "auto":
        name = ("bf16" if fast_bf16(device) else "fp16") if on_cuda else "fp32"
    return Precision(DTYPES[name], channels_last=on_cuda, device=device)


def fast_bf16(device: torch.device | str) -> bool:
    """Whether the CUDA device computes in bfloat16 natively (capability 8.0 and above), not emulated."""
    return (torch.cuda.get_device_capability(device) >= (8, 0)
            and torch.cuda.is_bf16_supported(including_emulation=False))
