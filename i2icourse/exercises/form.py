"""The exercise form of a chapter notebook, read from its cells; and notebooks read and written byte-stably.

An exercise is a markdown cell with a sphinx-exercise directive and a label ``ex-NN-K``::

    ```{exercise} PSNR from scratch
    :label: ex-00-1
    ...
    ```

followed, for code exercises, by one or more *stub* code cells tagged ``exercise`` (and
``raises-exception``), whose holes are ``...`` and which ``raise NotImplementedError("ex-00-1: ...")``.
Its solution is a block of cells tagged ``solution``: a ``{solution-start} ex-00-1`` markdown cell,
the solution code, and a ``{solution-end}`` markdown cell; or, for an open question, one markdown
cell ``{solution} ex-00-4``. Cell indices here count every cell from 0, as the notebook's JSON does.
"""
from __future__ import annotations

import copy
import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
from nbformat import NotebookNode
from nbformat.v4.rwbase import rejoin_lines

#: A chapter notebook's file name: two digits, an underscore, a name.
CHAPTER = re.compile(r"^(\d{2})_.+\.ipynb$")
#: An exercise label.
LABEL = re.compile(r"^ex-(\d{2})-(\d+)$")

_FENCE = r"^[ \t]*(?:`{3,}|:{3,})"
_EXERCISE = re.compile(_FENCE + r"\{exercise(?:-start)?\}", re.M)
_LABEL_OPTION = re.compile(r"^[ \t]*:label:[ \t]*(\S*)", re.M)
_SOLUTION = re.compile(_FENCE + r"\{(solution|solution-start)\}[ \t]*(\S*)", re.M)
_SOLUTION_END = re.compile(_FENCE + r"\{solution-end\}", re.M)
_MARKER = re.compile(r"""raise\s+NotImplementedError\s*\(\s*[rRuUfF]?(?:'''|\"\"\"|'|")\s*(ex-\d{2}-\d+)?""")
_CHECK_CALL = re.compile(r"""\bcheck\(\s*['"](ex-\d{2}-\d+)['"]""")


# ----------------------------------------------------------------------------------------------
# Reading and writing notebooks
# ----------------------------------------------------------------------------------------------

def read_notebook(path: str | Path) -> NotebookNode:
    """The notebook at ``path`` as stored, its sources joined into strings (nothing validated, added or repaired)."""
    nb = json.loads(Path(path).read_text(encoding="utf-8"))
    if not isinstance(nb, dict) or nb.get("nbformat") != 4 or not isinstance(nb.get("cells"), list):
        raise ValueError(f"{path}: not an nbformat 4 notebook")
    return rejoin_lines(nbformat.from_dict(nb))


def dumps(nb: NotebookNode) -> str:
    """The notebook as Jupyter writes it (sorted keys, indent 1, trailing newline): same notebook, same bytes.

    Cells of an nbformat >= 4.5 notebook that lack an id get one derived from their position and
    source, so that writing never invents random ids.
    """
    if nb.get("nbformat_minor", 0) >= 5 and not all("id" in cell for cell in nb.cells):
        nb = copy.deepcopy(nb)
        for i, cell in enumerate(nb.cells):
            if "id" not in cell:
                cell["id"] = hashlib.sha1(f"{i}:{source(cell)}".encode()).hexdigest()[:8]
    text = nbformat.writes(nb, version=nbformat.NO_CONVERT)
    return text if text.endswith("\n") else text + "\n"


def chapter_notebooks(folder: str | Path) -> list[Path]:
    """The chapter notebooks ``NN_name.ipynb`` directly inside ``folder``, sorted by name."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: no such folder of notebooks")
    return sorted(p for p in folder.iterdir() if p.is_file() and CHAPTER.match(p.name))


# ----------------------------------------------------------------------------------------------
# Cells
# ----------------------------------------------------------------------------------------------

def source(cell: NotebookNode) -> str:
    """A cell's source as one string (stored either as a string or as a list of lines)."""
    s = cell.get("source", "")
    return s if isinstance(s, str) else "".join(s)


def tags(cell: NotebookNode) -> list[str]:
    """A cell's tags (``metadata.tags``)."""
    return list(cell.get("metadata", {}).get("tags", []))


def exercise_labels(cell: NotebookNode) -> list[str]:
    """The labels of the ``{exercise}`` directives in a markdown cell ('' for a directive without label)."""
    if cell.cell_type != "markdown":
        return []
    text = source(cell)
    starts = [m.start() for m in _EXERCISE.finditer(text)]
    labels = []
    for a, b in zip(starts, starts[1:] + [len(text)]):
        m = _LABEL_OPTION.search(text, a, b)
        labels.append(m.group(1) if m else "")
    return labels


