"""Results over seeds: mean ± std per configuration, and whether a difference is beyond the seed spread.

A GAN trained twice from two seeds gives two different models, so one run per row cannot tell a
better recipe from a luckier seed (chapter 5). Chapters 4-6 train every row of their tables with
several seeds and report them through these two functions, from one table of per-seed results.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import pandas as pd


def mean_std(per_seed: pd.DataFrame, columns: Sequence[str], by: str = "config",
             digits: Mapping[str, int] | None = None) -> pd.DataFrame:
    """``"mean ± std"`` of each of ``columns`` per value of ``by`` (rows in order of appearance).

    ``per_seed``: one row per (configuration, seed); std is the sample standard deviation (ddof 1)
    over the seeds, so two seeds are the fewest that give one. ``digits``: decimals per column
    (default 3; 2 for names containing ``PSNR`` or ``FID``).
    """
    groups = per_seed.groupby(by, sort=False)[list(columns)]
    if groups.size().min() < 2:
        raise ValueError(f"mean_std: every {by} needs at least 2 seeds; counts: {groups.size().to_dict()}")
    mean, std = groups.mean(), groups.std(ddof=1)
    n = {c: _places(c, digits) for c in columns}
    return pd.DataFrame({c: [f"{mean.loc[r, c]:.{n[c]}f} ± {std.loc[r, c]:.{n[c]}f}" for r in mean.index]
                         for c in columns}, index=mean.index)


def single(values: Mapping[str, float], columns: Sequence[str], digits: Mapping[str, int] | None = None) -> list[str]:
    """One run's (or a baseline's) ``values`` of ``columns``, with :func:`mean_std`'s decimals: a row to add beside it."""
    return [f"{values[c]:.{_places(c, digits)}f}" for c in columns]


def _places(column: str, digits: Mapping[str, int] | None) -> int:
    return (digits or {}).get(column, 2 if ("PSNR" in column or "FID" in column) else 3)


def verdicts(per_seed: pd.DataFrame, columns: Sequence[str], baseline: str, by: str = "config") -> pd.DataFrame:
    """Each configuration against ``baseline``, per column: the difference of the means and a verdict.

    The verdict is ``"beyond the seed spread"`` when every seed of the row lies on the same side of
    every seed of the baseline (the two ranges do not overlap), else ``"within the seed spread"``: with
    two or three seeds a deliberately plain rule, which a reader can check in the per-seed table.
    """
    rows = {}
    base = per_seed[per_seed[by] == baseline]
    if base.empty:
        raise ValueError(f"verdicts: no rows with {by} == {baseline!r}")
    for name, group in per_seed.groupby(by, sort=False):
        if name == baseline:
            continue
        row = {}
        for c in columns:
            lo, hi, b_lo, b_hi = group[c].min(), group[c].max(), base[c].min(), base[c].max()
            row[f"{c} - {baseline}"] = float(np.round(group[c].mean() - base[c].mean(), 3))
            row[f"{c} verdict"] = "beyond the seed spread" if lo > b_hi or hi < b_lo else "within the seed spread"
        rows[name] = row
    return pd.DataFrame(rows).T
