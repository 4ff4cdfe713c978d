"""The trainable experiments of the course, each defined once: the SSIM-map GAN (``ssim-maps``,
chapter 1), the autoencoder (``autoencoder``, chapter 2), SRCNN (``srcnn``, chapter 3), pix2pix
(``pix2pix``, chapter 4), KL-pix2pix (``kl-pix2pix``, chapter 5), CycleGAN (``cyclegan``, chapter 6) and
conditional flow matching for x4 super-resolution (``flow``, chapter 7).

``python -m i2icourse train EXPERIMENT`` (:mod:`i2icourse.cli`) trains one of them on a folder or a
registered dataset; ``python -m i2icourse apply`` runs the trained generator over photos of any size.
An :class:`Experiment` holds what both commands need:

* its training settings in the four run profiles (``smoke``, ``cpu``, ``gpu``, ``full``): ``profiles``,
  the ones its chapter trains with (chapter 1: its GAN's; chapter 2: its main run's). The chapter's
  settings cell reads them from here (``**experiments.PIX2PIX.profiles["cpu"]`` among its own
  values), so ``train`` trains what the chapter describes;
* ``options``: the settings only the command line has, per profile (the data's resizing, the
  evaluation interval, the values a chapter passes as arguments), read together with ``profiles`` by
  :func:`configure` exactly as a notebook reads its own (``--set`` is the command line's ``I2I_SETTINGS``);
* ``build(settings, device) -> (recipe, generator)``: the chapter's recipe, whose ``step`` and
  ``objects`` go to :func:`i2icourse.train.fit`, and the generator inside it (chapter 1: the GAN's
  map generator; chapter 2: the autoencoder itself);
* ``dataset(data, settings)``: the training set from a folder in the reference code's layout or a
  registered dataset's name (chapters 1 to 3: a folder of photos, which chapter 1 distorts and maps,
  chapter 2 crops grey);
* how to rebuild the generator alone from a checkpoint's settings (:func:`generator`), where its
  weights are stored, and how it turns a photo into its output (``apply``).

The settings that :func:`configure` returns are what a checkpoint of ``train`` records: the profile's
values, ``experiment``, ``size`` (``apply``'s tile) and ``model``, the generator's constructor
arguments. They are all ``apply`` needs to rebuild the generator, so a checkpoint is enough to use
the model. ``train`` adds the data it trained on (:func:`data_record`): a folder's resolved path and a digest of its files, so another
folder, even one of the same name, is another run with its own checkpoint (:func:`run_checkpoint`).
"""
from __future__ import annotations

import hashlib
import inspect
import os
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence

import torch
from torch import nn
from torch.utils.data import Dataset

from i2icourse import images, inference, losses, runtime, sr_eval
from i2icourse.data import autoencoding, quality_maps, sr
from i2icourse.data.augment import JointResize
from i2icourse.data.paired import AlignedDataset, read_pairs
from i2icourse.data.fetch import data_root
from i2icourse.data.unpaired import UnalignedDataset
from i2icourse.models import ssim_map_nets
from i2icourse.models.autoencoder import ConvAutoencoder
from i2icourse.models.flow_unet import FlowUNet
from i2icourse.models.patchgan import patchgan
from i2icourse.models.resnet_generator import ResnetGenerator
from i2icourse.models.srcnn import SRCNN
from i2icourse.models.unet import UNetGenerator
from i2icourse.recipes import flow, ssim_maps
from i2icourse.recipes.autoencoders import Reconstruction, reconstruct
from i2icourse.recipes.cyclegan import CycleGAN, Unconditional
from i2icourse.recipes.flow import FlowMatching
from i2icourse.recipes.pix2pix import Pix2Pix
from i2icourse.recipes.srcnn import SuperResolution
from i2icourse.tiling import tiled_apply

#: A batch of images in [0, 1] -> the generator's outputs in [0, 1], on the CPU.
Translator = Callable[[torch.Tensor], torch.Tensor]
#: An experiment's settings: what :func:`configure` returns and a checkpoint of ``train`` records.
Settings = Mapping[str, Any]


@dataclass(frozen=True)
class Experiment:
    """One trainable experiment: its profiles and how to build, feed, rebuild and apply it.

    ``profiles``: ``{profile: {setting: value}}``, the four with the same keys: the training settings
    the chapter shares (its settings cell reads them); ``options``: the same for the settings only the
    command line has; ``size`` is the side of the training crops, also the tile of ``apply``
    (SRCNN: the side of its patches); ``tile`` names that setting where the chapter calls it
    otherwise (chapter 1: ``patch``), and :func:`configure` records its value as ``size`` too.
    ``model(settings)``: the generator's constructor arguments; ``network``: its class. ``weights``: the name of the generator's state in a checkpoint
    (``reverse``: the other direction's, where there is one). ``inputs(item)``: a dataset item's
    network input; ``translator(net)``: how the generator maps a batch; ``apply(net, image, settings,
    tile, overlap)``: one photo of any size through the generator.
    """

    name: str
    chapter: str
    profiles: Mapping[str, Mapping[str, Any]]
    options: Mapping[str, Mapping[str, Any]]
    model: Callable[[Settings], dict[str, Any]]
    network: Callable[..., nn.Module]
    weights: str
    reverse: str | None
    build: Callable[[Settings, torch.device], tuple[Any, nn.Module]]
    dataset: Callable[[str, Settings], Dataset]
    inputs: Callable[[Any], torch.Tensor]
    translator: Callable[[nn.Module], Translator]
    apply: Callable[[nn.Module, torch.Tensor, Settings, int, int], torch.Tensor]
    tile: str = "size"

    def __post_init__(self) -> None:
        shared = {key for values in self.profiles.values() for key in values}
        both = shared & {key for values in self.options.values() for key in values}
        if both:  # one of the two would silently win in configure()
            raise ValueError(f"{self.name}: {sorted(both)} set in both profiles and options")
        if self.tile != "size" and "size" in shared | {key for values in self.options.values() for key in values}:
            raise ValueError(f"{self.name}: 'size' is recorded from {self.tile!r}; it cannot be a setting too")


