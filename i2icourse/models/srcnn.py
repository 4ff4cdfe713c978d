"""SRCNN (Dong, Loy, He & Tang, TPAMI 2016): super-resolution with three convolutions.

The network takes a low-resolution image that has already been upscaled to the target size by bicubic
interpolation, and sharpens it. Its three layers have the paper's interpretation:

* patch extraction and representation: ``f1 x f1`` convolution to ``n1`` feature maps, ReLU;
* non-linear mapping: ``f2 x f2`` convolution to ``n2`` maps, ReLU;
* reconstruction: ``f3 x f3`` convolution to one channel (the Y channel).

The "9-5-5" network with n1 = 64, n2 = 32 is the one Snell et al. (2017, Sec. 5) train with MSE, MAE
and MS-SSIM losses; weights are drawn from N(0, 0.001^2) as in both papers. Unlike the original,
which used 'valid' convolutions (a 33x33 input patch gave 33 - 9 - 5 - 5 + 3 = 17x17 out of the
9-5-5 network, 21x21 out of the 9-1-5 one), every layer here is
zero-padded so that the output has the input's size -- simpler to train, evaluate and compare.

``residual=True`` adds the input to the output (the network learns only the missing detail, as VDSR
does); it is not in the paper and is off by default.

Taught in chapter 3 (``notebooks/03_srcnn.ipynb``), which shows this class and trains it with
three losses. This module imports only torch.
"""
from __future__ import annotations

import torch
from torch import nn


class SRCNN(nn.Module):
    """SRCNN ``f1-f2-f3`` with ``n1``/``n2`` filters on a ``channels``-channel image (1: the Y channel); chapter 3."""

    def __init__(self, channels: int = 1, n1: int = 64, n2: int = 32, f1: int = 9, f2: int = 5, f3: int = 5,
                 init_std: float | None = 1e-3, residual: bool = False):
        super().__init__()
        for f in (f1, f2, f3):
            if f < 1 or f % 2 == 0:
                raise ValueError(f"SRCNN: filter sizes must be odd so that the output keeps the input size, got {f}")
        self.residual = residual
        self.patch_extraction = nn.Conv2d(channels, n1, f1, padding=f1 // 2)
        self.nonlinear_mapping = nn.Conv2d(n1, n2, f2, padding=f2 // 2)
        self.reconstruction = nn.Conv2d(n2, channels, f3, padding=f3 // 2)
        self.relu = nn.ReLU(inplace=True)
        if init_std is not None:   # the paper's initialisation; None keeps PyTorch's default
            for conv in (self.patch_extraction, self.nonlinear_mapping, self.reconstruction):
                nn.init.normal_(conv.weight, mean=0.0, std=init_std)
                nn.init.zeros_(conv.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W) bicubic-upscaled low-res image -> (N, C, H, W) high-res estimate (not clamped)."""
        f = self.relu(self.patch_extraction(x))     # (N, n1, H, W)
        f = self.relu(self.nonlinear_mapping(f))    # (N, n2, H, W)
        y = self.reconstruction(f)                  # (N, C, H, W)
        return x + y if self.residual else y

    @property
    def receptive_field(self) -> int:
        """Side of the input window one output pixel sees: f1 + f2 + f3 - 2 (17 for 9-5-5)."""
        return sum(c.kernel_size[0] for c in (self.patch_extraction, self.nonlinear_mapping,
                                               self.reconstruction)) - 2
