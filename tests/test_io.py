import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, PngImagePlugin
from skimage import data

from i2icourse import images


@pytest.fixture()
def photo() -> torch.Tensor:
    return images.from_numpy(data.astronaut()[:96, :128], "astronaut")


def test_roundtrip_png_is_exact(tmp_path, photo):
    path = images.save_image(photo, tmp_path / "a.png")
    back = images.load_image(path)
    assert back.shape == (3, 96, 128)
    assert torch.allclose(back, photo, atol=0.5 / 255)


def test_grey_load_is_itu_601_2_luma(tmp_path, photo):
    path = images.save_image(photo, tmp_path / "a.png")
    grey = images.load_image(path, mode="grey")
    ours = images.rgb_to_grey(images.load_image(path))
    assert grey.shape == (1, 96, 128)
    assert (grey - ours).abs().max() <= 1 / 255 + 1e-6   # PIL rounds to 8 bits


def test_ycbcr_matches_matlab_formula():
    # MATLAB rgb2ycbcr on double input: Y = 16 + 65.481 R + 128.553 G + 24.966 B (R, G, B in [0, 1]).
    rgb = torch.tensor([0.2, 0.5, 0.9]).view(3, 1, 1)
    y = images.rgb_to_y(rgb) * 255
    assert float(y) == pytest.approx(16 + 65.481 * 0.2 + 128.553 * 0.5 + 24.966 * 0.9, abs=1e-4)
    assert float(images.rgb_to_y(torch.ones(3, 1, 1)) * 255) == pytest.approx(235, abs=1e-3)
    assert float(images.rgb_to_y(torch.zeros(3, 1, 1)) * 255) == pytest.approx(16, abs=1e-3)


def test_ycbcr_inverts(photo):
    assert torch.allclose(images.ycbcr_to_rgb(images.rgb_to_ycbcr(photo)), photo, atol=1e-5)
    batch = torch.stack([photo, photo.flip(-1)])
    assert images.rgb_to_ycbcr(batch).shape == (2, 3, 96, 128)


def test_missing_file_names_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.png"):
        images.load_image(tmp_path / "nope.png")


def test_corrupt_file_names_the_file(tmp_path):
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\nthis is not a png")
    with pytest.raises(images.ImageError, match="broken.png"):
        images.load_image(bad)


def test_truncated_file_is_reported(tmp_path, photo):
    path = images.save_image(photo, tmp_path / "t.jpg")
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) // 3])
    with pytest.raises(images.ImageError, match="t.jpg"):
        images.load_image(path)


def test_check_image_reports_the_problem():
    with pytest.raises(images.ImageError, match=r"target: values must lie in \[0, 1\].*255"):
        images.check_image(torch.full((3, 4, 4), 200.0), "target")
    with pytest.raises(images.ImageError, match=r"\[-1, 1\]"):
        images.check_image(torch.full((3, 4, 4), -0.5), "fake")
    with pytest.raises(images.ImageError, match="expected 3 channels, got 4"):
        images.check_image(torch.rand(4, 8, 8), "x", channels=(3,))
    with pytest.raises(images.ImageError, match=r"shape \(C, H, W\) or \(N, C, H, W\), got \(8, 8\)"):
        images.check_image(torch.rand(8, 8))
    with pytest.raises(images.ImageError, match="dtype torch.uint8"):
        images.check_image(torch.zeros(3, 2, 2, dtype=torch.uint8))
    with pytest.raises(images.ImageError, match="NaN"):
        images.check_image(torch.full((1, 2, 2), float("nan")))


def test_from_numpy_handles_dtypes():
    assert images.from_numpy(np.full((2, 3), 255, np.uint8)).max() == 1
    assert images.from_numpy(np.full((2, 3, 3), 65535, np.uint16)).shape == (3, 2, 3)
    with pytest.raises(images.ImageError, match="shape"):
        images.from_numpy(np.zeros((2, 3, 4, 5)))


