"""i2icourse.recipes.base: the shape every recipe shares, its one optimiser update, and the one translator."""
import copy

import pytest
import torch
from torch import nn

from i2icourse import experiments, inference, images, losses
from i2icourse.models.autoencoder import ConvAutoencoder
from i2icourse.models.patchgan import PatchDiscriminator, patchgan
from i2icourse.models.resnet_generator import ResnetGenerator
from i2icourse.models.srcnn import SRCNN
from i2icourse.models.ssim_map_nets import unet
from i2icourse.models.unet import UNetGenerator
from i2icourse.recipes.autoencoders import Reconstruction
from i2icourse.recipes.base import Recipe
from i2icourse.recipes.cyclegan import CycleGAN, Unconditional
from i2icourse.recipes.pix2pix import Pix2Pix
from i2icourse.recipes.srcnn import SuperResolution
from i2icourse.recipes.ssim_maps import MapRegressor


def _pix2pix(**kw):
    torch.manual_seed(0)
    return Pix2Pix(UNetGenerator(3, 3, depth=3, ngf=4), PatchDiscriminator(6, 4, 2), **kw)


def _cyclegan(**kw):
    torch.manual_seed(0)
    nets = [ResnetGenerator(3, 3, 4, 1) for _ in range(2)] + [Unconditional(patchgan(16, 3, 4, norm="instance"))
                                                               for _ in range(2)]
    return CycleGAN(*nets, pool=2, **kw)


RECIPES = {  # name -> (a tiny recipe, its networks' checkpoint names)
    "pix2pix": (_pix2pix, ["G", "D"]),
    "cyclegan": (_cyclegan, ["G", "F", "D_A", "D_B"]),
    "srcnn": (lambda: SuperResolution(SRCNN(1, 4, 2, 3, 3, 3), losses.get_loss("l2")), ["net"]),
    "autoencoders": (lambda: Reconstruction(ConvAutoencoder(16, 4, (4,)), losses.get_loss("l1")), ["net"]),
    "ssim_maps": (lambda: MapRegressor(unet(4), halve_every=1), ["net"]),
}


@pytest.mark.parametrize("name", sorted(RECIPES))
def test_every_recipe_names_its_networks_first_in_its_checkpoint(name):
    build, names = RECIPES[name]
    recipe = build()
    assert isinstance(recipe, Recipe)
    objects = recipe.objects()
    assert list(objects)[:len(names)] == names == list(recipe.networks())
    assert all(isinstance(objects[n], nn.Module) for n in names)
    optimisers = [o for o in objects.values() if isinstance(o, torch.optim.Optimizer)]
    assert optimisers and set(map(id, optimisers)) == {id(o) for o in recipe.training_state().values()
                                                        if isinstance(o, torch.optim.Optimizer)}


class _Linear(Recipe):
    """The smallest recipe: one linear layer, SGD, the squared output as the loss."""

    def __init__(self, precision=None):
        super().__init__("cpu", precision)
        torch.manual_seed(0)
        self.model = nn.Linear(3, 2)
        self.opt = torch.optim.SGD(self.model.parameters(), lr=0.1)

    def networks(self):
        return {"net": self.model}

    def training_state(self):
        return {"opt": self.opt}

    def step(self, batch, step=0):
        loss = self.model(batch).pow(2).mean()
        self.update(loss, self.opt)
        self.finish_step()
        return {"loss": float(loss.detach())}

    def translate(self, x):
        return inference.translate(self.model, x, signed=False)


def test_update_is_zero_grad_backward_step():
    recipe = _Linear("fp32")
    plain = copy.deepcopy(recipe.model)
    opt = torch.optim.SGD(plain.parameters(), lr=0.1)
    x = torch.rand(4, 3)
    for net in (recipe.model, plain):   # stale gradients that the update must not add to its own
        net(x).sum().backward()
    for _ in range(3):
        recipe.step(x)
        opt.zero_grad()
        plain(x).pow(2).mean().backward()
        opt.step()
    for p, q in zip(recipe.model.parameters(), plain.parameters()):
        assert torch.equal(p, q)


def test_in_fp16_the_update_unscales_and_the_scale_adapts_once_per_step():
    fp16, fp32 = _Linear("fp16"), _Linear("fp32")
    x = torch.rand(4, 3)
    fp16.step(x), fp32.step(x)
    # the loss was multiplied by 2**16 before the backward pass and the gradients divided by it again
    assert fp16.precision.scaler.get_scale() == 2.0 ** 16
    for p, q in zip(fp16.model.parameters(), fp32.model.parameters()):
        assert torch.allclose(p, q, atol=1e-6)
    # two optimisers, one scale update per step: the growth tracker counts steps, not updates
    gan = _pix2pix(precision="fp16")
    gan.precision.scaler = torch.amp.GradScaler("cpu", init_scale=1.0)   # small: no step overflows
    g = torch.Generator().manual_seed(1)
    for i in range(3):
        gan.step({"A": torch.rand(2, 3, 16, 16, generator=g), "B": torch.rand(2, 3, 16, 16, generator=g)}, i)
    assert gan.precision.scaler.state_dict()["_growth_tracker"] == 3


def test_finish_step_advances_every_schedule_once_per_step():
    gan = _pix2pix(steps=4)
    g = torch.Generator().manual_seed(1)
    for i in range(3):
        gan.step({"A": torch.rand(2, 3, 16, 16, generator=g), "B": torch.rand(2, 3, 16, 16, generator=g)}, i)
    assert gan.sched_G.last_epoch == gan.sched_D.last_epoch == 3
    assert gan.opt_G.param_groups[0]["lr"] == pytest.approx(2e-4 * 0.5)   # halfway through the decay


def test_translate_maps_to_the_tanh_range_and_back_in_eval_mode():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 3, 3, padding=1), nn.Dropout(0.5), nn.Tanh())
    x = torch.rand(5, 3, 8, 8)
    net.train()
    out = inference.translate(net, x, batch_size=len(x))
    assert net.training
    with inference.evaluating(net):
        want = images.from_signed(net(images.to_signed(x)))
    assert torch.equal(out, want)
    assert torch.allclose(inference.translate(net, x, batch_size=2), want, atol=1e-6)  # in chunks
    one = inference.translate(net, x[0])                                             # one (C, H, W) image
    assert one.shape == (3, 8, 8) and torch.allclose(one, want[0], atol=1e-6)
    with inference.evaluating(net):
        assert torch.equal(inference.translate(net, x, signed=False), net(x))         # as it is


def test_every_translator_is_the_one_in_float32_whatever_the_training_precision():
    x = torch.rand(3, 3, 16, 16)
    bf16 = _pix2pix(precision="bf16")
    plain = inference.translate(bf16.G, x)
    out = bf16.translate(x)
    assert out.dtype == torch.float32 and torch.equal(out, plain)
    assert torch.equal(experiments.EXPERIMENTS["pix2pix"].translator(bf16.G)(x), plain)   # `apply` of the CLI
    cyc = _cyclegan()
    assert torch.equal(cyc.translate(x, "BA"), inference.translate(cyc.F, x))
