"""Chapter 04 (pix2pix): the checks of the receptive field, InstanceNorm, G's loss and the training step."""
from __future__ import annotations

from typing import Any, Callable

import torch

from i2icourse.checks import Wrong, beside, register
from i2icourse.checks.helpers import close, number

#: Every name here, the private ones too: the package re-exports them, and the grader finds a
#: probe (or a function handed to an answer) by its name in the package.
__all__ = ["reference_receptive_field", "_check_receptive_field", "_check_instance_norm",
           "reference_generator_loss", "_check_generator_loss", "reference_pix2pix_step", "_tiny_pix2pix",
           "_max_change", "_pix2pix_step_probe", "_check_pix2pix_step"]


def reference_receptive_field(layers: list[tuple[int, int]]) -> int:
    """Receptive field of a stack of (kernel, stride) layers, walked from the output back to the input."""
    r = 1
    for k, s in reversed(layers):
        r = (r - 1) * s + k
    return r


@register("ex-04-1")
def _check_receptive_field(my_receptive_field: Callable[[list[tuple[int, int]]], Any]) -> str:
    """my_receptive_field(layers): layers = [(kernel, stride), ...] from input to output -> field in pixels."""
    cases = [
        ("one 3x3 stride-1 layer", [(3, 1)]),
        ("two 3x3 stride-1 layers (VGG)", [(3, 1), (3, 1)]),
        ("the 16x16 PatchGAN", [(4, 2), (4, 1), (4, 1)]),
        ("a 4x4 stride-2 layer then a 3x3 stride-1 layer", [(4, 2), (3, 1)]),
        ("a 3x3 stride-1 layer then a 4x4 stride-2 layer", [(3, 1), (4, 2)]),
        ("the 70x70 PatchGAN", [(4, 2)] * 3 + [(4, 1)] * 2),
        ("six 4x4 stride-2 layers then two stride-1", [(4, 2)] * 6 + [(4, 1)] * 2),
    ]
    for what, layers in cases:
        got = number(my_receptive_field(list(layers)), "my_receptive_field's result")
        want = reference_receptive_field(layers)
        if got == want:
            continue
        hint = ""
        if got == reference_receptive_field(list(reversed(layers))):
            hint = " (the list runs from the input to the output: which end do you start from?)"
        elif got == sum(k for k, _ in layers) - len(layers) + 1:
            hint = " (strides multiply the growth of every layer after them)"
        raise Wrong(f"on {what} {layers}, got {got:g}, expected {want}{hint}")
    return f"my_receptive_field is right on {len(cases)} stacks, PatchGAN 16 and 70 included"


@register("ex-04-2")
def _check_instance_norm(my_instance_norm: Callable[..., Any]) -> str:
    """my_instance_norm(x, eps=1e-5): normalise every (image, channel) over H and W."""
    g = torch.Generator().manual_seed(4)
    cases = [
        ("a (4, 3, 8, 8) batch", 2 + 3 * torch.randn(4, 3, 8, 8, generator=g)),
        ("a (2, 5, 6, 7) batch", torch.rand(2, 5, 6, 7, generator=g) * 10 - 4),
    ]
    for what, x in cases:
        got = my_instance_norm(x.clone())
        if not isinstance(got, torch.Tensor) or got.shape != x.shape:
            raise Wrong(f"on {what}, expected a tensor of shape {tuple(x.shape)}, got "
                        f"{tuple(got.shape) if isinstance(got, torch.Tensor) else type(got).__name__}")
        want = torch.nn.functional.instance_norm(x, eps=1e-5)
        if torch.allclose(got.float(), want, atol=1e-4):
            continue
        hint = ""
        if torch.allclose(got.float(), torch.nn.functional.batch_norm(x, None, None, training=True, eps=1e-5),
                          atol=1e-4):
            hint = " (that is BatchNorm: statistics over the batch too; InstanceNorm keeps images apart)"
        else:
            var1 = x.var(dim=(2, 3), keepdim=True, unbiased=True)
            if torch.allclose(got.float(), (x - x.mean(dim=(2, 3), keepdim=True)) / (var1 + 1e-5).sqrt(), atol=1e-4):
                hint = " (use the biased variance, dividing by H*W)"
        raise Wrong(f"on {what}, values differ from instance normalisation by up to "
                    f"{float((got.float() - want).abs().max()):.3g}{hint}")
    return f"my_instance_norm matches InstanceNorm2d on {len(cases)} batches"


