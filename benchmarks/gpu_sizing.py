"""Estimate how long each chapter's training takes in the ``gpu`` profile on a Colab T4, from counted FLOPs.

Run ``python benchmarks/gpu_sizing.py [--chapter N] [--json PATH] [--threads 2]``.

The ``gpu`` profile is meant to fit a free Colab T4: each chapter in at most about 30 minutes,
downloads included. Without a T4 to time, this script sizes it by a stated rule from measured
quantities:

1. It reads each notebook's settings cell (``P = runtime.settings(...)``) and runs that statement
   with ``I2I_PROFILE=gpu``, so the sizes are the notebook's own (``I2I_SETTINGS`` applies, as in
   the notebook). The other values it needs (chapter 4's ``arms``, chapter 5's ``CONFIGS``,
   ...) are read from the notebooks the same way; which trainings a chapter runs follows its
   training cells (see the ``chapterN`` functions).
2. It builds every distinct network configuration with the package's classes, as the notebook
   does, and counts the FLOPs of one full training step (the recipe's ``step`` on one random batch
   of the right shape, after one unmeasured step) with ``torch.utils.flop_counter.FlopCounterMode``
   on the CPU. The counter counts matrix products and convolutions, forward and backward; it does
   not count element-wise operations, normalisation or the optimiser.
3. Achieved FLOP/s of an H200 on the same kind of work: the pix2pix step of the paper's networks
   (256 px, U-Net depth 8, ngf = ndf = 64), whose FLOPs this script counts too, times the images/s
   measured in ``benchmarks/RESULTS.md`` ("pix2pix_step.py (2026-11-26)": 82.5 images/s at batch 1
   plain, 1290.1 at batch 16 with AMP bf16 + channels_last). Because the calibration
   step is counted by the same counter, the uncounted work is absorbed in the proportion it has in
   that step. Trainings at batch > 4 get the batch-16 rate divided by 15: a T4 is taken as 15 times
   slower than an H200, both ratios of NVIDIA's published peak figures (datasheets: float16 tensor
   cores 65 vs 989 TFLOPS dense, memory bandwidth 320 GB/s vs 4.8 TB/s).
4. Trainings at batch <= 4 are bound by per-kernel overheads, not by peak FLOP/s (the H200 reached
   under 1 % of its peak at batch 1), so the peak ratio says little about them. They get the paper's
   own speed instead: the facades results, 200 epochs of 400 images at batch 1 (80,000 steps of this
   step), "took less than two hours of training on a single Pascal Titan X GPU" (Isola et al. 2017,
   section 4.1), i.e. at least 11.1 steps/s; a T4 with fp16 is taken to be as fast as that Titan X
   (fp32 peaks: T4 8.1, Titan X 11 TFLOPS; the T4's fp16 tensor cores: 65). The H200 / 15 rule at
   batch 1 would give half that speed: it is printed as the pessimistic bound.
5. Data loading and evaluation add 25 % (an assumption: on the H200, chapter 3's run took about
   twice its step time in wall time, before DataLoader workers were used).

Prints the rule with its inputs and a markdown table; ``--json PATH`` also writes the rows.
Takes two to three minutes on two CPU threads shared with other programs; most of it goes into the
largest networks (chapter 1's U-Net32 and ResNet18-U-Net, chapter 4's pix2pix, chapter 6's CycleGAN).
"""
from __future__ import annotations

import argparse
import ast
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Callable

import torch
from torch.utils.flop_counter import FlopCounterMode

from i2icourse import experiments, losses, runtime
from i2icourse.models import ssim_map_nets
from i2icourse.models.autoencoder import ConvAutoencoder
from i2icourse.models.patchgan import patchgan
from i2icourse.models.resnet_generator import ResnetGenerator
from i2icourse.models.srcnn import SRCNN
from i2icourse.models.unet import UNetGenerator
from i2icourse.recipes import ssim_maps
from i2icourse.recipes.autoencoders import Reconstruction
from i2icourse.recipes.pix2pix import Pix2Pix
from i2icourse.recipes.srcnn import SuperResolution
from pix2pix_step import networks as paper_pix2pix_networks   # the networks the H200 figures were measured on

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
PROFILE = "gpu"
CHAPTERS = (1, 2, 3, 4, 5, 6)
BUDGET_MINUTES = 30
#: Chapter 6's identity-loss weight where a run does not set one: its ``train_cyclegan`` default.
CHAPTER6_IDENTITY = 0.0

