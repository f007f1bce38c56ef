"""Shared fixtures. Everything here is real: real files, real subprocesses, real models.

Heavy fixtures (the converted pretrained model, synthesised clips) are session-scoped and
built once per test run into a session temp folder.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from atc_whisper.workspace import Workspace

# Keep runs reproducible and within the 2-core budget; never touch the network.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture
def rng() -> np.random.Generator:
    """A seeded random generator."""
    return np.random.default_rng(1234)


@pytest.fixture
def workspace(tmp_path: Path) -> Workspace:
    """A freshly initialised workspace in a temp folder."""
    ws = Workspace.at(tmp_path / "ws")
    ws.create()
    return ws


def run_cli(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None,
            timeout: float = 600, input: bytes | None = None) -> subprocess.CompletedProcess[str]:
    """Run the real ``atc-whisper`` entry point as a subprocess and capture its output."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "atc_whisper", *args],
        cwd=cwd, env=full_env, capture_output=True, text=input is None, timeout=timeout, input=input,
    )


@pytest.fixture(name="run_cli")
def run_cli_fixture():
    return run_cli
