"""The one-line Python API gives what ``atc-whisper transcribe`` prints, and stays light to import."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

SENTENCES = ["Speedbird one two three, climb flight level three five zero",
             "Lufthansa four five six, contact tower one one eight decimal seven"]


@pytest.fixture(scope="module")
def two_transmissions(tmp_path_factory):
    """Two transmissions 30 s apart, so the file is cut into two windows, after half a second of
    silence (a recording does not start on its first word)."""
    from atc_whisper.audio.io import load_audio, write_wav
    from atc_whisper.audio.tts import synthesize

    first, second = (synthesize(text, "espeak:en-us") for text in SENTENCES)
    gap = np.zeros(16_000 * 28, dtype=np.float32)
    path = tmp_path_factory.mktemp("api") / "tower.wav"
    write_wav(path, np.concatenate([gap[:8_000], first, gap, second]))
    return path, load_audio(path)


def _comparable(segment: dict) -> dict:
    return {k: v for k, v in segment.items() if k != "latency_s"}  # wall-clock time differs run to run


def test_import_stays_light():
    code = ("import sys, atc_whisper; atc_whisper.Recognizer; atc_whisper.SAMPLE_RATE; "
            "print([m for m in ('torch', 'ctranslate2', 'transformers', 'faster_whisper') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.slow
def test_cli_and_api_give_identical_segments(run_cli, two_transmissions, tmp_path, monkeypatch):
    from atc_whisper import Recognizer
    from atc_whisper.transcribe.types import FileSegment

    path, audio = two_transmissions
    workspace = tmp_path / "ws"
    proc = run_cli("transcribe", str(path), "--format", "jsonl", "--model", "tiny.en", "-w", str(workspace))
    assert proc.returncode == 0, proc.stderr
    cli = [json.loads(line) for line in proc.stdout.splitlines()]
    assert len(cli) == 2 and cli[0]["callsign"] == "speedbird one two three"
    assert cli[0]["commands"] and cli[1]["start"] > 29.0

    monkeypatch.setenv("ATC_WHISPER_CACHE", str(tmp_path / "cache"))  # no workspace: the user cache
    recognizer = Recognizer("tiny.en")
    segments = list(recognizer.transcribe(str(path)))
    assert all(isinstance(s, FileSegment) for s in segments)
    assert [_comparable(s.as_dict()) for s in segments] == [_comparable(c) for c in cli]
    assert recognizer.engine.name == "ct2" and not (tmp_path / "cache" / "models" / "pretrained").exists()

    # A fresh recogniser: CTranslate2's sampling (the temperature fallback) continues one random
    # sequence per loaded model, so only a freshly loaded model repeats its fallbacks call for call.
    from_array = [s.as_dict() for s in Recognizer("tiny.en").transcribe(audio)]
    assert [s["text"] for s in from_array] == [c["text"] for c in cli] and from_array[0]["file"] == "<array>"


def test_api_takes_callsigns_and_reports_bad_input(tmp_path, monkeypatch, synth_clip):
    from atc_whisper import Recognizer
    from atc_whisper.errors import AudioError, DataError, ModelError

    monkeypatch.setenv("ATC_WHISPER_CACHE", str(tmp_path / "cache"))
    with pytest.raises(ModelError, match="does not exist"):
        Recognizer(tmp_path / "no-model")
    with pytest.raises(DataError, match=r"missing\.txt"):
        Recognizer("tiny.en", callsigns=tmp_path / "missing.txt")
    recognizer = Recognizer("tiny.en", callsigns=["speedbird one two three"])
    (segment,) = recognizer.transcribe(synth_clip(SENTENCES[0]))
    assert segment.callsign == "speedbird one two three" and "speedbird one two three" in segment.text.lower()
    assert any(c["type"] == "climb" and c["value"] == "FL350" for c in segment.commands)
    with pytest.raises(AudioError, match="silent"):
        list(recognizer.transcribe(np.zeros(16_000, dtype=np.float32)))
