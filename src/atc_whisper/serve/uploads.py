"""``POST /v1/audio/transcriptions``: an uploaded recording through file transcription.

The upload is decoded by the toolkit's one audio loader and transcribed by
:func:`~atc_whisper.transcribe.files.transcribe_file` (one segment per transmission, the shared
decoding rules, callsign snapping, the ATC parser, speaker roles and readback checks) through the
server's engine at upload priority. What can be
wrong with an upload is answered with a 4xx naming it; nothing reaches the client as a
traceback.

Response formats follow OpenAI's transcription endpoint: ``json`` ``{"text"}``, ``text``,
``srt``, ``vtt`` and ``verbose_json`` (task, language, duration, text, segments), to which
``verbose_json`` adds the ATC reading: ``callsign``, ``commands`` and ``confidence`` overall and
per segment, and per segment the ``role``, ``exchange`` and ``readback`` check.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from ..audio.io import SAMPLE_RATE
from ..config import Settings
from ..errors import AudioError
from ..transcribe.types import FileSegment

RESPONSE_FORMATS = ("json", "text", "srt", "vtt", "verbose_json")
#: Language names and codes accepted: the engines decode English (ATC's language).
ENGLISH = ("en", "english", "")
_SUFFIX = re.compile(r"^\.[A-Za-z0-9]{1,8}$")


class UploadProblem(Exception):
    """An upload the server refuses: ``status`` (400, 413 …) and a message naming the fix."""

    def __init__(self, status: int, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.param = param


@dataclass
class UploadResult:
    """A transcribed upload."""

    segments: list[FileSegment]
    duration_s: float

    @property
    def text(self) -> str:
        return " ".join(s.text for s in self.segments if s.text)


def check_options(response_format: str, language: str | None, stream: str | None) -> None:
    """Refuse options the server cannot honour before reading any audio.

    Raises:
        UploadProblem: (400) an unknown format, a language other than English, or streaming.
    """
    if response_format not in RESPONSE_FORMATS:
        raise UploadProblem(400, f"response_format {response_format!r} is not supported; use one of "
                                 f"{', '.join(RESPONSE_FORMATS)}.", "response_format")
    if (language or "").strip().lower() not in ENGLISH:
        raise UploadProblem(400, f"language {language!r} is not supported: this server's models transcribe "
                                 "English (ATC phraseology); omit language or send 'en'.", "language")
    if (stream or "").strip().lower() in ("true", "1"):
        raise UploadProblem(400, "stream=true is not supported; the transcript comes back in one response.", "stream")


def transcribe_upload(data: IO[bytes], filename: str | None, engine: Any, settings: Settings, *,
                      prompt: str | None = None, callsigns: Sequence[str] | None = None) -> UploadResult:
    """Decode and transcribe one uploaded file.

    Args:
        data: The uploaded bytes (read from the start).
        filename: The client's file name (only its extension is used, as a decoding hint).
        engine: What decodes (a scheduler lane, or an engine).
        settings: Resolved settings (``[decode]``; ``serve.max_audio_s``).
        prompt: The client's prompt.
        callsigns: Known callsigns (``--callsigns`` or ``decode.callsigns_file``): prompt and snapping.

    Raises:
        UploadProblem: (400) not audio, corrupt, empty; (413) longer than ``serve.max_audio_s``.
    """
    from ..audio.io import load_audio
    from ..transcribe.files import transcribe_file

    shown = f"the upload {filename!r}" if filename else "the upload"
    suffix = Path(filename or "").suffix
    with tempfile.TemporaryDirectory(prefix="atc-upload-") as folder:
        path = Path(folder) / ("upload" + (suffix if _SUFFIX.match(suffix) else ".bin"))
        with path.open("wb") as out:
            shutil.copyfileobj(data, out, 1 << 20)
        if path.stat().st_size == 0:
            raise UploadProblem(400, f"{shown} is empty (0 bytes); send the audio file's contents.", "file")
        try:
            audio = load_audio(path)
        except AudioError as exc:
            raise UploadProblem(400, str(exc).replace(f"audio file {path}", shown).replace(str(path), shown),
                                "file") from None
        duration_s = len(audio) / SAMPLE_RATE
        limit = settings.serve.max_audio_s
        if duration_s > limit:
            raise UploadProblem(413, f"{shown} lasts {duration_s:.1f} s, longer than this server's limit of "
                                     f"{limit:g} s (serve.max_audio_s); cut it into shorter recordings.", "file")
        segments = list(transcribe_file(path, engine, settings, callsigns=callsigns, audio=audio, prompt=prompt))
    for segment in segments:
        segment.file = filename or "upload"
    return UploadResult(segments, duration_s)


def verbose_json(result: UploadResult, model: str) -> dict[str, Any]:
    """OpenAI's ``verbose_json`` plus the ATC fields."""
    segments = []
    for i, s in enumerate(result.segments):
        segments.append({
            "id": i, "seek": round(s.start_s * 100), "start": round(s.start_s, 3), "end": round(s.end_s, 3),
            "text": s.text, "tokens": [], "temperature": s.temperature, "avg_logprob": round(s.avg_logprob, 4),
            "compression_ratio": round(s.compression_ratio, 4), "no_speech_prob": round(s.no_speech_prob, 4),
            "low_confidence": s.low_confidence, "reasons": list(s.reasons), "callsign": s.callsign,
            "commands": s.commands, "role": s.role, "role_score": round(s.role_score, 3), "exchange": s.exchange,
            "readback": s.readback,
        })
    spoken = [s for s in result.segments if s.text]
    reasons = sorted({r for s in result.segments for r in s.reasons})
    total = sum(s.end_s - s.start_s for s in spoken) or 1.0
    return {
        "task": "transcribe", "language": "english", "duration": round(result.duration_s, 3), "text": result.text,
        "segments": segments,
        "callsign": next((s.callsign for s in result.segments if s.callsign), None),
        "commands": [c for s in result.segments for c in s.commands],
        "confidence": {
            "low_confidence": any(s.low_confidence for s in result.segments),
            "reasons": reasons,
            # Duration-weighted, as a long confident segment outweighs a short doubtful one.
            "avg_logprob": round(sum(s.avg_logprob * (s.end_s - s.start_s) for s in spoken) / total, 4) if spoken else None,
            "no_speech_prob": round(max(s.no_speech_prob for s in result.segments), 4) if result.segments else None,
        },
        "model": model,
    }


def render(result: UploadResult, response_format: str, model: str) -> tuple[str | dict[str, Any], str]:
    """The response body and its media type for ``response_format``."""
    from ..transcribe.formats import srt_document, vtt_document

    if response_format == "json":
        return {"text": result.text}, "application/json"
    if response_format == "verbose_json":
        return verbose_json(result, model), "application/json"
    if response_format == "srt":
        return srt_document(result.segments), "text/plain; charset=utf-8"
    if response_format == "vtt":
        return vtt_document(result.segments), "text/vtt; charset=utf-8"
    return result.text + "\n", "text/plain; charset=utf-8"
