"""The autograder: run each submitted notebook, then check its answers with the instructor's checks.

It grades as nbgrader does. :func:`grade` reads every submission into memory first; then each one
runs, in turn, on a copy in its own temporary folder (:mod:`i2icourse.exercises.isolation`): a
fresh kernel with that folder as working directory and ``HOME``, a minimal environment (``PATH``,
the language, ``PYTHONPATH``, ``I2I_PROFILE=smoke``; nothing else of the grader's), and a
wall-clock limit. After the student's cells, the grader sends its own cells to the same kernel, one
per graded exercise (:mod:`i2icourse.exercises.judge`): each loads a fresh copy of
:mod:`i2icourse.checks` from its folder and tests the student's answer, the expression the student
passed to ``check("ex-NN-K", ...)`` (or, where that call was deleted, the one in the chapter's
solution). The grader reads results only from the output of those cells, in lines that start with
a nonce drawn for the run. The student's own ``check`` calls print PASS or FAIL for the student,
and count for nothing. When the run ends, its kernel's process group and every process the run
left are killed, before the next run starts.

An exercise's status is, in this order:

* ``error`` if the kernel died, or would not start (nothing could be checked);
* ``timeout`` if the student's cells ran out of time before the exercise's cells finished;
* what the grader's check said: ``pass``, ``fail``, ``error`` when the answer raised, ``not
  attempted`` when it raised ``NotImplementedError`` (an unfinished stub), ``timeout`` when the
  check ran out of time (the checks get as long again as the cells);
* where there was no answer to check: from the last exception in the exercise's cells (stubs and
  solution cells in its section, any cell naming its label), ``not attempted`` for
  ``NotImplementedError``, ``error`` for any other; else ``error`` if the student's ``check``
  named an answer that was gone when the notebook ended, ``not attempted`` if it had none.

The exercises graded are those of the notebook's exercise directives that have code (a stub or a
``check`` call, in the submission or in the chapter notebooks), plus any label the submission's
code checks. Open questions are not graded. A notebook that is not valid JSON, or not a notebook
(a cell without ``cell_type``), is one ``error`` row with the reason; the others are graded. In
the CSV files, a cell that a spreadsheet would read as a formula (it starts with ``=``, ``+``,
``-`` or ``@``) gets a ``'`` in front.

The kernel runs in a sandbox (:mod:`i2icourse.exercises.sandbox`: bubblewrap's user, PID, mount
and network namespaces) unless the caller passes ``sandbox=False`` (the command line's
``--no-sandbox``); :func:`grade` refuses to run without one otherwise. A SIGINT or SIGTERM that
reaches the grader during a run ends that run only (an ``error`` row); a second one within
:data:`STOP_WINDOW` seconds stops the grading.

What this defends, and what it does not: a notebook cannot forge a result by printing one, writing
a log, or replacing ``i2icourse.checks.CHECKS`` or a package function; it cannot change how its
classmates are graded (they were read before it ran) or the results files (written after every run
and its processes ended); it does not get the grader's environment. In the sandbox it also cannot
see the grader's process (its ``/proc`` entries, command line and environment) or signal it, read
the instructor's files (the chapter notebooks, the repository's ``notebooks/``, ``.git`` and built
book), the submissions folder or the grader's ``HOME``, write anywhere but its run's folder (the
package and ``/`` are read-only), use the network, or leave a process behind (the namespace dies
with the run). It still runs code in the kernel the checks run in: a patched ``torch`` function or
builtin, an IPython hook or a thread can change what the checks report, and the answer itself is
called inside the check. It can read the machine's world-readable files, and use the CPU and
memory until its timeout. Without the sandbox it runs as the grader's user: it can read and write
any file that user can (including the solutions and other submissions on disk), read the grader's
command line, signal it (ending its own run), use the network, and hand a job to another service
(``cron``, ``at``). Read the notebook behind any surprising result.
"""
from __future__ import annotations

import ast
import csv
import importlib.util
import os
import re
import secrets
import signal
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator, Mapping

from nbclient import NotebookClient
from nbclient.exceptions import DeadKernelError
from nbformat import NotebookNode, from_dict
from nbformat.v4 import new_code_cell

from i2icourse.exercises import calls, judge
from i2icourse.exercises.form import (Outline, chapter_notebooks, checked_labels, code_labels, mentions, outline,
                                      read_notebook, source, tags)
