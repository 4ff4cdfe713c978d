"""The course's exercises are well formed: labels unique, every exercise solved, stubs in step with solutions.

:func:`check_course` returns the problems found, each naming its notebook, cell and label; CI
fails on any (``python -m i2icourse.exercises --check``).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from nbformat import NotebookNode

from i2icourse.exercises.form import (CHAPTER, LABEL, chapter_notebooks, is_marker_line, marker_label,
                                      outline, read_notebook, source, tags)


@dataclass(frozen=True)
class Problem:
    """One thing wrong with an exercise, and where."""
    notebook: str
    cell: int | None
    label: str | None
    message: str

    def __str__(self) -> str:
        where = self.notebook + (f", cell {self.cell}" if self.cell is not None else "")
        return f"{where}{f' ({self.label})' if self.label else ''}: {self.message}"


def check_course(notebooks_dir: str | Path) -> list[Problem]:
    """The problems of every chapter notebook ``NN_*.ipynb`` in ``notebooks_dir``, labels unique across them."""
    return check_notebooks(chapter_notebooks(notebooks_dir))


def check_notebooks(paths: Iterable[str | Path]) -> list[Problem]:
    """The problems of the given notebooks, including labels used twice anywhere among them."""
    problems: list[Problem] = []
    seen: dict[str, str] = {}
    for path in paths:
        path = Path(path)
        nb = read_notebook(path)
        problems += check_notebook(nb, path)
        for ex in outline(nb).exercises:
            where = f"{path}, cell {ex.cell}"
            if ex.label and ex.label in seen:
                problems.append(Problem(str(path), ex.cell, ex.label,
                                        f"label used twice (first at {seen[ex.label]})"))
            seen.setdefault(ex.label, where)
    return problems


def check_notebook(nb: NotebookNode, path: str | Path) -> list[Problem]:
    """The problems of one notebook (labels are compared across notebooks by :func:`check_notebooks`)."""
    name = str(path)
    m = CHAPTER.match(Path(path).name)
    number = m.group(1) if m else None
    o = outline(nb)
    problems: list[Problem] = []

    def problem(cell: int | None, label: str | None, message: str) -> None:
        problems.append(Problem(name, cell, label, message))

    # Labels: present, well formed, numbered like the notebook.
    for ex in o.exercises:
        lm = LABEL.match(ex.label)
        if not ex.label:
            problem(ex.cell, None, "exercise directive without a ':label: ex-NN-K' option")
        elif not lm:
            problem(ex.cell, ex.label, "label does not follow the pattern ex-NN-K")
        elif number is not None and lm.group(1) != number:
            problem(ex.cell, ex.label, f"label's chapter number {lm.group(1)} is not the notebook's {number}")

    # Solutions: one per exercise, naming a known exercise, every cell tagged `solution`.
    labels = {ex.label for ex in o.exercises}
    for ex in o.exercises:
        n = len(o.solutions_of(ex.label))
        if ex.label and n == 0:
            problem(ex.cell, ex.label, "exercise has no solution ({solution-start} or {solution} naming its label)")
        elif n > 1:
            problem(ex.cell, ex.label, f"exercise has {n} solutions")
    in_blocks = set()
    for sol in o.solutions:
        in_blocks.update(sol.cells)
        if sol.label not in labels:
            problem(sol.cells[0], sol.label or None, f"{{{sol.kind}}} names no exercise of this notebook")
        if not sol.closed:
            problem(sol.cells[0], sol.label, "{solution-start} without a {solution-end}")
        for i in sol.cells:
            if "solution" not in tags(nb.cells[i]):
                problem(i, sol.label, "cell of a solution is not tagged 'solution' (it would reach students)")
    for i in o.stray_ends:
        problem(i, None, "{solution-end} without a {solution-start}")
    for i, cell in enumerate(nb.cells):
        if "solution" in tags(cell) and i not in in_blocks:
            problem(i, None, "cell tagged 'solution' outside any solution block")

    # Stubs: well formed and in step with their solution's code.
    for i in o.orphan_stubs:
        problem(i, None, "stub (tagged 'exercise') comes before any exercise directive")
    for ex in o.exercises:
        sols = o.solutions_of(ex.label)
        solution_lines = {line.strip() for sol in sols for i in sol.code
                          for line in source(nb.cells[i]).splitlines()}
        for i in ex.stubs:
            problems += _check_stub(nb.cells[i], i, ex.label, solution_lines, bool(sols), name)
    stubs = {i for ex in o.exercises for i in ex.stubs} | set(o.orphan_stubs)
    for i, cell in enumerate(nb.cells):
        t = tags(cell)
        if (cell.cell_type == "code" and i not in stubs and "solution" not in t
                and marker_label(source(cell)) is not None):
            problem(i, marker_label(source(cell)) or None,
                    "raises NotImplementedError like a stub but is not tagged 'exercise'")

    # Solutions stay out of what students see: no telling line of a solution's code in a cell without the tag.
    for ex in o.exercises:
        telling = {line for sol in o.solutions_of(ex.label) for i in sol.code
                   for line in map(str.strip, source(nb.cells[i]).splitlines()) if _telling(line)}
        telling -= {line.strip() for i in ex.stubs for line in source(nb.cells[i]).splitlines()}
        for i, cell in enumerate(nb.cells):
            if "solution" not in tags(cell) and i not in stubs:
                shown = [line for line in sorted(telling) if line in source(cell)]
                if shown:
                    problem(i, ex.label, f"{cell.cell_type} cell students see holds the solution's code: "
                            + "; ".join(repr(s) for s in shown))
    return problems


#: The shortest solution line that counts as giving the solution away.
TELLING_LENGTH = 20


def _telling(line: str) -> bool:
    """Whether a (stripped) line of a solution's code would give it away: long enough, and not a comment, an
    import or a ``check`` call (which the stubs and the text share with the solution)."""
    return (len(line) >= TELLING_LENGTH and not line.startswith(("#", "import ", "from "))
            and not line.startswith(("check(", "passes(")))


def _check_stub(cell: NotebookNode, i: int, label: str, solution_lines: set[str], solved: bool,
                name: str) -> list[Problem]:
    """The problems of one stub cell of exercise ``label``."""
    problems = []
    text = source(cell)

    def problem(message: str) -> None:
        problems.append(Problem(name, i, label, message))

    if cell.get("outputs"):
        problem("stub has stored outputs (clear them: a stored error output is not allowed)")
    if "raises-exception" not in tags(cell):
        problem("stub is not tagged 'raises-exception' (nbval would fail on its NotImplementedError)")
    named = marker_label(text)
    if named is None:
        problem(f'stub does not raise NotImplementedError("{label}: ...")')
    elif named != label:
        problem(f"stub's NotImplementedError names {named or 'no label'}, not {label}")
    if solved and not solution_lines:
        problem("stub's exercise has a solution without code")
    elif solved:
        missing = [s for s in (line.strip() for line in text.splitlines())
                   if s and not s.startswith("#") and "..." not in s and not is_marker_line(s)
                   and s not in solution_lines]
        if missing:
            problem("stub lines missing from the solution's code (stub and solution drifted): "
                    + "; ".join(repr(s) for s in missing))
    return problems
