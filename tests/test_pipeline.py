"""The whole pipeline on a tiny real run: stages run once, then are skipped until inputs change."""

from __future__ import annotations

import json

import pytest

from atc_whisper.config import load_settings
from atc_whisper.pipeline import PipelineState, run_pipeline
from atc_whisper.workspace import Workspace


@pytest.fixture(scope="module")
def pipeline_run(tmp_path_factory, tiny_en):
    """One real init -> prepare -> train -> evaluate run (10 espeak utterances, 2 steps)."""
    ws = Workspace.at(tmp_path_factory.mktemp("pipeline") / "ws")
    settings = load_settings(overrides=[
        f"model.name={json.dumps(str(tiny_en.hf_dir))}", "model.threads=2",
        "data.engines=['espeak']", "train.max_steps=2", "train.eval_max_samples=2",
    ])
    events: list[tuple[str, str]] = []
    first = run_pipeline(ws, settings, progress=False, on_stage=lambda s, e: events.append((s, e)))
    return ws, settings, first, events


def test_first_run_does_every_stage_and_writes_outputs(pipeline_run):
    ws, _, first, events = pipeline_run
    assert [o.name for o in first.stages] == ["init", "prepare", "train", "evaluate"]
    assert all(o.status == "done" for o in first.stages)
    assert ("train", "start") in events and ("evaluate", "done") in events
    assert (ws.model_dir / "model.safetensors").exists()
    assert ws.evaluation_report.exists() and ws.evaluation_results.exists()
    summary = first.summary
    assert summary["samples"]["test"] >= 1
    assert set(summary["evaluation"]) >= {"base", "fine_tuned"}
    assert summary["examples"] and summary["examples"][0]["reference"]


def test_second_run_skips_everything(pipeline_run):
    ws, settings, _, _ = pipeline_run
    report_mtime = ws.evaluation_report.stat().st_mtime_ns
    again = run_pipeline(ws, settings, progress=False)
    assert [o.status for o in again.stages] == ["skipped"] * 4
    assert ws.evaluation_report.stat().st_mtime_ns == report_mtime


def test_the_worker_count_changes_no_stage(pipeline_run):
    ws, settings, _, _ = pipeline_run
    again = run_pipeline(ws, settings.replace(data={"workers": 2}), progress=False)
    assert [o.status for o in again.stages] == ["skipped"] * 4  # same clips, however many make them


def test_changing_evaluation_settings_reruns_only_evaluate(pipeline_run):
    ws, settings, _, _ = pipeline_run
    model_mtime = (ws.model_dir / "model.safetensors").stat().st_mtime_ns
    changed = settings.replace(evaluate={"compare_base": False})
    result = run_pipeline(ws, changed, progress=False)
    assert {o.name: o.status for o in result.stages} == {
        "init": "skipped", "prepare": "skipped", "train": "skipped", "evaluate": "done"}
    assert (ws.model_dir / "model.safetensors").stat().st_mtime_ns == model_mtime
    report = json.loads(ws.evaluation_report.read_text())
    assert "base" not in report["summary"]


def test_missing_output_reruns_its_stage(pipeline_run):
    ws, settings, _, _ = pipeline_run
    ws.evaluation_results.unlink()
    result = run_pipeline(ws, settings, stages=("evaluate",), progress=False)
    assert [o.status for o in result.stages] == ["done"]
    assert ws.evaluation_results.exists()
    assert PipelineState(ws).fingerprint("evaluate")


def test_unknown_stage_is_a_clear_cli_error(tmp_path, run_cli):
    result = run_cli("run", "-w", str(tmp_path / "ws"), "--stages", "prepare,tune")
    assert result.returncode == 1
    assert "unknown pipeline stage(s) tune" in result.stderr
    assert "Traceback" not in result.stderr
