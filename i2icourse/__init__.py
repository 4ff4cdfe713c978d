"""i2icourse: the helper package of the image-to-image translation course.

Notebooks teach; this package holds what they reuse. Its layers, from the top down (a module may
import from its own layer and the layers below it; tests/layers.py is the tested list):

    exercises, checks        instructor tools and answer checks (nothing imports them)
    cli, __main__,           ``python -m i2icourse train|apply|pretrained``; the shipped trained
    pretrained               weights: manifest, checksums, ``load(name)``
    experiments              the seven trainable experiments, defined once for chapters and command line
    recipes/                 the chapters' training steps, for train.fit
    train, precision,        the training loop (progress, history, atomic checkpoints, exact resume),
    distributed              mixed precision on CUDA, several GPUs under torchrun
    source, results          the package's own code and benchmarks/RESULTS.md's tables in the chapters
    plot                     figures, architecture diagrams, ranking charts, the "be the judge" widget
    analysis, seeds          linear probes, rankings, rank correlations; mean ± std over seeds
    sr_eval                  super-resolution evaluation (Y-PSNR/SSIM) on the data layer's test sets
    fid, tiling              FID, KID, precision-recall of image sets; tiled inference
    models/                  the networks, one paper-shaped file each (they know only torch)
    data/                    dataset registry, fetch (downloads, mirror), photos, datasets (never models)
    losses, distortions      losses built on the metrics; blur, noise, compression
    metrics                  numbers on tensors: PSNR, SSIM, MS-SSIM, ... (never losses)
    runtime, images, inference  ground floor: profile/device/seed, image files, colour spaces, running
                             a network; they import nothing of the package

Import the submodules you need: ``from i2icourse import images, metrics``.
"""
__version__ = "0.1.0"

#: The course's GitHub repository: Colab badges, install cells and the book all point here.
REPOSITORY = "i2icourse/i2icourse"
REPOSITORY_URL = f"https://github.com/{REPOSITORY}"
