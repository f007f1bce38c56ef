"""Output formats of file transcription: text, JSON lines, JSON, SRT, WebVTT, TSV and a conversation view.

Writers stream: text, JSON lines, TSV and the conversation view are written segment by segment
as the engine produces them, so a long batch shows progress; JSON (one document), SRT and VTT
are written at the end. Subtitles and TSV follow openai/whisper's writers (VTT: a ``WEBVTT``
header, ``MM:SS.mmm`` cues with hours only past the first hour; TSV: ``start``/``end`` in
integer milliseconds and the text). What a controller must not miss is visible in every format
meant for people: low-confidence segments (a callsign may be invented) and readbacks that
differ from their instruction are flagged in text, subtitles and the conversation view, and
carried as ``low_confidence``/``reasons`` and ``role``/``exchange``/``readback`` in JSON.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import TextIO

from ..errors import ConfigError, DataError
from .types import FileSegment

FORMATS = ("text", "jsonl", "json", "srt", "vtt", "tsv", "conversation")
#: Formats that hold one recording per document (a header, or cue numbering): several input
#: files need one output file each.
DOCUMENT_FORMATS = ("srt", "vtt", "tsv")
#: Marker appended to low-confidence lines in text and subtitle output.
LOW_CONFIDENCE_MARK = "[LOW CONFIDENCE"
#: Marker appended to readbacks that differ from their instruction.
MISMATCH_MARK = "[READBACK MISMATCH"
#: How each role is labelled in text and the conversation view.
ROLE_LABELS = {"controller": "ATC", "pilot": "PILOT", "unknown": "?"}


def format_timestamp(seconds: float, *, decimal_marker: str = ",", always_hours: bool = True) -> str:
    """``HH:MM:SS,mmm`` (SRT style) for ``seconds``; negative values clamp to 0."""
    millis = max(0, round(seconds * 1000))
    hours, millis = divmod(millis, 3_600_000)
    minutes, millis = divmod(millis, 60_000)
    secs, millis = divmod(millis, 1000)
    head = f"{hours:02d}:" if always_hours or hours else ""
    return f"{head}{minutes:02d}:{secs:02d}{decimal_marker}{millis:03d}"


def readback_note(segment: FileSegment) -> str:
    """What the readback check says, for people: ``level FL350 read back as FL330``, ``ok`` or ``""`` (not a readback)."""
    from ..phraseology.readback import describe_differences

    if not segment.readback:
        return ""
    if segment.readback_mismatch:
        return describe_differences(list(segment.readback.get("differences") or []))
    return "ok"


def _flag(segment: FileSegment) -> str:
    flags = ""
    if segment.readback_mismatch:
        flags += f"  {MISMATCH_MARK}: {readback_note(segment)}]"
    if segment.low_confidence:
        flags += f"  {LOW_CONFIDENCE_MARK}: {', '.join(segment.reasons) or 'check'}]"
    return flags


def _cue_text(segment: FileSegment) -> str:
    """The text of a subtitle cue: ``-->`` would end a cue's timing line early (openai/whisper replaces it too)."""
    return (segment.text + _flag(segment)).replace("-->", "->")


def text_line(segment: FileSegment, *, show_file: bool) -> str:
    """``[00:00:01.200 -> 00:00:05.800] ATC: text`` with the file name first when several files.

    The speaker role leads the text when it is known (``ATC:``, ``PILOT:``); a readback that
    differs from its instruction and a low-confidence transcript are flagged at the end.
    """
    span = (f"[{format_timestamp(segment.start_s, decimal_marker='.')} -> "
            f"{format_timestamp(segment.end_s, decimal_marker='.')}]")
    head = f"{segment.file} {span}" if show_file else span
    role = f"{ROLE_LABELS[segment.role]}: " if segment.role in ("controller", "pilot") else ""
    return f"{head} {role}{segment.text or '(no speech)'}{_flag(segment)}"


#: Width of the callsign column of the conversation view (most callsigns fit).
_CALLSIGN_WIDTH = 26


def conversation_line(segment: FileSegment) -> str:
    """One line of the conversation view: time, role, exchange, callsign, text, flags.

    ``00:01:02.3  PILOT  #4   speedbird one two three    Climbing FL330, Speedbird 123  READBACK MISMATCH: level
    FL350 read back as FL330``; a readback that matched ends with ``readback ok``.
    """
    millis = max(0, round(segment.start_s * 10)) * 100
    stamp = format_timestamp(millis / 1000, decimal_marker=".")[:-2]  # tenths of a second
    exchange = f"#{segment.exchange}" if segment.exchange is not None else "-"
    callsign = segment.callsign or "-"
    flags = []
    if segment.readback:
        flags.append(f"READBACK MISMATCH: {readback_note(segment)}" if segment.readback_mismatch else "readback ok")
    if segment.low_confidence:
        flags.append(f"LOW CONFIDENCE ({', '.join(segment.reasons) or 'check'})")
    tail = ("  " + "; ".join(flags)) if flags else ""
    return (f"{stamp}  {ROLE_LABELS.get(segment.role, '?'):<5}  {exchange:<4} {callsign:<{_CALLSIGN_WIDTH}} "
            f"{segment.text or '(no speech)'}{tail}")


