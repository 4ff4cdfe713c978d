"""The student edition of the book (``make book-students``): every chapter, every stub, no solution.

The module builds the edition once, with the book's own flags (warnings are errors), from the
student versions in ``notebooks/student/`` into a temporary folder (about 20 s on two cores), and
reads the built site: what a student can open or download must hold no solution of any exercise.
The solutions it looks for come from the authoring notebooks in ``notebooks/``.
"""
from __future__ import annotations

import functools
import json
import re
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest

from i2icourse.exercises.form import chapter_notebooks, is_marker_line, outline, read_notebook, source

ROOT = Path(__file__).resolve().parents[1]
BOOK = ROOT / "book"
NOTEBOOKS = ROOT / "notebooks"
STUDENT_TOC = BOOK / "_toc_students.yml"
CHAPTERS = chapter_notebooks(NOTEBOOKS)
# A solution line shorter than this (``return x``) could occur anywhere; longer ones identify it.
MIN_LINE = 12
# Markdown solution lines with markup (or with what Sphinx's smart quotes change: quotes, "--",
# "...") render differently; plain prose lines appear in the page as written.
MARKUP = re.compile(r"[$`*_\[\]{}<>|\\\"']|--|\.\.\.|^[:#>\-+\d]")


# ------------------------------------------------------------------ the built site
def _jupyter_book() -> str:
    candidate = Path(sys.executable).with_name("jupyter-book")
    return str(candidate) if candidate.exists() else (shutil.which("jupyter-book") or "jupyter-book")


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    """The student edition's HTML, built now as ``make book-students`` builds it."""
    out = tmp_path_factory.mktemp("student_book")
    command = [_jupyter_book(), "build", "-W", "-n", "--keep-going", "--all",
               "--toc", str(STUDENT_TOC), "--path-output", str(out), str(BOOK)]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    if result.returncode != 0:
        pytest.fail(f"building the student edition failed ({' '.join(command)}):\n"
                    f"{result.stdout[-4000:]}\n{result.stderr[-4000:]}", pytrace=False)
    return out / "_build" / "html"


class _Text(HTMLParser):
    """The text of an HTML page, scripts included (a search index could hold a solution too)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []

    def handle_data(self, data: str) -> None:
        self.parts.append(data)


def page_text(path: Path) -> str:
    parser = _Text()
    parser.feed(path.read_text(encoding="utf-8"))
    return "".join(parser.parts)


def notebook_text(nb) -> str:
    """Sources and text outputs of a notebook's cells."""
    parts = []
    for cell in nb.get("cells", []):
        parts.append(source(cell))
        for output in cell.get("outputs", []):
            text = output.get("text", output.get("data", {}).get("text/plain", ""))
            parts.append("".join(text) if isinstance(text, list) else str(text))
    return "\n".join(parts)


@pytest.fixture(scope="module")
def texts(site: Path) -> dict[str, str]:
    """Every text a reader of the site can reach (pages, downloadable notebooks, search index),
    by path in the site; the theme's and MathJax's files in _static are left out."""
    found = {}
    for path in sorted(site.rglob("*")):
        rel = path.relative_to(site).as_posix()
        if not path.is_file() or rel.startswith("_static/"):
            continue
        if path.suffix == ".html":
            found[rel] = page_text(path)
        elif path.suffix == ".ipynb":
            found[rel] = notebook_text(json.loads(path.read_text(encoding="utf-8")))
        elif path.suffix in (".js", ".txt", ".json", ".md"):
            found[rel] = path.read_text(encoding="utf-8", errors="replace")
    return found


# ------------------------------------------------------------------ the solutions to look for
def _solution_cells(nb) -> set[int]:
    return {i for s in outline(nb).solutions for i in s.cells}


@functools.cache
def _course_text_without_solutions() -> str:
    """Every chapter's cells but its solutions, and the book's own pages: what the site may show."""
    parts = [p.read_text(encoding="utf-8") for p in BOOK.glob("*.md")]
    for path in CHAPTERS:
        nb = read_notebook(path)
        solutions = _solution_cells(nb)
        parts.append(notebook_text({"cells": [c for i, c in enumerate(nb.cells) if i not in solutions]}))
    return "\n".join(parts)


