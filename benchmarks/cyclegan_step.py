"""Time CycleGAN training steps (images/s): the course's ``CycleGAN.step`` beside a textbook step.

Run ``python benchmarks/cyclegan_step.py [--rounds 6 --threads 1 --device cpu|cuda|both --compare-with FILE]``.

The textbook step is written here from the paper's description (Zhu et al. 2017, sec. 4 and 7):
least-squares GAN losses, cycle L1 weighted 10, identity L1 weighted 0.5 * 10, a history of 50
fakes per discriminator (an image pool as in the official code), the discriminators' loss halved,
Adam (lr 2e-4, betas (0.5, 0.999)), one optimiser for G and F and one for D_A and D_B, the
discriminators frozen during the generators' update as in the official code; no scheduler, no
logging. Both steps run on the same networks (same initial weights) and the same images (the
textbook step gets them already in [-1, 1]), in interleaved rounds; the best round counts (see
``pix2pix_step.py``). The course's bookkeeping (six loss values for the log, the schedulers, its own
pool) counts in its time. Sizes on the CPU, one thread: chapter 6's cpu profile (64x64, ResNet
generator with 16 filters and 3 residual blocks, 16-filter PatchGANs, batch 1) and the paper's
networks for 128x128 images (64 filters, 6 residual blocks, batch 1) -- the paper's 9-block
generator at 256x256 takes about half a minute per step on one CPU core, too slow to time here. On
a GPU: the paper's 9-block networks at 256x256, batch 1 (the paper's batch), the course's step in
its default mixed precision (:func:`i2icourse.precision.policy`) and in plain float32, as the
textbook step computes. ``--compare-with FILE``
adds the ``CycleGAN`` of another copy of ``cyclegan.py`` as a third contender (before/after).

Prints only; timings depend on the machine and its load.
"""
from __future__ import annotations

import argparse
import importlib.util
import itertools
import random
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from i2icourse.models.patchgan import patchgan
from i2icourse.models.resnet_generator import ResnetGenerator
from i2icourse.precision import Precision
from i2icourse.recipes.cyclegan import CycleGAN, Unconditional
from pix2pix_step import clock_for, interleaved, print_comparison, sync_for  # the same timing as pix2pix's benchmark

#: (name, size, ngf = ndf, residual blocks, batch, steps per round, warm-up steps) on each device.
CPU_SIZES = [("cpu profile", 64, 16, 3, 1, 3, 2), ("paper, 128 px", 128, 64, 6, 1, 1, 1)]
GPU_SIZES = [("paper, 256 px", 256, 64, 9, 1, 20, 3)]


class TextbookPool:
    """The official code's image pool: store fakes until full, then return an old one half of the time."""

    def __init__(self, size: int = 50):
        self.size, self.images = size, []

    def query(self, images: torch.Tensor) -> torch.Tensor:
        out = []
        for image in images.detach():
            image = image.unsqueeze(0)
            if len(self.images) < self.size:
                self.images.append(image)
                out.append(image)
            elif random.random() > 0.5:
                i = random.randint(0, self.size - 1)
                out.append(self.images[i].clone())
                self.images[i] = image
            else:
                out.append(image)
        return torch.cat(out)


class TextbookCycleGAN:
    """The CycleGAN step as the paper describes it, written the plain way; images already in [-1, 1]."""

    def __init__(self, G: nn.Module, F_: nn.Module, D_A: nn.Module, D_B: nn.Module):
        self.G, self.F, self.D_A, self.D_B = G, F_, D_A, D_B
        self.opt_G = torch.optim.Adam(itertools.chain(G.parameters(), F_.parameters()), lr=2e-4, betas=(0.5, 0.999))
        self.opt_D = torch.optim.Adam(itertools.chain(D_A.parameters(), D_B.parameters()), lr=2e-4, betas=(0.5, 0.999))
        self.pool_A, self.pool_B = TextbookPool(), TextbookPool()

    @staticmethod
    def lsgan(pred: torch.Tensor, real: bool) -> torch.Tensor:
        return F.mse_loss(pred, torch.full_like(pred, 1.0 if real else 0.0))

    def step(self, a: torch.Tensor, b: torch.Tensor) -> None:
        fake_b, fake_a = self.G(a), self.F(b)
        rec_a, rec_b = self.F(fake_b), self.G(fake_a)
        # G and F: fool both discriminators, close both cycles, identity on own-domain images
        self.D_A.requires_grad_(False)
        self.D_B.requires_grad_(False)
        self.opt_G.zero_grad()
        idt_b, idt_a = self.G(b), self.F(a)
        loss = (self.lsgan(self.D_B(fake_b), True) + self.lsgan(self.D_A(fake_a), True)
                + 10 * (F.l1_loss(rec_a, a) + F.l1_loss(rec_b, b))
                + 0.5 * 10 * (F.l1_loss(idt_b, b) + F.l1_loss(idt_a, a)))
        loss.backward()
        self.opt_G.step()
        # D_A and D_B: real vs a fake from the pool, loss halved
        self.D_A.requires_grad_(True)
        self.D_B.requires_grad_(True)
        self.opt_D.zero_grad()
        for D, real, fake, pool in ((self.D_B, b, fake_b, self.pool_B), (self.D_A, a, fake_a, self.pool_A)):
            old = pool.query(fake)
            (0.5 * (self.lsgan(D(real), True) + self.lsgan(D(old.detach()), False))).backward()
        self.opt_D.step()


