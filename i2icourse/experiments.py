"""The trainable experiments of the command line, each defined once: pix2pix, CycleGAN and SRCNN.

``python -m i2icourse train EXPERIMENT`` (:mod:`i2icourse.cli`) trains one of them on a folder or a
registered dataset; ``python -m i2icourse apply`` runs the trained generator over photos of any size.
An :class:`Experiment` holds what both commands need:

* its sizes in the four run profiles (``smoke``, ``cpu``, ``gpu``, ``full``), taken from chapters 4,
  6 and 3, read with :func:`settings` exactly as a notebook reads its own (``--set`` is the command
  line's ``I2I_SETTINGS``);
* ``build(settings, device) -> (recipe, generator)``: the chapter's recipe, whose ``step`` and
  ``objects`` go to :func:`i2icourse.train.fit`, and the generator inside it;
* ``dataset(data, settings)``: the training set from a folder in the reference code's layout or a
  registered dataset's name;
* how to rebuild the generator alone from a checkpoint's settings (:func:`generator`), where its
  weights are stored, and how it turns a photo into its output (``apply``).

The settings that :func:`settings` returns are what a checkpoint of ``train`` records: the profile's
values, ``experiment`` and ``model``, the generator's constructor arguments. They are all ``apply``
needs to rebuild the generator, so a checkpoint is enough to use the model.
"""
from __future__ import annotations

import os
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence

import torch
from torch import nn
from torch.utils.data import Dataset

from i2icourse import inference, io, losses, runtime, sr_eval
from i2icourse.data import sr
from i2icourse.data.paired import AlignedDataset, read_pairs
from i2icourse.data.unpaired import UnalignedDataset
from i2icourse.models.patchgan import patchgan
from i2icourse.models.resnet_generator import ResnetGenerator
from i2icourse.models.srcnn import SRCNN
from i2icourse.models.unet import UNetGenerator
from i2icourse.recipes.cyclegan import CycleGAN, Unconditional
from i2icourse.recipes.pix2pix import Pix2Pix
from i2icourse.recipes.srcnn import SuperResolution
from i2icourse.tiling import tiled_apply

#: A batch of images in [0, 1] -> the generator's outputs in [0, 1], on the CPU.
Translator = Callable[[torch.Tensor], torch.Tensor]
#: An experiment's settings: what :func:`settings` returns and a checkpoint of ``train`` records.
Settings = Mapping[str, Any]


@dataclass(frozen=True)
class Experiment:
    """One trainable experiment: its profiles and how to build, feed, rebuild and apply it.

    ``profiles``: ``{profile: {setting: value}}``, the four with the same keys; ``size`` is the side of
    the training crops, also the tile of ``apply``. ``model(settings)``: the generator's constructor
    arguments; ``network``: its class. ``weights``: the name of the generator's state in a checkpoint
    (``reverse``: the other direction's, where there is one). ``inputs(item)``: a dataset item's
    network input; ``translator(net)``: how the generator maps a batch; ``apply(net, image, settings,
    tile, overlap)``: one photo of any size through the generator.
    """

    name: str
    chapter: str
    profiles: Mapping[str, Mapping[str, Any]]
    model: Callable[[Settings], dict[str, Any]]
    network: Callable[..., nn.Module]
    weights: str
    reverse: str | None
    build: Callable[[Settings, torch.device], tuple[Any, nn.Module]]
    dataset: Callable[[str, Settings], Dataset]
    inputs: Callable[[Any], torch.Tensor]
    translator: Callable[[nn.Module], Translator]
    apply: Callable[[nn.Module, torch.Tensor, Settings, int, int], torch.Tensor]


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


def settings(experiment: Experiment, profile: str | None = None, changes: Sequence[str] = ()) -> dict[str, Any]:
    """The settings of ``experiment`` in ``profile`` (default: :func:`i2icourse.runtime.profile`), with
    ``changes`` (``"key=literal"`` each) applied, plus ``experiment`` and ``model``.

    The profile is chosen, and the changes parsed and type-checked, by :func:`i2icourse.runtime.settings`
    itself, the changes given to it as ``I2I_SETTINGS``: a command line's ``--set`` means what the
    variable means to a notebook, with the same messages. The variable's own value is not used.
    """
    choice = {"I2I_PROFILE": profile} if profile is not None else {}
    with _environment(**choice, I2I_SETTINGS="; ".join(changes)):
        values = vars(runtime.settings(**experiment.profiles))
    return {"experiment": experiment.name, **values, "model": experiment.model(values)}


def data_name(data: str) -> str:
    """A short name of a data source for file names: a folder's own name, a dataset name with ``/`` as ``_``."""
    path = Path(data)
    return path.resolve().name if path.exists() else data.replace("/", "_")


def checkpoint_path(P: Settings, data: str) -> Path:
    """Where ``train`` keeps a run by default: ``$I2I_CHECKPOINTS/<profile>/cli/<experiment>_<data>.pt``."""
    with _environment(I2I_PROFILE=P["profile"]):
        return runtime.checkpoint_path("cli", f"{P['experiment']}_{data_name(data)}")


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
    return lambda x: inference.predict(net, x, batch_size=len(x),
                                       fn=lambda xb: io.from_signed(net(io.to_signed(xb))))


