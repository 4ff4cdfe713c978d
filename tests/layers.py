"""The layers of the package i2icourse, from the bottom up: the one list that tests/test_package.py checks.

A module may import from its own layer and from the layers below it, never from a layer above.
Each name is a module of the package, a file (``train`` is ``i2icourse/train.py``) or a folder with
everything in it (``data`` is ``i2icourse/data/``). The package root (``i2icourse/__init__.py``:
the version and the repository's address) is in no layer: it imports nothing of the package, and
every layer may read it.

The package docstring (``i2icourse/__init__.py``) and the README's Architecture section draw the
same layers, from the top down; the test compares them with this list. When a module is added,
split or moved, add its name to its layer here and to both pictures; the test's message names the
module that no layer holds, or the import that goes upwards.

Two rules are stricter than the order: the ground floor (the first layer) imports nothing of the
package, and ``models`` import only torch (a network file can be copied out alone).
"""
from __future__ import annotations

LAYERS: tuple[tuple[str, ...], ...] = (
    ("runtime", "images", "inference"),          # ground floor: profile/device/seed, image files, running a network
    ("metrics",),                            # image quality on tensors
    ("losses", "distortions"),               # built on the metrics (losses never imported by metrics)
    ("data",),                               # registry, fetch, photos, datasets (never models)
    ("models",),                             # the networks (only torch)
    ("fid", "tiling"),                       # feature metrics of image sets; tiled inference
    ("sr_eval",),                            # SR evaluation on the data layer's test sets
    ("analysis", "seeds"),                   # probes, rankings, correlations; results over seeds
    ("plot",),                               # figures, diagrams, widgets
    ("source", "results"),                   # the package's code and RESULTS.md's tables in the chapters
    ("train", "precision", "distributed"),   # the training loop, its numeric precision, DDP
    ("recipes",),                            # the chapters' training steps
    ("experiments",),                        # the seven trainable experiments, defined once
    ("cli", "__main__", "pretrained"),       # python -m i2icourse train|apply; the shipped weights
    ("exercises", "checks"),                 # instructor tools and answer checks: nothing imports them
)
