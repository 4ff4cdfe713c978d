from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from skimage import data

from i2icourse import io


@pytest.fixture()
def photo() -> torch.Tensor:
    return io.from_numpy(data.astronaut()[:96, :128], "astronaut")


def test_roundtrip_png_is_exact(tmp_path, photo):
    path = io.save_image(photo, tmp_path / "a.png")
    back = io.load_image(path)
    assert back.shape == (3, 96, 128)
    assert torch.allclose(back, photo, atol=0.5 / 255)


def test_grey_load_is_itu_601_2_luma(tmp_path, photo):
    path = io.save_image(photo, tmp_path / "a.png")
    grey = io.load_image(path, mode="grey")
    ours = io.rgb_to_grey(io.load_image(path))
    assert grey.shape == (1, 96, 128)
    assert (grey - ours).abs().max() <= 1 / 255 + 1e-6   # PIL rounds to 8 bits


def test_ycbcr_matches_matlab_formula():
    # MATLAB rgb2ycbcr on double input: Y = 16 + 65.481 R + 128.553 G + 24.966 B (R, G, B in [0, 1]).
    rgb = torch.tensor([0.2, 0.5, 0.9]).view(3, 1, 1)
    y = io.rgb_to_y(rgb) * 255
    assert float(y) == pytest.approx(16 + 65.481 * 0.2 + 128.553 * 0.5 + 24.966 * 0.9, abs=1e-4)
    assert float(io.rgb_to_y(torch.ones(3, 1, 1)) * 255) == pytest.approx(235, abs=1e-3)
    assert float(io.rgb_to_y(torch.zeros(3, 1, 1)) * 255) == pytest.approx(16, abs=1e-3)


def test_ycbcr_inverts(photo):
    assert torch.allclose(io.ycbcr_to_rgb(io.rgb_to_ycbcr(photo)), photo, atol=1e-5)
    batch = torch.stack([photo, photo.flip(-1)])
    assert io.rgb_to_ycbcr(batch).shape == (2, 3, 96, 128)


def test_missing_file_names_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.png"):
        io.load_image(tmp_path / "nope.png")


def test_corrupt_file_names_the_file(tmp_path):
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\nthis is not a png")
    with pytest.raises(io.ImageError, match="broken.png"):
        io.load_image(bad)


def test_truncated_file_is_reported(tmp_path, photo):
    path = io.save_image(photo, tmp_path / "t.jpg")
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) // 3])
    with pytest.raises(io.ImageError, match="t.jpg"):
        io.load_image(path)


def test_check_image_reports_the_problem():
    with pytest.raises(io.ImageError, match=r"target: values must lie in \[0, 1\].*255"):
        io.check_image(torch.full((3, 4, 4), 200.0), "target")
    with pytest.raises(io.ImageError, match=r"\[-1, 1\]"):
        io.check_image(torch.full((3, 4, 4), -0.5), "fake")
    with pytest.raises(io.ImageError, match="expected 3 channels, got 4"):
        io.check_image(torch.rand(4, 8, 8), "x", channels=(3,))
    with pytest.raises(io.ImageError, match=r"shape \(C, H, W\) or \(N, C, H, W\), got \(8, 8\)"):
        io.check_image(torch.rand(8, 8))
    with pytest.raises(io.ImageError, match="dtype torch.uint8"):
        io.check_image(torch.zeros(3, 2, 2, dtype=torch.uint8))
    with pytest.raises(io.ImageError, match="NaN"):
        io.check_image(torch.full((1, 2, 2), float("nan")))


def test_from_numpy_handles_dtypes():
    assert io.from_numpy(np.full((2, 3), 255, np.uint8)).max() == 1
    assert io.from_numpy(np.full((2, 3, 3), 65535, np.uint16)).shape == (3, 2, 3)
    with pytest.raises(io.ImageError, match="shape"):
        io.from_numpy(np.zeros((2, 3, 4, 5)))


def test_resize_antialias_matches_pil_bicubic(photo):
    # PIL's bicubic downscale is what MATLAB imresize does to within ~0.1 grey level.
    a = (io.to_numpy(photo) * 255 + 0.5).astype(np.uint8)
    pil = np.asarray(Image.fromarray(a).resize((32, 24), Image.BICUBIC)).astype(np.float32) / 255
    ours = io.to_numpy(io.resize(io.from_numpy(a), size=(24, 32)))
    assert np.abs(ours - pil).mean() < 1.0 / 255
    no_aa = io.to_numpy(io.resize(io.from_numpy(a), size=(24, 32), antialias=False))
    assert np.abs(no_aa - pil).mean() > 2 * np.abs(ours - pil).mean()


def test_crops(photo):
    assert io.crop_to_multiple(photo[:, :95, :127], 4).shape == (3, 92, 124)
    assert io.center_crop(photo, 32).shape == (3, 32, 32)
    assert io.shave(photo, 4).shape == (3, 88, 120)
    box = io.random_crop_box((96, 128), 40, torch.Generator().manual_seed(0))
    assert io.crop(photo, *box).shape == (3, 40, 40)
    with pytest.raises(io.ImageError, match="does not fit"):
        io.crop(photo, 90, 0, 10, 10)


def test_list_images(tmp_path, photo):
    with pytest.raises(FileNotFoundError, match="no such folder"):
        io.list_images(tmp_path / "missing")
    with pytest.raises(io.ImageError, match="no image files"):
        io.list_images(tmp_path)
    io.save_image(photo, tmp_path / "b.png")
    io.save_image(photo, tmp_path / "a.jpg")
    (tmp_path / "notes.txt").write_text("x")
    assert [p.name for p in io.list_images(tmp_path)] == ["a.jpg", "b.png"]
