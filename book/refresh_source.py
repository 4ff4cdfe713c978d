"""Refresh the stored outputs of the cells that show the package's code or draw its diagrams.

    python book/refresh_source.py                        every chapter in notebooks/
    python book/refresh_source.py notebooks/04_pix2pix.ipynb ...
    python book/refresh_source.py --check                write nothing; exit 1 if a shown code is stale

The book renders the outputs stored in the notebooks and never runs them, and re-running a whole
chapter takes minutes to hours. The cells this script refreshes need nothing but the notebook's
imports: cells made only of imports and ``source.show(...)`` / ``source.links(...)`` calls (the
package's code, with "view source" links) or ``plot.*_diagram(...)`` calls (architecture figures).
For each notebook it starts a kernel (a subprocess in the notebook's folder, the repository on its
``PYTHONPATH``), runs the notebook's import statements and ``plot.notebook_figures()``, then those
cells, and writes their outputs (and execution counts of that run) into the notebook in place,
byte-stably as Jupyter writes it. The student versions are regenerated afterwards, so they carry
the same outputs. Needs the instructor tools: ``pip install -e '.[instructor]'``.

``--check`` needs no kernel: it recomputes in this process what every ``source.*`` cell displays and
compares it with the stored output (tests/test_source.py does the same, so CI fails when the package
changed and this script was not run). Diagrams are not compared: their JPEG bytes depend on the
installed matplotlib and Pillow.
"""
from __future__ import annotations

import argparse
import ast
import os
import sys
from pathlib import Path

import nbformat
from nbformat import NotebookNode

from i2icourse import source
from i2icourse.exercises.form import chapter_notebooks, dumps, read_notebook, tags
from i2icourse.exercises.student import generate

#: The repository root: the kernels get it on their PYTHONPATH, so a plain checkout works too.
ROOT = Path(__file__).resolve().parents[1]

#: Calls whose output is code of the package (compared by --check and the tests).
SHOWN = ("source.show", "source.links")
#: The call that sets the notebooks' figure format, run before any diagram.
FIGURE_SETUP = "plot.notebook_figures"


def _dotted(node: ast.AST) -> str:
    """``a.b.c`` for an attribute chain of names, '' for anything else."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        inner = _dotted(node.value)
        return f"{inner}.{node.attr}" if inner else ""
    return ""


def _is_diagram(name: str) -> bool:
    return name.startswith("plot.") and name.endswith("_diagram") and name.count(".") == 1


def _parse(cell: NotebookNode) -> ast.Module | None:
    """The cell's code as a syntax tree; None for markdown, exercise and solution cells, or IPython syntax."""
    if cell.cell_type != "code" or {"exercise", "solution"} & set(tags(cell)):
        return None
    try:
        return ast.parse(cell.source)
    except SyntaxError:  # e.g. the install cell's `!pip install`
        return None


def kind(cell: NotebookNode) -> str | None:
    """``'source'`` for a cell of imports and ``source.*`` calls, ``'figure'`` if it also draws diagrams, else None."""
    tree = _parse(cell)
    if tree is None:
        return None
    calls = []
    for stmt in tree.body:
        if isinstance(stmt, (ast.Import, ast.ImportFrom)):
            continue
        if not (isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Call)):
            return None
        calls.append(_dotted(stmt.value.func))
    if not calls or not all(name in SHOWN or _is_diagram(name) for name in calls):
        return None
    return "source" if all(name in SHOWN for name in calls) else "figure"


def preamble(nb: NotebookNode, figures: bool = True) -> str:
    """The notebook's top-level import statements, in order (and ``plot.notebook_figures()`` if ``figures``)."""
    lines = []
    for cell in nb.cells:
        tree = _parse(cell)
        if tree is None:
            continue
        for stmt in tree.body:
            is_setup = (isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Call)
                        and _dotted(stmt.value.func) == FIGURE_SETUP)
            if isinstance(stmt, (ast.Import, ast.ImportFrom)) or (figures and is_setup):
                lines.append(ast.get_source_segment(cell.source, stmt))
    return "\n".join(lines) + "\n"


class NotebookRefreshError(RuntimeError):
    """A refreshed cell raised: the notebook is left as it was."""


