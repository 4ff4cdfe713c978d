"""Chapter 05 (KL-augmented pix2pix): the checks of the soft histogram loss and the photo jitter."""
from __future__ import annotations

from typing import Any, Callable

import torch

from i2icourse.checks import Wrong, beside, register
from i2icourse.checks.helpers import close, noisy, number, photo

#: Every name here, the private ones too: the package re-exports them, and the grader finds a
#: probe (or a function handed to an answer) by its name in the package.
__all__ = ["reference_soft_histogram_loss", "_hist_loss_probe", "_check_soft_histogram_loss",
           "_check_photo_jitter"]


def reference_soft_histogram_loss(pred: torch.Tensor, target: torch.Tensor, bins: int = 8,
                                  sigma: float = 0.05) -> torch.Tensor:
    """L1 distance between soft (Gaussian-kernel) per-channel histograms, summed over bins, mean over N and C."""
    centres = torch.linspace(0, 1, bins, dtype=pred.dtype)

    def hist(x: torch.Tensor) -> torch.Tensor:
        w = torch.exp(-(x.flatten(2)[..., None] - centres) ** 2 / (2 * sigma ** 2))   # (N, C, HW, bins)
        h = w.sum(2)
        return h / h.sum(-1, keepdim=True)
    return (hist(pred) - hist(target)).abs().sum(-1).mean()


def _hist_loss_probe(hist_loss: Callable[..., Any], pred: torch.Tensor, target: torch.Tensor, bins: int,
                     sigma: float) -> dict[str, Any]:
    """hist_loss on a copy of pred that requires a gradient, then the loss's backward pass, beside the answer.

    Returns the ``loss``, whether it ``carries`` a gradient, and pred's ``grad`` (None without a backward pass).
    """
    p = pred.clone().requires_grad_(True)
    loss = hist_loss(p, target.clone(), bins=bins, sigma=sigma)
    carries = isinstance(loss, torch.Tensor) and loss.requires_grad
    if carries and loss.numel() == 1:
        loss.backward()
    return {"loss": loss, "carries": carries, "grad": p.grad}


@register("ex-05-1")
def _check_soft_histogram_loss(hist_loss: Callable[..., Any]) -> str:
    """hist_loss(pred, target, bins, sigma): differentiable colour-histogram loss on (N, C, H, W) in [0, 1]."""
    g = torch.Generator().manual_seed(7)
    target = photo("coffee", 100, 200, 24, 24).unsqueeze(0)
    cases = [("a photo crop and a noisy copy", noisy(target[0], 0.1, 3).unsqueeze(0), target, 8, 0.05),
             ("two random batches, 16 bins", torch.rand(2, 3, 12, 12, generator=g),
              torch.rand(2, 3, 12, 12, generator=g) ** 2, 16, 0.03)]
    for what, pred, tgt, bins, sigma in cases:
        seen = beside(hist_loss, _hist_loss_probe)(pred, tgt, bins, sigma)
        got = number(seen["loss"], "hist_loss's result")
        want = float(reference_soft_histogram_loss(pred, tgt, bins, sigma))
        if not close(got, want, 1e-4):
            raise Wrong(f"on {what} (bins={bins}, sigma={sigma}), got {got:.5f}, expected {want:.5f}")
        if not seen["carries"]:
            raise Wrong(f"on {what}, the loss carries no gradient (a hard histogram cannot be trained through)")
        if seen["grad"] is None or float(seen["grad"].abs().sum()) == 0:
            raise Wrong(f"on {what}, the gradient with respect to pred is zero")
    same = number(hist_loss(target, target.clone(), bins=8, sigma=0.05), "hist_loss(x, x)")
    if abs(same) > 1e-6:
        raise Wrong(f"hist_loss(x, x) should be 0, got {same:.6f}")
    return "hist_loss matches the soft-histogram L1 distance and is differentiable"


@register("ex-05-3")
def _check_photo_jitter(photo_jitter: Callable[..., Any]) -> str:
    """photo_jitter(a, b, strength, generator): per-channel gain in [1-s, 1+s] on the photo b only."""
    from i2icourse.data.labelmaps import PALETTE, colour_code
    g = torch.Generator().manual_seed(0)
    a = colour_code(torch.randint(0, len(PALETTE), (16, 16), generator=g))
    b = photo("astronaut", 40, 180, 16, 16) * 0.8 + 0.05
    gains = []
    for seed in range(6):
        out = photo_jitter(a.clone(), b.clone(), strength=0.3, generator=torch.Generator().manual_seed(seed))
        if not isinstance(out, (tuple, list)) or len(out) != 2:
            raise Wrong(f"photo_jitter should return a pair (a, b), got {type(out).__name__}")
        a2, b2 = out
        if not torch.equal(torch.as_tensor(a2), a):
            raise Wrong("the label map changed: a colour jitter on A creates colours outside the palette")
        b2 = torch.as_tensor(b2).detach().double()
        if b2.shape != b.shape or float(b2.min()) < 0 or float(b2.max()) > 1:
            raise Wrong(f"the jittered photo should keep shape {tuple(b.shape)} and lie in [0, 1]")
        ok = (b2 > 1e-3) & (b2 < 1 - 1e-3)
        ratio = torch.stack([(b2[c][ok[c]] / b.double()[c][ok[c]]).median() for c in range(3)])
        if not torch.allclose(b2[ok], (b.double() * ratio.view(3, 1, 1)).expand_as(b2)[ok], atol=2e-3):
            raise Wrong("the photo should be multiplied by one gain per channel (then clamped to [0, 1])")
        if float((ratio - 1).abs().max()) > 0.3 + 1e-3:
            raise Wrong(f"a gain of {float(ratio.max()):.3f} lies outside [1 - strength, 1 + strength]")
        gains.append(ratio)
    if float(torch.stack(gains).std(0).max()) < 1e-3:
        raise Wrong("the gains are the same for every generator seed: draw them at random")
    return "photo_jitter changes the photo's colours only, one random gain per channel"
