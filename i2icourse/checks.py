"""Check a student's answer to an exercise: ``check("ex-00-1", my_psnr)`` prints PASS or FAIL.

Each exercise with code has one check here, registered under its label with :func:`register`. A
check tries the answer on a few small inputs against a reference computation and either returns a
one-line success message or raises :class:`Wrong` saying what differs (shape, range, the value at a
point) without giving the solution away. Checks run offline in seconds on a CPU, and need no widgets.

A check calls the answer on data only: tensors, numbers, strings, lists, tuples, dicts, a
``torch.Generator``, and this module's own functions. What data cannot carry (modules and
optimisers to train, a backward pass through the result) a *probe* of this module does beside the
answer, returning data (:func:`beside`). So the check can run in another process than the answer.

What :func:`check` prints is for the student only. The autograder (``python -m i2icourse.exercises
grade``) does not read it: after a submission's cells have run, it runs each check itself, in its
own process, on an :class:`Elsewhere` that calls the answer in the submission's kernel
(:mod:`i2icourse.exercises.judge`).

Nothing in the package imports this module: it sits on top, next to :mod:`i2icourse.exercises`.
"""
from __future__ import annotations

import math
from functools import partial
from typing import Any, Callable

import torch

from i2icourse import images

#: A check: takes the student's answer, returns a success message or raises :class:`Wrong`.
Check = Callable[[Any], str]

#: The registered checks, by exercise label.
CHECKS: dict[str, Check] = {}


class Wrong(Exception):
    """Raised by a check when the answer is wrong; its message says what differs."""


def register(label: str) -> Callable[[Check], Check]:
    """Decorator: make ``fn`` the check of exercise ``label``."""
    def add(fn: Check) -> Check:
        old = CHECKS.get(label)
        if old is not None and old.__qualname__ != fn.__qualname__:
            raise ValueError(f"{label} already has a check ({old.__qualname__})")
        CHECKS[label] = fn
        return fn
    return add


def check(label: str, answer: Any) -> None:
    """Test ``answer`` with the check of exercise ``label`` and print PASS or FAIL.

    Returns nothing, so a notebook cell ending in ``check(...)`` shows only the PASS/FAIL line;
    :func:`passes` is the same test returning whether it passed.
    """
    passes(label, answer)


def passes(label: str, answer: Any) -> bool:
    """Test ``answer`` with the check of exercise ``label``; print PASS or FAIL and return whether it passed.

    A ``NotImplementedError`` raised by the answer (an unfinished stub) propagates unchanged. Any
    other exception raised by the answer prints a FAIL line and is raised again, so that the cell
    shows its traceback.
    """
    if label not in CHECKS:
        raise KeyError(f"no check is registered for {label!r} (known: {', '.join(sorted(CHECKS))})")
    try:
        message = CHECKS[label](answer)
    except NotImplementedError:
        raise
    except Wrong as e:
        return _report(label, False, str(e))
    except Exception as e:
        _report(label, False, f"your code raised {type(e).__name__}: {e}")
        raise
    return _report(label, True, message)


def _report(label: str, passed: bool, message: str) -> bool:
    """Print the result for the student; return whether it passed."""
    print(f"{'PASS' if passed else 'FAIL'} {label}: {message}")
    return passed


class Elsewhere:
    """An answer held by another process, as the autograder's checks see it (the answer stays in its kernel).

    ``call(probe, args, kwargs)`` calls the answer there, ``answer(*args, **kwargs)`` when ``probe`` is
    None, else ``probe(answer, *args, **kwargs)``, and returns the result, data.
    """

    def __init__(self, call: Callable[[Callable[..., Any] | None, tuple, dict], Any]) -> None:
        self._call = call

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._call(None, args, kwargs)

    def beside(self, probe: Callable[..., Any]) -> Callable[..., Any]:
        """``probe(answer, ...)`` run where the answer is, as a function of probe's other arguments."""
        return lambda *args, **kwargs: self._call(probe, args, kwargs)


