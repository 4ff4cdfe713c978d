"""The real photos bundled with scikit-image, as course tensors."""
import numpy as np
import pytest
import torch

from i2icourse import images
from i2icourse.data import PHOTOS, lfw_faces, skimage_photos
from i2icourse.data.photos import crop_resize


def test_all_photos_load_as_rgb_tensors_in_range():
    photos = skimage_photos()
    assert list(photos) == list(PHOTOS)
    for name, x in photos.items():
        images.check_image(x, name, channels=(3,), batched=False)
    assert photos["astronaut"].shape == (3, 512, 512)
    camera = photos["camera"]  # a grey photo, repeated to three channels
    assert torch.equal(camera[0], camera[1]) and torch.equal(camera[1], camera[2])


def test_size_and_mode_give_a_stackable_batch():
    photos = skimage_photos(["coffee", "camera", "hubble_deep_field"], size=(48, 64), mode="grey")
    batch = torch.stack(list(photos.values()))
    assert batch.shape == (3, 1, 48, 64)
    keep = skimage_photos(["camera", "chelsea"], mode="keep")
    assert keep["camera"].shape[0] == 1 and keep["chelsea"].shape[0] == 3


def test_fit_crops_to_the_aspect_ratio_before_resizing():
    x = torch.zeros(1, 10, 40)
    x[..., 15:25] = 1  # a bright band in the middle of a wide image
    y = crop_resize(x, 10)
    assert y.shape == (1, 10, 10) and float(y.min()) > 0.99  # only the centre square is kept


def test_unknown_photo_names_the_choices():
    with pytest.raises(ValueError, match="astronaut"):
        skimage_photos(["lena"])


def test_lfw_faces():
    faces = lfw_faces()
    assert faces.shape == (100, 1, 25, 25) and faces.dtype == torch.float32
    assert 0 <= float(faces.min()) and float(faces.max()) <= 1
    assert lfw_faces(include_non_faces=True).shape == (200, 1, 25, 25)


def test_your_photo_gives_the_bundled_example_a_file_upright_and_shrinks_large_ones(tmp_path, capsys):
    from PIL import Image
    from i2icourse.data import EXAMPLE_PHOTO, SKIMAGE_TRAIN, your_photo
    name, x = your_photo()
    assert name == EXAMPLE_PHOTO and EXAMPLE_PHOTO not in SKIMAGE_TRAIN and x.shape == (3, 500, 741)
    assert "resized" not in capsys.readouterr().out
    # a phone photo stored sideways with EXIF orientation 6 (rotate 90 degrees clockwise to view)
    pixels = (np.arange(40 * 60 * 3) % 251).astype(np.uint8).reshape(40, 60, 3)
    im = Image.fromarray(pixels)
    exif = im.getexif()
    exif[0x0112] = 6
    im.save(tmp_path / "phone.jpg", exif=exif, quality=95)
    name, y = your_photo(tmp_path / "phone.jpg", max_side=None)
    assert name == "phone" and y.shape == (3, 60, 40)             # upright: portrait
    name, z = your_photo(tmp_path / "phone.jpg", max_side=30)
    assert z.shape == (3, 30, 20) and "phone: 40x60 resized to 20x30" in capsys.readouterr().out
    with pytest.raises(ValueError, match="Colab only"):
        your_photo("upload")


def test_upscale_photo_upscales_any_size_and_keeps_the_colour():
    from i2icourse import sr_eval
    from i2icourse.models.srcnn import SRCNN
    torch.manual_seed(0)
    x = torch.rand(3, 23, 37)
    out = sr_eval.upscale_photo(SRCNN(), x, 3, tile=32, overlap=8)
    assert out.shape == (3, 69, 111) and float(out.min()) >= 0 and float(out.max()) <= 1
    identity = torch.nn.Conv2d(1, 1, 1)                     # a "network" that returns its input
    with torch.no_grad():
        identity.weight.fill_(1.0), identity.bias.zero_()
    bicubic = images.resize(x, scale=3).clamp(0, 1)
    assert torch.allclose(sr_eval.upscale_photo(identity, x, 3, tile=32, overlap=8), bicubic, atol=1e-4)
