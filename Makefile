# The course's two entry points (README): `make book` and `make test`; `make test-fast` is the
# contributors' quick loop (CONTRIBUTING.md).
# Both create the virtual environment .venv on first use and install the package into it.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# CI passes BOOKFLAGS="-W -n --keep-going" so that a warning fails the build.
BOOKFLAGS ?=

.PHONY: setup book book-students test test-fast students

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

setup: $(BIN)/python
	$(BIN)/python -m pip install -q -e ".[book,test]"

# The same installation, once per change of pyproject.toml (the install is editable: code changes need none).
$(VENV)/installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e ".[book,test]"
	touch $@

book: setup
	$(BIN)/jupyter-book build $(BOOKFLAGS) --all book/

# What `make test` runs (`make test TESTS=notebooks` runs the chapters alone).
TESTS ?= tests notebooks

test: setup
	OMP_NUM_THREADS=1 I2I_PROFILE=smoke $(BIN)/python -m pytest -n 2 --dist loadscope \
	    --nbval-lax --nbval-current-env --nbval-cell-timeout=300 $(TESTS)

# The unit tests alone: no notebooks, book builds, browser, processes side by side (torchrun, dataset locks)
# or Jupyter kernels (the markers that tests/conftest.py gives; pyproject.toml lists them).
FAST ?= not (notebook or book or browser or distributed or kernel)

test-fast: $(VENV)/installed
	OMP_NUM_THREADS=1 I2I_PROFILE=smoke $(BIN)/python -m pytest -n 2 -m "$(FAST)" tests

students: setup
	$(BIN)/python -m i2icourse.exercises

# The student edition: the same book with every solution removed, its chapters the student
# versions (regenerated first); the site is book/_build/students/_build/html. Jupyter Book 1.x
# reads a relative --toc against book/ and against the current folder, hence the absolute path.
book-students: students
	$(BIN)/jupyter-book build $(BOOKFLAGS) --all --toc $(abspath book/_toc_students.yml) \
	    --path-output book/_build/students book/
