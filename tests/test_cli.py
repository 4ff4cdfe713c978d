"""The command line (``python -m i2icourse``): train each experiment on tiny folders, resume, apply.

Everything runs in-process through ``cli.main`` at the smoke profile's sizes, except one ``--help``
in a subprocess, which proves that ``python -m i2icourse`` is wired up.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from PIL import Image

from i2icourse import cli, experiments, images as image_io, train
from i2icourse.data.paired import write_pairs
from i2icourse.models.unet import UNetGenerator

ROOT = Path(__file__).resolve().parents[1]

SMOKE = ["--profile", "smoke", "--device", "cpu"]


@pytest.fixture(autouse=True)
def checkpoints(tmp_path, monkeypatch) -> Path:
    """Default checkpoints go into the test's own folder."""
    monkeypatch.setenv("I2I_CHECKPOINTS", str(tmp_path / "checkpoints"))
    return tmp_path / "checkpoints"


def random_images(n: int, h: int, w: int, seed: int) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return [torch.rand(3, h, w, generator=g) for _ in range(n)]


def photo(path: Path, h: int = 50, w: int = 70) -> Path:
    """A photo of another size than the training crops."""
    return image_io.save_image(random_images(1, h, w, seed=9)[0], path)


def apply(capsys, *args: str) -> str:
    assert cli.main(["apply", *args, "--device", "cpu"]) == 0
    return capsys.readouterr().out


