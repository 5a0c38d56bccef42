# Two commands do everything on a fresh machine with Python 3.11+ and make:
#   make run   - create the virtual environment, install, and run the main job
#   make test  - create the environment if needed and run the whole test suite
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
INBOX  ?= var/inbox
DB     ?= var/articles.db

.PHONY: install run watch backfill serve test bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

run: install
	mkdir -p $(INBOX)
	$(BIN)/pipeline run $(INBOX) --db $(DB)

watch: install
	mkdir -p $(INBOX)
	$(BIN)/pipeline watch $(INBOX) --db $(DB)

backfill: install
	$(BIN)/pipeline backfill $(INBOX) --db $(DB)

serve: install
	$(BIN)/pipeline serve --db $(DB)

test: install
	$(BIN)/python -m pytest

bench: install
	$(BIN)/python tests/benchmarks/run.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
