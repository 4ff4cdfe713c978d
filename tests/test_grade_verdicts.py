"""The grader's verdicts are computed in its own process: a submission's kernel sends back data, never a verdict."""
import base64
import io
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from i2icourse import checks, distortions, metrics
from i2icourse import images as course_io
from i2icourse.data.sr import sr_pair
from i2icourse.exercises import calls, grade, grade_notebook, judge
from i2icourse.models.layers import count_parameters
from i2icourse.models.resnet_generator import ResnetGenerator
from i2icourse.models.ssim_map_nets import UNet
from test_exercises import SOLVED_GREY, SOLVED_PSNR, WRONG_PSNR, submission

CHECKS_DIR = Path(checks.__file__).parent  # the checks package's folder, loaded anew for each verdict


# ----------------------------------------------------------------------------------------------
# Every check, with its answer on the other side of the data boundary (served in this process)
# ----------------------------------------------------------------------------------------------

class ValidSRCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.patch_extraction = nn.Conv2d(1, 64, 9)
        self.nonlinear_mapping = nn.Conv2d(64, 32, 5)
        self.reconstruction = nn.Conv2d(32, 1, 5)

    def forward(self, x):
        return self.reconstruction(torch.relu(self.nonlinear_mapping(torch.relu(self.patch_extraction(x)))))


def impulse_version(x, level, seed=0):
    if level == 0:
        return x.clone()
    return distortions.salt_and_pepper(x, (0.01, 0.03, 0.08, 0.15, 0.3)[level - 1], torch.Generator().manual_seed(seed))


def mixed_loss(pred, target, alpha=0.84):
    return alpha * (1 - metrics.ms_ssim(pred, target).mean()) + (1 - alpha) * (pred - target).abs().mean()


def photo_jitter(a, b, strength=0.3, generator=None):
    return a, (b * (1 - strength + 2 * strength * torch.rand(3, 1, 1, generator=generator))).clamp(0, 1)


RIGHT = {
    "ex-00-1": lambda x, y, data_range=1.0: checks.reference_psnr(x, y, data_range),
    "ex-00-2": course_io.rgb_to_grey,
    "ex-00-3": lambda x, y, data_range=1.0: np.float64(checks.reference_global_ssim(x, y, data_range)),
    "ex-01-1": lambda x, y: metrics.ssim(x, y, full=True)[1],
    "ex-01-2": impulse_version,
    "ex-01-3": lambda levels, base: count_parameters(UNet(levels, base)),
    "ex-02-1": checks.reference_window_sizes,
    "ex-02-2": mixed_loss,
    "ex-03-1": sr_pair,
    "ex-03-2": checks.reference_sr_psnr,
    "ex-03-3": ValidSRCNN,
    "ex-04-1": checks.reference_receptive_field,
    "ex-04-2": lambda x, eps=1e-5: torch.nn.functional.instance_norm(x, eps=eps),
    "ex-04-3": checks.reference_generator_loss,
    "ex-04-5": checks.reference_pix2pix_step,
    "ex-05-1": checks.reference_soft_histogram_loss,
    "ex-05-3": photo_jitter,
    "ex-06-1": lambda ngf, n_blocks: count_parameters(ResnetGenerator(3, 3, ngf, n_blocks)),
    "ex-06-2": checks.reference_cycle_loss,
}


def stub(*args, **kwargs):
    raise NotImplementedError("not yet")


def judged(label, answer, expression="answer"):
    return judge.judge(label, expression, CHECKS_DIR, {"answer": answer})


def test_every_check_runs_on_an_answer_it_reaches_only_through_data():
    assert set(RIGHT) == set(checks.CHECKS)
    verdicts = {label: judged(label, answer) for label, answer in RIGHT.items()}
    assert {label: v["status"] for label, v in verdicts.items()} == dict.fromkeys(RIGHT, "pass"), verdicts
    assert {label: judged(label, stub)["status"] for label in RIGHT} == dict.fromkeys(RIGHT, "not attempted")


