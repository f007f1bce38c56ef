"""The JSON shapes of the HTTP API (pydantic models: they make the OpenAPI schema) and the
one function that turns a catalogue row into the transmission the page and the API show."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class Difference(BaseModel):
    """One item a readback got wrong."""

    model_config = ConfigDict(extra="allow")
    item: str = Field(description="What was read back: level, heading, frequency, squawk …")
    expected: str | None = Field(None, description="What the instruction said.")
    heard: str | None = Field(None, description="What the readback said (None when missing).")
    kind: str = Field(description="changed or missing.")


class Readback(BaseModel):
    """The readback check of a pilot transmission against the instruction it answers."""

    model_config = ConfigDict(extra="allow")
    status: Literal["ok", "mismatch"]
    instruction: int | None = Field(None, description="Index of the instruction transmission it answers.")
    differences: list[Difference] = Field(default_factory=list)


class Transmission(BaseModel):
    """One transmission as stored in the catalogue's ``transcripts`` table (heard live, or a segment of a
    file transcribed with ``transcribe --catalogue``, which also carries ``offset_s``)."""

    model_config = ConfigDict(extra="allow")
    id: int | None = Field(description="Catalogue row id (None when the server runs without the catalogue).")
    frequency: str = Field(description="The frequency (source) it was heard on.")
    started_at: str = Field(description="Wall-clock start, ISO 8601 UTC.")
    duration_s: float
    text: str = Field(description="What the model heard (never overwritten).")
    text_corrected: str | None = Field(None, description="A listener's correction, when there is one.")
    corrected_at: str | None = None
    callsign: str | None = None
    commands: list[dict[str, Any]] = Field(default_factory=list)
    low_confidence: bool = False
    reasons: list[str] = Field(default_factory=list, description="low_logprob, no_speech, repetition, length_bound.")
    avg_logprob: float | None = None
    no_speech_prob: float | None = None
    latency_s: float | None = Field(None, description="End of the transmission to transcript ready, s.")
    audio_url: str | None = Field(None, description=(
        "Where its saved audio plays from (None when not saved, and for file transcripts: only the live "
        "folder is served)."))
    offset_s: float | None = Field(None, description="Start within its audio file, s (file transcripts only).")
    role: str | None = Field(None, description="controller, pilot or unknown, when the role classifier ran.")
    role_score: float | None = None
    exchange: int | None = Field(None, description=(
        "The exchange (instruction + readbacks) it belongs to; ids count within one live session."))
    readback: Readback | None = None
    session: str | None = Field(None, description=(
        "The live session it was heard in (e.g. 20261124T210500Z_tower): with the frequency and exchange "
        "it names one exchange across server restarts. None for file transcripts."))


class TransmissionPage(BaseModel):
    """One page of a transcript search."""

    items: list[Transmission]
    total: int = Field(description="Matches in all.")
    limit: int
    offset: int


class Correction(BaseModel):
    """A correction of a transcript: the text as it should have been heard."""

    model_config = ConfigDict(extra="forbid")
    text: str | None = Field(
        description="The corrected transcript; null (or the machine text) removes the correction.", max_length=2000,
    )


class CorrectionsExported(BaseModel):
    """Where the corrections manifest was written."""

    path: str
    rows: int = Field(description="Corrected transmissions in the manifest.")
    without_audio: int = Field(description="Corrected transcripts left out: their audio was not saved.")
    import_command: str


class FrequencyStatus(BaseModel):
    """A frequency the server listens to."""

    model_config = ConfigDict(extra="allow")
    name: str
    kind: str
    state: str = Field(description="opened, listening, ended (the file is over), stopped or error.")
    message: str = ""


class Health(BaseModel):
    """What the server is doing."""

    status: Literal["ok"]
    version: str
    model: str
    engine: str
    uptime_s: float
    frequencies: list[FrequencyStatus]
    decoder: dict[str, Any] = Field(description="Decodes, busy and waiting time per priority (live, api).")
    uploads_in_progress: int
    pages_connected: int
    recent: int = Field(description="Transmissions per frequency the page loads when it opens (serve.recent).")


class TranscriptionJson(BaseModel):
    """``response_format=json``: OpenAI's shape."""

    text: str


class VerboseSegment(BaseModel):
    """A segment of ``verbose_json``: OpenAI's fields plus the ATC ones."""

    id: int
    seek: int
    start: float
    end: float
    text: str
    tokens: list[int]
    temperature: float
    avg_logprob: float
    compression_ratio: float
    no_speech_prob: float
    low_confidence: bool
    reasons: list[str]
    callsign: str | None
    commands: list[dict[str, Any]]


class Confidence(BaseModel):
    """How far to trust the transcript as a whole."""

    low_confidence: bool
    reasons: list[str]
    avg_logprob: float | None
    no_speech_prob: float | None


class VerboseTranscription(BaseModel):
    """``response_format=verbose_json``: OpenAI's fields, plus callsign, commands and confidence."""

    task: Literal["transcribe"]
    language: str
    duration: float
    text: str
    segments: list[VerboseSegment]
    callsign: str | None = Field(description="The callsign of the first segment that names one.")
    commands: list[dict[str, Any]]
    confidence: Confidence
    model: str


def transmission_json(row: dict[str, Any]) -> dict[str, Any]:
    """A catalogue ``transcripts`` row (``Catalogue.transcript``, ``search_transcripts``) as the API and the page show it.

    Fields the live runner adds later (speaker role, exchange, readback …) pass through as
    they are; the absolute audio path is replaced by the URL that serves it.
    """
    # text_norm is the search's normalised copy of ``text``, not something to show.
    out = {k: v for k, v in row.items() if k not in ("audio_path", "extra", "source", "text_norm")}
    out["frequency"] = row.get("source")
    out["low_confidence"] = bool(row.get("low_confidence"))
    out["reasons"] = list(row.get("reasons") or [])
    audio = row.get("audio_path")
    live_audio = audio is not None and row.get("offset_s") is None  # a file transcript's audio is the archive's
    out["audio_url"] = f"/api/transmissions/{row['id']}/audio" if live_audio and row.get("id") else None
    for key in ("role", "role_score", "exchange", "readback", "session", "text_corrected", "corrected_at"):
        out.setdefault(key, None)
    return out


def audio_media_type(path: Path) -> str:
    """The Content-Type of a saved transmission."""
    return {".wav": "audio/wav", ".flac": "audio/flac", ".mp3": "audio/mpeg", ".ogg": "audio/ogg"}.get(
        path.suffix.lower(), "application/octet-stream")
