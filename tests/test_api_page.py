"""The book's reference of the package (book/api.md, book/api/*.md): every public module, built clean.

Most checks read the pages' sources and the configuration (fast). The rest read a built site: the
book's own ``book/_build/html`` when it is newer than its sources, else the reference pages alone,
built now into a temporary folder with the book's flags (warnings are errors; about 30 s on two
cores). The whole book is built, with the same flags, by ``make book`` in CI. The parts of
``_ext/i2i_book.py`` that the reference relies on are tested on a small Sphinx project of their own.
"""
from __future__ import annotations

import importlib
import importlib.util
import os
import pkgutil
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

import i2icourse

ROOT = Path(__file__).resolve().parents[1]
BOOK = ROOT / "book"
sys.path.insert(0, str(BOOK / "_ext"))
import i2i_book  # noqa: E402  (the book's local extension: book/_ext is not a package)

OVERVIEW = BOOK / "api.md"
PAGES = BOOK / "api"

# Modules the reference leaves out, with their submodules: the instructor tools sit on top of the
# package, and the answer checks' reference computations are the exercises' solutions.
LEFT_OUT = ("i2icourse.exercises", "i2icourse.checks")

DOCUMENTS = re.compile(r"^\.\. (?:automodule|py:module):: (\S+)", re.M)
OVERVIEW_ENTRY = re.compile(r"^\{py:mod\}`([\w.]+)`\n((?::|  ).*(?:\n  .*)*)", re.M)


def public_modules() -> set[str]:
    found = {"i2icourse"} | {m.name for m in pkgutil.walk_packages(i2icourse.__path__, "i2icourse.")}
    return {name for name in found
            if not any(name == skip or name.startswith(skip + ".") for skip in LEFT_OUT)
            and not any(part.startswith("_") for part in name.split("."))}


def reference_pages() -> dict[str, str]:
    """{page name as in the toc (api/models): its source}."""
    return {f"api/{p.stem}": p.read_text(encoding="utf-8") for p in sorted(PAGES.glob("*.md"))}


def documented_modules() -> dict[str, list[str]]:
    """{module: the reference pages that document it}."""
    found: dict[str, list[str]] = {}
    for page, text in reference_pages().items():
        for name in DOCUMENTS.findall(text):
            found.setdefault(name, []).append(page)
    return found


# ------------------------------------------------------------------ the pages' sources
def test_every_public_module_is_documented_once():
    documented = documented_modules()
    missing = sorted(public_modules() - set(documented))
    assert not missing, (f"modules missing from the book's reference: {missing}. Add a section "
                         "'## `NAME`' with an automodule block to the page of its layer in book/api/, "
                         "and a line under its layer in book/api.md")
    unknown = sorted(set(documented) - public_modules())
    assert not unknown, f"book/api/ documents modules that are not (or no longer) public modules: {unknown}"
    twice = {name: pages for name, pages in documented.items() if len(pages) > 1}
    assert not twice, f"modules documented more than once: {twice}"
    for name in documented:
        importlib.import_module(name)  # autodoc imports them: a module that cannot be imported fails here


def test_the_overview_lists_every_module_with_the_chapter_that_uses_it():
    text = OVERVIEW.read_text(encoding="utf-8")
    entries = OVERVIEW_ENTRY.findall(text)
    names = [name for name, _ in entries]
    assert sorted(names) == sorted(public_modules()), (
        "book/api.md must list every documented module once, as a line '{py:mod}`NAME`' followed by "
        f"': one sentence'; missing {sorted(public_modules() - set(names))}, "
        f"extra or twice {sorted(n for n in names if names.count(n) > 1 or n not in public_modules())}")
    silent = [name for name, sentence in entries if not re.search(r"\bchapters?\b", sentence, re.I)]
    assert not silent, f"book/api.md: say which chapter uses each of these modules: {silent}"


def test_each_layer_of_the_overview_points_to_the_page_that_documents_it():
    documented = documented_modules()
    sections = re.split(r"^## ", OVERVIEW.read_text(encoding="utf-8"), flags=re.M)[1:]
    wrong = []
    for section in sections:
        modules = [name for name, _ in OVERVIEW_ENTRY.findall(section)]
        pages = set(re.findall(r"\{doc\}`(api/\w+)`", section))
        wrong += [f"{name} (see {sorted(pages)}; documented in {documented.get(name)})"
                  for name in modules if not set(documented.get(name, [])) & pages]
    assert not wrong, "book/api.md: a layer's 'See {doc}`api/...`' must name the page of each of its modules: " \
        + ", ".join(wrong)


