"""Student versions, the consistency check and the autograder, on the small chapter in tests/fixtures/exercises."""
import contextlib
import copy
import csv
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from nbformat.v4 import new_output

from i2icourse.exercises import Result, check_course, grade_notebook, student_version, write_csv, write_details
from i2icourse.exercises import judge
from i2icourse.exercises.__main__ import main
from i2icourse.exercises.grade import answer_expression, read_course
from i2icourse.exercises.isolation import belongs, run_folder
from i2icourse.exercises.form import dumps, marker_label, outline, read_notebook, source, tags

FIXTURE = Path(__file__).parent / "fixtures" / "exercises" / "00_demo.ipynb"


def run(*argv: str) -> tuple[int, str]:
    """Run the command line in-process; return its exit status and everything it printed."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        status = main([str(a) for a in argv])
    return status, out.getvalue()


@pytest.fixture
def course(tmp_path):
    """A course folder holding the fixture chapter; returns the notebooks folder."""
    nbdir = tmp_path / "notebooks"
    nbdir.mkdir()
    shutil.copy(FIXTURE, nbdir / FIXTURE.name)
    return nbdir


def edit(path, change):
    """Apply ``change`` to the notebook at ``path`` and write it back."""
    nb = read_notebook(path)
    change(nb)
    Path(path).write_text(dumps(nb), encoding="utf-8")


def cell_by_id(nb, cell_id):
    return next(c for c in nb.cells if c.get("id") == cell_id)


def stub_of(nb, label):
    return next(c for c in nb.cells if "exercise" in tags(c) and marker_label(source(c)) == label)


# ----------------------------------------------------------------------------------------------
# Student versions
# ----------------------------------------------------------------------------------------------

def test_student_version_drops_solutions_and_keeps_teaching(course):
    status, out = run("generate", "--notebooks", course)
    assert status == 0, out
    full = read_notebook(course / FIXTURE.name)
    student = read_notebook(course / "student" / FIXTURE.name)
    assert "Student version" in source(student.cells[0])
    assert "00_demo.ipynb" in source(student.cells[0])
    body = student.cells[1:]
    assert not any("solution" in tags(c) for c in body)
    assert not any("{solution" in source(c) for c in body)
    assert len(body) == len(full.cells) - sum("solution" in tags(c) for c in full.cells)
    stubs = [c for c in body if "exercise" in tags(c)]
    assert len(stubs) == 2
    assert all("raises-exception" in tags(c) and c.outputs == [] and c.execution_count is None for c in stubs)
    for c in body:  # everything else as it was, stored outputs included
        assert c == cell_by_id(full, c.id) or "exercise" in tags(c)
    assert cell_by_id(student, "teaching").outputs and cell_by_id(student, "teaching").outputs == \
        cell_by_id(full, "teaching").outputs
    assert {e.label for e in outline(student).exercises} == {"ex-00-1", "ex-00-2", "ex-00-4"}


def test_generation_is_byte_stable(course, tmp_path):
    assert run("generate", "--notebooks", course)[0] == 0
    first = (course / "student" / FIXTURE.name).read_bytes()
    status, out = run("--notebooks", course, "--student", tmp_path / "again")
    assert status == 0 and (tmp_path / "again" / FIXTURE.name).read_bytes() == first
    assert "wrote" not in run("--notebooks", course)[1]  # nothing to rewrite
    assert first.endswith(b"}\n") and b'\n "cells": [\n' in first  # indent 1, trailing newline
    nb = read_notebook(course / FIXTURE.name)
    assert dumps(student_version(nb, FIXTURE.name)).encode() == first
    assert read_notebook(course / FIXTURE.name) == nb  # the authoring notebook is untouched


def test_check_passes_when_up_to_date(course):
    run("--notebooks", course)
    status, out = run("--notebooks", course, "--check")
    assert status == 0, out


def test_check_fails_on_stale_missing_and_extra_student_versions(course):
    student = course / "student" / FIXTURE.name
    assert run("--check", "--notebooks", course)[0] == 1  # missing
    run("--notebooks", course)
    edit(course / FIXTURE.name, lambda nb: cell_by_id(nb, "teaching-text").update(source="Changed prose."))
    status, out = run("--check", "--notebooks", course)
    assert status == 1 and f"{student}: out of date" in out
    run("--notebooks", course)
    shutil.copy(student, course / "student" / "07_gone.ipynb")
    status, out = run("--check", "--notebooks", course)
    assert status == 1 and "07_gone.ipynb" in out
    run("--notebooks", course)  # generate removes the student version of a chapter that is gone
    assert not (course / "student" / "07_gone.ipynb").exists()
    assert run("--check", "--notebooks", course)[0] == 0


# ----------------------------------------------------------------------------------------------
# Consistency
# ----------------------------------------------------------------------------------------------

def _drift(nb):
    sol = cell_by_id(nb, "ex-00-1-solution")
    sol.source = sol.source.replace('"""PSNR in dB of x against y."""', '"""The PSNR."""')


def _no_solution(nb):
    nb.cells = [c for c in nb.cells if not c.get("id", "").startswith("ex-00-2-solution")]


def _duplicate(nb):
    cell_by_id(nb, "ex-00-2").source = cell_by_id(nb, "ex-00-2").source.replace("ex-00-2", "ex-00-1")


def _outputs(nb):
    stub_of(nb, "ex-00-1").outputs = [new_output("error", ename="NotImplementedError", evalue="", traceback=[])]


def _untagged_solution(nb):
    cell_by_id(nb, "ex-00-2-solution").metadata["tags"] = []


def _no_raises_tag(nb):
    stub_of(nb, "ex-00-2").metadata["tags"] = ["exercise"]


def _wrong_marker(nb):
    stub = stub_of(nb, "ex-00-2")
    stub.source = stub.source.replace('NotImplementedError("ex-00-2', 'NotImplementedError("ex-00-3')


def _bad_number(nb):
    cell_by_id(nb, "ex-00-4").source = cell_by_id(nb, "ex-00-4").source.replace("ex-00-4", "ex-01-4")
    cell_by_id(nb, "ex-00-4-solution").source = cell_by_id(nb, "ex-00-4-solution").source.replace("ex-00-4", "ex-01-4")


def _solution_in_hint(nb):
    hint = cell_by_id(nb, "ex-00-1")
    hint.source = hint.source.replace("\n```", "\n\nHint: `return 10 * torch.log10(data_range ** 2 / mse)`\n```")


BREAKAGES = {
    "drifted stub": (_drift, "cell 3 (ex-00-1): stub lines missing from the solution"),
    "missing solution": (_no_solution, "cell 9 (ex-00-2): exercise has no solution"),
    "duplicate label": (_duplicate, "cell 9 (ex-00-1): label used twice (first at"),
    "stub with outputs": (_outputs, "cell 3 (ex-00-1): stub has stored outputs"),
    "solution cell not tagged": (_untagged_solution, "cell 12 (ex-00-2): cell of a solution is not tagged"),
    "stub without raises-exception": (_no_raises_tag, "cell 10 (ex-00-2): stub is not tagged 'raises-exception'"),
    "stub naming another label": (_wrong_marker, "cell 10 (ex-00-2): stub's NotImplementedError names ex-00-3"),
    "label of another chapter": (_bad_number, "cell 14 (ex-01-4): label's chapter number 01"),
    "solution in a hint": (_solution_in_hint, "cell 2 (ex-00-1): markdown cell students see holds the solution's code"),
}


def test_fixture_is_consistent(course):
    assert check_course(course) == []


@pytest.mark.parametrize("name", list(BREAKAGES))
def test_check_names_each_broken_exercise(course, name):
    breakage, message = BREAKAGES[name]
    run("--notebooks", course)
    edit(course / FIXTURE.name, breakage)
    run("--notebooks", course)  # student version up to date: only the exercise problem remains
    status, out = run("--check", "--notebooks", course)
    assert status == 1 and f"{course / FIXTURE.name}, {message}" in out, out


def test_labels_are_unique_across_the_course(course):
    shutil.copy(course / FIXTURE.name, course / "00_copy.ipynb")
    problems = [str(p) for p in check_course(course)]
    assert sum("label used twice" in p and "00_demo.ipynb" in p for p in problems) == 3, problems


# ----------------------------------------------------------------------------------------------
# Autograder
# ----------------------------------------------------------------------------------------------

SOLVED_PSNR = '''def my_psnr(x, y, data_range=1.0):
    return 10 * torch.log10(data_range ** 2 / ((x - y) ** 2).mean())


check("ex-00-1", my_psnr)'''
WRONG_PSNR = SOLVED_PSNR.replace("log10", "log")
CRASHING_PSNR = SOLVED_PSNR.replace("((x - y) ** 2).mean()", "x.mse(y)")
SOLVED_GREY = '''def my_grey(rgb):
    return (torch.tensor([0.299, 0.587, 0.114]).view(3, 1, 1) * rgb).sum(0, keepdim=True)


check("ex-00-2", my_grey)'''
TYPO_GREY = SOLVED_GREY.replace('check("ex-00-2", my_grey)', 'check("ex-00-2", my_gray)')
HANG = "while True:\n    pass"
DELETE_CWD = "import os\n\nfor name in os.listdir('.'):\n    os.remove(name)"

# Attacks on the grader, all in one submission ("attacker", graded first). Each one changed the table
# when the grader read a log that the notebook could write and ran it with the grader's own process.
FORGE_LOG = WRONG_PSNR + '''


import json, os

if os.environ.get("I2I_CHECK_LOG"):  # a forged pass, after the real fail
    with open(os.environ["I2I_CHECK_LOG"], "a") as f:
        f.write(json.dumps({"label": "ex-00-1", "passed": True, "message": "forged", "error": None}) + "\\n")'''
FORGE_CHECK = '''import i2icourse.checks
import i2icourse.images

i2icourse.checks.CHECKS["ex-00-2"] = lambda answer: "forged"      # a check that passes anything
i2icourse.images.rgb_to_grey = lambda rgb: rgb.mean(0, keepdim=True)  # and a reference that agrees with the answer


def my_grey(rgb):
    return rgb.mean(0, keepdim=True)


check("ex-00-2", my_grey)'''
DAEMON = '''import os, shutil, sys, time

if os.fork():  # the second fork: the child is an orphan, in a session of its own
    os._exit(0)
root, subs = sys.argv[1], sys.argv[2]
shutil.copy(os.path.join(subs, "blank.ipynb"), os.path.join(subs, "teacher.ipynb"))  # a classmate's work, gone
open(os.path.join(root, "daemon-started"), "w").close()
results = os.path.join(root, "results.csv")
for _ in range(1200):  # wait for the results, then rewrite them
    if os.path.exists(results):
        time.sleep(0.2)
        with open(results, "w") as f:
            f.write("student,ex-00-1,ex-00-2\\nattacker,pass,pass\\nteacher,fail,fail\\n")
        break
    time.sleep(0.1)
'''
SPY_AND_DETACH = '''import json, os, subprocess, sys, time

with open({seen!r}, "w") as f:  # what the kernel sees of the grader's environment
    json.dump(dict(os.environ), f)
print(os.environ)
subprocess.Popen([sys.executable, "-c", {daemon!r}, {root!r}, {subs!r}], start_new_session=True, cwd="/",
                 env={{"PATH": os.environ.get("PATH", "")}}, stdin=subprocess.DEVNULL,
                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # no token, no folder of the run
for _ in range(300):
    if os.path.exists(os.path.join({root!r}, "daemon-started")):
        break
    time.sleep(0.1)'''
SECRET = "I2I_TEST_GRADER_SECRET"


def submission(answers=None, first_cell=None):
    """The student version with some stubs replaced by answers ({label: code})."""
    nb = student_version(read_notebook(FIXTURE), FIXTURE.name)
    for label, code in (answers or {}).items():
        stub_of(nb, label).source = code
    if first_cell:
        cell = copy.deepcopy(nb.cells[2])
        cell.update(id="student-cell", source=first_cell, outputs=[], execution_count=None)
        nb.cells.insert(1, cell)
    return dumps(nb)


def digest(folder):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def read_csv(path, key):
    with open(path, newline="") as f:
        return {key(r): r for r in csv.DictReader(f)}


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """Grade a folder of submissions once through the command line, then wait a little for anything left behind.

    Without the sandbox (tests/test_grade_sandbox.py has it): these attacks need the grader's user and files,
    and what is checked here is what defends the grading even then."""
    root = tmp_path_factory.mktemp("grading")
    nbdir, subs = root / "notebooks", root / "submissions"
    nbdir.mkdir()
    subs.mkdir()
    shutil.copy(FIXTURE, nbdir / FIXTURE.name)
    shutil.copy(FIXTURE, subs / "teacher.ipynb")
    (subs / "blank.ipynb").write_text(submission())
    (subs / "mixed.ipynb").write_text(submission({"ex-00-1": WRONG_PSNR, "ex-00-2": TYPO_GREY}, DELETE_CWD))
    (subs / "crash.ipynb").write_text(submission({"ex-00-1": CRASHING_PSNR, "ex-00-2": SOLVED_GREY}))
    (subs / "garbage.ipynb").write_text("this is not a notebook")
    malformed = json.loads(submission())
    del malformed["cells"][3]["cell_type"]
    (subs / "malformed.ipynb").write_text(json.dumps(malformed))
    attack = SPY_AND_DETACH.format(seen=str(root / "env-seen.json"), daemon=DAEMON, root=str(root), subs=str(subs))
    (subs / "attacker.ipynb").write_text(submission({"ex-00-1": FORGE_LOG, "ex-00-2": FORGE_CHECK}, attack))
    (subs / "notes.txt").write_text("not a submission")
    before = digest(subs)
    with pytest.MonkeyPatch.context() as env:
        env.setenv(SECRET, "do-not-leak-42")
        status, out = run("grade", subs, "--notebooks", nbdir, "--out", root / "results.csv",
                          "--details", root / "details.csv", "--timeout", 90, "--no-sandbox")
    assert status == 0, out
    time.sleep(3)  # time enough for a process left behind to rewrite the results
    return SimpleNamespace(rows=read_csv(root / "results.csv", lambda r: r["student"]), out=out, root=root,
                           details=read_csv(root / "details.csv", lambda r: (r["student"], r["exercise"])),
                           changed={name for name, h in digest(subs).items() if before.get(name) != h})


def test_grade_table(graded):
    rows = graded.rows
    assert list(rows) == ["attacker", "blank", "crash", "garbage", "malformed", "mixed", "teacher"]
    assert list(rows["teacher"]) == ["student", "ex-00-1", "ex-00-2"]  # the open question is not graded
    assert rows["teacher"] == {"student": "teacher", "ex-00-1": "pass", "ex-00-2": "pass"}
    assert rows["blank"] == {"student": "blank", "ex-00-1": "not attempted", "ex-00-2": "not attempted"}
    assert rows["mixed"] == {"student": "mixed", "ex-00-1": "fail", "ex-00-2": "error"}
    assert rows["crash"] == {"student": "crash", "ex-00-1": "error", "ex-00-2": "pass"}
    assert rows["garbage"] == {"student": "garbage", "ex-00-1": "error", "ex-00-2": "error"}
    assert "ex-00-1" in graded.out and "teacher" in graded.out and "not att." in graded.out


def test_grade_details(graded):
    details = graded.details
    assert "base of the logarithm" in details["mixed", "ex-00-1"]["message"]
    assert details["mixed", "ex-00-2"]["message"].startswith("NameError")
    assert "AttributeError" in details["crash", "ex-00-1"]["message"]
    assert details["blank", "ex-00-2"]["message"].startswith("NotImplementedError: ex-00-2")


def test_grade_counts_the_graders_checks_not_the_notebooks(graded):
    """A pass appended to $I2I_CHECK_LOG, and a replaced check and reference, count for nothing."""
    assert graded.rows["attacker"] == {"student": "attacker", "ex-00-1": "fail", "ex-00-2": "fail"}
    assert "base of the logarithm" in graded.details["attacker", "ex-00-1"]["message"]
    assert "not equally sensitive" in graded.details["attacker", "ex-00-2"]["message"]


def test_grade_leaves_no_process_behind(graded):
    """A detached child (setsid, double fork, no token, cwd /) is killed with its run: the results stay as graded."""
    assert (graded.root / "daemon-started").exists()  # the child ran ...
    assert graded.changed == {"teacher.ipynb"}  # ... and rewrote a classmate's notebook on disk during its run,
    assert graded.rows["teacher"]["ex-00-1"] == "pass"  # after the grader had read it
    assert graded.rows["attacker"]["ex-00-1"] == "fail"  # and results.csv was not rewritten after the grader ended
    assert [p for p in Path("/proc").iterdir() if p.name.isdigit() and _runs_with(p, str(graded.root))] == []


def _runs_with(proc, text):
    """Whether the process's command line holds ``text``."""
    with contextlib.suppress(OSError):
        return text.encode() in (proc / "cmdline").read_bytes()
    return False


