"""Training under ``torchrun`` (i2icourse.distributed): two CPU processes, gloo, one machine.

A small script (written to a temporary folder) trains a small SRCNN, which has no BatchNorm, with
:func:`i2icourse.train.fit`; the tests launch it with ``python -m torch.distributed.run`` (what
``torchrun`` runs) and compare:

* two processes at per-process batch 2 against one process at batch 4: the same loss curve and
  the same weights, since the averaged gradient of two halves is the gradient of the whole batch;
* a two-process run killed after 12 steps and resumed against an uninterrupted one: the same weights;
* what each process wrote: rank 0 the one checkpoint file and the progress bar, rank 1 nothing,
  and the checkpoint loads into a plain model without ``torchrun``.

Four launches of about 5 s each on two cores.
"""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from i2icourse import distributed, train
from i2icourse.models.srcnn import SRCNN

STEPS, BATCH, KILLED_AT, EVERY = 20, 2, 12, 5
RTOL = 1e-4  # float32 sums of two halves vs the whole batch, through 20 Adam steps

SCRIPT = textwrap.dedent('''
    """Train a small SRCNN with fit; under torchrun with DDP. Arguments: steps batch checkpoint out [kill-at]."""
    import os, sys
    import torch
    from i2icourse import distributed, losses, train
    from i2icourse.models.srcnn import SRCNN
    from i2icourse.recipes.srcnn import SuperResolution

    steps, batch, checkpoint, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
    kill_at = int(sys.argv[5]) if len(sys.argv) > 5 else None
    rank, world_size, device = distributed.setup()
    log = open(os.path.join(out, f"rank{rank}.log"), "w")
    os.dup2(log.fileno(), 1)   # this process's output, to see who printed what
    os.dup2(log.fileno(), 2)
    g = torch.Generator().manual_seed(123)
    x = torch.rand(24, 1, 12, 12, generator=g)
    y = (x + 0.1 * torch.rand(x.shape, generator=g)).clamp(0, 1)
    data = [{"A": a, "B": b} for a, b in zip(x, y)]   # (input, target) pairs, as SRPatches gives
    torch.manual_seed(0)
    sr = SuperResolution(SRCNN(1, n1=8, n2=4, f1=3, f2=1, f3=3, init_std=0.1), losses.get_loss("l2"),
                         lr=1e-2, device=device)
    sr.model = distributed.data_parallel(sr.model)

    def step(b, s):
        if s == kill_at:
            os._exit(3)            # killed: no save, no cleanup
        return sr.step(b, s)

    history = train.fit(step, data, steps=steps, batch_size=batch, objects=sr.objects(),
                        checkpoint=checkpoint, checkpoint_every=5, announce=False)
    if rank == 0:
        torch.save({"loss": history.values("loss"), "world_size": world_size,
                    "weights": distributed.unwrap(sr.model).state_dict()}, os.path.join(out, "result.pt"))
    distributed.cleanup()
''')


def _run(tmp: Path, name: str, processes: int, steps: int, batch: int, checkpoint: Path,
         kill_at: int | None = None) -> tuple[Path, subprocess.CompletedProcess]:
    """Run the script in one plain process or under ``torch.distributed.run``; return its output folder."""
    out = tmp / name
    out.mkdir()
    args = [str(tmp / "script.py"), str(steps), str(batch), str(checkpoint), str(out)]
    args += [] if kill_at is None else [str(kill_at)]
    launcher = [] if processes == 1 else ["-m", "torch.distributed.run", "--standalone",
                                          "--nproc_per_node", str(processes)]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "I2I_DEVICE": "cpu"}
    done = subprocess.run([sys.executable, *launcher, *args], capture_output=True, text=True, env=env, timeout=120)
    return out, done