def test_resize_antialias_matches_pil_bicubic(photo):
    # PIL's bicubic downscale is what MATLAB imresize does to within ~0.1 grey level.
    a = (images.to_numpy(photo) * 255 + 0.5).astype(np.uint8)
    pil = np.asarray(Image.fromarray(a).resize((32, 24), Image.BICUBIC)).astype(np.float32) / 255
    ours = images.to_numpy(images.resize(images.from_numpy(a), size=(24, 32)))
    assert np.abs(ours - pil).mean() < 1.0 / 255
    no_aa = images.to_numpy(images.resize(images.from_numpy(a), size=(24, 32), antialias=False))
    assert np.abs(no_aa - pil).mean() > 2 * np.abs(ours - pil).mean()


def test_crops(photo):
    assert images.crop_to_multiple(photo[:, :95, :127], 4).shape == (3, 92, 124)
    assert images.center_crop(photo, 32).shape == (3, 32, 32)
    assert images.shave(photo, 4).shape == (3, 88, 120)
    box = images.random_crop_box((96, 128), 40, torch.Generator().manual_seed(0))
    assert images.crop(photo, *box).shape == (3, 40, 40)
    with pytest.raises(images.ImageError, match="does not fit"):
        images.crop(photo, 90, 0, 10, 10)


@pytest.mark.parametrize("call, message", [
    (lambda x: images.crop(x, 0, 0, -2, 10), "crop: window sides must be positive integers"),
    (lambda x: images.crop(x, 4, 4, 10, 0), "crop: window sides must be positive integers"),
    (lambda x: images.center_crop(x, -4), "center_crop: window sides must be positive integers"),
    (lambda x: images.center_crop(x, (8, 0)), "center_crop: window sides must be positive integers"),
    (lambda x: images.center_crop(x, 2.5), "center_crop: give one side or \\(height, width\\) as whole numbers"),
    (lambda x: images.random_crop_box(tuple(x.shape[-2:]), -3), "random_crop_box: window sides must be positive"),
    (lambda x: images.random_crop_box(tuple(x.shape[-2:]), (3, -1)), "random_crop_box: window sides must be positive"),
    (lambda x: images.shave(x, -2), "shave: border must be a whole number of pixels, 0 or more"),
    (lambda x: images.crop_to_multiple(x, 0), "crop_to_multiple: multiple must be a positive integer"),
])
def test_negative_or_zero_crop_sizes_are_refused(photo, call, message):
    with pytest.raises(ValueError, match=message):
        call(photo)


def test_shave_refuses_a_border_that_leaves_nothing(photo):
    assert images.shave(photo, 0) is photo
    assert images.shave(photo[:, :9, :9], 4).shape == (3, 1, 1)
    with pytest.raises(images.ImageError, match="a border of 5 pixels leaves nothing of a 9x9 image"):
        images.shave(photo[:, :9, :9], 5)
    assert images.center_crop(photo, (np.int64(8), np.int64(6))).shape == (3, 8, 6)   # NumPy ints are whole numbers


def test_list_images(tmp_path, photo):
    with pytest.raises(FileNotFoundError, match="no such folder"):
        images.list_images(tmp_path / "missing")
    with pytest.raises(images.ImageError, match="no image files"):
        images.list_images(tmp_path)
    images.save_image(photo, tmp_path / "b.png")
    images.save_image(photo, tmp_path / "a.jpg")
    (tmp_path / "notes.txt").write_text("x")
    assert [p.name for p in images.list_images(tmp_path)] == ["a.jpg", "b.png"]


# ----------------------------------------------------------------------------------------------
# Files as they are: bit depth, orientation, size, alpha
# ----------------------------------------------------------------------------------------------

def _ramp16(h: int = 32, w: int = 256) -> np.ndarray:
    """A horizontal ramp from 0 to 65535 (uint16), mean 0.5 of white."""
    return np.tile(np.linspace(0, 65535, w).round().astype(np.uint16), (h, 1))


