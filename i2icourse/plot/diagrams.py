"""Architecture diagrams, drawn from numbers rather than stored as pictures: the U-Net generator of
pix2pix (chapter 4) and the objective of CycleGAN (chapter 6).

Each function returns a matplotlib figure. :func:`unet_diagram` draws any U-Net from its widths, so a
chapter can draw the network it builds, not only the paper's.
"""
from __future__ import annotations

from typing import Sequence

import matplotlib.pyplot as plt
from matplotlib import patches as mpatches
from matplotlib.figure import Figure


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
