"""Chapter 7's conditional flow matching: the velocity U-Net, the sampler, the recipe and the ``flow`` experiment.

The sampler is checked against the one case with a closed form: Gaussian targets, whose optimal
velocity field and its exact flow are known, so the Euler and Heun errors can be measured.
"""
from __future__ import annotations

import pytest
import torch
from torch import nn

from i2icourse import experiments, inference, runtime, train
from i2icourse.models.flow_unet import FlowUNet, time_embedding
from i2icourse.recipes.flow import FlowMatching, path, sample

# ----------------------------------------------------------------------------------------------
# The Gaussian case: y ~ N(mu, s^2) per pixel, z ~ N(0, 1)
# ----------------------------------------------------------------------------------------------

MU = torch.linspace(-0.5, 0.8, 16, dtype=torch.float64).reshape(1, 1, 4, 4)
S = torch.linspace(0.1, 1.5, 16, dtype=torch.float64).reshape(1, 1, 4, 4)


def optimal_velocity(x: torch.Tensor, t: torch.Tensor, condition=None, mu=MU, s=S) -> torch.Tensor:
    """E[y - z | x_t = x] for y ~ N(mu, s^2): (t s^2 - (1 - t)) / ((1 - t)^2 + t^2 s^2) (x - t mu) + mu."""
    t = t.reshape(-1, *([1] * (x.dim() - 1))).to(x)
    return (t * s ** 2 - (1 - t)) / ((1 - t) ** 2 + t ** 2 * s ** 2) * (x - t * mu) + mu


def endpoint_error(steps: int, method: str) -> float:
    z = torch.randn(64, 1, 4, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    x1 = inference.flow_sample(optimal_velocity, z, steps, method)
    return (x1 - (MU + S * z)).abs().max().item()       # the exact flow carries z to mu + s z


def test_the_optimal_field_is_the_mean_velocity_of_the_paths_through_each_point():
    # Monte Carlo: among many (z, y) pairs, the ones whose x_t falls near x have mean y - z close to v*(x, t).
    g = torch.Generator().manual_seed(1)
    mu, s, t = 0.4, 0.5, torch.tensor([0.6])
    z = torch.randn(2_000_000, generator=g, dtype=torch.float64)
    y = mu + s * torch.randn(2_000_000, generator=g, dtype=torch.float64)
    x_t, target = path(z, y, t.expand(len(z)).double())
    for x in (-0.5, 0.2, 0.9):
        near = (x_t - x).abs() < 0.01
        want = optimal_velocity(torch.tensor([x], dtype=torch.float64), t, mu=mu, s=s).item()
        assert target[near].mean().item() == pytest.approx(want, abs=0.025)  # about 4 standard errors


def test_euler_is_first_order_and_heun_second_order_on_the_gaussian_flow():
    steps = [1, 2, 4, 8, 16, 32, 64]
    euler = [endpoint_error(n, "euler") for n in steps]
    heun = [endpoint_error(n, "heun") for n in steps]
    assert euler == sorted(euler, reverse=True) and heun == sorted(heun, reverse=True)  # more steps, less error
    for a, b in zip(euler[3:], euler[4:]):       # from 8 steps on, doubling the steps halves Euler's error
        assert 1.6 < a / b < 2.4
    for a, b in zip(heun[3:], heun[4:]):         # ... and quarters Heun's
        assert 2.8 < a / b < 5.2
    assert all(h < e for h, e in zip(heun[1:], euler[1:]))
    assert endpoint_error(1024, "euler") < 1e-2 and endpoint_error(256, "heun") < 1e-4   # both reach mu + s z


def test_the_sampler_refuses_what_it_cannot_integrate():
    z = torch.zeros(1, 1, 4, 4)
    with pytest.raises(ValueError, match="steps must be a positive integer"):
        inference.flow_sample(optimal_velocity, z, 0)
    with pytest.raises(ValueError, match="method must be 'euler' or 'heun'"):
        inference.flow_sample(optimal_velocity, z, 4, "rk4")


def test_the_sampler_passes_each_image_its_time_and_the_condition():
    seen = []

    def velocity(x, t, condition):
        seen.append((t.clone(), condition))
        return torch.ones_like(x)

    cond = torch.rand(3, 1, 4, 4)
    x1 = inference.flow_sample(velocity, torch.zeros(3, 1, 4, 4), 4, "heun", cond)
    assert torch.allclose(x1, torch.ones(3, 1, 4, 4))        # a constant field of 1 moves 0 to 1
    times = [t[0].item() for t, _ in seen]
    assert times == pytest.approx([0, 0.25, 0.25, 0.5, 0.5, 0.75, 0.75, 1.0])   # two evaluations per step
    assert all(t.shape == (3,) and c is cond for t, c in seen)


# ----------------------------------------------------------------------------------------------
# The loss
# ----------------------------------------------------------------------------------------------

class Recorder(nn.Module):
    """A 'network' that records its inputs and answers a fixed field (with one parameter for Adam)."""

    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.tensor(0.5))
        self.out_channels = 1
        self.calls = []

    def forward(self, x, t, condition):
        self.calls.append((x.detach().clone(), t.detach().clone(), condition))
        return self.w * x


