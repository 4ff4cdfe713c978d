"""The numeric precision of training steps (:mod:`i2icourse.precision`) and every recipe under it.

The CPU has bfloat16 and float16 autocast and a gradient scaler, so each path of a CUDA run is
exercised here at tiny sizes: the device default, the choice by name, the GPU generations (faked),
and each recipe's step in bf16 and in fp16 with its scaler, saved and restored by a checkpoint.
"""
from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from i2icourse import losses, train
from i2icourse.models import ssim_map_nets
from i2icourse.models.autoencoder import ConvAutoencoder
from i2icourse.models.flow_unet import FlowUNet
from i2icourse.models.patchgan import patchgan
from i2icourse.models.resnet_generator import ResnetGenerator
from i2icourse.models.srcnn import SRCNN
from i2icourse.models.unet import UNetGenerator
from i2icourse.precision import Precision, policy
from i2icourse.recipes import ssim_maps
from i2icourse.recipes.autoencoders import Reconstruction
from i2icourse.recipes.cyclegan import CycleGAN, Unconditional
from i2icourse.recipes.flow import FlowMatching
from i2icourse.recipes.pix2pix import Pix2Pix
from i2icourse.recipes.srcnn import SuperResolution


@pytest.fixture(autouse=True)
def no_precision_variable(monkeypatch):
    monkeypatch.delenv("I2I_PRECISION", raising=False)


# ---------------------------------------------------------------------------------------------- policy

def test_the_cpu_default_is_plain_float32():
    p = policy("cpu")
    assert (p.name, p.dtype, p.channels_last, p.device) == ("fp32", None, False, torch.device("cpu"))
    assert not p.scaler.is_enabled() and p.objects() == {}
    x = torch.rand(2, 3, 4, 4)
    assert p.to_input(x) is x                       # nothing moved, nothing copied
    with p.autocast():
        assert not torch.is_autocast_enabled("cpu")


@pytest.mark.parametrize("choice, dtype", [("fp32", None), ("bf16", torch.bfloat16), ("fp16", torch.float16),
                                           (" BF16 ", torch.bfloat16), ("auto", None)])
def test_a_choice_by_name(choice, dtype):
    p = policy("cpu", choice)
    assert p.dtype == dtype and not p.channels_last
    assert p.scaler.is_enabled() == (dtype is torch.float16)
    assert ("scaler" in p.objects()) == (dtype is torch.float16)


def test_the_environment_variable_chooses_and_the_argument_wins(monkeypatch):
    monkeypatch.setenv("I2I_PRECISION", "bf16")
    assert policy("cpu").dtype is torch.bfloat16
    assert policy("cpu", "fp16").dtype is torch.float16
    assert Reconstruction(ConvAutoencoder(48, 16, (8, 16)), losses.get_loss("mse")).precision.name == "bf16"


def test_a_bad_name_is_refused_with_the_choices(monkeypatch):
    with pytest.raises(ValueError, match="auto, fp32, bf16, fp16"):
        policy("cpu", "half")
    monkeypatch.setenv("I2I_PRECISION", "fp8")
    with pytest.raises(ValueError, match="'fp8'.*I2I_PRECISION"):
        policy("cpu")
    with pytest.raises(ValueError, match="torch.bfloat16 or torch.float16"):
        Precision(torch.float64)


def test_a_precision_object_is_taken_as_it_is_on_its_own_device():
    mine = Precision(torch.bfloat16, channels_last=True)
    assert policy("cpu", mine) is mine
    with pytest.raises(ValueError, match="made for the device cpu, not cuda"):
        policy("cuda", mine)


@pytest.mark.parametrize("capability, name", [((7, 5), "fp16"), ((8, 0), "bf16"), ((9, 0), "bf16")])
def test_auto_on_cuda_picks_bf16_from_ampere_on_else_fp16(monkeypatch, capability, name):
    # A T4 (7.5) emulates bf16 (torch.cuda.is_bf16_supported() is True there) but has no fast bf16.
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: capability)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported",
                        lambda including_emulation=True: including_emulation or capability >= (8, 0))
    p = policy("cuda")
    assert p.name == name and p.channels_last and p.device.type == "cuda"
    assert p.scaler.is_enabled() == (name == "fp16")
    assert policy("cuda", "fp32").channels_last  # the memory order follows the device, not the dtype


def test_channels_last_reorders_models_and_inputs():
    p = Precision(None, channels_last=True)
    conv = p.to_model(nn.Conv2d(3, 4, 3))
    x = p.to_input(torch.rand(2, 3, 8, 8))
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)
    assert x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous()


# ---------------------------------------------------------------------------------------------- recipes

def _images(*shape: int, seed: int) -> torch.Tensor:
    return torch.rand(*shape, generator=torch.Generator().manual_seed(seed))


def _pairs(seed: int, b_channels: int = 3) -> dict[str, torch.Tensor]:
    return {"A": _images(2, 3, 32, 32, seed=seed), "B": _images(2, b_channels, 32, 32, seed=seed + 100)}


def _float32_spy(loss_fn, seen: list[tuple[torch.dtype, bool]]):
    """``loss_fn``, recording the dtype of the predictions it gets and whether it runs under autocast."""
    def spy(pred, target):
        seen.append((pred.dtype, torch.is_autocast_enabled("cpu")))
        return loss_fn(pred, target)
    return spy


