"""Chapter 4's exercise ex-04-5: the student writes pix2pix's D/G training step from the equations."""
import copy

import pytest
import torch

from i2icourse import checks
from i2icourse.recipes.pix2pix import Pix2Pix

BCE = torch.nn.functional.binary_cross_entropy_with_logits


def _d_update(D, opt_D, x, y, fake):
    opt_D.zero_grad()
    d_real, d_fake = D(x, y), D(x, fake)
    loss_D = 0.5 * (BCE(d_real, torch.ones_like(d_real)) + BCE(d_fake, torch.zeros_like(d_fake)))
    loss_D.backward()
    opt_D.step()
    return loss_D


def _g_update(D, opt_G, x, y, fake, lam, signed=True):
    opt_G.zero_grad()
    d_fake = D(x, fake)
    l1 = (fake - y).abs().mean() if signed else ((fake + 1) / 2 - (y + 1) / 2).abs().mean()
    loss_G = BCE(d_fake, torch.ones_like(d_fake)) + lam * l1
    loss_G.backward()
    opt_G.step()
    return loss_G


def solution(G, D, opt_G, opt_D, x, y, lam=100.0):
    fake = G(x)
    loss_D = _d_update(D, opt_D, x, y, fake.detach())
    loss_G = _g_update(D, opt_G, x, y, fake, lam)
    return loss_D.item(), loss_G.item()


def stub(G, D, opt_G, opt_D, x, y, lam=100.0):
    raise NotImplementedError("ex-04-5: update D on the detached G(x), then G")


def undetached(G, D, opt_G, opt_D, x, y, lam=100.0):
    loss_D = _d_update(D, opt_D, x, y, G(x))      # D's loss back-propagates into G too
    loss_G = _g_update(D, opt_G, x, y, G(x), lam)
    return loss_D.item(), loss_G.item()


def l1_on_the_wrong_range(G, D, opt_G, opt_D, x, y, lam=100.0):
    fake = G(x)
    loss_D = _d_update(D, opt_D, x, y, fake.detach())
    loss_G = _g_update(D, opt_G, x, y, fake, lam, signed=False)   # L1 on [0, 1]: half the paper's weight
    return loss_D.item(), loss_G.item()


def g_before_d(G, D, opt_G, opt_D, x, y, lam=100.0):
    fake = G(x)
    loss_G = _g_update(D, opt_G, x, y, fake, lam)
    loss_D = _d_update(D, opt_D, x, y, fake.detach())
    return loss_D.item(), loss_G.item()


@pytest.mark.parametrize("wrong, hint", [(undetached, "backward passes reached G"),
                                         (l1_on_the_wrong_range, "[-1, 1]"),
                                         (g_before_d, "loss_G")])
def test_the_step_check(exercise_check, wrong, hint):
    exercise_check("ex-04-5", solution, stub, wrong, hint)


@pytest.mark.filterwarnings("ignore:Detected call of `lr_scheduler.step()`")  # its optimisers swapped for SGD
def test_the_reference_step_is_what_pix2pix_step_does():
    # The check compares with reference_pix2pix_step; that must be the course's own step, minus bookkeeping.
    G, D, opt_G, opt_D = checks._tiny_pix2pix()
    gan = Pix2Pix(copy.deepcopy(G), copy.deepcopy(D), lambda_rec=100.0)
    gan.opt_G, gan.opt_D = (torch.optim.SGD(m.parameters(), lr=0.01) for m in (gan.G, gan.D))  # as the check's
    g = torch.Generator().manual_seed(3)
    a, b = torch.rand(2, 3, 16, 16, generator=g), torch.rand(2, 3, 16, 16, generator=g)
    loss_D, loss_G = checks.reference_pix2pix_step(G, D, opt_G, opt_D, a * 2 - 1, b * 2 - 1, 100.0)
    logged = gan.step({"A": a, "B": b})
    assert logged["D"] == pytest.approx(loss_D, rel=1e-5) and logged["G"] == pytest.approx(loss_G, rel=1e-5)
    for mine, theirs in ((G, gan.G), (D, gan.D)):
        for p, q in zip(mine.parameters(), theirs.parameters()):
            assert torch.allclose(p, q, atol=1e-6), "one step of Pix2Pix.step and the reference step differ"


def another_right_step(G, D, opt_G, opt_D, x, y, lam=100.0):
    # The same step written differently (one BCE over both halves, zero_grad(set_to_none)): it must pass.
    fake = G(x)
    opt_D.zero_grad(set_to_none=True)
    logits = torch.cat([D(x, y), D(x, fake.detach())])
    labels = torch.cat([torch.ones_like(logits[:2]), torch.zeros_like(logits[2:])])
    loss_D = BCE(logits, labels)
    loss_D.backward()
    opt_D.step()
    opt_G.zero_grad(set_to_none=True)
    d_fake = D(x, fake)
    loss_G = BCE(d_fake, torch.ones_like(d_fake)) + lam * torch.nn.functional.l1_loss(fake, y)
    loss_G.backward()
    opt_G.step()
    return loss_D.item(), loss_G.item()


def test_a_right_step_written_another_way_passes(capsys):
    assert checks.passes("ex-04-5", another_right_step), capsys.readouterr().out