# ----------------------------------------------------------------------------------------------
# Settings
# ----------------------------------------------------------------------------------------------

@contextmanager
def _environment(**values: str) -> Iterator[None]:
    """Inside the block the environment variables ``values`` are set; their old values come back afterwards."""
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, old in saved.items():
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old


def configure(experiment: Experiment, profile: str | None = None, changes: Sequence[str] = ()) -> dict[str, Any]:
    """The settings of ``experiment`` in ``profile`` (default: :func:`i2icourse.runtime.profile`), with
    ``changes`` (``"key=literal"`` each) applied, plus ``experiment``, ``model`` and ``size`` (the
    value of the experiment's ``tile`` setting, where that is not ``size`` itself).

    The profile is chosen, and the changes parsed and type-checked, by :func:`i2icourse.runtime.settings`
    itself, the changes given to it as ``I2I_SETTINGS``: a command line's ``--set`` means what the
    variable means to a notebook, with the same messages. The variable's own value is not used.
    """
    choice = {"I2I_PROFILE": profile} if profile is not None else {}
    table = {name: {**experiment.profiles[name], **experiment.options[name]} for name in runtime.PROFILES}
    with _environment(**choice, I2I_SETTINGS="; ".join(changes)):
        values = vars(runtime.settings(**table))
    return {"experiment": experiment.name, **values, "size": values[experiment.tile], "model": experiment.model(values)}


def data_name(data: str) -> str:
    """A short name of a data source for file names: a folder's own name, a dataset name with ``/`` as ``_``."""
    path = Path(data)
    return path.resolve().name if path.exists() else data.replace("/", "_")


def files_digest(folder: Path) -> str:
    """A digest of what ``folder`` holds: the sorted relative paths of its files, with their sizes.

    Two folders with the same photos have the same digest wherever they are; adding, removing,
    renaming or resizing a file changes it. The contents are not read, so it is quick on any dataset.
    """
    lines = sorted(f"{p.relative_to(folder).as_posix()}\t{p.stat().st_size}" for p in folder.rglob("*") if p.is_file())
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()


def data_record(data: str) -> dict[str, str | None]:
    """What ``train`` records about its data: ``path``, a folder's resolved path (or a registered
    dataset's name as given), and ``files``, the folder's :func:`files_digest` (None for a name)."""
    path = Path(data)
    if path.is_dir():
        resolved = path.resolve()
        return {"path": str(resolved), "files": files_digest(resolved)}
    return {"path": data, "files": None}


def run_checkpoint(P: Settings, data: str) -> Path:
    """Where ``train`` keeps a run by default: ``$I2I_CHECKPOINTS/<profile>/cli/<experiment>_<data>.pt``,
    ``<data>`` a registered dataset's name or a folder's name and a short digest of its resolved path
    and its files (:func:`data_record`): ``photos_a/photos`` and ``photos_b/photos`` are two runs."""
    record = data_record(data)
    name = data_name(data)
    if record["files"] is not None:
        name += "_" + hashlib.sha256(f"{record['path']}\n{record['files']}".encode()).hexdigest()[:8]
    with _environment(I2I_PROFILE=P["profile"]):
        return runtime.checkpoint_path("cli", f"{P['experiment']}_{name}")


def generator(P: Settings) -> nn.Module:
    """A fresh generator of the experiment named in ``P`` (a checkpoint's settings), built from ``P['model']``."""
    return EXPERIMENTS[P["experiment"]].network(**P["model"])


def _folder(data: str) -> Path:
    """``data`` as a folder: itself if it is one, else the registered dataset of that name, fetched."""
    path = Path(data)
    if path.is_dir():
        return path
    if path.exists():
        raise NotADirectoryError(f"{data}: is a file, not a folder of images")
    from i2icourse.data.fetch import fetch  # only a dataset name needs the fetch layer
    return fetch(data)


def _translate_tanh(net: nn.Module) -> Translator:
    """A [-1, 1] (tanh) generator as a :data:`Translator`: images in [0, 1] in and out, in eval mode."""
    return lambda x: inference.translate(net, x, batch_size=len(x))


def _apply_tiled(net: nn.Module, image: torch.Tensor, P: Settings, tile: int, overlap: int) -> torch.Tensor:
    """``image`` through an image-to-image generator, tile by tile, blended (:func:`i2icourse.tiling.tiled_apply`)."""
    return tiled_apply(_translate_tanh(net), image, tile, overlap)