def test_help_lists_the_commands():
    result = subprocess.run([sys.executable, "-m", "i2icourse", "--help"], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    assert "apply" in result.stdout and "train" in result.stdout


def test_pix2pix_trains_resumes_and_applies_at_any_size(tmp_path, checkpoints, capsys):
    data = tmp_path / "pairs"
    write_pairs(list(zip(random_images(4, 40, 40, 0), random_images(4, 40, 40, 1))), data / "train")
    command = ["train", "pix2pix", "--data", str(data), *SMOKE]  # smoke: 64 px crops, evaluations every 3 steps
    assert cli.main([*command, "--steps", "4"]) == 0
    (checkpoint,) = (checkpoints / "smoke" / "cli").glob("pix2pix_pairs_*.pt")  # the folder's name and digest
    samples = checkpoint.with_name(checkpoint.stem + "_samples")
    assert sorted(p.name for p in samples.iterdir()) == ["step0000003.png", "step0000004.png"]
    grid = image_io.load_image(samples / "step0000004.png")
    assert grid.shape == (3, 2 * 64 + 3 * 2, 4 * 64 + 5 * 2)  # inputs above outputs, four of each

    for old in samples.iterdir():
        old.unlink()
    assert cli.main([*command, "--steps", "8"]) == 0  # resumes at step 4: evaluates at 6 and 8 only
    assert sorted(p.name for p in samples.iterdir()) == ["step0000006.png", "step0000008.png"]
    state = train.load_checkpoint(checkpoint, {}, restore_rng=False)
    assert state["step"] == 8
    recorded = state["extra"]["record"]["settings"]
    assert (recorded["experiment"], recorded["direction"], recorded["size"]) == ("pix2pix", "AtoB", 64)
    assert recorded["model"] == {"in_channels": 3, "out_channels": 3, "depth": 6, "ngf": 4, "upsample": "transpose"}
    assert recorded["data"] == {"path": str(data.resolve()), "files": experiments.files_digest(data)}
    capsys.readouterr()

    out = apply(capsys, str(checkpoint), str(photo(tmp_path / "phone.jpg")), "--out", str(tmp_path / "out"))
    assert "phone_out.png" in out and "70x50 -> 70x50" in out
    assert image_io.load_image(tmp_path / "out" / "phone_out.png").shape == (3, 50, 70)


def test_cyclegan_trains_on_unpaired_folders_and_applies_both_generators(tmp_path, capsys):
    data = tmp_path / "h2z"
    for side, seed in (("trainA", 2), ("trainB", 3)):
        for i, x in enumerate(random_images(3, 40, 44, seed)):
            image_io.save_image(x, data / side / f"{i}.png")
    checkpoint = tmp_path / "cyclegan.pt"
    assert cli.main(["train", "cyclegan", "--data", str(data), *SMOKE, "--steps", "2",
                     "--checkpoint", str(checkpoint), "--out", str(tmp_path / "grids")]) == 0
    assert (tmp_path / "grids" / "step0000002.png").is_file()
    image = photo(tmp_path / "horse.png")
    apply(capsys, str(checkpoint), str(image), "--out", str(tmp_path / "G"))
    apply(capsys, str(checkpoint), str(image), "--out", str(tmp_path / "F"), "--reverse")
    g, f = (image_io.load_image(tmp_path / side / "horse_out.png") for side in ("G", "F"))
    assert g.shape == f.shape == (3, 50, 70)
    assert not torch.equal(g, f)  # two different generators


def test_srcnn_trains_on_a_folder_of_photos_and_upscales(tmp_path, capsys):
    for i, x in enumerate(random_images(2, 48, 40, 4)):
        image_io.save_image(x, tmp_path / "photos" / f"{i}.png")
    checkpoint = tmp_path / "srcnn.pt"
    assert cli.main(["train", "srcnn", "--data", str(tmp_path / "photos"), *SMOKE, "--steps", "2",
                     "--checkpoint", str(checkpoint)]) == 0
    out = apply(capsys, str(checkpoint), str(photo(tmp_path / "small.png")), "--out", str(tmp_path / "up"))
    assert "70x50 -> 280x200" in out  # the smoke profile's scale is 4
    assert image_io.load_image(tmp_path / "up" / "small_out.png").shape == (3, 200, 280)


def test_flow_trains_on_a_folder_of_photos_and_upscales_by_sampling(tmp_path, capsys):
    for i, x in enumerate(random_images(2, 48, 40, 4)):
        image_io.save_image(x, tmp_path / "photos" / f"{i}.png")
    checkpoint = tmp_path / "flow.pt"
    assert cli.main(["train", "flow", "--data", str(tmp_path / "photos"), *SMOKE, "--steps", "2",
                     "--checkpoint", str(checkpoint), "--out", str(tmp_path / "grids")]) == 0
    assert (tmp_path / "grids" / "step0000002.png").is_file()
    recorded = train.load_checkpoint(checkpoint, {}, restore_rng=False)["extra"]["record"]["settings"]
    assert (recorded["experiment"], recorded["sample_steps"], recorded["method"]) == ("flow", 2, "euler")
    out = apply(capsys, str(checkpoint), str(photo(tmp_path / "small.png")), "--out", str(tmp_path / "up"))
    assert "70x50 -> 280x200" in out  # chapter 3's x4 super-resolution
    first = image_io.load_image(tmp_path / "up" / "small_out.png")
    assert first.shape == (3, 200, 280)
    apply(capsys, str(checkpoint), str(tmp_path / "small.png"), "--out", str(tmp_path / "up"), "--overwrite")
    assert torch.equal(image_io.load_image(tmp_path / "up" / "small_out.png"), first)  # the sampler's seed is recorded


def test_set_is_checked_as_i2i_settings_is(tmp_path, capsys):
    command = ["train", "srcnn", "--data", str(tmp_path), *SMOKE, "--checkpoint", str(tmp_path / "x.pt")]
    assert cli.main([*command, "--set", "steps='many'"]) == 1
    error = capsys.readouterr().err
    assert "steps='many' is a str, but the profiles set steps to a int" in error
    assert "Traceback" not in error
    assert cli.main([*command, "--set", "width=3"]) == 1
    assert "'width' is not a setting here" in capsys.readouterr().err
    assert not (tmp_path / "x.pt").exists()


def test_apply_refuses_a_checkpoint_it_cannot_rebuild_in_one_line(tmp_path, capsys):
    net = UNetGenerator(depth=5, ngf=4)
    bare = train.save_checkpoint(tmp_path / "notebook.pt", 1, {"G": net})
    image = str(photo(tmp_path / "p.png"))
    assert cli.main(["apply", str(bare), image, "--out", str(tmp_path / "out")]) == 1
    assert "no record of its settings" in capsys.readouterr().err
    chapter = train.save_checkpoint(tmp_path / "chapter.pt", 1, {"G": net},
                                    extra={"record": train.run_record({"G": net}, {"size": 32})})
    assert cli.main(["apply", str(chapter), image, "--out", str(tmp_path / "out")]) == 1
    error = capsys.readouterr().err
    assert "have no experiment, model" in error and len(error.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_apply_reports_a_missing_or_unreadable_input_in_one_line(tmp_path, capsys):
    (tmp_path / "pairs").mkdir()
    write_pairs(list(zip(random_images(2, 32, 32, 5), random_images(2, 32, 32, 6))), tmp_path / "pairs")
    checkpoint = tmp_path / "p.pt"
    assert cli.main(["train", "pix2pix", "--data", str(tmp_path / "pairs"), *SMOKE, "--steps", "1",
                     "--checkpoint", str(checkpoint)]) == 0
    capsys.readouterr()
    (tmp_path / "notes.png").write_text("not an image")
    for bad, message in ((tmp_path / "missing.png", "no such image file"), (tmp_path / "notes.png", "not a readable image")):
        assert cli.main(["apply", str(checkpoint), str(bad), "--out", str(tmp_path / "out")]) == 1
        error = capsys.readouterr().err
        assert message in error and len(error.strip().splitlines()) == 1 and "Traceback" not in error


def test_train_runs_under_torchrun_with_two_processes_and_only_rank_0_writes(tmp_path):
    # `torchrun --nproc_per_node 2 -m i2icourse train ...` on the CPU (gloo): DDP over the two processes.
    data = tmp_path / "pairs"
    write_pairs(list(zip(random_images(4, 40, 40, 0), random_images(4, 40, 40, 1))), data / "train")
    checkpoint = tmp_path / "ckpt" / "p2p.pt"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "I2I_DEVICE": "cpu", "I2I_CHECKPOINTS": str(tmp_path / "c")}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
               "-m", "i2icourse", "train", "pix2pix", "--data", str(data), *SMOKE, "--steps", "4",
               "--checkpoint", str(checkpoint)]
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=180)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("checkpoint: ") == 1 and "2 processes" in done.stdout   # rank 0 alone reports
    assert sorted(p.name for p in checkpoint.parent.iterdir()) == ["p2p.pt", "p2p_samples"]  # no temporaries
    state = train.load_checkpoint(checkpoint, {}, restore_rng=False)
    assert state["step"] == 4 and not any(k.startswith("module.") for k in state["objects"]["G"])


