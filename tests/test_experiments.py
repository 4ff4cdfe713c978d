"""One definition per experiment: the chapters' settings cells and ``python -m i2icourse train`` agree.

Each chapter's settings cell (``P = runtime.settings(...)``) is run under each of the four profiles
and compared with its experiment's ``profiles``; then ``train`` is run with each profile (its
``fit`` replaced by a recorder) and the recipe it builds is compared with the one the chapter's
training cell builds from its ``P``: the same networks, optimisers and loss weights.
"""
from __future__ import annotations

import ast
import json
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from i2icourse import cli, experiments, images as image_io, runtime, train
from i2icourse.data.paired import write_pairs
from i2icourse.recipes.pix2pix import Pix2Pix

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"

#: Each experiment: its chapter's notebook and its name in :mod:`i2icourse.experiments`.
CHAPTERS = {"ssim-maps": ("01_ssim_quality_maps", "SSIM_MAPS"), "autoencoder": ("02_msssim_autoencoders", "AUTOENCODER"),
            "srcnn": ("03_srcnn", "SRCNN_EXPERIMENT"), "pix2pix": ("04_pix2pix", "PIX2PIX"),
            "kl-pix2pix": ("05_kl_pix2pix", "KL_PIX2PIX"), "cyclegan": ("06_cyclegan", "CYCLEGAN")}


def settings_cell(chapter: str) -> str:
    """The source of the chapter's settings cell, the code cell that calls ``runtime.settings``."""
    cells = json.loads((NOTEBOOKS / f"{chapter}.ipynb").read_text(encoding="utf-8"))["cells"]
    (source,) = ["".join(c["source"]) for c in cells if c["cell_type"] == "code" and "runtime.settings(" in "".join(c["source"])]
    return source


def chapter_settings(chapter: str, profile: str, monkeypatch) -> SimpleNamespace:
    """The chapter's ``P`` in ``profile``: the cell's imports and its ``P = ...`` statement, run as the
    notebook runs them (the cell's other lines set threads and seeds, which a test must not)."""
    monkeypatch.setenv("I2I_PROFILE", profile)
    monkeypatch.delenv("I2I_SETTINGS", raising=False)
    source = settings_cell(chapter)
    names = {"runtime": runtime, "experiments": experiments}
    for node in ast.parse(source).body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            exec(ast.get_source_segment(source, node), names)
        elif isinstance(node, ast.Assign) and [getattr(t, "id", None) for t in node.targets] == ["P"]:
            return eval(ast.get_source_segment(source, node.value), names)
    raise AssertionError(f"{chapter}: the settings cell assigns no P")


@pytest.mark.parametrize("profile", runtime.PROFILES)
@pytest.mark.parametrize("name", sorted(CHAPTERS))
def test_the_chapter_trains_at_its_experiments_settings(name, profile, monkeypatch):
    chapter, variable = CHAPTERS[name]
    E = experiments.EXPERIMENTS[name]
    assert getattr(experiments, variable) is E and E.chapter == chapter
    # the cell reads the experiment's settings rather than repeating them, in every profile
    assert f'**experiments.{variable}.profiles["{profile}"]' in settings_cell(chapter)
    P = vars(chapter_settings(chapter, profile, monkeypatch))
    assert P["profile"] == profile
    assert {key: P.get(key, "(missing)") for key in E.profiles[profile]} == dict(E.profiles[profile])
    # what the command line adds is not something the chapter sets otherwise
    assert not set(E.options[profile]) & set(P), f"{chapter} sets a command-line option itself"
    assert {k: v for k, v in experiments.configure(E, profile).items() if k in E.profiles[profile]} == dict(E.profiles[profile])
    if name == "ssim-maps":  # the GAN's sizes sit in the chapter's list of networks, read from the experiment too
        assert P["train"]["gan"] == experiments.SSIM_MAPS_GAN[profile]
        assert f'experiments.SSIM_MAPS_GAN["{profile}"]' in settings_cell(chapter)