# ----------------------------------------------------------------------------------------------
# The SSIM-map GAN (chapter 1)
# ----------------------------------------------------------------------------------------------

#: Chapter 1's training settings (its settings cell reads them). ``keep``: the central window of each
#: photo stored with its maps; ``patch``: the side of the training crops (``apply``'s tile); ``ndf``
#: and ``d_layers``: the PatchGAN's first width and its stride-2 layers; ``eval_every``: how often the
#: chapter validates (the command line: saves a sample grid).
SSIM_MAPS_PROFILES = {
    "smoke": dict(keep=64, patch=32, batch=4, steps=4, eval_every=2, ndf=4, d_layers=1),
    "cpu": dict(keep=128, patch=64, batch=8, steps=400, eval_every=100, ndf=32, d_layers=2),
    "gpu": dict(keep=256, patch=128, batch=16, steps=3000, eval_every=500, ndf=64, d_layers=3),
    "full": dict(keep=320, patch=256, batch=16, steps=30000, eval_every=1000, ndf=64, d_layers=3),
}
#: The GAN's generator arguments (``ssim_map_nets.build("gan", **sizes)``), chapter 1's ``P.train["gan"]``:
#: what is left out is ``ssim_map_nets.gan``'s default (the paper's U-Net: depth 8, ngf 64).
SSIM_MAPS_GAN = {"smoke": dict(depth=5, ngf=4), "cpu": dict(depth=6, ngf=32), "gpu": dict(depth=7), "full": {}}
_GAN_DEFAULTS = {name: p.default for name, p in inspect.signature(ssim_map_nets.gan).parameters.items()}
#: What the command line adds: ``depth``/``ngf``, the generator's (:data:`i2icourse.experiments.SSIM_MAPS_GAN`,
#: defaults filled in); ``lr``, ``lambda_l1``: :func:`i2icourse.recipes.ssim_maps.map_gan`'s, the chapter's.
SSIM_MAPS_OPTIONS = {name: dict(**{**_GAN_DEFAULTS, **SSIM_MAPS_GAN[name]}, lr=2e-4, lambda_l1=100.0)
                     for name in runtime.PROFILES}


def _ssim_maps_model(P: Settings) -> dict[str, Any]:
    """The map GAN's generator ``G`` (a :class:`i2icourse.models.unet.UNetGenerator`, image in, map out)."""
    if P["patch"] % 2 ** P["depth"]:
        raise ValueError(f"ssim-maps: patch {P['patch']} is not a multiple of 2**depth = {2 ** P['depth']}")
    return dict(in_channels=3, out_channels=1, depth=P["depth"], ngf=P["ngf"])


def _ssim_maps_build(P: Settings, device: torch.device) -> tuple[Pix2Pix, nn.Module]:
    """Chapter 1's GAN, as its training cell builds it: :func:`i2icourse.recipes.ssim_maps.map_gan`."""
    model = ssim_map_nets.build("gan", depth=P["depth"], ngf=P["ngf"])
    gan = ssim_maps.map_gan(model, n_layers=P["d_layers"], ndf=P["ndf"], lambda_l1=P["lambda_l1"], lr=P["lr"],
                            device=device)
    return gan, gan.G


def _ssim_maps_dataset(data: str, P: Settings) -> quality_maps.QualityMapPairs:
    """Chapter 1's training pairs from the photos of ``data`` (a folder or a name of
    :func:`i2icourse.data.photos.load_photos`): each photo distorted 20 ways, the SSIM maps of its
    central ``keep`` window, cropped to random ``patch`` squares; all photos train (no validation split)."""
    photos = quality_maps.load_pristine(data)
    pairs = quality_maps.build_pairs(photos, keep=P["keep"], seed=0, cache=data_root() / "quality_maps")
    return quality_maps.QualityMapPairs(pairs, patch=P["patch"], train=True)


SSIM_MAPS = Experiment(
    name="ssim-maps", chapter="01_ssim_quality_maps", profiles=SSIM_MAPS_PROFILES, options=SSIM_MAPS_OPTIONS,
    model=_ssim_maps_model, network=UNetGenerator, weights="G", reverse=None, build=_ssim_maps_build,
    dataset=_ssim_maps_dataset, inputs=lambda item: item["A"], translator=_translate_tanh, apply=_apply_tiled,
    tile="patch")


# ----------------------------------------------------------------------------------------------
# The autoencoder (chapter 2)
# ----------------------------------------------------------------------------------------------

#: Chapter 2's training settings (its settings cell reads them). ``photo_scale``: the photos are
#: shrunk by it before cropping (None: kept as they are); ``bottleneck``: the code's length;
#: ``channels``: the encoder's widths, finest first.
AUTOENCODER_PROFILES = {
    "smoke": dict(photo_scale=0.5, steps=3, batch=4, lr=2e-3, bottleneck=16, channels=(4, 8, 8, 8)),
    "cpu": dict(photo_scale=0.5, steps=1200, batch=16, lr=2e-3, bottleneck=128, channels=(16, 32, 64, 64)),
    "gpu": dict(photo_scale=None, steps=6000, batch=64, lr=1e-3, bottleneck=128, channels=(32, 64, 128, 128)),
    "full": dict(photo_scale=None, steps=30000, batch=64, lr=1e-3, bottleneck=128, channels=(32, 64, 128, 128)),
}
#: What the command line adds. ``size``: the side of the grey crops, the network's fixed input
#: (chapter 2's 96, STL-10's); ``crops``: random crops per epoch (the chapter's 10,000); ``loss``: a
#: name of :data:`i2icourse.losses.LOSSES` (chapter 2 trains one network each with ``mse``, ``mae``
#: and ``log_ms_ssim``, its "MS-SSIM"); ``eval_every``: how often a sample grid is saved.
AUTOENCODER_OPTIONS = {
    name: dict(size=96, crops=10_000, loss="log_ms_ssim", eval_every=every)
    for name, every in (("smoke", 3), ("cpu", 300), ("gpu", 1000), ("full", 5000))
}