def test_grade_keeps_the_graders_environment_from_the_kernel(graded):
    seen = json.loads((graded.root / "env-seen.json").read_text())
    assert SECRET not in seen and "I2I_CHECK_LOG" not in seen
    assert seen["I2I_PROFILE"] == "smoke" and seen["HOME"] != os.environ.get("HOME")
    assert not set(seen) & {"VIRTUAL_ENV", "PYTEST_CURRENT_TEST", "USER"}


def test_grade_reports_a_malformed_notebook_and_grades_the_others(graded):
    assert graded.rows["malformed"] == {"student": "malformed", "ex-00-1": "error", "ex-00-2": "error"}
    assert "cell 3 has no cell_type" in graded.details["malformed", ""]["message"]


def test_grade_times_out_a_hanging_notebook(tmp_path):
    path = tmp_path / "hang.ipynb"
    path.write_text(submission({"ex-00-1": SOLVED_PSNR, "ex-00-2": HANG}))
    start = time.monotonic()
    results = grade_notebook(path, timeout=20, sandbox=False)
    assert time.monotonic() - start < 20 + 15
    assert {r.label: r.status for r in results} == {"ex-00-1": "pass", "ex-00-2": "timeout"}


# ----------------------------------------------------------------------------------------------
# The grader's parts, without a kernel
# ----------------------------------------------------------------------------------------------

