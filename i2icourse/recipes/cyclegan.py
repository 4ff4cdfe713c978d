"""The CycleGAN training step (Zhu et al. 2017): two generators, two discriminators, a cycle.

Taught in chapter 6 (``notebooks/06_cyclegan.ipynb``: ``CycleGAN.step``, ``optimize_generators``,
``optimize_discriminators``, ``ImagePool.query``).

    G: A -> B,  F: B -> A,  D_B judges B images (real or G(a)),  D_A judges A images (real or F(b))
    L = L_GAN(G, D_B) + L_GAN(F, D_A) + lambda_cyc * (|F(G(a)) - a| + |G(F(b)) - b|)
        + lambda_idt * (|G(b) - b| + |F(a) - a|),      lambda_cyc = 10, lambda_idt = 0.5 * lambda_cyc

As in the paper and its official code: least-squares GAN loss (``gan_loss(..., 'lsgan')``), the
discriminators updated on a history of 50 generated images (:class:`ImagePool`) with their loss
halved, Adam (lr 2e-4, betas (0.5, 0.999)) -- one optimiser for G and F together, one for D_A and
D_B -- and the schedule of pix2pix (:mod:`i2icourse.recipes.schedule`). The cycle and identity terms
are measured on [-1, 1] images like pix2pix's L1, and can be ``l1`` (the paper), ``l2`` or ``mix``
(0.5 L1 + 0.5 L2: Group 32's experiment), through :func:`i2icourse.recipes.pix2pix.reconstruction`.

The discriminators are pix2pix's PatchGAN with instance norm; CycleGAN's D sees one image, not a
pair, so :class:`Unconditional` feeds it the image alone.

    gan = CycleGAN(G, F, Unconditional(patchgan(70, 3, norm="instance")), Unconditional(...), steps=...)
    history = train.fit(gan.step, UnalignedDataset(...), steps=..., batch_size=1, objects=gan.objects(), ...)
"""
from __future__ import annotations

import itertools
from typing import Mapping

import torch
from torch import nn

from i2icourse import inference, images as image_io
from i2icourse.losses import gan_loss
from i2icourse.precision import Precision
from i2icourse.recipes.base import Recipe
from i2icourse.recipes.pix2pix import adam, as_floats, frozen, reconstruction, reconstruction_kind
from i2icourse.recipes.schedule import linear_decay_scheduler


class Unconditional(nn.Module):
    """A pix2pix ``PatchDiscriminator`` (built with ``in_channels`` = the image's channels) judging y alone."""

    def __init__(self, D: nn.Module):
        super().__init__()
        self.D = D

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        return self.D(y, y[:, :0])  # concatenating a 0-channel tensor: D sees (N, C, H, W) = y only


class ImagePool:
    """A history of generated images (Shrivastava et al. 2017): D learns from old fakes too, not only the newest.

    :meth:`query` takes a batch of fakes and returns a batch of the same size: while the pool is not
    full each image is stored and returned; once full, each image is, with probability 1/2, swapped
    with a random stored one (the stored one is returned) or else returned itself. ``size=0`` turns
    the pool off. Random draws use torch's global generator, which ``train.fit`` restores on resume;
    :meth:`state_dict` makes the pool part of a checkpoint.
    """

    def __init__(self, size: int = 50):
        self.size = size
        self.images: list[torch.Tensor] = []

    def __len__(self) -> int:
        return len(self.images)

    @torch.no_grad()
    def query(self, images: torch.Tensor) -> torch.Tensor:
        if self.size == 0:
            return images.detach()  # D's update must not reach back into G's graph
        out = []
        for img in images.detach():
            if len(self.images) < self.size:
                self.images.append(img.clone())
                out.append(img)
            elif torch.rand(1).item() < 0.5:
                i = int(torch.randint(0, self.size, (1,)).item())
                out.append(self.images[i].clone())
                self.images[i] = img.clone()
            else:
                out.append(img)
        return torch.stack(out)

    def state_dict(self) -> dict:
        return {"size": self.size, "images": torch.stack(self.images).cpu() if self.images else torch.zeros(0)}

    def load_state_dict(self, state: dict) -> None:
        self.size = int(state["size"])
        self.images = list(state["images"]) if state["images"].numel() else []


