"""The book's configuration agrees with the repository (fast: no build, no browser)."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

import i2icourse

ROOT = Path(__file__).resolve().parents[1]
BOOK = ROOT / "book"
NOTEBOOKS = ROOT / "notebooks"
CHAPTER = re.compile(r"^\d\d_[\w-]+\.ipynb$")


def _config() -> dict:
    return yaml.safe_load((BOOK / "_config.yml").read_text(encoding="utf-8"))


def _toc_files(name: str = "_toc.yml") -> list[str]:
    def walk(entries):
        for entry in entries or []:
            if "file" in entry:
                yield entry["file"]
            yield from walk(entry.get("sections"))
            yield from walk(entry.get("chapters"))

    toc = yaml.safe_load((BOOK / name).read_text(encoding="utf-8"))
    return [toc["root"], *walk(toc.get("parts")), *walk(toc.get("chapters"))]


def _parts(name: str) -> list[tuple[str | None, int]]:
    """(caption, number of entries) of each part of a table of contents."""
    toc = yaml.safe_load((BOOK / name).read_text(encoding="utf-8"))
    return [(part.get("caption"), len(part.get("chapters", []))) for part in toc.get("parts", [])]


def _chapter_notebooks() -> list[str]:
    return sorted(p.stem for p in NOTEBOOKS.glob("*.ipynb") if CHAPTER.match(p.name))


def test_toc_lists_every_chapter_notebook():
    listed = [f for f in _toc_files() if f.startswith("notebooks/")]
    missing = [n for n in _chapter_notebooks() if f"notebooks/{n}" not in listed]
    assert not missing, f"add these chapters to book/_toc.yml (one line each: '- file: notebooks/NAME'): {missing}"


@pytest.mark.parametrize("toc", ["_toc.yml", "_toc_students.yml"])
def test_toc_entries_exist_and_are_in_order(toc):
    for entry in _toc_files(toc):
        stem = BOOK / entry
        assert any(stem.with_suffix(s).exists() for s in (".md", ".ipynb")), f"{toc} lists {entry}, which does not exist"
    chapters = [f for f in _toc_files(toc) if f.startswith("notebooks/")]
    assert chapters == sorted(chapters), f"chapters in {toc} are out of order: {chapters}"


def test_student_toc_is_the_book_with_the_student_versions():
    # The student edition (make book-students) has the same pages, in the same parts, each chapter
    # replaced by its student version notebooks/student/NN_name.
    student = [f.replace("notebooks/", "notebooks/student/", 1) if f.startswith("notebooks/") else f
               for f in _toc_files()]
    assert _toc_files("_toc_students.yml") == student, \
        "book/_toc_students.yml must list the pages of book/_toc.yml, each chapter as notebooks/student/NN_name"
    assert _parts("_toc_students.yml") == _parts("_toc.yml")


def test_student_edition_names_agree_with_the_package():
    from i2icourse.exercises.student import NOTE_TAG

    extension = (BOOK / "_ext" / "i2i_book.py").read_text(encoding="utf-8")
    assert re.search(rf'^STUDENT_NOTE_TAG = "{re.escape(NOTE_TAG)}"$', extension, re.M), \
        "book/_ext/i2i_book.py: STUDENT_NOTE_TAG must be i2icourse.exercises.student.NOTE_TAG"
    toc = re.search(r'^STUDENT_TOC = "([^"]+)"$', extension, re.M)
    assert toc and (BOOK / toc.group(1)).is_file()
    assert "notebooks/student" not in " ".join(_config()["exclude_patterns"]), \
        "the student edition builds notebooks/student/: only_build_toc_files keeps it out of the book"
    assert _config()["only_build_toc_files"] is True


def test_chapters_come_through_the_notebooks_symlink():
    link = BOOK / "notebooks"
    assert link.is_symlink() and link.resolve() == NOTEBOOKS.resolve(), \
        "book/notebooks must be a symlink to ../notebooks (the chapters live at the repository root)"


def test_repository_url_is_the_package_s():
    config = _config()
    assert config["repository"]["url"] == i2icourse.REPOSITORY_URL
    assert config["repository"]["branch"] == "main"
    assert config["repository"]["path_to_book"] == "book"
    assert config["launch_buttons"]["colab_url"] == "https://colab.research.google.com"


def test_book_renders_stored_outputs_and_serves_its_own_mathjax():
    config = _config()
    assert config["execute"]["execute_notebooks"] == "off"
    assert config["sphinx"]["config"]["mathjax_path"] == "mathjax/tex-chtml.js"
    assert config["sphinx"]["config"]["nb_ipywidgets_js"] == {}, "widget JavaScript would come from a CDN"


def _cited_keys() -> dict[str, set[str]]:
    """{source file: keys cited with {cite}`...` / {cite:p}`...` / {cite:t}`...`}."""
    pattern = re.compile(r"\{cite(?::\w+)?\}`([^`]+)`")
    texts = {p: p.read_text(encoding="utf-8") for p in BOOK.glob("*.md") if p.name != "README.md"}
    for nb in NOTEBOOKS.glob("*.ipynb"):
        cells = json.loads(nb.read_text(encoding="utf-8")).get("cells", [])
        texts[nb] = "\n".join("".join(c.get("source", "")) for c in cells if c.get("cell_type") == "markdown")
    return {str(p.relative_to(ROOT)): {k.strip() for m in pattern.findall(t) for k in m.split(",")}
            for p, t in texts.items()}


def test_every_cited_key_is_in_references_bib():
    bib = (BOOK / "references.bib").read_text(encoding="utf-8")
    keys = set(re.findall(r"^@\w+\{([^,\s]+),", bib, re.M))
    missing = {source: sorted(cited - keys) for source, cited in _cited_keys().items() if cited - keys}
    assert not missing, f"cite keys missing from book/references.bib: {missing}"


@pytest.mark.parametrize("name", ["intro.md", "instructors.md", "api.md", "bibliography.md", "references.bib", "_static/custom.css",
                                  "_ext/i2i_book.py", "_toc_students.yml"])
def test_book_sources_exist(name):
    assert (BOOK / name).is_file()
