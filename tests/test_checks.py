"""The exercise checks pass right answers, fail typical wrong ones, and let unfinished stubs raise."""
import numpy as np
import pytest
import torch

from i2icourse import checks
from i2icourse.checks import check, passes

# ----------------------------------------------------------------------------------------------
# Answers: right, unfinished (the stub) and typically wrong
# ----------------------------------------------------------------------------------------------


def psnr(x, y, data_range=1.0):
    return 10 * torch.log10(data_range ** 2 / ((x - y) ** 2).mean())


def psnr_float(x, y, data_range=1.0):
    return float(10 * np.log10(data_range ** 2 / float(((x - y) ** 2).mean())))


def psnr_stub(x, y, data_range=1.0):
    raise NotImplementedError("ex-00-1: compute the MSE, then the PSNR")


PSNR_WRONG = {
    "no square": (lambda x, y, data_range=1.0: 10 * torch.log10(data_range / ((x - y) ** 2).mean()), "data_range"),
    "natural log": (lambda x, y, data_range=1.0: 10 * torch.log(data_range ** 2 / ((x - y) ** 2).mean()),
                    "base of the logarithm"),
    "sign": (lambda x, y, data_range=1.0: 10 * torch.log10(((x - y) ** 2).mean() / data_range ** 2), "sign"),
    "sum": (lambda x, y, data_range=1.0: 10 * torch.log10(data_range ** 2 / ((x - y) ** 2).sum()), "expected"),
    "per channel": (lambda x, y, data_range=1.0: 10 * torch.log10(data_range ** 2 / ((x - y) ** 2).mean((1, 2))),
                    "one number"),
}


def grey(rgb):
    return (torch.tensor([0.299, 0.587, 0.114]).view(3, 1, 1) * rgb).sum(0, keepdim=True)


def grey_stub(rgb):
    raise NotImplementedError("ex-00-2: weight the three channels")


GREY_WRONG = {
    "no channel dim": (lambda rgb: grey(rgb)[0], "keep the channel dimension"),
    "mean": (lambda rgb: rgb.mean(0, keepdim=True), "not equally sensitive"),
    "HWC": (lambda rgb: 0.299 * rgb[..., 0] + 0.587 * rgb[..., 1] + 0.114 * rgb[..., 2], "shape"),
    "0..255": (lambda rgb: grey(rgb) * 255, "0..255"),
    "numpy": (lambda rgb: grey(rgb).numpy(), "torch.Tensor"),
}


def ssim(x, y, data_range=1.0, ddof=0, std=False, constants=True):
    x, y = x.flatten(), y.flatten()
    c1, c2 = ((0.01 * data_range) ** 2, (0.03 * data_range) ** 2) if constants else (0.0, 0.0)
    n = x.numel() - ddof
    mx, my = x.mean(), y.mean()
    vx, vy = ((x - mx) ** 2).sum() / n, ((y - my) ** 2).sum() / n
    cxy = ((x - mx) * (y - my)).sum() / n
    if std:
        vx, vy = vx.sqrt(), vy.sqrt()
    return ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx ** 2 + my ** 2 + c1) * (vx + vy + c2))


def ssim_stub(x, y, data_range=1.0):
    raise NotImplementedError("ex-00-3: global means, variances and covariance first")


SSIM_WRONG = {
    "std in the denominator": (lambda x, y, data_range=1.0: ssim(x, y, data_range, std=True), "expected"),
    "sample covariance": (lambda x, y, data_range=1.0: ssim(x, y, data_range, ddof=1), "divided by"),
    "no C1, C2": (lambda x, y, data_range=1.0: ssim(x, y, data_range, constants=False), "expected"),
}

def ssim_float64(x, y, data_range=1.0):
    return float(ssim(x.double(), y.double(), data_range))


RIGHT = {"ex-00-1": [psnr, psnr_float], "ex-00-2": [grey], "ex-00-3": [ssim, ssim_float64]}
STUBS = {"ex-00-1": psnr_stub, "ex-00-2": grey_stub, "ex-00-3": ssim_stub}
WRONG = [("ex-00-1", k, *v) for k, v in PSNR_WRONG.items()] + [("ex-00-2", k, *v) for k, v in GREY_WRONG.items()] \
    + [("ex-00-3", k, *v) for k, v in SSIM_WRONG.items()]


@pytest.mark.parametrize("label", sorted(RIGHT))
def test_right_answers_pass(label, capsys):
    for answer in RIGHT[label]:
        assert passes(label, answer) is True
    assert capsys.readouterr().out.startswith(f"PASS {label}: ")


@pytest.mark.parametrize("label", sorted(STUBS))
def test_stubs_raise_not_implemented(label, capsys):
    with pytest.raises(NotImplementedError, match=label):
        check(label, STUBS[label])
    assert capsys.readouterr().out == ""


@pytest.mark.parametrize("label, name, answer, hint", WRONG, ids=[f"{w[0]}-{w[1]}" for w in WRONG])
def test_typical_wrong_answers_fail(label, name, answer, hint, capsys):
    assert passes(label, answer) is False
    out = capsys.readouterr().out
    assert out.startswith(f"FAIL {label}: ") and hint in out, out


def test_an_answer_that_raises_fails_and_raises_again(capsys):
    with pytest.raises(ZeroDivisionError):
        check("ex-00-1", lambda x, y, data_range=1.0: 1 / 0)
    assert "FAIL ex-00-1: your code raised ZeroDivisionError" in capsys.readouterr().out


def test_results_are_printed_for_the_student_only(tmp_path, monkeypatch, capsys):
    """The grader runs the checks itself: a check writes no result anywhere a notebook could forge one."""
    log = tmp_path / "checks.jsonl"
    monkeypatch.setenv("I2I_CHECK_LOG", str(log))
    check("ex-00-2", grey)
    check("ex-00-2", GREY_WRONG["mean"][0])
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("PASS ex-00-2: my_grey") and out[1].startswith("FAIL ex-00-2: ")
    assert not log.exists()


def test_unknown_label_and_duplicate_registration():
    with pytest.raises(KeyError, match="ex-99-1"):
        check("ex-99-1", grey)
    with pytest.raises(ValueError, match="already has a check"):
        checks.register("ex-00-1")(lambda answer: "ok")


def test_number_accepts_scalars_only():
    assert checks.number(torch.tensor(2.5), "x") == 2.5
    assert checks.number(np.float32(1.5), "x") == 1.5
    with pytest.raises(checks.Wrong, match="shape"):
        checks.number(torch.ones(3), "x")
    with pytest.raises(checks.Wrong, match="str"):
        checks.number("12", "x")