def _autoencoder_model(P: Settings) -> dict[str, Any]:
    return dict(size=P["size"], bottleneck=P["bottleneck"], channels=tuple(P["channels"]))


def _autoencoder_build(P: Settings, device: torch.device) -> tuple[Reconstruction, nn.Module]:
    """Chapter 2's training cell: a :class:`i2icourse.models.autoencoder.ConvAutoencoder`, Adam and the loss."""
    net = ConvAutoencoder(**_autoencoder_model(P))
    trainer = Reconstruction(net, losses.get_loss(P["loss"]), lr=P["lr"], device=device)
    return trainer, trainer.model


def _autoencoder_dataset(data: str, P: Settings) -> autoencoding.RandomCrops:
    """Random grey ``size`` crops of the photos of ``data`` (a folder or a name of
    :func:`i2icourse.data.photos.load_photos`), shrunk by ``photo_scale`` first, as chapter 2's cpu run."""
    photos = autoencoding.grey_photos([data])
    if P["photo_scale"] is not None:
        photos = [images.resize(x, scale=P["photo_scale"]) for x in photos]
    return autoencoding.RandomCrops(photos, P["size"], length=P["crops"])


def _autoencoder_apply(net: nn.Module, image: torch.Tensor, P: Settings, tile: int, overlap: int) -> torch.Tensor:
    """The grey ``image`` reconstructed tile by tile (:func:`i2icourse.tiling.tiled_apply`): the network
    takes ``size`` x ``size`` inputs only, so ``tile`` must be that."""
    if tile != P["size"]:
        raise ValueError(f"autoencoder: the network takes {P['size']}x{P['size']} inputs only; --tile {tile} "
                         "cannot be used")
    return tiled_apply(lambda x: reconstruct(net, x), images.rgb_to_grey(image), tile, overlap)


AUTOENCODER = Experiment(
    name="autoencoder", chapter="02_msssim_autoencoders", profiles=AUTOENCODER_PROFILES, options=AUTOENCODER_OPTIONS,
    model=_autoencoder_model, network=ConvAutoencoder, weights="net", reverse=None, build=_autoencoder_build,
    dataset=_autoencoder_dataset, inputs=lambda item: item, translator=lambda net: lambda x: reconstruct(net, x),
    apply=_autoencoder_apply)


# ----------------------------------------------------------------------------------------------
# pix2pix (chapter 4)
# ----------------------------------------------------------------------------------------------

#: Chapter 4's training settings (its settings cell reads them). ``size``: crop side, a multiple of
#: 2**depth; ``depth``/``ngf``: the U-Net's levels and first width; ``ndf``: the PatchGAN's first width.
PIX2PIX_PROFILES = {
    "smoke": dict(size=64, depth=6, ngf=4, ndf=4, batch=2, steps=6, eval_every=3),
    "cpu": dict(size=64, depth=6, ngf=16, ndf=16, batch=4, steps=2000, eval_every=500),
    "gpu": dict(size=256, depth=8, ngf=64, ndf=64, batch=1, steps=1000, eval_every=500),
    "full": dict(size=256, depth=8, ngf=64, ndf=64, batch=1, steps=80_000, eval_every=8_000),
}
#: What the command line adds. ``load_size``: resize the shorter side first (pix2pix's jitter, 286 ->
#: 256, as chapter 4 does on facades), None: crop at the stored size; ``field``: the PatchGAN's
#: receptive field; ``lambda_rec``: the L1 weight; ``direction``: ``AtoB`` (the left half of an A|B
#: file is the input, as the reference code's default) or ``BtoA`` (facades' labels -> photo);
#: ``upsample``: the decoder's ``transpose``d convolutions (the paper) or ``resize``-convolutions.
#: ``field``, ``lr``, ``lambda_rec`` and ``upsample`` are the values of chapter 4's main run.
PIX2PIX_OPTIONS = {
    "smoke": dict(load_size=72, field=70, lr=2e-4, lambda_rec=100.0, direction="AtoB", upsample="transpose"),
    "cpu": dict(load_size=72, field=70, lr=2e-4, lambda_rec=100.0, direction="AtoB", upsample="transpose"),
    "gpu": dict(load_size=286, field=70, lr=2e-4, lambda_rec=100.0, direction="AtoB", upsample="transpose"),
    "full": dict(load_size=286, field=70, lr=2e-4, lambda_rec=100.0, direction="AtoB", upsample="transpose"),
}


