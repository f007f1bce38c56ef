"""Segmentation into transmissions over a whole recording (``segment_array``) is the streaming
segmenter's, chunk size and all: the same transmissions, sample for sample."""

from __future__ import annotations

import numpy as np
import pytest

from atc_whisper.audio.segment import Chunk, Segmenter, segment_array
from atc_whisper.audio.vad import load_vad
from atc_whisper.config import SegmentSettings
from atc_whisper.live.simulate import synthetic_session

TEXTS = ["speedbird one two three climb flight level three five zero", "roger", "contact tower one one eight decimal seven"]


@pytest.fixture(scope="module")
def session():
    return synthetic_session(TEXTS, gaps_s=1.5, noise_dbfs=-45.0, seed=5)


def _fed(audio: np.ndarray, settings: SegmentSettings, chunk: int) -> list:
    segmenter = Segmenter(load_vad(settings.vad), settings, clock=lambda: 0.0, speculative=False)
    out = []
    for start in range(0, len(audio), chunk):
        block = audio[start:start + chunk]
        out += segmenter.feed(Chunk(block, start, (start + len(block)) / 16_000))
    return out + segmenter.flush()


@pytest.mark.parametrize("vad", ["silero", "energy"])
def test_segment_array_matches_feeding_chunks(session, vad):
    settings = SegmentSettings(vad=vad)
    whole = segment_array(session.audio, settings)
    fed = _fed(session.audio, settings, chunk=1_600)  # 100 ms chunks, as a sound card delivers them
    assert len(whole) == len(TEXTS)  # one transmission per utterance, nothing split or merged
    assert [(t.start_s, t.end_s, t.reason) for t in whole] == [(t.start_s, t.end_s, t.reason) for t in fed]
    for a, b in zip(whole, fed, strict=True):
        assert np.array_equal(a.audio, b.audio)
    for t, (start, end) in zip(whole, session.spans_s, strict=True):
        assert t.start_s <= start + 0.25 and t.end_s >= end - 0.25  # the speech is (nearly all) inside it
    assert [t.index for t in whole] == list(range(len(TEXTS)))


def test_segment_array_stamps_stream_time_and_cuts_long_speech(session):
    settings = SegmentSettings(vad="energy", max_segment_s=2.0)
    cut = segment_array(session.audio, settings, start_wall=1000.0)
    assert any(t.reason == "max_length" for t in cut)
    assert all(t.duration_s <= 2.0 + settings.speech_pad_ms / 1000 + 0.05 for t in cut)
    assert all(t.wall_start == pytest.approx(1000.0 + t.start_s, abs=0.04) for t in cut)
