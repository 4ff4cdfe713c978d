"""The pix2pix generator: a U-Net encoder-decoder with skip connections (Isola et al. 2017, appendix 6.1.1).

Taught in chapter 4 (``notebooks/04_pix2pix.ipynb``: ``UNetGenerator.forward``, ``plot.unet_diagram``);
reused in chapters 1 and 5.

The paper's notation: ``Ck`` is Convolution-BatchNorm-ReLU with k filters, ``CDk`` the same with
dropout 0.5; all convolutions are 4x4 with stride 2. For 256x256 images (8 levels)::

    encoder  C64-C128-C256-C512-C512-C512-C512-C512          (LeakyReLU 0.2, no BatchNorm on C64)
    decoder  CD512-CD1024-CD1024-C1024-C1024-C512-C256-C128  (ReLU; the widths count the skip channels)
    then a convolution to the output channels and tanh.

The skip connections concatenate the activations of encoder layer ``i`` to decoder layer ``n - i``:
the low-level information (edges, positions) shared by input and output goes around the bottleneck.
``skip=False`` removes them (the paper's "encoder-decoder" ablation, Group 32's "Skip" row).
``depth`` is the number of stride-2 levels (8 for 256x256, 6 for 64x64: the bottleneck is 1x1
either way), ``ngf`` the width of the first layer; images must be multiples of ``2**depth`` pixels.
``upsample="resize"`` replaces every transposed convolution by nearest-neighbour upsampling and a
3x3 convolution (Odena et al. 2016's "resize-convolution"): chapter 4's test of where checkerboard
artefacts come from.

Imports only torch.
"""
from __future__ import annotations

import torch
from torch import nn

from i2icourse.models.layers import norm_layer


class Down(nn.Module):
    """Encoder block ``Ck``: 4x4 conv stride 2 (halves H and W), norm, LeakyReLU(0.2)."""

    def __init__(self, cin: int, cout: int, norm: str = "batch", act: str = "leaky"):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 4, stride=2, padding=1, bias=norm != "batch")
        self.norm = norm_layer(norm, cout)
        self.act = nn.LeakyReLU(0.2, inplace=True) if act == "leaky" else nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.norm(self.conv(x)))  # (N, cin, H, W) -> (N, cout, H/2, W/2)


def upsampling(cin: int, cout: int, kind: str = "transpose", bias: bool = True) -> nn.Module:
    """A layer that doubles H and W: the paper's 4x4 transposed conv stride 2, or nearest x2 then a 3x3 conv."""
    if kind == "transpose":
        return nn.ConvTranspose2d(cin, cout, 4, stride=2, padding=1, bias=bias)
    if kind == "resize":
        return nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(cin, cout, 3, padding=1, bias=bias))
    raise ValueError(f"upsample must be 'transpose' or 'resize', got {kind!r}")


class Up(nn.Module):
    """Decoder block ``Ck`` / ``CDk``: 4x4 transposed conv stride 2 (doubles H and W), norm, dropout, ReLU."""

    def __init__(self, cin: int, cout: int, norm: str = "batch", dropout: float = 0.0, upsample: str = "transpose"):
        super().__init__()
        self.conv = upsampling(cin, cout, upsample, bias=norm != "batch")
        self.norm = norm_layer(norm, cout)
        self.drop = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.drop(self.norm(self.conv(x))))  # (N, cin, H, W) -> (N, cout, 2H, 2W)


class UNetGenerator(nn.Module):
    """pix2pix's U-Net: ``depth`` encoder blocks ``down1..`` and decoder blocks ``up1..``, tanh output in [-1, 1].

    ``in_channels``/``out_channels``: 3 for photos, 1 for grey; ``ngf``: width of ``down1`` (64 in the
    paper), doubling per level up to ``8 * ngf``; ``dropout``: rate of the first ``n_dropout``
    decoder blocks (the paper's noise ``z``: 0.5 in 3 blocks); ``skip=False``: no skip connections;
    ``upsample``: ``"transpose"`` (the paper) or ``"resize"`` (see the module's docstring).
    """

    def __init__(self, in_channels: int = 3, out_channels: int = 3, depth: int = 8, ngf: int = 64,
                 norm: str = "batch", dropout: float = 0.5, n_dropout: int = 3, skip: bool = True,
                 upsample: str = "transpose"):
        super().__init__()
        if depth < 2:
            raise ValueError(f"depth must be at least 2, got {depth}")
        self.depth, self.skip = depth, skip
        widths = [ngf * min(2 ** i, 8) for i in range(depth)]  # C64-C128-C256-C512-C512-... for ngf=64
        self.down = nn.ModuleList()
        for i, w in enumerate(widths):
            first, last = i == 0, i == depth - 1
            # No norm on C64 (paper) nor on the 1x1 bottleneck (batch statistics of one pixel); ReLU there.
            self.down.append(Down(in_channels if first else widths[i - 1], w,
                                  norm="none" if first or last else norm, act="relu" if last else "leaky"))
        self.up = nn.ModuleList()
        for j in range(depth - 1):  # up_j mirrors down_{depth-1-j}; it outputs that block's width
            level = depth - 2 - j
            cin = widths[level + 1] * (2 if skip and j > 0 else 1)
            self.up.append(Up(cin, widths[level], norm=norm, dropout=dropout if j < n_dropout else 0.0,
                              upsample=upsample))
        # The outermost layer: transposed conv to the output channels, then tanh (no norm).
        self.outer = upsampling(widths[0] * (2 if skip else 1), out_channels, upsample)
        self.tanh = nn.Tanh()

    @property
    def multiple(self) -> int:
        """Image sides must be multiples of this (one halving per level)."""
        return 2 ** self.depth

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        H, W = x.shape[-2:]
        if H % self.multiple or W % self.multiple:
            raise ValueError(f"UNetGenerator(depth={self.depth}) needs sides that are multiples of "
                             f"{self.multiple}, got {H}x{W}")
        skips = []
        for block in self.down:            # (N, C, H, W) -> ... -> (N, 8ngf, H/2^depth, W/2^depth)
            x = block(x)
            skips.append(x)
        skips.pop()                         # the bottleneck itself is not concatenated
        for j, block in enumerate(self.up):
            if self.skip and j > 0:
                x = torch.cat([x, skips.pop()], dim=1)  # skip from encoder layer i to decoder layer n - i
            elif j > 0:
                skips.pop()
            x = block(x)                    # doubles H and W
        if self.skip:
            x = torch.cat([x, skips.pop()], dim=1)      # (N, 2ngf, H/2, W/2)
        return self.tanh(self.outer(x))     # (N, out_channels, H, W) in [-1, 1]
