"""The CycleGAN training step (Zhu et al. 2017): two generators, two discriminators, a cycle.

Taught in chapter 6 (``notebooks/06_cyclegan.ipynb``: ``CycleGAN.step``, ``ImagePool.query``).

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

from i2icourse import inference, io
from i2icourse.losses import gan_loss
from i2icourse.precision import Precision, policy
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


class CycleGAN:
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
        self.device = torch.device(device)
        self.precision = policy(self.device, precision)
        self.G, self.F = self.precision.to_model(G), self.precision.to_model(F)
        self.D_A, self.D_B = self.precision.to_model(D_A), self.precision.to_model(D_B)
        self.opt_G = adam(itertools.chain(self.G.parameters(), self.F.parameters()), lr, betas)
        self.opt_D = adam(itertools.chain(self.D_A.parameters(), self.D_B.parameters()), lr, betas)
        self.sched_G = linear_decay_scheduler(self.opt_G, steps, decay_from)
        self.sched_D = linear_decay_scheduler(self.opt_D, steps, decay_from)
        self.pool_A, self.pool_B = ImagePool(pool), ImagePool(pool)  # fakes F(b) for D_A, G(a) for D_B
        self.lambda_cyc, self.lambda_idt, self.cycle, self.gan_mode = lambda_cyc, lambda_idt, cycle, gan_mode
        reconstruction_kind(cycle)  # fail early on a bad name

    def objects(self) -> dict:
        """Everything a checkpoint must hold: four networks, two optimisers, two schedulers, two pools (and
        with fp16 the gradient scaler)."""
        return {"G": self.G, "F": self.F, "D_A": self.D_A, "D_B": self.D_B, "opt_G": self.opt_G,
                "opt_D": self.opt_D, "sched_G": self.sched_G, "sched_D": self.sched_D,
                "pool_A": self.pool_A, "pool_B": self.pool_B, **self.precision.objects()}

    def cycle_loss(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """|F(G(a)) - a| + |G(F(b)) - b| (of the chosen kind) on [-1, 1] images."""
        return reconstruction(self.F(self.G(a)), a, self.cycle) + reconstruction(self.G(self.F(b)), b, self.cycle)

    def _set_train(self) -> None:
        for net in (self.G, self.F, self.D_A, self.D_B):
            net.train()

    def step(self, batch: Mapping[str, torch.Tensor], step: int = 0) -> dict[str, float]:
        """One update of G and F, then one of D_A and D_B, on unpaired ``batch['A']``, ``batch['B']`` in [0, 1]."""
        self._set_train()
        a = io.to_signed(self.precision.to_input(batch["A"]))
        b = io.to_signed(self.precision.to_input(batch["B"]))
        # --- generators: fool both discriminators, close both cycles, leave own-domain images alone.
        # The discriminators are frozen: their weight gradients are not needed for G's update. The
        # networks run under autocast (mixed precision on a GPU); the losses get float32 values
        # (``.float()``; ``reconstruction`` converts its inputs itself).
        self.opt_G.zero_grad(set_to_none=True)
        with frozen(self.D_A, self.D_B):
            with self.precision.autocast():
                # G(b) ~ b and F(a) ~ a: keeps colours when the input is already in the target domain
                if self.lambda_idt > 0:
                    fake_b, idt_b = pair_pass(self.G, a, b)    # G(a): A -> B, and G(b) for the identity term
                    fake_a, idt_a = pair_pass(self.F, b, a)    # F(b): B -> A, and F(a)
                    loss_idt = reconstruction(idt_b, b, self.cycle) + reconstruction(idt_a, a, self.cycle)
                else:
                    fake_b, fake_a = self.G(a), self.F(b)
                    loss_idt = torch.zeros((), device=self.device)
                rec_a, rec_b = self.F(fake_b), self.G(fake_a)  # F(G(a)) ~ a, G(F(b)) ~ b
                loss_G_gan = gan_loss(self.D_B(fake_b).float(), True, self.gan_mode)
                loss_F_gan = gan_loss(self.D_A(fake_a).float(), True, self.gan_mode)
                loss_cyc = reconstruction(rec_a, a, self.cycle) + reconstruction(rec_b, b, self.cycle)
                loss = (loss_G_gan + loss_F_gan + self.lambda_cyc * loss_cyc
                        + self.lambda_idt * self.lambda_cyc * loss_idt)
            self.precision.backward(loss)                      # loss.backward(); with fp16 scaled first
        self.precision.step(self.opt_G)                        # self.opt_G.step(); with fp16 unscaled first
        # --- discriminators: real vs a fake from the history pool; loss halved
        self.opt_D.zero_grad(set_to_none=True)
        old_b, old_a = self.pool_B.query(fake_b.float()), self.pool_A.query(fake_a.float())
        with self.precision.autocast():
            real_b, fake_b_score = (s.float() for s in pair_pass(self.D_B, b, old_b))
            real_a, fake_a_score = (s.float() for s in pair_pass(self.D_A, a, old_a))
        loss_D_B = 0.5 * (gan_loss(real_b, True, self.gan_mode) + gan_loss(fake_b_score, False, self.gan_mode))
        loss_D_A = 0.5 * (gan_loss(real_a, True, self.gan_mode) + gan_loss(fake_a_score, False, self.gan_mode))
        self.precision.backward(loss_D_A + loss_D_B)
        self.precision.step(self.opt_D)
        self.precision.update()                                # once per step, after both optimisers
        self.sched_G.step()
        self.sched_D.step()
        return as_floats({"G": loss_G_gan, "F": loss_F_gan, "D_A": loss_D_A, "D_B": loss_D_B,
                          "cycle": loss_cyc, "identity": loss_idt})

    def translate(self, x: torch.Tensor, direction: str = "AB", batch_size: int = 16) -> torch.Tensor:
        """G(x) (``AB``) or F(x) (``BA``) in [0, 1] for (C,H,W) or (N,C,H,W) images in [0, 1], in eval mode."""
        net = {"AB": self.G, "BA": self.F}[direction]
        out = inference.predict(net, x if x.dim() == 4 else x.unsqueeze(0), batch_size, device=self.device,
                                fn=lambda xb: io.from_signed(net(io.to_signed(xb))))
        return out if x.dim() == 4 else out[0]