def _apply_tiled(net: nn.Module, image: torch.Tensor, P: Settings, tile: int, overlap: int) -> torch.Tensor:
    """``image`` through an image-to-image generator, tile by tile, blended (:func:`i2icourse.tiling.tiled_apply`)."""
    return tiled_apply(_translate_tanh(net), image, tile, overlap)


# ----------------------------------------------------------------------------------------------
# pix2pix (chapter 4)
# ----------------------------------------------------------------------------------------------

#: Chapter 4's sizes. ``size``: crop side, a multiple of 2**depth; ``load_size``: resize the shorter
#: side first (pix2pix's jitter: 286 -> 256), None: crop at the stored size; ``depth``/``ngf``: the
#: U-Net's levels and first width; ``ndf``/``field``: the PatchGAN's first width and receptive field;
#: ``lambda_rec``: the L1 weight; ``direction``: ``AtoB`` (the left half of an A|B file is the input,
#: as the reference code's default) or ``BtoA`` (facades' labels -> photo); ``upsample``: the decoder's
#: ``transpose``d convolutions (the paper) or ``resize``-convolutions (chapter 4: no checkerboard).
PIX2PIX_PROFILES = {
    "smoke": dict(size=32, load_size=36, depth=5, ngf=4, ndf=4, field=70, batch=2, steps=4, eval_every=2,
                  lr=2e-4, lambda_rec=100.0, direction="AtoB", upsample="transpose"),
    "cpu": dict(size=64, load_size=72, depth=6, ngf=16, ndf=16, field=70, batch=4, steps=2000, eval_every=500,
                lr=2e-4, lambda_rec=100.0, direction="AtoB", upsample="transpose"),
    "gpu": dict(size=256, load_size=286, depth=8, ngf=64, ndf=64, field=70, batch=1, steps=2000, eval_every=500,
                lr=2e-4, lambda_rec=100.0, direction="AtoB", upsample="transpose"),
    "full": dict(size=256, load_size=286, depth=8, ngf=64, ndf=64, field=70, batch=1, steps=80_000,
                 eval_every=8000, lr=2e-4, lambda_rec=100.0, direction="AtoB", upsample="transpose"),
}


def _pix2pix_model(P: Settings) -> dict[str, Any]:
    if P["size"] % 2 ** P["depth"]:
        raise ValueError(f"pix2pix: size {P['size']} is not a multiple of 2**depth = {2 ** P['depth']}")
    return dict(in_channels=3, out_channels=3, depth=P["depth"], ngf=P["ngf"], upsample=P["upsample"])


def pix2pix(depth: int, ngf: int, ndf: int, *, in_channels: int = 3, out_channels: int = 3, field: int = 70,
            skip: bool = True, upsample: str = "transpose", rec: str = "l1", lambda_rec: float = 100.0,
            lambda_gan: float = 1.0, lr: float = 2e-4, steps: int | None = None,
            device: torch.device | str = "cpu") -> Pix2Pix:
    """Chapter 4's pix2pix: a U-Net generator (``depth`` levels, ``ngf`` first width, ``skip`` connections
    or not, transposed or resize-convolutions to ``upsample``) against a PatchGAN of receptive field
    ``field`` that sees input and output side by side, trained with ``lambda_gan`` times the GAN loss
    (0: the reconstruction loss alone) plus ``lambda_rec`` times the ``rec`` loss. The notebook and
    ``train pix2pix`` both build it here."""
    G = UNetGenerator(in_channels, out_channels, depth=depth, ngf=ngf, skip=skip, upsample=upsample)
    D = patchgan(field, in_channels=in_channels + out_channels, ndf=ndf)
    return Pix2Pix(G, D, lr=lr, rec=rec, lambda_rec=lambda_rec, lambda_gan=lambda_gan, device=device, steps=steps)


def _pix2pix_build(P: Settings, device: torch.device) -> tuple[Pix2Pix, nn.Module]:
    gan = pix2pix(P["depth"], P["ngf"], P["ndf"], field=P["field"], upsample=P["upsample"], lr=P["lr"],
                  lambda_rec=P["lambda_rec"], device=device, steps=P["steps"])
    return gan, gan.G


def _pix2pix_dataset(data: str, P: Settings) -> AlignedDataset:
    """The A|B images of ``DIR/train/`` (the reference layout) or of ``DIR`` itself, in ``P['direction']``."""
    if P["direction"] not in ("AtoB", "BtoA"):
        raise ValueError(f"pix2pix: direction must be 'AtoB' or 'BtoA', got {P['direction']!r}")
    folder = _folder(data)
    pairs = read_pairs(folder / "train" if (folder / "train").is_dir() else folder)
    if P["direction"] == "BtoA":
        pairs = [(b, a) for a, b in pairs]
    return AlignedDataset(pairs, P["size"], load_size=P["load_size"])