def reference_generator_loss(d_fake: torch.Tensor, fake: torch.Tensor, target: torch.Tensor, lam: float) -> float:
    bce = torch.nn.functional.binary_cross_entropy_with_logits(d_fake, torch.ones_like(d_fake))
    return float(bce + lam * (fake - target).abs().mean())


@register("ex-04-3")
def _check_generator_loss(generator_loss: Callable[..., Any]) -> str:
    """generator_loss(d_fake, fake, target, lam): BCE-with-logits of D's map against 'real' + lam * L1."""
    g = torch.Generator().manual_seed(5)
    d_fake = torch.randn(2, 1, 6, 6, generator=g) * 2
    fake = torch.rand(2, 3, 16, 16, generator=g) * 2 - 1
    target = torch.rand(2, 3, 16, 16, generator=g) * 2 - 1
    for lam in (100.0, 0.0, 10.0):
        got = number(generator_loss(d_fake, fake, target, lam), "generator_loss's result")
        want = reference_generator_loss(d_fake, fake, target, lam)
        if close(got, want, 1e-4):
            continue
        hint = ""
        bce0 = torch.nn.functional.binary_cross_entropy_with_logits(d_fake, torch.zeros_like(d_fake))
        if close(got, float(bce0 + lam * (fake - target).abs().mean()), 1e-4):
            hint = " (the generator wants D to answer 'real' on its fakes)"
        elif close(got, float(torch.nn.functional.binary_cross_entropy(d_fake.sigmoid(), torch.ones_like(d_fake))
                                + lam * (fake - target).pow(2).mean()), 1e-4):
            hint = " (pix2pix's reconstruction term is L1, not L2)"
        raise Wrong(f"with lam={lam:g}, got {got:.5f}, expected {want:.5f}{hint}")
    return "generator_loss matches the pix2pix generator objective for lambda = 100, 0 and 10"


def reference_pix2pix_step(G: torch.nn.Module, D: torch.nn.Module, opt_G: torch.optim.Optimizer,
                           opt_D: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor,
                           lam: float = 100.0) -> tuple[float, float]:
    """One pix2pix step from the equations, on x, y in [-1, 1]: D's update on G(x) detached, then G's.

    What :meth:`i2icourse.recipes.pix2pix.Pix2Pix.step` does (``tests/test_pix2pix_step_exercise.py`` holds them equal),
    written without its bookkeeping. Returns ``(loss_D, loss_G)``.
    """
    bce = torch.nn.functional.binary_cross_entropy_with_logits
    fake = G(x)
    opt_D.zero_grad()
    d_real, d_fake = D(x, y), D(x, fake.detach())
    loss_D = 0.5 * (bce(d_real, torch.ones_like(d_real)) + bce(d_fake, torch.zeros_like(d_fake)))
    loss_D.backward()
    opt_D.step()
    opt_G.zero_grad()
    d_fake = D(x, fake)
    loss_G = bce(d_fake, torch.ones_like(d_fake)) + lam * (fake - y).abs().mean()
    loss_G.backward()
    opt_G.step()
    return loss_D.item(), loss_G.item()


def _tiny_pix2pix(seed: int = 0) -> tuple[torch.nn.Module, torch.nn.Module, torch.optim.Optimizer, torch.optim.Optimizer]:
    """A small U-Net and PatchGAN (instance norm, no dropout: nothing random in a step) with plain SGD.

    Not Adam: Adam's first step moves every weight by about its learning rate whatever the gradient's
    size, so the rounding noise on a gradient that is zero in exact arithmetic (the bias before an
    instance norm) would look like a different update. SGD's update is proportional to the gradient.
    """
    from i2icourse.models.patchgan import PatchDiscriminator
    from i2icourse.models.unet import UNetGenerator
    torch.manual_seed(seed)
    G = UNetGenerator(3, 3, depth=4, ngf=4, norm="instance", dropout=0.0)
    D = PatchDiscriminator(6, ndf=4, n_layers=2, norm="instance")
    return G, D, torch.optim.SGD(G.parameters(), lr=0.01), torch.optim.SGD(D.parameters(), lr=0.01)