def beside(answer: Any, probe: Callable[..., Any]) -> Callable[..., Any]:
    """``probe(answer, ...)`` as a function of probe's other arguments, run in the process that holds the answer.

    A probe is a function of this module that uses the answer the way data cannot (trains modules
    with it, back-propagates through its result) and returns only data. In a notebook it runs here;
    for the autograder it runs in the submission's kernel, and the check compares what it returned.
    """
    if isinstance(answer, Elsewhere):
        return answer.beside(probe)
    return partial(probe, answer)


# ----------------------------------------------------------------------------------------------
# Helpers for writing checks
# ----------------------------------------------------------------------------------------------

def number(value: Any, what: str) -> float:
    """``value`` as a float if it is one number (a float, a NumPy scalar, a one-element tensor), else :class:`Wrong`."""
    if isinstance(value, torch.Tensor):
        if value.numel() != 1:
            raise Wrong(f"{what} should be one number, got a tensor of shape {tuple(value.shape)}")
        return float(value.detach().cpu().item())
    if isinstance(value, bool) or not hasattr(value, "__float__"):
        raise Wrong(f"{what} should be one number (a float or a 0-dim tensor), got {type(value).__name__}")
    return float(value)


def photo(name: str, top: int, left: int, height: int, width: int, grey: bool = False) -> torch.Tensor:
    """A crop of one of scikit-image's bundled photos (``astronaut``, ``camera``, ``coffee``) as a (C,H,W) tensor."""
    from skimage import data
    x = images.from_numpy(getattr(data, name)(), name)
    if grey and x.shape[0] == 3:
        x = images.rgb_to_grey(x)
    return images.crop(x, top, left, height, width)


def noisy(x: torch.Tensor, sigma: float, seed: int) -> torch.Tensor:
    """``x`` plus Gaussian noise of standard deviation ``sigma``, clamped to [0, 1] (seeded, repeatable)."""
    g = torch.Generator().manual_seed(seed)
    return (x + sigma * torch.randn(x.shape, generator=g)).clamp(0, 1)


def _close(a: float, b: float, tol: float) -> bool:
    return math.isfinite(a) and abs(a - b) <= tol * max(1.0, abs(b))


# ----------------------------------------------------------------------------------------------
# Chapter 00: measuring image quality
# ----------------------------------------------------------------------------------------------

def reference_psnr(x: torch.Tensor, y: torch.Tensor, data_range: float = 1.0) -> float:
    """10 log10(data_range^2 / MSE), in float64."""
    mse = ((x.double() - y.double()) ** 2).mean()
    return float(10 * torch.log10(data_range ** 2 / mse))


@register("ex-00-1")
def _check_psnr(my_psnr: Callable[..., Any]) -> str:
    """my_psnr(x, y, data_range=1.0): PSNR in dB, on photo crops with noise, for data ranges 1, 255 and 2."""
    rgb = photo("astronaut", 40, 180, 48, 64)
    grey = photo("camera", 100, 200, 40, 56)
    cases = [
        ("a 48x64 RGB photo crop and a noisy copy (default data_range)", rgb, noisy(rgb, 0.05, 0), None),
        ("a 40x56 grey crop and a noisy copy, data_range=1.0", grey, noisy(grey, 0.1, 1), 1.0),
        ("the RGB pair scaled to 0..255, data_range=255", rgb * 255, noisy(rgb, 0.05, 0) * 255, 255.0),
        ("the grey pair scaled to [-1, 1], data_range=2.0", grey * 2 - 1, noisy(grey, 0.1, 1) * 2 - 1, 2.0),
    ]
    for i, (what, x, y, data_range) in enumerate(cases):
        got = my_psnr(x, y) if data_range is None else my_psnr(x, y, data_range=data_range)
        got = number(got, "my_psnr's result")
        want = reference_psnr(x, y, 1.0 if data_range is None else data_range)
        if _close(got, want, 1e-4):
            continue
        hint = ""
        if math.isfinite(got) and _close(-got, want, 1e-4):
            hint = " (check the sign)"
        elif math.isfinite(got) and _close(got, want * math.log(10), 1e-4):
            hint = " (check the base of the logarithm)"
        elif data_range not in (None, 1.0) and i > 1:
            hint = " (it was right for data_range=1: check how data_range enters the formula)"
        raise Wrong(f"on {what}, got {got:.4f}, expected {want:.4f} dB{hint}")
    return f"my_psnr matches the reference on {len(cases)} image pairs"


