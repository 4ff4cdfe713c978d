"""Chapter 7's velocity network: a small U-Net that knows the time ``t`` (``notebooks/07_flow_matching.ipynb``).

Flow matching (Lipman et al. 2023) trains a network ``v(x_t, t, condition)`` to point from the
noisy image ``x_t`` towards the clean one. Its shape is the DDPM U-Net's (Ho et al. 2020), made
small enough to train on a CPU:

* the input is the current image ``x_t`` and the condition (for super-resolution: the
  bicubic-upscaled low-resolution Y) side by side, ``in_channels + cond_channels`` channels;
* the time ``t`` in [0, 1] becomes a vector by :func:`time_embedding` (the sines and cosines of the
  Transformer's positions) and a small MLP; every :class:`ResBlock` adds its own linear projection
  of that vector to its feature maps, so each block can act differently at each ``t``;
* ``widths`` are the levels' channel counts, finest first: ``(32, 64, 128)`` has three levels and
  halves the resolution twice (images must have sides that are multiples of :attr:`FlowUNet.multiple`);
* going down is a 4x4 stride-2 convolution (as pix2pix's :class:`~i2icourse.models.unet.Down`),
  going up is nearest-neighbour upsampling and a 3x3 convolution
  (:func:`~i2icourse.models.unet.upsampling` ``"resize"``: no checkerboard artefacts), with the
  encoder's features concatenated as in every U-Net;
* the output is the velocity itself, unbounded: no tanh.

Imports only torch (and the U-Net parts of :mod:`i2icourse.models.unet`).
"""
from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import nn

from i2icourse.models.unet import upsampling


def time_embedding(t: torch.Tensor, dim: int, scale: float = 1000.0, max_period: float = 10_000.0) -> torch.Tensor:
    """The Transformer's sinusoidal embedding of times ``t`` (N,) in [0, 1]: (N, ``dim``), ``dim`` even.

    As DDPM, ``t`` is first multiplied by ``scale`` (its 1000 discrete steps); then frequency ``k``
    of ``dim / 2`` is ``max_period ** (-k / (dim / 2))``, and the vector is the sines of
    ``scale * t`` times each frequency followed by their cosines.
    """
    if dim % 2:
        raise ValueError(f"time_embedding: dim must be even, got {dim}")
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32, device=t.device) / half)
    angles = scale * t.float()[:, None] * freqs[None, :]         # (N, dim/2)
    return torch.cat([angles.sin(), angles.cos()], dim=1)        # (N, dim)


def group_norm(channels: int) -> nn.GroupNorm:
    """GroupNorm with up to 8 groups (DDPM's normalisation; statistics per image, not per batch)."""
    return nn.GroupNorm(math.gcd(8, channels), channels)


class ResBlock(nn.Module):
    """Norm-SiLU-conv, plus the time's projection, norm-SiLU-conv, plus the input (1x1 conv if widths differ)."""

    def __init__(self, cin: int, cout: int, time_dim: int):
        super().__init__()
        self.norm1 = group_norm(cin)
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1)
        self.time = nn.Linear(time_dim, cout)                    # this block's view of the time
        self.norm2 = group_norm(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)
        self.act = nn.SiLU()
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(self, x: torch.Tensor, temb: torch.Tensor) -> torch.Tensor:
        h = self.conv1(self.act(self.norm1(x)))                  # (N, cin, H, W) -> (N, cout, H, W)
        h = h + self.time(self.act(temb))[:, :, None, None]      # (N, time_dim) -> (N, cout, 1, 1), per channel
        h = self.conv2(self.act(self.norm2(h)))
        return h + self.skip(x)                                  # (N, cout, H, W)