def test_judge_checks_with_a_fresh_copy_of_the_checks(monkeypatch):
    """The grader's cell ignores a replaced check or reference, and leaves the notebook's modules as they were."""
    import i2icourse.images
    from i2icourse import checks
    monkeypatch.setitem(checks.CHECKS, "ex-00-2", lambda answer: "forged")
    monkeypatch.setattr(i2icourse.images, "rgb_to_grey", lambda rgb: rgb.mean(0, keepdim=True))

    def stub(rgb):
        raise NotImplementedError("ex-00-2: weight the channels")

    namespace = {"mean": lambda rgb: rgb.mean(0, keepdim=True), "stub": stub, "crash": lambda rgb: rgb.nope}
    verdicts = {e: judge.judge("ex-00-2", e, Path(checks.__file__).parent, namespace)["status"]
                for e in ("mean", "stub", "crash", "undefined")}
    assert verdicts == {"mean": "fail", "stub": "not attempted", "crash": "error", "undefined": "no answer"}
    assert sys.modules["i2icourse.checks"] is checks and sys.modules["i2icourse.images"] is i2icourse.images
    assert checks.CHECKS["ex-00-2"](None) == "forged"


def test_answer_expression_is_the_last_check_of_the_label():
    cells = ["%matplotlib inline\ncheck('ex-00-1', first)", "x = 1\ncheck('ex-00-2', other)",
             "def f():\n    pass\ncheck(\"ex-00-1\", make(2)[0])", "check('ex-00-1', broken"]
    assert answer_expression(cells, "ex-00-1") == "make(2)[0]"
    assert answer_expression(cells, "ex-00-3") is None
    assert answer_expression(["checks.passes('ex-00-3', f)"], "ex-00-3") == "f"


