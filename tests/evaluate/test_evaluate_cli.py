"""`atc-whisper evaluate` through the real entry point: failure paths before any model loads, and a run."""

from __future__ import annotations

import json

import pytest
from test_evaluate import CLIPS, build_catalogue

from atc_whisper.workspace import Workspace


@pytest.fixture
def dev_only_workspace(tmp_path, synth_clip) -> Workspace:
    ws = Workspace.at(tmp_path / "ws")
    ws.create()
    build_catalogue(ws, synth_clip, clips=[c for c in CLIPS if c[1] == "dev"])
    return ws


def _assert_clean_error(proc, *fragments: str) -> None:
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "Error:" in proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    for fragment in fragments:
        assert fragment in proc.stderr


def test_help(run_cli):
    proc = run_cli("evaluate", "--help")
    assert proc.returncode == 0
    for option in ("--model", "--base", "--no-base", "--split", "--source", "--max-samples", "--callsigns", "--engine"):
        assert option in proc.stdout


def test_no_catalogue_says_to_prepare(run_cli, workspace):
    _assert_clean_error(run_cli("evaluate", "-w", str(workspace.root)), "atc-whisper prepare")


def test_empty_split_fails_before_loading_models(run_cli, dev_only_workspace):
    proc = run_cli("evaluate", "-w", str(dev_only_workspace.root), "--split", "test")
    _assert_clean_error(proc, "nothing to evaluate", "split 'test'", "dev 1")


def test_unknown_source_lists_the_sources(run_cli, dev_only_workspace):
    proc = run_cli("evaluate", "-w", str(dev_only_workspace.root), "--split", "all", "--source", "atcosim")
    _assert_clean_error(proc, "source 'atcosim'", "generic:demo")


def test_missing_fine_tuned_model_says_to_train(run_cli, dev_only_workspace):
    proc = run_cli("evaluate", "-w", str(dev_only_workspace.root), "--split", "dev")
    _assert_clean_error(proc, "atc-whisper train", "--model")
    assert not dev_only_workspace.evaluation_report.exists()


def test_missing_callsigns_file(run_cli, dev_only_workspace, tiny_en):
    proc = run_cli("evaluate", "-w", str(dev_only_workspace.root), "--split", "dev", "--model", str(tiny_en.hf_dir),
                   "--callsigns", str(dev_only_workspace.root / "nope.txt"))
    _assert_clean_error(proc, "nope.txt", "one callsign per line")


@pytest.mark.slow  # ~20 s: loads tiny.en and exports it to CTranslate2 in a fresh workspace
def test_cli_run_prints_summary_and_writes_reports(run_cli, dev_only_workspace, tiny_en):
    ws = dev_only_workspace
    proc = run_cli("evaluate", "-w", str(ws.root), "--split", "dev", "--model", str(tiny_en.hf_dir), "--no-base")
    assert proc.returncode == 0, proc.stderr
    assert "WER (normalised)" in proc.stdout and "callsign accuracy" in proc.stdout
    assert str(ws.evaluation_report) in proc.stdout.replace("\n", "")
    report = json.loads(ws.evaluation_report.read_text())
    assert list(report["summary"]) == ["fine_tuned"]
    assert report["summary"]["fine_tuned"]["n"] == 1
    # a line says how the callsigns were misheard, when any were
    misses = report["summary"]["fine_tuned"]["callsign_misses"]
    assert ("callsign misses, fine-tuned" in proc.stdout) == (sum(misses.values()) > 0), proc.stdout
    assert report["models"]["fine_tuned"]["engine"] == "ct2"  # the default engine
    assert ws.evaluation_results.exists()
