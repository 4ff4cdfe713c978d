import pytest
import torch
from skimage import data

from i2icourse import distortions as D
from i2icourse import images, metrics


@pytest.fixture()
def camera() -> torch.Tensor:
    return images.resize(images.from_numpy(data.camera()), size=128)


def test_blur_keeps_flat_images_flat_and_smooths(camera):
    flat = torch.full((1, 32, 32), 0.3)
    assert torch.allclose(D.gaussian_blur(flat, 3.0), flat, atol=1e-6)
    blurred = D.gaussian_blur(camera, 2.0)
    assert blurred.shape == camera.shape
    assert blurred.diff(dim=-1).abs().mean() < 0.6 * camera.diff(dim=-1).abs().mean()


def test_blur_wider_than_the_image_works():
    x = torch.rand(3, 20, 20)
    assert D.gaussian_blur(x, 30.0).shape == x.shape


def test_noise_is_repeatable_with_a_generator(camera):
    a = D.gaussian_noise(camera, 0.1, torch.Generator().manual_seed(1))
    b = D.gaussian_noise(camera, 0.1, torch.Generator().manual_seed(1))
    assert torch.equal(a, b) and a.min() >= 0 and a.max() <= 1
    assert D.mse(a, camera) == pytest.approx(0.01, rel=0.25)  # clipping removes a little


def test_salt_and_pepper_touches_the_requested_fraction(camera):
    y = D.salt_and_pepper(camera, 0.1, torch.Generator().manual_seed(0))
    changed = (y != camera).float().mean()
    assert 0.07 < float(changed) < 0.11
    assert set(torch.unique(y[y != camera]).tolist()) <= {0.0, 1.0}


def test_compression_lowers_quality_with_strength(camera):
    rgb = camera.repeat(3, 1, 1)
    q = [float(metrics.ssim(D.jpeg(rgb, quality), rgb)) for quality in (90, 30, 5)]
    assert q[0] > q[1] > q[2]
    j = [float(metrics.ssim(D.jpeg2000(camera, r), camera)) for r in (10, 100)]
    assert j[0] > j[1]


def test_contrast_and_shift(camera):
    assert torch.allclose(D.contrast_stretch(camera, 1.0), camera)
    assert D.mean_shift(camera, 0.1).mean() > camera.mean()


def test_with_mse_hits_the_target(camera):
    target = 144 / 255**2
    y, sigma = D.with_mse(D.gaussian_blur, camera, target, 0.1, 10.0)
    assert D.mse(y, camera) == pytest.approx(target, rel=1e-3)
    with pytest.raises(ValueError, match="not reachable"):
        D.with_mse(D.mean_shift, camera, 0.9, 0.0, 0.01)