PIX2PIX = Experiment(
    name="pix2pix", chapter="04_pix2pix", profiles=PIX2PIX_PROFILES, model=_pix2pix_model,
    network=UNetGenerator, weights="G", reverse=None, build=_pix2pix_build, dataset=_pix2pix_dataset,
    inputs=lambda item: item["A"], translator=_translate_tanh, apply=_apply_tiled)


# ----------------------------------------------------------------------------------------------
# CycleGAN (chapter 6)
# ----------------------------------------------------------------------------------------------

#: Chapter 6's sizes. ``size``/``load_size`` as pix2pix's (a multiple of 4); ``ngf``/``blocks``: the
#: ResNet generators' first width and residual blocks (the paper: 64 and 9 at 256 px); ``ndf``: the
#: 70x70 PatchGANs' first width; ``lambda_cyc``, ``lambda_idt`` (a fraction of it), ``pool``: the paper's.
CYCLEGAN_PROFILES = {
    "smoke": dict(size=32, load_size=36, ngf=4, blocks=1, ndf=4, batch=1, steps=4, eval_every=2, lr=2e-4,
                  lambda_cyc=10.0, lambda_idt=0.5, pool=50),
    "cpu": dict(size=64, load_size=72, ngf=16, blocks=3, ndf=16, batch=1, steps=1000, eval_every=250, lr=2e-4,
                lambda_cyc=10.0, lambda_idt=0.5, pool=50),
    "gpu": dict(size=96, load_size=108, ngf=32, blocks=6, ndf=64, batch=1, steps=5000, eval_every=1000, lr=2e-4,
                lambda_cyc=10.0, lambda_idt=0.5, pool=50),
    "full": dict(size=256, load_size=286, ngf=64, blocks=9, ndf=64, batch=1, steps=200_000, eval_every=10_000,
                 lr=2e-4, lambda_cyc=10.0, lambda_idt=0.5, pool=50),
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


def _cyclegan_build(P: Settings, device: torch.device) -> tuple[CycleGAN, nn.Module]:
    gan = cyclegan(P["ngf"], P["blocks"], P["ndf"], lr=P["lr"], lambda_cyc=P["lambda_cyc"],
                   lambda_idt=P["lambda_idt"], pool=P["pool"], device=device, steps=P["steps"])
    return gan, gan.G


def _cyclegan_dataset(data: str, P: Settings) -> UnalignedDataset:
    """The unpaired images of ``DIR/trainA/`` and ``DIR/trainB/`` (the reference layout)."""
    return UnalignedDataset(_folder(data), P["size"], load_size=P["load_size"])


CYCLEGAN = Experiment(
    name="cyclegan", chapter="06_cyclegan", profiles=CYCLEGAN_PROFILES, model=_cyclegan_model,
    network=ResnetGenerator, weights="G", reverse="F", build=_cyclegan_build, dataset=_cyclegan_dataset,
    inputs=lambda item: item["A"], translator=_translate_tanh, apply=_apply_tiled)


# ----------------------------------------------------------------------------------------------
# SRCNN (chapter 3)
# ----------------------------------------------------------------------------------------------

#: Chapter 3's sizes. ``size``: the training patch (33, the paper's), ``scale``: the upscaling factor;
#: ``patches``: how many patches are cut from the photos; ``n1``/``n2``: the 9-5-5 network's widths;
#: ``residual``/``init_std``: chapter 3's skip connection and default initialisation (cpu) or the
#: paper's network (gpu, full); ``loss``: a name of :data:`i2icourse.losses.LOSSES`; ``lr_drop_at``:
#: the step from which the learning rate is divided by 10 (None: never).
SRCNN_PROFILES = {
    "smoke": dict(size=33, scale=4, patches=64, n1=8, n2=4, residual=True, init_std=None, loss="l2", batch=8,
                  steps=4, eval_every=2, lr=1e-3, lr_drop_at=None),
    "cpu": dict(size=33, scale=4, patches=64_000, n1=64, n2=32, residual=True, init_std=None, loss="l2", batch=32,
                steps=2000, eval_every=250, lr=1e-3, lr_drop_at=1600),
    "gpu": dict(size=33, scale=4, patches=200_000, n1=64, n2=32, residual=False, init_std=1e-3, loss="l2",
                batch=128, steps=8000, eval_every=2000, lr=1e-3, lr_drop_at=6400),
    "full": dict(size=33, scale=4, patches=1_000_000, n1=64, n2=32, residual=False, init_std=1e-3, loss="l2",
                 batch=128, steps=150_000, eval_every=5000, lr=1e-3, lr_drop_at=120_000),
}


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
    name="srcnn", chapter="03_srcnn", profiles=SRCNN_PROFILES, model=_srcnn_model,
    network=SRCNN, weights="net", reverse=None, build=_srcnn_build, dataset=_srcnn_dataset,
    inputs=lambda item: item[0], translator=_translate_y, apply=_srcnn_apply)


#: The experiments by name, for ``python -m i2icourse train NAME``.
EXPERIMENTS: dict[str, Experiment] = {e.name: e for e in (PIX2PIX, CYCLEGAN, SRCNN_EXPERIMENT)}
