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

from i2icourse import metrics
from i2icourse.inference import predict
from i2icourse.losses import LossFn
from i2icourse.precision import Precision, policy


# ----------------------------------------------------------------------------------------------
# Training and reconstruction
# ----------------------------------------------------------------------------------------------

class Reconstruction:
    """An autoencoder trained to reproduce its input under ``loss_fn``, with Adam (chapter 2 shows :meth:`step`).

    ``loss_fn(reconstruction, original)`` is one of :func:`i2icourse.losses.get_loss`'s losses; the three
    models of the chapter differ in nothing else. ``precision``: how the step computes (default: the
    device's, :func:`i2icourse.precision.policy`: mixed precision on CUDA, float32 elsewhere).
    """

    def __init__(self, model: nn.Module, loss_fn: LossFn, lr: float = 1e-3, device: torch.device | str = "cpu",
                 precision: Precision | str | None = None):
        self.device = torch.device(device)
        self.precision = policy(self.device, precision)
        self.model = self.precision.to_model(model)
        self.loss_fn = loss_fn
        self.opt = torch.optim.Adam(self.model.parameters(), lr=lr)

    def objects(self) -> dict[str, nn.Module | torch.optim.Optimizer]:
        """Everything a checkpoint must hold (for ``train.fit(objects=...)``); with fp16 the gradient scaler too."""
        return {"net": self.model, "opt": self.opt, **self.precision.objects()}

    def step(self, batch: torch.Tensor, step: int = 0) -> dict[str, float]:
        """One Adam step on ``loss_fn(model(x), x)``: the target of an autoencoder is its input."""
        self.model.train()
        x = self.precision.to_input(batch)         # (N, 1, H, W)
        with self.precision.autocast():            # mixed precision on a GPU
            reconstruction = self.model(x).float()
        loss = self.loss_fn(reconstruction, x)     # in float32
        self.opt.zero_grad(set_to_none=True)
        self.precision.backward(loss)              # loss.backward(); with fp16 scaled first
        self.precision.step(self.opt)              # self.opt.step(); with fp16 unscaled first
        self.precision.update()
        return {"loss": float(loss.detach())}


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
