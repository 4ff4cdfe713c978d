"""The pix2pix discriminator: a PatchGAN that classifies every N x N patch of an (input, output) pair.

Taught in chapter 4 (``notebooks/04_pix2pix.ipynb``: ``PatchDiscriminator``, ``receptive_field``); reused
in chapters 1, 5 and 6.

Isola et al. (2017, sec. 3.2.2 and appendix 6.1.2): instead of one real/fake verdict per image, a
fully convolutional network outputs a *map* of verdicts, each one looking at a patch of the image,
its *receptive field*. Averaging the map is the loss. A small patch models only texture and local
style ("a Markov random field"); the L1 term takes care of the low frequencies.

The family (4x4 convolutions, the paper's ``Ck`` = Convolution-BatchNorm-LeakyReLU(0.2), no
BatchNorm on the first layer): ``n_layers`` stride-2 convolutions, then one stride-1 ``Ck`` and a
stride-1 convolution to 1 channel (a logit per patch). Receptive fields:

    n_layers = 0  -> 1x1   "PixelGAN" (1x1 convolutions: C64-C128, colour statistics only)
    n_layers = 1  -> 16x16  C64-C128
    n_layers = 3  -> 70x70  C64-C128-C256-C512   (the paper's default)
    n_layers = 5  -> 286x286 C64-C128-C256-C512-C512-C512 ("ImageGAN" on 256x256 images)

:func:`receptive_field` computes the field of any stack of convolutions from its layers.
Imports only torch.
"""
from __future__ import annotations

import torch
from torch import nn

from i2icourse.models.layers import norm_layer

#: n_layers giving the paper's four receptive fields.
N_LAYERS_FOR_FIELD = {1: 0, 16: 1, 70: 3, 286: 5}


class PatchDiscriminator(nn.Module):
    """PatchGAN D(x, y): concatenates input ``x`` and (real or generated) output ``y``; returns logits (N,1,h,w).

    ``in_channels`` is the sum of both images' channels (6 for RGB -> RGB). ``n_layers`` sets the
    receptive field (see the module docstring); ``ndf`` is the width of the first layer (64).
    Inputs smaller than :attr:`min_size` are zero-padded so that a large-field discriminator still
    returns a 1x1 map (the 286x286 one needs 2**5 * 3 = 96 pixels; on 64x64 crops it sees the
    whole pair, padded, like the paper's 286 on 256x256 images).
    """

    def __init__(self, in_channels: int = 6, ndf: int = 64, n_layers: int = 3, norm: str = "batch"):
        super().__init__()
        self.n_layers = n_layers
        bias = norm != "batch"
        if n_layers == 0:  # PixelGAN: every output sees exactly one pixel
            layers: list[nn.Module] = [
                nn.Conv2d(in_channels, ndf, 1), nn.LeakyReLU(0.2, True),                 # C64 (1x1)
                nn.Conv2d(ndf, 2 * ndf, 1, bias=bias), norm_layer(norm, 2 * ndf), nn.LeakyReLU(0.2, True),
                nn.Conv2d(2 * ndf, 1, 1),                                                # (N, 1, H, W)
            ]
        else:
            layers = [nn.Conv2d(in_channels, ndf, 4, stride=2, padding=1), nn.LeakyReLU(0.2, True)]  # C64, H/2
            width = ndf
            for n in range(1, n_layers):  # C128, C256, C512, C512...: each halves H and W
                nxt = ndf * min(2 ** n, 8)
                layers += [nn.Conv2d(width, nxt, 4, stride=2, padding=1, bias=bias), norm_layer(norm, nxt),
                           nn.LeakyReLU(0.2, True)]
                width = nxt
            nxt = ndf * min(2 ** n_layers, 8)
            layers += [nn.Conv2d(width, nxt, 4, stride=1, padding=1, bias=bias), norm_layer(norm, nxt),
                       nn.LeakyReLU(0.2, True),                                  # stride 1: side - 1
                       nn.Conv2d(nxt, 1, 4, stride=1, padding=1)]                # (N, 1, h, w) logits
        self.model = nn.Sequential(*layers)

    @property
    def min_size(self) -> int:
        """The smallest input side for which the map is at least 1x1."""
        return 1 if self.n_layers == 0 else 2 ** self.n_layers * 3

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        xy = torch.cat([x, y], dim=1)  # (N, Cx + Cy, H, W): D judges the pair, not y alone
        side = min(xy.shape[-2:])
        if side < self.min_size:  # too small for this field: pad so that one verdict remains
            p = (self.min_size - side + 1) // 2
            xy = nn.functional.pad(xy, (p, p, p, p))
        return self.model(xy)


def receptive_field(module: nn.Module) -> int:
    """The receptive field (in input pixels) of one output of a stack of convolutions, from its layers.

    Walks the ``Conv2d`` layers from the last to the first: a k x k layer with stride s and
    dilation d widens the field r of the layers above it to ``(r - 1) * s + d * (k - 1) + 1``.
    Pooling layers count the same way. Assumes the layers run one after another (a plain stack).
    """
    layers = [m for m in module.modules() if isinstance(m, (nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d))]
    r = 1
    for m in reversed(layers):
        k = m.kernel_size if isinstance(m.kernel_size, int) else m.kernel_size[0]
        s = m.stride if isinstance(m.stride, int) else m.stride[0]
        d = getattr(m, "dilation", 1)
        d = d if isinstance(d, int) else d[0]
        r = (r - 1) * s + d * (k - 1) + 1
    return r


def patchgan(field: int, in_channels: int = 6, ndf: int = 64, norm: str = "batch") -> PatchDiscriminator:
    """The PatchGAN with receptive field ``field`` (1, 16, 70 or 286)."""
    if field not in N_LAYERS_FOR_FIELD:
        raise ValueError(f"field must be one of {sorted(N_LAYERS_FOR_FIELD)}, got {field}")
    return PatchDiscriminator(in_channels, ndf, N_LAYERS_FOR_FIELD[field], norm)
