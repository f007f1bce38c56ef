"""Flite and Festival: real speech from their voices, prosody that acts and repeats, clear errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from atc_whisper.audio import tts_festival, tts_flite
from atc_whisper.audio.io import check_speech, duration_s
from atc_whisper.audio.tts import list_voices, random_voice_params, synthesize
from atc_whisper.errors import TTSError

TEXT = "delta four five six, descend flight level one two zero"
N_WORDS = len(TEXT.split())


def _assert_speech(audio: np.ndarray) -> None:
    assert audio.dtype == np.float32 and audio.ndim == 1 and np.max(np.abs(audio)) <= 1.0
    check_speech(audio)
    assert N_WORDS / 6 < duration_s(audio) < N_WORDS / 1.5
    frames = audio[: audio.size // 320 * 320].reshape(-1, 320)
    level_db = 10 * np.log10(np.mean(frames**2, axis=1) + 1e-12)
    assert np.percentile(level_db, 90) - np.percentile(level_db, 20) > 15  # syllables, not a tone


def test_flite_voices_include_the_scottish_speaker() -> None:
    voices = {v.name: v.description for v in list_voices(["flite"])}
    assert set(voices) == {"kal", "kal16", "awb", "rms", "slt"}  # awb_time only tells the time
    assert voices["awb"].startswith("Scottish English, male") and voices["slt"].startswith("American English, female")


@pytest.mark.parametrize("voice", ["flite:awb", "flite:slt", "flite:kal"])
def test_flite_speaks_and_repeats_from_its_params(voice: str) -> None:
    params = random_voice_params(voice, np.random.default_rng(4))
    assert params == random_voice_params(voice, np.random.default_rng(4)) and set(params) == {"duration_stretch", "f0_shift"}
    audio = synthesize(TEXT, voice, **params)
    _assert_speech(audio)
    assert np.array_equal(audio, synthesize(TEXT, voice, **params))  # deterministic


def test_flite_stretch_and_pitch_act() -> None:
    slow = synthesize(TEXT, "flite:awb", duration_stretch=1.3)
    fast = synthesize(TEXT, "flite:awb", duration_stretch=0.7)
    assert 1.5 < duration_s(slow) / duration_s(fast) < 2.1
    low = synthesize(TEXT, "flite:awb", f0_shift=0.85)
    high = synthesize(TEXT, "flite:awb", f0_shift=1.2)
    assert not np.array_equal(low, high) and abs(duration_s(low) - duration_s(high)) < 0.2


def test_festival_voices_speak_and_repeat() -> None:
    voices = {v.name: v for v in list_voices(["festival"])}
    assert {"kal_diphone", "ked_diphone", "cmu_us_slt_arctic_hts"} <= set(voices)
    for name in ("kal_diphone", "cmu_us_slt_arctic_hts"):
        params = random_voice_params(f"festival:{name}", np.random.default_rng(2))
        assert ("f0_mean_hz" in params) == name.endswith("_diphone")  # the HMM voice has no pitch knob
        audio = synthesize(TEXT, f"festival:{name}", **params)
        _assert_speech(audio)
        if name == "kal_diphone":
            assert np.array_equal(audio, synthesize(TEXT, f"festival:{name}", **params))


def test_festival_stretch_acts_on_diphone_and_hmm_voices() -> None:
    for voice in ("festival:ked_diphone", "festival:cmu_us_slt_arctic_hts"):
        slow = synthesize("cleared to land runway two seven", voice, duration_stretch=1.3)
        fast = synthesize("cleared to land runway two seven", voice, duration_stretch=0.7)
        assert 1.4 < duration_s(slow) / duration_s(fast) < 2.2, voice


def test_text_is_never_read_as_options_or_scheme(tmp_path: Path) -> None:
    target = tmp_path / "written.wav"
    for voice in ("flite:rms", "festival:kal_diphone"):
        audio = synthesize(f'-o {target} (quit) "roger"', voice)
        assert duration_s(audio) > 1.0  # the whole line was spoken
        assert not target.exists()


def test_missing_programs_name_the_install_command(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(TTSError, match="unknown Flite parameter"):
        synthesize(TEXT, "flite:awb", rate_wpm=200)
    with pytest.raises(TTSError, match="f0_mean_hz applies to diphone voices only"):
        synthesize(TEXT, "festival:cmu_us_slt_arctic_hts", f0_mean_hz=120.0)
    monkeypatch.setenv("PATH", "/nonexistent")
    tts_flite._listed.cache_clear()
    tts_festival._listed.cache_clear()
    try:
        with pytest.raises(TTSError, match="flite not found; install it with 'apt-get install flite'"):
            tts_flite.FliteEngine()
        with pytest.raises(TTSError, match=r"text2wave \(Festival\) not found; install it with 'apt-get install festival"):
            tts_festival.FestivalEngine()
    finally:
        tts_flite._listed.cache_clear()
        tts_festival._listed.cache_clear()