def _ok(out: Path, done: subprocess.CompletedProcess) -> dict:
    logs = "\n".join(f"--- {p.name}\n{p.read_text()[-1500:]}" for p in sorted(out.glob("rank*.log")))
    assert done.returncode == 0, f"the run failed:\n{done.stderr[-3000:]}\n{logs}"
    return torch.load(out / "result.pt", weights_only=True)


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict:
    tmp = tmp_path_factory.mktemp("distributed")
    (tmp / "script.py").write_text(SCRIPT, encoding="utf-8")
    runs = {"one": _ok(*_run(tmp, "one", 1, STEPS, 2 * BATCH, tmp / "one_ckpt" / "sr.pt"))}
    out, done = _run(tmp, "two", 2, STEPS, BATCH, tmp / "two_ckpt" / "sr.pt")
    runs["two"], runs["two_out"], runs["two_ckpt"] = _ok(out, done), out, tmp / "two_ckpt"
    out, runs["killed"] = _run(tmp, "killed", 2, STEPS, BATCH, tmp / "resumed_ckpt" / "sr.pt", kill_at=KILLED_AT)
    runs["killed_step"] = train.load_checkpoint(tmp / "resumed_ckpt" / "sr.pt", {}, restore_rng=False)["step"]
    runs["resumed"] = _ok(*_run(tmp, "resumed", 2, STEPS, BATCH, tmp / "resumed_ckpt" / "sr.pt"))
    return runs


def test_two_processes_at_batch_b_follow_one_process_at_batch_2b(runs):
    one, two = runs["one"], runs["two"]
    assert (one["world_size"], two["world_size"]) == (1, 2)
    assert len(two["loss"]) == len(one["loss"]) == STEPS
    # fit logs the loss averaged over the processes: the loss of the global batch of 2b.
    torch.testing.assert_close(torch.tensor(two["loss"]), torch.tensor(one["loss"]), rtol=RTOL, atol=0)
    assert one["loss"][-1] < 0.9 * one["loss"][0], "the model should learn in 20 steps"
    for name, w in one["weights"].items():
        torch.testing.assert_close(two["weights"][name], w, rtol=RTOL, atol=1e-6, msg=name)


def test_a_killed_two_process_run_resumes_to_the_uninterrupted_weights(runs):
    assert runs["killed"].returncode != 0, "the run should have been killed"
    assert runs["killed_step"] == EVERY * (KILLED_AT // EVERY), "the last checkpoint before the kill"
    resumed, two = runs["resumed"], runs["two"]
    assert resumed["loss"] == pytest.approx(two["loss"], rel=1e-6)
    for name, w in two["weights"].items():
        torch.testing.assert_close(resumed["weights"][name], w, rtol=1e-6, atol=1e-7, msg=name)


def test_only_rank_0_writes_and_the_checkpoint_loads_without_torchrun(runs):
    assert sorted(p.name for p in runs["two_ckpt"].iterdir()) == ["sr.pt"], "one file, no temporaries"
    out = runs["two_out"]
    rank0, rank1 = (out / "rank0.log").read_text(), (out / "rank1.log").read_text()
    assert f"{STEPS}/{STEPS}" in rank0, "rank 0 shows the progress bar"
    assert "train:" not in rank1 and f"/{STEPS}" not in rank1, f"rank 1 printed progress:\n{rank1[-500:]}"
    net = SRCNN(1, n1=8, n2=4, f1=3, f2=1, f3=3)
    state = train.load_checkpoint(runs["two_ckpt"] / "sr.pt", {"net": net}, restore_rng=False)
    assert not any(k.startswith("module.") for k in state["objects"]["net"]), "no DDP prefix in the checkpoint"
    for name, w in net.state_dict().items():
        torch.testing.assert_close(w, runs["two"]["weights"][name], rtol=0, atol=0, msg=name)


def test_without_torchrun_everything_is_one_process():
    assert distributed.setup()[:2] == (0, 1) and distributed.rank_and_world_size() == (0, 1)
    net = torch.nn.Conv2d(1, 1, 3)
    assert distributed.data_parallel(net) is net and distributed.unwrap(net) is net
    assert distributed.mean_over_processes({"loss": torch.tensor(0.5)}) == {"loss": 0.5}


def test_the_sampler_shares_each_global_batch_between_the_processes():
    whole = train.ResumableSampler(10, seed=3, start=4)
    shares = [train.ResumableSampler(10, seed=3, start=4, rank=r, world_size=2) for r in (0, 1)]
    first = [i for _, i in zip(range(12), whole)]
    parts = [[i for _, i in zip(range(6), s)] for s in shares]
    assert parts[0] == first[0::2] and parts[1] == first[1::2]
