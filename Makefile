# The course's two entry points (README): `make book` and `make test`.
# Both create the virtual environment .venv on first use and install the package into it.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# CI passes BOOKFLAGS="-W -n --keep-going" so that a warning fails the build.
BOOKFLAGS ?=

.PHONY: setup book test students

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

setup: $(BIN)/python
	$(BIN)/python -m pip install -q -e ".[book,test]"

book: setup
	$(BIN)/jupyter-book build $(BOOKFLAGS) --all book/

test: setup
	OMP_NUM_THREADS=1 I2I_PROFILE=smoke $(BIN)/python -m pytest -n 2 --dist loadscope \
	    --nbval-lax --nbval-current-env --nbval-cell-timeout=300 tests notebooks

students: setup
	$(BIN)/python -m i2icourse.exercises
