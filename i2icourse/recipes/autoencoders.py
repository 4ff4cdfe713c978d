"""Chapter 2's recipe (``notebooks/02_msssim_autoencoders.ipynb``): train an autoencoder with a chosen
loss and measure its reconstructions.

* The three losses of Snell et al. (2017) come from :func:`i2icourse.losses.get_loss`: ``mse``,
  ``mae`` and ``log_ms_ssim`` (MS-SSIM with all exponents equal to 1, minimised as -log MS-SSIM; the
  paper's 1 - MS-SSIM is :data:`i2icourse.losses.paper_ms_ssim_loss`).
* :func:`reconstruction_step` -- one optimisation step, for :func:`i2icourse.train.fit`.
* :func:`reconstruct`, :func:`quality_table` -- reconstructions and their per-image PSNR/SSIM/MS-SSIM.

The bottleneck probes and the rankings of reconstructions (the paper's Fig. 1) are in
:mod:`i2icourse.analysis`, their chart and the "be the judge" panel in :mod:`i2icourse.plot`.
"""
from __future__ import annotations

from typing import Callable, Mapping

import torch
from torch import nn

from i2icourse import metrics
from i2icourse.inference import predict
from i2icourse.losses import LossFn


# ----------------------------------------------------------------------------------------------
# Training and reconstruction
# ----------------------------------------------------------------------------------------------

def reconstruction_step(model: nn.Module, loss_fn: LossFn, optimizer: torch.optim.Optimizer,
                        device: torch.device | str = "cpu") -> Callable[[torch.Tensor, int], dict[str, float]]:
    """A step function for :func:`i2icourse.train.fit`: reconstruct the batch, minimise ``loss_fn`` (chapter 2)."""
    def step(batch: torch.Tensor, step: int) -> dict[str, float]:
        model.train()
        x = batch.to(device)                       # (N, 1, H, W)
        loss = loss_fn(model(x), x)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return {"loss": float(loss.detach())}
    return step


def reconstruct(model: nn.Module, images: torch.Tensor, batch_size: int = 128) -> torch.Tensor:
    """The model's reconstructions of ``images`` (N, C, H, W), in eval mode, on the CPU, clamped to [0, 1]."""
    return predict(model, images, batch_size).clamp(0, 1)


def quality_table(originals: torch.Tensor, reconstructions: Mapping[str, torch.Tensor]) -> dict[str, dict[str, float]]:
    """Mean PSNR, SSIM and MS-SSIM (standard weights) of each model's reconstructions: {model: {metric: value}}."""
    table = {}
    for name, rec in reconstructions.items():
        table[name] = {"PSNR": float(metrics.psnr(rec, originals).mean()),
                       "SSIM": float(metrics.ssim(rec, originals).mean()),
                       "MS-SSIM": float(metrics.ms_ssim(rec, originals).mean())}
    return table