def _pix2pix_model(P: Settings) -> dict[str, Any]:
    if P["size"] % 2 ** P["depth"]:
        raise ValueError(f"pix2pix: size {P['size']} is not a multiple of 2**depth = {2 ** P['depth']}")
    return dict(in_channels=3, out_channels=3, depth=P["depth"], ngf=P["ngf"], upsample=P["upsample"])


def pix2pix(depth: int, ngf: int, ndf: int, *, in_channels: int = 3, out_channels: int = 3, field: int = 70,
            skip: bool = True, upsample: str = "transpose", rec: str = "l1", lambda_rec: float = 100.0,
            lambda_gan: float = 1.0, lr: float = 2e-4, steps: int | None = None,
            extra_loss: losses.LossFn | None = None, extra_weight: float = 1.0, extra_name: str = "G_extra",
            device: torch.device | str = "cpu") -> Pix2Pix:
    """Chapter 4's pix2pix: a U-Net generator (``depth`` levels, ``ngf`` first width, ``skip`` connections
    or not, transposed or resize-convolutions to ``upsample``) against a PatchGAN of receptive field
    ``field`` that sees input and output side by side, trained with ``lambda_gan`` times the GAN loss
    (0: the reconstruction loss alone) plus ``lambda_rec`` times the ``rec`` loss, plus ``extra_weight``
    times ``extra_loss(output, target)`` where one is given (chapter 5's KL term, logged as
    ``extra_name``). The notebook and ``train pix2pix`` both build it here."""
    G = UNetGenerator(in_channels, out_channels, depth=depth, ngf=ngf, skip=skip, upsample=upsample)
    D = patchgan(field, in_channels=in_channels + out_channels, ndf=ndf)
    return Pix2Pix(G, D, lr=lr, rec=rec, lambda_rec=lambda_rec, lambda_gan=lambda_gan, device=device, steps=steps,
                   extra_loss=extra_loss, extra_weight=extra_weight, extra_name=extra_name)


def _pix2pix_build(P: Settings, device: torch.device) -> tuple[Pix2Pix, nn.Module]:
    gan = pix2pix(P["depth"], P["ngf"], P["ndf"], field=P["field"], upsample=P["upsample"], lr=P["lr"],
                  lambda_rec=P["lambda_rec"], device=device, steps=P["steps"])
    return gan, gan.G


def _pairs(data: str, P: Settings) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """The A|B images of ``DIR/train/`` (the reference layout) or of ``DIR`` itself, in ``P['direction']``."""
    if P["direction"] not in ("AtoB", "BtoA"):
        raise ValueError(f"{P['experiment']}: direction must be 'AtoB' or 'BtoA', got {P['direction']!r}")
    folder = _folder(data)
    pairs = read_pairs(folder / "train" if (folder / "train").is_dir() else folder)
    return [(b, a) for a, b in pairs] if P["direction"] == "BtoA" else list(pairs)


def _pix2pix_dataset(data: str, P: Settings) -> AlignedDataset:
    """The pairs of ``data`` (:func:`_pairs`), resized to ``load_size`` and cropped to ``size`` at random."""
    return AlignedDataset(_pairs(data, P), P["size"], load_size=P["load_size"])


PIX2PIX = Experiment(
    name="pix2pix", chapter="04_pix2pix", profiles=PIX2PIX_PROFILES, options=PIX2PIX_OPTIONS, model=_pix2pix_model,
    network=UNetGenerator, weights="G", reverse=None, build=_pix2pix_build, dataset=_pix2pix_dataset,
    inputs=lambda item: item["A"], translator=_translate_tanh, apply=_apply_tiled)


# ----------------------------------------------------------------------------------------------
# pix2pix with a KL term (chapter 5)
# ----------------------------------------------------------------------------------------------

#: Chapter 5's training settings (its settings cell reads them), as pix2pix's: ``size`` is the side
#: both images of a pair are resized to (no crop, as chapter 5's base arm).
KL_PIX2PIX_PROFILES = {
    "smoke": dict(size=64, depth=6, ngf=4, ndf=4, batch=2, steps=4),
    "cpu": dict(size=64, depth=6, ngf=16, ndf=16, batch=4, steps=1000),
    "gpu": dict(size=128, depth=7, ngf=32, ndf=32, batch=4, steps=1500),
    "full": dict(size=256, depth=8, ngf=64, ndf=64, batch=1, steps=175_000),
}
#: What the command line adds: ``beta``, the weight of the KL term (chapter 5's "+ KL" arms: 0.2);
#: ``direction`` as pix2pix's; ``eval_every``: how often a sample grid is saved.
KL_PIX2PIX_OPTIONS = {
    "smoke": dict(beta=0.2, direction="AtoB", eval_every=2),
    "cpu": dict(beta=0.2, direction="AtoB", eval_every=250),
    "gpu": dict(beta=0.2, direction="AtoB", eval_every=500),
    "full": dict(beta=0.2, direction="AtoB", eval_every=10_000),
}


def _kl_pix2pix_model(P: Settings) -> dict[str, Any]:
    return _pix2pix_model({**P, "upsample": "transpose"})


def _kl_pix2pix_build(P: Settings, device: torch.device) -> tuple[Pix2Pix, nn.Module]:
    gan = pix2pix(P["depth"], P["ngf"], P["ndf"], steps=P["steps"], extra_loss=losses.kl_loss,
                  extra_weight=P["beta"], extra_name="G_KL", device=device)
    return gan, gan.G