def train_step_without_detach(G, D, opt_G, opt_D, x, y, lam=100.0):
    # checks.reference_pix2pix_step but for the detach: D's backward pass frees G's graph before G's own.
    bce = torch.nn.functional.binary_cross_entropy_with_logits
    fake = G(x)
    d_real, d_fake = D(x, y), D(x, fake)
    loss_D = 0.5 * (bce(d_real, torch.ones_like(d_real)) + bce(d_fake, torch.zeros_like(d_fake)))
    opt_D.zero_grad()
    loss_D.backward()
    opt_D.step()
    d_fake = D(x, fake)
    loss_G = bce(d_fake, torch.ones_like(d_fake)) + lam * (fake - y).abs().mean()
    opt_G.zero_grad()
    loss_G.backward()
    opt_G.step()
    return loss_D.item(), loss_G.item()


class PaddedSRCNN(ValidSRCNN):
    def forward(self, x):
        return nn.functional.pad(super().forward(x), (8, 8, 8, 8))


@pytest.mark.parametrize("label, wrong, hint", [
    ("ex-04-5", train_step_without_detach, "detach"),
    ("ex-03-3", PaddedSRCNN, "shape"),
    ("ex-03-3", lambda: "a network", "torch.nn.Module, got str"),
    ("ex-05-1", lambda p, t, bins=8, sigma=0.05: checks.reference_soft_histogram_loss(p.detach(), t, bins, sigma),
     "no gradient"),
    ("ex-06-2", lambda G, F, a, b: (F(G(a)) - a).abs().mean(), "forward cycle"),
    ("ex-00-2", lambda rgb: object(), "got object"),
])
def test_probes_and_stand_ins_bring_back_what_the_check_compares(label, wrong, hint):
    """Modules, optimisers and backward passes stay beside the answer; what is not data comes back as its type's name."""
    found = judged(label, wrong)
    assert found["status"] == "fail" and hint in found["message"], found


# ----------------------------------------------------------------------------------------------
# The round trip of one call, and what the grader refuses to read
# ----------------------------------------------------------------------------------------------

def served(answer):
    """A sender to this process's namespace holding ``answer``, as the kernel would serve it."""
    return lambda request: calls.reply(request, CHECKS_DIR, {"answer": answer})


def call(send, *args, **kwargs):
    return judge.ask(send, ("call", "answer", calls.pack((None, args, kwargs), extra=lambda v: None)))


def test_a_call_sends_and_returns_data_only():
    def echo(*args, **kwargs):
        return args, kwargs, np.arange(3), np.float32(1.5)

    x = torch.rand(2, 3).requires_grad_()
    (args, kwargs, array, scalar) = call(served(echo), x, [1, (2, "3")], {"k": None}, flag=True)
    assert torch.equal(args[0], x) and args[0] is not x and args[0].requires_grad
    assert args[1:] == ([1, (2, "3")], {"k": None}) and kwargs == {"flag": True}
    assert type(args[1]) is list and type(args[1][1]) is tuple
    assert isinstance(array, np.ndarray) and array.tolist() == [0, 1, 2]
    assert type(scalar) is np.float32 and scalar == 1.5
    lazy = call(served(lambda: (x * 2, object(), print)))
    assert lazy[0].requires_grad and lazy[0].is_leaf  # a copy, without the kernel's graph
    assert [type(v).__name__ for v in lazy[1:]] == ["object", "builtin_function_or_method"]
    assert isinstance(lazy[1], calls.Other) and not hasattr(lazy[1], "__float__")


def test_exceptions_come_back_as_names_and_messages():
    def crash(x):
        raise KeyError("no such key")

    with pytest.raises(judge.Raised) as raised:
        call(served(crash), 1)
    assert (raised.value.name, raised.value.message) == ("KeyError", "'no such key'")
    with pytest.raises(NotImplementedError, match="not yet"):
        call(served(stub), 1)
    assert judged("ex-00-1", lambda x, y, data_range=1.0: 1 / 0)["message"] == \
        "your code raised ZeroDivisionError: division by zero"
    assert judged("ex-00-1", stub, "undefined_name")["status"] == "no answer"


