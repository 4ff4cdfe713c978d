"""i2icourse.losses: values against the metrics, finite gradients in the hard cases, clear errors."""
import numpy as np
import pytest
import torch
from skimage import data

from i2icourse import losses, metrics
from i2icourse.images import ImageError


def photo(size: int, colour: bool = True) -> torch.Tensor:
    """A real (C, size, size) crop: the astronaut's face, or the cameraman."""
    if colour:
        a = data.astronaut()[40:40 + size, 180:180 + size] / 255.0
        return torch.from_numpy(a).float().permute(2, 0, 1).contiguous()
    return torch.from_numpy(data.camera()[100:100 + size, 200:200 + size] / 255.0).float()[None]


def noisy(x: torch.Tensor, sigma: float = 0.1, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (x + sigma * torch.randn(x.shape, generator=g)).clamp(0, 1)


# ----------------------------------------------------------------------------------------------
# Values
# ----------------------------------------------------------------------------------------------

def test_pixel_losses():
    target = photo(33)
    pred = noisy(target)
    diff = (pred - target).double()
    assert float(losses.l1(pred, target)) == pytest.approx(float(diff.abs().mean()), rel=1e-5)
    assert float(losses.l2(pred, target)) == pytest.approx(float(diff.pow(2).mean()), rel=1e-5)
    assert float(losses.mixed_l1_l2(pred, target, alpha=1.0)) == pytest.approx(float(losses.l1(pred, target)))
    assert float(losses.mixed_l1_l2(pred, target, alpha=0.0)) == pytest.approx(float(losses.l2(pred, target)))
    mixed = 0.3 * diff.abs().mean() + 0.7 * diff.pow(2).mean()
    assert float(losses.mixed_l1_l2(pred, target, alpha=0.3)) == pytest.approx(float(mixed), rel=1e-5)
    with pytest.raises(ValueError, match="alpha"):
        losses.mixed_l1_l2(pred, target, alpha=1.5)


@pytest.mark.parametrize("size", [33, 96])
def test_structural_losses_are_one_minus_the_metrics(size):
    target = torch.stack([photo(size), photo(size).flip(-1)])
    pred = torch.stack([noisy(target[0]), noisy(target[1], 0.05, seed=1)])
    ssim = metrics.ssim(pred, target).mean()
    ms = metrics.ms_ssim(pred, target).mean()
    assert float(losses.ssim_loss(pred, target)) == pytest.approx(1 - float(ssim), abs=1e-5)
    assert float(losses.ms_ssim_loss(pred, target)) == pytest.approx(1 - float(ms), abs=1e-6)
    assert float(losses.ms_ssim_loss(target, target)) == pytest.approx(0, abs=1e-5)
    equal = metrics.ms_ssim(pred, target, weights="equal").mean()
    equal_loss = losses.ms_ssim_loss(pred, target, weights="equal")
    assert float(equal_loss) == pytest.approx(1 - float(equal), abs=1e-6)


def test_one_image_without_batch_dimension():
    target = photo(40, colour=False)
    pred = noisy(target)
    for name in losses.LOSSES:
        value = losses.get_loss(name)(pred, target)
        assert value.dim() == 0 and 0 < float(value) < (1 if name != "log_ms_ssim" else float("inf")), name


def test_prediction_may_leave_the_unit_range():
    # A linear output layer overshoots a little; the losses measure it as it is.
    target = photo(48)
    pred = (target * 1.1 - 0.05).requires_grad_(True)
    for name in losses.LOSSES:
        value = losses.get_loss(name)(pred, target)
        value.backward()
        assert torch.isfinite(value) and torch.isfinite(pred.grad).all(), name
        pred.grad = None


# ----------------------------------------------------------------------------------------------
# Gradients
# ----------------------------------------------------------------------------------------------

def hard_pairs(size: int) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """(pred, target) pairs where a careless SSIM loss divides by zero or takes 0 ** w."""
    x = photo(size)
    grey = torch.full_like(x, 0.5)
    return {
        "identical": (x.clone(), x),
        "constant_both": (torch.full_like(x, 0.2), grey),
        "constant_pred": (grey.clone(), x),
        "constant_target": (noisy(grey), grey),
        "black": (torch.zeros_like(x), torch.zeros_like(x)),
        "negative": (1 - x, x),                           # cs < 0: anti-correlated at every scale
        "noisy": (noisy(x), x),
    }


@pytest.mark.parametrize("size", [33, 96])
@pytest.mark.parametrize("name", ["ssim", "ms_ssim", "mixed", "l1", "l2"])
def test_gradients_are_finite(name, size):
    loss = losses.get_loss(name)
    for case, (pred, target) in hard_pairs(size).items():
        pred = pred[None].clone().requires_grad_(True)
        value = loss(pred, target[None])
        value.backward()
        assert torch.isfinite(value), (case, float(value))
        assert torch.isfinite(pred.grad).all(), case


def test_ms_ssim_loss_trains_a_patch():
    # Gradient descent on the pixels of a 33x33 patch brings MS-SSIM up from noise.
    target = photo(33)[None]
    pred = torch.full_like(target, 0.5).requires_grad_(True)
    opt = torch.optim.Adam([pred], lr=0.02)
    loss = losses.get_loss("ms_ssim")
    start = float(loss(pred, target).detach())
    for _ in range(40):
        opt.zero_grad()
        value = loss(pred, target)
        value.backward()
        opt.step()
    assert float(loss(pred.detach().clamp(0, 1), target)) < 0.5 * start


# ----------------------------------------------------------------------------------------------
# Builder and errors
# ----------------------------------------------------------------------------------------------

def test_get_loss():
    assert losses.get_loss("l1") is losses.l1
    assert losses.get_loss("MS-SSIM") is losses.ms_ssim_loss
    assert losses.get_loss("mix") is losses.get_loss("mixed") is losses.mixed_l1_l2
    target = photo(40)[None]
    pred = noisy(target)
    mixed = losses.get_loss("mixed", alpha=0.84)
    assert float(mixed(pred, target)) == pytest.approx(float(losses.mixed_l1_l2(pred, target, alpha=0.84)))
    with pytest.raises(ValueError, match="l1, l2, mixed, ssim, ms_ssim, log_ms_ssim, mae, mse, mix"):
        losses.get_loss("perceptual")


def test_only_the_function_forms_remain():
    # One way to compute each loss: the registry's functions (GANLoss keeps its module form).
    for gone in ("L1Loss", "L2Loss", "MixedL1L2Loss", "SSIMLoss", "MSSSIMLoss"):
        assert not hasattr(losses, gone), gone


@pytest.mark.parametrize("name", ["l1", "l2", "mixed"])
def test_pixel_losses_on_the_tanh_range(name):
    # The GAN chapters measure their reconstruction terms on [-1, 1] images: same formula, other check.
    target = photo(40)[None] * 2 - 1
    pred = noisy(target.clamp(0, 1)) * 2 - 1
    loss = losses.get_loss(name, value_range=(-1, 1))
    diff = pred - target
    want = {"l1": diff.abs().mean(), "l2": diff.pow(2).mean(),
            "mixed": 0.5 * diff.abs().mean() + 0.5 * diff.pow(2).mean()}[name]
    assert float(loss(pred, target)) == pytest.approx(float(want), rel=1e-6)
    with pytest.raises(ImageError, match=r"target: values must lie in \[0, 1\].*from_signed"):
        losses.get_loss(name)(pred, target)                 # the default range refuses a [-1, 1] target
    with pytest.raises(ImageError, match=r"target: values must lie in \[-1, 1\].*255"):
        loss(pred, (target + 1) * 127.5)


def test_the_check_is_public_and_names_the_loss():
    target = photo(40)[None]
    losses.check_pair(target.clone(), target, "my_loss")
    with pytest.raises(ImageError, match="my_loss: pred and target must have the same shape"):
        losses.check_pair(target[..., :30], target, "my_loss")
    assert losses.as_batch(target[0]).shape == target.shape and losses.as_batch(target) is target


@pytest.mark.parametrize("name", ["l1", "l2", "mixed", "ssim", "ms_ssim"])
def test_bad_inputs(name):
    loss = losses.get_loss(name)
    target = photo(40)[None]
    with pytest.raises(ImageError, match=r"target: values must lie in \[0, 1\].*255"):
        loss(target, target * 255)
    with pytest.raises(ImageError, match="same shape"):
        loss(target[..., :36], target)
    with pytest.raises(ImageError, match="expected shape"):
        loss(target[0, 0], target[0, 0])
    with pytest.raises(ImageError, match="NaN"):
        loss(torch.full_like(target, float("nan")), target)


def test_size_limits():
    small = torch.rand(1, 3, 10, 10)
    with pytest.raises(ImageError, match="11x11"):
        losses.ssim_loss(small, small)
    patch = torch.rand(1, 1, 32, 32)
    with pytest.raises(ImageError, match="33x33"):
        losses.ms_ssim_loss(patch, patch)
    assert np.isfinite(float(losses.ms_ssim_loss(patch, patch, weights=[0.5, 0.5])))