#: The pix2pix paper step on the H200 (benchmarks/RESULTS.md, "pix2pix_step.py (2026-11-26)"): images/s by batch.
H200_IMAGES_PER_S = {1: 82.5, 16: 1290.1}
H200_SETUP = {1: "plain", 16: "AMP bf16 + channels_last"}
#: Peak figures of NVIDIA's T4 and H200 datasheets: (T4, H200).
PEAKS = {"float16 tensor TFLOPS (dense)": (65, 989), "memory bandwidth GB/s": (320, 4800)}
H200_OVER_T4 = 15        # both ratios of PEAKS are about 15
#: The paper step's speed on a Titan X (Pascal), from the paper: 80,000 steps in under two hours.
PAPER_STEPS_PER_S = 80_000 / (2 * 3600)
SMALL_BATCH = 4          # trainings at batch <= 4 get the batch-1 rate, larger batches the batch-16 rate
OVERHEAD = 0.25          # data loading and evaluation, an assumption


# ----------------------------------------------------------------------------------------------
# Reading the notebooks
# ----------------------------------------------------------------------------------------------

def notebook_cells(chapter: int) -> list[str]:
    """The sources of the code cells of chapter ``chapter``'s notebook."""
    path, = NOTEBOOKS.glob(f"{chapter:02d}_*.ipynb")
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    return ["".join(c["source"]) for c in cells if c["cell_type"] == "code"]


def notebook_value(chapter: int, name: str) -> Any:
    """The value a top-level statement of the notebook first assigns to ``name`` (``name = ...`` or
    ``a, name = ...``), computed from that statement's right-hand side alone, with ``runtime``,
    ``losses``, ``torch`` and ``experiments`` as the names it may use (the settings cell's other lines are not run)."""
    names = {"runtime": runtime, "losses": losses, "torch": torch, "experiments": experiments}
    for source in notebook_cells(chapter):
        try:
            tree = ast.parse(source)
        except SyntaxError:   # a cell with IPython syntax (``!pip``) assigns nothing we read
            continue
        for node in tree.body:
            for target in node.targets if isinstance(node, ast.Assign) else []:
                targets = target.elts if isinstance(target, ast.Tuple) else [target]
                ids = [t.id if isinstance(t, ast.Name) else None for t in targets]
                if name in ids:
                    value = eval(ast.get_source_segment(source, node.value), names)
                    return value[ids.index(name)] if isinstance(target, ast.Tuple) else value
    raise LookupError(f"chapter {chapter}'s notebook assigns no {name!r} at the top level of a cell")


def profile_settings(chapter: int, profile: str = PROFILE) -> SimpleNamespace:
    """The chapter's ``P``: its settings statement run with ``I2I_PROFILE=profile``."""
    saved = os.environ.get("I2I_PROFILE")
    os.environ["I2I_PROFILE"] = profile
    try:
        return notebook_value(chapter, "P")
    finally:
        if saved is None:
            del os.environ["I2I_PROFILE"]
        else:
            os.environ["I2I_PROFILE"] = saved


# ----------------------------------------------------------------------------------------------
# The chapters' trainings
# ----------------------------------------------------------------------------------------------

Step = Callable[[Any], object]


@dataclass
class Training:
    """One training run of a chapter: what it trains, how long, and how to build it.

    ``key`` names the network configuration: the networks, and the settings and losses that change
    the step's matrix products and convolutions (SSIM-based losses convolve; L1, L2, KL and the
    loss weights add only element-wise work, which the counter does not count). Trainings with the
    same key share one FLOP count. ``make`` builds the recipe and returns its ``step`` and one
    random batch of the shape the notebook's data loader gives.
    """
    group: str
    key: tuple
    steps: int
    batch: int
    make: Callable[[], tuple[Step, Any]]


def images(n: int, channels: int, size: int) -> torch.Tensor:
    """A random batch (n, channels, size, size) in [0, 1]."""
    return torch.rand(n, channels, size, size)


def pairs(n: int, size: int, a_channels: int = 3, b_channels: int = 3) -> dict[str, torch.Tensor]:
    """A random batch of (A, B) image pairs, as the paired and unpaired datasets give them."""
    return {"A": images(n, a_channels, size), "B": images(n, b_channels, size)}