def _toc_pages(name: str) -> list[str]:
    def walk(entries):
        for entry in entries or []:
            if "file" in entry:
                yield entry["file"]
            yield from walk(entry.get("sections"))
            yield from walk(entry.get("chapters"))

    toc = yaml.safe_load((BOOK / name).read_text(encoding="utf-8"))
    return [*walk(toc.get("parts")), *walk(toc.get("chapters"))]


@pytest.mark.parametrize("toc", ["_toc.yml", "_toc_students.yml"])
def test_both_editions_list_every_reference_page(toc):
    listed = _toc_pages(toc)
    missing = [page for page in ["api", *reference_pages()] if page not in listed]
    assert not missing, f"book/{toc}: list these pages (under '- file: api', as sections): {missing}"


def test_the_data_page_names_everything_data_exports():
    import i2icourse.data

    text = (PAGES / "data.md").read_text(encoding="utf-8")
    section = text.split("## `i2icourse.data`", 1)[1].split("\n## ", 1)[0]
    missing = [name for name in i2icourse.data.__all__ if not re.search(rf"\b{name}\b", section)]
    assert not missing, f"book/api/data.md: the section i2icourse.data does not name {missing} (its __all__)"


def _config() -> dict:
    return yaml.safe_load((BOOK / "_config.yml").read_text(encoding="utf-8"))


def test_the_book_loads_the_reference_extensions_and_serves_the_source_itself():
    sphinx = _config()["sphinx"]
    assert {"sphinx.ext.autodoc", "sphinx.ext.autosummary", "sphinx.ext.viewcode"} <= set(sphinx["extra_extensions"])
    assert "sphinx.ext.intersphinx" not in sphinx["extra_extensions"], "intersphinx inventories come from the internet"
    assert sphinx["config"]["autosummary_generate"] is False, "autosummary must not write pages into book/"


def _docstring_ignores() -> list[tuple[str, str]]:
    """The nitpick_ignore_regex entries that name one object (no regular-expression group)."""
    entries = _config()["sphinx"]["config"]["nitpick_ignore_regex"]
    return [(kind, pattern) for kind, pattern in entries if "(" not in pattern and "*" not in kind]


def test_every_ignored_reference_is_still_made_by_a_docstring():
    # An ignore that no docstring needs any more would hide the next real mistake of that name.
    sources = "\n".join(importlib.util.find_spec(name).loader.get_source(name) or "" for name in documented_modules())
    assert _docstring_ignores(), "expected the docstring entries of nitpick_ignore_regex in book/_config.yml"
    stale = []
    for kind, pattern in _docstring_ignores():
        role = kind.split(":")[1]
        as_role = re.search(rf":{role}:`[~!]?{pattern}`", sources)
        as_hint = role == "class" and re.search(rf"(:|->)\s*{pattern}\b", sources)
        if not (as_role or as_hint):
            stale.append(f"[{kind}, '{pattern}']")
    assert not stale, f"book/_config.yml: no docstring makes these references any more, delete them: {stale}"


# ------------------------------------------------------------------ i2i_book's docstring rules

def test_an_indented_block_after_a_paragraph_is_shown_verbatim():
    lines = ["The step:", "", "    G* = arg min_G max_D L", "", "Usage.", "", "    gan.step(batch)",
             "- a list item", "", "  its second paragraph", "Already::", "", "    code"]
    out = i2i_book.verbatim_indented_blocks(lines)
    assert out[0] == "The step::" and out[4] == "Usage. ::"
    assert out[7] == "- a list item" and out[10] == "Already::"


def test_bars_and_fences_in_the_text_are_text():
    out = i2i_book.plain_text_marks(["mean |jump| of ``a|b`` in a ```python block", "Formula::", "", "    |x|"])
    assert out == [r"mean \|jump\| of ``a|b`` in a \`\`\`python block", "Formula::", "", "    |x|"]