from i2icourse.exercises.isolation import Run, run_folder
from i2icourse.exercises.sandbox import Sandbox, kernel_manager
from i2icourse.exercises.sandbox import find as find_sandbox

STATUSES = ("pass", "fail", "error", "not attempted", "timeout")
CELL_TYPES = ("code", "markdown", "raw")


@dataclass(frozen=True)
class Result:
    """The status of one exercise of one submission, and why."""
    student: str
    label: str
    status: str
    message: str = ""


@dataclass(frozen=True)
class Course:
    """What the chapter notebooks tell the grader: the exercises with code, and the answer each solution checks."""
    labels: frozenset[str] = frozenset()
    answers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Submission:
    """A submitted notebook, as read before any submission runs (the student is the file's stem)."""
    name: str
    data: bytes

    @property
    def student(self) -> str:
        """The student: the file's name without ``.ipynb``."""
        return Path(self.name).stem


@dataclass(frozen=True)
class Answer:
    """The expression to check for an exercise, and whether it comes from the student's own ``check`` call."""
    expression: str
    own: bool


def grade(submissions_dir: str | Path, timeout: float = 120, notebooks_dir: str | Path | None = None,
          kernel: str = "python3", sandbox: Sandbox | bool | None = True) -> list[Result]:
    """Grade every ``*.ipynb`` directly inside ``submissions_dir``, all read into memory before the first one runs.

    ``notebooks_dir`` (the chapter notebooks), when given, tells which exercises have code and what
    each solution checks, for submissions whose stub or ``check`` call was deleted. ``sandbox``:
    ``True`` finds one (:class:`~i2icourse.exercises.sandbox.Unavailable` where none can be made),
    ``False`` or None runs the kernels without one (trusted notebooks, or a container around it all).

    While a notebook runs, a SIGINT or SIGTERM that reaches the grader ends that notebook's run only
    (its row is an ``error``): without a sandbox the notebook itself may have sent it. A second one
    within :data:`STOP_WINDOW` seconds after that run ended (when none of its processes is left) stops
    the grading: :class:`KeyboardInterrupt`.
    """
    folder = Path(submissions_dir)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: no such folder of submissions")
    if sandbox is True:
        sandbox = find_sandbox([folder] + ([notebooks_dir] if notebooks_dir is not None else []))
    course = read_course(notebooks_dir) if notebooks_dir is not None and Path(notebooks_dir).is_dir() else Course()
    submissions, results = [], []
    for path in sorted(folder.glob("*.ipynb")):
        try:
            submissions.append(Submission(path.name, path.read_bytes()))
        except OSError as e:
            results.append(Result(path.stem, "", "error", f"unreadable notebook {path.name}: {e.strerror}"))
    for submission in submissions:
        with _signals_end_the_run() as caught:
            try:
                results += grade_submission(submission, timeout, course, kernel, sandbox or None)
            except _Interrupted:  # between the run's end and here
                pass
        if caught:
            results = [r for r in results if r.student != submission.student] + [Result(
                submission.student, "", "error", f"{caught[0]} reached the grader while this notebook ran "
                "(the instructor's, or the notebook's own): its run was ended; grade it again")]
            _second_signal_stops(submission.name, caught[0])
    return sorted(results, key=lambda r: r.student)


#: Seconds after a run ended by a signal in which a second signal stops the grading.
STOP_WINDOW = 3.0


class _Interrupted(Exception):
    """A signal reached the grader while a notebook ran."""


@contextmanager
def _signals_end_the_run() -> Iterator[list[str]]:
    """While inside, SIGINT and SIGTERM raise :class:`_Interrupted` (once: not in the run's cleanup) instead of
    stopping the grader; yields the names of those caught. Only in the main thread (elsewhere: no change)."""
    caught: list[str] = []
    if threading.current_thread() is not threading.main_thread():
        yield caught
        return

    def handler(signum: int, frame: object) -> None:
        caught.append(signal.Signals(signum).name)
        if len(caught) == 1:
            raise _Interrupted(caught[0])

    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield caught
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