@register("ex-00-2")
def _check_grey(my_grey: Callable[[torch.Tensor], Any]) -> str:
    """my_grey(rgb): (3,H,W) in [0, 1] -> (1,H,W) ITU-R 601-2 luma, on a photo crop and random pixels."""
    cases = [
        ("a 40x56 RGB photo crop", photo("coffee", 150, 200, 40, 56)),
        ("a random 3x5x7 image", torch.rand(3, 5, 7, generator=torch.Generator().manual_seed(2))),
    ]
    for what, x in cases:
        h, w = x.shape[-2:]
        got = my_grey(x.clone())
        if not isinstance(got, torch.Tensor):
            raise Wrong(f"on {what}, my_grey should return a torch.Tensor, got {type(got).__name__}")
        if tuple(got.shape) != (1, h, w):
            hint = " (keep the channel dimension)" if tuple(got.shape) == (h, w) else ""
            raise Wrong(f"on {what} of shape {tuple(x.shape)}, got shape {tuple(got.shape)}, "
                        f"expected (1, {h}, {w}){hint}")
        if not got.is_floating_point():
            raise Wrong(f"on {what}, expected a float tensor, got dtype {got.dtype}")
        got = got.detach().double().cpu()
        lo, hi = float(got.min()), float(got.max())
        if not (lo >= -1e-6 and hi <= 1 + 1e-6):
            hint = " (like the input, grey levels lie in [0, 1], not 0..255)" if hi > 2 else ""
            raise Wrong(f"on {what}, values lie in [{lo:.4g}, {hi:.4g}], expected [0, 1]{hint}")
        want = images.rgb_to_grey(x).double()
        diff = (got - want).abs()
        if float(diff.max()) > 1e-4:
            _, r, c = (int(i) for i in torch.nonzero(diff == diff.max())[0])
            hint = ""
            if torch.allclose(got, x.double().mean(0, keepdim=True), atol=1e-4):
                hint = " (the eye is not equally sensitive to red, green and blue)"
            raise Wrong(f"on {what}, at row {r}, column {c} got {float(got[0, r, c]):.4f}, "
                        f"expected {float(want[0, r, c]):.4f}{hint}")
    return f"my_grey matches the ITU-R 601-2 luma on {len(cases)} images"


def reference_global_ssim(x: torch.Tensor, y: torch.Tensor, data_range: float = 1.0, ddof: int = 0) -> float:
    """SSIM with one window covering the whole image, in float64; statistics divide by N - ``ddof``."""
    x, y = x.double().flatten(), y.double().flatten()
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    n = x.numel() - ddof
    mx, my = x.mean(), y.mean()
    vx, vy = ((x - mx) ** 2).sum() / n, ((y - my) ** 2).sum() / n
    cxy = ((x - mx) * (y - my)).sum() / n
    return float((2 * mx * my + c1) * (2 * cxy + c2) / ((mx ** 2 + my ** 2 + c1) * (vx + vy + c2)))


