"""Time pix2pix training steps (images/s): plain, channels_last, AMP bf16 (GPU) and torch.compile (optional).

Run ``python benchmarks/pix2pix_step.py [--size 256 --ngf 64 --batch 1 --steps 20 --compile]``.
Defaults: the cpu profile's networks (64x64, depth 6, 16 filters, batch 4) on the CPU, and the
paper's (256x256, depth 8, 64 filters, batch 1 and 16) on a GPU when there is one. Given sizes apply
to both devices, and then the GPU/CPU ratio of the plain variant is printed too. Each variant runs
a few warm-up steps, then ``--steps`` timed steps; the script prints images/s and the ratio to the
plain variant on the same device (above 1: faster). Prints only; timings depend on the machine and
its load (set OMP_NUM_THREADS to compare like with like).
"""
from __future__ import annotations

import argparse
import time

import torch

from i2icourse.models.patchgan import patchgan
from i2icourse.models.unet import UNetGenerator
from i2icourse.recipes.pix2pix import Pix2Pix


def images_per_second(device: str, size: int, depth: int, ngf: int, batch: int, steps: int,
                      channels_last: bool = False, amp: bool = False, compile: bool = False) -> float:
    torch.manual_seed(0)
    gan = Pix2Pix(UNetGenerator(3, 3, depth=depth, ngf=ngf), patchgan(70, ndf=ngf), device=device,
                  autocast=torch.bfloat16 if amp else None, channels_last=channels_last)
    if compile:
        gan.G = torch.compile(gan.G)
        gan.D = torch.compile(gan.D)
    batch_data = {"A": torch.rand(batch, 3, size, size, device=device),
                  "B": torch.rand(batch, 3, size, size, device=device)}
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    for _ in range(3 if not compile else 5):  # warm-up (and compilation)
        gan.step(batch_data)
    sync()
    t0 = time.perf_counter()
    for _ in range(steps):
        gan.step(batch_data)
    sync()
    return steps * batch / (time.perf_counter() - t0)


def run(device: str, size: int, depth: int, ngf: int, batch: int, steps: int, compile: bool) -> float | None:
    """Print images/s of every variant on ``device``; return the plain variant's (None if it failed)."""
    variants = {"plain": {}, "channels_last": {"channels_last": True}}
    if device == "cuda":
        variants["AMP bf16"] = {"amp": True}
        variants["AMP bf16 + channels_last"] = {"amp": True, "channels_last": True}
    if compile:
        variants["torch.compile"] = {"compile": True}
        if device == "cuda":
            variants["torch.compile + AMP bf16"] = {"compile": True, "amp": True}
    print(f"\n{device}: {size}x{size}, depth {depth}, ngf {ngf}, batch {batch}, {steps} timed steps")
    base = plain = None
    for name, kw in variants.items():
        try:
            ips = images_per_second(device, size, depth, ngf, batch, steps, **kw)
        except Exception as e:  # e.g. torch.compile without a compiler
            print(f"  {name:<28} failed: {type(e).__name__}: {str(e).splitlines()[0][:80]}")
            continue
        base = base or ips
        plain = ips if name == "plain" else plain
        print(f"  {name:<28} {ips:9.1f} images/s   x{ips / base:.2f} vs plain")
    return plain


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int)
    ap.add_argument("--depth", type=int)
    ap.add_argument("--ngf", type=int)
    ap.add_argument("--batch", type=int)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--compile", action="store_true", help="also time torch.compile (slow to start)")
    ap.add_argument("--device", choices=["cpu", "cuda", "both"], default="both")
    a = ap.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU thread(s)"
          + (f", GPU: {torch.cuda.get_device_name()}" if torch.cuda.is_available() else ", no GPU"))
    plain: dict[tuple, dict[str, float | None]] = {}   # (size, depth, ngf, batch) -> {device: images/s}
    if a.device in ("cpu", "both"):
        config = (a.size or 64, a.depth or 6, a.ngf or 16, a.batch or 4)
        plain.setdefault(config, {})["cpu"] = run("cpu", *config, a.steps, a.compile)
    if a.device in ("cuda", "both") and torch.cuda.is_available():
        for batch in ([a.batch] if a.batch else [1, 16]):
            config = (a.size or 256, a.depth or 8, a.ngf or 64, batch)
            plain.setdefault(config, {})["cuda"] = run("cuda", *config, a.steps, a.compile)
    for (size, depth, ngf, batch), ips in plain.items():   # same networks on both devices: compare them
        if ips.get("cpu") and ips.get("cuda"):
            print(f"\nGPU vs CPU, plain, {size}x{size} depth {depth} ngf {ngf} batch {batch}: "
                  f"{ips['cuda']:.1f} vs {ips['cpu']:.2f} images/s, x{ips['cuda'] / ips['cpu']:.0f}")


if __name__ == "__main__":
    main()
