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
TEST_SYSTEM_STAMP := $(VENV)/.test-system-packages
# Only the tests need these: the serve page test drives Debian's Chromium through its ChromeDriver.
TEST_APT_PACKAGES := chromium chromium-driver
# espeak-ng, flite, festival (+ the English voices Debian 12 packages): TTS engines;
# ffmpeg: decoding fallback without PyAV and the tests' encoders; libsndfile1: soundfile;
# libportaudio2: sounddevice (live microphone input).
APT_PACKAGES := espeak-ng ffmpeg libsndfile1 libportaudio2 \
	flite festival festvox-kallpc16k festvox-kdlpc16k festvox-us-slt-hts
# Kokoro's voices (style vectors) are the voices/ folder of this npm package; only its own
# tarball is unpacked (npm pack), not its JavaScript dependencies (~400 MB it does not need here).
KOKORO_JS := kokoro-js@1.2.1
NPM_DIR := $(VENV)/share/atc-whisper/node_modules
KOKORO_STAMP := $(NPM_DIR)/.$(subst @,-,$(KOKORO_JS))
# The CPU build of PyTorch; never ask pip for an unpinned torch (that pulls several GB of CUDA).
TORCH := torch==2.13.0
PYTEST_ARGS ?=

.PHONY: setup system-deps test-system-deps run test lint typecheck clean help

help:
	@echo "make run    - set up and run the whole pipeline (atc-whisper run)"
	@echo "make test   - set up and run lint, type checks and tests"
	@echo "make setup  - only install system packages and the virtualenv"

system-deps: $(SYSTEM_STAMP)
test-system-deps: $(TEST_SYSTEM_STAMP)

# $(1): the packages; installs the missing ones with apt-get.
define apt_install
	@missing=""; \
	for p in $(1); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "Installing system packages:$$missing"; \
	  SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null \
	    || { echo "Error: could not install$$missing with apt-get; install them by hand and re-run."; exit 1; }; \
	fi
endef

$(SYSTEM_STAMP):
	$(call apt_install,$(APT_PACKAGES))
	@mkdir -p $(VENV) && touch $@

$(TEST_SYSTEM_STAMP):
	$(call apt_install,$(TEST_APT_PACKAGES))
	@mkdir -p $(VENV) && touch $@

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/pip install -q $(TORCH)
	$(BIN)/pip install -q -e ".[all,dev]"
	@rm -f $(VENV)/.installed-*
	@touch $@

$(KOKORO_STAMP): | $(BIN)/python
	@command -v npm >/dev/null 2>&1 || { echo "Error: npm not found; the Kokoro TTS voices come from the npm package $(KOKORO_JS). Install Node.js with npm (e.g. apt-get install npm) and re-run 'make setup', or leave kokoro out of data.engines."; exit 1; }
	@echo "Installing the Kokoro voices ($(KOKORO_JS)) into $(NPM_DIR)/kokoro-js"
	@tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT && \
	  npm pack --silent --pack-destination "$$tmp" $(KOKORO_JS) >/dev/null && \
	  mkdir -p "$$tmp/kokoro-js" $(NPM_DIR) && tar -xzf "$$tmp"/kokoro-js-*.tgz -C "$$tmp/kokoro-js" --strip-components=1 && \
	  test -f "$$tmp/kokoro-js/voices/af_heart.bin" && rm -rf $(NPM_DIR)/kokoro-js && mv "$$tmp/kokoro-js" $(NPM_DIR)/kokoro-js \
	  || { echo "Error: could not fetch $(KOKORO_JS) with npm; check the npm registry is reachable and re-run 'make setup'."; exit 1; }
	@rm -f $(NPM_DIR)/.kokoro-js-* && touch $@

setup: system-deps $(STAMP) $(KOKORO_STAMP)

run: setup
	$(BIN)/atc-whisper run

lint: setup
	$(BIN)/ruff check src tests bench tools

typecheck: setup
	$(BIN)/mypy

test: setup test-system-deps lint typecheck
	$(BIN)/python -m pytest $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
