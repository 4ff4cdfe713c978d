"""Figures for the notebooks: image grids with titles, SSIM maps with a colour bar, training curves,
architecture diagrams, ranking charts and the "be the judge" panel.

Every function draws on matplotlib and returns the figure, so a notebook can show it, save it or
add to it. Images are (C,H,W) tensors in [0, 1], as everywhere in the course.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib import patches as mpatches
from matplotlib.figure import Figure

from i2icourse.analysis import RankingTally, ordinal, shuffled
from i2icourse.io import to_numpy

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
    """Training curves from a :class:`i2icourse.train.History` (moving average over ``smooth`` points)."""
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


# ----------------------------------------------------------------------------------------------
# Architecture diagrams (chapters 4 and 6), drawn from numbers rather than stored as pictures
# ----------------------------------------------------------------------------------------------

#: The encoder widths of pix2pix's U-Net-256 (Isola et al. 2017, appendix 6.1.1): C64-C128-C256-C512 x 5.
UNET_256_WIDTHS = (64, 128, 256, 512, 512, 512, 512, 512)

_ENCODER, _DECODER, _SKIP, _DROPOUT = "#cfe2f3", "#fce5cd", "#7f7f7f", "#f6b26b"


def _box(ax: plt.Axes, x: float, y: float, text: str, colour: str, w: float = 1.0, h: float = 0.7,
         fontsize: float = 7.5) -> None:
    ax.add_patch(mpatches.FancyBboxPatch((x - w / 2, y - h / 2), w, h, boxstyle="round,pad=0.02,rounding_size=0.08",
                                         facecolor=colour, edgecolor="#404040", linewidth=0.8))
    ax.text(x, y, text, ha="center", va="center", fontsize=fontsize)


def _arrow(ax: plt.Axes, start: tuple[float, float], end: tuple[float, float], colour: str = "#404040",
           style: str = "-", rad: float = 0.0, width: float = 1.0) -> None:
    ax.add_patch(mpatches.FancyArrowPatch(start, end, arrowstyle="-|>", mutation_scale=9, color=colour,
                                          linestyle=style, linewidth=width, shrinkA=0, shrinkB=0,
                                          connectionstyle=f"arc3,rad={rad}"))


def unet_diagram(widths: Sequence[int] = UNET_256_WIDTHS, size: int = 256, in_channels: int = 3,
                 out_channels: int = 3, n_dropout: int = 3) -> Figure:
    """The U-Net generator of pix2pix as a "U": encoder down the left, decoder up the right, skips across.

    ``widths`` are the channels of the encoder blocks, first to bottleneck (the default is the paper's
    U-Net-256: ``UNetGenerator(depth=8, ngf=64)``; pass ``[b.conv.out_channels for b in G.down]`` for
    another ``G``); ``size`` is the input side. Each box is one feature map, its channels over its size;
    a decoder box shows the upsampled channels plus the skip's, concatenated. Taught in chapter 4.
    """
    depth = len(widths)
    if depth < 2 or size % 2 ** depth:
        raise ValueError(f"unet_diagram: need at least 2 widths and a size divisible by 2**{depth}, "
                         f"got {depth} widths and size {size}")
    fig, ax = plt.subplots(figsize=(0.52 * (2 * depth + 1) + 0.6, 0.45 * (depth + 1) + 1.3))
    _box(ax, 0, 0, f"input\n{in_channels}, {size}²", "white", w=1.3)
    for i, w in enumerate(widths):  # encoder block i halves the side: level i + 1
        x, y = i + 1, -(i + 1)
        _box(ax, x, y, f"{w}\n{size // 2 ** (i + 1)}²", _ENCODER)
        _arrow(ax, (x - 1 + 0.3, y + 1 - 0.33), (x - 0.3, y + 0.33))
    for j in range(depth - 1):  # decoder block j doubles the side; the skip of encoder block depth-2-j joins it
        level = depth - 2 - j
        x, y = depth + 1 + j, -(level + 1)
        w = widths[level]  # what the block outputs, and what the skip brings
        _box(ax, x, y, f"{w}+{w}\n{size // 2 ** (level + 1)}²", _DROPOUT if j < n_dropout else _DECODER)
        _arrow(ax, (x - 1 + 0.3, y - 1 + 0.33), (x - 0.3, y - 0.33))
        _arrow(ax, (level + 1 + 0.5, y), (x - 0.5, y), _SKIP, "--", width=0.8)
    x_out = 2 * depth
    _box(ax, x_out, 0, f"output (tanh)\n{out_channels}, {size}²", "white", w=1.6)
    _arrow(ax, (x_out - 1 + 0.3, -1 + 0.33), (x_out - 0.3, -0.33))
    handles = [mpatches.Patch(facecolor=_ENCODER, edgecolor="#404040", label="encoder: 4x4 conv, stride 2 (halves)"),
               mpatches.Patch(facecolor=_DECODER, edgecolor="#404040", label="decoder: 4x4 transposed conv (doubles)"),
               mpatches.Patch(facecolor=_DROPOUT, edgecolor="#404040", label="decoder with dropout 0.5"),
               plt.Line2D([], [], color=_SKIP, linestyle="--", label="skip: concatenate channels")]
    ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=2, fontsize=8.5, frameon=False)
    ax.text(depth, -depth - 0.42, "bottleneck", ha="center", va="top", fontsize=8, style="italic")
    ax.set_xlim(-0.8, x_out + 0.9)
    ax.set_ylim(-depth - 0.75, 0.5)
    ax.set_aspect("equal")
    ax.axis("off")
    ax.set_title(f"U-Net generator, {depth} levels: channels and size (side²) of every feature map", fontsize=10)
    fig.tight_layout()
    return fig

_DOMAIN_A, _DOMAIN_B, _NET, _LOSS = "#cfe2f3", "#fce5cd", "#eeeeee", "#b45f06"


def _chain(ax: plt.Axes, y: float, nodes: Sequence[tuple[str, str]], nets: Sequence[str], x0: float = 0.0,
           dx: float = 2.3) -> list[float]:
    """Images ``nodes`` (label, colour) left to right at height y, joined by arrows labelled with ``nets``."""
    xs = [x0 + k * dx for k in range(len(nodes))]
    for x, (label, colour) in zip(xs, nodes):
        _box(ax, x, y, label, colour, w=1.25, h=0.62, fontsize=9)
    for k, net in enumerate(nets):
        _arrow(ax, (xs[k] + 0.66, y), (xs[k + 1] - 0.66, y), width=1.2)
        ax.text((xs[k] + xs[k + 1]) / 2, y + 0.14, net, ha="center", va="bottom", fontsize=9, fontweight="bold")
    return xs


def cyclegan_diagram() -> Figure:
    """CycleGAN's objective as a picture: G: A -> B and F: B -> A, both cycles, and the four losses.

    Row 1 is the forward cycle a -> G(a) -> F(G(a)), row 2 the backward cycle b -> F(b) -> G(F(b)),
    row 3 the identity terms; each loss is drawn where it is measured: the two adversarial terms at
    the discriminators D_B and D_A, cycle consistency between an image and its round trip, identity
    between an image and its own translation. Taught in chapter 6.
    """
    fig, ax = plt.subplots(figsize=(9.6, 5.6))
    rows = (5.2, 2.6, 0.2)
    a, b = ("$a$", _DOMAIN_A), ("$b$", _DOMAIN_B)
    for y, start, (n1, n2), (mid, end), (d, adv) in (
            (rows[0], a, ("G", "F"), (("$G(a)$", _DOMAIN_B), ("$F(G(a))$", _DOMAIN_A)),
             ("$D_B$", r"$\mathcal{L}_{GAN}(G, D_B)$: is $G(a)$ a real $b$?")),
            (rows[1], b, ("F", "G"), (("$F(b)$", _DOMAIN_A), ("$G(F(b))$", _DOMAIN_B)),
             ("$D_A$", r"$\mathcal{L}_{GAN}(F, D_A)$: is $F(b)$ a real $a$?"))):
        xs = _chain(ax, y, [start, mid, end], [n1, n2])
        ax.text(xs[0] - 0.62, y + 0.5, "forward cycle, A -> B -> A" if start is a else "backward cycle, B -> A -> B",
                ha="left", va="bottom", fontsize=8, style="italic", color="#555555")
        # the discriminator of the middle image's domain, above it
        _box(ax, xs[1], y + 1.05, d, _NET, w=0.8, h=0.5, fontsize=9)
        _arrow(ax, (xs[1], y + 0.31), (xs[1], y + 0.8), _LOSS, width=1.0)
        ax.text(xs[1] + 0.5, y + 1.05, adv, ha="left", va="center", fontsize=8.5, color=_LOSS)
        # cycle consistency: the round trip back to the start
        ax.add_patch(mpatches.FancyArrowPatch((xs[2], y - 0.31), (xs[0], y - 0.31), arrowstyle="<|-|>",
                                              mutation_scale=9, color=_LOSS, linestyle="--", linewidth=1.0,
                                              connectionstyle="arc3,rad=-0.12"))
        cyc = r"$\Vert F(G(a)) - a \Vert_1$" if start is a else r"$\Vert G(F(b)) - b \Vert_1$"
        ax.text(xs[1], y - 1.12, f"cycle consistency {cyc}", ha="center", va="center", fontsize=8.5, color=_LOSS)
    # identity: each generator should leave an image of its target domain alone
    for x0, start, net, out, term in ((0.0, b, "G", ("$G(b)$", _DOMAIN_B), r"$\Vert G(b) - b \Vert_1$"),
                                      (4.6, a, "F", ("$F(a)$", _DOMAIN_A), r"$\Vert F(a) - a \Vert_1$")):
        xs = _chain(ax, rows[2], [start, out], [net], x0=x0)
        ax.text(xs[0] - 0.62, rows[2] + 0.5, f"identity of {net}", ha="left", va="bottom", fontsize=8,
                style="italic", color="#555555")
        ax.text((xs[0] + xs[1]) / 2, rows[2] - 0.55, f"identity {term}", ha="center", va="center",
                fontsize=8.5, color=_LOSS)
    handles = [mpatches.Patch(facecolor=_DOMAIN_A, edgecolor="#404040", label="an image of domain A"),
               mpatches.Patch(facecolor=_DOMAIN_B, edgecolor="#404040", label="an image of domain B"),
               plt.Line2D([], [], color=_LOSS, label="a loss term")]
    ax.legend(handles=handles, loc="center left", bbox_to_anchor=(0.66, 0.47), fontsize=8, frameon=False)
    ax.text(-0.7, -1.25, r"$\mathcal{L} = \mathcal{L}_{GAN}(G, D_B) + \mathcal{L}_{GAN}(F, D_A)"
            r" + \lambda_{cyc}\,\mathcal{L}_{cyc} + \lambda_{idt}\,\lambda_{cyc}\,\mathcal{L}_{idt}$",
            ha="left", va="center", fontsize=10)
    ax.set_xlim(-0.8, 9.6)
    ax.set_ylim(-1.5, 6.7)
    ax.set_aspect("equal")
    ax.axis("off")
    ax.set_title("CycleGAN: two generators, two discriminators, two cycles", fontsize=10)
    fig.tight_layout()
    return fig


# ----------------------------------------------------------------------------------------------
# Rankings of reconstructions (chapter 2): the chart and the "be the judge" panel
# ----------------------------------------------------------------------------------------------

def plot_tally(tally: RankingTally, title: str = "") -> Figure:
    """A Fig. 1-style bar chart of an :class:`i2icourse.analysis.RankingTally`: for each place (1st, 2nd, ...)
    one bar per model, counting rankings (chapter 2)."""
    places = len(tally.models)
    fig, ax = plt.subplots(figsize=(5, 3))
    x = np.arange(places)
    w = 0.8 / places
    for i, m in enumerate(tally.models):
        ax.bar(x + (i - (places - 1) / 2) * w, tally.counts[m], w, label=m)
    ax.set_xticks(x, [ordinal(i + 1) for i in range(places)])
    ax.set_xlabel("place in the ranking")
    ax.set_ylabel(f"count (of {len(tally)} rankings)")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return fig


def judge_widget(originals: torch.Tensor, reconstructions: Mapping[str, torch.Tensor], tally: RankingTally,
                 seed: int = 0, zoom: int = 2):
    """A "be the judge" ipywidgets panel: an original and its reconstructions in shuffled order (A, B, C);
    the student picks the best, middle and worst, and every submitted ranking goes into ``tally``, whose
    Fig. 1-style chart is redrawn below. Returns the panel (display it in Jupyter or Colab).

    Needs a live kernel: in a static page (the book) the buttons do nothing.
    """
    import io as bytes_io

    import ipywidgets as w
    from IPython.display import display
    from PIL import Image as PILImage

    names = list(reconstructions)
    letters = [chr(ord("A") + i) for i in range(len(names))]
    state = {"i": 0, "order": shuffled(names, seed)}

    def png(img: torch.Tensor) -> bytes:
        a = (img.detach().clamp(0, 1)[0].cpu().numpy() * 255).round().astype("uint8")
        buf = bytes_io.BytesIO()
        pil = PILImage.fromarray(a)
        pil.resize((pil.width * zoom, pil.height * zoom), PILImage.NEAREST).save(buf, format="PNG")
        return buf.getvalue()

    side = originals.shape[-1] * zoom
    pics = [w.Image(format="png", width=side, height=side) for _ in range(len(names) + 1)]
    captions = [w.Label("original")] + [w.Label(f"reconstruction {c}") for c in letters]
    places = [w.Dropdown(options=letters, value=letters[i], description=ordinal(i + 1), layout=w.Layout(width="140px"))
              for i in range(len(names))]
    submit = w.Button(description="Submit ranking", button_style="primary")
    message = w.Label()
    chart = w.Output()

    def show() -> None:
        i = state["i"] % len(originals)
        state["order"] = shuffled(names, seed * 100_003 + state["i"])
        pics[0].value = png(originals[i])
        for pic, model in zip(pics[1:], state["order"]):
            pic.value = png(reconstructions[model][i])

    def redraw() -> None:
        with chart:
            chart.clear_output(wait=True)
            fig = plot_tally(tally, "your rankings")
            display(fig)
            plt.close(fig)

    def on_submit(_=None) -> None:
        picked = [d.value for d in places]
        if len(set(picked)) != len(picked):
            message.value = "Each reconstruction needs its own place: pick A, B and C once each."
            return
        tally.add([state["order"][letters.index(p)] for p in picked])
        message.value = f"{len(tally)} rankings so far. Next image."
        state["i"] += 1
        show()
        redraw()

    submit.on_click(on_submit)
    show()
    column = lambda pic, cap: w.VBox([pic, cap], layout=w.Layout(align_items="center"))  # noqa: E731
    panel = w.VBox([w.HBox([column(p, c) for p, c in zip(pics, captions)]), w.HBox(places), w.HBox([submit, message]),
                    chart])
    panel.submit = on_submit  # for tests: submit the current dropdown choice
    panel.order = lambda: list(state["order"])
    panel.places = places
    return panel
