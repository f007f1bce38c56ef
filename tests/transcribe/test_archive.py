"""Radio archives: a recording comes back as its transmissions, with roles, exchanges and readback checks.

The archives are built here: eSpeak transmissions of a controller and pilots placed between
stretches of receiver static, so the test knows where each transmission is, who speaks, and
which readback is wrong. The real tiny.en decodes them (CTranslate2, the bundled folder), with
the aircraft on frequency as the callsign list, as an archive user with surveillance data would.
The phrases are ones tiny.en hears right with these voices; generated exchanges
(:mod:`atc_whisper.phraseology.exchanges`), which it garbles, are checked for segmentation and,
with their reference text at the times found, for the readback flag.
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import re

import numpy as np
import pytest

from atc_whisper.audio.io import SAMPLE_RATE, write_wav
from atc_whisper.config import Settings
from atc_whisper.live.simulate import exchange_session, synthetic_session
from atc_whisper.transcribe.files import cut_file, split_windows, transcribe_file
from conftest import run_cli

CONTROLLER, PILOT = "espeak:en-us", "espeak:en-us+m3"
#: (text, voice, role, exchange, readback status or None). The second readback is wrong: FL330 for FL310.
TRANSMISSIONS = [
    ("Speedbird one two three, climb flight level three five zero.", CONTROLLER, "controller", 0, None),
    ("Climbing flight level three five zero, Speedbird one two three.", PILOT, "pilot", 0, "ok"),
    ("Lufthansa four five six, climb flight level three one zero.", CONTROLLER, "controller", 1, None),
    ("Climbing flight level three three zero, Lufthansa four five six.", PILOT, "pilot", 1, "mismatch"),
    ("Speedbird one two three, turn right heading three one zero.", CONTROLLER, "controller", 2, None),
    ("Right heading three one zero, Speedbird one two three.", PILOT, "pilot", 2, "ok"),
    ("Ryanair seven eight, climb flight level two five zero.", CONTROLLER, "controller", 3, None),
    ("Climbing flight level two five zero, Ryanair seven eight.", PILOT, "pilot", 3, "ok"),
]
ON_FREQUENCY = ["speedbird one two three", "lufthansa four five six", "ryanair seven eight"]
#: How far a segment's edges may lie from the planted transmission's, s (the segmenter pads 0.2 s).
BOUNDARY_TOLERANCE_S = 0.3


@pytest.fixture(scope="module")
def settings() -> Settings:
    # float32: int8 transcripts of these garbled-prone clips shift with the CPU and the BLAS build
    return Settings().replace(model={"threads": 1, "offline": True, "device": "cpu"}, decode={"compute_type": "float32"})


@pytest.fixture(scope="module")
def engine(settings, session_workspace):
    from atc_whisper.transcribe import load_engine

    return load_engine("tiny.en", settings, session_workspace, engine="ct2")


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    """Eight transmissions, 2.5 s of receiver static (-50 dBFS: tiny.en loses words in louder static)
    between them; the WAV and the session (where each transmission was placed)."""
    session = synthetic_session([t[0] for t in TRANSMISSIONS], gaps_s=2.5, noise_dbfs=-50.0,
                                voice=[t[1] for t in TRANSMISSIONS], seed=12)
    path = session.write_wav(tmp_path_factory.mktemp("archive") / "tower.wav")
    return path, session


@pytest.fixture(scope="module")
def transcribed(archive, engine, settings):
    path, _ = archive
    return list(transcribe_file(path, engine, settings, callsigns=ON_FREQUENCY))


def _assert_matches_planted(segments, spans_s) -> None:
    assert len(segments) == len(spans_s), [(round(s.start_s, 2), round(s.end_s, 2), s.text) for s in segments]
    for segment, (start, end) in zip(segments, spans_s, strict=True):
        assert abs(segment.start_s - start) <= BOUNDARY_TOLERANCE_S, (segment.start_s, start, segment.text)
        assert abs(segment.end_s - end) <= BOUNDARY_TOLERANCE_S, (segment.end_s, end, segment.text)
    assert all(a.end_s <= b.start_s for a, b in itertools.pairwise(segments))


def test_archive_comes_back_as_its_transmissions_with_roles_and_readbacks(transcribed, archive):
    _, session = archive
    _assert_matches_planted(transcribed, session.spans_s)
    assert [s.role for s in transcribed] == [t[2] for t in TRANSMISSIONS]
    assert [s.exchange for s in transcribed] == [t[3] for t in TRANSMISSIONS]
    assert [s.callsign for s in transcribed] == [ON_FREQUENCY[k] for k in (0, 0, 1, 1, 0, 0, 2, 2)]
    assert [s.readback["status"] if s.readback else None for s in transcribed] == [t[4] for t in TRANSMISSIONS]
    wrong = transcribed[3].readback
    assert wrong is not None and wrong["instruction"] == 2
    assert wrong["differences"] == [{"item": "level", "expected": "FL310", "heard": "FL330", "kind": "changed"}]
    assert all(s.commands for s in transcribed[::2])  # every instruction was parsed
    assert all(0.5 <= s.role_score <= 1.0 for s in transcribed)


def test_json_carries_role_exchange_and_readback(transcribed):
    row = json.loads(json.dumps(transcribed[3].as_dict()))
    assert row["role"] == "pilot" and row["exchange"] == 1 and row["readback"]["status"] == "mismatch"
    assert json.loads(json.dumps(transcribed[0].as_dict()))["readback"] is None


def test_noise_only_recording_gives_no_segment(engine, settings, tmp_path):
    """Receiver static, mains hum and crackle, no speech: nothing reaches the model, nothing is written."""
    rng = np.random.default_rng(4)
    n = 20 * SAMPLE_RATE
    t = np.arange(n) / SAMPLE_RATE
    noise = rng.normal(0, 10 ** (-36 / 20), n) + 0.02 * np.sin(2 * np.pi * 50 * t)
    clicks = rng.choice(n - 80, 12, replace=False)
    for c in clicks:
        noise[c:c + 80] += rng.normal(0, 0.2, 80)  # 5 ms crackles
    path = write_wav(tmp_path / "static.wav", noise.astype(np.float32))
    assert list(transcribe_file(path, engine, settings)) == []


def test_text_only_where_speech_was(transcribed, archive):
    """No segment lies in a stretch of static (what faster-whisper's sequential mode can invent)."""
    _, session = archive
    for segment in transcribed:
        assert any(segment.start_s < end and segment.end_s > start for start, end in session.spans_s), segment


def test_generated_exchanges_with_an_injected_error(engine, settings):
    """Generated exchanges (some readbacks wrong on purpose, phraseology.exchanges) come back as their
    transmissions; the conversation over their reference text at the times found flags exactly the
    wrong readbacks. (tiny.en garbles these phrases too much to check readbacks on its own text.)"""
    from atc_whisper.phraseology.conversation import analyse_transmissions

    made = exchange_session(4, seed=3, error_rate=0.5, radio=False, noise_dbfs=-42.0, gap_range_s=(2.0, 3.5))
    assert any(e.wrong for e in made.exchanges) and not all(e.wrong for e in made.exchanges)
    segments = list(transcribe_file("generated.wav", engine, settings, audio=made.session.audio))
    _assert_matches_planted(segments, made.session.spans_s)
    entries = analyse_transmissions([(ref, s.start_s, s.end_s) for ref, s in zip(made.references, segments, strict=True)])
    flagged = {made.turns[e.index].exchange for e in entries if e.readback_mismatch}
    assert flagged == {k for k, e in enumerate(made.exchanges) if e.wrong}
    assert [e.role for e in entries] == [t.utterance.role for t in made.turns]


# -- formats, through the real CLI ---------------------------------------------------------------


def _cli(run_cli, workspace, path, *args):
    return run_cli("transcribe", str(path), "-w", str(workspace.root), "--model", "tiny.en", "--set",
                   "model.threads=1", "--set", "decode.compute_type=float32", *args)  # as the settings fixture


@pytest.fixture(scope="module")
def callsign_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("callsigns") / "on_frequency.txt"
    path.write_text("BAW123\nDLH456\nRYR78\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def cli_outputs(archive, session_workspace, callsign_file, tmp_path_factory):
    """The archive through ``atc-whisper transcribe`` in json, vtt, tsv and conversation."""
    path, _ = archive
    folder = tmp_path_factory.mktemp("formats")
    outputs = {}
    for fmt in ("json", "vtt", "tsv", "conversation"):
        target = folder / f"tower.{fmt}"
        result = _cli(run_cli, session_workspace, path, "--format", fmt, "--output", str(target),
                      "--callsigns", str(callsign_file))
        assert result.returncode == 0, result.stderr
        outputs[fmt] = target.read_text(encoding="utf-8")
        outputs[f"{fmt}_stderr"] = result.stderr
    return outputs


_VTT_TIME = re.compile(r"^(?:(\d+):)?(\d\d):(\d\d)\.(\d\d\d)$")


def _vtt_seconds(stamp: str) -> float:
    match = _VTT_TIME.match(stamp)
    assert match, stamp
    hours, minutes, seconds, millis = (int(g) if g else 0 for g in match.groups())
    return hours * 3600 + minutes * 60 + seconds + millis / 1000


def test_vtt_and_tsv_parse_back_to_the_json_segments(cli_outputs):
    rows = json.loads(cli_outputs["json"])
    assert len(rows) == len(TRANSMISSIONS)
    # WebVTT by hand: the header line, a blank line, then blocks of "start --> end" and the cue text.
    vtt = cli_outputs["vtt"]
    assert vtt.startswith("WEBVTT\n\n")
    blocks = [b for b in vtt[len("WEBVTT\n\n"):].strip("\n").split("\n\n")]
    assert len(blocks) == len(rows)
    for block, row in zip(blocks, rows, strict=True):
        timing, *text = block.split("\n")
        start, arrow, end = timing.split(" ")
        assert arrow == "-->" and len(text) == 1
        assert _vtt_seconds(start) == pytest.approx(row["start"], abs=5e-4)
        assert _vtt_seconds(end) == pytest.approx(row["end"], abs=5e-4)
        assert text[0].startswith(row["text"])
    assert "READBACK MISMATCH: level FL310 read back as FL330" in blocks[3]
    # TSV with the csv module: a header, then integer milliseconds and the text.
    table = list(csv.reader(io.StringIO(cli_outputs["tsv"]), delimiter="\t"))
    assert table[0] == ["start", "end", "text"]
    assert [(int(r[0]), int(r[1]), r[2]) for r in table[1:]] == [
        (round(row["start"] * 1000), round(row["end"] * 1000), row["text"]) for row in rows]


def test_conversation_view_and_json_roles(cli_outputs):
    rows = json.loads(cli_outputs["json"])
    assert [r["role"] for r in rows] == [t[2] for t in TRANSMISSIONS]
    assert [r["exchange"] for r in rows] == [t[3] for t in TRANSMISSIONS]
    lines = cli_outputs["conversation"].splitlines()
    assert len(lines) == len(TRANSMISSIONS)
    assert lines[0].split()[1:4] == ["ATC", "#0", "speedbird"] and lines[1].split()[1] == "PILOT"
    assert lines[1].endswith("readback ok") and "READBACK MISMATCH: level FL310 read back as FL330" in lines[3]
    assert "READBACK" not in lines[2] and "readback" not in lines[0]
    assert "8 transmission(s)" in cli_outputs["conversation_stderr"]
    assert "4 readback(s) checked, 1 mismatch(es)" in cli_outputs["conversation_stderr"]


def test_window_mode_gives_the_old_fixed_windows(archive, engine, settings, session_workspace):
    path, session = archive
    audio = session.audio
    windows = split_windows(audio, 30.0)
    assert len(windows) == 2  # the recording is longer than one window
    cuts = cut_file(audio, settings, window_s=engine.window_s, segmentation="window")
    assert [(c.start, c.end) for c in cuts] == windows
    result = _cli(run_cli, session_workspace, path, "--segmentation", "window", "--format", "jsonl")
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [(r["start"], r["end"]) for r in rows] == [(round(c.start_s, 3), round(c.end_s, 3)) for c in cuts]
    assert "2 window(s)" in result.stderr
