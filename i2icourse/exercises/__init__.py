"""The instructors' exercise system: student versions, the consistency check and the autograder.

Chapter notebooks ``notebooks/NN_name.ipynb`` are the full versions, with solutions (the exercise
form is described in :mod:`i2icourse.exercises.form`). From them:

* :func:`generate` writes ``notebooks/student/NN_name.ipynb`` without the solutions, and
  :func:`stale` tells whether the committed copies are up to date;
* :func:`check_course` finds malformed exercises: labels, missing solutions, stubs drifted from them;
* :func:`grade` runs each submitted notebook in its own folder and kernel, then runs the instructor's
  checks (a fresh copy of :mod:`i2icourse.checks`) on the student's answers and reports, per exercise,
  what they said.

The command line is ``python -m i2icourse.exercises [generate|grade] ...`` (``--help`` for more).
Nothing in the package imports this one.
"""
from i2icourse.exercises.consistency import Problem, check_course, check_notebooks
from i2icourse.exercises.grade import Result, grade, grade_notebook, summary, write_csv, write_details
from i2icourse.exercises.student import generate, stale, student_version

__all__ = ["Problem", "check_course", "check_notebooks", "Result", "grade", "grade_notebook", "summary",
           "write_csv", "write_details", "generate", "stale", "student_version"]