def test_course_knows_the_answer_each_solution_checks(course):
    known = read_course(course)
    assert known.answers == {"ex-00-1": "my_psnr", "ex-00-2": "my_grey"}
    assert known.labels == {"ex-00-1", "ex-00-2"}


def test_csv_cells_that_look_like_formulas_are_escaped(tmp_path):
    results = [Result('=HYPERLINK("http://x")', "ex-00-1", "fail", "@SUM(A1)"),
               Result("+ann", "ex-00-1", "error", "-1 is wrong"), Result("bob", "ex-00-1", "pass", "fine")]
    write_csv(results, tmp_path / "results.csv")
    write_details(results, tmp_path / "details.csv")
    with open(tmp_path / "results.csv", newline="") as f:
        assert [row[0] for row in csv.reader(f)] == ["student", "'+ann", '\'=HYPERLINK("http://x")', "bob"]
    with open(tmp_path / "details.csv", newline="") as f:
        assert [row[3] for row in csv.reader(f)] == ["message", "'@SUM(A1)", "'-1 is wrong", "fine"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["details.csv", "results.csv"]  # no temporary file left


def test_run_processes_are_found_by_token_and_folder(tmp_path):
    """Processes with the run's token or working directory are the run's and end with it; others do not."""
    sleep = ["sleep", "60"]
    other = subprocess.Popen(sleep, start_new_session=True, cwd=tmp_path)
    try:
        with run_folder() as run:
            marked = subprocess.Popen(sleep, start_new_session=True, env=run.env(), cwd="/")
            inside = subprocess.Popen(sleep, start_new_session=True, env={"PATH": os.environ["PATH"]}, cwd=run.work)
            assert belongs(marked.pid, run) and belongs(inside.pid, run) and not belongs(other.pid, run)
        for p in (marked, inside):
            p.wait(timeout=10)
            assert not Path(f"/proc/{p.pid}").exists()
        assert other.poll() is None
    finally:
        other.kill()
        other.wait()
