# Two commands on a fresh machine:
#   make run   - set everything up, then run the whole pipeline on the embedded defaults (offline)
#   make test  - set everything up, then lint, type-check and run the test suite
# Both are idempotent: a second call skips set-up that is already done.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# The stamp carries a hash of pyproject.toml, so editing dependencies re-installs.
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml Makefile 2>/dev/null | cksum | cut -d' ' -f1)
SYSTEM_STAMP := $(VENV)/.system-packages
APT_PACKAGES := espeak-ng ffmpeg sox libsndfile1 libportaudio2
# The CPU build of PyTorch; never ask pip for an unpinned torch (that pulls several GB of CUDA).
TORCH := torch==2.13.0
PYTEST_ARGS ?=

.PHONY: setup system-deps run test lint typecheck clean help

help:
	@echo "make run    - set up and run the whole pipeline (atc-whisper run)"
	@echo "make test   - set up and run lint, type checks and tests"
	@echo "make setup  - only install system packages and the virtualenv"

system-deps: $(SYSTEM_STAMP)

$(SYSTEM_STAMP):
	@missing=""; \
	for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "Installing system packages:$$missing"; \
	  SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null \
	    || { echo "Error: could not install$$missing with apt-get; install them by hand and re-run."; exit 1; }; \
	fi
	@mkdir -p $(VENV) && touch $@

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/pip install -q $(TORCH)
	$(BIN)/pip install -q -e ".[all,dev]"
	@rm -f $(VENV)/.installed-*
	@touch $@

setup: system-deps $(STAMP)

run: setup
	$(BIN)/atc-whisper run

lint: setup
	$(BIN)/ruff check src tests bench tools

typecheck: setup
	$(BIN)/mypy

test: setup lint typecheck
	$(BIN)/python -m pytest $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
