"""Student versions, the consistency check and the autograder, on the small chapter in tests/fixtures/exercises."""
import contextlib
import copy
import csv
import hashlib
import io
import shutil
import time
from pathlib import Path

import pytest
from nbformat.v4 import new_output

from i2icourse.exercises import check_course, grade_notebook, student_version
from i2icourse.exercises.__main__ import main
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


BREAKAGES = {
    "drifted stub": (_drift, "cell 3 (ex-00-1): stub lines missing from the solution"),
    "missing solution": (_no_solution, "cell 9 (ex-00-2): exercise has no solution"),
    "duplicate label": (_duplicate, "cell 9 (ex-00-1): label used twice (first at"),
    "stub with outputs": (_outputs, "cell 3 (ex-00-1): stub has stored outputs"),
    "solution cell not tagged": (_untagged_solution, "cell 12 (ex-00-2): cell of a solution is not tagged"),
    "stub without raises-exception": (_no_raises_tag, "cell 10 (ex-00-2): stub is not tagged 'raises-exception'"),
    "stub naming another label": (_wrong_marker, "cell 10 (ex-00-2): stub's NotImplementedError names ex-00-3"),
    "label of another chapter": (_bad_number, "cell 14 (ex-01-4): label's chapter number 01"),
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


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """Grade a folder of submissions once through the command line: (rows of the CSV, printed output, folder)."""
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
    (subs / "notes.txt").write_text("not a submission")
    before = digest(subs)
    status, out = run("grade", subs, "--notebooks", nbdir, "--out", root / "results.csv",
                      "--details", root / "details.csv", "--timeout", 90)
    assert status == 0, out
    assert digest(subs) == before  # submissions untouched, though one deletes the files in its folder
    with open(root / "results.csv", newline="") as f:
        rows = {r["student"]: r for r in csv.DictReader(f)}
    with open(root / "details.csv", newline="") as f:
        details = {(r["student"], r["exercise"]): r for r in csv.DictReader(f)}
    return rows, details, out


def test_grade_table(graded):
    rows, _, out = graded
    assert list(rows) == ["blank", "crash", "garbage", "mixed", "teacher"]
    assert list(rows["teacher"]) == ["student", "ex-00-1", "ex-00-2"]  # the open question is not graded
    assert rows["teacher"] == {"student": "teacher", "ex-00-1": "pass", "ex-00-2": "pass"}
    assert rows["blank"] == {"student": "blank", "ex-00-1": "not attempted", "ex-00-2": "not attempted"}
    assert rows["mixed"] == {"student": "mixed", "ex-00-1": "fail", "ex-00-2": "error"}
    assert rows["crash"] == {"student": "crash", "ex-00-1": "error", "ex-00-2": "pass"}
    assert rows["garbage"] == {"student": "garbage", "ex-00-1": "error", "ex-00-2": "error"}
    assert "ex-00-1" in out and "teacher" in out and "not att." in out


def test_grade_details(graded):
    _, details, _ = graded
    assert "base of the logarithm" in details["mixed", "ex-00-1"]["message"]
    assert details["mixed", "ex-00-2"]["message"].startswith("NameError")
    assert "AttributeError" in details["crash", "ex-00-1"]["message"]
    assert details["blank", "ex-00-2"]["message"].startswith("NotImplementedError: ex-00-2")


def test_grade_times_out_a_hanging_notebook(tmp_path):
    path = tmp_path / "hang.ipynb"
    path.write_text(submission({"ex-00-1": SOLVED_PSNR, "ex-00-2": HANG}))
    start = time.monotonic()
    results = grade_notebook(path, timeout=20)
    assert time.monotonic() - start < 20 + 15
    assert {r.label: r.status for r in results} == {"ex-00-1": "pass", "ex-00-2": "timeout"}