@register("ex-00-3")
def _check_global_ssim(global_ssim: Callable[..., Any]) -> str:
    """global_ssim(x, y, data_range=1.0): one-window SSIM, on photos, constant images and a low-contrast 8x8 pair."""
    grey = photo("camera", 200, 150, 32, 32, grey=True)
    g = torch.Generator().manual_seed(3)
    low = 0.5 + 0.015 * torch.randn(1, 8, 8, generator=g)  # variances near C2: normalisation matters
    cases = [
        ("a 32x32 grey crop and a noisy copy (default data_range)", grey, noisy(grey, 0.1, 4), None),
        ("a grey crop and itself", grey, grey.clone(), 1.0),
        ("two constant images (0.2 and 0.6)", torch.full((1, 8, 8), 0.2), torch.full((1, 8, 8), 0.6), 1.0),
        ("a low-contrast 8x8 image and a noisy copy", low, low + 0.03 * torch.randn(1, 8, 8, generator=g), 1.0),
        ("the 32x32 pair scaled to 0..255, data_range=255", grey * 255, noisy(grey, 0.1, 4) * 255, 255.0),
    ]
    for what, x, y, data_range in cases:
        got = global_ssim(x, y) if data_range is None else global_ssim(x, y, data_range=data_range)
        got = number(got, "global_ssim's result")
        data_range = 1.0 if data_range is None else data_range
        want = reference_global_ssim(x, y, data_range)
        if _close(got, want, 1e-4):
            continue
        hint = ""
        if not math.isfinite(got):
            hint = " (what keeps the fraction defined when an image is flat?)"
        elif _close(got, reference_global_ssim(x, y, data_range, ddof=1), 1e-4):
            hint = " (check what the variances and the covariance are divided by)"
        raise Wrong(f"on {what}, got {got:.6f}, expected {want:.6f}{hint}")
    return f"global_ssim matches the reference on {len(cases)} image pairs"