def _kl_pix2pix_dataset(data: str, P: Settings) -> AlignedDataset:
    """The pairs of ``data`` (:func:`_pairs`), resized to ``size`` (nearest neighbour for A, a label map)."""
    return AlignedDataset(_pairs(data, P), P["size"], transform=JointResize(P["size"]))


KL_PIX2PIX = Experiment(
    name="kl-pix2pix", chapter="05_kl_pix2pix", profiles=KL_PIX2PIX_PROFILES, options=KL_PIX2PIX_OPTIONS,
    model=_kl_pix2pix_model, network=UNetGenerator, weights="G", reverse=None, build=_kl_pix2pix_build,
    dataset=_kl_pix2pix_dataset, inputs=lambda item: item["A"], translator=_translate_tanh, apply=_apply_tiled)


# ----------------------------------------------------------------------------------------------
# CycleGAN (chapter 6)
# ----------------------------------------------------------------------------------------------

#: Chapter 6's training settings (its settings cell reads them; its paired baseline trains at them
#: too). ``size``: crop side, a multiple of 4; ``ngf``/``blocks``: the ResNet generators' first width
#: and residual blocks (the paper: 64 and 9 at 256 px); ``ndf``: the 70x70 PatchGANs' first width.
CYCLEGAN_PROFILES = {
    "smoke": dict(size=32, ngf=4, blocks=1, ndf=4, steps=4),
    "cpu": dict(size=64, ngf=16, blocks=3, ndf=16, steps=1000),
    "gpu": dict(size=96, ngf=32, blocks=6, ndf=64, steps=2000),
    "full": dict(size=128, ngf=64, blocks=6, ndf=64, steps=20_000),
}
#: What the command line adds. ``load_size``: resize the shorter side first, 9/8 of ``size`` (the
#: paper's 286 -> 256 jitter); ``batch``: 1, as chapter 6 and the paper; ``lambda_cyc``,
#: ``lambda_idt`` (a fraction of it) and ``pool``: chapter 6's main run (no identity loss, its
#: ablation's "+ identity loss (0.5)" arm is ``--set lambda_idt=0.5``).
CYCLEGAN_OPTIONS = {
    "smoke": dict(load_size=36, batch=1, eval_every=2, lr=2e-4, lambda_cyc=10.0, lambda_idt=0.0, pool=50),
    "cpu": dict(load_size=72, batch=1, eval_every=250, lr=2e-4, lambda_cyc=10.0, lambda_idt=0.0, pool=50),
    "gpu": dict(load_size=108, batch=1, eval_every=500, lr=2e-4, lambda_cyc=10.0, lambda_idt=0.0, pool=50),
    "full": dict(load_size=144, batch=1, eval_every=5000, lr=2e-4, lambda_cyc=10.0, lambda_idt=0.0, pool=50),
}


def _cyclegan_model(P: Settings) -> dict[str, Any]:
    if P["size"] % 4:
        raise ValueError(f"cyclegan: size {P['size']} is not a multiple of 4")
    return dict(in_channels=3, out_channels=3, ngf=P["ngf"], n_blocks=P["blocks"])


def cyclegan(ngf: int, blocks: int, ndf: int, *, cycle: str = "l1", lambda_cyc: float = 10.0,
             lambda_idt: float = 0.5, pool: int = 50, lr: float = 2e-4, steps: int | None = None,
             device: torch.device | str = "cpu") -> CycleGAN:
    """Chapter 6's CycleGAN: two ResNet generators (``ngf`` first width, ``blocks`` residual blocks), two
    70x70 PatchGANs with instance norm, the ``cycle`` loss weighted ``lambda_cyc``, the identity loss
    (``lambda_idt`` times ``lambda_cyc``) and a history ``pool``. The notebook and ``train cyclegan``
    both build it here."""
    G, F = (ResnetGenerator(3, 3, ngf=ngf, n_blocks=blocks) for _ in range(2))
    D_A, D_B = (Unconditional(patchgan(70, 3, ndf, norm="instance")) for _ in range(2))
    return CycleGAN(G, F, D_A, D_B, lr=lr, cycle=cycle, lambda_cyc=lambda_cyc, lambda_idt=lambda_idt, pool=pool,
                    device=device, steps=steps)


def paired_baseline(ngf: int, blocks: int, ndf: int, *, steps: int | None = None,
                    device: torch.device | str = "cpu") -> Pix2Pix:
    """Chapter 6's paired upper bound: chapter 4's recipe trained WITH the pairs, on CycleGAN's networks
    (a ResNet generator, a 70x70 PatchGAN with instance norm that sees input and output) and its
    least-squares GAN loss, so the two rows of the chapter's table differ only in the supervision."""
    G = ResnetGenerator(3, 3, ngf=ngf, n_blocks=blocks)
    D = patchgan(70, in_channels=6, ndf=ndf, norm="instance")
    return Pix2Pix(G, D, gan_mode="lsgan", steps=steps, device=device)


def _cyclegan_build(P: Settings, device: torch.device) -> tuple[CycleGAN, nn.Module]:
    gan = cyclegan(P["ngf"], P["blocks"], P["ndf"], lr=P["lr"], lambda_cyc=P["lambda_cyc"],
                   lambda_idt=P["lambda_idt"], pool=P["pool"], device=device, steps=P["steps"])
    return gan, gan.G