# One definition of each experiment: the command line builds through the same public function that
# the chapter's notebook calls, so the two cannot drift apart.
BUILDERS = {"pix2pix": ("04_pix2pix", "experiments.pix2pix("), "cyclegan": ("06_cyclegan", "experiments.cyclegan("),
            "srcnn": ("03_srcnn", "experiments.srcnn(")}


@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_the_notebook_and_the_command_line_build_an_experiment_through_one_function(name, monkeypatch):
    import json

    chapter, call = BUILDERS[name]
    nb = json.loads((ROOT / "notebooks" / f"{chapter}.ipynb").read_text())
    code = "\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code")
    assert call in code, f"{chapter} does not build its model with {call}...)"
    built = []
    original = getattr(experiments, name)
    monkeypatch.setattr(experiments, name, lambda *a, **k: built.append(k) or original(*a, **k))
    E = experiments.EXPERIMENTS[name]
    recipe, net = E.build(experiments.configure(E, "smoke"), torch.device("cpu"))
    assert len(built) == 1 and net is not None
    # the generator the command line rebuilds for `apply` is the one the builder trained
    fresh = experiments.generator(experiments.configure(E, "smoke"))
    assert [p.shape for p in fresh.parameters()] == [p.shape for p in net.parameters()]


def test_kl_pix2pix_trains_on_pairs_and_applies(tmp_path, capsys):
    data = tmp_path / "labels"
    write_pairs(list(zip(random_images(3, 48, 48, 7), random_images(3, 48, 48, 8))), data)
    checkpoint = tmp_path / "kl.pt"
    assert cli.main(["train", "kl-pix2pix", "--data", str(data), *SMOKE, "--steps", "2",
                     "--checkpoint", str(checkpoint)]) == 0
    state = train.load_checkpoint(checkpoint, {}, restore_rng=False)
    assert state["extra"]["record"]["settings"]["beta"] == 0.2
    out = apply(capsys, str(checkpoint), str(photo(tmp_path / "map.png")), "--out", str(tmp_path / "out"))
    assert "70x50 -> 70x50" in out


def photo_folders(tmp_path: Path) -> tuple[Path, Path]:
    """Two folders of the same name, ``a/photos`` and ``b/photos``, with other photos in each."""
    folders = tmp_path / "a" / "photos", tmp_path / "b" / "photos"
    for seed, folder in enumerate(folders):
        for i, x in enumerate(random_images(2, 48, 40, 10 + seed)):
            image_io.save_image(x, folder / f"{i}.png")
    return folders


