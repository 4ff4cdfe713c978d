#!/usr/bin/env python
"""Convert the TU-Graz semantic drone dataset into CV2's A|B pairs (label map | photo), 350/50 split.

    python data_scripts/prepare_drone.py [--root DIR] [--out DIR] [--scale 10] [--seed 0]

Without ``--root`` the dataset is located through the course's data layer (``data.fetch("semantic_drone")``;
it needs a manual download, see its message). The work is done by
:func:`i2icourse.data.labelmaps.convert_drone`.
"""
from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path

if importlib.util.find_spec("i2icourse") is None:  # run from a checkout without installing the package
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from i2icourse.data.labelmaps import convert_drone  # noqa: E402


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", type=Path, help="the unpacked dataset (default: data.fetch('semantic_drone'))")
    ap.add_argument("--out", type=Path, help="where train/ and test/ go (default: <root>/../semantic_drone_ab)")
    ap.add_argument("--scale", type=int, default=10)
    ap.add_argument("--train", type=int, default=350)
    ap.add_argument("--test", type=int, default=50)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    root = args.root
    if root is None:
        from i2icourse import data
        root = data.fetch("semantic_drone")
    out = args.out or root.parent / "semantic_drone_ab"
    counts = convert_drone(root, out, scale=args.scale, n_train=args.train, n_test=args.test, seed=args.seed)
    print(f"wrote {counts['train']} training and {counts['test']} test A|B pairs to {out}")


if __name__ == "__main__":
    main()
