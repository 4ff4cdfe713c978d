"""Time pix2pix training steps (images/s): the course's step beside a textbook one, and its speed options.

Run ``python benchmarks/pix2pix_step.py [--what textbook|variants|all] [--size 256 --depth 8 --ngf 64
--batch 1] [--rounds 8 --steps 20 --compile --device cpu|cuda|both --compare-with FILE]``.

``textbook``: ``Pix2Pix.step`` beside a plain step written here from the paper's description (Adam
with lr 2e-4 and betas (0.5, 0.999), BCE-with-logits, D's loss halved, lambda * L1, D frozen during
G's update as in the official code; no scheduler, no logging, no other tricks), on the same networks
(same initial weights) and the same batch, in interleaved rounds: each round times a few steps of
every contender, and the best round counts, which filters out the load of other programs; on the
CPU the clock is the process's CPU time (see :func:`clock_for`). The
course's bookkeeping (loss values for the log, D's mean outputs, the schedulers) counts in its time;
the textbook step gets its images already in [-1, 1]. Sizes: the cpu profile's networks (64x64,
depth 6, 16 filters, batch 4) and the paper's (256x256, U-Net-256, 70x70 PatchGAN, 64 filters,
batch 1) on the CPU with one thread; on a GPU the paper's at batch 16, where the course's default
step computes in mixed precision with channels_last (:func:`i2icourse.precision.policy`: bf16
autocast on Ampere and later, else fp16 with a gradient scaler) and is also timed in plain float32,
like the textbook step. ``--compare-with FILE`` adds the ``Pix2Pix``
of another copy of ``pix2pix.py`` (e.g. ``git show HEAD~1:i2icourse/recipes/pix2pix.py > /tmp/old.py``)
as a third contender: before/after in the same process.

``variants``: ``Pix2Pix.step`` in plain float32 and with channels_last, AMP bf16 and AMP fp16 with
its gradient scaler (GPU), and torch.compile (optional), ``--steps`` timed steps each after a few
warm-up steps; given sizes apply to both devices, and then the GPU/CPU ratio of the float32 variant
is printed too.

Prints only; timings depend on the machine and its load.
"""
from __future__ import annotations

import argparse
import importlib.util
import time
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from i2icourse.models.patchgan import patchgan
from i2icourse.models.unet import UNetGenerator
from i2icourse.precision import Precision
from i2icourse.recipes.pix2pix import Pix2Pix

#: (name, size, depth, ngf, batch, steps per round) of the textbook comparison on each device.
CPU_SIZES = [("cpu profile", 64, 6, 16, 4, 3), ("paper", 256, 8, 64, 1, 1)]
GPU_SIZES = [("paper", 256, 8, 64, 16, 20)]


# ----------------------------------------------------------------------------------------------
# The textbook step
# ----------------------------------------------------------------------------------------------

class TextbookPix2Pix:
    """The pix2pix step as the paper describes it, written the plain way; images already in [-1, 1]."""

    def __init__(self, G: nn.Module, D: nn.Module, lambda_l1: float = 100.0):
        self.G, self.D, self.lambda_l1 = G, D, lambda_l1
        self.opt_G = torch.optim.Adam(G.parameters(), lr=2e-4, betas=(0.5, 0.999))
        self.opt_D = torch.optim.Adam(D.parameters(), lr=2e-4, betas=(0.5, 0.999))

    def step(self, x: torch.Tensor, y: torch.Tensor) -> None:
        fake = self.G(x)
        # D: real pairs -> 1, fake pairs -> 0, loss halved
        self.opt_D.zero_grad()
        pred_real, pred_fake = self.D(x, y), self.D(x, fake.detach())
        loss_D = 0.5 * (F.binary_cross_entropy_with_logits(pred_real, torch.ones_like(pred_real))
                        + F.binary_cross_entropy_with_logits(pred_fake, torch.zeros_like(pred_fake)))
        loss_D.backward()
        self.opt_D.step()
        # G: fool D and stay close to y; D frozen, as in the official code
        self.D.requires_grad_(False)
        self.opt_G.zero_grad()
        pred_fake = self.D(x, fake)
        loss_G = (F.binary_cross_entropy_with_logits(pred_fake, torch.ones_like(pred_fake))
                  + self.lambda_l1 * (fake - y).abs().mean())
        loss_G.backward()
        self.opt_G.step()
        self.D.requires_grad_(True)


# ----------------------------------------------------------------------------------------------
# Timing
# ----------------------------------------------------------------------------------------------

def sync_for(device: str) -> Callable[[], None]:
    return torch.cuda.synchronize if device == "cuda" else (lambda: None)


