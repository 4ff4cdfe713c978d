"""The convolutional autoencoder of Snell et al. (2017), "Learning to generate images with perceptual
similarity metrics", §3: convolutional layers encode a grey image into a small bottleneck vector
(128 hidden units in the paper's figures), deconvolutional (transposed-convolution) layers decode it.

The same class serves both of the paper's image sizes: 96x96 STL-10 images (four stride-2 stages,
96 -> 48 -> 24 -> 12 -> 6) and 48x48 Extended Yale B faces (48 -> 24 -> 12 -> 6 -> 3). Batch
normalisation and Adam follow the paper's references [31, 32]; the exact widths of the paper's
supplementary material are not reproduced (``channels`` is a parameter).

Taught in chapter 2 (``notebooks/02_msssim_autoencoders.ipynb``), which trains it with MSE, MAE and
MS-SSIM losses, and reads its bottleneck with :func:`i2icourse.analysis.bottleneck_features`.
This module imports only torch.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn


def _down(c_in: int, c_out: int, norm: bool) -> nn.Sequential:
    """Conv 4x4, stride 2: halves the side."""
    layers: list[nn.Module] = [nn.Conv2d(c_in, c_out, 4, stride=2, padding=1, bias=not norm)]
    if norm:
        layers.append(nn.BatchNorm2d(c_out))
    layers.append(nn.LeakyReLU(0.2, inplace=True))
    return nn.Sequential(*layers)


def _up(c_in: int, c_out: int, norm: bool) -> nn.Sequential:
    """Transposed conv 4x4, stride 2: doubles the side."""
    layers: list[nn.Module] = [nn.ConvTranspose2d(c_in, c_out, 4, stride=2, padding=1, bias=not norm)]
    if norm:
        layers.append(nn.BatchNorm2d(c_out))
    layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class ConvAutoencoder(nn.Module):
    """Encoder (stride-2 convolutions, then a linear layer to the bottleneck) and a mirror-image decoder (chapter 2).

    Args:
        size: the side of the square input image (96 or 48 in the paper); it must be divisible by
            ``2 ** len(channels)``.
        bottleneck: the number of hidden units in the bottleneck (the code), 128 in the paper.
        channels: the widths of the encoder's convolutions, finest first; the decoder mirrors them.
        in_channels: 1 for grey images (the paper), 3 for colour.
        norm: batch normalisation after every hidden convolution.

    The output goes through a sigmoid, so reconstructions lie in [0, 1] like the images, whatever
    the loss.
    """

    def __init__(self, size: int = 96, bottleneck: int = 128, channels: Sequence[int] = (32, 64, 128, 128),
                 in_channels: int = 1, norm: bool = True):
        super().__init__()
        channels = tuple(int(c) for c in channels)
        stages = len(channels)
        if stages < 1 or size % 2 ** stages:
            raise ValueError(f"ConvAutoencoder: size {size} must be divisible by 2**{stages} "
                             f"(one halving per entry of channels={channels})")
        if bottleneck < 1:
            raise ValueError(f"ConvAutoencoder: bottleneck must be positive, got {bottleneck}")
        self.size, self.bottleneck, self.channels, self.in_channels = size, bottleneck, channels, in_channels
        self.side = size // 2 ** stages                     # the side of the last feature map
        flat = channels[-1] * self.side ** 2
        widths = (in_channels,) + channels
        self.encoder = nn.Sequential(*[_down(widths[i], widths[i + 1], norm and i > 0) for i in range(stages)])
        self.to_code = nn.Linear(flat, bottleneck)          # the bottleneck: the code z
        self.from_code = nn.Linear(bottleneck, flat)
        ups = [_up(widths[i + 1], widths[i], norm) for i in range(stages - 1, 0, -1)]
        self.decoder = nn.Sequential(*ups, nn.ConvTranspose2d(widths[1], in_channels, 4, stride=2, padding=1),
                                     nn.Sigmoid())

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Images (N, C, size, size) -> codes (N, bottleneck)."""
        if x.dim() != 4 or x.shape[1] != self.in_channels or tuple(x.shape[-2:]) != (self.size, self.size):
            raise ValueError(f"ConvAutoencoder.encode: expected (N, {self.in_channels}, {self.size}, {self.size}), "
                             f"got {tuple(x.shape)}")
        h = self.encoder(x)                                 # (N, channels[-1], side, side)
        return self.to_code(h.flatten(1))                   # (N, bottleneck)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Codes (N, bottleneck) -> images (N, C, size, size) in [0, 1]."""
        h = self.from_code(z).relu()                        # (N, channels[-1] * side * side)
        h = h.view(-1, self.channels[-1], self.side, self.side)
        return self.decoder(h)                              # (N, C, size, size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Reconstruct a batch: (N, C, size, size) -> (N, C, size, size)."""
        return self.decode(self.encode(x))
