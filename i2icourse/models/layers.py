"""What the networks of the course share: the choice of normalisation layer, and counting parameters.

Imports only torch, like every model file.
"""
from __future__ import annotations

from torch import nn


def norm_layer(kind: str, channels: int) -> nn.Module:
    """``batch`` (pix2pix's), ``instance`` (CycleGAN's; statistics per image, no learned scale) or ``none``."""
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "instance":
        return nn.InstanceNorm2d(channels, affine=False, track_running_stats=False)
    if kind == "none":
        return nn.Identity()
    raise ValueError(f"norm must be 'batch', 'instance' or 'none', got {kind!r}")


def count_parameters(model: nn.Module) -> int:
    """The number of trainable parameters of ``model`` (the ones its optimiser updates)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
