"""The one parse-and-snap step and the one rule for finding the callsign list."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from atc_whisper.config import Settings
from atc_whisper.errors import DataError
from atc_whisper.transcribe.annotate import (
    Annotation,
    annotate,
    callsign_prompt,
    callsigns_file,
    known_callsigns,
)


def test_annotate_parses_and_snaps_to_a_known_callsign():
    plain = annotate("Speedbird 1 2 3, climb flight level 350")
    assert plain.callsign == "speedbird one two three" and plain.snapped_from is None
    assert plain.commands == [{"type": "climb", "value": "FL350", "qualifier": None, "detail": None}]
    snapped = annotate("Speedbid one two tree, climb flight level 350", ["speedbird one two three"])
    assert snapped.callsign == "speedbird one two three"
    assert snapped.snapped_from is not None and snapped.text != "Speedbid one two tree, climb flight level 350"
    assert [c["type"] for c in snapped.commands] == ["climb"]
    assert annotate("   ", ["speedbird one two three"]) == Annotation("   ")


def test_callsign_prompt():
    assert callsign_prompt(["speedbird one two three", " lufthansa four five six ", ""]) == (
        "Speedbird one two three, Lufthansa four five six.")
    assert callsign_prompt([" "]) is None


def test_one_rule_for_the_callsign_file(workspace, tmp_path, monkeypatch):
    (workspace.root / "known.txt").write_text("speedbird one two three\n")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # a relative setting never depends on the current folder
    relative = Settings().replace(decode={"callsigns_file": "known.txt"})
    assert callsigns_file(relative, workspace) == workspace.root / "known.txt"
    assert known_callsigns(relative, workspace) == ["speedbird one two three"]
    absolute = Settings().replace(decode={"callsigns_file": str(workspace.root / "known.txt")})
    assert callsigns_file(absolute, workspace) == workspace.root / "known.txt"
    assert callsigns_file(relative, workspace, "given.txt") == Path("given.txt")  # --callsigns, as given
    assert callsigns_file(Settings(), workspace) is None and known_callsigns(Settings(), workspace) is None
    missing = Settings().replace(decode={"callsigns_file": "nope.txt"})
    with pytest.raises(DataError, match=re.escape(str(workspace.root / "nope.txt"))):
        known_callsigns(missing, workspace)
    (workspace.root / "empty.txt").write_text("\n")
    with pytest.raises(DataError, match="holds no callsign"):
        known_callsigns(Settings().replace(decode={"callsigns_file": "empty.txt"}), workspace)


def test_live_reads_the_configured_callsign_list_like_transcribe(run_cli, workspace, synth_clip, tmp_path):
    """``decode.callsigns_file`` is found relative to the workspace by live too (it was ignored):
    a missing one is an error line, a present one prompts and snaps the live transcripts."""
    clip = synth_clip("Speedbird one two three, climb flight level three five zero")
    args = ["live", "--file", str(clip), "-w", str(workspace.root), "--no-catalogue", "--engine", "ct2",
            "--model", "tiny.en", "--set", "model.offline=true", "--set", "model.threads=1"]
    missing = run_cli(*args, "--set", "decode.callsigns_file=known.txt", cwd=tmp_path)
    assert missing.returncode == 1 and "Traceback" not in missing.stderr
    assert f"Error: callsigns file {workspace.root / 'known.txt'} does not exist" in missing.stderr
    (workspace.root / "known.txt").write_text("speedbird one two three\n")
    jsonl = tmp_path / "out.jsonl"
    done = run_cli(*args, "--set", "decode.callsigns_file=known.txt", "--jsonl", str(jsonl), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    records = [json.loads(line) for line in jsonl.read_text().splitlines()]
    assert records and records[0]["callsign"] == "speedbird one two three"
    assert "speedbird one two three" in records[0]["text"].lower()  # the prompt spells the digits out