class Gadget:
    def __reduce__(self):
        return (print, ("this ran in the grader",))


def forged(tree):
    buffer = io.BytesIO()
    torch.save(tree, buffer)
    return base64.b64encode(buffer.getvalue()).decode()


@pytest.mark.parametrize("reply", [
    forged(("returned", ("value", Gadget()))),                       # a pickle that would run code
    forged(("returned", ("tensor", nn.Parameter(torch.ones(1)), False))),  # a tensor that is not a plain one
    forged(("returned", ("answer",))),                               # a node only requests carry, or none at all
    forged(("returned", ("function", "reference_psnr"))),
    forged(("passed", "ex-00-1")),
    '{"label": "ex-00-1", "status": "pass", "message": "forged"}',
    "not base64 at all",
])
def test_a_reply_that_is_not_plain_data_is_an_error(reply, capsys):
    found = judge.judge("ex-00-1", "answer", CHECKS_DIR, lambda request: reply)
    assert found["status"] == "error" and "not data" in found["message"], found
    assert "this ran in the grader" not in capsys.readouterr().out


def test_a_kernel_without_a_reply_stops_the_check_with_its_status():
    def silent(request):
        raise judge.Unchecked("timeout", "the grader's check of the answer did not finish in time")

    assert judge.judge("ex-00-2", "answer", CHECKS_DIR, silent) == judge.verdict(
        "ex-00-2", "timeout", "the grader's check of the answer did not finish in time")


def test_only_the_checks_own_functions_run_beside_the_answer():
    elsewhere = checks.Elsewhere(lambda probe, args, kwargs: judge._call(served(abs), "answer", checks, probe,
                                                                         args, kwargs))
    with pytest.raises(TypeError, match="not a function of the checks"):
        checks.beside(elsewhere, lambda answer: answer(-1))()
    with pytest.raises(TypeError, match="cannot be sent"):
        elsewhere(object())
    assert elsewhere(-2) == 2


# ----------------------------------------------------------------------------------------------
# Real kernels: what a notebook leaves in its kernel cannot grade it
# ----------------------------------------------------------------------------------------------

# With the check in the notebook's kernel, as the grader once ran it, this passed any wrong answer (json.dumps).
PATCH_EVERYTHING = '''import builtins, json, sys, torch
import i2icourse.checks

_dumps = json.dumps
json.dumps = lambda obj, *a, **k: _dumps(dict(obj, status="pass") if isinstance(obj, dict) else obj, *a, **k)
torch.allclose = lambda *a, **k: True                      # the references agree with anything
torch.equal = lambda *a, **k: True
i2icourse.checks.CHECKS.update(dict.fromkeys(list(i2icourse.checks.CHECKS), lambda answer: "forged"))
for name, module in list(sys.modules.items()):            # and every chapter's comparison
    if name.startswith("i2icourse.checks") and hasattr(module, "close"):
        module.close = lambda *a, **k: True
sys.modules["i2icourse.checks"] = i2icourse.checks'''
# Answers whose checks need probes (modules, optimisers) and the checks' own functions in the kernel.
PROBED = '''from i2icourse.checks import check, reference_pix2pix_step as train_step  # a right step


def cycle_loss(G, F, a, b):  # the forward cycle only
    return (F(G(a)) - a).abs().mean()


check("ex-04-5", train_step)
check("ex-06-2", cycle_loss)'''
MEAN_GREY = SOLVED_GREY.replace("(torch.tensor([0.299, 0.587, 0.114]).view(3, 1, 1) * rgb).sum(0, keepdim=True)",
                                "rgb.mean(0, keepdim=True)")
