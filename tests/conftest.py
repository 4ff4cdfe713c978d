"""Fixtures shared by the chapter tests, and the markers of the slow groups (``make test-fast`` leaves them out).

The markers (registered in pyproject.toml) are given here, by rule, so that a new test lands in its
group without anyone remembering to mark it:

* ``notebook``: a chapter run by nbval (``make test`` passes ``notebooks``), or a file that executes
  notebooks itself (``FILE_MARKS``);
* ``book``, ``browser``, ``distributed``, ``kernel``: by test file (``FILE_MARKS``: every test in it),
  by fixture (``FIXTURE_MARKS``: every test that uses the fixture, directly or through another), by
  the start of a file's or a test's name (``PREFIX_MARKS``: the autograder's) or by name (``TEST_MARKS``);
* a test may also carry a marker itself (``@pytest.mark.kernel``).

A test that builds the book, opens a browser, runs processes side by side (torchrun, or processes that
race for one dataset) or starts a Jupyter kernel belongs in one of these groups: add a rule here.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

import minidata
from i2icourse import checks


@pytest.fixture
def exercise_check(capsys) -> Callable[..., None]:
    """Assert what every exercise check must do: pass the solution, let an unfinished stub's
    ``NotImplementedError`` through, fail a typical wrong answer and print a hint about it."""
    def verify(label: str, right: Any, stub: Any, wrong: Any, hint: str) -> None:
        assert checks.passes(label, right)
        with pytest.raises(NotImplementedError):
            checks.check(label, stub)
        assert not checks.passes(label, wrong)
        assert hint in capsys.readouterr().out
    return verify


@pytest.fixture(scope="session")
def mini_sources(tmp_path_factory) -> Iterator[minidata.MiniSources]:
    """Miniature copies of the registered datasets, in their published layouts, served on 127.0.0.1.

    Built and served once per test process. Set ``I2I_DATA_SOURCES`` to ``.path`` (and ``I2I_DATA`` to
    a fresh cache, with ``I2I_DATA_MIRROR`` unset) and ``fetch`` downloads them from ``.url``;
    ``.environ(cache)`` gives those variables for a subprocess. See ``tests/minidata.py``.
    """
    with minidata.serve(tmp_path_factory.mktemp("minidata")) as sources:
        yield sources


#: Test files whose every test is in a slow group.
FILE_MARKS = {
    "test_book_in_browser.py": "browser",    # builds the book, opens it in headless Chromium
    "test_student_book.py": "book",          # builds the student edition of the book
    "test_distributed.py": "distributed",    # torchrun: several processes training one model
    "test_profile_paths.py": "notebook",     # runs chapters in the gpu and full profiles, shrunk, in kernels
}

#: Test files and tests whose names start so: the autograder's (test_grade_*.py, test_grade_*) run
#: submissions in kernels.
PREFIX_MARKS = {"test_grade": "kernel"}

#: Fixtures that put every test using them in a slow group (fixture names are unique across the tests).
FIXTURE_MARKS = {
    "graded": "kernel",       # test_exercises.py: the autograder run once over a folder of submissions
    "site": "book",           # test_api_page.py: the book's reference pages, built
    "mini_sites": "book",     # test_api_page.py: two small Sphinx projects with the book's extension, built
}

#: Single tests in a slow group (file::name).
TEST_MARKS = {
    "test_source.py::test_refresh_runs_the_cells_in_a_kernel_and_writes_their_outputs": "kernel",
    "test_cli.py::test_train_runs_under_torchrun_with_two_processes_and_only_rank_0_writes": "distributed",
    "test_data_fetch.py::test_two_processes_installing_the_same_dataset_both_get_it_whole": "distributed",
    "test_data_fetch.py::test_the_dataset_lock_waits_for_its_holder": "distributed",
    "test_data_fetch.py::test_the_dataset_lock_of_a_killed_process_does_not_block": "distributed",
}


def slow_groups(item: pytest.Item) -> set[str]:
    """The slow groups that the rules above put ``item`` in."""
    path = Path(item.path)
    groups = {"notebook"} if path.suffix == ".ipynb" else set()
    groups |= {FILE_MARKS[path.name]} if path.name in FILE_MARKS else set()
    groups |= {group for fixture, group in FIXTURE_MARKS.items() if fixture in getattr(item, "fixturenames", ())}
    test = getattr(item, "originalname", item.name)
    groups |= {group for prefix, group in PREFIX_MARKS.items() if path.name.startswith(prefix) or test.startswith(prefix)}
    name = f"{path.name}::{test}"
    return groups | ({TEST_MARKS[name]} if name in TEST_MARKS else set())


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        for group in sorted(slow_groups(item)):
            item.add_marker(group)