# ------------------------------------------------------------------ a small project: both editions
def _mini_project(folder: Path, student: bool) -> Path:
    """A Sphinx project with the book's extension and one page documenting the U-Net."""
    folder.mkdir(parents=True)
    toc = "_toc_students.yml" if student else "_toc.yml"
    (folder / "conf.py").write_text(
        f"import sys\nsys.path.insert(0, {str(BOOK / '_ext')!r})\n"
        "extensions = ['sphinx.ext.autodoc', 'sphinx.ext.viewcode', 'i2i_book']\n"
        "mathjax_path = 'mathjax/tex-chtml.js'\nhtml_theme_options = {}\nnitpicky = False\n"
        f"def setup(app):\n    app.add_config_value('external_toc_path', {toc!r}, 'env')\n",
        encoding="utf-8")
    (folder / "index.rst").write_text(
        "U-Net\n=====\n\n.. autoclass:: i2icourse.models.unet.UNetGenerator\n   :members:\n", encoding="utf-8")
    out = folder / "_build"
    result = subprocess.run([sys.executable, "-m", "sphinx", "-q", "-b", "html", str(folder), str(out)],
                            capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    if result.returncode != 0:
        pytest.fail(f"the small Sphinx project did not build:\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}")
    return out


@pytest.fixture(scope="module")
def mini_sites(tmp_path_factory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("api_mini")
    return {edition: _mini_project(base / edition, edition == "student") for edition in ("book", "student")}


def test_the_book_has_source_pages_and_the_student_edition_has_none(mini_sites):
    assert (mini_sites["book"] / "_modules" / "i2icourse" / "models" / "unet.html").is_file()
    assert "viewcode-link" in (mini_sites["book"] / "index.html").read_text(encoding="utf-8")
    assert not (mini_sites["student"] / "_modules").exists(), \
        "the student edition must not publish the package's source (it holds answers to exercises)"
    assert "viewcode-link" not in (mini_sites["student"] / "index.html").read_text(encoding="utf-8")


def test_forward_shows_no_docstring_inherited_from_pytorch(mini_sites):
    page = (mini_sites["book"] / "index.html").read_text(encoding="utf-8")
    assert 'id="i2icourse.models.unet.UNetGenerator.forward"' in page, "forward (with its [source] link) is listed"
    assert "Define the computation performed" not in page


# ------------------------------------------------------------------ the built reference
def _newest_source_mtime() -> float:
    newest = 0.0
    for top in (BOOK, ROOT / "notebooks", ROOT / "i2icourse"):
        for folder, dirs, files in os.walk(top):
            dirs[:] = [d for d in dirs if not d.startswith((".", "_build")) and d != "__pycache__"]
            newest = max([newest, *((Path(folder) / f).stat().st_mtime for f in files)])
    return newest


def _jupyter_book() -> str:
    candidate = Path(sys.executable).with_name("jupyter-book")
    return str(candidate) if candidate.exists() else (shutil.which("jupyter-book") or "jupyter-book")


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    """book/_build/html if it is newer than its sources, else the reference pages built now."""
    built = BOOK / "_build" / "html"
    if (built / "api.html").is_file() and (built / "api.html").stat().st_mtime > _newest_source_mtime():
        return built
    out = tmp_path_factory.mktemp("api_site")
    toc = out / "_toc.yml"
    toc.write_text(yaml.safe_dump({"format": "jb-book", "root": "api",
                                   "chapters": [{"file": page} for page in reference_pages()]}), encoding="utf-8")
    command = [_jupyter_book(), "build", "-W", "-n", "--keep-going", "--all", "--toc", str(toc),
               "--path-output", str(out), str(BOOK)]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    if result.returncode != 0:
        log = re.sub(r"\x1b\[[0-9;]*m", "", result.stdout + result.stderr)  # without the terminal's colours
        warnings = [line for line in log.splitlines() if "WARNING" in line or "ERROR" in line]
        pytest.fail("the book's reference does not build warnings-clean (" + " ".join(command) + "):\n"
                    + "\n".join(warnings[:40] or [result.stdout[-4000:], result.stderr[-4000:]]), pytrace=False)
    return out / "_build" / "html"


def test_the_reference_documents_every_public_module(site: Path):
    assert (site / "api.html").is_file()
    html = "\n".join(p.read_text(encoding="utf-8") for p in (site / "api").glob("*.html"))
    missing = sorted(name for name in public_modules() if f'id="module-{name}"' not in html)
    assert not missing, f"modules without a section in the built reference: {missing}"
    overview = (site / "api.html").read_text(encoding="utf-8")
    unlinked = sorted(name for name in public_modules() if f'#module-{name}"' not in overview)
    assert not unlinked, f"api.html does not link to these modules' sections: {unlinked}"


def test_the_reference_links_to_the_highlighted_source(site: Path):
    source = site / "_modules" / "i2icourse" / "models" / "unet.html"
    assert source.is_file(), "no source page for i2icourse.models.unet (is sphinx.ext.viewcode loaded?)"
    assert "UNetGenerator" in source.read_text(encoding="utf-8")
    models = (site / "api" / "models.html").read_text(encoding="utf-8")
    assert "../_modules/i2icourse/models/unet.html#UNetGenerator.forward" in models, \
        "UNetGenerator.forward has no [source] link"
