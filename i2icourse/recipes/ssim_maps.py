"""Chapter 1's recipe (``notebooks/01_ssim_quality_maps.ipynb``): train networks to predict SSIM maps,
measure them, use them as no-reference scores.

* :class:`MapRegressor` -- a model, Adam (lr 1e-3, betas default) with the learning rate halved every
  ``halve_every`` steps (the paper: every 100 epochs), MAE loss; ``step`` is for :func:`i2icourse.train.fit`.
* The GAN is trained with the chapter-4 step, :class:`i2icourse.recipes.pix2pix.Pix2Pix` (cGAN +
  lambda L1), on ``MapGenerator.G``: see :func:`map_gan`.
* :func:`predict_maps`, :func:`predict_tiled` -- per-version errors on a fixed validation set, and maps
  predicted tile by tile (the maps themselves: :func:`i2icourse.inference.predict`).
* Their rank correlations (PLCC, SRCC) are :func:`i2icourse.analysis.pearson` and :func:`~i2icourse.analysis.spearman`.
* :data:`PAPER_TABLE_I` -- the paper's Table I, to print beside ours.
"""
from __future__ import annotations

from typing import Mapping

import numpy as np
import pandas as pd
import torch
from torch import nn

from i2icourse import inference
from i2icourse.inference import predict
from i2icourse.precision import Precision
from i2icourse.recipes.base import Recipe
from i2icourse.tiling import tiled_apply

#: Table I of the paper: model -> (type, #param, epochs, train MAE, valid MAE).
PAPER_TABLE_I: dict[str, tuple[str, int, int, float, float]] = {
    "FCN": ("FCN", 5495617, 479, 0.0836, 0.1048),
    "DCNN": ("FCN", 39633751, 109, 0.0878, 0.1041),
    "U-Net": ("U-Net", 886625, 899, 0.0749, 0.0909),
    "U-Net32": ("U-Net", 14123905, 239, 0.0607, 0.0922),
    "Densenet121-unet": ("U-Net", 13607633, 229, 0.0671, 0.0870),
    "Resnet18-unet": ("U-Net", 14328209, 129, 0.0690, 0.0910),
    "Resnet50-unet": ("U-Net", 32521105, 289, 0.0690, 0.0876),
    "GAN(U-Net)": ("GAN", 44598000, 200, 0.0703, 0.1290),
}


class MapRegressor(Recipe):
    """A map predictor trained on the mean absolute error, as in the paper (chapter 1 shows :meth:`step`).

    ``halve_every``: halve the learning rate every this many steps (0: never). ``precision``: how the
    step computes (default: the device's, :func:`i2icourse.precision.policy`: mixed precision on
    CUDA, float32 elsewhere).
    """

    def __init__(self, model: nn.Module, lr: float = 1e-3, halve_every: int = 0,
                 device: torch.device | str = "cpu", precision: Precision | str | None = None):
        super().__init__(device, precision)
        self.model = self.precision.to_model(model)
        self.opt = torch.optim.Adam(self.model.parameters(), lr=lr)
        self.sched = torch.optim.lr_scheduler.StepLR(self.opt, step_size=max(halve_every, 1),
                                                     gamma=0.5 if halve_every else 1.0)

    def networks(self) -> dict[str, nn.Module]:
        return {"net": self.model}

    def training_state(self) -> dict:
        return {"opt": self.opt, "sched": self.sched}

    def step(self, batch: Mapping[str, torch.Tensor], step: int = 0) -> dict[str, float]:
        """One Adam step on the MAE between predicted and true maps of ``batch['A']`` / ``batch['B']``."""
        self.train_mode()
        x, y = self.precision.to_input(batch["A"]), self.precision.to_input(batch["B"])
        with self.precision.autocast():              # mixed precision on a GPU
            pred = self.model(x).float()
        loss = (pred - y).abs().mean()               # in float32
        self.update(loss, self.opt)                  # zero the gradients, back-propagate, step
        self.finish_step()                           # the learning-rate schedule
        return {"mae": loss.item()}

    def translate(self, x: torch.Tensor, batch_size: int = 32) -> torch.Tensor:
        """The predicted SSIM maps of images ``x`` (3,H,W) or (N,3,H,W) in [0, 1], in eval mode."""
        return inference.translate(self.model, x, batch_size, signed=False)


