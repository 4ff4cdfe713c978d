"""The autograder: run each submitted notebook and record, per exercise, what its checks said.

Each submission is copied into a fresh temporary folder and executed there (that folder is the
kernel's working directory, so the submission itself is never touched) by a new kernel with
``I2I_PROFILE=smoke`` and ``I2I_CHECK_LOG`` set, under a wall-clock limit per notebook. An
exercise's status is then, in this order:

* its **last** check result: ``pass``, ``fail``, or ``error`` when the answer raised inside ``check``;
* else, from the last exception in its cells (stub and solution cells in its section, and any cell
  naming its label): ``not attempted`` for ``NotImplementedError``, ``error`` for any other;
* else ``timeout`` if the notebook ran out of time before the exercise finished;
* else ``not attempted`` (nothing checked it: the stub or its ``check`` call was deleted).

The exercises graded are those of the notebook's exercise directives that have code (a stub or a
``check`` call, in the submission or in the chapter notebooks), plus any label a check reported.
Open questions are not graded. This is no sandbox: a notebook can still reach other folders, and
a student who wants to can forge a check result, so read the notebook behind a surprising one.
"""
from __future__ import annotations

import csv
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from nbclient import NotebookClient
from nbclient.exceptions import CellTimeoutError, DeadKernelError
from nbformat import NotebookNode

from i2icourse.exercises.form import (Outline, chapter_notebooks, code_labels, mentions, outline,
                                      read_notebook, source, tags)

STATUSES = ("pass", "fail", "error", "not attempted", "timeout")


@dataclass(frozen=True)
class Result:
    """The status of one exercise of one submission, and why."""
    student: str
    label: str
    status: str
    message: str = ""


def grade(submissions_dir: str | Path, timeout: float = 120, notebooks_dir: str | Path | None = None,
          kernel: str = "python3") -> list[Result]:
    """Grade every ``*.ipynb`` directly inside ``submissions_dir`` (the student is the file's stem).

    ``notebooks_dir`` (the chapter notebooks), when given, tells which exercises have code even
    where a student deleted the stub.
    """
    folder = Path(submissions_dir)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: no such folder of submissions")
    known: set[str] = set()
    if notebooks_dir is not None and Path(notebooks_dir).is_dir():
        for path in chapter_notebooks(notebooks_dir):
            known |= code_labels(read_notebook(path))
    results: list[Result] = []
    for path in sorted(folder.glob("*.ipynb")):
        results += grade_notebook(path, timeout, known, kernel)
    return results


def grade_notebook(path: str | Path, timeout: float = 120, known_code: Iterable[str] = (),
                   kernel: str = "python3") -> list[Result]:
    """Run one submission in a fresh folder and kernel, and return the status of each of its exercises."""
    path = Path(path)
    student = path.stem
    with tempfile.TemporaryDirectory(prefix="i2i-grade-", ignore_cleanup_errors=True) as tmp:
        work, log = Path(tmp) / "work", Path(tmp) / "checks.jsonl"
        work.mkdir()
        copy = Path(shutil.copy(path, work / path.name))
        try:
            nb = read_notebook(copy)
        except (ValueError, OSError) as e:  # not JSON, or not a notebook
            return [Result(student, "", "error", f"unreadable notebook: {e}")]
        labels = _graded_labels(nb, set(known_code))
        for cell in nb.cells:
            if cell.cell_type == "code":
                cell.outputs, cell.execution_count = [], None
        stopped, stopped_at = _execute(nb, work, log, timeout, kernel)
        records = _read_log(log)
    labels += [label for label in records if label not in labels]
    o = outline(nb)
    results = []
    for label in labels:
        cells = _cells_of(nb, o, label)
        status, message = _status(label, records, nb, cells)
        if status is None:
            unfinished = stopped is not None and max(cells + [_first_cell(o, label)]) >= stopped_at
            if unfinished and stopped == "timeout":
                status, message = "timeout", f"did not finish within {timeout:g} s (stopped at cell {stopped_at})"
            elif unfinished:
                status, message = "error", f"{stopped} (at cell {stopped_at})"
            else:
                status, message = "not attempted", "no check ran"
        results.append(Result(student, label, status, message))
    return results


def _graded_labels(nb: NotebookNode, known_code: set[str]) -> list[str]:
    """The labels of the notebook's exercise directives that have code, in order."""
    code = known_code | code_labels(nb)
    return [e.label for e in outline(nb).exercises if e.label in code]


