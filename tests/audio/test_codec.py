"""Low-bitrate codec round trips are aligned, deterministic and audibly lossy."""

from __future__ import annotations

import numpy as np
import pytest

from atc_whisper.audio.codec import codec_roundtrip
from atc_whisper.audio.io import SAMPLE_RATE
from atc_whisper.errors import AudioError


@pytest.fixture(scope="module")
def speech() -> np.ndarray:
    from atc_whisper.audio.tts import synthesize

    clip = synthesize("speedbird one two three, contact london control one two seven decimal eight two five", "espeak:en-gb")
    return 0.5 * clip / np.max(np.abs(clip))


@pytest.mark.parametrize(("codec", "kbps"), [("mp3", 16), ("mp3", 32), ("opus", 8), ("opus", 16)])
def test_roundtrip_is_aligned_same_length_and_deterministic(speech: np.ndarray, codec: str, kbps: int) -> None:
    out = codec_roundtrip(speech, codec, kbps)
    assert out.size == speech.size and out.dtype == np.float32
    assert np.array_equal(out, codec_roundtrip(speech, codec, kbps))
    error_db = 10 * np.log10(np.sum((out - speech) ** 2) / np.sum(speech**2))
    assert -40 < error_db < -4, error_db  # lossy, but the same speech, sample for sample
    shifted = np.roll(out, 40)  # 2.5 ms off: much worse, so the delay really was removed
    assert 10 * np.log10(np.sum((shifted - speech) ** 2) / np.sum(speech**2)) > error_db + 3


def test_lower_bitrate_loses_more(speech: np.ndarray) -> None:
    def error(kbps: int) -> float:
        return float(np.sum((codec_roundtrip(speech, "opus", kbps) - speech) ** 2))

    assert error(8) > error(24)


def test_opus_at_low_bitrate_cuts_the_highs() -> None:
    noise = np.random.default_rng(0).standard_normal(2 * SAMPLE_RATE).astype(np.float32) * 0.1
    out = codec_roundtrip(noise, "opus", 8)
    spectrum = np.abs(np.fft.rfft(out)) ** 2
    freqs = np.fft.rfftfreq(out.size, 1 / SAMPLE_RATE)
    assert spectrum[freqs > 5000].sum() / spectrum.sum() < 0.2  # white noise had ~37 % above 5 kHz


def test_bad_codec_and_empty_audio() -> None:
    with pytest.raises(AudioError, match="unknown codec"):
        codec_roundtrip(np.zeros(100, dtype=np.float32), "flac", 16)
    assert codec_roundtrip(np.zeros(0, dtype=np.float32), "mp3", 16).size == 0
