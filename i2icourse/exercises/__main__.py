"""Command line of the exercise system (run from the repository root).

    python -m i2icourse.exercises                   write notebooks/student/ from notebooks/, check the exercises
    python -m i2icourse.exercises --check           fail if a student version is stale, or an exercise malformed
    python -m i2icourse.exercises grade SUBMISSIONS [--out results.csv] [--timeout 120] [--no-sandbox]
                                                    (see book/instructors.md)
    python -m i2icourse.exercises run NOTEBOOK... [--profile cpu]   refresh stored outputs, then the student versions
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from i2icourse.exercises.consistency import check_course
from i2icourse.exercises.grade import grade, summary, write_csv, write_details
from i2icourse.exercises.isolation import neutral_directory
from i2icourse.exercises.sandbox import Unavailable
from i2icourse.exercises.sandbox import find as find_sandbox
from i2icourse.exercises.student import generate, stale


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m i2icourse.exercises", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command")
    g = sub.add_parser("generate", help="write the student versions (the default command)")
    g.add_argument("--notebooks", type=Path, default=Path("notebooks"), help="chapter notebooks (default: notebooks)")
    g.add_argument("--student", type=Path, default=None, help="student versions (default: NOTEBOOKS/student)")
    g.add_argument("--check", action="store_true",
                   help="write nothing; fail if a student version is stale, missing or extra, or an exercise malformed")
    a = sub.add_parser("grade", help="run submitted notebooks, then check their answers with the instructor's checks")
    a.add_argument("submissions", type=Path, help="folder of submitted .ipynb files (one per student)")
    a.add_argument("--notebooks", type=Path, default=Path("notebooks"),
                   help="chapter notebooks: which exercises have code, what their solutions check (default: notebooks)")
    a.add_argument("--out", type=Path, default=Path("results.csv"),
                   help="student x exercise table (default: results.csv)")
    a.add_argument("--details", type=Path, default=None, help="also write one line per result with its message")
    a.add_argument("--timeout", type=float, default=120,
                   help="seconds for a notebook's cells, and as long again for the checks (default: 120)")
    a.add_argument("--kernel", default="python3", help="Jupyter kernel to run the notebooks with (default: python3)")
    a.add_argument("--no-sandbox", action="store_true",
                   help="run the kernels without a sandbox (trusted notebooks, or a container that is the sandbox)")
    r = sub.add_parser("run", help="re-run authoring notebooks in place to refresh their stored outputs")
    r.add_argument("paths", type=Path, nargs="+", help="chapter notebooks to run")
    r.add_argument("--profile", default="cpu", choices=("smoke", "cpu", "full"),
                   help="run profile of the stored outputs (default: cpu; never smoke for the book)")
    return p


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in ("generate", "grade", "run", "-h", "--help"):
        argv.insert(0, "generate")
    args = _parser().parse_args(argv)
    if args.command == "grade":
        return _grade(args)
    if args.command == "run":
        return _run(args)
    return _generate(args)


def _run(args: argparse.Namespace) -> int:
    from i2icourse.exercises.execute import NotebookRunError, run_notebook

    for path in args.paths:
        try:
            seconds = run_notebook(path, args.profile)
        except NotebookRunError as e:
            print(e, file=sys.stderr)
            return 1
        print(f"ran {path} in the {args.profile} profile: {seconds:.0f} s")
    notebooks = args.paths[0].parent
    for line in generate(notebooks, notebooks / "student"):
        print(line)
    return 0


def _generate(args: argparse.Namespace) -> int:
    student = args.student or args.notebooks / "student"
    if not args.notebooks.is_dir():
        print(f"{args.notebooks}: no such folder (run from the repository root, or pass --notebooks)", file=sys.stderr)
        return 2
    if args.check:
        problems = stale(args.notebooks, student)
        for line in problems:
            print(f"stale student version: {line}", file=sys.stderr)
        if problems:
            print("run `python -m i2icourse.exercises` and commit notebooks/student/", file=sys.stderr)
    else:
        problems = []
        for line in generate(args.notebooks, student):
            print(line)
    issues = check_course(args.notebooks)
    for problem in issues:
        print(f"exercise problem: {problem}", file=sys.stderr)
    if problems or issues:
        return 1
    print(f"student versions in {student} are up to date; exercises consistent" if args.check
          else f"student versions written to {student}; exercises consistent")
    return 0


def _grade(args: argparse.Namespace) -> int:
    """Grade from an empty working directory; write the tables only once every run has ended."""
    start = time.monotonic()
    out, details = args.out.resolve(), args.details.resolve() if args.details else None
    if not args.submissions.is_dir():
        print(f"{args.submissions}: no such folder of submissions", file=sys.stderr)
        return 2
    sandbox = None
    if args.no_sandbox:
        print("isolation: none (--no-sandbox): each kernel runs as this user, with its own folder and a minimal "
              "environment; it can read what this user can and signal the grader", flush=True)
    else:
        try:
            sandbox = find_sandbox([args.submissions, args.notebooks])
        except Unavailable as e:
            print(f"isolation: no sandbox can be made here: {e}.\nRefusing to grade untrusted notebooks without "
                  "one; pass --no-sandbox to grade anyway (see book/instructors.md)", file=sys.stderr)
            return 2
        print(f"isolation: {sandbox.describe()}", flush=True)
    try:
        with neutral_directory():
            results = grade(args.submissions.resolve(), args.timeout, args.notebooks.resolve(), args.kernel, sandbox)
    except FileNotFoundError as e:
        print(e, file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("grading stopped: no results written", file=sys.stderr)
        return 130
    write_csv(results, out)
    if details:
        write_details(results, details)
    students = len({r.student for r in results})
    print(f"graded {students} notebooks from {args.submissions} in {time.monotonic() - start:.0f} s "
          f"(timeout {args.timeout:g} s each) -> {args.out}\n")
    print(summary(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