def marker_label(text: str) -> str | None:
    """The label named by the stub marker ``raise NotImplementedError("ex-NN-K: ...")``.

    ``None`` without a marker, ``''`` when the marker's message does not start with a label.
    """
    m = _MARKER.search(text)
    return None if m is None else m.group(1) or ""


def is_marker_line(line: str) -> bool:
    """Whether a line is the stub marker ``raise NotImplementedError(...)``."""
    return _MARKER.match(line.strip()) is not None


def checked_labels(text: str) -> list[str]:
    """The labels passed to ``check("ex-NN-K", ...)`` calls in code."""
    return _CHECK_CALL.findall(text)


def mentions(text: str, label: str) -> bool:
    """Whether ``text`` names ``label`` (``ex-00-1`` does not match inside ``ex-00-10``)."""
    return re.search(re.escape(label) + r"(?!\d)", text) is not None


# ----------------------------------------------------------------------------------------------
# The outline of a notebook's exercises
# ----------------------------------------------------------------------------------------------

@dataclass
class Exercise:
    """An ``{exercise}`` directive: its label, its cell, and the stub cells that follow it."""
    label: str
    cell: int
    stubs: list[int] = field(default_factory=list)


@dataclass
class Solution:
    """A solution: a ``{solution-start}`` ... ``{solution-end}`` block, or one ``{solution}`` cell."""
    label: str
    kind: str                      # "solution-start" or "solution"
    cells: list[int]               # every cell of the block, its markers included
    code: list[int] = field(default_factory=list)
    closed: bool = True


@dataclass
class Outline:
    """Where a notebook's exercises, stubs and solutions are."""
    exercises: list[Exercise] = field(default_factory=list)
    solutions: list[Solution] = field(default_factory=list)
    orphan_stubs: list[int] = field(default_factory=list)  # stubs before any exercise
    stray_ends: list[int] = field(default_factory=list)    # {solution-end} outside a block

    def exercise(self, label: str) -> Exercise | None:
        """The exercise labelled ``label``, if any."""
        return next((e for e in self.exercises if e.label == label), None)

    def solutions_of(self, label: str) -> list[Solution]:
        """The solutions naming ``label`` (one, in a consistent notebook)."""
        return [s for s in self.solutions if s.label == label]

    def region(self, label: str, n_cells: int) -> range:
        """The cells from the exercise's directive up to the next exercise's directive."""
        starts = [e.cell for e in self.exercises]
        ex = self.exercise(label)
        if ex is None:
            return range(0)
        later = [c for c in starts if c > ex.cell]
        return range(ex.cell, min(later) if later else n_cells)


def outline(nb: NotebookNode) -> Outline:
    """Find the exercises, stubs (code cells tagged ``exercise``) and solution blocks of a notebook."""
    out = Outline()
    block: Solution | None = None
    for i, cell in enumerate(nb.cells):
        text = source(cell)
        if block is not None:
            block.cells.append(i)
            if cell.cell_type == "code":
                block.code.append(i)
            if cell.cell_type == "markdown" and _SOLUTION_END.search(text):
                block = None
            continue
        for label in exercise_labels(cell):
            out.exercises.append(Exercise(label, i))
        if cell.cell_type == "code" and "exercise" in tags(cell):
            (out.exercises[-1].stubs if out.exercises else out.orphan_stubs).append(i)
        if cell.cell_type == "markdown":
            m = _SOLUTION.search(text)
            if m:
                kind, label = m.group(1), m.group(2)
                sol = Solution(label, kind, [i])
                out.solutions.append(sol)
                if kind == "solution-start" and not _SOLUTION_END.search(text, m.end()):
                    block = sol
            elif _SOLUTION_END.search(text):
                out.stray_ends.append(i)
    if block is not None:
        block.closed = False
    return out


def code_labels(nb: NotebookNode) -> set[str]:
    """Labels of the exercises with code: those with a stub, or passed to ``check(...)`` in a code cell."""
    o = outline(nb)
    labels = {e.label for e in o.exercises if e.stubs}
    for cell in nb.cells:
        if cell.cell_type == "code":
            labels.update(checked_labels(source(cell)))
            if "exercise" in tags(cell) and marker_label(source(cell)):
                labels.add(marker_label(source(cell)))
    return labels
