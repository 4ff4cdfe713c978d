"""Chapter 03 (SRCNN super-resolution): the checks of SR pairs, shaved PSNR and the unpadded SRCNN."""
from __future__ import annotations

import math
from typing import Any, Callable

import torch

from i2icourse import images
from i2icourse.checks import Wrong, beside, register
from i2icourse.checks.helpers import close, number, photo

#: Every name here, the private ones too: the package re-exports them, and the grader finds a
#: probe (or a function handed to an answer) by its name in the package.
__all__ = ["_shapes_match", "_check_sr_pair", "reference_sr_psnr", "_check_sr_psnr", "_valid_srcnn_probe",
           "_check_valid_srcnn"]


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
        if close(got, want, 1e-4):
            continue
        hint = ""
        if close(got, reference_sr_psnr(out, hr, 0), 1e-4):
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