def _cyclegan_dataset(data: str, P: Settings) -> UnalignedDataset:
    """The unpaired images of ``DIR/trainA/`` and ``DIR/trainB/`` (the reference layout)."""
    return UnalignedDataset(_folder(data), P["size"], load_size=P["load_size"])


CYCLEGAN = Experiment(
    name="cyclegan", chapter="06_cyclegan", profiles=CYCLEGAN_PROFILES, options=CYCLEGAN_OPTIONS, model=_cyclegan_model,
    network=ResnetGenerator, weights="G", reverse="F", build=_cyclegan_build, dataset=_cyclegan_dataset,
    inputs=lambda item: item["A"], translator=_translate_tanh, apply=_apply_tiled)


# ----------------------------------------------------------------------------------------------
# SRCNN (chapter 3)
# ----------------------------------------------------------------------------------------------

#: Chapter 3's training settings (its settings cell reads them). ``patches``: how many patches are
#: cut from the photos; ``lr_drop_at``: the step from which the learning rate is divided by 10 (None:
#: never); ``residual``/``init_std``: chapter 3's skip connection and default initialisation (smoke,
#: cpu) or the paper's network (gpu, full).
SRCNN_PROFILES = {
    "smoke": dict(patches=512, steps=12, batch=16, lr=1e-3, lr_drop_at=10, residual=True, init_std=None,
                  eval_every=12),
    "cpu": dict(patches=64_000, steps=2000, batch=32, lr=1e-3, lr_drop_at=1600, residual=True, init_std=None,
                eval_every=250),
    "gpu": dict(patches=200_000, steps=8000, batch=128, lr=1e-3, lr_drop_at=6400, residual=False, init_std=1e-3,
                eval_every=2000),
    "full": dict(patches=1_000_000, steps=150_000, batch=128, lr=1e-3, lr_drop_at=120_000, residual=False,
                 init_std=1e-3, eval_every=5000),
}
#: What the command line adds, the same in every profile: ``size``, the training patch (33, the
#: paper's, chapter 3's ``PATCH``), ``scale``, the upscaling factor (chapter 3's ``SCALE``);
#: ``n1``/``n2``: the 9-5-5 network's widths (the paper's); ``loss``: a name of
#: :data:`i2icourse.losses.LOSSES` (chapter 3 trains one network per loss; l2 is the paper's).
SRCNN_OPTIONS = {name: dict(size=33, scale=4, n1=64, n2=32, loss="l2") for name in runtime.PROFILES}


def _srcnn_model(P: Settings) -> dict[str, Any]:
    return dict(channels=1, n1=P["n1"], n2=P["n2"], init_std=P["init_std"], residual=P["residual"])


def srcnn(*, n1: int = 64, n2: int = 32, residual: bool = False, init_std: float | None = 1e-3,
          loss: str | losses.LossFn = "l2", lr: float = 1e-3, lr_drop_at: int | None = None,
          device: torch.device | str = "cpu") -> SuperResolution:
    """Chapter 3's SRCNN on the Y channel (9-5-5, widths ``n1``/``n2``, chapter 3's skip connection or
    not, the paper's N(0, ``init_std``) initialisation or PyTorch's default), trained on ``loss`` (a
    name of :data:`i2icourse.losses.LOSSES`, or the loss itself) with Adam. The notebook and ``train
    srcnn`` both build it here."""
    net = SRCNN(channels=1, n1=n1, n2=n2, init_std=init_std, residual=residual)
    loss_fn = losses.get_loss(loss) if isinstance(loss, str) else loss
    return SuperResolution(net, loss_fn, lr=lr, lr_drop_at=lr_drop_at, device=device)


def _srcnn_build(P: Settings, device: torch.device) -> tuple[SuperResolution, nn.Module]:
    trainer = srcnn(n1=P["n1"], n2=P["n2"], residual=P["residual"], init_std=P["init_std"], loss=P["loss"],
                    lr=P["lr"], lr_drop_at=P["lr_drop_at"], device=device)
    return trainer, trainer.model


def _srcnn_dataset(data: str, P: Settings) -> sr.SRPatches:
    """Patches of a folder of photos, or of photos by name (``"CBSD68"``, ``"BSDS500/train"``, ``"skimage"``)."""
    return sr.SRPatches(data, scale=P["scale"], patch=P["size"], patches=P["patches"])


def _translate_y(net: nn.Module) -> Translator:
    """SRCNN as a :data:`Translator`: a bicubic-upscaled Y batch -> its sharpened Y in [0, 1]."""
    return lambda y: sr_eval.upscaler(net)(y).clamp(0, 1)


def _srcnn_apply(net: nn.Module, image: torch.Tensor, P: Settings, tile: int, overlap: int) -> torch.Tensor:
    """``image`` upscaled ``P['scale']`` times (:func:`i2icourse.sr_eval.upscale_photo`, as chapter 3 does)."""
    return sr_eval.upscale_photo(net, image, P["scale"], tile, overlap)


