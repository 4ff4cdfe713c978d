"""The GitHub Actions workflows run what CI (.ci/run) runs, and the repository's URL is the same everywhere.

The workflows cannot run here; these tests check that they parse and call the same make targets.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

tomllib = pytest.importorskip("tomllib")  # Python 3.11+

ROOT = Path(__file__).resolve().parents[1]
WORKFLOWS = ROOT / ".github" / "workflows"


def _make_calls(text: str) -> set[str]:
    """The ``make ...`` commands in a shell text, whitespace normalised (``make test TESTS=notebooks``)."""
    return {" ".join(m.split()) for m in re.findall(r"\bmake [^\n;&|]*", text)}


def _workflow_runs(name: str) -> str:
    workflow = yaml.safe_load((WORKFLOWS / name).read_text())
    assert workflow.get(True, workflow.get("on")), f"{name} has no trigger"  # YAML reads `on:` as True
    return "\n".join(step.get("run", "") for job in workflow["jobs"].values() for step in job.get("steps", []))


def test_the_test_workflow_runs_what_ci_runs():
    ci = _make_calls((ROOT / ".ci" / "run").read_text())
    runs = _workflow_runs("test.yml")
    tests = {c for c in ci if c.startswith(("make setup", "make test"))}
    assert tests and tests <= _make_calls(runs), f"CI calls {sorted(tests)}, the workflow {sorted(_make_calls(runs))}"
    assert "i2icourse.exercises --check" in runs


def test_the_book_workflow_builds_as_ci_does_and_publishes_main():
    ci = {c for c in _make_calls((ROOT / ".ci" / "run").read_text()) if c.startswith("make book")}
    text = (WORKFLOWS / "book.yml").read_text()
    assert ci and ci <= _make_calls(_workflow_runs("book.yml"))
    workflow = yaml.safe_load(text)
    assert "refs/heads/main" in workflow["jobs"]["deploy"]["if"]
    assert any("deploy-pages" in step.get("uses", "") for step in workflow["jobs"]["deploy"]["steps"])


def _repository() -> str:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["urls"]["Homepage"]


#: Where the repository is named: the book's config (Colab buttons, "repository" link), the clone
#: command of the intro, and each notebook's install cell.
NAMED_AT = {"book/_config.yml": r"repository:\s*\n\s*url:\s*(\S+)", "book/intro.md": r"git clone (\S+)",
            **{str(p.relative_to(ROOT)): r'REPOSITORY_URL = \\?"([^"\\]+)' for p in (ROOT / "notebooks").glob("*.ipynb")}}


@pytest.mark.parametrize("path", sorted(NAMED_AT))
def test_every_mention_of_the_repository_is_the_one_in_pyproject(path):
    # The Colab buttons, the install cells and the clone command must all name the same repository.
    found = set(re.findall(NAMED_AT[path], (ROOT / path).read_text()))
    assert found, f"{path} does not name the repository"
    assert {f.removesuffix(".git") for f in found} == {_repository()}, f"{path} names {sorted(found)}"
