"""The shipped models (i2icourse.pretrained): the manifest against the files, the SRCNN's metrics, refusals, CLI."""
import json
import shlex
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from i2icourse import cli, experiments, images as image_io, pretrained
from i2icourse.data.photos import skimage_photos

REPO = Path(__file__).resolve().parents[1]
SHARED = Path("/work/shared/data") if Path("/work/shared/data").is_dir() else REPO.parent / "shared" / "data"
needs_set5 = pytest.mark.skipif(not (SHARED / "sr_benchmarks" / "Set5").is_dir(),
                                reason=f"Set5 is not available offline (no data mirror at {SHARED})")
SRCNN = "srcnn-x4"
#: How far a re-measured PSNR (dB) / SSIM may be from the manifest's: rounding to 4 digits and the
#: BLAS's summation order differ between machines.
PSNR_TOLERANCE, SSIM_TOLERANCE = 0.01, 0.0005


@pytest.fixture
def weights(tmp_path, monkeypatch):
    """A copy of the shipped weights folder, used by the package (and the CLI) instead of the real one."""
    folder = tmp_path / "weights"
    shutil.copytree(pretrained.WEIGHTS, folder)
    monkeypatch.setattr(pretrained, "WEIGHTS", folder)
    return folder


def test_the_manifest_matches_the_files_and_the_settings_build_the_generator():
    entries = pretrained.available()
    assert SRCNN in [e["name"] for e in entries]
    shipped = sorted(p.stem for p in pretrained.WEIGHTS.glob("*.safetensors"))
    assert shipped == sorted(e["name"] for e in entries)
    for item in entries:
        path = pretrained.weights_file(item["name"])
        assert pretrained.sha256(path) == item["sha256"]
        state = load_file(path)
        assert {str(v.dtype).removeprefix("torch.") for v in state.values()} == {item["dtype"]}
        net = experiments.generator(item["settings"])
        assert isinstance(net, experiments.EXPERIMENTS[item["experiment"]].network)
        expected = {k: tuple(v.shape) for k, v in net.state_dict().items()}
        assert {k: tuple(v.shape) for k, v in state.items()} == expected
        for key in ("chapter", "data", "steps", "seed", "command", "commit", "date", "machine", "train_seconds",
                    "metrics"):
            assert item[key] is not None, key


def test_the_manifest_command_is_one_the_cli_parses_and_it_builds_the_shipped_settings():
    for item in pretrained.available():
        words = shlex.split(item["command"])
        assert words[:3] == ["python", "-m", "i2icourse"]
        args = cli._parser().parse_args(words[3:])
        assert args.command == "train" and args.experiment == item["experiment"]
        P = experiments.configure(experiments.EXPERIMENTS[args.experiment], args.profile, args.set)
        assert P["steps"] == item["steps"]
        assert {k: P[k] for k in item["settings"]} == item["settings"]


def test_load_gives_an_eval_model_with_the_stored_weights():
    net = pretrained.load(SRCNN)
    assert not net.training
    stored = load_file(pretrained.weights_file(SRCNN))
    assert all(torch.equal(v, stored[k].float()) for k, v in net.state_dict().items())


@needs_set5
def test_the_shipped_srcnn_reproduces_its_set5_metrics_and_beats_bicubic(monkeypatch):
    monkeypatch.setenv("I2I_DATA_MIRROR", str(SHARED))
    item = pretrained.entry(SRCNN)
    measured = pretrained.sr_metrics(pretrained.load(SRCNN), item["settings"]["scale"], {"Set5": "Set5"})["Set5"]
    recorded = item["metrics"]["Set5"]
    assert measured["PSNR"] == pytest.approx(recorded["PSNR"], abs=PSNR_TOLERANCE)
    assert measured["SSIM"] == pytest.approx(recorded["SSIM"], abs=SSIM_TOLERANCE)
    assert measured["bicubic PSNR"] == pytest.approx(recorded["bicubic PSNR"], abs=PSNR_TOLERANCE)
    assert measured["PSNR"] > measured["bicubic PSNR"]


