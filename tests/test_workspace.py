"""Workspace layout created by `init`, through the library and the real CLI."""

from __future__ import annotations

import tomllib
from pathlib import Path

from atc_whisper.workspace import Workspace


def test_init_creates_the_prototype_layout(tmp_path: Path, run_cli):
    result = run_cli("init", str(tmp_path / "ws"))
    assert result.returncode == 0, result.stderr
    ws = Workspace.at(tmp_path / "ws")
    for rel in ["data/atc_dataset", "data/noise_samples", "data/augmented", "models/atc_whisper",
                "models/atc_whisper/logs"]:
        assert (ws.root / rel).is_dir(), rel
    config = tomllib.loads(ws.config_path.read_text())
    # The written config holds the defaults: since issue 14 those are sized for a first run that
    # shows fine-tuning working (batch 8); `--preset prototype` gives the prototype's batch 2.
    assert config["train"]["batch_size"] == 8 and config["data"]["samples"] == 140
    assert ws.log_file.exists()


def test_init_keeps_user_edits(tmp_path: Path, run_cli):
    ws = Workspace.at(tmp_path / "ws")
    ws.create()
    ws.config_path.write_text("[train]\nepochs = 5\n")
    assert run_cli("init", str(ws.root)).returncode == 0
    assert ws.config_path.read_text() == "[train]\nepochs = 5\n"
    shown = run_cli("config", "-w", str(ws.root))
    assert "epochs = 5.0" in shown.stdout


def test_bad_setting_through_cli_is_one_line_exit_1(tmp_path: Path, run_cli):
    result = run_cli("config", "-w", str(tmp_path), "--set", "train.batch_size=-1")
    assert result.returncode == 1
    assert result.stderr.strip().startswith("Error: setting 'train.batch_size' = -1")
    assert "Traceback" not in result.stderr


def test_workspace_that_is_a_file(tmp_path: Path, run_cli):
    target = tmp_path / "afile"
    target.write_text("x")
    result = run_cli("init", str(target))
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
