"""i2icourse.inference: eval mode and no gradients while a network runs, its modes back afterwards, in chunks."""
import pytest
import torch
from torch import nn

from i2icourse import fid, inference, sr_eval, tiling
from i2icourse.models.patchgan import patchgan
from i2icourse.models.unet import UNetGenerator
from i2icourse.recipes.autoencoders import reconstruct
from i2icourse.recipes.cyclegan import CycleGAN
from i2icourse.recipes.pix2pix import Pix2Pix


class Recorder(nn.Module):
    """Doubles its input; records, per call, the batch size, its mode and whether gradients were on."""

    def __init__(self, fail_at: int | None = None):
        super().__init__()
        self.scale = nn.Parameter(torch.tensor(2.0))
        self.calls: list[tuple[int, bool, bool]] = []
        self.fail_at = fail_at

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls.append((len(x), self.training, torch.is_grad_enabled()))
        if self.fail_at is not None and len(self.calls) == self.fail_at:
            raise RuntimeError("broken chunk")
        return self.scale * x


def test_evaluating_restores_every_layers_mode_even_on_an_error():
    net = nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2), nn.Dropout(0.5))
    net.train()
    net[1].eval()                                    # frozen on purpose inside a training network
    with pytest.raises(RuntimeError, match="inside"):
        with inference.evaluating(net):
            assert not any(m.training for m in net.modules()) and not torch.is_grad_enabled()
            raise RuntimeError("inside")
    assert net.training and net[0].training and net[2].training and not net[1].training
    assert torch.is_grad_enabled()


def test_predict_runs_in_chunks_in_eval_mode_without_gradients():
    net = Recorder()
    x = torch.rand(7, 3)
    y = inference.predict(net, x, batch_size=3)
    assert torch.equal(y, 2 * x) and not y.requires_grad and y.device.type == "cpu"
    assert net.calls == [(3, False, False), (3, False, False), (1, False, False)]
    assert net.training
    assert torch.equal(inference.predict(net, x, 4, fn=lambda b: net(b) + 1), 2 * x + 1)
    assert inference.predict(net, x[:0]).shape == (0, 3)          # an empty batch: an empty answer
    assert torch.equal(inference.predict(lambda b: -b, x), -x)    # a plain function works too
    with pytest.raises(ValueError, match="batch_size"):
        inference.predict(net, x, 0)


def test_predict_restores_the_mode_when_a_chunk_fails():
    net = Recorder(fail_at=2)
    with pytest.raises(RuntimeError, match="broken chunk"):
        inference.predict(net, torch.rand(5, 3), batch_size=2)
    assert net.training


def test_the_translators_restore_the_mode_after_an_error():
    # UNetGenerator(depth=5) refuses 30x30 inputs: the error must not leave G in eval mode.
    torch.manual_seed(0)
    gan = Pix2Pix(UNetGenerator(depth=5, ngf=4), patchgan(16, ndf=4))
    with pytest.raises(ValueError, match="multiples of 32"):
        gan.translate(torch.rand(2, 3, 30, 30))
    assert gan.G.training
    out = gan.translate(torch.rand(3, 32, 32))
    assert out.shape == (3, 32, 32) and 0 <= float(out.min()) and float(out.max()) <= 1 and gan.G.training
    cyc = CycleGAN(Recorder(fail_at=1), Recorder(), nn.Conv2d(3, 1, 1), nn.Conv2d(3, 1, 1))
    with pytest.raises(RuntimeError, match="broken chunk"):
        cyc.translate(torch.rand(2, 3, 8, 8))
    assert cyc.G.training
    x = torch.rand(3, 8, 8)
    assert torch.allclose(cyc.translate(x, "BA"), ((2 * (2 * x - 1) + 1) / 2).clamp(0, 1))   # F = 2s on the tanh range


def test_every_runner_uses_eval_mode():
    # A network with dropout gives the same answer twice only in eval mode.
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.Dropout(0.5), nn.Conv2d(4, 1, 3, padding=1), nn.Sigmoid())
    x = torch.rand(2, 1, 16, 16)
    runs = {"reconstruct": lambda: reconstruct(net, x),
            "upscaler": lambda: sr_eval.upscaler(net)(x),
            "tiled_apply": lambda: tiling.tiled_apply(net, x, tile=8, overlap=2),
            "features": lambda: fid.features(net, x)}
    for name, run in runs.items():
        net.train()
        first, second = run(), run()
        assert torch.equal(first, second), name
        assert net.training, name
