"""Chapter 2's recipe (``notebooks/02_msssim_autoencoders.ipynb``): train an autoencoder with a chosen
loss and measure its reconstructions.

* The three losses of Snell et al. (2017) come from :func:`i2icourse.losses.get_loss`: ``mse``,
  ``mae`` and ``log_ms_ssim`` (MS-SSIM with all exponents equal to 1, minimised as -log MS-SSIM; the
  paper's 1 - MS-SSIM is :data:`i2icourse.losses.paper_ms_ssim_loss`).
* :class:`Reconstruction` -- an autoencoder, Adam and a loss; ``step`` is for :func:`i2icourse.train.fit`.
* :func:`reconstruct`, :func:`quality_table` -- reconstructions and their per-image PSNR/SSIM/MS-SSIM.

The bottleneck probes and the rankings of reconstructions (the paper's Fig. 1) are in
:mod:`i2icourse.analysis`, their chart and the "be the judge" panel in :mod:`i2icourse.plot`.
"""
from __future__ import annotations

from typing import Mapping

import torch
from torch import nn

from i2icourse import inference, metrics
from i2icourse.inference import predict
from i2icourse.losses import LossFn
from i2icourse.precision import Precision
from i2icourse.recipes.base import Recipe


# ----------------------------------------------------------------------------------------------
# Training and reconstruction
# ----------------------------------------------------------------------------------------------

class Reconstruction(Recipe):
    """An autoencoder trained to reproduce its input under ``loss_fn``, with Adam (chapter 2 shows :meth:`step`).

    ``loss_fn(reconstruction, original)`` is one of :func:`i2icourse.losses.get_loss`'s losses; the three
    models of the chapter differ in nothing else. ``precision``: how the step computes (default: the
    device's, :func:`i2icourse.precision.policy`: mixed precision on CUDA, float32 elsewhere).
    """

    def __init__(self, model: nn.Module, loss_fn: LossFn, lr: float = 1e-3, device: torch.device | str = "cpu",
                 precision: Precision | str | None = None):
        super().__init__(device, precision)
        self.model = self.precision.to_model(model)
        self.loss_fn = loss_fn
        self.opt = torch.optim.Adam(self.model.parameters(), lr=lr)

    def networks(self) -> dict[str, nn.Module]:
        return {"net": self.model}

    def training_state(self) -> dict[str, torch.optim.Optimizer]:
        return {"opt": self.opt}

    def step(self, batch: torch.Tensor, step: int = 0) -> dict[str, float]:
        """One Adam step on ``loss_fn(model(x), x)``: the target of an autoencoder is its input."""
        self.train_mode()
        x = self.precision.to_input(batch)         # (N, 1, H, W)
        with self.precision.autocast():            # mixed precision on a GPU
            reconstruction = self.model(x).float()
        loss = self.loss_fn(reconstruction, x)     # in float32
        self.update(loss, self.opt)                # zero the gradients, back-propagate, step
        self.finish_step()
        return {"loss": float(loss.detach())}

    def translate(self, x: torch.Tensor, batch_size: int = 128) -> torch.Tensor:
        """The reconstructions of images ``x`` in [0, 1], (C,H,W) or (N,C,H,W), in eval mode, clamped to [0, 1]."""
        return inference.translate(self.model, x, batch_size, signed=False).clamp(0, 1)


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