def chapter1(P: SimpleNamespace) -> list[Training]:
    """One model per entry of ``P.train``: a MapRegressor, or for ``gan`` pix2pix's step (``map_gan``)."""
    def make(name: str, sizes: dict) -> Callable[[], tuple[Step, Any]]:
        def build() -> tuple[Step, Any]:
            model = ssim_map_nets.build(name, **sizes)
            batch = pairs(P.batch, P.patch, 3, 1)            # image patch and its SSIM map
            if name == "gan":
                return ssim_maps.map_gan(model, n_layers=P.d_layers, ndf=P.ndf).step, batch
            return ssim_maps.MapRegressor(model, lr=1e-3, halve_every=P.halve_every).step, batch
        return build
    return [Training(ssim_map_nets.MODELS[name][1], (name, repr(sizes)), P.steps, P.batch, make(name, sizes))
            for name, sizes in P.train.items()]


def chapter2(P: SimpleNamespace) -> list[Training]:
    """One autoencoder per loss on 96x96 images, then one probe autoencoder per loss on 48x48 images.

    The probe's batch is ``P.probe_batch`` (the notebook caps it at the probe's training set, which is larger).
    """
    by_name = notebook_value(2, "losses_by_name")
    runs = [("autoencoder 96 px", 96, P.channels, P.steps, P.batch),
            ("probe autoencoder 48 px", 48, P.probe_channels, P.probe_steps, P.probe_batch)]
    trainings = []
    for group, size, channels, steps, batch in runs:
        for name, loss in by_name.items():
            def build(size=size, channels=channels, batch=batch, loss=loss) -> tuple[Step, Any]:
                net = ConvAutoencoder(size=size, bottleneck=P.bottleneck, channels=channels)
                return Reconstruction(net, loss, lr=P.lr).step, images(batch, 1, size)
            trainings.append(Training(group, (size, tuple(channels), name), steps, batch, build))
    return trainings


def chapter3(P: SimpleNamespace) -> list[Training]:
    """One SRCNN per loss in ``LOSSES``, on PATCH x PATCH Y patches."""
    patch = notebook_value(3, "PATCH")
    trainings = []
    for name, loss in notebook_value(3, "LOSSES").items():
        def build(loss=loss) -> tuple[Step, Any]:
            net = SRCNN(residual=P.residual, init_std=P.init_std)
            trainer = SuperResolution(net, loss, lr=P.lr, lr_drop_at=P.lr_drop_at)
            return trainer.step, (images(P.batch, 1, patch), images(P.batch, 1, patch))
        trainings.append(Training("SRCNN", (name,), P.steps, P.batch, build))
    return trainings


def chapter4(P: SimpleNamespace) -> list[Training]:
    """One pix2pix per row of ``arms`` and seed, the L1 model with resize-convolutions, and the two
    demo models (L1 alone and pix2pix) of ``P.demo_task`` at ``P.demo_size``.

    The reconstruction term (L1, L2, their mix) and the GAN weight are element-wise: the key is the
    field, the skips and the upsampling (the demo's sizes for the demo).
    """
    def training(group: str, key: tuple, steps: int, batch: int, **kw) -> Training:
        def build() -> tuple[Step, Any]:
            size, cin = kw.pop("size", P.size), kw.pop("in_channels", 3)
            gan = experiments.pix2pix(kw.pop("depth", P.depth), kw.pop("ngf", P.ngf), kw.pop("ndf", P.ndf),
                                      in_channels=cin, steps=steps, **kw)
            return gan.step, pairs(batch, size, a_channels=cin)
        return Training(group, key, steps, batch, build)

    trainings = [training("pix2pix, rows x seeds", (field, skip), P.steps, P.batch, field=field, skip=skip)
                 for rec, field, skip in notebook_value(4, "arms").values() for _ in P.seeds]
    trainings.append(training("pix2pix, resize-convolutions", (70, True, "resize"), P.steps, P.batch, upsample="resize"))
    demo = dict(size=P.demo_size, depth=P.demo_depth, ngf=P.demo_ngf, ndf=P.demo_ngf,
                in_channels=1 if P.demo_task == "colourisation" else 3)
    trainings += [training("pix2pix, demo", ("demo",), P.demo_steps, P.demo_batch, **demo) for _ in range(2)]
    return trainings