def _max_change(before: list[torch.Tensor], after: list[torch.Tensor]) -> float:
    return max(float((a.detach() - b.detach()).abs().max()) for a, b in zip(before, after))


def _pix2pix_step_probe(train_step: Callable[..., Any], G_state: dict, D_state: dict, x: torch.Tensor,
                        y: torch.Tensor, lam: float) -> dict[str, Any]:
    """One call of train_step on the tiny pix2pix pair, loaded from these states, beside the answer.

    Returns ``freed`` (a second backward pass found G's graph freed), else also what train_step
    returned, how many backward passes reached G's first layer, and G's and D's parameters after.
    """
    G, D, opt_G, opt_D = _tiny_pix2pix()
    G.load_state_dict(G_state)
    D.load_state_dict(D_state)
    reached_G = []   # one entry per backward pass whose gradient arrives at G's first layer
    next(G.parameters()).register_hook(lambda grad: reached_G.append(1))
    try:
        out = train_step(G, D, opt_G, opt_D, x.clone(), y.clone(), lam=lam)
    except RuntimeError as e:
        if "backward through the graph a second time" not in str(e):
            raise
        return {"freed": True}
    return {"freed": False, "returned": out, "reached_G": len(reached_G),
            "G": [p.detach().clone() for p in G.parameters()], "D": [p.detach().clone() for p in D.parameters()]}


@register("ex-04-5")
def _check_pix2pix_step(train_step: Callable[..., Any]) -> str:
    """train_step(G, D, opt_G, opt_D, x, y, lam) -> (loss_D, loss_G): pix2pix's D update, then G's."""
    g = torch.Generator().manual_seed(8)
    x, y = torch.rand(2, 3, 16, 16, generator=g) * 2 - 1, torch.rand(2, 3, 16, 16, generator=g) * 2 - 1
    ref = _tiny_pix2pix()
    want = reference_pix2pix_step(*ref, x, y, 100.0)
    G, D, _, _ = _tiny_pix2pix()
    start_G = [p.detach().clone() for p in G.parameters()]
    seen = beside(train_step, _pix2pix_step_probe)(G.state_dict(), D.state_dict(), x, y, 100.0)
    if seen["freed"]:
        raise Wrong("the second backward pass found G's graph already freed: D's loss must use G(x).detach(), "
                    "so that D's update does not back-propagate into G")
    out = seen["returned"]
    if not isinstance(out, (tuple, list)) or len(out) != 2:
        raise Wrong(f"train_step should return the pair (loss_D, loss_G), got {type(out).__name__}")
    got = number(out[0], "loss_D"), number(out[1], "loss_G")
    if seen["reached_G"] > 1:
        raise Wrong(f"{seen['reached_G']} backward passes reached G, expected one: D's loss must use G(x).detach(), "
                    "or D's update also computes gradients for G")
    if _max_change(start_G, seen["G"]) == 0:
        raise Wrong("G's parameters did not change: call opt_G.step() after loss_G.backward()")
    if not close(got[0], want[0], 1e-4):
        hint = " (the paper halves D's loss: 0.5 * (real term + fake term))" if close(got[0], 2 * want[0], 1e-4) else ""
        raise Wrong(f"loss_D is {got[0]:.5f}, expected {want[0]:.5f}{hint}")
    if not close(got[1], want[1], 1e-4):
        raise Wrong(f"loss_G is {got[1]:.5f}, expected {want[1]:.5f} (the GAN term against 'real' on the updated D, "
                    "plus lam times the mean |G(x) - y| on the [-1, 1] images)")
    for name, mine, theirs in (("D", seen["D"], ref[1]), ("G", seen["G"], ref[0])):
        diff = _max_change(mine, list(theirs.parameters()))
        if diff > 1e-5:
            order = " (update D first, then G: G's loss uses the updated D)" if name == "G" else ""
            raise Wrong(f"after the step {name}'s parameters differ from the reference step's by {diff:.2e}{order}")
    return "train_step updates D on the detached G(x), then G against the updated D, as Pix2Pix.step does"