def test_two_folders_of_one_name_are_two_runs_and_a_checkpoint_of_other_data_is_refused(tmp_path, checkpoints, capsys):
    a, b = photo_folders(tmp_path)
    for folder in (a, b):
        assert cli.main(["train", "srcnn", "--data", str(folder), *SMOKE, "--steps", "2"]) == 0
        assert "loaded" not in capsys.readouterr().out  # each trained, neither loaded the other's model
    runs = sorted((checkpoints / "smoke" / "cli").glob("srcnn_photos_*.pt"))
    assert len(runs) == 2
    recorded = {train.load_checkpoint(r, {}, restore_rng=False)["extra"]["record"]["settings"]["data"]["path"]
                for r in runs}
    assert recorded == {str(a.resolve()), str(b.resolve())}

    explicit = tmp_path / "mine.pt"
    assert cli.main(["train", "srcnn", "--data", str(a), *SMOKE, "--steps", "2", "--checkpoint", str(explicit)]) == 0
    before = explicit.read_bytes()
    capsys.readouterr()
    assert cli.main(["train", "srcnn", "--data", str(b), *SMOKE, "--steps", "4", "--checkpoint", str(explicit)]) == 1
    error = capsys.readouterr().err
    assert f"trained on {a.resolve()}" in error and f"not on {b.resolve()}" in error
    assert len(error.strip().splitlines()) == 1 and explicit.read_bytes() == before

    image_io.save_image(random_images(1, 48, 40, 20)[0], a / "2.png")  # the same folder with another photo
    assert cli.main(["train", "srcnn", "--data", str(a), *SMOKE, "--steps", "4", "--checkpoint", str(explicit)]) == 1
    assert "trained on" in capsys.readouterr().err


def test_apply_keeps_outputs_of_one_name_apart_and_replaces_only_with_overwrite(tmp_path, capsys):
    a, b = photo_folders(tmp_path)
    checkpoint = tmp_path / "srcnn.pt"
    assert cli.main(["train", "srcnn", "--data", str(a), *SMOKE, "--steps", "1", "--checkpoint", str(checkpoint)]) == 0
    image_io.save_image(random_images(1, 20, 24, 30)[0], a / "0.jpg")        # the same stem as a/0.png
    inputs = [str(a / "0.png"), str(b / "0.png"), str(a / "0.jpg")]
    out = tmp_path / "out"
    apply(capsys, str(checkpoint), *inputs, "--out", str(out))
    written = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.png"))
    assert written == ["a/photos/0_jpg_out.png", "a/photos/0_png_out.png", "b/photos/0_out.png"]
    first = (out / "b" / "photos" / "0_out.png").read_bytes()
    assert (out / "a" / "photos" / "0_png_out.png").read_bytes() != first  # two photos, two outputs

    assert cli.main(["apply", str(checkpoint), *inputs, "--out", str(out), "--device", "cpu"]) == 1
    error = capsys.readouterr().err
    assert "exists already; pass --overwrite" in error and "(and 2 more)" in error
    assert len(error.strip().splitlines()) == 1
    apply(capsys, str(checkpoint), *inputs, "--out", str(out), "--overwrite")
    assert (out / "b" / "photos" / "0_out.png").read_bytes() == first  # replaced by the same result

    assert cli.main(["apply", str(checkpoint), inputs[0], inputs[0], "--out", str(tmp_path / "o2")]) == 1
    assert "given twice" in capsys.readouterr().err
    apply(capsys, str(checkpoint), inputs[1], "--out", str(tmp_path / "single"))   # one folder: no subfolders
    assert (tmp_path / "single" / "0_out.png").is_file()