def chapter5(P: SimpleNamespace) -> list[Training]:
    """pix2pix + beta KL for every configuration and seed, CV2's literal KL for every seed, then the beta
    sweep's other betas (seed 0).

    The sweep reuses the runs without augmentation (``base``, ``base + KL``) for their betas. All
    have one network configuration: augmentation changes the data, beta weighs an element-wise term.
    """
    def training(group: str, beta: float) -> Training:
        def build() -> tuple[Step, Any]:
            gan = Pix2Pix(UNetGenerator(3, 3, depth=P.depth, ngf=P.ngf), patchgan(70, in_channels=6, ndf=P.ndf),
                          steps=P.steps, extra_loss=losses.kl_loss, extra_weight=beta, extra_name="G_KL")
            return gan.step, pairs(P.batch, P.size)
        return Training(group, ("pix2pix + KL",), P.steps, P.batch, build)

    configs = notebook_value(5, "CONFIGS")
    trained = [training("pix2pix + KL, configs x seeds", beta) for aug, beta in configs.values() for _ in P.seeds]
    trained += [training("pix2pix + CV2's literal KL, seeds", 0.2) for _ in P.seeds]
    reused = {beta for aug, beta in configs.values() if not aug}
    return trained + [training("pix2pix + KL, beta sweep", beta) for beta in P.betas if beta not in reused]


def chapter6(P: SimpleNamespace) -> list[Training]:
    """CycleGAN: L1 for every seed, the ablation ``runs``, no cycle, the flat task; the paired pix2pix
    for every seed and once on the dusk grade; and, where ``P.public`` is set, the first
    ``P.public_runs`` of ``runs`` on the public dataset for ``P.public_steps``.

    Of the ablation's settings only the identity term changes the passes (``lambda_idt=0``, the
    chapter's default, skips G(b) and F(a)); the cycle's kind and weight and the pool change
    element-wise work or the data.
    """
    def cyclegan(group: str, steps: int, **kw) -> Training:
        def build() -> tuple[Step, Any]:
            return experiments.cyclegan(P.ngf, P.blocks, P.ndf, steps=steps, **kw).step, pairs(1, P.size)
        identity = kw.get("lambda_idt", CHAPTER6_IDENTITY) > 0
        return Training(group, ("cyclegan", identity), steps, 1, build)

    def paired() -> tuple[Step, Any]:
        gan = Pix2Pix(ResnetGenerator(3, 3, P.ngf, P.blocks), patchgan(70, 6, P.ndf, norm="instance"),
                      gan_mode="lsgan", steps=P.steps)
        return gan.step, pairs(1, P.size)

    runs = {label: {"lambda_idt": CHAPTER6_IDENTITY, **kw} for label, kw in notebook_value(6, "runs").items()}
    ablation = [kw for label, kw in runs.items() if label != "L1"]   # "L1" is the chapter's CycleGAN
    trainings = [cyclegan("CycleGAN", P.steps, **kw)
                 for kw in [*[runs["L1"]] * len(P.seeds), *ablation, {"lambda_cyc": 0.0, "lambda_idt": CHAPTER6_IDENTITY},
                            runs["L1"]]]
    trainings += [Training("pix2pix (paired)", ("pix2pix",), P.steps, 1, paired) for _ in range(len(P.seeds) + 1)]
    if P.public:
        trainings += [cyclegan(f"CycleGAN, {P.public}", P.public_steps, **kw) for kw in list(runs.values())[:P.public_runs]]
    return trainings


PLANS = {1: chapter1, 2: chapter2, 3: chapter3, 4: chapter4, 5: chapter5, 6: chapter6}


# ----------------------------------------------------------------------------------------------
# Counting and the rule
# ----------------------------------------------------------------------------------------------

def step_flops(make: Callable[[], tuple[Step, Any]]) -> int:
    """The FLOPs of one training step as ``FlopCounterMode`` counts them, after one unmeasured step."""
    torch.manual_seed(0)
    step, batch = make()
    step(batch)                  # the first step creates the optimisers' state and fills image pools
    with FlopCounterMode(display=False) as counter:
        step(batch)
    return counter.get_total_flops()


