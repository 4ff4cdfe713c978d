"""Fixtures shared by the chapter tests."""
from __future__ import annotations

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
