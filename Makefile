# One command builds the book, one runs the tests; both set up the pinned environment first.
#   make book   -> _build/html/index.html (executes every notebook from committed rows)
#   make test   -> unit tests, nbval of every committed notebook, papermill smoke run of every notebook
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.potlib-installed

.PHONY: book test env clean lock notebooks screenshots

env: $(STAMP)

$(STAMP): requirements.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.lock
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	touch $(STAMP)

# The HRM page's ladder table reads the Sudoku archive: default to ../shared/datasets as the tests do.
POTLIB_DATA ?= $(if $(wildcard ../shared/datasets),$(abspath ../shared/datasets),)

book: $(STAMP)
	rm -rf _build/html _build/.doctrees
	HF_HUB_OFFLINE=1 POTLIB_DATA=$(POTLIB_DATA) $(BIN)/jupyter-book build . --builder html -W -n --keep-going
	@echo "book: $(CURDIR)/_build/html/index.html"

test: $(STAMP)
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest

# Re-execute the committed notebooks in place after new rows land (nbval checks their stored outputs).
notebooks: $(STAMP)
	HF_HUB_OFFLINE=1 $(BIN)/python scripts/refresh_notebooks.py

# Screenshot every built page (headless Chromium, 1400 px) into _build/screenshots/.
screenshots:
	bash scripts/screenshots.sh

# Regenerate the lock after changing pyproject dependencies (needs network to PyPI).
lock:
	rm -rf /tmp/potlib-lock && $(PYTHON) -m venv /tmp/potlib-lock
	/tmp/potlib-lock/bin/pip install --quiet -e ".[book,test,encoder]"
	{ echo "# Pinned environment for potlib, its tests and the book (Python 3.11, CPU torch)."; \
	  echo "# Regenerate: make lock.  torch==2.13.0 resolves to the local CPU wheel here."; \
	  /tmp/potlib-lock/bin/pip freeze --exclude-editable | sed 's/^torch==\(.*\)+cpu$$/torch==\1/'; } > requirements.lock

clean:
	rm -rf _build $(VENV)
