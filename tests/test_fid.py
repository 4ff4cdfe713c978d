"""The FID network (pytorch-fid's, offline with random weights), the feature-network labels and KID."""
import urllib.error

import numpy as np
import pytest
import torch
import torchvision
from torch import nn

import pytorch_fid.inception
from i2icourse import fid


def _random_fid_state_dict(url, progress=True):
    """Stands in for the download: random weights with the FID network's keys and shapes (1008 classes)."""
    with torch.random.fork_rng():
        torch.manual_seed(0)
        net = torchvision.models.inception_v3(weights=None, num_classes=1008, aux_logits=False, init_weights=True)
        for m in net.modules():  # keep the activations finite through the random network
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu")
    return net.state_dict()


@pytest.fixture
def offline_fid_weights(monkeypatch):
    monkeypatch.setattr(pytorch_fid.inception, "load_state_dict_from_url", _random_fid_state_dict)


def test_fid_network_gives_2048_features_of_images_in_0_1(offline_fid_weights):
    ex = fid.inception_features("fid")
    assert isinstance(ex.net, pytorch_fid.inception.InceptionV3) and not ex.net.training
    x = torch.rand(2, 3, 40, 56)
    f = fid.features(ex, x)
    assert f.shape == (2, 2048) and f.dtype == torch.float64 and torch.isfinite(f).all()
    # [0, 1] in: the network's own input step (resize to 299, map to [-1, 1]) is what it sees
    blocks = nn.Sequential(*ex.net.blocks)
    direct = blocks(2 * nn.functional.interpolate(x, size=(299, 299), mode="bilinear", align_corners=False) - 1)
    assert torch.allclose(f.float(), direct.flatten(1), atol=1e-5)


def test_fid_network_repeats_grey_to_three_channels(offline_fid_weights):
    ex = fid.inception_features("fid")
    grey = torch.rand(2, 1, 64, 64)
    assert torch.allclose(fid.features(ex, grey), fid.features(ex, grey.expand(-1, 3, -1, -1)))


def test_fid_network_is_defined_at_299_pixels():
    with pytest.raises(ValueError, match="299"):
        fid.inception_features("fid", size=128)


def test_failed_fid_download_says_what_to_do(monkeypatch):
    def no_network(url, progress=True):
        raise urllib.error.URLError("Temporary failure in name resolution")
    monkeypatch.setattr(pytorch_fid.inception, "load_state_dict_from_url", no_network)
    with pytest.raises(RuntimeError, match="could not be downloaded.*weights=None"):
        fid.inception_features("fid")


def test_labels_name_each_feature_network():
    assert "pytorch-fid" in fid.label("fid") and "standard" in fid.label("fid")
    assert "not comparable" in fid.label("imagenet")
    assert "offline" in fid.label(None) and "random" in fid.label(None)
    with pytest.raises(ValueError, match="weights"):
        fid.label("inception")
    with pytest.raises(ValueError, match="weights"):
        fid.inception_features("inception")


def test_random_weights_still_work_offline():
    f = fid.features(fid.inception_features(None, size=80), torch.rand(2, 1, 32, 32))
    assert f.shape == (2, 2048) and torch.isfinite(f).all()


# --- KID -------------------------------------------------------------------------------------------

def _unbiased_mmd2_by_loops(x: np.ndarray, y: np.ndarray) -> float:
    """The unbiased MMD^2 estimator written out term by term, with k(a, b) = (a.b / d + 1)^3."""
    m, d = x.shape
    k = lambda a, b: (a @ b / d + 1) ** 3  # noqa: E731
    xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    yy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    xy = sum(k(x[i], y[j]) for i in range(m) for j in range(m)) / (m * m)
    return xx + yy - 2 * xy


def _gaussian(n, d, seed, shift=0.0):
    return torch.randn(n, d, generator=torch.Generator().manual_seed(seed), dtype=torch.float64) + shift


def test_kid_matches_the_estimator_written_out():
    x, y = _gaussian(12, 5, 0), _gaussian(12, 5, 1, shift=0.7)
    mean, std = fid.kernel_inception_distance(x, y, subsets=3)  # each subset is the whole (clipped) set
    assert abs(mean - _unbiased_mmd2_by_loops(x.numpy(), y.numpy())) < 1e-6 and std < 1e-12


def test_kid_is_near_zero_for_one_distribution_and_grows_with_a_mean_shift():
    real = _gaussian(300, 16, 0)
    same, _ = fid.kernel_inception_distance(real, _gaussian(300, 16, 1), subset_size=100)
    small, _ = fid.kernel_inception_distance(real, _gaussian(300, 16, 2, shift=0.3), subset_size=100)
    large, _ = fid.kernel_inception_distance(real, _gaussian(300, 16, 3, shift=1.0), subset_size=100)
    assert abs(same) < 0.05 * small and small < large


def test_kid_is_deterministic_for_a_seed():
    real, fake = _gaussian(200, 8, 0), _gaussian(150, 8, 1, shift=0.2)
    first = fid.kernel_inception_distance(real, fake, subsets=10, subset_size=50, seed=3)
    assert fid.kernel_inception_distance(real, fake, subsets=10, subset_size=50, seed=3) == first
    assert fid.kernel_inception_distance(real, fake, subsets=10, subset_size=50, seed=4) != first
    assert first[1] > 0  # subsets smaller than the sets differ from one another


def test_kid_clips_the_subset_size_to_the_smaller_set():
    real, fake = _gaussian(30, 8, 0), _gaussian(20, 8, 1, shift=0.5)
    clipped = fid.kernel_inception_distance(real, fake, subsets=5, seed=1)  # subset_size 1000 > 20
    assert clipped == fid.kernel_inception_distance(real, fake, subsets=5, subset_size=20, seed=1)
    with pytest.raises(ValueError, match="at least 2"):
        fid.kernel_inception_distance(real, fake[:1])