def _bad_checkpoints(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    """Checkpoints that apply cannot use, each with a piece of the one-line error it must give."""
    P = experiments.configure(experiments.PIX2PIX, "smoke")
    net = UNetGenerator(**P["model"])

    def with_settings(name: str, **changes) -> Path:
        settings = {**P, **changes}
        return train.save_checkpoint(tmp_path / f"{name}.pt", 1, {"G": net},
                                     extra={"record": train.run_record({"G": net}, settings)})

    good = with_settings("good")
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    image = photo(tmp_path / "image.png").rename(tmp_path / "image.pt")
    tensor = tmp_path / "tensor.pt"
    torch.save(torch.zeros(3), tensor)
    no_settings = train.save_checkpoint(tmp_path / "no_settings.pt", 1, {"G": net}, extra={"record": {"x": 1}})
    return {
        "wrong model type": (with_settings("model_type", model="big"), "model='big' is a str, not a dict"),
        "wrong size type": (with_settings("size_type", size="64"), "size='64' is a str, not an integer"),
        "unknown experiment": (with_settings("experiment", experiment="pix3pix"), "unknown experiment 'pix3pix'"),
        "unknown model argument": (with_settings("argument", model={**P["model"], "width": 3}),
                                   "does not build a UNetGenerator"),
        "weights of another shape": (with_settings("shapes", model={**P["model"], "ngf": 8}),
                                     "the weights do not fit the recorded model"),
        "truncated file": (truncated, "corrupted"),
        "an image": (image, "corrupted"),
        "a bare tensor": (tensor, "not a checkpoint of this course"),
        "a record without settings": (no_settings, "record has no settings"),
    }


def test_apply_refuses_every_bad_checkpoint_record_in_one_line(tmp_path, capsys):
    source = str(photo(tmp_path / "p.png"))
    for what, (checkpoint, message) in _bad_checkpoints(tmp_path).items():
        assert cli.main(["apply", str(checkpoint), source, "--out", str(tmp_path / "out")]) == 1, what
        error = capsys.readouterr().err
        assert message in error, (what, error)
        assert len(error.strip().splitlines()) == 1 and "Traceback" not in error, (what, error)
    assert not (tmp_path / "out").exists()


def big_photos(folder: Path, n: int, side: int, seed: int) -> Path:
    """``n`` photos of ``side`` x ``side`` pixels: larger than the ssim-maps and autoencoder windows."""
    for i, x in enumerate(random_images(n, side, side, seed)):
        image_io.save_image(x, folder / f"{i}.png")
    return folder


def test_ssim_maps_trains_on_distorted_photos_and_maps_a_photo_of_any_size(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("I2I_DATA", str(tmp_path / "cache"))      # the pairs' cache
    data = big_photos(tmp_path / "photos", 2, 72, seed=40)
    checkpoint = tmp_path / "maps.pt"
    assert cli.main(["train", "ssim-maps", "--data", str(data), *SMOKE, "--steps", "2",
                     "--checkpoint", str(checkpoint), "--out", str(tmp_path / "grids")]) == 0
    assert list((tmp_path / "cache" / "quality_maps").glob("quality_pairs_*.pt"))   # built once, kept
    grid = image_io.load_image(tmp_path / "grids" / "step0000002.png")
    assert grid.shape == (3, 2 * 32 + 3 * 2, 4 * 32 + 5 * 2)       # photo crops above their predicted maps
    recorded = train.load_checkpoint(checkpoint, {}, restore_rng=False)["extra"]["record"]["settings"]
    assert (recorded["experiment"], recorded["patch"], recorded["size"]) == ("ssim-maps", 32, 32)
    assert recorded["model"] == {"in_channels": 3, "out_channels": 1, "depth": 5, "ngf": 4}
    out = apply(capsys, str(checkpoint), str(photo(tmp_path / "street.jpg")), "--out", str(tmp_path / "maps"))
    assert "70x50 -> 70x50" in out
    with Image.open(tmp_path / "maps" / "street_out.png") as saved:
        assert (saved.mode, saved.size) == ("L", (70, 50))          # one map value per pixel: a grey image


def test_autoencoder_trains_on_grey_crops_and_reconstructs_a_photo_tile_by_tile(tmp_path, capsys):
    data = big_photos(tmp_path / "photos", 2, 200, seed=41)         # halved (photo_scale 0.5): 100 px
    checkpoint = tmp_path / "ae.pt"
    assert cli.main(["train", "autoencoder", "--data", str(data), *SMOKE, "--steps", "3",
                     "--checkpoint", str(checkpoint), "--out", str(tmp_path / "grids")]) == 0
    grid = image_io.load_image(tmp_path / "grids" / "step0000003.png")
    assert grid.shape == (3, 2 * 96 + 3 * 2, 4 * 96 + 5 * 2)
    recorded = train.load_checkpoint(checkpoint, {}, restore_rng=False)["extra"]["record"]["settings"]
    assert (recorded["loss"], recorded["bottleneck"], recorded["size"]) == ("log_ms_ssim", 16, 96)
    image = photo(tmp_path / "big.png", h=150, w=210)                 # more than one 96 px tile each way
    out = apply(capsys, str(checkpoint), str(image), "--out", str(tmp_path / "rec"))
    assert "210x150 -> 210x150" in out
    with Image.open(tmp_path / "rec" / "big_out.png") as saved:
        assert (saved.mode, saved.size) == ("L", (210, 150))        # the grey reconstruction
    # the network takes 96 x 96 inputs only: another tile is refused in one line
    assert cli.main(["apply", str(checkpoint), str(image), "--out", str(tmp_path / "rec2"), "--tile", "64"]) == 1
    error = capsys.readouterr().err
    assert "takes 96x96 inputs only" in error and len(error.strip().splitlines()) == 1
