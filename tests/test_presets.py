"""Shipped settings presets: ``--preset prototype`` is the prototype's literal run, one flag away."""

from __future__ import annotations

import tomllib

import pytest

from atc_whisper.config import Settings, load_settings
from atc_whisper.errors import ConfigError
from atc_whisper.presets import available_presets, preset_path


def _value(stdout: str, key: str) -> object:
    return tomllib.loads(stdout)[key.split(".")[0]][key.split(".")[1]]


def test_prototype_preset_is_the_prototypes_literal_settings():
    assert "prototype" in available_presets()
    settings = load_settings(preset="prototype")
    assert (settings.model.name, settings.data.samples, settings.train.epochs, settings.train.batch_size) == (
        "openai/whisper-tiny.en", 10, 1.0, 2)
    # The built-in defaults are sized to show fine-tuning working, so they differ from the prototype.
    assert Settings().data.samples > settings.data.samples
    with pytest.raises(ConfigError, match=r"available presets: .*prototype"):
        preset_path("nope")


def test_preset_layers_over_the_workspace_and_under_set(run_cli, workspace):
    config = workspace.config_path.read_text().replace("samples = ", "samples = 777 # ", 1)
    workspace.config_path.write_text(config)  # the workspace says 777; the preset wins over it
    proc = run_cli("config", "-w", str(workspace.root), "--preset", "prototype", "--set", "train.epochs=3")
    assert proc.returncode == 0, proc.stderr
    assert _value(proc.stdout, "data.samples") == 10 and _value(proc.stdout, "train.batch_size") == 2
    assert _value(proc.stdout, "train.epochs") == 3.0  # --set wins over the preset
    bad = run_cli("config", "-w", str(workspace.root), "--preset", "fast")
    assert bad.returncode == 1 and "Error: unknown preset 'fast'; available presets: prototype" in bad.stderr


def test_run_with_the_prototype_preset_prepares_ten_utterances(run_cli, tmp_path):
    from atc_whisper.data.catalogue import Catalogue
    from atc_whisper.workspace import Workspace

    ws = Workspace.at(tmp_path / "ws")
    proc = run_cli("run", "-w", str(ws.root), "--preset", "prototype", "--stages", "init,prepare",
                   "--set", "data.engines=[\"espeak\"]")
    assert proc.returncode == 0, proc.stderr
    assert "samples = 10" in ws.config_path.read_text()  # init wrote the preset's values
    with Catalogue(ws.db_path) as catalogue:
        groups = {s.group_id for s in catalogue.samples()}
    assert len(groups) == 10  # one group per utterance (its clean and radio clips)
