"""The result types every transcription path returns, and how confidence is judged.

File transcription, live mode, evaluation and training's dev predictions all report the
same :class:`Transcription`, whichever engine produced it, so a confidence threshold set in
the config means the same thing everywhere. Confidence is three numbers, as openai/whisper
and faster-whisper compute them:

* ``avg_logprob``: mean log-probability of the emitted tokens (end-of-text included);
* ``no_speech_prob``: probability of Whisper's no-speech token right after
  ``<|startoftranscript|>``, before any text is chosen;
* ``compression_ratio``: UTF-8 length of the text over its zlib-compressed length; looping
  output ("climb climb climb ...") compresses far better than speech does.

A fine-tuned model can turn speech it cannot hear into fluent ATC phrases with invented
callsigns; these numbers are how a user sees that (see the finetuning-experiment note).
"""

from __future__ import annotations

import zlib
from dataclasses import asdict, dataclass, field
from typing import Any

from ..config import DecodeSettings

#: Reasons a transcript is flagged low-confidence (``Transcription.reasons``).
REASON_LOGPROB = "low_logprob"
REASON_NO_SPEECH = "no_speech"
REASON_REPETITION = "repetition"
REASON_LENGTH = "length_bound"


def compression_ratio(text: str) -> float:
    """zlib compression ratio of ``text`` (bytes / compressed bytes); 0.0 for empty text."""
    data = text.encode("utf-8")
    if not data:
        return 0.0
    return len(data) / len(zlib.compress(data))


def confidence_reasons(
    avg_logprob: float, no_speech_prob: float, ratio: float, decode: DecodeSettings
) -> list[str]:
    """Why a transcript with these confidence numbers should be flagged (empty: it is fine)."""
    reasons = []
    if avg_logprob < decode.confidence_threshold:
        reasons.append(REASON_LOGPROB)
    if no_speech_prob > decode.no_speech_threshold:
        reasons.append(REASON_NO_SPEECH)
    if ratio > decode.compression_ratio_threshold:
        reasons.append(REASON_REPETITION)
    return reasons


@dataclass
class Segment:
    """One stretch of transcribed audio with its own confidence.

    Attributes:
        start_s: Start time in seconds from the beginning of the audio (or file).
        end_s: End time in seconds.
        text: Transcribed text (stripped; empty when the stretch was judged silent).
        avg_logprob: Mean token log-probability (0 is certain; below about -1 is doubtful).
        no_speech_prob: Probability that the stretch holds no speech at all.
        compression_ratio: zlib compression ratio of the decoded text; high means looping.
        temperature: Sampling temperature of the decoding that was kept (0 = greedy/beam).
    """

    start_s: float
    end_s: float
    text: str
    avg_logprob: float
    no_speech_prob: float
    compression_ratio: float
    temperature: float = 0.0


@dataclass
class Transcription:
    """The transcript of one clip (at most one Whisper window), with confidence and timing.

    Attributes:
        text: The transcript, stripped.
        segments: The segments making up ``text`` (one per window for these short clips).
        avg_logprob: Mean token log-probability of the kept decoding.
        no_speech_prob: Probability of the no-speech token at the first decoding step.
        compression_ratio: zlib compression ratio of the decoded text (before any loop cut).
        duration_s: Audio duration in seconds.
        latency_s: Wall-clock seconds the engine spent on this clip (shared evenly in a batch).
        low_confidence: True when any of ``reasons`` applies; shown to users as a flag.
        engine: "ct2" or "hf".
        temperature: Temperature of the kept decoding (above 0 means fallback was needed).
        reasons: Why it is low-confidence: low_logprob, no_speech, repetition, length_bound.
    """

    text: str
    segments: list[Segment]
    avg_logprob: float
    no_speech_prob: float
    compression_ratio: float
    duration_s: float
    latency_s: float
    low_confidence: bool
    engine: str
    temperature: float = 0.0
    reasons: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict (floats rounded to 4 decimals)."""
        data = asdict(self)
        for key, value in list(data.items()):
            if isinstance(value, float):
                data[key] = round(value, 4)
        data["segments"] = [
            {k: round(v, 4) if isinstance(v, float) else v for k, v in seg.items()} for seg in data["segments"]
        ]
        return data


@dataclass
class FileSegment:
    """One transcribed stretch of an audio file: what ``atc-whisper transcribe`` prints.

    Attributes:
        file: The audio file, as given.
        start_s: Start of the stretch within the file, seconds.
        end_s: End of the stretch, seconds.
        text: Transcript (after callsign snapping when a callsign list was given).
        avg_logprob: Mean token log-probability.
        no_speech_prob: Probability that the stretch holds no speech.
        compression_ratio: zlib compression ratio of the decoded text.
        low_confidence: True when the transcript should not be trusted as is.
        reasons: Why it is low-confidence (see :class:`Transcription`).
        temperature: Temperature of the kept decoding.
        latency_s: Engine time spent on the stretch, seconds.
        callsign: Callsign parsed from the text (None when none was recognised).
        commands: Parsed ATC commands as plain dicts.
        snapped_from: The callsign as heard, when it was snapped to a known one.
        role: Who spoke: ``controller``, ``pilot`` or ``unknown`` (from the words;
            :func:`atc_whisper.phraseology.classify_role`).
        role_score: Confidence in the role, 0.5-1.
        exchange: Id of the exchange the transmission belongs to within its file (one
            callsign's instruction and replies), or None without a recognised callsign.
        readback: For a pilot's readback: ``{"status": "ok"|"mismatch", "instruction": index of
            the instruction's segment, "differences": [{"item", "expected", "heard", "kind"}]}``;
            else None (:mod:`atc_whisper.phraseology.conversation`, the check ``live`` makes).
    """

    file: str
    start_s: float
    end_s: float
    text: str
    avg_logprob: float
    no_speech_prob: float
    compression_ratio: float
    low_confidence: bool
    reasons: list[str] = field(default_factory=list)
    temperature: float = 0.0
    latency_s: float = 0.0
    callsign: str | None = None
    commands: list[dict[str, Any]] = field(default_factory=list)
    snapped_from: str | None = None
    role: str = "unknown"
    role_score: float = 0.5
    exchange: int | None = None
    readback: dict[str, Any] | None = None

    @property
    def readback_mismatch(self) -> bool:
        """Whether this transmission is a readback that differs from its instruction."""
        return bool(self.readback) and self.readback.get("status") == "mismatch"  # type: ignore[union-attr]

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready dict: file, start, end, text, confidence fields, callsign, commands, role,
        exchange and readback (the last four as ``live`` reports them)."""
        return {
            "file": self.file,
            "start": round(self.start_s, 3),
            "end": round(self.end_s, 3),
            "text": self.text,
            "avg_logprob": round(self.avg_logprob, 4),
            "no_speech_prob": round(self.no_speech_prob, 4),
            "compression_ratio": round(self.compression_ratio, 4),
            "low_confidence": self.low_confidence,
            "reasons": list(self.reasons),
            "temperature": self.temperature,
            "latency_s": round(self.latency_s, 4),
            "callsign": self.callsign,
            "commands": self.commands,
            "snapped_from": self.snapped_from,
            "role": self.role,
            "role_score": round(self.role_score, 3),
            "exchange": self.exchange,
            "readback": self.readback,
        }