def solution_lines(nb) -> dict[str, list[str]]:
    """{label: the lines of its solution found nowhere else in the course}: its code lines of
    MIN_LINE characters or more, and its plain prose lines (question exercises)."""
    found: dict[str, list[str]] = {}
    for s in outline(nb).solutions:
        lines = []
        for i in s.cells:
            cell = nb.cells[i]
            for line in (x.strip() for x in source(cell).splitlines()):
                prose_ok = cell.cell_type == "markdown" and len(line) >= 30 and not MARKUP.search(line)
                code_ok = cell.cell_type == "code" and len(line) >= MIN_LINE
                if (prose_ok or code_ok) and line not in _course_text_without_solutions():
                    lines.append(line)
        found[s.label] = lines
    return found


def test_every_solution_has_lines_to_look_for():
    for path in CHAPTERS:
        nb = read_notebook(path)
        lines = solution_lines(nb)
        code_solutions = [s.label for s in outline(nb).solutions if s.code]
        assert code_solutions, f"{path.name}: no code solution found (is the exercise form read correctly?)"
        empty = [label for label in code_solutions if not lines[label]]
        assert not empty, f"{path.name}: solutions without a distinctive line: {empty}"


# ------------------------------------------------------------------ the checks on the site
def test_every_chapter_is_a_page_of_its_student_version(site: Path):
    for path in CHAPTERS:
        assert (site / "notebooks" / "student" / f"{path.stem}.html").is_file(), f"no page for {path.name}"
        assert not (site / "notebooks" / f"{path.stem}.html").exists(), \
            f"the student edition also built the authoring notebook {path.name}, solutions included"


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda p: p.stem)
def test_no_solution_anywhere_in_the_site(chapter: Path, texts: dict[str, str]):
    leaks = [f"{label}: {line!r} in {where}"
             for label, lines in solution_lines(read_notebook(chapter)).items()
             for line in lines for where, text in texts.items() if line in text]
    assert not leaks, "solutions in the student edition:\n" + "\n".join(leaks[:20])


def test_no_solution_dropdown_and_no_link_to_the_solutions(site: Path):
    for page in site.rglob("*.html"):
        html = page.read_text(encoding="utf-8")
        rel = page.relative_to(site)
        assert not re.search(r'class="[^"]*\b(solution|tag_solution)\b', html), f"{rel}: a solution block"
        for chapter in CHAPTERS:
            assert f"blob/main/notebooks/{chapter.name}" not in html, \
                f"{rel} links to {chapter.name}, the notebook with the solutions"


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda p: p.stem)
def test_the_stubs_are_there(chapter: Path, site: Path):
    nb = read_notebook(chapter)
    text = page_text(site / "notebooks" / "student" / f"{chapter.stem}.html")
    stubs = [i for e in outline(nb).exercises for i in e.stubs]
    assert stubs, f"{chapter.name} has no stub cells"
    for i in stubs:
        markers = [line.strip() for line in source(nb.cells[i]).splitlines() if is_marker_line(line)]
        assert markers and all(m in text for m in markers), \
            f"{chapter.stem}: the stub of cell {i} ({markers}) is missing from its page"


def test_the_pages_say_which_edition_and_keep_the_colab_note_out(site: Path):
    page = site / "notebooks" / "student" / f"{CHAPTERS[0].stem}.html"
    html = page.read_text(encoding="utf-8")
    assert re.search(r"<title>[^<]*\(student edition\)</title>", html)
    assert "i2i-colab-student" in html and "i2i-colab-full" not in html
    assert "edit the full version, not this copy" not in page_text(page)


def test_make_builds_this_edition():
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    dry = subprocess.run(["make", "-n", "book-students"], cwd=ROOT, capture_output=True, text=True, check=True)
    assert f"--toc {STUDENT_TOC}" in dry.stdout and "--path-output book/_build/students book/" in dry.stdout
    assert "python -m i2icourse.exercises" in dry.stdout  # the student versions are regenerated first