def test_the_path_runs_from_the_noise_to_the_target_at_a_constant_velocity():
    g = torch.Generator().manual_seed(0)
    z, y = torch.randn(3, 1, 4, 4, generator=g), torch.rand(3, 1, 4, 4, generator=g) * 2 - 1
    start, v0 = path(z, y, torch.zeros(3))
    end, v1 = path(z, y, torch.ones(3))
    assert torch.equal(start, z) and torch.equal(end, y)
    assert torch.equal(v0, y - z) and torch.equal(v1, y - z)
    middle, _ = path(z, y, torch.tensor([0.0, 0.5, 1.0]))          # one time per image
    assert torch.equal(middle[0], z[0]) and torch.equal(middle[2], y[2])
    assert torch.allclose(middle[1], (z[1] + y[1]) / 2)


def test_the_loss_regresses_the_network_on_y_minus_z_at_x_t():
    net = Recorder()
    recipe = FlowMatching(net)
    g = torch.Generator().manual_seed(0)
    x, y, z = (torch.rand(2, 1, 4, 4, generator=g) * 2 - 1 for _ in range(3))
    t = torch.tensor([0.25, 0.75])
    loss = recipe.loss(x, y, z, t)
    (x_t, seen_t, cond), = net.calls
    want_x_t = torch.stack([0.75 * z[0] + 0.25 * y[0], 0.25 * z[1] + 0.75 * y[1]])
    assert torch.allclose(x_t, want_x_t) and torch.equal(seen_t, t) and cond is x
    assert loss.item() == pytest.approx(((0.5 * want_x_t - (y - z)) ** 2).mean().item(), rel=1e-6)


def test_the_loss_draws_a_new_time_per_image_and_noise_of_the_targets_shape():
    net = Recorder()
    recipe = FlowMatching(net)
    y = torch.zeros(5, 1, 4, 4)
    recipe.loss(torch.zeros(5, 1, 4, 4), y)
    (x_t, t, _), = net.calls
    assert t.shape == (5,) and len(set(t.tolist())) == 5 and ((0 <= t) & (t <= 1)).all()
    assert x_t.shape == y.shape and x_t.std() > 0.1         # (1 - t) z: noise where y is 0


def test_a_small_network_learns_the_optimal_field_of_a_gaussian():
    # y ~ N(mu, s^2) on single pixels, no condition: the recipe's own step should find v*.
    runtime.seed_everything(0)
    mu, s = 0.3, 0.4

    class MLP(nn.Module):
        out_channels = 1

        def __init__(self):
            super().__init__()
            self.f = nn.Sequential(nn.Linear(2, 64), nn.SiLU(), nn.Linear(64, 64), nn.SiLU(), nn.Linear(64, 1))

        def forward(self, x, t, condition):          # x: (N, 1, 1, 1), t: (N,)
            return self.f(torch.stack([x.flatten(), t], dim=1)).reshape(x.shape)

    recipe = FlowMatching(MLP(), lr=1e-2, lr_drop_at=500)
    g = torch.Generator().manual_seed(0)
    for i in range(800):
        y = ((mu + s * torch.randn(1024, 1, 1, 1, generator=g)) + 1) / 2   # targets in [0, 1]: the step maps them
        recipe.step({"A": torch.full_like(y, 0.5), "B": y}, i)
    t = torch.rand(2000, generator=g) * 0.9 + 0.05
    x_t = t * mu + ((1 - t) ** 2 + t ** 2 * s ** 2).sqrt() * torch.randn(2000, generator=g)  # where the paths go
    with inference.evaluating(recipe.model):
        learned = recipe.model(x_t.reshape(-1, 1, 1, 1), t, None).flatten()
    best = optimal_velocity(x_t.double(), t.double(), mu=mu, s=s).float()
    assert (learned - best).abs().mean() < 0.06       # (a field of 0 everywhere is off by about 0.6)
    # and the learned flow carries N(0, 1) to about N(mu, s^2)
    z = torch.randn(4000, 1, 1, 1, generator=g)
    with inference.evaluating(recipe.model):
        x1 = inference.flow_sample(recipe.model, z, 32, "heun")
    assert x1.mean().item() == pytest.approx(mu, abs=0.05) and x1.std().item() == pytest.approx(s, abs=0.05)