def map_gan(generator: nn.Module, n_layers: int = 3, ndf: int = 64, lambda_l1: float = 100.0, lr: float = 2e-4,
            device: torch.device | str = "cpu", precision: Precision | str | None = None):
    """The cGAN of the paper's last row: pix2pix's step on ``generator.G`` (a :class:`MapGenerator`) and a
    PatchGAN judging (image, map) pairs (3 + 1 channels): L = L_cGAN + lambda * L1. ``precision`` as
    in :class:`MapRegressor`."""
    from i2icourse.models.patchgan import PatchDiscriminator
    from i2icourse.recipes.pix2pix import Pix2Pix
    return Pix2Pix(generator.G, PatchDiscriminator(4, ndf, n_layers), lr=lr, lambda_rec=lambda_l1, device=device,
                   precision=precision)


def predict_tiled(model: nn.Module, images: torch.Tensor, tile: int, overlap: int | None = None,
                  batch_size: int = 32, device: torch.device | str = "cpu") -> torch.Tensor:
    """Predicted maps of images (N, 3, H, W) computed on ``tile`` x ``tile`` tiles and blended back
    (:func:`i2icourse.tiling.tiled_apply`): the network sees inputs of the size it was trained on.
    ``overlap`` defaults to a quarter tile, which hides the seams of zero-padded tile borders;
    ``overlap=0`` pastes the tiles side by side."""
    overlap = tile // 4 if overlap is None else overlap
    return tiled_apply(lambda tiles: predict(model, tiles, batch_size, device).float(), images, tile, overlap,
                       batch_size)


def predict_maps(model: nn.Module, dataset, batch_size: int = 32, device: torch.device | str = "cpu",
                 keep_maps: bool = False, tile: int | None = None) -> tuple[pd.DataFrame, torch.Tensor | None]:
    """Per-version results on a fixed dataset (a ``QualityMapPairs`` with ``train=False``):
    one row per *version* (pristine once) with photo, kind, level, the MAE of the map, the true SSIM
    score (mean of the true map) and the predicted score (mean of the predicted map). ``tile``:
    predict on tiles of this size (:func:`predict_tiled`), e.g. the training patch size.

    The balanced MAE (the paper's validation MAE, pristine weighted x5) is :func:`balanced_mae` of it.
    """
    versions = sorted(set(dataset.index))
    samples = [dataset[dataset.index.index(i)] for i in versions]
    x = torch.stack([s["A"] for s in samples])
    y = torch.stack([s["B"] for s in samples])
    p = predict(model, x, batch_size, device).float() if tile is None else predict_tiled(model, x, tile, device=device)
    pairs = dataset.pairs
    rows = pd.DataFrame({
        "photo": [pairs.photo[i] for i in versions], "kind": [pairs.kind[i] for i in versions],
        "level": [pairs.level[i] for i in versions],
        "mae": (p - y).abs().flatten(1).mean(1).numpy(),
        "ssim": y.flatten(1).mean(1).numpy(), "predicted": p.flatten(1).mean(1).numpy(),
    })
    return rows, (p if keep_maps else None)


def balanced_mae(rows: pd.DataFrame, pristine_weight: int = 5) -> float:
    """The MAE over the balanced set: pristine versions count ``pristine_weight`` times."""
    w = np.where(rows["kind"] == "pristine", pristine_weight, 1)
    return float((rows["mae"] * w).sum() / w.sum())


def constant_baseline(train_maps: torch.Tensor, weights: torch.Tensor | None = None) -> dict[str, float]:
    """The constants a model must beat: the mean and the median of the training maps' pixels.

    ``weights`` (one per map) count maps several times (the pristine ones 5x). The median is the best
    constant under the MAE; the mean is the "predict the mean" baseline.
    """
    v = train_maps.float().flatten(1)
    w = torch.ones(len(v)) if weights is None else weights.float()
    mean = float((v.mean(1) * w).sum() / w.sum())
    # weighted median: repeat per-map pixel samples by weight on a subsample (exact enough for a baseline)
    sub = v[:, :: max(1, v.shape[1] // 256)]
    vals = torch.cat([sub[i].repeat(int(w[i])) for i in range(len(sub))])
    return {"mean": mean, "median": float(vals.median())}
