"""Chapter 06: CycleGAN -- ResNet generator, image pool, schedule, unaligned data, the step, resume, checks."""
import pytest
import torch
from torch import nn

from i2icourse import images, train
from i2icourse.data.unpaired import (UnalignedDataset, dusk_grade, dusk_ungrade, film_negative, film_positive, flat_colour,
                                     hidden_truth_task)
from i2icourse.models.patchgan import patchgan
from i2icourse.models.resnet_generator import ResnetGenerator
from i2icourse.recipes.cyclegan import CycleGAN, ImagePool, Unconditional
from i2icourse.recipes.pix2pix import Pix2Pix
from i2icourse.recipes.schedule import linear_decay


def small_gan(**kw):
    torch.manual_seed(0)
    return CycleGAN(ResnetGenerator(3, 3, 4, 1), ResnetGenerator(3, 3, 4, 1),
                    Unconditional(patchgan(70, 3, 4, norm="instance")), Unconditional(patchgan(70, 3, 4, norm="instance")),
                    **kw)


def photos(n=6, size=40, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.rand(3, size, size + 8, generator=g) for _ in range(n)]


# --- the generator -----------------------------------------------------------------------------

@pytest.mark.parametrize("size,ngf,blocks", [(32, 4, 1), (64, 16, 3), (128, 8, 6), (256, 4, 9)])
def test_resnet_generator_keeps_the_size(size, ngf, blocks):
    G = ResnetGenerator(3, 3, ngf, blocks)
    y = G(torch.rand(1, 3, size, size) * 2 - 1)
    assert y.shape == (1, 3, size, size) and y.abs().max() <= 1
    assert sum(isinstance(m, nn.ReflectionPad2d) for m in G.modules()) == 2 + 2 * blocks
    assert not any(isinstance(m, nn.BatchNorm2d) for m in G.modules())


def test_resnet_generator_paper_size_and_bad_input():
    n6 = sum(p.numel() for p in ResnetGenerator(3, 3, 64, 6).parameters())
    n9 = sum(p.numel() for p in ResnetGenerator(3, 3, 64, 9).parameters())
    assert n9 - n6 == 3 * 2 * (9 * 256 * 256 + 256)  # three more residual blocks
    assert 11.3e6 < n9 < 11.4e6  # the paper's 9-block generator: 11.378 M
    with pytest.raises(ValueError, match="multiples of 4"):
        ResnetGenerator(3, 3, 4, 1)(torch.rand(1, 3, 30, 30))


# --- the pool and the schedule -------------------------------------------------------------------

def test_pool_returns_the_new_image_while_filling():
    pool = ImagePool(4)
    for i in range(4):
        x = torch.full((1, 3, 2, 2), float(i))
        assert torch.equal(pool.query(x), x)
    assert len(pool) == 4


def test_full_pool_returns_a_stored_image_about_half_the_time():
    torch.manual_seed(0)
    pool = ImagePool(10)
    for i in range(10):
        pool.query(torch.full((1, 1, 1, 1), float(i)))
    old = 0
    n = 2000
    for i in range(n):
        new = float(100 + i)
        out = pool.query(torch.full((1, 1, 1, 1), new)).item()
        old += out != new
        assert len(pool) == 10
    assert 0.45 < old / n < 0.55


def test_pool_off_and_state_dict_round_trip():
    x = torch.rand(2, 3, 4, 4, requires_grad=True)
    out = ImagePool(0).query(x)
    assert torch.equal(out, x) and not out.requires_grad
    pool = ImagePool(3)
    pool.query(torch.rand(2, 3, 4, 4))
    other = ImagePool(50)
    other.load_state_dict(pool.state_dict())
    assert other.size == 3 and len(other) == 2
    assert all(torch.equal(a, b) for a, b in zip(pool.images, other.images))
    empty = ImagePool(5)
    empty.load_state_dict(ImagePool(5).state_dict())
    assert len(empty) == 0


def test_schedule_is_constant_then_reaches_zero_at_the_end():
    steps = 100
    f = linear_decay(steps, 0.5)
    assert [f(s) for s in (0, 25, 49)] == [1.0, 1.0, 1.0]
    assert f(75) == pytest.approx(0.5)
    assert f(steps) == 0.0
    assert all(f(s) >= f(s + 1) for s in range(steps))
    assert linear_decay(None)(10**6) == 1.0


def test_cyclegan_lr_reaches_zero_after_training():
    gan = small_gan(steps=4)
    batch = {"A": torch.rand(1, 3, 16, 16), "B": torch.rand(1, 3, 16, 16)}
    lrs = []
    for s in range(4):
        gan.step(batch, s)
        lrs.append(gan.opt_G.param_groups[0]["lr"])
    assert lrs[0] == pytest.approx(2e-4) and lrs[-1] == 0.0
    assert gan.opt_D.param_groups[0]["lr"] == 0.0


