"""VAD and streaming segmentation on real TTS transmissions over static."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from atc_whisper.audio.segment import Segmenter
from atc_whisper.audio.vad import FRAME_SAMPLES, EnergyVAD, SileroVAD, load_vad, speech_probabilities
from atc_whisper.config import SegmentSettings
from atc_whisper.errors import ConfigError
from atc_whisper.live.simulate import synthetic_session
from atc_whisper.live.sources import Chunk

SR = 16_000
TEXTS = [
    "cleared to land runway two seven",
    "turn left heading two seven zero",
    "wind calm runway two seven cleared for takeoff",
]


@pytest.fixture(scope="module")
def session():
    return synthetic_session(TEXTS, gaps_s=[3.0, 2.0], noise_dbfs=-45.0, seed=3)


def segment(audio: np.ndarray, vad_name: str, chunk: int = 512, **segment: object):
    seg = Segmenter(load_vad(vad_name), SegmentSettings(**segment))  # type: ignore[arg-type]
    out = []
    for start in range(0, len(audio), chunk):
        out += seg.feed(Chunk(audio[start:start + chunk], start, 0.0))
    out += seg.flush()
    return out, seg


@pytest.mark.parametrize("vad_name", ["silero", "energy"])
def test_segments_match_planted_transmissions(session, vad_name):
    settings = SegmentSettings()
    pad_s = settings.speech_pad_ms / 1000
    found, _ = segment(session.audio, vad_name)
    assert len(found) == len(session.spans_s), [(t.start_s, t.end_s) for t in found]
    for t, (start, end) in zip(found, session.spans_s, strict=True):
        # Speech onset is found within a frame or two, and the pre-roll stays within the padding.
        assert start - pad_s - 0.07 <= t.start_s <= start + 0.1
        # The end may come a little early (a fading last syllable) but never eats into the next gap's far side.
        assert end - 0.25 <= t.end_s <= end + pad_s + 0.1
        assert t.reason == "silence"
        assert len(t.audio) == round((t.end_s - t.start_s) * SR)
    assert [t.index for t in found] == [0, 1, 2]


def test_silero_separates_speech_from_static(session):
    probs = speech_probabilities(session.audio, SileroVAD())
    frame_s = FRAME_SAMPLES / SR
    times = np.arange(len(probs)) * frame_s
    inside = np.zeros(len(probs), dtype=bool)
    for start, end in session.spans_s:
        inside |= (times >= start + 0.2) & (times + frame_s <= end - 0.2)
    outside = np.ones(len(probs), dtype=bool)
    for start, end in session.spans_s:
        outside &= (times + frame_s < start - 0.3) | (times > end + 0.5)
    assert probs[inside].mean() > 0.7
    assert probs[outside].max() < 0.3


@pytest.mark.parametrize("vad_name", ["silero", "energy"])
def test_whole_recording_probabilities_are_the_streaming_ones(session, vad_name):
    """A recording in memory is scored in blocks (Silero's sequence export): bit for bit what the
    frame-by-frame stream gives, and a stream's own state is left alone."""
    frames = [session.audio[i:i + FRAME_SAMPLES] for i in range(0, len(session.audio) - FRAME_SAMPLES + 1, FRAME_SAMPLES)]
    streaming, witness = load_vad(vad_name), load_vad(vad_name)
    streamed = np.array([streaming(f) for f in frames], dtype=np.float32)
    whole = streaming.probabilities(session.audio)
    np.testing.assert_array_equal(whole, streamed)
    if vad_name == "silero":
        assert streaming._sequence  # the block path ran, not the frame loop
    for f in frames:
        witness(f)
    assert streaming(frames[5]) == witness(frames[5])  # the stream carries on where it was


def test_segmentation_does_not_depend_on_chunk_size(session):
    small, _ = segment(session.audio, "silero", chunk=160)
    large, _ = segment(session.audio, "silero", chunk=7000)
    assert [(t.start_s, t.end_s) for t in small] == [(t.start_s, t.end_s) for t in large]
    for a, b in zip(small, large, strict=True):
        np.testing.assert_array_equal(a.audio, b.audio)


def test_squelch_click_is_ignored(session):
    audio = session.audio.copy()
    gap_start = session.spans_s[0][1] + 1.0
    click = slice(int(gap_start * SR), int((gap_start + 0.08) * SR))  # an 80 ms burst of loud noise
    audio[click] += np.random.default_rng(0).normal(0, 0.3, click.stop - click.start).astype(np.float32)
    found, seg = segment(audio, "energy")
    assert len(found) == len(TEXTS)
    assert seg.ignored_bursts >= 1


def test_long_transmission_is_cut_at_max_segment(session):
    start, end = session.spans_s[2]
    found, _ = segment(session.audio, "silero", max_segment_s=1.0)
    pieces = [t for t in found if t.end_s > start and t.start_s < end]
    assert len(pieces) >= 2
    assert all(t.duration_s <= 1.0 + FRAME_SAMPLES / SR for t in pieces)
    assert pieces[0].reason == "max_length"
    for a, b in itertools.pairwise(pieces):
        assert b.start_s == pytest.approx(a.end_s)  # the cut loses no audio


def test_stream_break_flushes_the_transmission_in_progress(session):
    start, end = session.spans_s[0]
    middle = int((start + end) / 2 * SR) // 512 * 512
    seg = Segmenter(load_vad("silero"), SegmentSettings())
    out = []
    for s in range(0, middle, 512):
        out += seg.feed(Chunk(session.audio[s:s + 512], s, 0.0))
    assert out == [] and seg.in_speech
    # The stream reconnects: what follows is later audio (the second transmission onwards).
    later = int(session.spans_s[0][1] * SR + SR)
    out += seg.feed(Chunk(np.zeros(0, np.float32), middle, 0.0, discontinuity=True))
    assert len(out) == 1 and out[0].reason == "break"
    assert out[0].end_s == pytest.approx(middle / SR)
    position = middle
    for s in range(later, len(session.audio), 512):
        out += seg.feed(Chunk(session.audio[s:s + 512], position, 0.0))
        position += len(session.audio[s:s + 512])
    out += seg.flush()
    assert len(out) == 3  # the cut one, then the second and third transmissions, each once
    assert [t.index for t in out] == [0, 1, 2]


def test_energy_vad_learns_the_noise_floor():
    rng = np.random.default_rng(1)
    vad = EnergyVAD()
    static = [vad(rng.normal(0, 0.02, FRAME_SAMPLES).astype(np.float32)) for _ in range(60)]
    tone = np.sin(2 * np.pi * 800 * np.arange(FRAME_SAMPLES) / SR).astype(np.float32) * 0.3
    assert max(static[10:]) < 0.5
    assert vad(tone) > 0.9


def test_unknown_vad_names_the_choices():
    with pytest.raises(ConfigError, match="silero, energy"):
        load_vad("webrtc")


# -- speculation: the closing pause is decoded before it is confirmed --------------------------

PAUSED = ["turn left heading two seven zero", "and descend flight level one two zero", "contact tower"]


@pytest.fixture(scope="module")
def paused_session():
    # A breath inside the first transmission (0.15 s gap + espeak's own trailing silence, under
    # 0.4 s without speech): longer than speech_pad_ms (200), shorter than min_silence_ms (400),
    # so it is offered early but must not end the transmission.
    return synthetic_session(PAUSED, gaps_s=[0.15, 2.0], noise_dbfs=-45.0, seed=5)


def segment_with_tentatives(audio: np.ndarray, speculative: bool):
    seg = Segmenter(load_vad("silero"), SegmentSettings(), speculative=speculative)
    finals, tentatives = [], []
    for start in range(0, len(audio), 512):
        finals += seg.feed(Chunk(audio[start:start + 512], start, 0.0))
        t = seg.take_tentative()
        if t is not None:
            tentatives.append((t, len(finals)))
    finals += seg.flush()
    return finals, tentatives


def test_tentative_transmissions_match_their_confirmation(paused_session):
    finals, tentatives = segment_with_tentatives(paused_session.audio, speculative=True)
    plain, none = segment_with_tentatives(paused_session.audio, speculative=False)
    assert none == []
    # Speculation changes nothing about the confirmed transmissions.
    assert [(t.start_s, t.end_s) for t in finals] == [(t.start_s, t.end_s) for t in plain]
    assert len(finals) == 2  # the breath did not split the first transmission
    keys = {t.key: t for t in finals}
    used = [t for t, _ in tentatives if t.key in keys]
    wasted = [t for t, _ in tentatives if t.key not in keys]
    # Every transmission that ended in silence was offered before it was confirmed,
    # with exactly the samples it was confirmed with.
    assert sorted(t.index for t in used) == [t.index for t in finals if t.reason == "silence"]
    for t, finals_before in tentatives:
        assert t.tentative and finals_before == t.index  # offered before its confirmation
        if t.key in keys:
            assert np.array_equal(t.audio, keys[t.key].audio)
    # The breath was offered too, as a shorter segment that ended up not being used.
    assert len(wasted) >= 1
    assert all(w.index == 0 and w.end_s < finals[0].end_s - 1.0 for w in wasted)