def fresh_outputs(path: Path, kernel: str = "python3", timeout: float = 300) -> dict[int, NotebookNode]:
    """Run the refreshed cells of the notebook at ``path`` after its imports; cell index -> the cell as run."""
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    nb = read_notebook(path)
    chosen = [i for i, cell in enumerate(nb.cells) if kind(cell)]
    if not chosen:
        return {}
    run = nbformat.v4.new_notebook(metadata={"kernelspec": nb.metadata.get("kernelspec", {})})
    run.cells = [nbformat.v4.new_code_cell(preamble(nb))] + [nbformat.v4.new_code_cell(nb.cells[i].source)
                                                            for i in chosen]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)}
    client = NotebookClient(run, kernel_name=kernel, timeout=timeout,
                            resources={"metadata": {"path": str(path.parent.resolve())}})
    try:
        client.execute(env=env)
    except CellExecutionError as e:
        raise NotebookRefreshError(f"{path}: a refreshed cell failed, the notebook is unchanged:\n{e}") from e
    return {i: run.cells[k + 1] for k, i in enumerate(chosen)}


def refresh(path: Path, kernel: str = "python3", timeout: float = 300) -> int:
    """Write the fresh outputs of the refreshed cells of ``path`` in place; returns how many cells changed."""
    new = fresh_outputs(path, kernel, timeout)
    nb = read_notebook(path)
    changed = 0
    for i, ran in new.items():
        cell = nb.cells[i]
        # The count of the refresh run: a cell with outputs but no count is an error for nbval.
        if (cell.outputs, cell.execution_count) != (ran.outputs, ran.execution_count):
            cell.outputs, cell.execution_count = ran.outputs, ran.execution_count
            changed += 1
    if changed:
        path.write_text(dumps(nb), encoding="utf-8")
    return changed


class _Recorder:
    """Stands in for :mod:`i2icourse.source` in a cell: records what ``show``/``links`` would display."""

    def __init__(self) -> None:
        self.shown: list[str] = []

    def show(self, obj: object, *, lines: tuple[int, int] | None = None) -> None:
        self.shown.append(source.find(obj, lines=lines).markdown())

    def links(self, *objects) -> None:
        self.shown.append(source.links_markdown(*objects))


def stored_markdown(cell: NotebookNode) -> list[str]:
    """The Markdown outputs stored in a cell, in order."""
    found = []
    for out in cell.get("outputs", []):
        md = out.get("data", {}).get("text/markdown")
        if md is not None:
            found.append(md if isinstance(md, str) else "".join(md))
    return found


def shown_now(nb: NotebookNode) -> dict[int, list[str]]:
    """What every ``source.*`` cell of ``nb`` displays with the package as it is now; cell index -> Markdown.

    Runs in this process: the notebook's imports, then each cell's calls with ``source`` recorded.
    """
    namespace: dict = {}
    exec(compile(preamble(nb, figures=False), "<notebook imports>", "exec"), namespace)
    result = {}
    for i, cell in enumerate(nb.cells):
        if kind(cell) != "source":
            continue
        calls = [s for s in ast.parse(cell.source).body if not isinstance(s, (ast.Import, ast.ImportFrom))]
        recorder = _Recorder()
        exec(compile(ast.Module(body=calls, type_ignores=[]), f"<cell {i}>", "exec"), {**namespace, "source": recorder})
        result[i] = recorder.shown
    return result


def stale(path: Path) -> list[str]:
    """One message per ``source.*`` cell of the notebook whose stored output differs from the package now."""
    nb = read_notebook(path)
    return [f"{path.name}, cell {i}: the stored code differs from the package's; run python book/refresh_source.py"
            for i, shown in shown_now(nb).items() if stored_markdown(nb.cells[i]) != shown]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("paths", type=Path, nargs="*", help="chapter notebooks (default: every one in notebooks/)")
    p.add_argument("--check", action="store_true", help="write nothing; exit 1 if a stored code output is stale")
    p.add_argument("--kernel", default="python3", help="Jupyter kernel (default: python3)")
    p.add_argument("--timeout", type=float, default=300, help="seconds per cell (default: 300)")
    args = p.parse_args(argv)
    paths = args.paths or chapter_notebooks(ROOT / "notebooks")
    if args.check:
        problems = [line for path in paths for line in stale(path)]
        print("\n".join(problems) or f"the code shown in {len(paths)} notebooks is up to date")
        return 1 if problems else 0
    for path in paths:
        try:
            changed = refresh(path, args.kernel, args.timeout)
        except NotebookRefreshError as e:
            print(e, file=sys.stderr)
            return 1
        print(f"{path}: {changed} cell(s) refreshed")
    for folder in sorted({path.parent for path in paths if path.parent.name != "student"}):
        for line in generate(folder, folder / "student"):
            print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
