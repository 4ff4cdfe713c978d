"""The grader's sandbox against hostile submissions, each graded beside honest classmates in one grading run.

Each attack decides its own answer: it defines the right one only if the attack worked (it read the
grader's secret, or found the solution), so a hostile notebook that gets PASS is a sandbox that leaked.
"""
import os
import threading
import time
from pathlib import Path

import pytest

from i2icourse import checks
from i2icourse.exercises import sandbox as sandboxes
from i2icourse.exercises.grade import grade

from test_exercises import FIXTURE, HANG, SOLVED_GREY, SOLVED_PSNR, WRONG_PSNR, read_csv, run, submission

try:
    SANDBOX = sandboxes.find([])
    NO_SANDBOX = ""
except sandboxes.Unavailable as e:
    SANDBOX, NO_SANDBOX = None, str(e)
needs_sandbox = pytest.mark.skipif(SANDBOX is None, reason=f"no sandbox can be made here: {NO_SANDBOX}")

SECRET = "I2I_TEST_GRADER_SECRET"
MARKER = "i2i-fork-chain-7f3a"  # in the command line of every process of the fork chain
PAYLOAD = "\n\nCHECKS.update({label: (lambda answer: None) for label in CHECKS})  # every check passes\n"
REPOSITORY_NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"

# Defines my_psnr right if `leaked` (set by the attack above it) is true, else wrong; then checks it.
ANSWER = SOLVED_PSNR.replace("def my_psnr", "def right_psnr").replace('check("ex-00-1", my_psnr)', "") + \
    WRONG_PSNR.replace('check("ex-00-1", my_psnr)', "") + \
    '\nif leaked:\n    my_psnr = right_psnr\ncheck("ex-00-1", my_psnr)'

ENVIRON = '''import glob
leaked = False
for path in ["/proc/{grader}/environ"] + glob.glob("/proc/*/environ"):
    try:
        leaked = leaked or b"{secret}" in open(path, "rb").read()
    except OSError:
        pass
''' + ANSWER
SIGINT = '''import os, signal
for pid in (os.getppid(), {grader}):
    try:
        os.kill(pid, signal.SIGINT)
        os.kill(pid, signal.SIGTERM)
    except OSError:
        pass
''' + SOLVED_PSNR  # the attack changes nothing for this notebook: it deserves its pass
CHAIN = '''import subprocess, sys, time
code = "import os, time\\nwhile True:\\n    if os.fork(): os._exit(0)\\n    os.setsid()\\n    time.sleep(0.05)"
subprocess.Popen([sys.executable, "-c", code, "{marker}"], start_new_session=True)
time.sleep(2)
''' + WRONG_PSNR
APPEND = '''import i2icourse.checks
try:
    with open(i2icourse.checks.__file__, "a") as f:
        f.write({payload!r})
except OSError as e:
    print(e)
''' + WRONG_PSNR
SOLUTIONS = '''import glob, json, os
places = [{nbdir!r}, {repository!r}]
for pid in ["{grader}"] + os.listdir("/proc"):  # any folder named on a command line
    try:
        places += [a for a in open(f"/proc/{{pid}}/cmdline", "rb").read().decode().split("\\0") if os.path.isdir(a)]
    except (OSError, ValueError):
        pass
leaked = False
for place in places:
    for path in glob.glob(os.path.join(place, "*.ipynb")):
        try:
            cells = json.load(open(path))["cells"]
        except (OSError, ValueError, KeyError):
            continue
        for cell in cells:
            code = "".join(cell["source"])
            if "solution" in cell["metadata"].get("tags", []) and "def my_psnr" in code:
                exec(code.replace('check("ex-00-1", my_psnr)', ""))
                right_psnr, leaked = my_psnr, True
''' + ANSWER


