"""CycleGAN's generator: Johnson et al.'s ResNet encoder-decoder, as Zhu et al. (2017, appendix 7.2) use it.

Taught in chapter 6 (``notebooks/06_cyclegan.ipynb``: ``ResnetBlock``).

The paper's notation: ``c7s1-k`` is a 7x7 Convolution-InstanceNorm-ReLU with k filters and stride 1;
``dk`` a 3x3 Convolution-InstanceNorm-ReLU with stride 2 (halves H and W); ``Rk`` a residual block of
two 3x3 convolutions with k filters; ``uk`` a 3x3 fractional-strided (transposed) convolution with
stride 1/2 (doubles H and W). With ``ngf = 64``::

    c7s1-64, d128, d256, R256 x n_blocks, u128, u64, c7s1-3 (then tanh)

``n_blocks`` = 6 for 128x128 images, 9 for 256x256 and larger. Padding is by reflection (no dark
borders), normalisation per image (instance norm: the statistics of one photo, not of a batch).
Unlike the U-Net there are no long skips: everything passes the 4x-downsampled bottleneck, where the
residual blocks transform it. Images must be multiples of 4 pixels; the output has the input's size.

Imports only torch.
"""
from __future__ import annotations

import torch
from torch import nn


class ResnetBlock(nn.Module):
    """``Rk``: x + [reflect-pad, 3x3 conv, IN, ReLU, reflect-pad, 3x3 conv, IN](x); keeps (N, k, H, W)."""

    def __init__(self, channels: int):
        super().__init__()
        self.block = nn.Sequential(
            nn.ReflectionPad2d(1), nn.Conv2d(channels, channels, 3), nn.InstanceNorm2d(channels), nn.ReLU(True),
            nn.ReflectionPad2d(1), nn.Conv2d(channels, channels, 3), nn.InstanceNorm2d(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.block(x)  # the block learns a residual: identity is easy


class ResnetGenerator(nn.Module):
    """G: (N, in_channels, H, W) in [-1, 1] -> (N, out_channels, H, W) in [-1, 1] (tanh).

    ``ngf``: width of the first layer (64 in the paper); ``n_blocks``: residual blocks (6 or 9).
    """

    def __init__(self, in_channels: int = 3, out_channels: int = 3, ngf: int = 64, n_blocks: int = 9):
        super().__init__()
        self.n_blocks = n_blocks
        layers: list[nn.Module] = [
            nn.ReflectionPad2d(3), nn.Conv2d(in_channels, ngf, 7), nn.InstanceNorm2d(ngf), nn.ReLU(True),  # c7s1-64
        ]
        width = ngf
        for _ in range(2):  # d128, d256: (N, w, H, W) -> (N, 2w, H/2, W/2)
            layers += [nn.Conv2d(width, 2 * width, 3, stride=2, padding=1), nn.InstanceNorm2d(2 * width),
                       nn.ReLU(True)]
            width *= 2
        layers += [ResnetBlock(width) for _ in range(n_blocks)]  # R256 x n_blocks at H/4 x W/4
        for _ in range(2):  # u128, u64: (N, w, h, w') -> (N, w/2, 2h, 2w')
            layers += [nn.ConvTranspose2d(width, width // 2, 3, stride=2, padding=1, output_padding=1),
                       nn.InstanceNorm2d(width // 2), nn.ReLU(True)]
            width //= 2
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(width, out_channels, 7), nn.Tanh()]  # c7s1-3, tanh
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] % 4 or x.shape[-2] % 4:
            raise ValueError(f"ResnetGenerator: H and W must be multiples of 4, got {tuple(x.shape[-2:])}")
        return self.model(x)
