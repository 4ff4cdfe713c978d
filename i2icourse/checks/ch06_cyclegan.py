"""Chapter 06 (CycleGAN): the checks of the ResNet generator's size and the cycle loss."""
from __future__ import annotations

from typing import Any, Callable

import torch

from i2icourse.checks import Wrong, register
from i2icourse.checks.helpers import close, number

#: Every name here, the private ones too: the package re-exports them, and the grader finds a
#: probe (or a function handed to an answer) by its name in the package.
__all__ = ["_check_resnet_params", "reference_cycle_loss", "_identity", "_shrink", "_mirror",
           "_check_cycle_loss"]


@register("ex-06-1")
def _check_resnet_params(resnet_param_count: Callable[[int, int], Any]) -> str:
    """resnet_param_count(ngf, n_blocks): the parameters of CycleGAN's ResnetGenerator(3, 3, ngf, n_blocks)."""
    from i2icourse.models.layers import count_parameters
    from i2icourse.models.resnet_generator import ResnetGenerator
    for ngf, n_blocks in [(64, 6), (64, 9), (16, 3), (8, 1)]:
        got = number(resnet_param_count(ngf, n_blocks), "resnet_param_count's result")
        want = count_parameters(ResnetGenerator(3, 3, ngf, n_blocks))
        if got != want:
            one_conv = 9 * (4 * ngf) ** 2 + 4 * ngf
            hint = " (a residual block holds two 3x3 convolutions with biases)" if want - got == n_blocks * one_conv else ""
            raise Wrong(f"for ngf={ngf}, n_blocks={n_blocks}: got {got:,.0f}, expected {want:,}{hint}")
    return "resnet_param_count matches the ResnetGenerator for 4 sizes"


def reference_cycle_loss(G: Callable, F: Callable, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return (F(G(a)) - a).abs().mean() + (G(F(b)) - b).abs().mean()


def _identity(x: torch.Tensor) -> torch.Tensor:
    """A generator of ex-06-2's check (a function of this module, so that it can be passed to an answer elsewhere)."""
    return x


def _shrink(x: torch.Tensor) -> torch.Tensor:
    """A generator of ex-06-2's check: it halves and shifts."""
    return 0.5 * x + 0.1


def _mirror(x: torch.Tensor) -> torch.Tensor:
    """A generator of ex-06-2's check: it flips left to right."""
    return x.flip(-1)


@register("ex-06-2")
def _check_cycle_loss(cycle_loss: Callable[..., Any]) -> str:
    """cycle_loss(G, F, a, b): mean |F(G(a)) - a| + mean |G(F(b)) - b|."""
    g = torch.Generator().manual_seed(6)
    a, b = torch.rand(2, 3, 8, 8, generator=g) * 2 - 1, torch.rand(2, 3, 8, 8, generator=g) * 2 - 1
    got = number(cycle_loss(_identity, _identity, a, b), "cycle_loss(identity, identity, a, b)")
    if abs(got) > 1e-6:
        raise Wrong(f"identity generators close both cycles exactly, but the loss is {got:.4g}")
    G, F = _shrink, _mirror
    want = float(reference_cycle_loss(G, F, a, b))
    got = number(cycle_loss(G, F, a, b), "cycle_loss(G, F, a, b)")
    one_way = float((F(G(a)) - a).abs().mean())
    if close(got, one_way, 1e-5):
        raise Wrong("only the forward cycle a -> G -> F is counted; CycleGAN closes both")
    if not close(got, want, 1e-5):
        raise Wrong(f"for a shrinking G and a mirroring F the loss is {got:.4f}, expected {want:.4f}")
    return "cycle_loss: zero for identities, correct for both cycles"