def clock_for(device: str) -> Callable[[], float]:
    """The CPU time of this process on the CPU, wall time on a GPU.

    On a machine shared with other programs, wall time counts the moments when the operating system
    runs someone else; this process's CPU time does not (with one thread, an idle machine gives
    both the same). A GPU step is mostly waiting for the GPU: there only wall time means something.
    """
    return time.perf_counter if device == "cuda" else time.process_time


def interleaved(contenders: dict[str, Callable[[], None]], rounds: int, steps: int, warmup: int = 2,
                sync: Callable[[], None] = lambda: None,
                clock: Callable[[], float] = time.process_time) -> dict[str, float]:
    """The best seconds per step of each contender over ``rounds`` rounds of ``steps`` steps each.

    Every round times every contender, in an order that alternates from round to round, so that a
    change in the machine's load hits all of them alike; the best round is the least disturbed one.
    """
    for step in contenders.values():
        for _ in range(warmup):
            step()
    sync()
    best = {name: float("inf") for name in contenders}
    names = list(contenders)
    for r in range(rounds):
        for name in (names if r % 2 == 0 else names[::-1]):
            t0 = clock()
            for _ in range(steps):
                contenders[name]()
            sync()
            best[name] = min(best[name], (clock() - t0) / steps)
    return best


def load_pix2pix(path: str) -> type:
    """The ``Pix2Pix`` class of another copy of ``pix2pix.py`` (for a before/after comparison)."""
    if not Path(path).is_file():
        raise SystemExit(f"--compare-with: {path} is not a file; give a copy of i2icourse/recipes/pix2pix.py")
    spec = importlib.util.spec_from_file_location("pix2pix_compared", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.Pix2Pix


def networks(size: int, depth: int, ngf: int) -> tuple[nn.Module, nn.Module]:
    """U-Net G and 70x70 PatchGAN D, with the same initial weights on every call."""
    torch.manual_seed(0)
    return UNetGenerator(3, 3, depth=depth, ngf=ngf), patchgan(70, ndf=ngf)


def compare_with_textbook(device: str, size: int, depth: int, ngf: int, batch: int, rounds: int, steps: int,
                          others: dict[str, type] | None = None) -> dict[str, float]:
    """Images/s of the textbook step, ``Pix2Pix.step`` (and its GPU options on a GPU, and ``others``)."""
    g = torch.Generator().manual_seed(1)
    a, b = torch.rand(batch, 3, size, size, generator=g), torch.rand(batch, 3, size, size, generator=g)
    data = {"A": a.to(device), "B": b.to(device)}
    x, y = (data["A"] * 2 - 1), (data["B"] * 2 - 1)   # the textbook step gets [-1, 1] images
    plain = TextbookPix2Pix(*(n.to(device) for n in networks(size, depth, ngf)))
    contenders = {"textbook": lambda: plain.step(x, y)}
    courses = {"Pix2Pix.step": (Pix2Pix, {})}
    if device == "cuda":   # the default there is mixed precision: plain float32 too, as the textbook step computes
        courses["Pix2Pix.step, float32"] = (Pix2Pix, {"precision": Precision(None, False, device)})
    for name, cls in (others or {}).items():
        courses[name] = (cls, {})
    for name, (cls, kw) in courses.items():
        gan = cls(*networks(size, depth, ngf), device=device, **kw)
        contenders[name] = lambda gan=gan: gan.step(data)
    best = interleaved(contenders, rounds, steps, sync=sync_for(device), clock=clock_for(device))
    return {name: batch / seconds for name, seconds in best.items()}


def print_comparison(title: str, ips: dict[str, float]) -> None:
    print(f"\n{title}")
    width = max(map(len, ips))
    for name, v in ips.items():
        ratio = "" if name == "textbook" else f"   ours/textbook x{v / ips['textbook']:.3f}"
        print(f"  {name:<{width}} {v:9.2f} images/s{ratio}")


# ----------------------------------------------------------------------------------------------
# The speed options of Pix2Pix
# ----------------------------------------------------------------------------------------------

def images_per_second(device: str, size: int, depth: int, ngf: int, batch: int, steps: int,
                      channels_last: bool = False, amp: torch.dtype | None = None, compile: bool = False) -> float:
    gan = Pix2Pix(*networks(size, depth, ngf), device=device, precision=Precision(amp, channels_last, device))
    if compile:
        gan.G = torch.compile(gan.G)
        gan.D = torch.compile(gan.D)
    batch_data = {"A": torch.rand(batch, 3, size, size, device=device),
                  "B": torch.rand(batch, 3, size, size, device=device)}
    best = interleaved({"step": lambda: gan.step(batch_data)}, 1, steps, warmup=3 if not compile else 5,
                       sync=sync_for(device), clock=time.perf_counter)   # wall time, as before
    return batch / best["step"]


def run_variants(device: str, size: int, depth: int, ngf: int, batch: int, steps: int, compile: bool) -> float | None:
    """Print images/s of every variant on ``device``; return the float32 variant's (None if it failed)."""
    bf16, fp16 = torch.bfloat16, torch.float16
    variants = {"float32": {}, "channels_last": {"channels_last": True}}
    if device == "cuda":
        variants["AMP bf16"] = {"amp": bf16}
        variants["AMP bf16 + channels_last"] = {"amp": bf16, "channels_last": True}
        variants["AMP fp16 + scaler + channels_last"] = {"amp": fp16, "channels_last": True}
    if compile:
        variants["torch.compile"] = {"compile": True}
        if device == "cuda":
            variants["torch.compile + AMP bf16"] = {"compile": True, "amp": bf16}
    print(f"\n{device}: {size}x{size}, depth {depth}, ngf {ngf}, batch {batch}, {steps} timed steps")
    base = default = None
    for name, kw in variants.items():
        try:
            ips = images_per_second(device, size, depth, ngf, batch, steps, **kw)
        except Exception as e:  # e.g. torch.compile without a compiler
            print(f"  {name:<33} failed: {type(e).__name__}: {str(e).splitlines()[0][:80]}")
            continue
        base = base or ips
        default = ips if name == "float32" else default
        print(f"  {name:<33} {ips:9.1f} images/s   x{ips / base:.2f} vs float32")
    return default


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--what", choices=["textbook", "variants", "all"], default="all")
    ap.add_argument("--size", type=int)
    ap.add_argument("--depth", type=int)
    ap.add_argument("--ngf", type=int)
    ap.add_argument("--batch", type=int)
    ap.add_argument("--steps", type=int, default=20, help="timed steps per variant (variants)")
    ap.add_argument("--rounds", type=int, default=8, help="interleaved rounds (textbook)")
    ap.add_argument("--threads", type=int, default=1, help="CPU threads (default 1)")
    ap.add_argument("--compile", action="store_true", help="also time torch.compile (slow to start)")
    ap.add_argument("--device", choices=["cpu", "cuda", "both"], default="both")
    ap.add_argument("--compare-with", metavar="FILE", help="another copy of pix2pix.py to time too")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU thread(s)"
          + (f", GPU: {torch.cuda.get_device_name()}" if torch.cuda.is_available() else ", no GPU"))
    devices = [d for d in ("cpu", "cuda") if a.device in (d, "both") and (d == "cpu" or torch.cuda.is_available())]
    others = {f"Pix2Pix.step of {a.compare_with}": load_pix2pix(a.compare_with)} if a.compare_with else None
    given = (a.size, a.depth, a.ngf, a.batch)
    if a.what in ("textbook", "all"):
        for device in devices:
            sizes = CPU_SIZES if device == "cpu" else GPU_SIZES
            if any(given):
                sizes = [("given", *(v or d for v, d in zip(given, sizes[0][1:5])), sizes[0][5])]
            for name, size, depth, ngf, batch, steps in sizes:
                ips = compare_with_textbook(device, size, depth, ngf, batch, a.rounds, steps, others)
                print_comparison(f"{device}, {name}: {size}x{size}, depth {depth}, ngf = ndf = {ngf}, batch {batch}; "
                                 f"best of {a.rounds} interleaved rounds of {steps} step(s)", ips)
    if a.what in ("variants", "all"):
        default: dict[tuple, dict[str, float | None]] = {}   # (size, depth, ngf, batch) -> {device: images/s}
        if "cpu" in devices:
            config = (a.size or 64, a.depth or 6, a.ngf or 16, a.batch or 4)
            default.setdefault(config, {})["cpu"] = run_variants("cpu", *config, a.steps, a.compile)
        if "cuda" in devices:
            for batch in ([a.batch] if a.batch else [1, 16]):
                config = (a.size or 256, a.depth or 8, a.ngf or 64, batch)
                default.setdefault(config, {})["cuda"] = run_variants("cuda", *config, a.steps, a.compile)
        for (size, depth, ngf, batch), ips in default.items():   # same networks on both devices: compare them
            if ips.get("cpu") and ips.get("cuda"):
                print(f"\nGPU vs CPU, float32, {size}x{size} depth {depth} ngf {ngf} batch {batch}: "
                      f"{ips['cuda']:.1f} vs {ips['cpu']:.2f} images/s, x{ips['cuda'] / ips['cpu']:.0f}")


if __name__ == "__main__":
    main()
