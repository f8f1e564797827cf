# Two commands from a fresh clone:
#   make lab    set up (once) and open the course in JupyterLab
#   make test   set up (once, plus test extras) and run every test
#   make book   the course as a static site with every lesson's outputs (_build/book/html)
# Re-running skips the install: a stamp file records that .venv matches pyproject.toml.

SHELL := /bin/bash
.SHELLFLAGS := -eo pipefail -c

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
LAB_ARGS ?=
PYTEST_ARGS ?=
# pip prints one harmless line per package for this machine's local mirrors; hide those.
PIP_QUIET := sed "/is ignored: it is neither a file nor a directory/d"

.PHONY: lab test book setup setup-test system-deps system-deps-test data doctor assignments clean-venv

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip 2>&1 | $(PIP_QUIET)

$(VENV)/.installed-lab: pyproject.toml | $(BIN)/python
	@echo "== installing the course into $(VENV) (first run only; torch is large) =="
	$(BIN)/python -m pip install -q -e '.[lab,text,bert,export,grading]' 2>&1 | $(PIP_QUIET)
	touch $@

$(VENV)/.installed-test: pyproject.toml $(VENV)/.installed-lab
	$(BIN)/python -m pip install -q -e '.[lab,text,bert,export,grading,test,book]' 2>&1 | $(PIP_QUIET)
	touch $@

setup: $(VENV)/.installed-lab system-deps data
setup-test: $(VENV)/.installed-test system-deps-test data

system-deps:
	@bash scripts/install_system_deps.sh graphviz bubblewrap

system-deps-test:
	@bash scripts/install_system_deps.sh graphviz chromium bubblewrap

data: | $(BIN)/python
	@$(BIN)/course data prepare

doctor:
	@$(BIN)/course doctor || true

lab: setup doctor
	$(BIN)/course lab $(LAB_ARGS)

# Two pytest workers share the 2 cores (notebooks wait on their kernels); files whose tests share
# a costly module fixture stay on one worker (xdist_group). The book test runs after them: it
# reuses the lessons the first run executed. Exit code 5 (nothing selected) is not a failure.
test: setup-test
	$(BIN)/python -m pytest -n 2 --dist loadgroup -m "not book" $(PYTEST_ARGS)
	$(BIN)/python -m pytest -m book $(PYTEST_ARGS) || [ $$? -eq 5 ]

$(VENV)/.installed-book: pyproject.toml $(VENV)/.installed-lab
	$(BIN)/python -m pip install -q -e '.[lab,text,bert,export,grading,book]' 2>&1 | $(PIP_QUIET)
	touch $@

# The course as a static site in _build/book/html (BOOK_FAST=1: fast mode, into html-fast).
# Lessons run once per change (cached by content); open _build/book/html/index.html.
book: $(VENV)/.installed-book system-deps data
	$(BIN)/python scripts/build_book.py

# Regenerate the student releases and solutions/ from assignments/source.
assignments: | $(BIN)/python
	$(BIN)/course assignments generate

clean-venv:
	rm -rf $(VENV)