def calibration() -> tuple[int, dict[int, float]]:
    """FLOPs per image of the pix2pix paper step, and the H200's achieved FLOP/s by batch (1 and 16).

    The counter's FLOPs grow in proportion to the batch, so the per-image count at batch 1 holds at 16.
    """
    per_image = step_flops(lambda: (Pix2Pix(*paper_pix2pix_networks(256, 8, 64)).step, pairs(1, 256)))
    return per_image, {batch: per_image * ips for batch, ips in H200_IMAGES_PER_S.items()}


def t4_flops_per_second(batch: int, h200: dict[int, float]) -> float:
    """The T4's estimated FLOP/s for a training at ``batch``: the paper's speed (as FLOP/s of the paper
    step) for small batches, the H200's batch-16 rate / 15 for larger ones."""
    if batch <= SMALL_BATCH:
        return h200[1] / H200_IMAGES_PER_S[1] * PAPER_STEPS_PER_S   # FLOPs per paper step x steps/s
    return h200[16] / H200_OVER_T4


@dataclass
class Row:
    """One line of the table: trainings of one group (same steps and batch) of one chapter, or its total."""
    chapter: int
    what: str
    trainings: int
    steps: int | None
    batch: int | None
    gflop_per_step: tuple[float, float] | None   # smallest and largest over the group's trainings
    pflop: float
    t4_minutes: float
    with_overhead: float
    failed: str | None = None


def chapter_rows(chapter: int, h200: dict[int, float], counts: dict[tuple, int | str]) -> list[Row]:
    """The rows of one chapter: one per group of its trainings, then the chapter's total."""
    P = profile_settings(chapter)
    groups: dict[tuple, list[Training]] = {}
    for t in PLANS[chapter](P):
        groups.setdefault((t.group, t.steps, t.batch), []).append(t)
    rows = []
    for (group, steps, batch), trainings in groups.items():
        for t in trainings:
            if (chapter, t.key) not in counts:
                try:
                    counts[chapter, t.key] = step_flops(t.make)
                except Exception as e:   # a configuration the package refuses: report it, go on
                    counts[chapter, t.key] = f"{type(e).__name__}: {str(e).splitlines()[0]}"
        found = [counts[chapter, t.key] for t in trainings]
        failed = next((f for f in found if isinstance(f, str)), None)
        per_step = [f for f in found if not isinstance(f, str)]
        flops = steps * sum(per_step)
        minutes = flops / t4_flops_per_second(batch, h200) / 60
        rows.append(Row(chapter, group, len(trainings), steps, batch,
                        (min(per_step) / 1e9, max(per_step) / 1e9) if per_step else None,
                        flops / 1e15, minutes, minutes * (1 + OVERHEAD), failed))
    total = sum(r.t4_minutes for r in rows)
    rows.append(Row(chapter, "total", sum(r.trainings for r in rows), None, None, None,
                    sum(r.pflop for r in rows), total, total * (1 + OVERHEAD),
                    next((r.failed for r in rows if r.failed), None)))
    return rows


# ----------------------------------------------------------------------------------------------
# Printing
# ----------------------------------------------------------------------------------------------

def rule_text(per_image: int, h200: dict[int, float]) -> str:
    """The rule and its inputs, as printed above the table."""
    lines = [f"Rule: T4 minutes = counted FLOPs / T4 FLOP/s / 60, then +{OVERHEAD:.0%} for data loading "
             f"and evaluation (an assumption).",
             f"  batch <= {SMALL_BATCH}: the paper's speed, {PAPER_STEPS_PER_S:.1f} steps/s of the paper step on a "
             f"Pascal Titan X (Isola et al. 2017: 80,000 steps in under two hours), taken as a T4's: "
             f"{per_image * PAPER_STEPS_PER_S / 1e12:.2f} TFLOP/s",
             f"  batch > {SMALL_BATCH}: the H200's achieved rate at batch 16 / {H200_OVER_T4}",
             f"  pix2pix paper step (256 px, U-Net depth 8, ngf = ndf = 64): {per_image / 1e9:.1f} GFLOP per image"]
    for batch, rate in h200.items():
        lines.append(f"  H200, batch {batch} ({H200_SETUP[batch]}): {per_image / 1e9:.1f} GFLOP x "
                     f"{H200_IMAGES_PER_S[batch]} images/s = {rate / 1e12:.1f} TFLOP/s achieved "
                     f"-> T4 {rate / H200_OVER_T4 / 1e12:.2f} TFLOP/s")
    lines.append(f"  (the H200 / {H200_OVER_T4} rule at batch 1 would give "
                 f"{h200[1] / H200_OVER_T4 / 1e12:.2f} TFLOP/s: a pessimistic bound for the small batches)")
    peaks = "; ".join(f"{name}: T4 {t4:g}, H200 {h200_:g} (x{h200_ / t4:.1f})" for name, (t4, h200_) in PEAKS.items())
    lines.append(f"  H200 / T4 = {H200_OVER_T4}: NVIDIA's T4 and H200 datasheets, {peaks}")
    return "\n".join(lines)


