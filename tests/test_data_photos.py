"""The real photos bundled with scikit-image, as course tensors."""
import pytest
import torch

from i2icourse import io
from i2icourse.data import PHOTOS, lfw_faces, skimage_photos
from i2icourse.data.photos import fit


def test_all_photos_load_as_rgb_tensors_in_range():
    photos = skimage_photos()
    assert list(photos) == list(PHOTOS)
    for name, x in photos.items():
        io.check_image(x, name, channels=(3,), batched=False)
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
    y = fit(x, 10)
    assert y.shape == (1, 10, 10) and float(y.min()) > 0.99  # only the centre square is kept


def test_unknown_photo_names_the_choices():
    with pytest.raises(ValueError, match="astronaut"):
        skimage_photos(["lena"])


def test_lfw_faces():
    faces = lfw_faces()
    assert faces.shape == (100, 1, 25, 25) and faces.dtype == torch.float32
    assert 0 <= float(faces.min()) and float(faces.max()) <= 1
    assert lfw_faces(include_non_faces=True).shape == (200, 1, 25, 25)
