"""Running a trained network: eval mode, no gradients, a batch at a time, and the network's mode back afterwards.

Every chapter that measures or shows a network's outputs does the same four things: switch it to
eval mode (dropout off, batch norm on its running statistics), stop recording gradients, feed the
images in chunks that fit in memory, and restore the mode it had, also when a chunk fails, so that
training can go on. :func:`evaluating` is the first, second and fourth; :func:`predict` adds the
chunks; :func:`translate` is the course's one way to run an image-to-image network on images in
[0, 1] -- a tanh generator's [-1, 1] range included -- used by the recipes, the command line and the
chapters alike::

    with inference.evaluating(net):
        y = net(x)
    y = inference.predict(net, images, batch_size=32)            # (N, ...) on the CPU
    y = inference.translate(G, images)                           # a tanh generator: [0, 1] in and out

Imports only torch, so every layer of the package may use it (the models themselves stay torch-only).
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Callable, Iterator

import torch
from torch import nn


@contextmanager
def evaluating(*nets: Callable) -> Iterator[None]:
    """Inside the block ``nets`` are in eval mode and no gradients are recorded; every layer's mode comes back afterwards, even on an error.

    Each sub-module gets its own flag back, so a layer kept in eval mode on purpose inside a training
    network (a frozen batch norm) stays so. A plain function among ``nets`` has no mode: only the
    gradients are switched off for it.
    """
    modules = [net for net in nets if isinstance(net, nn.Module)]
    modes = [(m, m.training) for net in modules for m in net.modules()]
    for net in modules:
        net.eval()
    try:
        with torch.no_grad():
            yield
    finally:
        for m, training in modes:
            m.training = training


def device_of(net: Callable) -> torch.device:
    """The device of ``net``'s first parameter; the CPU for a function or a network without parameters."""
    params = net.parameters() if isinstance(net, nn.Module) else iter(())
    return next((p.device for p in params), torch.device("cpu"))


def predict(net: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, batch_size: int = 32,
            device: torch.device | str | None = None,
            fn: Callable[[torch.Tensor], torch.Tensor] | None = None) -> torch.Tensor:
    """``net``'s outputs for the batch ``x`` (N, ...), ``batch_size`` items at a time, in eval mode, on the CPU.

    Each chunk goes to ``device`` (default: ``net``'s); ``fn`` is what to compute on a chunk when it
    is not ``net`` itself, e.g. ``net.encode`` or a function that maps to [-1, 1] and back (``net``
    still names the network whose mode is switched). ``net`` may also be a plain function. An empty
    ``x`` gives ``fn``'s output for an empty batch.
    """
    if batch_size < 1:
        raise ValueError(f"predict: batch_size must be at least 1, got {batch_size}")
    fn = net if fn is None else fn
    device = device_of(net) if device is None else torch.device(device)
    chunks = [x[i:i + batch_size] for i in range(0, len(x), batch_size)] or [x]
    with evaluating(net):
        return torch.cat([fn(chunk.to(device)).cpu() for chunk in chunks])


def translate(net: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, batch_size: int = 16,
              signed: bool = True) -> torch.Tensor:
    """``net``'s outputs in [0, 1] for images ``x`` in [0, 1], (C, H, W) or (N, C, H, W), by :func:`predict`.

    ``signed``: ``net`` works in [-1, 1], the range of a tanh generator (pix2pix's, CycleGAN's): the
    images are mapped there (``2 x - 1``, :func:`i2icourse.images.to_signed`) and the outputs back
    (``(y + 1) / 2``, clamped to [0, 1]: :func:`i2icourse.images.from_signed`). ``signed=False``: the
    images go in and the outputs come out as they are. Always in float32, whatever precision the
    network was trained in: a measurement does not depend on how the training computed.
    """
    def run(chunk: torch.Tensor) -> torch.Tensor:
        return ((net(chunk * 2 - 1) + 1) / 2).clamp(0, 1) if signed else net(chunk)

    batch = x if x.dim() == 4 else x.unsqueeze(0)
    out = predict(net, batch, batch_size, fn=run)
    return out if x.dim() == 4 else out[0]


#: A velocity field for :func:`flow_sample`: ``(x, t, condition) -> v``, ``t`` a (N,) tensor of times.
Velocity = Callable[[torch.Tensor, torch.Tensor, torch.Tensor | None], torch.Tensor]


@torch.no_grad()
def flow_sample(velocity: Velocity, z: torch.Tensor, steps: int, method: str = "euler",
                condition: torch.Tensor | None = None) -> torch.Tensor:
    """Integrate ``dx/dt = velocity(x, t, condition)`` from ``x = z`` at ``t = 0`` to ``t = 1`` in ``steps`` steps.

    Chapter 7's sampler (flow matching, rectified flow). Each step moves by ``h = 1 / steps``:

    * ``"euler"``: ``x + h v(x, t)`` -- one evaluation per step, an error that halves with each
      doubling of ``steps`` (first order);
    * ``"heun"``: take the Euler step as a guess, and move by the mean of the velocities at both
      ends, ``x + h/2 (v(x, t) + v(guess, t + h))`` -- two evaluations per step, an error that falls
      four times with each doubling (second order).

    ``velocity`` is the network (in eval mode: :func:`evaluating`) or any function of the same
    arguments. No gradients are recorded. Returns ``x`` at ``t = 1``, ``z``'s shape.
    """
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"flow_sample: steps must be a positive integer, got {steps!r}")
    if method not in ("euler", "heun"):
        raise ValueError(f"flow_sample: method must be 'euler' or 'heun', got {method!r}")
    h = 1.0 / steps
    x = z
    for i in range(steps):
        t = torch.full((len(x),), i * h, device=x.device)        # (N,): every image at the same time
        v = velocity(x, t, condition)
        if method == "euler":
            x = x + h * v
        else:
            guess = x + h * v                                    # where Euler would land
            x = x + h / 2 * (v + velocity(guess, t + h, condition))
    return x
