"""Chapter 3's recipe: :class:`i2icourse.recipes.srcnn.SuperResolution`, the SRCNN step as a class.

It must train exactly as the step the chapter wrote inline before (same numbers on a fixed seed),
resume exactly through ``train.fit``, and load the checkpoints written under the old names.
"""
from __future__ import annotations

import time

import pytest
import torch

from i2icourse import losses, runtime, train
from i2icourse.models.srcnn import SRCNN
from i2icourse.recipes.srcnn import SuperResolution

STEPS, BATCH, LR_DROP_AT = 6, 4, 4


def patches(n: int = 12, side: int = 12) -> list[dict[str, torch.Tensor]]:
    """(bicubic-like input, target) pairs of Y patches in [0, 1]: the target plus a little noise."""
    g = torch.Generator().manual_seed(0)
    y = torch.rand(n, 1, side, side, generator=g)
    x = (y + 0.1 * torch.randn(n, 1, side, side, generator=g)).clamp(0, 1)
    return [{"A": a, "B": b} for a, b in zip(x, y)]   # the batch format of SRPatches


def new_trainer(loss: str = "l2") -> SuperResolution:
    runtime.seed_everything(0)
    net = SRCNN(n1=8, n2=4, residual=True, init_std=None)
    return SuperResolution(net, losses.get_loss(loss), lr=1e-3, lr_drop_at=LR_DROP_AT)


def fit(trainer: SuperResolution, steps: int, checkpoint=None, objects=None) -> train.History:
    return train.fit(trainer.step, patches(), steps=steps, batch_size=BATCH, seed=0, progress=False,
                     objects=objects or trainer.objects(), checkpoint=checkpoint, checkpoint_every=2)


def inline_step_run(steps: int, checkpoint=None):
    """The training as chapter 3 wrote it inline, before the recipe: a closure over net, opt and sched."""
    runtime.seed_everything(0)
    net = SRCNN(n1=8, n2=4, residual=True, init_std=None)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    sched = torch.optim.lr_scheduler.MultiStepLR(opt, milestones=[LR_DROP_AT], gamma=0.1)
    loss_fn, clock = losses.get_loss("l2"), {"seconds": 0.0}

    def step(batch, i):
        t0 = time.perf_counter()
        net.train()
        x, y = batch["A"].to("cpu"), batch["B"].to("cpu")
        loss = loss_fn(net(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        clock["seconds"] += time.perf_counter() - t0
        return {"loss": loss.item(), "seconds": clock["seconds"]}

    history = train.fit(step, patches(), steps=steps, batch_size=BATCH, seed=0, progress=False,
                        objects={"net": net, "opt": opt, "sched": sched}, checkpoint=checkpoint)
    return net, history


def weights(model: torch.nn.Module) -> list[torch.Tensor]:
    return [t.detach().clone() for t in model.state_dict().values()]


def test_a_step_changes_the_weights_and_lowers_the_loss():
    trainer = new_trainer()
    x, y = (torch.stack([p[k] for p in patches()[:BATCH]]) for k in "AB")
    before = weights(trainer.model)
    first = trainer.step({"A": x, "B": y})["loss"]
    assert any(not torch.equal(a, b) for a, b in zip(before, weights(trainer.model)))
    for i in range(1, 30):
        last = trainer.step({"A": x, "B": y}, i)["loss"]
    assert last < first
    assert trainer.model.training


def test_the_learning_rate_drops_tenfold_at_lr_drop_at():
    trainer = new_trainer()
    x, y = (torch.stack([p[k] for p in patches()[:BATCH]]) for k in "AB")
    rates = []
    for i in range(LR_DROP_AT + 1):
        rates.append(trainer.opt.param_groups[0]["lr"])
        trainer.step({"A": x, "B": y}, i)
    assert rates[:LR_DROP_AT] == [1e-3] * LR_DROP_AT
    assert rates[LR_DROP_AT] == pytest.approx(1e-4)
    never = SuperResolution(SRCNN(n1=8, n2=4), losses.get_loss("l1"), lr=1e-3, lr_drop_at=None)
    for i in range(LR_DROP_AT + 1):
        never.step({"A": x, "B": y}, i)
    assert never.opt.param_groups[0]["lr"] == 1e-3


def test_the_clock_adds_up_the_time_spent_in_steps():
    trainer = new_trainer()
    history = fit(trainer, 4)
    seconds = history.values("seconds")
    assert seconds == sorted(seconds) and seconds[0] > 0
    assert seconds[-1] == pytest.approx(trainer.seconds)


def test_the_checkpoint_names_are_the_chapters():
    assert list(new_trainer().objects()) == ["net", "opt", "sched"]


def test_the_recipe_trains_exactly_as_the_inline_step():
    inline, inline_history = inline_step_run(STEPS)
    trainer = new_trainer()
    history = fit(trainer, STEPS)
    assert all(torch.equal(a, b) for a, b in zip(weights(inline), weights(trainer.model)))
    assert history.values("loss") == inline_history.values("loss")


def test_resume_is_exact(tmp_path):
    straight = new_trainer()
    fit(straight, STEPS)
    half = new_trainer()
    fit(half, STEPS // 2, tmp_path / "sr.pt")
    torch.manual_seed(123)  # an interruption scrambles the global RNG; the checkpoint restores it
    resumed = new_trainer()
    fit(resumed, STEPS, tmp_path / "sr.pt")
    assert all(torch.equal(a, b) for a, b in zip(weights(straight.model), weights(resumed.model)))
    assert resumed.sched.last_epoch == straight.sched.last_epoch == STEPS
    assert resumed.opt.param_groups[0]["lr"] == straight.opt.param_groups[0]["lr"]


def test_a_checkpoint_of_the_inline_step_loads_into_the_recipe(tmp_path):
    old, _ = inline_step_run(STEPS, tmp_path / "mse.pt")
    trainer = new_trainer()
    calls = []
    step = trainer.step
    trainer.step = lambda batch, i: calls.append(i) or step(batch, i)
    fit(trainer, STEPS, tmp_path / "mse.pt")
    assert calls == []  # complete: loaded, not retrained
    assert all(torch.equal(a, b) for a, b in zip(weights(old), weights(trainer.model)))
    assert trainer.sched.last_epoch == STEPS
