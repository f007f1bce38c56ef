"""The realism measures give the right figures on signals whose answer is known by construction."""

from __future__ import annotations

import math

import numpy as np
import pytest

from atc_whisper.audio.io import SAMPLE_RATE
from atc_whisper.audio.stats import (
    BANDS_HZ,
    ClipStats,
    band_energy_shares,
    clip_stats,
    distance,
    frame_snr_db,
    near_peak_per_1000,
    summarise,
)
from atc_whisper.errors import DataError


def _sine(freq_hz: float, seconds: float = 1.0, amplitude: float = 0.5) -> np.ndarray:
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    return amplitude * np.sin(2 * np.pi * freq_hz * t)


def test_band_shares_put_a_tone_in_its_band_and_split_a_mix_by_power() -> None:
    for freq, band in ((100.0, 0), (500.0, 1), (1500.0, 2), (2500.0, 3), (5000.0, 4)):
        shares = band_energy_shares(_sine(freq))
        assert shares[band] == pytest.approx(1.0, abs=1e-3), (freq, shares)
    # Amplitudes 1 and 0.5: powers 4:1.
    shares = band_energy_shares(_sine(500.0, amplitude=0.4) + _sine(2500.0, amplitude=0.2))
    assert shares[1] == pytest.approx(0.8, abs=0.01) and shares[3] == pytest.approx(0.2, abs=0.01)
    assert sum(shares) == pytest.approx(1.0)
    assert len(shares) == len(BANDS_HZ)
    assert band_energy_shares(np.zeros(1000)) == (0.0,) * len(BANDS_HZ)


def test_frame_snr_is_the_energy_ratio_of_loud_and_quiet_frames() -> None:
    rng = np.random.default_rng(0)
    frame = int(0.02 * SAMPLE_RATE)
    # 40 % of 20 ms frames are "speech" at mean-square 1e-2, the rest noise at 1e-5: 30 dB.
    loud = rng.random(500) < 0.4
    signs = np.where(np.arange(frame) % 2, 1.0, -1.0)  # constant magnitude: each frame's energy is exact
    x = np.concatenate([signs * (0.1 if is_loud else math.sqrt(1e-5)) for is_loud in loud])
    assert frame_snr_db(x) == pytest.approx(30.0, abs=1e-6)
    # Steady noise alone has no dynamics: close to 0 dB.
    assert frame_snr_db(rng.standard_normal(SAMPLE_RATE) * 0.1) < 1.0
    # Digital silence between words stays finite (floored at -120 dBFS).
    gated = np.where(loud.repeat(frame), np.tile(signs, loud.size) * 0.1, 0.0)
    assert frame_snr_db(gated) == pytest.approx(100.0, abs=1e-6)


def test_near_peak_counts_flat_tops_of_a_clipped_sine() -> None:
    sine = _sine(440.0, amplitude=0.9)
    clean = near_peak_per_1000(sine)
    clipped = near_peak_per_1000(np.clip(sine, -0.45, 0.45))
    # A sine spends 2 arccos(0.98) / pi = 12.8 % of its time within 2 % of its peak (both
    # signs); clipped at half its amplitude, |x| >= 0.98 * 0.45 for 1 - 2 arcsin(0.49) / pi = 67 %.
    assert clean == pytest.approx(1000 * 2 * math.acos(0.98) / math.pi, rel=0.05)
    assert clipped == pytest.approx(1000 * (1 - 2 * math.asin(0.49) / math.pi), rel=0.02)
    # Speech-like noise has a handful of samples near its peak.
    assert near_peak_per_1000(np.random.default_rng(1).standard_normal(80_000)) < 0.1
    assert near_peak_per_1000(np.zeros(10)) == 0.0


def test_clip_stats_and_summary() -> None:
    x = _sine(1000.0, seconds=2.0, amplitude=0.1)
    s = clip_stats(x, words=6)
    assert s.duration_s == pytest.approx(2.0)
    assert s.words_per_s == pytest.approx(3.0)
    assert s.rms_dbfs == pytest.approx(20 * math.log10(0.1 / math.sqrt(2)), abs=0.01)
    assert clip_stats(x).words_per_s is None
    clips = [ClipStats((0.1, 0.6, 0.2, 0.1, 0.0), snr, 0.1 * k, -20.0 - k, 1.0 + k, 2.0 + 0.1 * k)
             for k, snr in enumerate(range(10, 21))]
    summary = summarise(clips)
    assert summary.n == 11
    assert summary.duration_s[1] == pytest.approx(6.0)
    assert summary.snr_db == pytest.approx((11.0, 15.0, 19.0))
    assert summary.near_peak_per_1000 == pytest.approx(0.5)
    assert summary.bands == pytest.approx((0.1, 0.6, 0.2, 0.1, 0.0))
    with pytest.raises(DataError, match="no clips to summarise"):
        summarise([])


def test_distance_per_column() -> None:
    base = summarise([ClipStats((0.1, 0.6, 0.2, 0.1, 0.0), 20.0, 0.2, -15.0, 3.4, 3.2)])
    other = summarise([ClipStats((0.2, 0.5, 0.2, 0.1, 0.0), 25.0, 0.1, -25.0, 5.1, 2.4)])
    d = distance(other, base)
    assert d["bands"] == pytest.approx(10.0)  # 10 points moved from one band to another
    assert d["snr_db"] == pytest.approx(5.0) and d["rms_dbfs"] == pytest.approx(-10.0)
    assert d["near_peak_per_1000"] == pytest.approx(-0.5)
    assert d["duration_s"] == pytest.approx(0.5) and d["words_per_s"] == pytest.approx(-0.25)
    assert distance(base, base) == {"bands": 0.0, "snr_db": 0.0, "near_peak_per_1000": 0.0, "rms_dbfs": 0.0,
                                    "duration_s": 0.0, "words_per_s": 0.0}
    no_words = summarise([ClipStats((0.1, 0.6, 0.2, 0.1, 0.0), 20.0, 0.2, -15.0, 3.4)])
    assert distance(no_words, base)["words_per_s"] is None