def _chain_alive() -> list[int]:
    """The processes of the fork chain still alive."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and MARKER.encode() in (entry / "cmdline").read_bytes():
                found.append(int(entry.name))
        except OSError:
            pass
    return found


@pytest.fixture(scope="module")
def sandboxed(tmp_path_factory):
    """One grading run, in the sandbox, of the hostile notebooks and their classmates."""
    root = tmp_path_factory.mktemp("sandboxed")
    nbdir, subs = root / "notebooks", root / "submissions"
    nbdir.mkdir()
    subs.mkdir()
    (nbdir / FIXTURE.name).write_bytes(FIXTURE.read_bytes())
    grader = os.getpid()
    attacks = {"a_append": APPEND.format(payload=PAYLOAD), "b_chain": CHAIN.format(marker=MARKER),
               "c_environ": ENVIRON.format(grader=grader, secret=SECRET), "d_sigint": SIGINT.format(grader=grader),
               "e_solutions": SOLUTIONS.format(grader=grader, nbdir=str(nbdir), repository=str(REPOSITORY_NOTEBOOKS))}
    for name, code in attacks.items():
        (subs / f"{name}.ipynb").write_text(submission({"ex-00-1": code}))
    (subs / "honest.ipynb").write_text(submission({"ex-00-1": SOLVED_PSNR, "ex-00-2": SOLVED_GREY}))
    (subs / "slow.ipynb").write_text(submission({"ex-00-1": SOLVED_PSNR, "ex-00-2": HANG}))
    (subs / "wrong.ipynb").write_text(submission({"ex-00-1": WRONG_PSNR}))
    seen, watching = set(), threading.Event()

    def watch():  # the fork chain's processes, while the grading runs
        while not watching.is_set():
            seen.update(_chain_alive())
            time.sleep(0.1)

    checks_before = Path(checks.__file__).read_text(encoding="utf-8")
    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        with pytest.MonkeyPatch.context() as env:
            env.setenv(SECRET, "do-not-leak-42")
            status, out = run("grade", subs, "--notebooks", nbdir, "--out", root / "results.csv",
                              "--details", root / "details.csv", "--timeout", 25)
    finally:
        watching.set()
        watcher.join()
        now = Path(checks.__file__).read_text(encoding="utf-8")
        if now.endswith(PAYLOAD):  # the sandbox leaked: leave the package as it was
            Path(checks.__file__).write_text(now[:-len(PAYLOAD)], encoding="utf-8")
    assert status == 0, out
    time.sleep(1)
    return dict(rows=read_csv(root / "results.csv", lambda r: r["student"]), out=out, seen=seen,
                details=read_csv(root / "details.csv", lambda r: (r["student"], r["exercise"])),
                appended=now.endswith(PAYLOAD) and not checks_before.endswith(PAYLOAD))


@needs_sandbox
def test_grader_says_which_isolation(sandboxed):
    assert "isolation: bubblewrap (pid, mount, net" in sandboxed["out"]


@needs_sandbox
def test_honest_classmates_are_graded_right(sandboxed):
    rows = sandboxed["rows"]
    assert rows["honest"] == {"student": "honest", "ex-00-1": "pass", "ex-00-2": "pass"}
    assert rows["wrong"]["ex-00-1"] == "fail"  # graded after a notebook tried to make every check pass
    assert rows["slow"] == {"student": "slow", "ex-00-1": "pass", "ex-00-2": "timeout"}  # interrupted in the sandbox


@needs_sandbox
def test_package_is_read_only(sandboxed):
    assert not sandboxed["appended"]
    assert sandboxed["rows"]["a_append"]["ex-00-1"] == "fail"


@needs_sandbox
def test_graders_environment_and_solutions_stay_hidden(sandboxed):
    assert sandboxed["rows"]["c_environ"]["ex-00-1"] == "fail"
    assert sandboxed["rows"]["e_solutions"]["ex-00-1"] == "fail"


@needs_sandbox
def test_signals_do_not_reach_the_grader(sandboxed):
    assert sandboxed["rows"]["d_sigint"]["ex-00-1"] == "pass"
    assert "reached the grader" not in sandboxed["out"]


@needs_sandbox
def test_fork_chain_dies_with_its_run(sandboxed):
    assert sandboxed["seen"]  # the chain ran ...
    assert _chain_alive() == []  # ... and none of it is left
    assert sandboxed["rows"]["b_chain"]["ex-00-1"] == "fail"


def test_sandbox_hides_the_instructors_folders(tmp_path):
    """Without starting anything: the chapter notebooks, the repository's notebooks and /tmp are emptied."""
    plan = sandboxes.plan([tmp_path / "missing", REPOSITORY_NOTEBOOKS], drop_root=False)
    notebooks = str(REPOSITORY_NOTEBOOKS)  # hidden itself, or inside a hidden folder (a checkout in /tmp)
    assert "/tmp" in plan.hidden and any(notebooks == h or notebooks.startswith(h + "/") for h in plan.hidden)
    assert not any(notebooks == e or notebooks.startswith(e + "/") for e in plan.exposed)
    assert not any(h.startswith(e) for e in plan.exposed for h in plan.hidden if h != "/tmp")
    cmd = plan.wrap(["python"], tmp_path, tmp_path)
    assert {"--unshare-pid", "--unshare-net", "--die-with-parent", "--new-session"} <= set(cmd)
    assert cmd[cmd.index("--bind") + 1] == str(tmp_path) and cmd[-2:] == ["--", "python"]


def test_a_signal_without_a_sandbox_ends_only_its_own_run(tmp_path):
    """Without a sandbox a notebook can signal the grader: that run ends as an error, its classmates are graded."""
    (tmp_path / "d_sigint.ipynb").write_text(submission({"ex-00-1": SIGINT.format(grader=os.getpid())}))
    (tmp_path / "honest.ipynb").write_text(submission({"ex-00-1": SOLVED_PSNR, "ex-00-2": SOLVED_GREY}))
    results = {(r.student, r.label): r for r in grade(tmp_path, timeout=30, sandbox=False)}
    assert results["d_sigint", ""].status == "error" and "SIGINT reached the grader" in results["d_sigint", ""].message
    assert results["honest", "ex-00-1"].status == results["honest", "ex-00-2"].status == "pass"