def test_a_corrupted_or_truncated_file_and_a_wrong_checksum_are_refused(weights):
    path = pretrained.weights_file(SRCNN, weights)
    original = path.read_bytes()
    path.write_bytes(original[:-100])                                   # cut short
    with pytest.raises(pretrained.PretrainedError, match=f"{path.name}.*sha256"):
        pretrained.load(SRCNN, folder=weights)
    flipped = bytearray(original)
    flipped[len(flipped) // 2] ^= 0xFF                                  # one byte changed
    path.write_bytes(bytes(flipped))
    with pytest.raises(pretrained.PretrainedError, match="damaged or was changed"):
        pretrained.load(SRCNN, folder=weights)
    path.write_bytes(original)
    manifest = json.loads((weights / pretrained.MANIFEST).read_text())
    manifest["models"][0]["sha256"] = "0" * 64                           # the manifest disagrees
    (weights / pretrained.MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(pretrained.PretrainedError, match=str(path.name)):
        pretrained.load(manifest["models"][0]["name"], folder=weights)
    path.unlink()
    with pytest.raises(pretrained.PretrainedError, match="missing"):
        pretrained.load(manifest["models"][0]["name"], folder=weights)


def test_an_unknown_name_is_refused_with_the_known_ones():
    with pytest.raises(pretrained.PretrainedError, match=f"no shipped model 'nope'; known: .*{SRCNN}"):
        pretrained.load("nope")


def test_cli_lists_the_shipped_models_with_their_metrics(capsys):
    assert cli.main(["pretrained"]) == 0
    out = capsys.readouterr().out
    assert SRCNN in out and "Set5" in out and "bicubic" in out


def test_apply_pretrained_upscales_a_photo(tmp_path, capsys):
    name, photo = next(iter(skimage_photos(["astronaut"]).items()))
    small = image_io.resize(photo, size=(40, 48))
    source = image_io.save_image(small, tmp_path / f"{name}.png")
    assert cli.main(["apply", "--pretrained", SRCNN, str(source), "--out", str(tmp_path / "out")]) == 0
    result = image_io.load_image(tmp_path / "out" / f"{name}_out.png")
    scale = pretrained.entry(SRCNN)["settings"]["scale"]
    assert result.shape == (3, 40 * scale, 48 * scale)
    assert cli.main(["apply", "--pretrained", "nope", str(source), "--out", str(tmp_path / "out2")]) == 1
    assert "no shipped model 'nope'" in capsys.readouterr().err


def test_apply_pretrained_refuses_a_tampered_file_in_one_line(weights, tmp_path, capsys):
    path = pretrained.weights_file(SRCNN, weights)
    path.write_bytes(path.read_bytes()[:-8])
    source = image_io.save_image(torch.rand(3, 20, 20), tmp_path / "x.png")
    assert cli.main(["apply", "--pretrained", SRCNN, str(source), "--out", str(tmp_path / "out")]) == 1
    error = capsys.readouterr().err
    assert path.name in error and len(error.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_train_init_with_other_settings_is_refused_in_one_line(tmp_path, capsys):
    photos = tmp_path / "photos"
    for i, x in enumerate(skimage_photos(["astronaut", "coffee"]).values()):
        image_io.save_image(image_io.resize(x, size=(96, 96)), photos / f"{i}.png")
    n1 = pretrained.entry(SRCNN)["settings"]["model"]["n1"]
    code = cli.main(["train", "srcnn", "--data", str(photos), "--profile", "smoke", "--set", f"n1={n1 // 2}",
                     "--steps", "1", "--init", SRCNN, "--checkpoint", str(tmp_path / "c.pt")])
    error = capsys.readouterr().err
    assert code == 1 and "settings differ" in error and "n1" in error and len(error.strip().splitlines()) == 1
    assert not (tmp_path / "c.pt").exists()


def test_train_init_starts_from_the_shipped_weights(tmp_path):
    item = pretrained.entry(SRCNN)
    photos = tmp_path / "photos"
    for i, x in enumerate(skimage_photos(["astronaut", "coffee"]).values()):
        image_io.save_image(image_io.resize(x, size=(96, 96)), photos / f"{i}.png")
    changes = [f"{k}={item['settings']['model'][k]!r}" for k in ("residual", "init_std")]
    checkpoint = tmp_path / "c.pt"
    assert cli.main(["train", "srcnn", "--data", str(photos), "--profile", "smoke", *sum((["--set", c] for c in changes), []),
                     "--set", "lr=0.0", "--steps", "1", "--init", SRCNN, "--checkpoint", str(checkpoint)]) == 0
    P, objects = cli.recorded_settings(checkpoint)
    assert P["init"] == SRCNN
    stored = pretrained.load(SRCNN).state_dict()
    assert all(torch.allclose(objects["net"][k].float(), v) for k, v in stored.items())
