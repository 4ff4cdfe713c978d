"""Figures of images and numbers: image grids with titles, quality maps with a colour bar, training
curves and bar charts, and the notebooks' figure format.

Every function draws on matplotlib and returns the figure, so a notebook can show it, save it or
add to it. Images are (C,H,W) tensors in [0, 1], as everywhere in the course.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.figure import Figure

from i2icourse.images import to_numpy

#: What the figures take as an image: a (C,H,W) tensor in [0, 1] or an (H,W[,C]) NumPy array.
Image = torch.Tensor | np.ndarray


def notebook_figures(fmt: str = "jpeg", quality: int = 88) -> None:
    """Store notebook figures as JPEG (photos compress ~5x better than PNG), so notebooks stay small.

    Call once near the top of a notebook; outside IPython it does nothing.
    """
    try:
        from IPython import get_ipython
    except ImportError:
        return
    shell = get_ipython()
    if shell is None:
        return
    shell.run_line_magic("config", f"InlineBackend.figure_formats = ['{fmt}']")
    kwargs = {"bbox_inches": "tight", "pil_kwargs": {"quality": quality}} if fmt == "jpeg" else {"bbox_inches": "tight"}
    shell.run_line_magic("config", f"InlineBackend.print_figure_kwargs = {kwargs!r}")


def _as_array(img: Image) -> np.ndarray:
    if isinstance(img, torch.Tensor):
        return to_numpy(img.clamp(0, 1) if img.is_floating_point() else img)
    return np.asarray(img)


def show_images(images: Sequence[Image], titles: Sequence[str] | None = None, ncols: int | None = None,
                size: float = 2.6, cmap: str = "gray", suptitle: str | None = None) -> Figure:
    """A grid of images with optional titles (one-channel images in grey)."""
    n = len(images)
    ncols = ncols or n
    nrows = (n + ncols - 1) // ncols
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols, size * nrows + (0.3 if suptitle else 0)),
                             squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i < n:
            a = _as_array(images[i])
            ax.imshow(a, cmap=cmap if a.ndim == 2 else None, vmin=0, vmax=1, interpolation="nearest")
            if titles is not None:
                ax.set_title(titles[i], fontsize=9)
    if suptitle:
        fig.suptitle(suptitle)
    fig.tight_layout()
    return fig


def show_rows(rows: Mapping[str, Sequence[Image]], col_titles: Sequence[str] | None = None,
              size: float = 2.2, cmap: str = "gray", colorbar: bool = False) -> Figure:
    """Images in labelled rows, e.g. ``{'input': [...], 'output': [...], 'target': [...]}``.

    One-channel images use ``cmap`` on the fixed scale [0, 1]; pass ``cmap='viridis'`` and
    ``colorbar=True`` for quality maps.
    """
    names = list(rows)
    ncols = max(len(r) for r in rows.values())
    fig, axes = plt.subplots(len(names), ncols, figsize=(size * ncols, size * len(names)), squeeze=False)
    for r, name in enumerate(names):
        for c in range(ncols):
            ax = axes[r, c]
            ax.set_xticks([])
            ax.set_yticks([])
            for spine in ax.spines.values():
                spine.set_visible(False)
            if c < len(rows[name]):
                a = _as_array(rows[name][c])
                im = ax.imshow(a, cmap=cmap if a.ndim == 2 else None, vmin=0, vmax=1, interpolation="nearest")
            if c == 0:
                ax.set_ylabel(name, fontsize=10)
            if r == 0 and col_titles is not None and c < len(col_titles):
                ax.set_title(col_titles[c], fontsize=9)
    fig.tight_layout()
    if colorbar:
        fig.colorbar(im, ax=axes.ravel().tolist(), fraction=0.025, pad=0.02)
    return fig


def show_map(image: Image, quality_map: Image, title: str = "SSIM map", vmin: float = 0.0,
             vmax: float = 1.0, cmap: str = "viridis", size: float = 3.2) -> Figure:
    """An image beside a per-pixel quality map (e.g. SSIM) with its colour bar."""
    fig, (a0, a1) = plt.subplots(1, 2, figsize=(2 * size + 0.6, size))
    img = _as_array(image)
    a0.imshow(img, cmap="gray" if img.ndim == 2 else None, vmin=0, vmax=1)
    a0.set_title("image", fontsize=9)
    m = _as_array(quality_map) if isinstance(quality_map, np.ndarray) else _map_array(quality_map)
    im = a1.imshow(m, cmap=cmap, vmin=vmin, vmax=vmax)
    a1.set_title(title, fontsize=9)
    for ax in (a0, a1):
        ax.axis("off")
    fig.colorbar(im, ax=a1, fraction=0.046, pad=0.04)
    fig.tight_layout()
    return fig


def _map_array(m: torch.Tensor) -> np.ndarray:
    # Quality maps may leave [0, 1] (SSIM can be negative); average colour channels for display.
    m = m.detach().float().cpu()
    while m.dim() > 2:
        m = m.mean(0)
    return m.numpy()


def show_maps(maps: Mapping[str, Image], vmin: float = 0.0, vmax: float = 1.0, cmap: str = "viridis",
              size: float = 2.6) -> Figure:
    """Several maps side by side on one colour scale with a shared colour bar (e.g. SSIM's l, c, s)."""
    fig, axes = plt.subplots(1, len(maps), figsize=(size * len(maps) + 0.8, size), squeeze=False)
    im = None
    for ax, (name, m) in zip(axes[0], maps.items()):
        arr = _map_array(m) if isinstance(m, torch.Tensor) else np.asarray(m)
        im = ax.imshow(arr, cmap=cmap, vmin=vmin, vmax=vmax)
        ax.set_title(name, fontsize=9)
        ax.axis("off")
    fig.colorbar(im, ax=list(axes[0]), fraction=0.02, pad=0.02)
    return fig


def plot_history(history, names: Sequence[str] | None = None, smooth: int = 1, logy: bool = False,
                 title: str | None = None, ax: plt.Axes | None = None) -> Figure:
    """Training curves from a :class:`i2icourse.train.history.History` (moving average over ``smooth`` points)."""
    names = list(names or history.names())
    if ax is None:
        fig, ax = plt.subplots(figsize=(6, 3.2))
    else:
        fig = ax.figure
    for name in names:
        steps, vals = np.array(history.steps(name)), np.array(history.values(name))
        if smooth > 1 and len(vals) >= smooth:
            vals = np.convolve(vals, np.ones(smooth) / smooth, mode="valid")
            steps = steps[smooth - 1:]
        ax.plot(steps, vals, label=name)
    ax.set_xlabel("step")
    if logy:
        ax.set_yscale("log")
    if title:
        ax.set_title(title)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def bar_chart(values: Mapping[str, float], title: str = "", ylabel: str = "",
              reference: Mapping[str, float] | None = None) -> Figure:
    """Bars for ``values``, with the paper's numbers (``reference``) as hollow bars beside them."""
    names = list(values)
    x = np.arange(len(names))
    fig, ax = plt.subplots(figsize=(max(3.5, 1.1 * len(names)), 3))
    w = 0.38 if reference else 0.6
    ax.bar(x - (w / 2 if reference else 0), [values[n] for n in names], w, label="ours")
    if reference:
        ax.bar(x + w / 2, [reference.get(n, np.nan) for n in names], w, fill=False, hatch="//",
               label="paper")
        ax.legend(fontsize=8)
    ax.set_xticks(x, names)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    fig.tight_layout()
    return fig