# Reads the nonce in the grader's cell, hides the kernel's true reply and prints a well-formed reply of its own.
FORGE_REPLY = '''import base64, re, sys, torch
from io import BytesIO  # the notebook imports i2icourse's io later


def forge(info):
    found = re.search(r"'([0-9a-f]{32})'\\)\\n", info.raw_cell or "")
    if found and "_i2i" in info.raw_cell:
        nonce, write, buffer = found.group(1), sys.stdout.write, BytesIO()
        torch.save(("returned", ("value", 99.0)), buffer)
        write(f"{nonce} {base64.b64encode(buffer.getvalue()).decode()}\\n")
        sys.stdout.write = lambda text: 0 if nonce in text else write(text)  # IPython puts it back after the cell


get_ipython().events.register("pre_run_cell", forge)'''
# Prints the old grader's pass line, nonce and all, beside the kernel's true reply.
ECHO_PASS = '''import builtins, re

_exec = builtins.exec


def forge(source):
    for nonce in re.findall(r"'([0-9a-f]{32})'", source):
        for label in ("ex-00-1", "ex-00-2"):
            print(nonce, '{"label": "%s", "status": "pass", "message": "forged"}' % label)


def exec(source, *args, **kwargs):
    if isinstance(source, str):
        forge(source)
    return _exec(source, *args, **kwargs)


builtins.exec = exec
get_ipython().events.register("pre_run_cell", lambda info: forge(info.raw_cell or ""))'''


@pytest.fixture(scope="module")
def attacked(tmp_path_factory):
    """Grade three attacking notebooks in one run of the grader (three kernels; no chapter notebooks, so that
    any label a notebook checks is graded)."""
    root = tmp_path_factory.mktemp("attacks")
    subs = root / "submissions"
    subs.mkdir()
    (subs / "patcher.ipynb").write_text(submission({"ex-00-1": SOLVED_PSNR, "ex-00-2": MEAN_GREY},
                                                    PATCH_EVERYTHING + "\n\n" + PROBED))
    (subs / "forger.ipynb").write_text(submission({"ex-00-1": WRONG_PSNR}, FORGE_REPLY))
    (subs / "echoer.ipynb").write_text(submission({}, ECHO_PASS))
    results = grade(subs, timeout=90)
    return {(r.student, r.label): (r.status, r.message) for r in results}


def test_patched_json_torch_and_checks_leave_the_verdicts_as_the_answers_deserve(attacked):
    assert attacked["patcher", "ex-00-1"][0] == "pass"          # a right answer still passes
    status, message = attacked["patcher", "ex-00-2"]
    assert status == "fail" and "not equally sensitive" in message
    assert attacked["patcher", "ex-04-5"][0] == "pass"          # its probe trained the modules in the kernel
    status, message = attacked["patcher", "ex-06-2"]
    assert status == "fail" and "forward cycle" in message    # the checks' generators, called there by name


def test_a_forged_reply_is_judged_as_the_answer_it_claims_to_be(attacked):
    """The forger hides the kernel's replies and sends 99.0 for every call: the grader compares 99.0."""
    status, message = attacked["forger", "ex-00-1"]
    assert status == "fail" and "got 99.0000" in message
    status, message = attacked["forger", "ex-00-2"]
    assert status == "fail" and "should return a torch.Tensor, got float" in message


def test_a_pass_line_printed_beside_the_reply_makes_an_error_not_a_pass(attacked):
    for label in ("ex-00-1", "ex-00-2"):
        status, message = attacked["echoer", label]
        assert status == "error" and "may have changed its kernel" in message, message


GREY_THAT_HANGS_FOR_THE_GRADER = SOLVED_GREY.replace("def my_grey(rgb):\n", '''def my_grey(rgb):
    import sys
    while sys._getframe(1).f_globals.get("__name__") == "i2i_calls":  # called by the grader's cell
        pass
''')


def test_an_answer_that_runs_too_long_in_its_check_times_out(tmp_path):
    path = tmp_path / "slow.ipynb"
    path.write_text(submission({"ex-00-1": SOLVED_PSNR, "ex-00-2": GREY_THAT_HANGS_FOR_THE_GRADER}))
    results = {r.label: (r.status, r.message) for r in grade_notebook(path, timeout=15)}
    assert results == {"ex-00-1": ("pass", results["ex-00-1"][1]),
                       "ex-00-2": ("timeout", "the grader's check of the answer did not finish in time")}