def chunk(kind: bytes, data: bytes) -> bytes:
    """One PNG chunk: length, type, data, CRC."""
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _write_png16(path: Path, a: np.ndarray) -> Path:
    """Write an (H, W, C) uint16 array as a 16-bit-per-channel PNG (PIL cannot write 48/64-bit PNGs)."""
    h, w, c = a.shape
    colour_type = {1: 0, 2: 4, 3: 2, 4: 6}[c]
    rows = b"".join(b"\x00" + row.astype(">u2").tobytes() for row in a)
    header = struct.pack(">IIBBBBB", w, h, 16, colour_type, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows))
                     + chunk(b"IEND", b""))
    return path


@pytest.mark.parametrize("name, big_endian", [("g.png", False), ("g.tif", False), ("g.tif", True),
                                              ("g.pgm", False)])
def test_16bit_grey_keeps_its_range(tmp_path, name, big_endian):
    ramp = _ramp16()
    path = tmp_path / name
    Image.fromarray(ramp.astype(">u2") if big_endian else ramp).save(path)
    want = torch.from_numpy(ramp / 65535.0).float()[None]
    for mode, channels in (("grey", 1), ("keep", 1), ("rgb", 3)):
        x = images.load_image(path, mode=mode)
        assert x.dtype == torch.float32 and x.shape == (channels, 32, 256)
        assert float(x.mean()) == pytest.approx(0.5, abs=1e-3)   # PIL's convert("L") gave 0.998
        assert torch.allclose(x, want.expand(channels, -1, -1), atol=1e-6)


@pytest.mark.parametrize("channels", [3, 4])
def test_48_and_64_bit_png_keep_their_range(tmp_path, channels):
    ramp = _ramp16()
    a = np.stack([ramp, ramp, 65535 - ramp, np.full_like(ramp, 40000)][:channels], axis=-1)
    x = images.load_image(_write_png16(tmp_path / f"c{channels}.png", a), mode="keep")
    want = torch.from_numpy(a[..., :3] / 65535.0).float().permute(2, 0, 1)
    assert x.shape == (3, 32, 256)
    assert (x - want).abs().max() <= 1 / 255 + 1e-6   # PIL reads these at 8 bits per channel
    assert float(x[0].mean()) == pytest.approx(0.5, abs=3e-3)


def _int32_tiff(path: Path, a: np.ndarray, unsigned: bool = False) -> Path:
    """A 32-bit integer TIFF; PIL writes signed samples, so unsigned ones get their SampleFormat tag patched."""
    Image.fromarray(a.view(np.int32), "I").save(path)
    if unsigned:
        raw = path.read_bytes()
        signed_tag, unsigned_tag = struct.pack("<HHIH", 339, 3, 1, 2), struct.pack("<HHIH", 339, 3, 1, 1)
        assert raw.count(signed_tag) == 1
        path.write_bytes(raw.replace(signed_tag, unsigned_tag))
    return path


def test_32bit_integer_tiff_is_scaled_by_its_bit_depth(tmp_path):
    signed = np.tile(np.linspace(0, 2**31 - 1, 256).round().astype(np.int32), (8, 1))
    x = images.load_image(_int32_tiff(tmp_path / "s.tif", signed), mode="grey")
    assert x.shape == (1, 8, 256) and float(x.min()) == 0 and float(x.max()) == 1
    assert float(x.mean()) == pytest.approx(0.5, abs=1e-3)

    unsigned = np.tile(np.linspace(0, 2**32 - 1, 256).round().astype(np.uint32), (8, 1))
    y = images.load_image(_int32_tiff(tmp_path / "u.tif", unsigned, unsigned=True), mode="grey")
    assert torch.allclose(y[0], torch.from_numpy(unsigned / (2**32 - 1)).float(), atol=1e-6)


def test_negative_integer_tiff_is_refused(tmp_path):
    path = _int32_tiff(tmp_path / "signed.tif", np.arange(-8, 8, dtype=np.int32).reshape(4, 4))
    with pytest.raises(images.ImageError, match=r"signed.tif \(PIL mode I\).*\[-8, 7\]"):
        images.load_image(path)