def normalises_per_image(net: nn.Module) -> bool:
    """Whether ``net``'s output for one image ignores the other images of its batch (no batch norm)."""
    return not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in net.modules())


def pair_pass(net: nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``net(x), net(y)``, computed in one forward pass of the two batches stacked where that is the same.

    With instance norm (CycleGAN's networks) each image is normalised on its own, so the stacked pass
    gives both results up to rounding, and one convolution over 2N images runs faster than two over N.
    A network with batch norm gets two passes: stacking would change its batch statistics.
    """
    if x.shape != y.shape or not normalises_per_image(net):
        return net(x), net(y)
    out = net(torch.cat([x, y]))
    return out[:len(x)], out[len(x):]


class CycleGAN(Recipe):
    """G (A->B), F (B->A), D_A, D_B, two Adam optimisers, two image pools and the objective's settings.

    ``cycle``: ``l1``/``l2``/``mix``; ``lambda_cyc``: 10 (0 removes the cycle: the failure mode);
    ``lambda_idt``: the identity weight as a fraction of ``lambda_cyc`` (0.5; 0 turns it off);
    ``pool``: pool size (50; 0 turns it off); ``gan_mode``: ``lsgan`` (the paper) or ``vanilla``;
    ``steps``/``decay_from``: the schedule; ``precision``: how the step computes, as in
    :class:`~i2icourse.recipes.pix2pix.Pix2Pix` (default: the device's, :func:`i2icourse.precision.policy`).
    """

    def __init__(self, G: nn.Module, F: nn.Module, D_A: nn.Module, D_B: nn.Module, lr: float = 2e-4,
                 betas: tuple[float, float] = (0.5, 0.999), lambda_cyc: float = 10.0, lambda_idt: float = 0.5,
                 cycle: str = "l1", gan_mode: str = "lsgan", pool: int = 50, device: torch.device | str = "cpu",
                 steps: int | None = None, decay_from: float = 0.5, precision: Precision | str | None = None):
        super().__init__(device, precision)
        self.G, self.F = self.precision.to_model(G), self.precision.to_model(F)
        self.D_A, self.D_B = self.precision.to_model(D_A), self.precision.to_model(D_B)
        self.opt_G = adam(itertools.chain(self.G.parameters(), self.F.parameters()), lr, betas)
        self.opt_D = adam(itertools.chain(self.D_A.parameters(), self.D_B.parameters()), lr, betas)
        self.sched_G = linear_decay_scheduler(self.opt_G, steps, decay_from)
        self.sched_D = linear_decay_scheduler(self.opt_D, steps, decay_from)
        self.pool_A, self.pool_B = ImagePool(pool), ImagePool(pool)  # fakes F(b) for D_A, G(a) for D_B
        self.lambda_cyc, self.lambda_idt, self.cycle, self.gan_mode = lambda_cyc, lambda_idt, cycle, gan_mode
        reconstruction_kind(cycle)  # fail early on a bad name

    def networks(self) -> dict[str, nn.Module]:
        return {"G": self.G, "F": self.F, "D_A": self.D_A, "D_B": self.D_B}

    def training_state(self) -> dict:
        """Two optimisers, two schedulers and the two image pools."""
        return {"opt_G": self.opt_G, "opt_D": self.opt_D, "sched_G": self.sched_G, "sched_D": self.sched_D,
                "pool_A": self.pool_A, "pool_B": self.pool_B}

    def distance(self, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """|x - target| (or the chosen ``cycle`` kind) on [-1, 1] images, in float32."""
        return reconstruction(x, target, self.cycle)

    def cycle_loss(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """|F(G(a)) - a| + |G(F(b)) - b| (of the chosen kind) on [-1, 1] images."""
        return self.distance(self.F(self.G(a)), a) + self.distance(self.G(self.F(b)), b)

    def generate(self, net: nn.Module, x: torch.Tensor, own: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``net(x)``, and ``net(own)`` for the identity term when it is on (None when it is off).

        ``own`` is an image of ``net``'s target domain; both come from one stacked pass where that
        gives the same results (:func:`pair_pass`).
        """
        return pair_pass(net, x, own) if self.lambda_idt > 0 else (net(x), None)

    def step(self, batch: Mapping[str, torch.Tensor], step: int = 0) -> dict[str, float]:
        """One update of G and F, then one of D_A and D_B, on unpaired ``batch['A']``, ``batch['B']`` in [0, 1]."""
        self.train_mode()
        a = image_io.to_signed(self.precision.to_input(batch["A"]))
        b = image_io.to_signed(self.precision.to_input(batch["B"]))
        fake_b, fake_a, loss_G_gan, loss_F_gan, loss_cyc, loss_idt = self.optimize_generators(a, b)
        loss_D_A, loss_D_B = self.optimize_discriminators(a, b, fake_a, fake_b)
        self.finish_step()                                     # the learning-rate schedules
        return as_floats({"G": loss_G_gan, "F": loss_F_gan, "D_A": loss_D_A, "D_B": loss_D_B,
                          "cycle": loss_cyc, "identity": loss_idt})

    def optimize_generators(self, a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """G's and F's update: fool both discriminators, close both cycles, leave own-domain images alone.

        Returns the fakes G(a) and F(b), then the loss's four terms: G's and F's adversarial terms,
        the cycle term and the identity term.
        """
        with frozen(self.D_A, self.D_B):                       # their own weights need no gradient here
            with self.precision.autocast():
                fake_b, idt_b = self.generate(self.G, a, b)    # G(a), and G(b) for the identity term
                fake_a, idt_a = self.generate(self.F, b, a)    # F(b), and F(a)
                rec_a, rec_b = self.F(fake_b), self.G(fake_a)  # the round trips F(G(a)) ~ a, G(F(b)) ~ b
                loss_G_gan = gan_loss(self.D_B(fake_b).float(), True, self.gan_mode)   # D_B(G(a)) -> real
                loss_F_gan = gan_loss(self.D_A(fake_a).float(), True, self.gan_mode)   # D_A(F(b)) -> real
                loss_cyc = self.distance(rec_a, a) + self.distance(rec_b, b)
                loss_idt = (self.distance(idt_b, b) + self.distance(idt_a, a) if self.lambda_idt > 0
                            else torch.zeros((), device=self.device))
                loss = (loss_G_gan + loss_F_gan + self.lambda_cyc * loss_cyc
                        + self.lambda_idt * self.lambda_cyc * loss_idt)
            self.update(loss, self.opt_G)                      # opt_G holds G's and F's parameters
        return fake_b, fake_a, loss_G_gan, loss_F_gan, loss_cyc, loss_idt

    def optimize_discriminators(self, a: torch.Tensor, b: torch.Tensor, fake_a: torch.Tensor,
                                fake_b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """D_A's and D_B's update: real images against generated ones from the history pools, loss halved.

        Returns the two discriminators' losses.
        """
        old_b, old_a = self.pool_B.query(fake_b.float()), self.pool_A.query(fake_a.float())  # detached
        loss_D_B = self.discriminator_loss(self.D_B, b, old_b)
        loss_D_A = self.discriminator_loss(self.D_A, a, old_a)
        self.update(loss_D_A + loss_D_B, self.opt_D)           # opt_D holds D_A's and D_B's parameters
        return loss_D_A, loss_D_B

    def discriminator_loss(self, D: nn.Module, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        """½ [L(D(real), real) + L(D(fake), fake)], with lsgan ½ [(D(real) - 1)² + D(fake)²]; one pass of D."""
        with self.precision.autocast():
            score_real, score_fake = (s.float() for s in pair_pass(D, real, fake))
        return 0.5 * (gan_loss(score_real, True, self.gan_mode) + gan_loss(score_fake, False, self.gan_mode))

    def translate(self, x: torch.Tensor, direction: str = "AB", batch_size: int = 16) -> torch.Tensor:
        """G(x) (``AB``) or F(x) (``BA``) in [0, 1] for (C,H,W) or (N,C,H,W) images in [0, 1], in eval mode."""
        return inference.translate({"AB": self.G, "BA": self.F}[direction], x, batch_size)