def test_pix2pix_schedule_unchanged():
    p = Pix2Pix(nn.Conv2d(3, 3, 1), nn.Conv2d(6, 1, 1), steps=10)
    lrs = []
    for _ in range(10):
        lrs.append(p.opt_G.param_groups[0]["lr"])
        p.opt_G.step(); p.sched_G.step()
    assert lrs[:5] == [2e-4] * 5 and lrs[5] == pytest.approx(2e-4) and lrs[-1] == pytest.approx(2e-4 * 0.2)


# --- the objective and the step ------------------------------------------------------------------

class IdentityNet(nn.Module):
    """An identity 'generator' with one (unused) parameter, so that Adam has something to hold."""

    def __init__(self):
        super().__init__()
        self.unused = nn.Parameter(torch.zeros(1))

    def forward(self, x):
        return x


@pytest.mark.parametrize("kind", ["l1", "l2", "mix"])
def test_cycle_loss_is_zero_for_identity_generators(kind):
    gan = CycleGAN(IdentityNet(), IdentityNet(), nn.Conv2d(3, 1, 1), nn.Conv2d(3, 1, 1), cycle=kind)
    a, b = torch.rand(2, 3, 8, 8) * 2 - 1, torch.rand(2, 3, 8, 8) * 2 - 1
    assert gan.cycle_loss(a, b).item() == 0.0
    with pytest.raises(ValueError):
        CycleGAN(IdentityNet(), IdentityNet(), nn.Conv2d(3, 1, 1), nn.Conv2d(3, 1, 1), cycle="huber")


@pytest.mark.parametrize("kw", [dict(), dict(cycle="l2", pool=0), dict(cycle="mix", lambda_idt=0.0),
                                dict(lambda_cyc=0.0, gan_mode="vanilla")])
def test_one_step_changes_all_four_networks_with_finite_losses(kw):
    gan = small_gan(**kw)
    nets = {"G": gan.G, "F": gan.F, "D_A": gan.D_A, "D_B": gan.D_B}
    before = {k: [p.detach().clone() for p in n.parameters()] for k, n in nets.items()}
    out = gan.step({"A": torch.rand(2, 3, 32, 32), "B": torch.rand(2, 3, 32, 32)})
    assert set(out) == {"G", "F", "D_A", "D_B", "cycle", "identity"}
    assert all(torch.isfinite(torch.tensor(v)) for v in out.values())
    for k, n in nets.items():
        assert any(not torch.equal(p, q) for p, q in zip(before[k], n.parameters())), f"{k} did not change"
    assert all(p.requires_grad for p in gan.D_A.parameters())



def test_generators_update_computes_no_gradient_for_the_discriminators():
    gan = small_gan()
    counts = {}
    for net in ("D_A", "D_B"):
        for name, p in getattr(gan, net).named_parameters():
            counts[net, name] = 0
            p.register_hook(lambda grad, key=(net, name): counts.__setitem__(key, counts[key] + 1))
    gan.step({"A": torch.rand(1, 3, 32, 32), "B": torch.rand(1, 3, 32, 32)})
    assert set(counts.values()) == {1}   # from the discriminators' own update only


class BrokenNet(IdentityNet):
    def forward(self, x):
        raise RuntimeError("broken generator")


def test_an_error_inside_the_generators_update_restores_the_discriminators_flags():
    gan = CycleGAN(IdentityNet(), BrokenNet(), nn.Conv2d(3, 1, 1), nn.Conv2d(3, 1, 1))
    gan.D_B.bias.requires_grad_(False)   # frozen on purpose: stays frozen
    with pytest.raises(RuntimeError, match="broken generator"):
        gan.step({"A": torch.rand(1, 3, 8, 8), "B": torch.rand(1, 3, 8, 8)})
    assert all(p.requires_grad for p in gan.D_A.parameters())
    assert gan.D_B.weight.requires_grad and not gan.D_B.bias.requires_grad


