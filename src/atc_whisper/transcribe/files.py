"""Transcription of audio files of any length, window by window.

Whisper hears at most 30 s at a time. Longer recordings are cut into windows of at most
the engine's window length, each cut placed at the quietest moment of the window's last
third (ATC transmissions are separated by silence, so a cut there rarely splits a word).
Window times are offset so every segment carries its position in the file. Windows that
are digitally silent are skipped without running the model.

Optional callsign knowledge (e.g. the aircraft on frequency from surveillance data) is used
twice: as a decoding prompt, and to snap a recognised callsign to the nearest known one.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..config import Settings
from .decoding import SAMPLE_RATE
from .engines import Engine
from .types import FileSegment, Transcription

#: Level of the loudest 30 ms frame below which a window is skipped as silent, dBFS
#: (the same floor the audio loader uses to call a whole file silent).
SILENT_WINDOW_DBFS = -60.0
#: Energy frames for choosing cut points and trimming silence: 20 ms.
FRAME_S = 0.02
#: Part of a window (from its end) searched for the quietest cut point.
CUT_SEARCH_FRACTION = 1 / 3


def _frame_rms(audio: np.ndarray, frame: int) -> np.ndarray:
    n = len(audio) // frame
    if n == 0:
        return np.array([float(np.sqrt(np.mean(np.square(audio, dtype=np.float64))))]) if len(audio) else np.zeros(1)
    frames = audio[: n * frame].reshape(n, frame).astype(np.float64)
    return np.sqrt(np.mean(frames * frames, axis=1))


def split_windows(audio: np.ndarray, window_s: float = 30.0, *, sample_rate: int = SAMPLE_RATE) -> list[tuple[int, int]]:
    """Cut ``audio`` into (start, end) sample ranges no longer than ``window_s``.

    Each cut falls at the quietest 20 ms frame in the last third of its window, so cuts
    land in the pauses between transmissions when there are any.
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


def transcribe_audio(
    audio: np.ndarray, engine: Engine, *, prompt: str | None = None, window_s: float | None = None
) -> Iterator[tuple[float, float, Transcription]]:
    """Transcribe mono 16 kHz ``audio`` of any length, window by window.

    Args:
        audio: The samples.
        engine: A loaded engine (its ``window_s`` caps the window length).
        prompt: Optional decoding prompt (e.g. known callsigns).
        window_s: Window length; defaults to the engine's (30 s for stock Whisper).

    Yields:
        (start_s, end_s, transcription) per non-silent window, in order; times are the
        audible part of the window, in seconds from the start of ``audio``.
    """
    window_s = min(window_s or engine.window_s, engine.window_s)
    for start, end in split_windows(audio, window_s):
        clip = audio[start:end]
        if len(clip) < int(0.05 * SAMPLE_RATE) or _loudest_dbfs(clip, SAMPLE_RATE) < SILENT_WINDOW_DBFS:
            continue
        result = engine.transcribe(clip, prompt=prompt)
        offset = start / SAMPLE_RATE
        lead, tail = speech_span(clip)
        yield offset + lead, offset + tail, result


def callsign_prompt(callsigns: Sequence[str]) -> str | None:
    """The decoding prompt for known callsigns: "Speedbird one two three, Lufthansa four five six."."""
    names = [c.strip() for c in callsigns if c.strip()]
    if not names:
        return None
    return ", ".join(n[:1].upper() + n[1:] for n in names) + "."


def _commands_as_dicts(commands: Any) -> list[dict[str, Any]]:
    out = []
    for command in commands or ():
        if hasattr(command, "as_dict"):
            out.append(dict(command.as_dict()))
        elif dataclasses.is_dataclass(command) and not isinstance(command, type):
            out.append(dataclasses.asdict(command))
        else:
            out.append({"type": str(command)})
    return out


def annotate(text: str, callsigns: Sequence[str] | None) -> tuple[str, str | None, list[dict[str, Any]], str | None]:
    """Snap the callsign (when ``callsigns`` is given) and parse the ATC content of ``text``.

    Returns:
        (text, callsign, commands, snapped_from): the text (normalised ATC form when a
        callsign was snapped), the parsed callsign in reference form, the parsed commands as
        dicts, and the callsign as heard when it was replaced by a known one.
    """
    from ..phraseology import parse_atc, snap_callsign

    if not text:
        return text, None, [], None
    snapped_from = None
    if callsigns:
        snapped_text, snapped = snap_callsign(text, list(callsigns))
        if snapped is not None and snapped_text != text:
            snapped_from = parse_atc(text).callsign or text
            text = snapped_text
    parsed = parse_atc(text)
    return text, parsed.callsign, _commands_as_dicts(parsed.commands), snapped_from


def transcribe_file(
    path: str | Path,
    engine: Engine,
    settings: Settings,
    *,
    callsigns: Sequence[str] | None = None,
    audio: np.ndarray | None = None,
    parse: bool = True,
    prompt: str | None = None,
) -> Iterator[FileSegment]:
    """Transcribe one audio file, yielding one :class:`FileSegment` per window with speech.

    Args:
        path: The audio file (any format/rate/channels :func:`load_audio` reads).
        engine: A loaded engine.
        settings: Resolved settings (``[decode]``).
        callsigns: Known callsigns: used as a prompt and to snap recognised callsigns.
        audio: The file's samples when already loaded (16 kHz mono); read from ``path`` otherwise.
        parse: Parse callsign and commands from each segment (needs the phraseology module).
        prompt: Text to condition decoding on (spelling, vocabulary, the previous transmission),
            as openai/whisper's ``initial_prompt``; the known callsigns' prompt follows it.

    Raises:
        AudioError: The file is missing, not audio, corrupt, empty or silent.
    """
    from ..audio.io import check_speech, load_audio

    if audio is None:
        audio = load_audio(path)
        check_speech(audio, path)
    parts = [p.strip() for p in (prompt, callsign_prompt(callsigns) if callsigns else None) if p and p.strip()]
    prompt = " ".join(parts) or None
    for start_s, end_s, result in transcribe_audio(audio, engine, prompt=prompt):
        text, callsign, snapped_from = result.text, None, None
        commands: list[dict[str, Any]] = []
        if parse:
            text, callsign, commands, snapped_from = annotate(result.text, callsigns)
        yield FileSegment(
            file=str(path),
            start_s=start_s,
            end_s=end_s,
            text=text,
            avg_logprob=result.avg_logprob,
            no_speech_prob=result.no_speech_prob,
            compression_ratio=result.compression_ratio,
            low_confidence=result.low_confidence,
            reasons=list(result.reasons),
            temperature=result.temperature,
            latency_s=result.latency_s,
            callsign=callsign,
            commands=commands,
            snapped_from=snapped_from,
        )