# ----------------------------------------------------------------------------------------------
# The velocity U-Net
# ----------------------------------------------------------------------------------------------

def test_time_embedding_is_sines_then_cosines_of_the_scaled_time():
    e = time_embedding(torch.tensor([0.0, 0.5]), 8)
    assert e.shape == (2, 8)
    assert torch.equal(e[0], torch.tensor([0.0] * 4 + [1.0] * 4))      # sin 0, cos 0
    assert e[1, 0].item() == pytest.approx(torch.sin(torch.tensor(500.0)).item(), abs=1e-5)  # frequency 1
    with pytest.raises(ValueError, match="even"):
        time_embedding(torch.zeros(1), 7)


def test_the_unet_keeps_the_size_depends_on_the_time_and_the_condition():
    torch.manual_seed(0)
    net = FlowUNet(in_channels=1, cond_channels=1, out_channels=1, widths=(8, 16, 32))
    x, cond = torch.randn(2, 1, 16, 12), torch.randn(2, 1, 16, 12)
    assert torch.equal(net(x, 0.3, cond), torch.zeros(2, 1, 16, 12))   # the last conv starts at zero: v = 0
    nn.init.normal_(net.out.weight, std=0.1)
    v = net(x, torch.tensor([0.3, 0.3]), cond)
    assert v.shape == (2, 1, 16, 12)
    assert torch.equal(v, net(x, 0.3, cond))                          # a float time is every image's time
    assert not torch.allclose(v, net(x, 0.8, cond))
    assert not torch.allclose(v, net(x, 0.3, torch.randn(2, 1, 16, 12)))
    net(x, torch.rand(2), cond).pow(2).sum().backward()
    assert net.time_mlp[0].weight.grad.abs().sum() > 0                 # the time reaches the loss
    assert net.multiple == 4
    with pytest.raises(ValueError, match="multiples of 4"):
        net(torch.randn(1, 1, 18, 16), 0.5, torch.randn(1, 1, 18, 16))
    with pytest.raises(ValueError, match="at least two levels"):
        FlowUNet(widths=(8,))


def test_the_unet_upsamples_by_nearest_neighbour_and_convolution():
    net = FlowUNet(widths=(8, 16))
    assert not any(isinstance(m, nn.ConvTranspose2d) for m in net.modules())
    assert any(isinstance(m, nn.Upsample) and m.mode == "nearest" for m in net.modules())


# ----------------------------------------------------------------------------------------------
# The recipe
# ----------------------------------------------------------------------------------------------

STEPS, BATCH = 6, 4


def patches(n: int = 12, side: int = 8) -> list[dict[str, torch.Tensor]]:
    """(blurred-ish input, target) pairs of Y patches in [0, 1]."""
    g = torch.Generator().manual_seed(0)
    y = torch.rand(n, 1, side, side, generator=g)
    x = (y + 0.1 * torch.randn(n, 1, side, side, generator=g)).clamp(0, 1)
    return [{"A": a, "B": b} for a, b in zip(x, y)]   # the batch format of SRPatches


def new_recipe() -> FlowMatching:
    runtime.seed_everything(0)
    return FlowMatching(FlowUNet(widths=(4, 8)), lr=1e-3, lr_drop_at=4)


def fit(recipe: FlowMatching, steps: int, checkpoint=None) -> train.History:
    return train.fit(recipe.step, patches(), steps=steps, batch_size=BATCH, seed=0, progress=False,
                     objects=recipe.objects(), checkpoint=checkpoint, checkpoint_every=2)


def weights(model: nn.Module) -> list[torch.Tensor]:
    return [t.detach().clone() for t in model.state_dict().values()]


def test_the_checkpoint_names_are_the_single_network_recipes():
    recipe = new_recipe()
    assert list(recipe.objects()) == ["net", "opt", "sched"]
    assert experiments.EXPERIMENTS["flow"].weights == "net"


def test_a_step_changes_the_weights_and_lowers_the_loss_on_a_fixed_batch():
    recipe = new_recipe()
    x, y = (torch.stack([p[k] for p in patches()[:BATCH]]) for k in "AB")
    before = weights(recipe.model)
    torch.manual_seed(1)
    first = sum(recipe.step({"A": x, "B": y}, i)["loss"] for i in range(10))
    assert any(not torch.equal(a, b) for a, b in zip(before, weights(recipe.model)))
    for i in range(10, 150):
        recipe.step({"A": x, "B": y}, i)
    torch.manual_seed(1)  # the same noises and times as the first ten
    last = sum(recipe.step({"A": x, "B": y}, i)["loss"] for i in range(10))
    assert last < first and recipe.model.training