def test_step_makes_the_textbook_update():
    """One step against the paper's objective written plainly (the pool, still filling, returns the new fakes)."""
    ours = small_gan()
    ref = small_gan()   # a second copy of the same initial networks, trained by the code below
    G, F, D_A, D_B = ref.G, ref.F, ref.D_A, ref.D_B
    opt_G = torch.optim.Adam([*G.parameters(), *F.parameters()], lr=2e-4, betas=(0.5, 0.999))
    opt_D = torch.optim.Adam([*D_A.parameters(), *D_B.parameters()], lr=2e-4, betas=(0.5, 0.999))
    batch = {"A": torch.rand(1, 3, 32, 32), "B": torch.rand(1, 3, 32, 32)}
    out = ours.step(batch)
    a, b = batch["A"] * 2 - 1, batch["B"] * 2 - 1
    l1, ls = lambda p, t: (p - t).abs().mean(), lambda d, v: ((d - v) ** 2).mean()
    fake_b, fake_a = G(a), F(b)
    cyc = l1(F(fake_b), a) + l1(G(fake_a), b)
    idt = l1(G(b), b) + l1(F(a), a)
    opt_G.zero_grad()
    (ls(D_B(fake_b), 1) + ls(D_A(fake_a), 1) + 10 * cyc + 5 * idt).backward()
    # A weight whose gradient is zero in exact arithmetic (a bias just before an instance norm) gets
    # rounding noise instead, which Adam's first step turns into a move of about lr whatever its size:
    # such weights cannot be compared; every other weight must match.
    noise = {id(p) for p in [*G.parameters(), *F.parameters()] if float(p.grad.abs().max()) < 1e-5}
    opt_G.step()
    opt_D.zero_grad()
    loss_D_B = 0.5 * (ls(D_B(b), 1) + ls(D_B(fake_b.detach()), 0))
    loss_D_A = 0.5 * (ls(D_A(a), 1) + ls(D_A(fake_a.detach()), 0))
    (loss_D_A + loss_D_B).backward()
    noise |= {id(p) for p in [*D_A.parameters(), *D_B.parameters()] if float(p.grad.abs().max()) < 1e-5}
    opt_D.step()
    want = {"cycle": cyc.item(), "identity": idt.item(), "D_A": loss_D_A.item(), "D_B": loss_D_B.item()}
    assert {k: out[k] for k in want} == pytest.approx(want, rel=1e-5)
    for name in ("G", "F", "D_A", "D_B"):
        compared = [(p, q) for p, q in zip(getattr(ours, name).parameters(), getattr(ref, name).parameters())
                    if id(q) not in noise]
        assert not [q for q in getattr(ref, name).parameters() if q.dim() > 1 and id(q) in noise], name  # every weight
        for p, q in compared:
            assert torch.allclose(p, q, rtol=0, atol=1e-6), name


def test_translate_range_and_shape():
    gan = small_gan()
    y = gan.translate(torch.rand(3, 16, 16), "AB")
    assert y.shape == (3, 16, 16) and 0 <= y.min() and y.max() <= 1
    assert gan.translate(torch.rand(2, 3, 16, 16), "BA").shape == (2, 3, 16, 16)


def test_resume_of_a_cyclegan_run_is_exact(tmp_path):
    task = hidden_truth_task(photos(8), test=2)
    data = UnalignedDataset((task["trainA"], task["trainB"]), 16, seed=0)

    def run(steps, path):
        torch.manual_seed(123)
        gan = small_gan(steps=6, pool=2)
        hist = train.fit(gan.step, data, steps=steps, batch_size=1, objects=gan.objects(), checkpoint=path,
                         progress=False, checkpoint_every=100)
        return gan, hist

    straight, h1 = run(6, tmp_path / "a.pt")
    run(3, tmp_path / "b.pt")
    resumed, h2 = run(6, tmp_path / "b.pt")
    for name in ("G", "F", "D_A", "D_B"):
        for p, q in zip(getattr(straight, name).parameters(), getattr(resumed, name).parameters()):
            assert torch.equal(p, q), name
    assert all(torch.equal(a, b) for a, b in zip(straight.pool_B.images, resumed.pool_B.images))
    assert h1.values("cycle") == h2.values("cycle")
    assert straight.opt_G.param_groups[0]["lr"] == resumed.opt_G.param_groups[0]["lr"] == 0.0


# --- data ---------------------------------------------------------------------------------------

def test_unaligned_dataset_is_reproducible_and_draws_B_independently():
    A, B = photos(3, seed=1), photos(7, seed=2)
    ds = UnalignedDataset((A, B), 16, seed=5)
    assert len(ds) == 7
    idx = [ds.b_index(i) for i in range(50)]
    assert idx == [UnalignedDataset((A, B), 16, seed=5).b_index(i) for i in range(50)]
    assert idx != [UnalignedDataset((A, B), 16, seed=6).b_index(i) for i in range(50)]
    assert len(set(idx)) > 3 and idx[:7] != list(range(7))
    item = ds[0]
    assert item["A"].shape == item["B"].shape == (3, 16, 16)
    test = UnalignedDataset((A, B), 16, train=False)
    assert test.b_index(9) == 2 and torch.equal(test[0]["A"], test[0]["A"])