def load_cyclegan(path: str) -> type:
    """The ``CycleGAN`` class of another copy of ``cyclegan.py`` (for a before/after comparison)."""
    if not Path(path).is_file():
        raise SystemExit(f"--compare-with: {path} is not a file; give a copy of i2icourse/recipes/cyclegan.py")
    spec = importlib.util.spec_from_file_location("cyclegan_compared", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.CycleGAN


def networks(ngf: int, blocks: int) -> list[nn.Module]:
    """G, F, D_A, D_B with the same initial weights on every call."""
    torch.manual_seed(0)
    return ([ResnetGenerator(3, 3, ngf, blocks) for _ in range(2)]
            + [Unconditional(patchgan(70, 3, ngf, norm="instance")) for _ in range(2)])


def compare_with_textbook(device: str, size: int, ngf: int, blocks: int, batch: int, rounds: int, steps: int,
                          warmup: int, others: dict[str, type] | None = None) -> dict[str, float]:
    """Images/s (images of each domain per second) of the textbook step, ``CycleGAN.step`` and ``others``."""
    g = torch.Generator().manual_seed(1)
    data = {k: torch.rand(batch, 3, size, size, generator=g).to(device) for k in ("A", "B")}
    a, b = data["A"] * 2 - 1, data["B"] * 2 - 1
    random.seed(0)
    plain = TextbookCycleGAN(*(n.to(device) for n in networks(ngf, blocks)))
    contenders = {"textbook": lambda: plain.step(a, b)}
    courses = {"CycleGAN.step": (CycleGAN, {})}
    if device == "cuda":   # the default there is mixed precision: plain float32 too, as the textbook step computes
        courses["CycleGAN.step, float32"] = (CycleGAN, {"precision": Precision(None, False, device)})
    for name, cls in (others or {}).items():
        courses[name] = (cls, {})
    for name, (cls, kw) in courses.items():
        gan = cls(*networks(ngf, blocks), device=device, **kw)
        contenders[name] = lambda gan=gan: gan.step(data)
    best = interleaved(contenders, rounds, steps, warmup, sync=sync_for(device), clock=clock_for(device))
    return {name: batch / seconds for name, seconds in best.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=6, help="interleaved rounds")
    ap.add_argument("--threads", type=int, default=1, help="CPU threads (default 1)")
    ap.add_argument("--device", choices=["cpu", "cuda", "both"], default="both")
    ap.add_argument("--sizes", choices=["all", "cpu profile"], default="all",
                    help="'cpu profile': skip the paper's networks on the CPU (minutes)")
    ap.add_argument("--compare-with", metavar="FILE", help="another copy of cyclegan.py to time too")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU thread(s)"
          + (f", GPU: {torch.cuda.get_device_name()}" if torch.cuda.is_available() else ", no GPU"))
    others = {f"CycleGAN.step of {a.compare_with}": load_cyclegan(a.compare_with)} if a.compare_with else None
    for device in ("cpu", "cuda"):
        if a.device not in (device, "both") or (device == "cuda" and not torch.cuda.is_available()):
            continue
        sizes = CPU_SIZES if device == "cpu" else GPU_SIZES
        if a.sizes == "cpu profile":
            sizes = sizes[:1]
        for name, size, ngf, blocks, batch, steps, warmup in sizes:
            ips = compare_with_textbook(device, size, ngf, blocks, batch, a.rounds, steps, warmup, others)
            print_comparison(f"{device}, {name}: {size}x{size}, ngf = ndf = {ngf}, {blocks} blocks, batch {batch}; "
                             f"best of {a.rounds} interleaved rounds of {steps} step(s)", ips)


if __name__ == "__main__":
    main()