class FlowUNet(nn.Module):
    """The velocity field ``v(x_t, t, condition)``: a time-conditioned U-Net, output unbounded.

    ``in_channels``: the image's (1 for Y); ``cond_channels``: the condition's (0: none, an
    unconditional flow); ``out_channels``: the velocity's, the image's again; ``widths``: channels per
    level, finest first (at least two levels); ``time_dim``: the width of the time vector each block
    sees (default ``4 * widths[0]``, as DDPM).
    """

    def __init__(self, in_channels: int = 1, cond_channels: int = 1, out_channels: int = 1,
                 widths: Sequence[int] = (32, 64, 128), time_dim: int | None = None):
        super().__init__()
        widths = tuple(widths)
        if len(widths) < 2:
            raise ValueError(f"FlowUNet: widths needs at least two levels, got {widths}")
        self.in_channels, self.cond_channels, self.out_channels = in_channels, cond_channels, out_channels
        self.widths = widths
        self.time_dim = time_dim or 4 * widths[0]
        self.time_mlp = nn.Sequential(nn.Linear(widths[0], self.time_dim), nn.SiLU(),
                                      nn.Linear(self.time_dim, self.time_dim))
        self.stem = nn.Conv2d(in_channels + cond_channels, widths[0], 3, padding=1)
        # Encoder: a block at each level but the last, then a 4x4 stride-2 conv to the next level.
        self.down_blocks = nn.ModuleList()
        self.downsample = nn.ModuleList()
        for i in range(len(widths) - 1):
            self.down_blocks.append(ResBlock(widths[i - 1] if i else widths[0], widths[i], self.time_dim))
            self.downsample.append(nn.Conv2d(widths[i], widths[i], 4, stride=2, padding=1))
        # The coarsest level (the bottleneck): two blocks.
        self.mid1 = ResBlock(widths[-2], widths[-1], self.time_dim)
        self.mid2 = ResBlock(widths[-1], widths[-1], self.time_dim)
        # Decoder: nearest x2 + 3x3 conv to the level's width, the skip concatenated, a block.
        self.upsample = nn.ModuleList()
        self.up_blocks = nn.ModuleList()
        for i in reversed(range(len(widths) - 1)):
            self.upsample.append(upsampling(widths[i + 1], widths[i], "resize"))
            self.up_blocks.append(ResBlock(2 * widths[i], widths[i], self.time_dim))
        self.out_norm = group_norm(widths[0])
        self.out = nn.Conv2d(widths[0], out_channels, 3, padding=1)
        nn.init.zeros_(self.out.weight)  # the field starts at v = 0 everywhere: training starts calm
        nn.init.zeros_(self.out.bias)

    @property
    def multiple(self) -> int:
        """Image sides must be multiples of this (one halving per level below the first)."""
        return 2 ** (len(self.widths) - 1)

    def forward(self, x: torch.Tensor, t: torch.Tensor | float, condition: torch.Tensor | None = None) -> torch.Tensor:
        H, W = x.shape[-2:]
        if H % self.multiple or W % self.multiple:
            raise ValueError(f"FlowUNet(widths={self.widths}) needs sides that are multiples of "
                             f"{self.multiple}, got {H}x{W}")
        t = torch.as_tensor(t, device=x.device, dtype=torch.float32).reshape(-1).expand(len(x))  # (N,)
        temb = self.time_mlp(time_embedding(t, self.widths[0]))                  # (N, time_dim)
        h = self.stem(x if condition is None else torch.cat([x, condition], dim=1))  # (N, w0, H, W)
        skips = []
        for block, down in zip(self.down_blocks, self.downsample):
            h = block(h, temb)              # (N, w_i, H/2^i, W/2^i)
            skips.append(h)
            h = down(h)                     # (N, w_i, H/2^(i+1), W/2^(i+1))
        h = self.mid2(self.mid1(h, temb), temb)                                  # (N, w_last, H/m, W/m)
        for up, block in zip(self.upsample, self.up_blocks):
            h = up(h)                       # doubles H and W, to the level's width w_i
            h = block(torch.cat([h, skips.pop()], dim=1), temb)                  # (N, 2 w_i) -> (N, w_i)
        return self.out(nn.functional.silu(self.out_norm(h)))                    # (N, out_channels, H, W)