def test_float_tiff_in_0_1_is_used_as_is_and_other_ranges_are_refused(tmp_path):
    a = np.linspace(0, 1, 64, dtype=np.float32).reshape(8, 8)
    Image.fromarray(a).save(tmp_path / "unit.tif")
    x = images.load_image(tmp_path / "unit.tif", mode="keep")
    assert x.shape == (1, 8, 8) and torch.equal(x[0], torch.from_numpy(a))
    Image.fromarray(a * 255).save(tmp_path / "bytes.tif")
    with pytest.raises(images.ImageError, match=r"bytes.tif \(PIL mode F\).*\[0, 255\]"):
        images.load_image(tmp_path / "bytes.tif")
    Image.fromarray(np.where(a > 0.5, np.nan, a).astype(np.float32)).save(tmp_path / "nan.tif")
    with pytest.raises(images.ImageError, match=r"nan.tif \(PIL mode F\)"):
        images.load_image(tmp_path / "nan.tif")


@pytest.mark.parametrize("orientation, quarter_turns", [(6, -1), (8, 1)])   # 6: turn clockwise to view
def test_exif_orientation_loads_upright(tmp_path, photo, orientation, quarter_turns):
    a = (images.to_numpy(photo[:, :48, :80]) * 255).round().astype(np.uint8)
    Image.fromarray(a).save(tmp_path / "plain.jpg", quality=95)
    exif = Image.Exif()
    exif[0x0112] = orientation
    Image.fromarray(a).save(tmp_path / "phone.jpg", quality=95, exif=exif)
    upright = images.load_image(tmp_path / "phone.jpg")
    assert upright.shape == (3, 80, 48)
    assert torch.equal(upright, torch.rot90(images.load_image(tmp_path / "plain.jpg"), quarter_turns, dims=(1, 2)))