def _execute(nb: NotebookNode, work: Path, log: Path, timeout: float, kernel: str) -> tuple[str | None, int]:
    """Run ``nb`` in place, in folder ``work``; return (why it stopped early, or None; the last cell started)."""
    deadline = time.monotonic() + timeout
    started = [0]

    def on_start(cell: NotebookNode, cell_index: int, **_: object) -> None:
        started[0] = cell_index

    client = NotebookClient(
        nb, kernel_name=kernel, allow_errors=True, shutdown_kernel="immediate", startup_timeout=60,
        timeout_func=lambda cell: max(0.01, deadline - time.monotonic()), on_cell_start=on_start,
        resources={"metadata": {"path": str(work)}})
    env = {**os.environ, "I2I_PROFILE": "smoke", "I2I_CHECK_LOG": str(log)}
    try:
        client.execute(env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # kernel logs, not cells
    except CellTimeoutError:
        return "timeout", started[0]
    except DeadKernelError:
        return "the kernel died", started[0]
    except Exception as e:  # the kernel would not start, or the notebook could not be run at all
        return f"the notebook could not run ({type(e).__name__}: {e})", started[0]
    return None, len(nb.cells)


def _read_log(log: Path) -> dict[str, dict]:
    """The last check result per label, in the order labels were first checked."""
    last: dict[str, dict] = {}
    if log.exists():
        for line in log.read_text(encoding="utf-8").splitlines():
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(record, dict) and isinstance(record.get("label"), str):
                last[record["label"]] = record
    return last


def _first_cell(o: Outline, label: str) -> int:
    """The cell of the exercise's directive (0 for a label the notebook does not declare)."""
    ex = o.exercise(label)
    return ex.cell if ex is not None else 0


def _cells_of(nb: NotebookNode, o: Outline, label: str) -> list[int]:
    """The code cells of an exercise: stubs and solution code in its section, and any cell naming its label."""
    region = set(o.region(label, len(nb.cells)))
    return [i for i, cell in enumerate(nb.cells) if cell.cell_type == "code" and (
        (i in region and {"exercise", "solution"} & set(tags(cell))) or mentions(source(cell), label))]


def _status(label: str, records: dict[str, dict], nb: NotebookNode, cells: list[int]) -> tuple[str | None, str]:
    """The status from the exercise's last check result, else from the last exception in its cells."""
    record = records.get(label)
    if record is not None:
        status = "pass" if record.get("passed") else "error" if record.get("error") else "fail"
        return status, str(record.get("message", ""))
    errors = [o for i in cells for o in nb.cells[i].get("outputs", []) if o.get("output_type") == "error"]
    if errors:
        e = errors[-1]
        message = f"{e.get('ename', '')}: {e.get('evalue', '')}"
        return ("not attempted" if e.get("ename") == "NotImplementedError" else "error"), message
    return None, ""


# ----------------------------------------------------------------------------------------------
# Reports
# ----------------------------------------------------------------------------------------------

def _label_key(label: str) -> tuple:
    return tuple(int(t) if t.isdigit() else t for t in re.split(r"(\d+)", label))


def table(results: list[Result]) -> tuple[list[str], dict[str, dict[str, str]]]:
    """(exercise labels in course order, {student: {label: status}})."""
    labels = sorted({r.label for r in results if r.label}, key=_label_key)
    rows: dict[str, dict[str, str]] = {}
    for r in results:
        row = rows.setdefault(r.student, {})
        if r.label:
            row[r.label] = r.status
        else:  # an unreadable notebook: every exercise is an error
            row.update({label: r.status for label in labels})
    return labels, dict(sorted(rows.items()))


def write_csv(results: list[Result], path: str | Path) -> Path:
    """Write the student x exercise table (an empty cell: that notebook has no such exercise)."""
    labels, rows = table(results)
    path = Path(path)
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["student"] + labels)
        for student, row in rows.items():
            w.writerow([student] + [row.get(label, "") for label in labels])
    return path


def write_details(results: list[Result], path: str | Path) -> Path:
    """Write one line per student and exercise with the check's message (FAIL reasons, exceptions)."""
    path = Path(path)
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["student", "exercise", "status", "message"])
        for r in results:
            w.writerow([r.student, r.label, r.status, r.message])
    return path


def summary(results: list[Result]) -> str:
    """Counts of each status per exercise and per student, as two small text tables."""
    labels, rows = table(results)
    head = ["pass", "fail", "error", "not att.", "timeout"]

    def block(title: str, names: list[str], statuses: dict[str, list[str]]) -> list[str]:
        width = max([len(title)] + [len(n) for n in names])
        lines = [f"{title:<{width}}  " + "  ".join(f"{h:>8}" for h in head)]
        for n in names:
            lines.append(f"{n:<{width}}  " + "  ".join(f"{statuses[n].count(s):>8}" for s in STATUSES))
        return lines

    by_label = {label: [row[label] for row in rows.values() if label in row] for label in labels}
    by_student = {student: list(row.values()) for student, row in rows.items()}
    return "\n".join(block("exercise", labels, by_label) + [""] + block("student", list(rows), by_student))
