"""How much of a cpu-profile training run goes into its evaluations: one evaluation against ``eval_every`` steps.

Run ``python benchmarks/eval_share.py [--steps 3 --threads 1]``.

For each chapter whose notebook evaluates during training (``train.fit(..., eval_fn=...,
eval_every=...)``), with the networks and sizes of the chapter's ``cpu`` profile: the time of one
call of the chapter's ``eval_fn`` (best of two) against the training between two evaluations,
estimated as ``eval_every`` times the best time of a training step (from ``--steps`` timed steps
after one warm-up step). The data are random tensors of the chapter's shapes (the real datasets may
need a download), and data loading is not counted: the steps are pure step time, so the real share
is a little smaller. Chapters 5 and 6 do not evaluate during training (no ``eval_fn``) and have no
row. Takes about two minutes on one CPU thread.
"""
from __future__ import annotations

import argparse
import time
from typing import Callable

import torch

from i2icourse import losses, metrics, sr_eval
from i2icourse.data import quality_maps as Q
from i2icourse.models import ssim_map_nets as S
from i2icourse.models.patchgan import patchgan
from i2icourse.models.srcnn import SRCNN
from i2icourse.models.unet import UNetGenerator
from i2icourse.recipes import ssim_maps as R
from i2icourse.recipes.pix2pix import Pix2Pix, SampleLog

#: Set5's image sizes (H, W): the chapter-3 evaluation set, here as random images of those sizes.
SET5_SIZES = {"baby": (512, 512), "bird": (288, 288), "butterfly": (256, 256), "head": (280, 280),
              "woman": (344, 228)}


def best_seconds(fn: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def share(name: str, step: Callable[[], object], evaluate: Callable[[], object], eval_every: int,
          steps: int) -> dict[str, float | str]:
    """One row: seconds per step, seconds of ``eval_every`` steps, of one evaluation, and the evaluation's share."""
    step()                                   # warm-up
    per_step = best_seconds(step, steps)
    per_eval = best_seconds(evaluate, 2)
    train_s = eval_every * per_step
    return {"run": name, "eval_every": eval_every, "step_s": per_step, "train_s": train_s, "eval_s": per_eval,
            "share": per_eval / (per_eval + train_s)}


def chapter1(steps: int) -> list[dict]:
    """SSIM quality maps: four trainers, batch 8 of 64x64 patches, valid MAE on 14 photos x 21 versions."""
    g = torch.Generator().manual_seed(0)
    photos = {f"photo{i:02d}": torch.rand(3, 160, 160, generator=g) for i in range(14)}
    valid_patches = Q.QualityMapPairs(Q.build_pairs(photos, keep=128, progress=False), patch=64, train=False)
    batch = {"A": torch.rand(8, 3, 64, 64, generator=g), "B": torch.rand(8, 1, 64, 64, generator=g)}
    sizes = {"unet": dict(base=16), "unet32": dict(base=16),
             "resnet18_unet": dict(decoder=(128, 64, 32, 16, 16)), "gan": dict(depth=6, ngf=32)}
    rows = []
    for name, options in sizes.items():
        torch.manual_seed(0)
        model = S.build(name, **options)
        trainer = (R.map_gan(model, n_layers=2, ndf=32) if name == "gan"
                   else R.MapRegressor(model, lr=1e-3, halve_every=250))
        rows.append(share(f"ch1 {name}", lambda t=trainer: t.step(batch),
                          lambda m=model: R.balanced_mae(R.evaluate(m, valid_patches)[0]), 100, steps))
    return rows


def chapter3(steps: int) -> list[dict]:
    """SRCNN: batch 32 of 33x33 Y patches (residual), Set5 PSNR at x4 every 250 steps, for each loss."""
    g = torch.Generator().manual_seed(0)
    set5 = {"Set5": {k: torch.rand(3, h, w, generator=g) for k, (h, w) in SET5_SIZES.items()}}
    x, y = torch.rand(32, 1, 33, 33, generator=g), torch.rand(32, 1, 33, 33, generator=g)
    rows = []
    for name, loss_fn in {"MSE": losses.get_loss("l2"), "MAE": losses.get_loss("l1"),
                          "MS-SSIM": losses.get_loss("ms_ssim", weights="equal")}.items():
        torch.manual_seed(0)
        net = SRCNN(residual=True)
        opt = torch.optim.Adam(net.parameters(), lr=1e-3)

        def step(net=net, opt=opt, loss_fn=loss_fn):
            net.train()
            loss = loss_fn(net(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            return loss.item()

        rows.append(share(f"ch3 {name}", step,
                          lambda net=net: sr_eval.evaluate(sr_eval.upscaler(net), set5, scale=4).PSNR.mean(),
                          250, steps))
    return rows


def chapter4(steps: int) -> list[dict]:
    """pix2pix: batch 4 of 64x64 pairs; every 500 steps 4 sample crops and PSNR/SSIM on 350 test crops."""
    g = torch.Generator().manual_seed(0)
    test_A, test_B = torch.rand(350, 3, 64, 64, generator=g), torch.rand(350, 3, 64, 64, generator=g)
    batch = {"A": torch.rand(4, 3, 64, 64, generator=g), "B": torch.rand(4, 3, 64, 64, generator=g)}
    torch.manual_seed(0)
    gan = Pix2Pix(UNetGenerator(3, 3, depth=6, ngf=16), patchgan(70, in_channels=6, ndf=16), steps=2000)
    samples, fixed = SampleLog(), torch.linspace(0, 349, 4).long()

    def evaluate():
        samples.add(0, gan.translate(test_A[fixed]))
        out = gan.translate(test_A)
        return float(metrics.psnr(out, test_B).mean()), float(metrics.ssim(out, test_B).mean())

    return [share("ch4 L1", lambda: gan.step(batch), evaluate, 500, steps)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=3, help="timed training steps per run (after one warm-up)")
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU thread(s); cpu profiles, step time only\n")
    print(f"{'run':<18} {'eval_every':>10} {'step s':>8} {'train s':>8} {'eval s':>8} {'eval share':>10}")
    for chapter in (chapter1, chapter3, chapter4):
        for r in chapter(a.steps):
            print(f"{r['run']:<18} {r['eval_every']:>10} {r['step_s']:>8.3f} {r['train_s']:>8.1f} "
                  f"{r['eval_s']:>8.2f} {r['share']:>9.1%}")


if __name__ == "__main__":
    main()