@pytest.mark.parametrize("side", [12, 20])   # 144 pixels: PIL warns; 400 pixels: PIL raises
def test_decompression_bomb_is_reported_with_the_file(tmp_path, monkeypatch, photo, side):
    path = images.save_image(photo[:, :side, :side], tmp_path / "huge.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)
    with pytest.raises(images.ImageError, match=r"huge.png.*Resize the file first.*MAX_IMAGE_PIXELS"):
        images.load_image(path)


# A chunk of 1 KiB that PIL would unpack to just over its 1 MiB limit (PngImagePlugin.MAX_TEXT_CHUNK).
_BOMB = zlib.compress(b"\0" * (PngImagePlugin.MAX_TEXT_CHUNK + 1), 9)


@pytest.mark.parametrize("kind, data, after_pixels", [
    (b"zTXt", b"Comment\0\0" + _BOMB, False),        # keyword, compression method, text
    (b"iTXt", b"Comment\0\1\0\0\0" + _BOMB, False),  # ... compressed flag, method, language, translated keyword
    (b"iCCP", b"icc\0\0" + _BOMB, False),            # a colour profile
    (b"zTXt", b"Comment\0\0" + _BOMB, True),         # after the pixels: read only when they are loaded
], ids=["zTXt", "iTXt", "iCCP", "zTXt-after-IDAT"])
def test_metadata_decompression_bomb_is_reported_with_the_file(tmp_path, photo, kind, data, after_pixels):
    png = images.save_image(photo[:, :8, :8], tmp_path / "plain.png").read_bytes()
    at = len(png) - 12 if after_pixels else 33   # before IEND (12 bytes), or after signature + IHDR (33)
    path = tmp_path / "bomb.png"
    path.write_bytes(png[:at] + chunk(kind, data) + png[at:])
    assert path.stat().st_size < 4096
    with pytest.raises(images.ImageError, match=r"bomb\.png: a compressed text or colour-profile chunk .*MAX_TEXT_CHUNK"):
        images.load_image(path)


@pytest.mark.filterwarnings("error")
def test_keep_drops_alpha(tmp_path):
    rng = np.random.default_rng(0)
    la = rng.integers(0, 256, (6, 7, 2), dtype=np.uint8)
    Image.fromarray(la, "LA").save(tmp_path / "la.png")
    x = images.load_image(tmp_path / "la.png", mode="keep")
    assert x.shape == (1, 6, 7) and torch.equal(x[0], torch.from_numpy(la[..., 0] / 255.0).float())

    rgba = rng.integers(0, 256, (6, 7, 4), dtype=np.uint8)
    Image.fromarray(rgba, "RGBA").save(tmp_path / "rgba.png")
    x = images.load_image(tmp_path / "rgba.png", mode="keep")
    assert x.shape == (3, 6, 7) and torch.equal(x, images.from_numpy(rgba[..., :3]))

    p = Image.fromarray(rng.integers(0, 4, (6, 7), dtype=np.uint8), "P")
    p.putpalette([255, 0, 0, 0, 255, 0, 0, 0, 255, 255, 255, 255])
    p.info["transparency"] = bytes([0, 128, 255, 255])   # per-entry alpha, as PNG's tRNS
    p.save(tmp_path / "p.png")
    x = images.load_image(tmp_path / "p.png", mode="keep")
    assert x.shape == (3, 6, 7) and torch.equal(x, images.from_numpy(np.asarray(p.convert("RGBA"))[..., :3]))


def test_load_image_refuses_an_unknown_mode(tmp_path, photo):
    path = images.save_image(photo, tmp_path / "a.png")
    with pytest.raises(ValueError, match="'rgb', 'grey' or 'keep'"):
        images.load_image(path, mode="RGB")


# ----------------------------------------------------------------------------------------------
# Tensors in: the colour conversions and resize check what they are given
# ----------------------------------------------------------------------------------------------

THREE_CHANNEL = [images.rgb_to_ycbcr, images.ycbcr_to_rgb, images.rgb_to_y]


@pytest.mark.parametrize("fn", THREE_CHANNEL, ids=lambda f: f.__name__)
def test_three_channel_conversions_check_their_input(fn):
    name = fn.__name__
    with pytest.raises(images.ImageError, match=rf"{name} input: expected 3 channels, got 1"):
        fn(torch.rand(1, 4, 4))
    with pytest.raises(images.ImageError, match=rf"{name} input: expected shape"):
        fn(torch.rand(4, 4))
    with pytest.raises(images.ImageError, match=rf"{name} input: contains NaN"):
        fn(torch.full((3, 4, 4), float("nan")))
    with pytest.raises(images.ImageError, match=rf"{name} input: values must lie in \[0, 1\]"):
        fn(torch.full((3, 4, 4), 200.0))
    assert fn(torch.rand(2, 3, 4, 4)).shape[:2] in ((2, 3), (2, 1))   # batches still work


def test_rgb_to_grey_checks_its_input():
    with pytest.raises(images.ImageError, match="rgb_to_grey input: expected 1 or 3 channels, got 2"):
        images.rgb_to_grey(torch.rand(2, 4, 4))
    with pytest.raises(images.ImageError, match="rgb_to_grey input: contains NaN"):
        images.rgb_to_grey(torch.full((3, 4, 4), float("nan")))
    assert images.rgb_to_grey(torch.rand(2, 3, 4, 4)).shape == (2, 1, 4, 4)


def test_resize_checks_its_input(photo):
    with pytest.raises(images.ImageError, match=r"resize input: values must lie in \[0, 1\].*divide by 255"):
        images.resize(photo * 255, size=32)   # clamped, this was an all-white image
    with pytest.raises(images.ImageError, match="resize input: contains NaN"):
        images.resize(torch.full((3, 8, 8), float("nan")), scale=0.5)
    with pytest.raises(images.ImageError, match=r"resize input: expected shape"):
        images.resize(torch.rand(8, 8), size=4)
    assert images.resize(torch.stack([photo, photo]), scale=0.5).shape == (2, 3, 48, 64)
    assert images.resize(photo[:1], size=(24, 32)).shape == (1, 24, 32)