def jsonl_line(segment: FileSegment) -> str:
    """One JSON object on one line (see :meth:`FileSegment.as_dict`)."""
    return json.dumps(segment.as_dict(), ensure_ascii=False)


def srt_document(segments: Iterable[FileSegment]) -> str:
    """SRT subtitles: numbered cues ``HH:MM:SS,mmm --> HH:MM:SS,mmm`` and the text."""
    blocks = []
    for index, segment in enumerate((s for s in segments if s.text), start=1):
        blocks.append(
            f"{index}\n{format_timestamp(segment.start_s)} --> {format_timestamp(segment.end_s)}\n"
            f"{_cue_text(segment)}\n"
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
        blocks.append(f"{start} --> {end}\n{_cue_text(segment)}\n")
    return "\n".join(blocks)


#: TSV header row (openai/whisper's): times in integer milliseconds.
TSV_HEADER = "start\tend\ttext"


def tsv_row(segment: FileSegment) -> str:
    """``start<TAB>end<TAB>text``: times in integer milliseconds, tabs and line breaks in the text made spaces."""
    text = re.sub(r"[\t\r\n]+", " ", segment.text).strip()
    return f"{round(1000 * segment.start_s)}\t{round(1000 * segment.end_s)}\t{text}"


def tsv_document(segments: Iterable[FileSegment]) -> str:
    """TSV: the header row, then one row per segment with text."""
    return "\n".join([TSV_HEADER, *(tsv_row(s) for s in segments if s.text)]) + "\n"


_SRT_TIME = re.compile(r"(\d+):(\d\d):(\d\d)[,.](\d\d\d)")


def _srt_seconds(stamp: str) -> float:
    match = _SRT_TIME.fullmatch(stamp.strip())
    if not match:
        raise DataError(f"not an SRT timestamp: {stamp!r}; SRT times look like 00:01:02,500.")
    hours, minutes, secs, millis = (int(g) for g in match.groups())
    return hours * 3600 + minutes * 60 + secs + millis / 1000


def parse_srt(text: str) -> list[tuple[float, float, str]]:
    """Read SRT cues back as (start_s, end_s, text); raises DataError on malformed input."""
    cues = []
    for block in re.split(r"\n\s*\n", text.strip()):
        lines = block.strip().splitlines()
        if not lines:
            continue
        if len(lines) < 3 or not lines[0].strip().isdigit() or "-->" not in lines[1]:
            raise DataError(f"malformed SRT cue: {block!r}; a cue is a number, a time line and text.")
        start, end = lines[1].split("-->")
        cues.append((_srt_seconds(start), _srt_seconds(end), "\n".join(lines[2:])))
    return cues


class TranscriptWriter:
    """Write segments to ``out`` in one of :data:`FORMATS`; call :meth:`close` at the end."""

    def __init__(self, out: TextIO, fmt: str, *, show_file: bool = False) -> None:
        """Args: out: text stream; fmt: one of :data:`FORMATS`; show_file: name the files (text, conversation)."""
        if fmt not in FORMATS:
            raise ConfigError(f"unknown output format {fmt!r}; choose one of {', '.join(FORMATS)}.")
        self.out = out
        self.fmt = fmt
        self.show_file = show_file
        self._held: list[FileSegment] = []
        self._header_written = False
        self._last_file: str | None = None

    def write(self, segment: FileSegment) -> None:
        """Write (text, jsonl, tsv, conversation) or hold (json, srt, vtt) one segment."""
        if self.fmt == "text":
            self._emit(text_line(segment, show_file=self.show_file))
        elif self.fmt == "jsonl":
            self._emit(jsonl_line(segment))
        elif self.fmt == "tsv":
            self._tsv_header()
            if segment.text:
                self._emit(tsv_row(segment))
        elif self.fmt == "conversation":
            if self.show_file and segment.file != self._last_file:
                self._emit(f"== {segment.file}")
            self._last_file = segment.file
            self._emit(conversation_line(segment))
        else:
            self._held.append(segment)

    def _emit(self, line: str) -> None:
        self.out.write(line + "\n")
        self.out.flush()

    def _tsv_header(self) -> None:
        if not self._header_written:
            self._header_written = True
            self.out.write(TSV_HEADER + "\n")

    def close(self) -> None:
        """Write what was held (json, srt, vtt; a TSV's header when nothing came) and flush."""
        if self.fmt == "json":
            json.dump([s.as_dict() for s in self._held], self.out, ensure_ascii=False, indent=2)
            self.out.write("\n")
        elif self.fmt == "srt":
            self.out.write(srt_document(self._held))
        elif self.fmt == "vtt":
            self.out.write(vtt_document(self._held))
        elif self.fmt == "tsv":
            self._tsv_header()
        self.out.flush()
