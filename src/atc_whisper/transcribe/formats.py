"""Output formats of file transcription: plain text, JSON lines, JSON, SRT and WebVTT subtitles.

Writers stream: text and JSON lines are written segment by segment as the engine produces
them, so a long batch shows progress; JSON (one document), SRT and VTT are written at the end.
Low-confidence segments are flagged visibly in text and subtitle output (a controller must see
that a callsign may be invented) and carry ``low_confidence`` and ``reasons`` in JSON.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import TextIO

from .types import FileSegment

FORMATS = ("text", "jsonl", "json", "srt", "vtt")
#: Marker appended to low-confidence lines in text and SRT output.
LOW_CONFIDENCE_MARK = "[LOW CONFIDENCE"


def format_timestamp(seconds: float, *, decimal_marker: str = ",", always_hours: bool = True) -> str:
    """``HH:MM:SS,mmm`` (SRT style) for ``seconds``; negative values clamp to 0."""
    millis = max(0, round(seconds * 1000))
    hours, millis = divmod(millis, 3_600_000)
    minutes, millis = divmod(millis, 60_000)
    secs, millis = divmod(millis, 1000)
    head = f"{hours:02d}:" if always_hours or hours else ""
    return f"{head}{minutes:02d}:{secs:02d}{decimal_marker}{millis:03d}"


def _flag(segment: FileSegment) -> str:
    if not segment.low_confidence:
        return ""
    return f"  {LOW_CONFIDENCE_MARK}: {', '.join(segment.reasons) or 'check'}]"


def text_line(segment: FileSegment, *, show_file: bool) -> str:
    """``[00:00:01.200 -> 00:00:05.800] text`` with the file name first when several files."""
    span = (f"[{format_timestamp(segment.start_s, decimal_marker='.')} -> "
            f"{format_timestamp(segment.end_s, decimal_marker='.')}]")
    head = f"{segment.file} {span}" if show_file else span
    return f"{head} {segment.text or '(no speech)'}{_flag(segment)}"


def jsonl_line(segment: FileSegment) -> str:
    """One JSON object on one line (see :meth:`FileSegment.as_dict`)."""
    return json.dumps(segment.as_dict(), ensure_ascii=False)


def srt_document(segments: Iterable[FileSegment]) -> str:
    """SRT subtitles: numbered cues ``HH:MM:SS,mmm --> HH:MM:SS,mmm`` and the text."""
    blocks = []
    for index, segment in enumerate((s for s in segments if s.text), start=1):
        blocks.append(
            f"{index}\n{format_timestamp(segment.start_s)} --> {format_timestamp(segment.end_s)}\n"
            f"{segment.text}{_flag(segment)}\n"
        )
    return "\n".join(blocks)


def vtt_document(segments: Iterable[FileSegment]) -> str:
    """WebVTT subtitles: a ``WEBVTT`` header, then cues ``MM:SS.mmm --> MM:SS.mmm`` and the text.

    As openai/whisper writes them: hours appear only past the first hour, the decimal
    marker is a dot, cues are not numbered.
    """
    blocks = ["WEBVTT\n"]
    for segment in (s for s in segments if s.text):
        start = format_timestamp(segment.start_s, decimal_marker=".", always_hours=False)
        end = format_timestamp(segment.end_s, decimal_marker=".", always_hours=False)
        blocks.append(f"{start} --> {end}\n{segment.text}{_flag(segment)}\n")
    return "\n".join(blocks)


_SRT_TIME = re.compile(r"(\d+):(\d\d):(\d\d)[,.](\d\d\d)")


def _srt_seconds(stamp: str) -> float:
    match = _SRT_TIME.fullmatch(stamp.strip())
    if not match:
        raise ValueError(f"not an SRT timestamp: {stamp!r}")
    hours, minutes, secs, millis = (int(g) for g in match.groups())
    return hours * 3600 + minutes * 60 + secs + millis / 1000


def parse_srt(text: str) -> list[tuple[float, float, str]]:
    """Read SRT cues back as (start_s, end_s, text); raises ValueError on malformed input."""
    cues = []
    for block in re.split(r"\n\s*\n", text.strip()):
        lines = block.strip().splitlines()
        if not lines:
            continue
        if len(lines) < 3 or not lines[0].strip().isdigit() or "-->" not in lines[1]:
            raise ValueError(f"malformed SRT cue: {block!r}")
        start, end = lines[1].split("-->")
        cues.append((_srt_seconds(start), _srt_seconds(end), "\n".join(lines[2:])))
    return cues


class TranscriptWriter:
    """Write segments to ``out`` in one of :data:`FORMATS`; call :meth:`close` at the end."""

    def __init__(self, out: TextIO, fmt: str, *, show_file: bool = False) -> None:
        """Args: out: text stream; fmt: text, jsonl, json, srt or vtt; show_file: prefix file names (text)."""
        if fmt not in FORMATS:
            raise ValueError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
        self.out = out
        self.fmt = fmt
        self.show_file = show_file
        self._held: list[FileSegment] = []

    def write(self, segment: FileSegment) -> None:
        """Write (text, jsonl) or hold (json, srt, vtt) one segment."""
        if self.fmt == "text":
            self.out.write(text_line(segment, show_file=self.show_file) + "\n")
            self.out.flush()
        elif self.fmt == "jsonl":
            self.out.write(jsonl_line(segment) + "\n")
            self.out.flush()
        else:
            self._held.append(segment)

    def close(self) -> None:
        """Write what was held (json, srt, vtt) and flush."""
        if self.fmt == "json":
            json.dump([s.as_dict() for s in self._held], self.out, ensure_ascii=False, indent=2)
            self.out.write("\n")
        elif self.fmt == "srt":
            self.out.write(srt_document(self._held))
        elif self.fmt == "vtt":
            self.out.write(vtt_document(self._held))
        self.out.flush()