# name -> (make(precision, seen_loss_dtypes), batch(seed))
RECIPES = {
    "pix2pix": (lambda p, seen: Pix2Pix(UNetGenerator(depth=5, ngf=4), patchgan(16, ndf=4), precision=p,
                                        extra_loss=_float32_spy(losses.get_loss("l1"), seen)),
                _pairs),
    "map_gan": (lambda p, seen: ssim_maps.map_gan(ssim_map_nets.build("gan", depth=5, ngf=4), n_layers=1, ndf=4,
                                                  precision=p),
                lambda seed: _pairs(seed, b_channels=1)),
    "cyclegan": (lambda p, seen: CycleGAN(ResnetGenerator(3, 3, 4, 1), ResnetGenerator(3, 3, 4, 1),
                                          Unconditional(patchgan(16, 3, ndf=4, norm="instance")),
                                          Unconditional(patchgan(16, 3, ndf=4, norm="instance")), pool=2,
                                          precision=p),
                 _pairs),
    "srcnn": (lambda p, seen: SuperResolution(SRCNN(n1=8, n2=4), _float32_spy(losses.get_loss("ssim"), seen),
                                              precision=p),
              lambda seed: {"A": _images(4, 1, 16, 16, seed=seed), "B": _images(4, 1, 16, 16, seed=seed + 100)}),
    "flow": (lambda p, seen: FlowMatching(FlowUNet(widths=(4, 8)), precision=p),
             lambda seed: {"A": _images(4, 1, 16, 16, seed=seed), "B": _images(4, 1, 16, 16, seed=seed + 100)}),
    "autoencoder": (lambda p, seen: Reconstruction(ConvAutoencoder(48, 16, (8, 16)),
                                                   _float32_spy(losses.get_loss("mse"), seen), precision=p),
                    lambda seed: _images(4, 1, 48, 48, seed=seed)),
    "map_regressor": (lambda p, seen: ssim_maps.MapRegressor(ssim_map_nets.build("unet", base=4), precision=p),
                      lambda seed: _pairs(seed, b_channels=1)),
}
#: The recipes whose loss function the test can wrap (the others compute their losses inline).
SPIED = {"pix2pix", "srcnn", "autoencoder"}
STEPS = 3


def _networks(recipe) -> list[nn.Module]:
    return [obj for obj in recipe.objects().values() if isinstance(obj, nn.Module)]


def _first_conv(net: nn.Module) -> nn.Module:
    return next(m for m in net.modules() if isinstance(m, nn.Conv2d))


def _train(name: str, precision: str):
    """A recipe trained ``STEPS`` steps in ``precision``."""
    make, batch = RECIPES[name]
    torch.manual_seed(0)
    recipe = make(precision, [])
    for seed in range(STEPS):
        recipe.step(batch(seed), seed)
    return recipe


@pytest.mark.filterwarnings("ignore:Detected call of `lr_scheduler.step\\(\\)` before `optimizer.step\\(\\)`")
@pytest.mark.parametrize("precision, dtype", [("bf16", torch.bfloat16), ("fp16", torch.float16)])
@pytest.mark.parametrize("name", list(RECIPES))
def test_each_recipe_trains_in_mixed_precision_with_float32_weights_and_losses(name, precision, dtype):
    # (fp16 may skip a first step whose scaled gradients overflowed: then torch warns that the
    # scheduler stepped before the optimiser did.)
    make, batch = RECIPES[name]
    torch.manual_seed(0)
    seen: list[tuple[torch.dtype, bool]] = []
    recipe = make(precision, seen)
    computed: list[torch.dtype] = []
    for net in _networks(recipe):
        _first_conv(net).register_forward_hook(lambda m, i, out: computed.append(out.dtype))
    before = [p.detach().clone() for net in _networks(recipe) for p in net.parameters()]
    logged = [recipe.step(batch(seed), seed) for seed in range(STEPS)]
    assert computed and set(computed) == {dtype}, "the convolutions did not run in the chosen precision"
    assert set(seen) == ({(torch.float32, False)} if name in SPIED else set()), \
        "a loss got a prediction in 16 bits, or ran under autocast (its convolutions in 16 bits)"
    for values in logged:
        assert all(type(v) is float and math.isfinite(v) for v in values.values()), values
    after = [p for net in _networks(recipe) for p in net.parameters()]
    assert all(p.dtype == torch.float32 for p in after)
    assert any(not torch.equal(a, b) for a, b in zip(before, after)), "no parameter was updated"
    if isinstance(recipe, CycleGAN):
        assert recipe.pool_A.images[0].dtype == torch.float32  # the pools' fakes are float32 like the real images
    assert ("scaler" in recipe.objects()) == (precision == "fp16")  # bf16 checkpoints look as before


@pytest.mark.filterwarnings("ignore:Detected call of `lr_scheduler.step\\(\\)` before `optimizer.step\\(\\)`")
@pytest.mark.parametrize("name", list(RECIPES))
def test_a_checkpoint_keeps_the_fp16_scale(name, tmp_path):
    trained = _train(name, "fp16")
    state = trained.precision.scaler.state_dict()
    fresh = RECIPES[name][0]("fp16", [])
    assert fresh.precision.scaler.state_dict() != state  # the steps changed the scale or its growth count
    if state["scale"] == fresh.precision.scaler.get_scale():  # no step overflowed: one update per step
        assert state["_growth_tracker"] == STEPS
    path = train.save_checkpoint(tmp_path / "run.pt", STEPS, trained.objects())
    train.load_checkpoint(path, fresh.objects())
    assert fresh.precision.scaler.state_dict() == state