def test_a_setting_in_both_profiles_and_options_is_refused():
    with pytest.raises(ValueError, match=r"\['size'\] set in both"):
        experiments.Experiment(**{**vars(experiments.PIX2PIX), "options": {p: {"size": 1} for p in runtime.PROFILES}})


def test_settings_changes_apply_on_top_of_the_profile():
    P = experiments.configure(experiments.CYCLEGAN, "cpu", ["steps=7", "lambda_idt=0.5"])
    assert (P["steps"], P["lambda_idt"], P["ngf"]) == (7, 0.5, experiments.CYCLEGAN_PROFILES["cpu"]["ngf"])
    with pytest.raises(ValueError, match="'width' is not a setting here"):
        experiments.configure(experiments.CYCLEGAN, "cpu", ["width=3"])


def test_the_ssim_map_gan_records_its_patch_as_the_size_apply_tiles_with():
    P = experiments.configure(experiments.SSIM_MAPS, "cpu", ["patch=128"])
    assert P["size"] == P["patch"] == 128 and "size" not in experiments.SSIM_MAPS_PROFILES["cpu"]
    with pytest.raises(ValueError, match="'size' is not a setting here"):
        experiments.configure(experiments.SSIM_MAPS, "cpu", ["size=128"])
    with pytest.raises(ValueError, match="not a multiple of 2\\*\\*depth"):
        experiments.configure(experiments.SSIM_MAPS, "cpu", ["patch=96"])


# ----------------------------------------------------------------------------------------------
# `train` builds what the chapter builds
# ----------------------------------------------------------------------------------------------

def chapter_recipe(name: str, P: SimpleNamespace):
    """The recipe of the chapter's main run, built as its training cell builds it from ``P``."""
    if name == "pix2pix":    # chapter 4, train_pix2pix("L1_seed0")
        return experiments.pix2pix(P.depth, P.ngf, P.ndf, in_channels=3, field=70, skip=True, upsample="transpose",
                                   rec="l1", lambda_rec=100.0, steps=P.steps)
    if name == "kl-pix2pix":  # chapter 5, train_kl(aug=False, beta=0.2, seed): the "base + KL" arm
        from i2icourse import losses
        return experiments.pix2pix(P.depth, P.ngf, P.ndf, steps=P.steps, extra_loss=losses.kl_loss, extra_weight=0.2,
                                   extra_name="G_KL")
    if name == "ssim-maps":   # chapter 1, make_trainer("gan", P.train["gan"])
        from i2icourse.models import ssim_map_nets
        from i2icourse.recipes import ssim_maps
        return ssim_maps.map_gan(ssim_map_nets.build("gan", **P.train["gan"]), n_layers=P.d_layers, ndf=P.ndf)
    if name == "autoencoder":  # chapter 2, the "MS-SSIM" run of its training cell
        from i2icourse import losses
        from i2icourse.models.autoencoder import ConvAutoencoder
        from i2icourse.recipes.autoencoders import Reconstruction
        net = ConvAutoencoder(size=96, bottleneck=P.bottleneck, channels=P.channels)
        return Reconstruction(net, losses.get_loss("log_ms_ssim"), lr=P.lr)
    if name == "cyclegan":    # chapter 6, train_cyclegan("l1_seed0")
        return experiments.cyclegan(P.ngf, P.blocks, P.ndf, cycle="l1", lambda_cyc=10.0, lambda_idt=0.0, pool=50,
                                    steps=P.steps)
    return experiments.srcnn(residual=P.residual, init_std=P.init_std, loss="l2", lr=P.lr,  # chapter 3, "L2"
                             lr_drop_at=P.lr_drop_at)


def plain_attributes(recipe) -> dict:
    """The recipe's loss weights, modes and similar plain values (what its networks' shapes do not show)."""
    return {k: v for k, v in vars(recipe).items() if isinstance(v, (bool, int, float, str, type(None)))}


