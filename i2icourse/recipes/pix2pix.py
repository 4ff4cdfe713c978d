"""The pix2pix training step (Isola et al. 2017): a conditional GAN plus an L1 reconstruction term.

Taught in chapter 4 (``notebooks/04_pix2pix.ipynb``: ``Pix2Pix.step``, ``update_discriminator``,
``update_generator``); chapter 5 adds its KL term through ``extra_loss``.

    G* = arg min_G max_D  L_cGAN(G, D) + lambda * L_L1(G)
    L_cGAN = E[log D(x, y)] + E[log(1 - D(x, G(x)))],   L_L1 = E[|y - G(x)|_1]

One call of :meth:`Pix2Pix.step` on a batch ``{'A': x, 'B': y}`` (images in [0, 1]) does one update
of D (:meth:`~Pix2Pix.update_discriminator`), then one of G (:meth:`~Pix2Pix.update_generator`), as
the paper does (Adam, lr 2e-4, betas (0.5, 0.999)); images are mapped to [-1, 1] (the tanh range)
and the reconstruction term is measured there, as in the official code, so
``lambda_rec = 100`` means what the paper means. D's loss is halved ("slows down the rate at which D
learns relative to G"). During G's update D is frozen (:func:`frozen`), as in the official code:
the gradient passes through D to G without computing D's own weight gradients. It returns the four
curves of the chapter: ``D``, ``G_GAN``, ``G_L1`` (the reconstruction term, whatever its kind) and
``G`` (the total), plus D's mean outputs on real/fake.

    gan = Pix2Pix(UNetGenerator(...), PatchDiscriminator(...))
    history = train.fit(gan.step, dataset, steps=..., batch_size=1, objects=gan.objects(), checkpoint=...)
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Callable, Iterable, Iterator, Mapping

import torch
from torch import nn

from i2icourse import inference, images as image_io, losses
from i2icourse.losses import gan_loss
from i2icourse.precision import Precision
from i2icourse.recipes.base import Recipe
from i2icourse.recipes.schedule import linear_decay_scheduler


#: The reconstruction terms a GAN step can weigh, by the names of :data:`i2icourse.losses.LOSSES`.
RECONSTRUCTIONS = ("l1", "l2", "mix")


def reconstruction_kind(kind: str) -> str:
    """``kind`` itself if it names a reconstruction term (``l1``, ``l2`` or ``mix``); else a ValueError, at once."""
    if kind not in RECONSTRUCTIONS:
        raise ValueError(f"reconstruction kind must be 'l1', 'l2' or 'mix', got {kind!r}")
    return kind


def reconstruction(pred: torch.Tensor, target: torch.Tensor, kind: str = "l1") -> torch.Tensor:
    """The pixel term on [-1, 1] images: ``l1``, ``l2`` or ``mix`` (0.5 L1 + 0.5 L2, Group 32's convex mix).

    The losses of :mod:`i2icourse.losses`, measured in the tanh range as the official code does, in
    float32 also for the 16-bit outputs of mixed precision (:mod:`i2icourse.precision`).
    """
    return losses.get_loss(reconstruction_kind(kind), value_range=(-1.0, 1.0))(pred.float(), target.float())


def adam(params: Iterable[nn.Parameter], lr: float, betas: tuple[float, float]) -> torch.optim.Adam:
    """Adam with torch's fused kernel where the device has one (CPU, CUDA), else the default loop.

    The same update as ``torch.optim.Adam``'s default, up to rounding (about 1e-7 relative), in one
    pass over each parameter instead of a dozen: on the CPU the default loop of small element-wise
    operations took a quarter of a pix2pix step with the paper's networks.
    """
    params = list(params)
    try:
        return torch.optim.Adam(params, lr=lr, betas=betas, fused=True)
    except RuntimeError:  # no fused kernel for these parameters' device
        return torch.optim.Adam(params, lr=lr, betas=betas)


@contextmanager
def frozen(*modules: nn.Module) -> Iterator[None]:
    """Inside the block the modules' parameters need no gradient; their flags come back afterwards, even on an error.

    G's update back-propagates through D to reach G, but D's weight gradients would be thrown away
    (D's optimiser zeroes them before D's next update): freezing D skips computing them. Each
    parameter gets its own flag back, so a layer frozen on purpose stays frozen.
    """
    params = [p for m in modules for p in m.parameters()]
    flags = [p.requires_grad for p in params]
    for p in params:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p, flag in zip(params, flags):
            p.requires_grad_(flag)


def as_floats(values: Mapping[str, torch.Tensor]) -> dict[str, float]:
    """Scalar tensors as Python floats for the log, in one transfer (one GPU sync instead of one per value)."""
    numbers = torch.stack([v.detach().float().reshape(()) for v in values.values()]).tolist()
    return dict(zip(values, numbers))


class Pix2Pix(Recipe):
    """A generator, a discriminator, their Adam optimisers and the objective's settings.

    ``lambda_rec``: weight of the reconstruction term (100); ``rec``: ``l1``/``l2``/``mix``;
    ``lambda_gan``: weight of the GAN term (1; 0 is the paper's "L1 alone": D still learns, G ignores it);
    ``gan_mode``: ``vanilla`` (BCE, the paper) or ``lsgan``; ``extra_loss``: an optional
    extra generator term ``extra_loss(G(x), y)`` on [0, 1] images, added as ``extra_weight * term`` and
    logged unweighted as ``extra_name`` (chapter 5's KL term); ``precision``: how the step computes
    (:class:`~i2icourse.recipes.base.Recipe`; default: the device's, :func:`i2icourse.precision.policy`:
    mixed precision and channels-last on CUDA, float32 elsewhere);
    ``steps``: the length of training, for the paper's schedule (constant learning rate for the
    first ``decay_from`` of the steps, then linear decay to 0).
    """

    def __init__(self, G: nn.Module, D: nn.Module, lr: float = 2e-4, betas: tuple[float, float] = (0.5, 0.999),
                 lambda_rec: float = 100.0, rec: str = "l1", gan_mode: str = "vanilla", lambda_gan: float = 1.0,
                 device: torch.device | str = "cpu", precision: Precision | str | None = None,
                 steps: int | None = None, decay_from: float = 0.5,
                 extra_loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
                 extra_weight: float = 1.0, extra_name: str = "G_extra"):
        super().__init__(device, precision)
        self.G = self.precision.to_model(G)
        self.D = self.precision.to_model(D)
        self.opt_G = adam(self.G.parameters(), lr, betas)
        self.opt_D = adam(self.D.parameters(), lr, betas)
        self.lambda_rec, self.rec, self.gan_mode, self.lambda_gan = lambda_rec, rec, gan_mode, lambda_gan
        self.extra_loss, self.extra_weight, self.extra_name = extra_loss, extra_weight, extra_name
        # The paper's schedule: constant learning rate, then linear decay to 0 over the last half
        # (100 + 100 epochs). ``steps=None`` keeps it constant.
        self.sched_G = linear_decay_scheduler(self.opt_G, steps, decay_from)
        self.sched_D = linear_decay_scheduler(self.opt_D, steps, decay_from)
        reconstruction_kind(rec)  # fail early on a bad name

    def networks(self) -> dict[str, nn.Module]:
        return {"G": self.G, "D": self.D}

    def training_state(self) -> dict[str, torch.optim.Optimizer | torch.optim.lr_scheduler.LRScheduler]:
        return {"opt_G": self.opt_G, "opt_D": self.opt_D, "sched_G": self.sched_G, "sched_D": self.sched_D}

    def _to(self, x: torch.Tensor) -> torch.Tensor:
        return image_io.to_signed(self.precision.to_input(x))

    def step(self, batch: Mapping[str, torch.Tensor], step: int = 0) -> dict[str, float]:
        """One D update, then one G update, on ``batch['A']`` (input x) and ``batch['B']`` (target y) in [0, 1]."""
        self.train_mode()
        x, y = self._to(batch["A"]), self._to(batch["B"])        # in [-1, 1], the range of G's tanh
        with self.precision.autocast():
            fake = self.G(x).float()                               # G(x), used by both updates
        loss_D, d_real = self.update_discriminator(x, y, fake.detach())
        loss_G, loss_gan, loss_rec, extra, d_fake = self.update_generator(x, y, fake)
        self.finish_step()                                         # the learning-rate schedules
        return as_floats({"D": loss_D, "G_GAN": loss_gan, "G_L1": loss_rec, "G": loss_G,
                          "D_real": torch.sigmoid(d_real.detach()).mean(),
                          "D_fake": torch.sigmoid(d_fake.detach()).mean(), **extra})

    def update_discriminator(self, x: torch.Tensor, y: torch.Tensor,
                             fake: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """D's update: maximise log D(x, y) + log(1 - D(x, G(x))), with ``fake`` = G(x) detached from G.

        Returns D's (halved) loss and its logits on the real pairs.
        """
        with self.precision.autocast():
            d_real = self.D(x, y).float()                          # D's logits on the real pair (x, y)
            d_fake = self.D(x, fake).float()                       # ... and on the generated pair (x, G(x))
        loss_D = 0.5 * (gan_loss(d_real, True, self.gan_mode) + gan_loss(d_fake, False, self.gan_mode))
        self.update(loss_D, self.opt_D)
        return loss_D, d_real

    def update_generator(self, x: torch.Tensor, y: torch.Tensor, fake: torch.Tensor) -> tuple:
        """G's update: fool D (non-saturating: maximise log D(x, G(x))) and stay close to y.

        Returns G's loss, its GAN and reconstruction terms, the extra term (``{}`` without one) and
        D's logits on the generated pairs.
        """
        with frozen(self.D):                                       # D's own weights need no gradient here
            with self.precision.autocast():
                d_fake = self.D(x, fake).float()                   # fake not detached: the gradient reaches G
            loss_gan = gan_loss(d_fake, True, self.gan_mode)
            loss_rec = reconstruction(fake, y, self.rec)           # |y - G(x)|_1, on [-1, 1] images
            loss_G = self.lambda_gan * loss_gan + self.lambda_rec * loss_rec
            extra = {}
            if self.extra_loss is not None:  # an optional extra term on [0, 1] images, e.g. beta * KL
                extra[self.extra_name] = self.extra_loss(image_io.from_signed(fake), image_io.from_signed(y))
                loss_G = loss_G + self.extra_weight * extra[self.extra_name]
            self.update(loss_G, self.opt_G)
        return loss_G, loss_gan, loss_rec, extra, d_fake

    def translate(self, a: torch.Tensor, batch_size: int = 16) -> torch.Tensor:
        """G(a) in [0, 1] for a (C,H,W) or (N,C,H,W) input in [0, 1], in eval mode (no dropout, running BN stats)."""
        return inference.translate(self.G, a, batch_size)


class SampleLog:
    """Generated samples kept during training (a grid per evaluation), saved in the checkpoint by ``fit``.

    ``train.fit`` stores every object's ``state_dict``: put a SampleLog in ``objects`` and the sample
    grids survive a reload, so a notebook that loads a finished checkpoint can still show them.
    """

    def __init__(self) -> None:
        self.steps: list[int] = []
        self.images: list[torch.Tensor] = []

    def add(self, step: int, images: torch.Tensor) -> None:
        self.steps.append(int(step))
        self.images.append(images.detach().cpu().clone())

    def state_dict(self) -> dict:
        return {"steps": torch.tensor(self.steps, dtype=torch.int64),
                "images": torch.stack(self.images) if self.images else torch.zeros(0)}

    def load_state_dict(self, state: dict) -> None:
        self.steps = [int(s) for s in state["steps"].tolist()]
        self.images = list(state["images"]) if len(self.steps) else []