def test_unaligned_dataset_reads_the_cyclegan_layout(tmp_path):
    for split, n in (("trainA", 2), ("trainB", 3), ("testA", 1), ("testB", 1)):
        (tmp_path / split).mkdir()
        for i, x in enumerate(photos(n, 24, seed=n)):
            images.save_image(x, tmp_path / split / f"{i}.png")
    ds = UnalignedDataset(tmp_path, 16)
    assert (len(ds.A), len(ds.B)) == (2, 3)
    assert len(UnalignedDataset(tmp_path, 16, phase="test", train=False)) == 1
    with pytest.raises(FileNotFoundError, match="valA"):
        UnalignedDataset(tmp_path, 16, phase="val")


def test_hidden_truth_task():
    ps = photos(12)
    task = hidden_truth_task(ps, "dusk", test=2)
    assert [len(task[k]) for k in ("trainA", "trainB", "testA", "testB")] == [5, 5, 2, 2]
    assert torch.equal(task["testA"][0], ps[-2]) and torch.allclose(task["testB"][0], dusk_grade(ps[-2]))
    x = ps[0]
    assert torch.allclose(dusk_ungrade(dusk_grade(x)), x, atol=1e-5)
    assert (dusk_grade(x) - x).abs().mean() > 0.05
    f = flat_colour(x)
    assert set(torch.unique(f).tolist()) <= {0.0, 0.5, 1.0}
    negative = hidden_truth_task(ps, test=2)  # chapter 6's default task
    assert torch.allclose(negative["testB"][1], film_negative(ps[-1]))
    assert torch.allclose(film_positive(film_negative(x)), x, atol=1e-6)
    black, white = torch.zeros(3, 2, 2), torch.ones(3, 2, 2)
    assert torch.allclose(film_negative(black)[:, 0, 0], torch.tensor([1.0, 0.8, 0.6]))  # clear film is orange
    assert float(film_negative(white).abs().max()) == 0.0
    with pytest.raises(ValueError):
        hidden_truth_task(ps, "sepia")


# --- exercise checks ----------------------------------------------------------------------------

def rp_right(ngf, n_blocks):
    conv = lambda k, cin, cout: k * k * cin * cout + cout  # noqa: E731
    ends = (conv(7, 3, ngf) + conv(3, ngf, 2 * ngf) + conv(3, 2 * ngf, 4 * ngf) + conv(3, 4 * ngf, 2 * ngf)
            + conv(3, 2 * ngf, ngf) + conv(7, ngf, 3))
    return ends + n_blocks * 2 * conv(3, 4 * ngf, 4 * ngf)


def rp_stub(ngf, n_blocks):
    raise NotImplementedError("ex-06-1: stub")


def rp_one_conv_per_block(ngf, n_blocks):
    return rp_right(ngf, n_blocks) - n_blocks * (9 * 16 * ngf * ngf + 4 * ngf)


def cl_right(G, F, a, b):
    return (F(G(a)) - a).abs().mean() + (G(F(b)) - b).abs().mean()


def cl_stub(G, F, a, b):
    raise NotImplementedError("ex-06-2: stub")


def cl_forward_only(G, F, a, b):
    return (F(G(a)) - a).abs().mean()


@pytest.mark.parametrize("label,right,stub,wrong,hint", [
    ("ex-06-1", rp_right, rp_stub, rp_one_conv_per_block, "two 3x3"),
    ("ex-06-2", cl_right, cl_stub, cl_forward_only, "both"),
])
def test_checks(label, right, stub, wrong, hint, exercise_check):
    exercise_check(label, right, stub, wrong, hint)


def test_pair_pass_stacks_only_where_the_batch_does_not_matter():
    from i2icourse.recipes.cyclegan import pair_pass
    x, y = torch.rand(2, 3, 16, 16), torch.rand(2, 3, 16, 16)
    for net, stacked in ((ResnetGenerator(3, 3, 4, 1), True),                       # instance norm
                         (nn.Sequential(nn.Conv2d(3, 3, 3), nn.BatchNorm2d(3)), False)):  # batch norm
        calls = []
        net.register_forward_hook(lambda module, inputs, output: calls.append(len(inputs[0])))
        got = pair_pass(net, x, y)
        assert calls == ([4] if stacked else [2, 2])
        if stacked:   # the same results as two passes, up to rounding
            assert all(torch.allclose(g, w, atol=1e-5) for g, w in zip(got, (net(x), net(y))))
