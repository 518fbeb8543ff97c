# Two commands do everything on a fresh machine:
#   make run    install into .venv and run the whole job on simulated data (warehouse/scorehouse.duckdb)
#   make test   install into .venv with the test extra, lint the Python (ruff) and the SQL (sqlfluff), run the tests
PYTHON ?= python3
VENV ?= .venv

.PHONY: run test install install-test clean

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --upgrade pip

install: $(VENV)/bin/python
	$(VENV)/bin/python -m pip install --quiet -e .

install-test: $(VENV)/bin/python
	$(VENV)/bin/python -m pip install --quiet -e ".[test]"

run: install
	$(VENV)/bin/scorehouse run

test: install-test
	$(VENV)/bin/ruff check .
	mkdir -p target && SCOREHOUSE_WAREHOUSE=target/sqlfluff.duckdb $(VENV)/bin/sqlfluff lint dbt_project/models dbt_project/tests --processes 2
	$(VENV)/bin/python -m pytest

clean:
	rm -rf warehouse data artifacts target logs