# ----------------------------------------------------------------------------------------------
# Chapter 04: pix2pix
# ----------------------------------------------------------------------------------------------

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
        if _close(got, want, 1e-4):
            continue
        hint = ""
        bce0 = torch.nn.functional.binary_cross_entropy_with_logits(d_fake, torch.zeros_like(d_fake))
        if _close(got, float(bce0 + lam * (fake - target).abs().mean()), 1e-4):
            hint = " (the generator wants D to answer 'real' on its fakes)"
        elif _close(got, float(torch.nn.functional.binary_cross_entropy(d_fake.sigmoid(), torch.ones_like(d_fake))
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
    if not _close(got[0], want[0], 1e-4):
        hint = " (the paper halves D's loss: 0.5 * (real term + fake term))" if _close(got[0], 2 * want[0], 1e-4) else ""
        raise Wrong(f"loss_D is {got[0]:.5f}, expected {want[0]:.5f}{hint}")
    if not _close(got[1], want[1], 1e-4):
        raise Wrong(f"loss_G is {got[1]:.5f}, expected {want[1]:.5f} (the GAN term against 'real' on the updated D, "
                    "plus lam times the mean |G(x) - y| on the [-1, 1] images)")
    for name, mine, theirs in (("D", seen["D"], ref[1]), ("G", seen["G"], ref[0])):
        diff = _max_change(mine, list(theirs.parameters()))
        if diff > 1e-5:
            order = " (update D first, then G: G's loss uses the updated D)" if name == "G" else ""
            raise Wrong(f"after the step {name}'s parameters differ from the reference step's by {diff:.2e}{order}")
    return "train_step updates D on the detached G(x), then G against the updated D, as Pix2Pix.step does"


# ----------------------------------------------------------------------------------------------
# Chapter 03: SRCNN super-resolution
# ----------------------------------------------------------------------------------------------

def _shapes_match(got: Any, want: torch.Tensor, what: str, name: str) -> torch.Tensor:
    if not isinstance(got, torch.Tensor):
        raise Wrong(f"on {what}, {name} should be a torch.Tensor, got {type(got).__name__}")
    if tuple(got.shape) != tuple(want.shape):
        raise Wrong(f"on {what}, {name} has shape {tuple(got.shape)}, expected {tuple(want.shape)}")
    return got.detach().double().cpu()


@register("ex-03-1")
def _check_sr_pair(my_sr_pair: Callable[..., Any]) -> str:
    """my_sr_pair(image, scale) -> (y_in, y_hr), as i2icourse.data.sr.sr_pair, on an RGB and a grey crop."""
    from i2icourse.data.sr import sr_pair
    cases = [("a 50x70 RGB photo crop at scale 4", photo("astronaut", 30, 200, 50, 70), 4),
             ("a 40x47 grey photo crop at scale 3", photo("camera", 100, 220, 40, 47), 3)]
    for what, image, scale in cases:
        got = my_sr_pair(image.clone(), scale)
        if not isinstance(got, (tuple, list)) or len(got) != 2:
            raise Wrong(f"on {what}, expected a pair (y_in, y_hr), got {type(got).__name__}")
        want_in, want_hr = sr_pair(image, scale)
        g_hr = _shapes_match(got[1], want_hr, what, "y_hr")
        g_in = _shapes_match(got[0], want_in, what, "y_in")
        if float((g_hr - want_hr.double()).abs().max()) > 1e-4:
            hint = ""
            if abs(float(g_hr.mean() - want_hr.double().mean()) - 16 / 255) < 0.02 or float(g_hr.min()) < 15 / 255:
                hint = " (Y as MATLAB computes it starts at 16/255: use images.rgb_to_y)"
            raise Wrong(f"on {what}, y_hr differs from the HR image's Y channel{hint}")
        err = float((g_in - want_in.double()).abs().max())
        if err > 1e-4:
            if err < 3 / 255:
                hint = " (close: is the LR image rounded to 8 bits, and enlarged to exactly the HR size?)"
            else:
                hint = " (is the LR image made by images.resize with antialiasing, to (H / scale, W / scale)?)"
            raise Wrong(f"on {what}, y_in differs from the expected upscaled input by up to {err * 255:.2f} "
                        f"grey levels{hint}")
    return f"my_sr_pair matches sr_pair on {len(cases)} images"


def reference_sr_psnr(y_out: torch.Tensor, y_hr: torch.Tensor, scale: int) -> float:
    """PSNR in dB after dropping ``scale`` pixels on every side, in float64."""
    a, b = images.shave(y_out.double(), scale), images.shave(y_hr.double(), scale)
    return float(10 * torch.log10(1 / ((a - b) ** 2).mean()))


@register("ex-03-2")
def _check_sr_psnr(sr_psnr: Callable[..., Any]) -> str:
    """sr_psnr(y_out, y_hr, scale): PSNR with a shaved border, on a Y crop with border-heavy errors."""
    y = images.rgb_to_y(photo("astronaut", 60, 180, 48, 40))
    g = torch.Generator().manual_seed(5)
    cases = []
    for scale in (2, 3, 4):
        out = (y + 0.02 * torch.randn(y.shape, generator=g)).clamp(0, 1)
        out[..., :scale, :] = 0.0              # a ruined border, as zero padding can leave
        out[..., :, -scale:] = 1.0
        cases.append((f"a 48x40 Y crop with a ruined border, scale {scale}", out, y, scale))
    for what, out, hr, scale in cases:
        got = number(sr_psnr(out.clone(), hr.clone(), scale), "sr_psnr's result")
        want = reference_sr_psnr(out, hr, scale)
        if _close(got, want, 1e-4):
            continue
        hint = ""
        if _close(got, reference_sr_psnr(out, hr, 0), 1e-4):
            hint = " (the border is not shaved)"
        elif math.isfinite(got) and got < want:
            hint = " (is the border dropped on all four sides?)"
        raise Wrong(f"on {what}, got {got:.4f} dB, expected {want:.4f} dB{hint}")
    return f"sr_psnr matches the reference at scales 2, 3 and 4"


def _valid_srcnn_probe(cls: Callable[[], Any], state: dict, x: torch.Tensor) -> dict[str, Any]:
    """Build ``cls()``, load SRCNN's ``state`` into it and run it on ``x``, beside the answer.

    Returns ``problem``: None with the ``output``, or ``"arguments"``, ``"not a module"`` or
    ``"weights"`` with ``why`` (the error's message, or the type built).
    """
    try:
        net = cls()
    except TypeError as e:
        return {"problem": "arguments", "why": str(e)}
    if not isinstance(net, torch.nn.Module):
        return {"problem": "not a module", "why": type(net).__name__}
    try:
        net.load_state_dict(state)
    except RuntimeError as e:
        return {"problem": "weights", "why": str(e)}
    with torch.no_grad():
        return {"problem": None, "output": net(x)}


@register("ex-03-3")
def _check_valid_srcnn(cls: Callable[[], Any]) -> str:
    """ValidSRCNN(): 9-5-5 unpadded SRCNN whose weights load from SRCNN; equals its padded centre."""
    from i2icourse.models.srcnn import SRCNN
    torch.manual_seed(0)
    ref = SRCNN(init_std=0.05)
    x = torch.rand(2, 1, 33, 33, generator=torch.Generator().manual_seed(1))
    seen = beside(cls, _valid_srcnn_probe)(ref.state_dict(), x)
    if seen["problem"] == "arguments":
        raise Wrong(f"ValidSRCNN() should be built without arguments ({seen['why']})")
    if seen["problem"] == "not a module":
        raise Wrong(f"ValidSRCNN() should be a torch.nn.Module, got {seen['why']}")
    if seen["problem"] == "weights":
        first = seen["why"].strip().splitlines()
        raise Wrong("SRCNN's weights do not load into ValidSRCNN (layer names and sizes must match: "
                    f"patch_extraction 1->64 9x9, nonlinear_mapping 64->32 5x5, reconstruction 32->1 5x5): "
                    f"{first[1].strip() if len(first) > 1 else first[0]}")
    with torch.no_grad():
        got, want = seen["output"], ref(x)[..., 8:-8, 8:-8]
    if not isinstance(got, torch.Tensor):
        raise Wrong(f"forward should return a tensor, got {type(got).__name__}")
    if tuple(got.shape) != tuple(want.shape):
        hint = " (no padding: each k x k convolution removes k - 1 pixels)" if got.shape[-1] == 33 else ""
        raise Wrong(f"a (2, 1, 33, 33) input gave shape {tuple(got.shape)}, expected {tuple(want.shape)}{hint}")
    if not torch.allclose(got, want, atol=1e-5):
        raise Wrong("the output has the right size but differs from the padded SRCNN's centre "
                    "(ReLU after the first two layers only, none after the reconstruction)")
    return "ValidSRCNN loads SRCNN's weights and matches its output away from the border"


# ----------------------------------------------------------------------------------------------
# Chapter 01: learning SSIM quality maps
# ----------------------------------------------------------------------------------------------

@register("ex-01-1")
def _check_ssim_map(my_ssim_map: Callable[..., Any]) -> str:
    """my_ssim_map(x, y): the SSIM map (1,H,W) of two grey (1,H,W) images in [0, 1] (Gaussian 11x11, sigma 1.5)."""
    from i2icourse import distortions, metrics
    x = photo("camera", 100, 150, 48, 48, grey=True)
    cases = [("camera vs a noisy copy", noisy(x, 0.1, 1), x),
             ("camera vs a blurred copy", distortions.gaussian_blur(x, 1.5), x),
             ("camera vs itself", x, x)]
    for what, a, b in cases:
        got = my_ssim_map(a.clone(), b.clone())
        if not isinstance(got, torch.Tensor) or got.shape != a.shape:
            raise Wrong(f"on {what}, expected a tensor of shape {tuple(a.shape)}, got "
                        f"{tuple(got.shape) if isinstance(got, torch.Tensor) else type(got).__name__}")
        want = metrics.ssim(a, b, full=True)[1]
        gi, wi = got[..., 5:-5, 5:-5].float(), want[..., 5:-5, 5:-5]   # borders may be padded any way
        if torch.allclose(gi, wi, atol=1e-3):
            continue
        hint = ""
        if float((gi - wi).abs().mean()) < 0.05:
            hint = " (close: check the constants C1 = (0.01 L)^2, C2 = (0.03 L)^2 and divide by N, not N - 1)"
        raise Wrong(f"on {what}, the map differs from SSIM's by up to {float((gi - wi).abs().max()):.3g} "
                    f"away from the border{hint}")
    return "my_ssim_map matches metrics.ssim(full=True) away from the border on 3 image pairs"


@register("ex-01-2")
def _check_impulse_version(my_impulse_version: Callable[..., Any]) -> str:
    """my_impulse_version(x, level, seed): salt & pepper noise, level 0 = unchanged, SSIM falling with level."""
    from i2icourse import metrics
    x = photo("astronaut", 0, 100, 64, 64)
    if not torch.equal(my_impulse_version(x.clone(), 0, 0), x):
        raise Wrong("level 0 must return the image unchanged")
    scores = []
    for level in range(1, 6):
        a, b = my_impulse_version(x.clone(), level, 3), my_impulse_version(x.clone(), level, 3)
        if not isinstance(a, torch.Tensor) or a.shape != x.shape:
            raise Wrong(f"level {level}: expected a tensor of shape {tuple(x.shape)}")
        if not torch.equal(a, b):
            raise Wrong(f"level {level}: two calls with the same seed differ (use a seeded torch.Generator)")
        if float(a.min()) < 0 or float(a.max()) > 1:
            raise Wrong(f"level {level}: values leave [0, 1]")
        scores.append(float(metrics.ssim(a, x)))
    if scores[0] > 0.98:
        raise Wrong(f"level 1 is invisible (SSIM {scores[0]:.3f}): start with a stronger distortion")
    if any(s2 >= s1 for s1, s2 in zip(scores, scores[1:])):
        raise Wrong("SSIM must fall as the level rises, got " + ", ".join(f"{s:.3f}" for s in scores))
    return "levels 0..5 are deterministic and SSIM falls: " + ", ".join(f"{s:.2f}" for s in scores)


@register("ex-01-3")
def _check_unet_params(unet_param_count: Callable[[int, int], Any]) -> str:
    """unet_param_count(levels, base): the parameters of ssim_map_nets.UNet(levels, base), by formula."""
    from i2icourse.models.layers import count_parameters
    from i2icourse.models.ssim_map_nets import UNet
    for levels, base in [(4, 16), (5, 32), (2, 8), (3, 24)]:
        got = number(unet_param_count(levels, base), "unet_param_count's result")
        want = count_parameters(UNet(levels, base))
        if got == want:
            continue
        hint = ""
        diff = want - got
        if diff > 0 and diff == 2 * sum(2 * base * 2 ** i for i in range(levels)) + 2 * sum(
                2 * base * 2 ** i for i in range(levels - 1)):
            hint = " (every BatchNorm has a weight and a bias per channel)"
        raise Wrong(f"for levels={levels}, base={base}: got {got:,.0f}, expected {want:,}{hint}")
    return "unet_param_count matches count_parameters for 4 U-Nets"


# ----------------------------------------------------------------------------------------------
# Chapter 02: autoencoders trained with MS-SSIM vs pixel losses
# ----------------------------------------------------------------------------------------------

def reference_window_sizes(side: int, scales: int = 5, win_size: int = 11) -> list[int]:
    """The SSIM window at each MS-SSIM scale under the course's rule (``metrics.ms_ssim``): the Gaussian
    trimmed to the largest odd size that fits the image at that scale; sides halve rounding up."""
    sizes = []
    for _ in range(scales):
        sizes.append(min(win_size, side if side % 2 else side - 1))
        side = (side + 1) // 2
    return sizes


def _floor_window_sizes(side: int, scales: int, win_size: int) -> list[int]:
    sizes = []
    for _ in range(scales):
        sizes.append(min(win_size, side if side % 2 else side - 1))
        side = side // 2
    return sizes


@register("ex-02-1")
def _check_window_sizes(window_sizes: Callable[..., Any]) -> str:
    """window_sizes(side, scales=5, win_size=11) -> list of the window side at each scale."""
    cases = [(96, 5, 11), (48, 5, 11), (33, 5, 11), (161, 5, 11), (100, 5, 11), (35, 4, 7), (256, 5, 11)]
    for side, scales, win in cases:
        got = window_sizes(side, scales=scales, win_size=win)
        if not isinstance(got, (list, tuple)) or not all(isinstance(k, int) for k in got):
            raise Wrong(f"for side {side}, expected a list of ints, got {got!r}")
        want = reference_window_sizes(side, scales, win)
        if list(got) != want:
            hint = ""
            if len(got) != scales:
                hint = f" (one window per scale: {scales} scales)"
            elif any(k % 2 == 0 for k in got):
                hint = " (a Gaussian window has an odd side, so that it has a centre pixel)"
            elif list(got) == _floor_window_sizes(side, scales, win):
                hint = " (how does a 2x2 average pool with ceil_mode=True round an odd side?)"
            raise Wrong(f"for a {side}-pixel image, {scales} scales, window {win}: got {list(got)}{hint}")
    return f"window_sizes follows the trimming rule on {len(cases)} image sizes"


def _crop_pair(seed: int, side: int = 96) -> tuple[torch.Tensor, torch.Tensor]:
    x = photo("camera", 150 + 7 * seed, 200 + 11 * seed, side, side).unsqueeze(0)   # (1, 1, side, side)
    return x, noisy(x, 0.08, seed)


@register("ex-02-2")
def _check_mixed_loss(mixed_loss: Callable[..., Any]) -> str:
    """mixed_loss(pred, target, alpha=0.84) = alpha (1 - MS-SSIM) + (1 - alpha) L1, on grey 96 and 48 px pairs."""
    from i2icourse import metrics

    cases = [(0, 96, None), (1, 96, 0.5), (2, 48, 0.84), (3, 48, 1.0), (4, 96, 0.0)]
    for seed, side, alpha in cases:
        target, pred = _crop_pair(seed, side)
        pred = pred.clone().requires_grad_()
        got = mixed_loss(pred, target) if alpha is None else mixed_loss(pred, target, alpha=alpha)
        if not isinstance(got, torch.Tensor) or got.numel() != 1:
            raise Wrong("mixed_loss should return a one-element tensor (a loss to call .backward() on)")
        if not got.requires_grad:
            raise Wrong("mixed_loss's result has no gradient: compute it with torch operations on pred")
        a = 0.84 if alpha is None else alpha
        ms = float(metrics.ms_ssim(pred.detach(), target).mean())
        l1 = float((pred.detach() - target).abs().mean())
        want = a * (1 - ms) + (1 - a) * l1
        value = float(got.detach())
        if _close(value, want, 1e-4):
            continue
        hint = ""
        if _close(value, (1 - a) * (1 - ms) + a * l1, 1e-4):
            hint = " (alpha weighs the MS-SSIM term)"
        elif _close(value, a * ms + (1 - a) * l1, 1e-4):
            hint = " (a loss falls as the images get more alike: use 1 - MS-SSIM)"
        elif _close(value, a * (1 - float(metrics.ms_ssim(pred.detach(), target, weights="equal").mean()))
                    + (1 - a) * l1, 1e-4):
            hint = " (Zhao et al. use the standard MS-SSIM exponents)"
        raise Wrong(f"on a {side}x{side} photo crop and a noisy copy with alpha={a}, got {value:.5f}, "
                    f"expected {want:.5f}{hint}")
    return f"mixed_loss matches alpha (1 - MS-SSIM) + (1 - alpha) L1 on {len(cases)} pairs"


# ----------------------------------------------------------------------------------------------
# Chapter 06: CycleGAN
# ----------------------------------------------------------------------------------------------

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
    if _close(got, one_way, 1e-5):
        raise Wrong("only the forward cycle a -> G -> F is counted; CycleGAN closes both")
    if not _close(got, want, 1e-5):
        raise Wrong(f"for a shrinking G and a mirroring F the loss is {got:.4f}, expected {want:.4f}")
    return "cycle_loss: zero for identities, correct for both cycles"


# ----------------------------------------------------------------------------------------------
# Chapter 05: KL-augmented pix2pix
# ----------------------------------------------------------------------------------------------

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
        if not _close(got, want, 1e-4):
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