SRCNN_EXPERIMENT = Experiment(
    name="srcnn", chapter="03_srcnn", profiles=SRCNN_PROFILES, options=SRCNN_OPTIONS, model=_srcnn_model,
    network=SRCNN, weights="net", reverse=None, build=_srcnn_build, dataset=_srcnn_dataset,
    inputs=lambda item: item["A"], translator=_translate_y, apply=_srcnn_apply)


# ----------------------------------------------------------------------------------------------
# Conditional flow matching (chapter 7)
# ----------------------------------------------------------------------------------------------

#: Chapter 7's training settings: chapter 3's x4 super-resolution on the Y channel, learned by flow
#: matching. ``patches``: how many (bicubic, HR) patches are cut from the photos; ``size``: their side
#: (a multiple of ``2 ** (len(widths) - 1)``), also ``apply``'s tile; ``widths``: the velocity U-Net's
#: channels per level (:class:`i2icourse.models.flow_unet.FlowUNet`); ``lr_drop_at``: the step from
#: which the learning rate is divided by 10. The cpu profile is about 0.2 s a step on one CPU thread.
FLOW_PROFILES = {
    "smoke": dict(patches=256, size=16, widths=(4, 8), batch=4, steps=4, lr=1e-3, lr_drop_at=3, eval_every=2),
    "cpu": dict(patches=40_000, size=32, widths=(16, 32, 64), batch=16, steps=2400, lr=1e-3, lr_drop_at=2000,
                eval_every=400),
    "gpu": dict(patches=200_000, size=64, widths=(64, 128, 256), batch=64, steps=20_000, lr=5e-4,
                lr_drop_at=16_000, eval_every=2000),
    "full": dict(patches=1_000_000, size=96, widths=(64, 128, 256, 512), batch=64, steps=200_000, lr=2e-4,
                 lr_drop_at=160_000, eval_every=10_000),
}
#: What the command line adds: ``scale``, the upscaling factor (chapter 3's); ``sample_steps`` and
#: ``method``: how the sample grids and ``apply`` integrate the flow
#: (:func:`i2icourse.inference.flow_sample`); ``seed``: the noise they start from. (The sample grids
#: of ``train`` take :data:`i2icourse.experiments.FLOW_GRID_STEPS` Euler steps from seed 0.)
FLOW_OPTIONS = {name: dict(scale=4, sample_steps=steps, method="euler", seed=0)
                for name, steps in (("smoke", 2), ("cpu", 16), ("gpu", 32), ("full", 32))}


#: How many Euler steps the sample grids of ``train`` integrate (the translator knows no settings).
FLOW_GRID_STEPS = 16


def _flow_model(P: Settings) -> dict[str, Any]:
    """The velocity network on Y: the current image and the bicubic Y in, the velocity out."""
    multiple = 2 ** (len(P["widths"]) - 1)
    if P["size"] % multiple:
        raise ValueError(f"flow: size {P['size']} is not a multiple of 2**(len(widths) - 1) = {multiple}")
    return dict(in_channels=1, cond_channels=1, out_channels=1, widths=tuple(P["widths"]))


def _flow_build(P: Settings, device: torch.device) -> tuple[FlowMatching, nn.Module]:
    """Chapter 7's recipe: a :class:`i2icourse.models.flow_unet.FlowUNet` trained by flow matching with Adam."""
    trainer = FlowMatching(FlowUNet(**_flow_model(P)), lr=P["lr"], lr_drop_at=P["lr_drop_at"], device=device)
    return trainer, trainer.model


def _flow_dataset(data: str, P: Settings) -> sr.SRPatches:
    """Chapter 3's (bicubic Y, HR Y) patches (:class:`i2icourse.data.sr.SRPatches`) of a folder of photos or of
    photos by name."""
    return sr.SRPatches(data, scale=P["scale"], patch=P["size"], patches=P["patches"])


def _flow_upscaler(net: nn.Module, P: Settings) -> Translator:
    """The flow as a :data:`Translator`: bicubic Y batches -> one sample each, by the settings' sampler."""
    return lambda y: flow.sample(net, y, P["sample_steps"], P["method"], P["seed"], batch_size=max(len(y), 1))


def _flow_apply(net: nn.Module, image: torch.Tensor, P: Settings, tile: int, overlap: int) -> torch.Tensor:
    """``image`` upscaled ``P['scale']`` times as chapter 3's SRCNN (:func:`i2icourse.sr_eval.upscale_photo`),
    the Y channel by the flow's sampler, tile by tile."""
    return sr_eval.upscale_photo(_flow_upscaler(net, P), image, P["scale"], tile, overlap)


FLOW = Experiment(
    name="flow", chapter="07_flow_matching", profiles=FLOW_PROFILES, options=FLOW_OPTIONS, model=_flow_model,
    network=FlowUNet, weights="net", reverse=None, build=_flow_build, dataset=_flow_dataset,
    inputs=lambda item: item["A"], translator=lambda net: lambda y: flow.sample(net, y, FLOW_GRID_STEPS, batch_size=max(len(y), 1)),
    apply=_flow_apply)


#: The experiments by name, for ``python -m i2icourse train NAME``.
EXPERIMENTS: dict[str, Experiment] = {e.name: e for e in (SSIM_MAPS, AUTOENCODER, SRCNN_EXPERIMENT, PIX2PIX,
                                                          KL_PIX2PIX, CYCLEGAN, FLOW)}