def test_resume_is_exact(tmp_path):
    straight = new_recipe()
    history = fit(straight, STEPS)
    half = new_recipe()
    fit(half, STEPS // 2, tmp_path / "flow.pt")
    torch.manual_seed(123)  # an interruption scrambles the global RNG; the checkpoint restores it
    resumed = new_recipe()
    resumed_history = fit(resumed, STEPS, tmp_path / "flow.pt")
    assert all(torch.equal(a, b) for a, b in zip(weights(straight.model), weights(resumed.model)))
    assert resumed_history.values("loss")[-1] == history.values("loss")[-1]   # the same noise and times too
    assert resumed.sched.last_epoch == straight.sched.last_epoch == STEPS
    assert resumed.opt.param_groups[0]["lr"] == straight.opt.param_groups[0]["lr"] == pytest.approx(1e-4)


def test_translate_is_reproducible_from_its_seed_and_samples_give_mean_and_spread():
    recipe = new_recipe()
    fit(recipe, 2)
    nn.init.normal_(recipe.model.out.weight, std=0.1)        # a field that is not zero
    x = torch.stack([p["A"] for p in patches()[:3]])
    one = recipe.translate(x, steps=3, seed=5)
    assert one.shape == x.shape and 0 <= one.min() and one.max() <= 1
    assert torch.allclose(one, recipe.translate(x, steps=3, seed=5, batch_size=2), atol=1e-5)  # any chunking
    assert torch.equal(recipe.translate(x[0], steps=3, seed=5), recipe.translate(x[:1], steps=3, seed=5)[0])
    assert not torch.equal(one, recipe.translate(x, steps=3, seed=6))
    assert recipe.model.training                               # the mode comes back
    drawn = recipe.samples(x, k=4, steps=3, seed=5)
    assert drawn.draws.shape == (4, *x.shape) and torch.equal(drawn.draws[0], one)
    assert torch.allclose(drawn.mean, drawn.draws.mean(0)) and drawn.std.shape == x.shape
    assert (drawn.std > 0).any()
    assert torch.equal(sample(recipe.model, x, 3, "euler", 5), one)
    with pytest.raises(ValueError, match="k must be at least 1"):
        recipe.samples(x, k=0)


# ----------------------------------------------------------------------------------------------
# The experiment
# ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("profile", runtime.PROFILES)
def test_the_flow_experiment_configures_and_builds_in_every_profile(profile):
    E = experiments.EXPERIMENTS["flow"]
    assert E is experiments.FLOW and E.chapter == "07_flow_matching"
    P = experiments.configure(E, profile)
    assert P["experiment"] == "flow" and P["profile"] == profile and P["size"] == E.profiles[profile]["size"]
    assert P["scale"] == 4 and P["size"] % 2 ** (len(P["widths"]) - 1) == 0
    recipe, net = E.build(P, torch.device("cpu"))
    assert isinstance(recipe, FlowMatching) and isinstance(net, FlowUNet) and net is recipe.model
    assert net.widths == tuple(P["widths"]) and (net.in_channels, net.cond_channels, net.out_channels) == (1, 1, 1)
    fresh = experiments.generator(P)                          # what `apply` rebuilds from a checkpoint
    assert [p.shape for p in fresh.parameters()] == [p.shape for p in net.parameters()]


def test_the_flow_experiment_refuses_a_size_the_unet_cannot_halve():
    with pytest.raises(ValueError, match="not a multiple of"):
        experiments.configure(experiments.FLOW, "cpu", ["size=30"])


def test_the_flow_experiment_trains_on_chapter_3s_patches_and_applies_the_sampler(monkeypatch):
    E = experiments.FLOW
    P = experiments.configure(E, "smoke")
    g = torch.Generator().manual_seed(0)
    photos = {f"p{i}": torch.rand(3, 40, 44, generator=g) for i in range(2)}
    data = E.dataset(photos, P)
    x, y = data[0]["A"], data[0]["B"]
    assert x.shape == y.shape == (1, P["size"], P["size"])
    recipe, net = E.build(P, torch.device("cpu"))
    nn.init.normal_(net.out.weight, std=0.1)
    calls = []
    original = inference.flow_sample
    monkeypatch.setattr(inference, "flow_sample", lambda *a, **k: calls.append(a[2]) or original(*a, **k))
    out = E.apply(net, torch.rand(3, 10, 12, generator=g), P, P["size"], P["size"] // 4)
    assert calls and set(calls) == {P["sample_steps"]}
    grid = E.translator(net)(torch.stack([x, y]))
    assert out.shape == (3, 40, 48) and 0 <= out.min() and out.max() <= 1
    assert grid.shape == (2, 1, P["size"], P["size"])
    assert set(calls) == {P["sample_steps"], experiments.FLOW_GRID_STEPS}
