"""Measured results that chapters quote, read from ``benchmarks/RESULTS.md`` instead of retyped.

Benchmarks and GPU runs write their figures into ``benchmarks/RESULTS.md``, one section per
measurement (a ``##`` heading with the date, a paragraph saying how it was measured, a markdown
table). A chapter that discusses such figures shows the table with :func:`table`, so the book cannot
quote a number the file does not hold (chapters 3 and 4).
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from i2icourse import source

#: The results file of a clone of the repository (absent from a pip-installed package).
RESULTS = Path(__file__).resolve().parents[1] / "benchmarks" / "RESULTS.md"


def table(section: str, path: str | Path = RESULTS) -> pd.DataFrame:
    """The first markdown table under the heading of ``path`` that starts with ``section``, as strings.

    ``section`` is the heading's text without the ``#`` marks, or its beginning, e.g.
    ``"`pix2pix_step.py` (2026-11-26)"``. Empty cells stay empty strings; the first column is the index.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: the benchmark results live in the repository's benchmarks/ folder; "
                                "clone the repository to read them")
    lines = path.read_text(encoding="utf-8").splitlines()
    starts = [i for i, line in enumerate(lines) if line.startswith("#") and line.lstrip("#").strip().startswith(section)]
    if not starts:
        raise KeyError(f"{path.name}: no heading starts with {section!r}")
    rows: list[list[str]] = []
    for line in lines[starts[0] + 1:]:
        if line.startswith("#") and rows == []:
            break  # the next section began before any table
        if line.startswith("|"):
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if not all(set(c) <= set("-: ") for c in cells):  # skip the |---|---| rule
                rows.append(cells)
        elif rows:
            break
    if not rows:
        raise ValueError(f"{path.name}: the section {section!r} has no table")
    header, body = rows[0], rows[1:]
    frame = pd.DataFrame(body, columns=header)
    return frame.set_index(header[0])


def show(section: str, path: str | Path = RESULTS) -> pd.DataFrame | None:
    """:func:`table`, or where the file is not there (a pip install, as on Colab) a line saying where it is."""
    try:
        return table(section, path)
    except FileNotFoundError:
        print(f"The table '{section}' is in benchmarks/RESULTS.md of the repository, {source.repository_url()}")
        return None
