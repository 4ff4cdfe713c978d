"""Conventions every chapter notebook follows (their execution is checked by nbval in the smoke profile)."""
import json
import re
from pathlib import Path

import pytest

import i2icourse

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def cells(path):
    return json.loads(path.read_text(encoding="utf-8"))["cells"]


def text(cell):
    src = cell["source"]
    return "".join(src) if isinstance(src, list) else src


def test_there_are_chapters():
    assert CHAPTERS, "no notebooks/NN_*.ipynb found"


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.name)
def test_first_code_cell_installs_from_the_one_repository_url(path):
    first = next(c for c in cells(path) if c["cell_type"] == "code")
    src = text(first)
    urls = re.findall(r'REPOSITORY_URL = "([^"]+)"', src)
    assert urls == [i2icourse.REPOSITORY_URL], f"{path.name}: install cell must define REPOSITORY_URL once"
    assert '"google.colab" in sys.modules' in src and "git+{REPOSITORY_URL}" in src
    assert "torch" not in src.split("pip install")[-1], "the install cell must not install or upgrade torch"


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.name)
def test_sizes_come_from_the_profile(path):
    code = "\n".join(text(c) for c in cells(path) if c["cell_type"] == "code")
    assert "runtime.settings(" in code and "runtime.describe()" in code
    # Sizes may not branch on the profile name; an assert may (smoke numbers mean nothing).
    lines = [ln for ln in code.splitlines() if not ln.lstrip().startswith("assert")]
    assert not re.search(r"profile\(\)\s*==|P\.profile\s*==", "\n".join(lines)), "branch on P's sizes"


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.name)
def test_stored_outputs_are_real_small_and_clean(path):
    assert path.stat().st_size < 3_000_000, f"{path.name} is too large: shrink its figures"
    outputs = [o for c in cells(path) if c["cell_type"] == "code" for o in c.get("outputs", [])]
    assert outputs, f"{path.name} has no stored outputs: run it with `python -m i2icourse.exercises run`"
    assert not [o for o in outputs if o["output_type"] == "error"], f"{path.name} stores an error output"
    printed = "\n".join(text({"source": o.get("text", "")}) for o in outputs if o["output_type"] == "stream")
    assert "profile: smoke" not in printed, f"{path.name}: stored outputs come from the smoke profile"
    assert "profile: cpu" in printed or "profile: full" in printed


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.name)
def test_structure(path):
    md = "\n".join(text(c) for c in cells(path) if c["cell_type"] == "markdown")
    assert md.lstrip().startswith("# "), "a chapter starts with its title"
    for heading in ("## Overview", "## Summary", "## Exercises"):
        assert heading in md, f"{path.name} lacks a '{heading}' section"
    assert "{cite}" in md, f"{path.name} cites no source"
    assert "Prerequisites" in md and "Time to run" in md, f"{path.name}: the overview table needs both rows"


def test_instructors_page_lists_every_exercise():
    page = (ROOT / "book" / "instructors.md").read_text(encoding="utf-8")
    for path in CHAPTERS:
        for cell in cells(path):
            for label in re.findall(r":label:\s*(ex-\d\d-\d+)", text(cell)):
                assert f"| {label} |" in page, f"{label} ({path.name}) is missing from book/instructors.md"


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.name)
def test_course_text_speaks_of_the_course_alone(path):
    # The prose is for readers: it never mentions the project's issues or work sessions.
    for i, cell in enumerate(cells(path)):
        if cell["cell_type"] == "markdown":
            found = re.search(r"\bissues?\b|\bsessions?\b", text(cell), re.I)
            assert not found, f"{path.name}, markdown cell {i}: {found.group(0)!r}"