def tiny_data(name: str, folder: Path) -> Path:
    g = torch.Generator().manual_seed(0)
    images = [torch.rand(3, 40, 44, generator=g) for _ in range(4)]
    if name == "cyclegan":
        for i, x in enumerate(images):
            image_io.save_image(x, folder / ("trainA" if i % 2 else "trainB") / f"{i}.png")
    elif name == "srcnn":
        for i, x in enumerate(images):
            image_io.save_image(x, folder / f"{i}.png")
    elif name in ("ssim-maps", "autoencoder"):  # photos at least as large as the profiles' windows and crops
        side = 320 if name == "ssim-maps" else 192
        for i in range(2):
            image_io.save_image(torch.rand(3, side, side, generator=g), folder / f"{i}.png")
    else:
        write_pairs(list(zip(images[:2], images[2:])), folder)
    return folder


@pytest.mark.parametrize("profile", runtime.PROFILES)
@pytest.mark.parametrize("name", sorted(CHAPTERS))
def test_train_builds_the_networks_of_the_chapters_settings(name, profile, tmp_path, monkeypatch):
    chapter, _ = CHAPTERS[name]
    P = chapter_settings(chapter, profile, monkeypatch)
    monkeypatch.setenv("I2I_CHECKPOINTS", str(tmp_path / "checkpoints"))
    monkeypatch.setenv("I2I_DATA", str(tmp_path / "cache"))  # ssim-maps caches its pairs there
    calls = []
    monkeypatch.setattr(train, "fit", lambda step, dataset, **kw: calls.append((step.__self__, kw)))
    # srcnn's patches are how many windows the data yields, not the network: few of them keep it quick
    small = ["--set", "patches=64"] if name == "srcnn" else []
    assert cli.main(["train", name, "--data", str(tiny_data(name, tmp_path / "data")), "--profile", profile,
                     "--device", "cpu", *small]) == 0
    (recipe, fit), = calls
    assert (fit["steps"], fit["settings"]["profile"]) == (P.steps, profile)
    assert fit["batch_size"] == getattr(P, "batch", 1)       # chapter 6 trains with batches of 1
    runtime.seed_everything(0)
    theirs = chapter_recipe(name, P)
    assert train.run_record(fit["objects"])["objects"] == train.run_record(theirs.objects())["objects"]
    assert plain_attributes(recipe) == plain_attributes(theirs)


@pytest.mark.parametrize("profile", runtime.PROFILES)
def test_chapter_6s_paired_baseline_is_chapter_4s_recipe_on_cyclegans_networks(profile, monkeypatch):
    """The upper bound differs from the CycleGAN row only in its supervision: the same generator, the
    same PatchGAN (seeing input and output), the same least-squares loss, the same settings."""
    P = chapter_settings("06_cyclegan", profile, monkeypatch)
    runtime.seed_everything(0)
    paired = experiments.paired_baseline(P.ngf, P.blocks, P.ndf, steps=P.steps)
    runtime.seed_everything(0)
    cycle = experiments.cyclegan(P.ngf, P.blocks, P.ndf, steps=P.steps)
    assert isinstance(paired, Pix2Pix) and paired.gan_mode == cycle.gan_mode == "lsgan"
    generators = train.run_record({"G": paired.G})["objects"], train.run_record({"G": cycle.G})["objects"]
    assert generators[0] == generators[1]
    assert paired.G.state_dict().keys() == cycle.G.state_dict().keys()
    conv = next(m for m in paired.D.modules() if isinstance(m, torch.nn.Conv2d))
    assert conv.in_channels == 6 and any(isinstance(m, torch.nn.InstanceNorm2d) for m in paired.D.modules())
    # and the chapter trains its upper bound with it, not with networks of its own
    cells = json.loads((NOTEBOOKS / "06_cyclegan.ipynb").read_text(encoding="utf-8"))["cells"]
    (train_paired,) = ["".join(c["source"]) for c in cells if "def train_paired" in "".join(c["source"])]
    assert "experiments.paired_baseline(P.ngf, P.blocks, P.ndf" in train_paired and "Pix2Pix(" not in train_paired
