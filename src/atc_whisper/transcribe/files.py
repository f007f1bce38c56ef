"""Transcription of audio files of any length: one segment per radio transmission.

A radio recording is a string of short transmissions separated by silence or static. By default
(``decode.segmentation = "vad"``) a file is cut the way ``live`` cuts a stream: the whole file
goes through the one segmenter (:func:`atc_whisper.audio.segment.segment_array`, the
``[segment]`` settings), so a file and its live replay give the same transmissions. Only those
reach the model: static between transmissions is never decoded, so no text is invented over
it. A transmission longer than the engine's window is split at its quietest moment
(:func:`split_windows`). The fixed-window mode of earlier versions (``"window"``: windows of up
to 30 s cut at quiet moments, digitally silent ones skipped) stays for audio that is not radio.

Decoding is batched without giving up streaming: the file is segmented first (the voice
detector is cheap next to Whisper), then consecutive transmissions are decoded in blocks, each
through the engine's ``transcribe_batch`` (:func:`~atc_whisper.transcribe.decoding.decode_clips`:
length-sorted batches, the duration bound, temperature fallback and confidence flags), and each
block's segments are yielded in file order as soon as it is done.

Each transmission is then read as ATC (:mod:`.annotate`: callsign snapping to an optional list
of known callsigns, parsing) and followed by one :class:`~atc_whisper.phraseology.conversation.Conversation`
per file, in order: speaker role, exchange and readback check, as ``live`` reports them.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..audio.io import SAMPLE_RATE
from ..config import Settings
from .annotate import Annotation, annotate, callsign_prompt
from .engines import Engine
from .types import FileSegment, Transcription

#: Level of the loudest 30 ms frame below which a window is skipped as silent, dBFS
#: (the same floor the audio loader uses to call a whole file silent).
SILENT_WINDOW_DBFS = -60.0
#: Energy frames for choosing cut points and trimming silence: 20 ms.
FRAME_S = 0.02
#: Part of a window (from its end) searched for the quietest cut point.
CUT_SEARCH_FRACTION = 1 / 3
#: Clips shorter than this are not decoded (a stray frame at a window's end), seconds.
MIN_CLIP_S = 0.05
#: Transmissions decoded per block: this many engine batches. Larger blocks sort more clips by
#: length (less padding in a batch); smaller ones stream the first segments sooner.
BLOCK_BATCHES = 4
SEGMENTATIONS = ("vad", "window")


def _frame_rms(audio: np.ndarray, frame: int) -> np.ndarray:
    n = len(audio) // frame
    if n == 0:
        return np.array([float(np.sqrt(np.mean(np.square(audio, dtype=np.float64))))]) if len(audio) else np.zeros(1)
    frames = audio[: n * frame].reshape(n, frame).astype(np.float64)
    return np.sqrt(np.mean(frames * frames, axis=1))


def split_windows(audio: np.ndarray, window_s: float = 30.0, *, sample_rate: int = SAMPLE_RATE) -> list[tuple[int, int]]:
    """Cut ``audio`` into (start, end) sample ranges no longer than ``window_s``.

    Each cut falls at the quietest 20 ms frame in the last third of its window, so cuts
    land in the pauses between transmissions (or words) when there are any.
    """
    window = int(window_s * sample_rate)
    if len(audio) <= window:
        return [(0, len(audio))]
    frame = max(1, int(FRAME_S * sample_rate))
    ranges = []
    start = 0
    while len(audio) - start > window:
        search_from = start + int(window * (1 - CUT_SEARCH_FRACTION))
        region = audio[search_from : start + window]
        rms = _frame_rms(region, frame)
        # The latest of the quietest frames keeps windows long (fewer cuts).
        quietest = len(rms) - 1 - int(np.argmin(rms[::-1]))
        cut = min(search_from + quietest * frame + frame // 2, start + window)
        ranges.append((start, cut))
        start = cut
    ranges.append((start, len(audio)))
    return ranges


def _loudest_dbfs(audio: np.ndarray, sample_rate: int) -> float:
    loudest = float(np.max(_frame_rms(audio, max(1, int(0.03 * sample_rate))))) if len(audio) else 0.0
    return 20 * math.log10(loudest) if loudest > 0 else -math.inf


def speech_span(audio: np.ndarray, *, sample_rate: int = SAMPLE_RATE, below_peak_db: float = 35.0) -> tuple[float, float]:
    """(start_s, end_s) of the audible part: frames within ``below_peak_db`` of the loudest."""
    frame = max(1, int(FRAME_S * sample_rate))
    rms = _frame_rms(audio, frame)
    peak = float(rms.max()) if rms.size else 0.0
    if peak <= 0:
        return 0.0, len(audio) / sample_rate
    loud = np.flatnonzero(rms >= peak * 10 ** (-below_peak_db / 20))
    start = max(0.0, (int(loud[0]) - 5) * frame / sample_rate)  # keep 100 ms of lead-in
    end = min(len(audio) / sample_rate, (int(loud[-1]) + 6) * frame / sample_rate)
    return start, end


@dataclass(frozen=True)
class Cut:
    """One stretch of a file that goes to the model.

    Attributes:
        start: First sample.
        end: Sample after the last.
        start_s: Where the segment is reported to start, seconds (a transmission: its first
            sample, padding included; a window: its audible part).
        end_s: Where it is reported to end, seconds.
        reason: Why it ended: ``silence``, ``max_length``, ``flush`` (end of file) or
            ``break`` for a transmission (see :class:`~atc_whisper.audio.segment.Transmission`),
            ``window`` for a fixed window, ``split`` when a transmission longer than the
            engine's window was split.
    """

    start: int
    end: int
    start_s: float
    end_s: float
    reason: str


def cut_file(audio: np.ndarray, settings: Settings, *, window_s: float, segmentation: str | None = None,
             vad: object | None = None) -> list[Cut]:
    """Where a file is cut before decoding, in order (see the module docstring).

    Args:
        audio: float32 mono 16 kHz samples of the whole file.
        settings: Resolved settings (``[segment]`` and ``decode.segmentation``).
        window_s: Longest clip the engine takes, seconds.
        segmentation: ``vad`` or ``window``; default ``settings.decode.segmentation``.
        vad: The voice detector to use (default: ``settings.segment.vad``, loaded fresh).

    Returns:
        The stretches to decode; none for a file without speech.

    Raises:
        ValueError: An unknown ``segmentation``.
    """
    mode = segmentation or settings.decode.segmentation
    if mode == "window":
        return _window_cuts(audio, window_s)
    if mode != "vad":
        raise ValueError(f"unknown segmentation {mode!r}; choose one of {', '.join(SEGMENTATIONS)}")
    from ..audio.segment import segment_array

    cuts = []
    for t in segment_array(audio, settings.segment, vad=vad):  # type: ignore[arg-type]
        first = t.start_sample
        pieces = split_windows(t.audio, window_s)
        for start, end in pieces:
            reason = t.reason if end == len(t.audio) else "split"
            cuts.append(Cut(first + start, first + end, (first + start) / SAMPLE_RATE, (first + end) / SAMPLE_RATE,
                            reason))
    return cuts


def _window_cuts(audio: np.ndarray, window_s: float) -> list[Cut]:
    """Fixed windows (the mode ``"window"``): digitally silent ones skipped, times trimmed to the audible part."""
    cuts = []
    for start, end in split_windows(audio, window_s):
        clip = audio[start:end]
        if len(clip) < int(MIN_CLIP_S * SAMPLE_RATE) or _loudest_dbfs(clip, SAMPLE_RATE) < SILENT_WINDOW_DBFS:
            continue
        lead, tail = speech_span(clip)
        cuts.append(Cut(start, end, start / SAMPLE_RATE + lead, start / SAMPLE_RATE + tail, "window"))
    return cuts


def decode_in_order(clips: Sequence[np.ndarray], engine: Engine, *, prompt: str | None = None,
                    block: int | None = None) -> Iterator[Transcription]:
    """Decode ``clips`` in blocks of consecutive clips (each batched by the engine); yield in input order.

    Args:
        clips: 16 kHz mono clips, each at most ``engine.window_s`` long.
        engine: A loaded engine.
        prompt: Decoding prompt for every clip.
        block: Clips per ``transcribe_batch`` call (default :data:`BLOCK_BATCHES` engine batches).
    """
    size = block or BLOCK_BATCHES * int(getattr(engine, "batch_size", 8))
    for first in range(0, len(clips), max(1, size)):
        yield from engine.transcribe_batch(list(clips[first:first + size]), prompt=prompt)


def transcribe_audio(
    audio: np.ndarray,
    engine: Engine,
    settings: Settings | None = None,
    *,
    prompt: str | None = None,
    segmentation: str | None = None,
) -> Iterator[tuple[Cut, Transcription]]:
    """Transcribe mono 16 kHz ``audio`` of any length: cut it (:func:`cut_file`), decode in blocks.

    Args:
        audio: The samples.
        engine: A loaded engine (its ``window_s`` caps the clip length).
        settings: Resolved settings (default: the built-in defaults).
        prompt: Optional decoding prompt (e.g. known callsigns).
        segmentation: ``vad`` or ``window``; default ``settings.decode.segmentation``.

    Yields:
        (cut, transcription) per transmission (or window), in file order.
    """
    settings = settings or Settings()
    cuts = cut_file(audio, settings, window_s=engine.window_s, segmentation=segmentation)
    clips = [audio[c.start:c.end] for c in cuts]
    yield from zip(cuts, decode_in_order(clips, engine, prompt=prompt), strict=True)


def transcribe_file(
    path: str | Path,
    engine: Engine,
    settings: Settings,
    *,
    callsigns: Sequence[str] | None = None,
    audio: np.ndarray | None = None,
    parse: bool = True,
    prompt: str | None = None,
    segmentation: str | None = None,
) -> Iterator[FileSegment]:
    """Transcribe one audio file, yielding one :class:`FileSegment` per transmission, in order.

    Args:
        path: The audio file (any format/rate/channels :func:`load_audio` reads).
        engine: A loaded engine.
        settings: Resolved settings (``[decode]``, ``[segment]``, ``[conversation]``).
        callsigns: Known callsigns: used as a prompt and to snap recognised callsigns.
        audio: The file's samples when already loaded (16 kHz mono); read from ``path`` otherwise.
        parse: Parse callsign and commands and follow the conversation (role, exchange, readback).
        prompt: Text to condition decoding on (spelling, vocabulary, the previous transmission),
            as openai/whisper's ``initial_prompt``; the known callsigns' prompt follows it.
        segmentation: ``vad`` (transmissions) or ``window`` (fixed windows); default
            ``decode.segmentation``.

    Raises:
        AudioError: The file is missing, not audio, corrupt, empty or silent.
    """
    from ..audio.io import check_speech, load_audio
    from ..phraseology.conversation import Conversation

    if audio is None:
        audio = load_audio(path)
        check_speech(audio, path)
    parts = [p.strip() for p in (prompt, callsign_prompt(callsigns) if callsigns else None) if p and p.strip()]
    prompt = " ".join(parts) or None
    mode = segmentation or settings.decode.segmentation
    conversation = Conversation.from_settings(settings) if parse else None
    index = 0
    for cut, result in transcribe_audio(audio, engine, settings, prompt=prompt, segmentation=mode):
        if mode == "vad" and not result.text:
            continue  # the model judged it silent (a noise burst the detector let through): not a transmission
        facts = annotate(result.text, callsigns) if parse else Annotation(result.text)
        segment = FileSegment(
            file=str(path),
            start_s=cut.start_s,
            end_s=cut.end_s,
            text=facts.text,
            avg_logprob=result.avg_logprob,
            no_speech_prob=result.no_speech_prob,
            compression_ratio=result.compression_ratio,
            low_confidence=result.low_confidence,
            reasons=list(result.reasons),
            temperature=result.temperature,
            latency_s=result.latency_s,
            callsign=facts.callsign,
            commands=facts.commands,
            snapped_from=facts.snapped_from,
        )
        if conversation is not None:
            entry = conversation.add(facts.text, start_s=cut.start_s, end_s=cut.end_s, index=index,
                                     parsed=facts.parsed)
            segment.role, segment.role_score, segment.exchange = entry.role, entry.role_score, entry.exchange
            segment.readback = entry.readback.as_dict() if entry.readback is not None else None
        index += 1
        yield segment