def gflop_text(span: tuple[float, float] | None) -> str:
    """GFLOP per step of a group: one number, or the smallest and the largest where its trainings differ."""
    if span is None:
        return ""
    low, high = span
    return f"{low:,.1f}" if round(low, 1) == round(high, 1) else f"{low:,.1f}-{high:,.1f}"


def markdown_table(rows: list[Row]) -> str:
    """The rows as a markdown table, each chapter's total in bold."""
    lines = ["| chapter | trainings x steps (batch) | GFLOP per step | total PFLOP | est. T4 minutes (training) "
             f"| est. with +{OVERHEAD:.0%} |", "|---|---|---|---|---|---|"]
    for r in rows:
        note = f" (fails: {r.failed})" if r.failed and r.what != "total" else ""
        if r.what == "total":
            over = f" (over {BUDGET_MINUTES})" if r.with_overhead > BUDGET_MINUTES else ""
            incomplete = ", incomplete" if r.failed else ""
            lines.append(f"| **{r.chapter} total** | {r.trainings} trainings{incomplete} | | **{r.pflop:.2f}** "
                         f"| **{r.t4_minutes:.1f}** | **{r.with_overhead:.1f}**{over} |")
        else:
            numbers = ([gflop_text(r.gflop_per_step), f"{r.pflop:.2f}", f"{r.t4_minutes:.1f}", f"{r.with_overhead:.1f}"]
                       if r.gflop_per_step else ["n/a"] * 4)   # n/a: no training of the group could be counted
            lines.append(f"| {r.chapter}, {r.what}{note} | {r.trainings} x {r.steps:,} ({r.batch}) | "
                         + " | ".join(numbers) + " |")
    return "\n".join(lines)


def over_budget(rows: list[Row]) -> list[str]:
    """A line for every chapter estimated above the budget, naming its largest group."""
    lines = []
    for total in (r for r in rows if r.what == "total" and r.with_overhead > BUDGET_MINUTES):
        parts = [r for r in rows if r.chapter == total.chapter and r.what != "total"]
        top = max(parts, key=lambda r: r.t4_minutes)
        lines.append(f"chapter {total.chapter}: {total.with_overhead:.0f} min; largest term {top.what} "
                     f"({top.trainings} x {top.steps:,} steps at batch {top.batch}): "
                     f"{top.t4_minutes * (1 + OVERHEAD):.0f} min")
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--chapter", type=int, choices=CHAPTERS, help="only this chapter")
    ap.add_argument("--json", metavar="PATH", help="also write the rule's inputs and the rows to PATH")
    ap.add_argument("--threads", type=int, default=2, help="CPU threads for the counting steps (default 2)")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    per_image, h200 = calibration()
    print(rule_text(per_image, h200), end="\n\n")
    counts: dict[tuple, int | str] = {}
    rows = [r for chapter in ([a.chapter] if a.chapter else CHAPTERS) for r in chapter_rows(chapter, h200, counts)]
    print(markdown_table(rows))
    for line in over_budget(rows) or [f"no chapter above {BUDGET_MINUTES} minutes"]:
        print(line)
    if a.json:
        rule = {"gflop_per_image_pix2pix_paper": per_image / 1e9, "h200_images_per_s": H200_IMAGES_PER_S,
                "h200_tflop_per_s": {b: r / 1e12 for b, r in h200.items()}, "h200_over_t4": H200_OVER_T4,
                "small_batch": SMALL_BATCH, "overhead": OVERHEAD, "profile": PROFILE}
        Path(a.json).write_text(json.dumps({"rule": rule, "rows": [asdict(r) for r in rows]}, indent=1))


if __name__ == "__main__":
    main()