def _second_signal_stops(name: str, signame: str) -> None:
    """Wait :data:`STOP_WINDOW` seconds, in which a SIGINT or SIGTERM stops the grading (no run's process is left)."""
    if threading.current_thread() is not threading.main_thread():
        return

    def stop(signum: int, frame: object) -> None:
        raise KeyboardInterrupt(signal.Signals(signum).name)

    print(f"{signame} while {name} ran: its run was ended. Press Ctrl-C again within {STOP_WINDOW:g} s to stop "
          "grading; the other notebooks are graded otherwise.", file=sys.stderr, flush=True)
    previous = {s: signal.signal(s, stop) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        time.sleep(STOP_WINDOW)
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


def grade_notebook(path: str | Path, timeout: float = 120, course: Course | None = None,
                   kernel: str = "python3", sandbox: Sandbox | bool | None = True) -> list[Result]:
    """Grade one submitted notebook: the status of each of its exercises (``sandbox`` as in :func:`grade`)."""
    path = Path(path)
    if sandbox is True:
        sandbox = find_sandbox([path.parent])
    return grade_submission(Submission(path.name, path.read_bytes()), timeout, course or Course(), kernel,
                            sandbox or None)


def grade_submission(submission: Submission, timeout: float, course: Course, kernel: str = "python3",
                     sandbox: Sandbox | None = None) -> list[Result]:
    """Run one submission in its own folder and kernel (in ``sandbox``, if given), check its answers, and end
    every process it left."""
    try:
        with run_folder() as run:
            if sandbox is not None:
                sandbox.give(run.folder, *(run.folder / name for name in ("work", "home", "tmp")))
            nb, problem = _parse(submission, run.work)
            if nb is None:
                return [Result(submission.student, "", "error", f"unreadable notebook {submission.name}: {problem}")]
            labels = _graded_labels(nb, course)
            answers = _answers(nb, labels, course)
            ran = _execute(nb, answers, run, timeout, kernel, sandbox)
    except Exception as e:  # whatever this notebook did to the grader, the other notebooks are graded
        return [Result(submission.student, "", "error",
                       f"{submission.name} could not be graded ({type(e).__name__}: {e})")]
    o = outline(nb)
    return [Result(submission.student, label, *_status(label, nb, o, ran, answers.get(label), timeout))
            for label in labels]


# ----------------------------------------------------------------------------------------------
# Reading a submission, and what to check in it
# ----------------------------------------------------------------------------------------------

def read_course(notebooks_dir: str | Path) -> Course:
    """The exercises with code in the chapter notebooks, and the answer expression of each solution's ``check``."""
    labels: set[str] = set()
    answers: dict[str, str] = {}
    for path in chapter_notebooks(notebooks_dir):
        nb = read_notebook(path)
        o = outline(nb)
        labels |= code_labels(nb)
        for label in code_labels(nb):
            cells = [source(nb.cells[i]) for s in o.solutions_of(label) for i in s.code]
            expression = answer_expression(cells, label)
            if expression is not None:
                answers[label] = expression
    return Course(frozenset(labels), answers)


def answer_expression(code: Iterable[str], label: str) -> str | None:
    """The answer in the last ``check(label, ANSWER)`` (or ``passes``) call of these code cells, as source."""
    return _last_answer([_parse_code(text) for text in code], label)


def _last_answer(cells: list[ast.Module | None], label: str) -> str | None:
    """The answer in the last ``check(label, ...)`` call of these parsed cells (None: a cell that did not parse)."""
    found = None
    for tree in cells:
        calls = [] if tree is None else [node for node in ast.walk(tree) if _is_check_of(node, label)]
        if calls:
            found = ast.unparse(max(calls, key=lambda node: (node.lineno, node.col_offset)).args[1])
    return found


def _parse_code(text: str) -> ast.Module | None:
    """A code cell as Python (IPython's ``%magics`` and ``!commands`` turned into calls); None if it does not parse."""
    try:
        from IPython.core.inputtransformer2 import TransformerManager
        text = TransformerManager().transform_cell(text)
    except Exception:  # no IPython, or a cell it cannot transform: try it as plain Python
        pass
    try:
        return ast.parse(text)
    except (SyntaxError, ValueError):
        return None


def _is_check_of(node: ast.AST, label: str) -> bool:
    """Whether ``node`` is a call ``check(label, answer)``, ``passes(label, answer)`` or ``checks.check(...)``."""
    if not isinstance(node, ast.Call) or len(node.args) < 2:
        return False
    name = node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", None)
    first = node.args[0]
    return name in ("check", "passes") and isinstance(first, ast.Constant) and first.value == label


def _parse(submission: Submission, folder: Path) -> tuple[NotebookNode | None, str]:
    """Write the submission's copy into the run's folder and read it: (the notebook, "") or (None, what is wrong)."""
    copy = folder / submission.name
    copy.write_bytes(submission.data)
    try:
        nb = read_notebook(copy)
    except (ValueError, TypeError) as e:  # not UTF-8, not JSON, not nbformat 4
        return None, str(e).removeprefix(f"{copy}: ")
    problem = _malformed(nb)
    if problem:
        return None, f"{problem} (open it in Jupyter and save it again)"
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.update(source=source(cell), metadata=from_dict(cell.get("metadata", {})), outputs=[],
                        execution_count=None)
    return nb, ""


def _malformed(nb: NotebookNode) -> str | None:
    """What keeps ``nb`` from being read as a notebook (a cell without ``cell_type``, say), or None."""
    if not isinstance(nb.get("metadata", {}), dict):
        return "its metadata is not a JSON object"
    for i, cell in enumerate(nb.cells):
        if not isinstance(cell, dict):
            return f"cell {i} is not a JSON object"
        if "cell_type" not in cell:
            return f"cell {i} has no cell_type"
        if cell["cell_type"] not in CELL_TYPES:
            return f"cell {i} has an unknown cell_type {cell['cell_type']!r}"
        if not isinstance(cell.get("source", ""), str):
            return f"cell {i} has a source that is not text"
        meta = cell.get("metadata", {})
        if not isinstance(meta, dict) or not isinstance(meta.get("tags", []), list) \
                or not all(isinstance(t, str) for t in meta.get("tags", [])):
            return f"cell {i} has malformed metadata"
    return None


def _graded_labels(nb: NotebookNode, course: Course) -> list[str]:
    """The labels of the notebook's exercise directives that have code, then any other label its code checks."""
    code = set(course.labels) | code_labels(nb)
    labels = list(dict.fromkeys(e.label for e in outline(nb).exercises if e.label in code))
    for cell in nb.cells:
        if cell.cell_type == "code":
            labels += [label for label in checked_labels(source(cell))
                       if label not in labels and (not course.labels or label in course.labels)]
    return labels


def _answers(nb: NotebookNode, labels: list[str], course: Course) -> dict[str, Answer]:
    """What to check per label: the answer of the student's own last ``check`` call, else the chapter solution's
    (a label with neither is left out)."""
    cells = [_parse_code(source(c)) for c in nb.cells if c.cell_type == "code"]
    answers = {}
    for label in labels:
        own = _last_answer(cells, label)
        if own is not None:
            answers[label] = Answer(own, True)
        elif label in course.answers:
            answers[label] = Answer(course.answers[label], False)
    return answers


# ----------------------------------------------------------------------------------------------
# Running a submission, then the grader's checks
# ----------------------------------------------------------------------------------------------

@dataclass
class _Ran:
    """What a run gave: why the student's cells stopped early (None: they all ran), the cell they stopped at,
    and the grader's verdict per label, (status, message)."""
    stopped: str | None = None
    stopped_at: int = 0
    verdicts: dict[str, tuple[str, str]] = field(default_factory=dict)


def _execute(nb: NotebookNode, answers: Mapping[str, Answer], run: Run, timeout: float, kernel: str,
             sandbox: Sandbox | None = None) -> _Ran:
    """Run the code cells of ``nb`` in a fresh kernel in ``run``'s folder (in ``sandbox``, if given), then one
    grader's cell per answer."""
    nonce = secrets.token_hex(16)
    interrupted = f"i2i-timeout-{nonce}"  # the error nbclient reports for a cell it interrupted at the deadline
    deadline = time.monotonic() + timeout
    replies: dict[int, dict] = {}

    def on_executed(cell: NotebookNode, cell_index: int, execute_reply: dict | None = None, **_: object) -> None:
        replies[cell_index] = execute_reply or {}

    km = kernel_manager(kernel, sandbox, run.folder, run.work) if sandbox is not None else None
    client = NotebookClient(
        nb, km=km, kernel_name=kernel, allow_errors=True, shutdown_kernel="immediate", startup_timeout=60,
        interrupt_on_timeout=True, error_on_timeout={"ename": interrupted, "evalue": "", "traceback": []},
        timeout_func=lambda cell: max(0.01, deadline - time.monotonic()), on_cell_executed=on_executed,
        resources={"metadata": {"path": str(run.work)}})

    def timed_out(index: int) -> bool:
        return replies.get(index, {}).get("content", {}).get("ename") == interrupted

    ran, started, done = _Ran(stopped_at=len(nb.cells)), False, False
    try:  # the kernel's logs go nowhere: they are not the cells' output
        with client.setup_kernel(env=run.env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL):
            started = True
            group = getattr(getattr(client.km, "provisioner", None), "pgid", None)
            if group:
                run.groups.add(group)
            ran.stopped, ran.stopped_at = _run_cells(client, nb, timed_out)
            if ran.stopped in (None, "timeout"):
                deadline = time.monotonic() + timeout  # the checks get as long again
                ran.verdicts = _run_checks(client, answers, nonce, timed_out, len(nb.cells))
            done = True
    except Exception as e:
        if not started:  # the kernel would not start
            return _Ran(f"the notebook could not run ({type(e).__name__}: {e})", 0)
        if not done:
            raise
    return ran


def _run_cells(client: NotebookClient, nb: NotebookNode, timed_out: Callable[[int], bool]) -> tuple[str | None, int]:
    """Run the student's cells in order: (why they stopped early, or None; the cell they stopped at)."""
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        try:
            client.execute_cell(cell, index)
        except DeadKernelError:
            return "the kernel died", index
        if timed_out(index):
            return "timeout", index
    return None, len(nb.cells)


def _run_checks(client: NotebookClient, answers: Mapping[str, Answer], nonce: str,
                timed_out: Callable[[int], bool], first_index: int) -> dict[str, tuple[str, str]]:
    """Check each answer here, with the grader's own copy of its check (:mod:`i2icourse.exercises.judge`); every
    call of the answer is one grader's cell in the kernel, appended after the student's cells (and taken away
    after). The verdict of each: (status, message)."""
    checks_dir = _checks_dir()
    kernel = _Kernel(client, nonce, timed_out, first_index)
    verdicts: dict[str, tuple[str, str]] = {}
    try:
        for label, answer in answers.items():
            if kernel.dead:
                verdicts[label] = ("error", "the kernel died before the grader checked this exercise")
                continue
            found = judge.judge(label, answer.expression, checks_dir, kernel.send)
            verdicts[label] = (found["status"], found["message"])
    finally:
        del client.nb.cells[first_index:]
    return verdicts


def _checks_dir() -> str:
    """The folder of the installed checks package (``i2icourse/checks``), which the checks are loaded anew from,
    here and in the kernel."""
    return str(Path(importlib.util.find_spec("i2icourse.checks").origin).parent)


@dataclass
class _Kernel:
    """The submission's kernel as the grader's checks reach it: one grader's cell per request, read from that
    cell's own output."""
    client: NotebookClient
    nonce: str
    timed_out: Callable[[int], bool]
    index: int
    dead: bool = False

    def send(self, request: str) -> str:
        """Run one request in the kernel; its reply, or :class:`judge.Unchecked` when there is none to read."""
        if self.dead:
            raise judge.Unchecked("error", "the kernel died while the grader checked this exercise")
        cell = new_code_cell(_judge_cell(request, self.nonce))
        self.client.nb.cells.append(cell)
        index, self.index = self.index, self.index + 1
        try:
            self.client.execute_cell(cell, index, store_history=False)
        except DeadKernelError:
            self.dead = True
            raise judge.Unchecked("error", "the kernel died while the grader checked this exercise") from None
        if self.timed_out(index):
            raise judge.Unchecked("timeout", "the grader's check of the answer did not finish in time")
        return _read_verdict(cell, self.nonce)


def _judge_cell(request: str, nonce: str) -> str:
    """The source of the grader's cell for one request: the kernel's side of :mod:`i2icourse.exercises.calls`, run
    apart from the notebook's names, which answers it behind the nonce."""
    checks_dir = _checks_dir()
    code = Path(calls.__file__).read_text(encoding="utf-8")
    return (f"_i2i_calls = {{'__name__': 'i2i_calls'}}\n"
            f"exec(compile({code!r}, {calls.__file__!r}, 'exec'), _i2i_calls)\n"
            f"_i2i_calls['serve']({request!r}, {checks_dir!r}, globals(), {nonce!r})\n"
            "del _i2i_calls\n")


def _read_verdict(cell: NotebookNode, nonce: str) -> str:
    """The reply that the grader's cell printed behind the nonce (what the check's verdict is made from); an
    :class:`judge.Unchecked` error if it printed none, or more than one."""
    prefix = nonce + " "
    text = "".join(out.get("text", "") for out in cell.get("outputs", [])
                   if out.get("output_type") == "stream" and out.get("name") == "stdout")
    lines = [line[len(prefix):] for line in text.splitlines() if line.startswith(prefix)]
    if not lines:
        errors = [f"{o.get('ename')}: {o.get('evalue')}" for o in cell.get("outputs", [])
                  if o.get("output_type") == "error"]
        why = f" ({errors[-1]})" if errors else ""
        raise judge.Unchecked("error", f"the grader's check gave no result{why}: the notebook may have changed its "
                                       "kernel; read it")
    if len(lines) > 1:
        raise judge.Unchecked("error", "the grader's check gave an unexpected result: the notebook may have changed "
                                       "its kernel; read it")
    return lines[0]


# ----------------------------------------------------------------------------------------------
# Statuses
# ----------------------------------------------------------------------------------------------

def _status(label: str, nb: NotebookNode, o: Outline, ran: _Ran, answer: Answer | None,
            timeout: float) -> tuple[str, str]:
    """The status of one exercise and why, in the order of the module's docstring."""
    cells = _cells_of(nb, o, label)
    if ran.stopped not in (None, "timeout"):
        return "error", f"{ran.stopped} (at cell {ran.stopped_at}); nothing could be checked"
    if ran.stopped == "timeout" and max(cells + [_first_cell(o, label)]) >= ran.stopped_at:
        return "timeout", f"did not finish within {timeout:g} s (stopped at cell {ran.stopped_at})"
    verdict = ran.verdicts.get(label)
    if verdict is not None and verdict[0] != "no answer":
        return verdict
    raised = _last_exception(nb, cells)
    if raised is not None:
        return raised
    if verdict is not None and answer is not None and answer.own:
        return "error", f"the answer checked, {answer.expression}, was not there when the notebook ended ({verdict[1]})"
    return "not attempted", "no answer was checked"


def _first_cell(o: Outline, label: str) -> int:
    """The cell of the exercise's directive (0 for a label the notebook does not declare)."""
    ex = o.exercise(label)
    return ex.cell if ex is not None else 0


def _cells_of(nb: NotebookNode, o: Outline, label: str) -> list[int]:
    """The code cells of an exercise: stubs and solution code in its section, and any cell naming its label."""
    region = set(o.region(label, len(nb.cells)))
    return [i for i, cell in enumerate(nb.cells) if cell.cell_type == "code" and (
        (i in region and {"exercise", "solution"} & set(tags(cell))) or mentions(source(cell), label))]


def _last_exception(nb: NotebookNode, cells: list[int]) -> tuple[str, str] | None:
    """From the last exception in these cells: ``not attempted`` for ``NotImplementedError``, else ``error``."""
    errors = [o for i in cells for o in nb.cells[i].get("outputs", []) if o.get("output_type") == "error"]
    if not errors:
        return None
    e = errors[-1]
    message = f"{e.get('ename', '')}: {e.get('evalue', '')}"
    return ("not attempted" if e.get("ename") == "NotImplementedError" else "error"), message


# ----------------------------------------------------------------------------------------------
# Reports
# ----------------------------------------------------------------------------------------------

def _label_key(label: str) -> tuple:
    return tuple(int(t) if t.isdigit() else t for t in re.split(r"(\d+)", label))


def verdict_table(results: list[Result]) -> tuple[list[str], dict[str, dict[str, str]]]:
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
    labels, rows = verdict_table(results)
    return _write_rows(path, [["student"] + labels]
                       + [[student] + [row.get(label, "") for label in labels] for student, row in rows.items()])


def write_details(results: list[Result], path: str | Path) -> Path:
    """Write one line per student and exercise with the check's message (FAIL reasons, exceptions)."""
    return _write_rows(path, [["student", "exercise", "status", "message"]]
                       + [[r.student, r.label, r.status, r.message] for r in results])


def spreadsheet_safe(value: str) -> str:
    """``value``, with a ``'`` in front if a spreadsheet would read it as a formula (OWASP on CSV injection)."""
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


def _write_rows(path: str | Path, rows: list[list[str]]) -> Path:
    """Write a CSV file whole or not at all: to a temporary file beside it, then renamed over it."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", newline="", encoding="utf-8") as f:
            csv.writer(f).writerows([[spreadsheet_safe(str(cell)) for cell in row] for row in rows])
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def summary(results: list[Result]) -> str:
    """Counts of each status per exercise and per student, as two small text tables."""
    labels, rows = verdict_table(results)
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
