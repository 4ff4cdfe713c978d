"""Fixtures shared by the chapter tests."""
from __future__ import annotations

from typing import Any, Callable

import pytest

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
