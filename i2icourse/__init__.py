"""i2icourse: the helper package of the image-to-image translation course.

Notebooks teach; this package holds what they reuse. Its layers (a module may import only from
the layers below it):

    exercises, checks        answers checked against the reference code (nothing imports them)
    train                    the training loop: progress, history, atomic checkpoints, exact resume
    models/                  the networks, one paper-shaped file each (they know only torch)
    data/                    dataset registry + fetch (downloads, mirror) and datasets (never models)
    metrics, losses          numbers on tensors (losses build on metrics, never the reverse)
    runtime, io, plot        ground floor: profile/device/seed, image files and colour spaces, figures

Import the submodules you need: ``from i2icourse import io, metrics``.
"""
__version__ = "0.1.0"

#: The course's GitHub repository: Colab badges, install cells and the book all point here.
REPOSITORY = "i2icourse/i2icourse"
REPOSITORY_URL = f"https://github.com/{REPOSITORY}"
