"""Tiled inference: run a network trained on small crops over an image of any size, without seams.

A pix2pix generator trained on 64x64 or 256x256 crops is fully convolutional, but its U-Net
bottleneck sees a whole tile at once, and every tile has borders padded with zeros. Cutting a large
photo into tiles, translating each and putting them back (:func:`tiled_apply` with ``overlap=0``,
what Group 9 did on DPED photos) therefore shows *seams*: neighbouring tiles disagree along their
common edge. The cure is to let tiles overlap and to blend them with a weight that falls smoothly
to the tile's edges, so that each output pixel is a weighted average dominated by the tiles that
see it far from their borders.

The output is ``sum_t w_t * f(tile_t) / sum_t w_t``: for an identity ``f`` it is the input again,
with or without blending. Images are (C,H,W) or (N,C,H,W) tensors; ``fn`` maps a batch of tiles
(N,C,t,t) to a batch of outputs of the same spatial size (any channel count).
"""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F

from i2icourse.inference import evaluating


def blend_window(tile: int, overlap: int, device: torch.device | str | None = None) -> torch.Tensor:
    """A (tile, tile) weight: 1 in the middle, a raised-cosine ramp over ``overlap`` pixels at each edge.

    The ramp never reaches 0 (its smallest value is about (pi / (2 (overlap + 1)))^2 / 2), so every
    pixel has a positive total weight even at the image's outer border.
    """
    if overlap <= 0:
        return torch.ones(tile, tile, device=device)
    if 2 * overlap > tile:
        raise ValueError(f"overlap {overlap} is more than half the tile {tile}")
    t = (torch.arange(overlap, dtype=torch.float32, device=device) + 1) / (overlap + 1)  # (0, 1)
    ramp = 0.5 - 0.5 * torch.cos(torch.pi * t)                    # smooth from ~0 up to ~1
    w = torch.ones(tile, device=device)
    w[:overlap] = ramp
    w[-overlap:] = ramp.flip(0)
    return w[:, None] * w[None, :]


def _starts(size: int, tile: int, stride: int) -> list[int]:
    """Tile positions covering 0..size: every ``stride`` pixels, the last one flush with the end."""
    if size <= tile:
        return [0]
    starts = list(range(0, size - tile + 1, stride))
    if starts[-1] != size - tile:
        starts.append(size - tile)
    return starts


def tiled_apply(fn: Callable[[torch.Tensor], torch.Tensor], image: torch.Tensor, tile: int = 256,
                overlap: int = 0, batch_size: int = 16) -> torch.Tensor:
    """``fn`` applied tile by tile to ``image``; ``overlap=0`` is naive stitching, ``overlap>0`` blends.

    Images smaller than a tile, or whose sides are not covered by whole tiles, are reflect-padded
    (so ``fn`` always sees ``tile x tile`` inputs) and the output is cropped back to the input size.
    With ``overlap=0`` the tiles form a plain grid and are pasted side by side. No gradients are
    recorded; a network ``fn`` runs in eval mode (:func:`i2icourse.inference.evaluating`).
    """
    with evaluating(fn):
        return _tiled(fn, image, tile, overlap, batch_size)


def _tiled(fn: Callable[[torch.Tensor], torch.Tensor], image: torch.Tensor, tile: int, overlap: int,
           batch_size: int) -> torch.Tensor:
    """:func:`tiled_apply`'s work, inside its ``evaluating`` block."""
    batched = image.dim() == 4
    x = image if batched else image.unsqueeze(0)
    N, C, H, W = x.shape
    stride = tile - overlap
    if stride <= 0:
        raise ValueError(f"overlap {overlap} must be smaller than the tile {tile}")
    # Pad so that the grid (naive) or the sliding window (blended) covers the image exactly.
    if overlap == 0:
        Hp, Wp = -(-H // tile) * tile, -(-W // tile) * tile
    else:
        Hp, Wp = max(H, tile), max(W, tile)
    if (Hp, Wp) != (H, W):
        mode = "reflect" if Hp - H < H and Wp - W < W else "replicate"
        x = F.pad(x, (0, Wp - W, 0, Hp - H), mode=mode)
    tops, lefts = _starts(Hp, tile, stride), _starts(Wp, tile, stride)
    boxes = [(t, l) for t in tops for l in lefts]
    window = blend_window(tile, overlap, x.device)
    out = weight = None
    for n in range(N):
        for i in range(0, len(boxes), batch_size):
            chunk = boxes[i:i + batch_size]
            tiles = torch.stack([x[n, :, t:t + tile, l:l + tile] for t, l in chunk])   # (B, C, tile, tile)
            y = fn(tiles)                                                               # (B, C_out, tile, tile)
            if out is None:
                # float64 sums: for an identity fn the division gives back the input bit for bit
                out = x.new_zeros(N, y.shape[1], Hp, Wp, dtype=torch.float64)
                weight = x.new_zeros(1, 1, Hp, Wp, dtype=torch.float64)
                window = window.double()
            for (t, l), yt in zip(chunk, y):
                out[n, :, t:t + tile, l:l + tile] += window * yt.double()
                if n == 0:
                    weight[0, 0, t:t + tile, l:l + tile] += window
    out = (out / weight)[..., :H, :W].to(y.dtype)
    return out if batched else out[0]


def seam_strength(image: torch.Tensor, tile: int) -> float:
    """How visible a tile grid is: mean |jump| across the grid lines over the mean |jump| across the
    lines half a tile away from them.

    About 1 for an image without seams; well above 1 when neighbouring tiles disagree at their edges.
    Comparing with the half-way lines (not with all lines) keeps other periodic structure out of the
    measure, such as JPEG's 8x8 blocks, whose edges also fall on the grid lines.
    """
    x = image if image.dim() == 4 else image.unsqueeze(0)
    dx = (x[..., :, 1:] - x[..., :, :-1]).abs().mean(dim=(0, 1, 2))   # jump after column j, (W-1,)
    dy = (x[..., 1:, :] - x[..., :-1, :]).abs().mean(dim=(0, 1, 3))   # jump after row i, (H-1,)
    grid = torch.cat([dx[tile - 1::tile], dy[tile - 1::tile]])
    half = torch.cat([dx[tile // 2 - 1::tile], dy[tile // 2 - 1::tile]])
    return float(grid.mean() / half.mean())
