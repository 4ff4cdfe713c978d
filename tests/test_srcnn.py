"""Chapter 3: SRCNN, the SR patch dataset, the SR evaluation protocol and the chapter's exercise checks."""
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from i2icourse import images as image_io, sr_eval
from i2icourse.checks import CHECKS, check, passes
from i2icourse.data.sr import SRPatches, degrade, load_photos, sr_pair, y_channel
from i2icourse.models.srcnn import SRCNN

REPO = Path(__file__).resolve().parents[1]
SHARED = Path("/work/shared/data") if Path("/work/shared/data").is_dir() else REPO.parent / "shared" / "data"
needs_mirror = pytest.mark.skipif(not (SHARED / "sr_benchmarks" / "Set5").is_dir(),
                                  reason=f"no shared data mirror with Set5 at {SHARED}")


@pytest.fixture
def mirror(monkeypatch):
    monkeypatch.setenv("I2I_DATA_MIRROR", str(SHARED))
    return SHARED


def photo(h=70, w=90, seed=0):
    """A smooth random colour image (a photo stand-in) of shape (3, h, w)."""
    g = torch.Generator().manual_seed(seed)
    small = torch.rand(1, 3, h // 6 + 2, w // 6 + 2, generator=g)
    return image_io.resize(small, size=(h, w))[0]


# ----------------------------------------------------------------------------------------------
# The model
# ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("residual", [False, True])
@pytest.mark.parametrize("hw", [(33, 33), (40, 57), (17, 21)])
def test_srcnn_output_size_equals_input_size(residual, hw):
    net = SRCNN(residual=residual)
    x = torch.rand(2, 1, *hw)
    assert net(x).shape == x.shape


def test_srcnn_is_the_papers_9_5_5_network_with_tiny_init():
    net = SRCNN()
    shapes = [tuple(c.weight.shape) for c in (net.patch_extraction, net.nonlinear_mapping, net.reconstruction)]
    assert shapes == [(64, 1, 9, 9), (32, 64, 5, 5), (1, 32, 5, 5)]
    assert net.receptive_field == 17
    w = torch.cat([p.detach().flatten() for n, p in net.named_parameters() if n.endswith("weight")])
    assert abs(float(w.std()) - 1e-3) < 1e-4 and abs(float(w.mean())) < 1e-4
    assert all(float(p.detach().abs().max()) == 0 for n, p in net.named_parameters() if n.endswith("bias"))
    with pytest.raises(ValueError, match="odd"):
        SRCNN(f2=4)


def test_residual_srcnn_starts_at_its_input():
    x = torch.rand(1, 1, 33, 33)
    with torch.no_grad():
        out, plain = SRCNN(residual=True)(x), SRCNN(residual=False)(x)
    assert float((out - x).abs().max()) < 1e-4           # tiny weights: the bicubic input passes through
    assert float(plain.abs().max()) < 1e-4   # the paper's network starts at ~0


# ----------------------------------------------------------------------------------------------
# Data: pairs and patches
# ----------------------------------------------------------------------------------------------

def test_sr_pair_crops_to_multiple_and_keeps_size():
    x = photo(70, 90)
    y_in, y_hr = sr_pair(x, 4)
    assert y_in.shape == y_hr.shape == (1, 68, 88)
    assert torch.allclose(y_hr, image_io.rgb_to_y(x[:, :68, :88]))
    assert y_hr.min() >= 16 / 255 - 1e-6 and y_hr.max() <= 235 / 255 + 1e-6
    # the input is the bicubic round trip of an 8-bit LR image
    lr = degrade(x[:, :68, :88], 4)
    assert lr.shape == (3, 17, 22) and torch.allclose(lr * 255, (lr * 255).round(), atol=1e-4)
    assert torch.allclose(y_in, image_io.rgb_to_y(image_io.resize(lr, size=(68, 88))), atol=1e-6)
    with pytest.raises(image_io.ImageError, match="multiple"):
        degrade(x, 4)


def test_grey_images_count_as_r_equals_g_equals_b():
    g = photo(40, 40)[:1]
    assert torch.allclose(y_channel(g), image_io.rgb_to_y(g.expand(3, -1, -1)))
    assert torch.allclose(y_channel(g), 16 / 255 + g * 219 / 255, atol=1e-6)


def test_patches_align_with_their_source_pair():
    photos = {"a": photo(70, 90, 1), "b": photo(50, 45, 2)}
    ds = SRPatches(photos, scale=4, patch=33, patches=40, seed=3)
    assert len(ds) == 40 and len(ds.names) == 2
    for k in range(len(ds)):
        x, y = ds[k]["A"], ds[k]["B"]
        assert x.shape == y.shape == (1, 33, 33)
        i, top, left = (int(v) for v in ds.boxes[k])
        y_in, y_hr = sr_pair(photos[ds.names[i]], 4)
        assert torch.equal(x, y_in[:, top:top + 33, left:left + 33])
        assert torch.equal(y, y_hr[:, top:top + 33, left:left + 33])
    # the target is the sharp one: the input is a blurred version of the same content
    x, y = ds[0]["A"], ds[0]["B"]
    assert float((x - y).abs().mean()) < 0.05 and float(x.std()) <= float(y.std()) + 1e-3
    # fixed by the seed
    again = SRPatches(photos, scale=4, patch=33, patches=40, seed=3)
    assert torch.equal(again.boxes, ds.boxes)


def test_patches_skip_tiny_photos_and_fail_without_any():
    ds = SRPatches({"big": photo(40, 40), "tiny": photo(20, 20)}, patches=5)
    assert ds.names == ["big"]
    with pytest.raises(image_io.ImageError, match="33x33"):
        SRPatches({"tiny": photo(20, 20)}, patches=5)


def test_load_photos_from_folder_tensor_and_list(tmp_path):
    a, b = photo(40, 50, 1), photo(36, 36, 2)
    image_io.save_image(a, tmp_path / "a.png")
    image_io.save_image(b, tmp_path / "b.png")
    from_folder = load_photos(tmp_path)
    assert sorted(from_folder) == ["a", "b"] and from_folder["a"].shape == (3, 40, 50)
    assert list(load_photos(a)) == ["image"]
    assert len(load_photos(torch.stack([b, b]))) == 2
    both = load_photos([tmp_path, {"a": a}])
    assert len(both) == 3      # a name collision is kept, not overwritten


# ----------------------------------------------------------------------------------------------
# Evaluation
# ----------------------------------------------------------------------------------------------

def independent_bicubic_psnr(path: Path, scale: int) -> float:
    """The SR bicubic baseline with PIL and NumPy only: 8-bit LR and upscaled images, MATLAB Y, shaved."""
    with Image.open(path) as im:
        im = im.convert("RGB")
        w, h = im.size
        hr = im.crop((0, 0, w - w % scale, h - h % scale))
    lr = hr.resize((hr.width // scale, hr.height // scale), Image.BICUBIC)
    up = lr.resize(hr.size, Image.BICUBIC)

    def y(img):
        a = np.asarray(img).astype(np.float64)
        return 16 + (65.481 * a[..., 0] + 128.553 * a[..., 1] + 24.966 * a[..., 2]) / 255

    d = (y(up) - y(hr))[scale:-scale, scale:-scale]
    return 10 * math.log10(255 ** 2 / np.mean(d ** 2))


@needs_mirror
def test_bicubic_set5_matches_an_independent_computation(mirror):
    files = sorted((SHARED / "sr_benchmarks" / "Set5").glob("*.png"))
    want = {f.stem: independent_bicubic_psnr(f, 4) for f in files}
    table = sr_eval.evaluate({"bicubic": sr_eval.bicubic}, {"Set5": sr_eval.load_set("Set5")}, scale=4)
    got = dict(zip(table.image, table.PSNR))
    assert set(got) == set(want)
    assert abs(np.mean(list(got.values())) - np.mean(list(want.values()))) < 0.05
    for name in want:
        assert abs(got[name] - want[name]) < 0.1, name
    # and the documented numbers: Dong et al. 28.42, Snell et al. 28.44 dB
    assert abs(table.PSNR.mean() - 28.43) < 0.05
    means = sr_eval.per_set(table)
    assert list(means.columns) == ["PSNR", "SSIM"] and 0.80 < means.loc[("Set5", "bicubic"), "SSIM"] < 0.82


def test_identical_images_give_infinite_psnr():
    images = {"a": photo(48, 60, 1), "b": photo(40, 40, 2)}
    pairs = {k: sr_pair(v, 4) for k, v in images.items()}
    lookup = {tuple(p[0].shape): p[1] for p in pairs.values()}
    oracle = lambda y_in: lookup[tuple(y_in.shape[1:])].unsqueeze(0)   # returns the HR Y itself
    table = sr_eval.evaluate({"oracle": oracle, "bicubic": sr_eval.bicubic}, {"toy": images}, scale=4)
    oracle_rows = table[table.method == "oracle"]
    assert np.isinf(oracle_rows.PSNR).all() and (oracle_rows.PSNR > 0).all()
    assert np.allclose(oracle_rows.SSIM, 1.0)
    means = sr_eval.per_set(table)
    assert math.isinf(means.loc[("toy", "oracle"), "PSNR"])
    assert math.isfinite(means.loc[("toy", "bicubic"), "PSNR"])


def test_evaluation_runs_a_model_and_restores_its_mode():
    net = SRCNN(residual=True)
    net.train()
    table = sr_eval.evaluate(sr_eval.upscaler(net), {"toy": {"a": photo(48, 60)}}, scale=3)
    assert net.training
    bic = sr_eval.evaluate(sr_eval.bicubic, {"toy": {"a": photo(48, 60)}}, scale=3)
    assert abs(table.PSNR.item() - bic.PSNR.item()) < 0.01   # the untrained residual net is bicubic
    with pytest.raises(image_io.ImageError, match="keep the size"):
        sr_eval.evaluate(lambda y: y[..., 1:, :], {"toy": {"a": photo(48, 60)}}, scale=3)


def test_colour_puts_y_into_the_bicubic_colours():
    x = photo(48, 60)
    y_in, _ = sr_pair(x, 4)
    rgb = sr_eval.colour(y_in, x, 4)
    assert rgb.shape == (3, 48, 60)
    assert torch.allclose(image_io.rgb_to_y(rgb), y_in, atol=2e-3)


# ----------------------------------------------------------------------------------------------
# Exercise checks
# ----------------------------------------------------------------------------------------------

def my_sr_pair(image, scale):
    if image.shape[0] == 1:
        image = image.expand(3, -1, -1)
    hr = image_io.crop_to_multiple(image, scale)
    lr = image_io.resize(hr, size=(hr.shape[1] // scale, hr.shape[2] // scale))
    lr = torch.round(lr * 255) / 255
    up = image_io.resize(lr, size=tuple(hr.shape[1:]))
    return image_io.rgb_to_y(up), image_io.rgb_to_y(hr)


def sr_pair_no_antialias(image, scale):
    image = image.expand(3, -1, -1) if image.shape[0] == 1 else image
    hr = image_io.crop_to_multiple(image, scale)
    lr = image_io.resize(hr, size=(hr.shape[1] // scale, hr.shape[2] // scale), antialias=False)
    return image_io.rgb_to_y(image_io.resize(lr, size=tuple(hr.shape[1:]))), image_io.rgb_to_y(hr)


def sr_pair_luma(image, scale):
    image = image.expand(3, -1, -1) if image.shape[0] == 1 else image
    hr = image_io.crop_to_multiple(image, scale)
    lr = torch.round(image_io.resize(hr, size=(hr.shape[1] // scale, hr.shape[2] // scale)) * 255) / 255
    return image_io.rgb_to_grey(image_io.resize(lr, size=tuple(hr.shape[1:]))), image_io.rgb_to_grey(hr)


def sr_pair_no_crop(image, scale):
    image = image.expand(3, -1, -1) if image.shape[0] == 1 else image
    lr = image_io.resize(image, size=(image.shape[1] // scale, image.shape[2] // scale))
    return image_io.rgb_to_y(image_io.resize(lr, size=tuple(image.shape[1:]))), image_io.rgb_to_y(image)


def sr_psnr(y_out, y_hr, scale):
    a, b = y_out[..., scale:-scale, scale:-scale], y_hr[..., scale:-scale, scale:-scale]
    return float(10 * torch.log10(1 / torch.mean((a.double() - b.double()) ** 2)))


def sr_psnr_unshaved(y_out, y_hr, scale):
    return float(10 * torch.log10(1 / torch.mean((y_out - y_hr) ** 2)))


def sr_psnr_one_side(y_out, y_hr, scale):
    a, b = y_out[..., scale:, scale:], y_hr[..., scale:, scale:]
    return float(10 * torch.log10(1 / torch.mean((a - b) ** 2)))


class ValidSRCNN(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.patch_extraction = torch.nn.Conv2d(1, 64, 9)
        self.nonlinear_mapping = torch.nn.Conv2d(64, 32, 5)
        self.reconstruction = torch.nn.Conv2d(32, 1, 5)

    def forward(self, x):
        x = torch.relu(self.patch_extraction(x))
        x = torch.relu(self.nonlinear_mapping(x))
        return self.reconstruction(x)


class PaddedSRCNN(ValidSRCNN):
    def __init__(self):
        super().__init__()
        self.patch_extraction.padding = (4, 4)


class ReluAtEnd(ValidSRCNN):
    def forward(self, x):
        return torch.relu(super().forward(x))


class Renamed(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = torch.nn.Conv2d(1, 64, 9)
        self.conv2 = torch.nn.Conv2d(64, 32, 5)
        self.conv3 = torch.nn.Conv2d(32, 1, 5)


class Stub(torch.nn.Module):
    def __init__(self):
        super().__init__()
        raise NotImplementedError("ex-03-3: three unpadded convolutions")


def test_chapter_03_checks_are_registered():
    assert {"ex-03-1", "ex-03-2", "ex-03-3"} <= set(CHECKS)


@pytest.mark.parametrize("label, right", [("ex-03-1", my_sr_pair), ("ex-03-2", sr_psnr), ("ex-03-3", ValidSRCNN)])
def test_right_answers_pass(label, right, capsys):
    assert passes(label, right)
    assert capsys.readouterr().out.startswith(f"PASS {label}")


@pytest.mark.parametrize("label, wrong, hint", [
    ("ex-03-1", sr_pair_no_antialias, "antialias"),
    ("ex-03-1", sr_pair_luma, "rgb_to_y"),
    ("ex-03-1", sr_pair_no_crop, "shape"),
    ("ex-03-2", sr_psnr_unshaved, "not shaved"),
    ("ex-03-2", sr_psnr_one_side, "four sides"),
    ("ex-03-3", PaddedSRCNN, "shape"),
    ("ex-03-3", ReluAtEnd, "ReLU"),
    ("ex-03-3", Renamed, "layer names"),
])
def test_typical_wrong_answers_fail_with_a_hint(label, wrong, hint, capsys):
    assert not passes(label, wrong)
    out = capsys.readouterr().out
    assert out.startswith(f"FAIL {label}") and hint in out


@pytest.mark.parametrize("label, stub", [
    ("ex-03-1", lambda image, scale: (_ for _ in ()).throw(NotImplementedError("ex-03-1"))),
    ("ex-03-2", lambda y_out, y_hr, scale: (_ for _ in ()).throw(NotImplementedError("ex-03-2"))),
    ("ex-03-3", Stub),
])
def test_stubs_raise_not_implemented(label, stub):
    with pytest.raises(NotImplementedError):
        check(label, stub)
