"""Searching the catalogue's transcripts, and storing the transcripts of whole files.

The ``transcripts`` table holds what ``live`` heard and what ``transcribe --catalogue`` decoded
from files. People look things up in it by aircraft ("everything DLH4AB said or was told
yesterday"), by words, by time and by source. :func:`search_transcripts` is that query, one
function for the CLI (``atc-whisper search``) and any other front end.

Callsigns are stored in the reference form the parser produces ("lufthansa four alfa bravo"),
so a query in ICAO designator form (``DLH4AB``) or in words is turned into that form first
(:func:`callsign_query`). A bare airline (``DLH`` or ``lufthansa``) matches all its flights.

Times are stored as ISO 8601 UTC with milliseconds (``2024-03-01T14:30:00.000Z``): fixed width,
so text order is time order and ``--since``/``--until`` are plain string comparisons on an
index.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import DataError

if TYPE_CHECKING:
    from .catalogue import Catalogue

#: Rows returned by :func:`search_transcripts` when no limit is given.
DEFAULT_LIMIT = 100
_RELATIVE = re.compile(r"^(\d+(?:\.\d+)?)\s*([smhdw])$")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_DATE_ONLY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def utc_iso(moment: datetime | float | int | str) -> str:
    """The stored form of a time: ``YYYY-MM-DDTHH:MM:SS.mmmZ`` in UTC.

    Args:
        moment: A datetime (naive means UTC), Unix seconds, or ISO 8601 text.

    Raises:
        DataError: ``moment`` is text that is not an ISO 8601 time.
    """
    if isinstance(moment, str):
        moment = parse_time(moment)
    elif isinstance(moment, (int, float)):
        moment = datetime.fromtimestamp(float(moment), tz=timezone.utc)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    moment = moment.astimezone(timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def parse_time(text: str, *, now: datetime | None = None, end_of_day: bool = False) -> datetime:
    """Read a time given by a person: ISO 8601 (``2024-03-01``, ``2024-03-01T14:30``, with ``Z`` or an
    offset; no zone means UTC), Unix seconds, or an age such as ``90m``, ``2h``, ``3d`` (before ``now``).

    Args:
        text: The time.
        now: The reference for ages (default: the current time).
        end_of_day: A bare date means the end of that day (for an inclusive ``--until``).

    Raises:
        DataError: ``text`` is none of these.
    """
    value = text.strip()
    relative = _RELATIVE.match(value.lower())
    if relative:
        amount, unit = float(relative.group(1)), relative.group(2)
        return (now or datetime.now(timezone.utc)) - timedelta(seconds=amount * _UNIT_S[unit])
    if re.fullmatch(r"\d{9,}(\.\d+)?", value):
        return datetime.fromtimestamp(float(value), tz=timezone.utc)
    try:
        moment = datetime.fromisoformat(value.replace("z", "Z"))
    except ValueError:
        raise DataError(
            f"time {text!r} is not understood; write an ISO date or time (2024-03-01, 2024-03-01T14:30Z), "
            "Unix seconds, or an age such as 90m, 2h or 3d."
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    if end_of_day and _DATE_ONLY.match(value):
        moment += timedelta(days=1, milliseconds=-1)
    return moment


@dataclass(frozen=True)
class CallsignQuery:
    """A callsign to look for, in the stored reference form.

    Attributes:
        words: The reference words, e.g. ``lufthansa four alfa bravo``.
        airline_only: True when only an airline was given (``DLH``): every flight of it matches.
    """

    words: str
    airline_only: bool


def callsign_query(text: str) -> CallsignQuery:
    """Turn a callsign as a user types it into the stored reference form.

    ``DLH4AB``, ``DLH 4AB``, ``Lufthansa 4AB`` and ``lufthansa four alpha bravo`` all become
    ``lufthansa four alfa bravo``; ``DLH`` or ``lufthansa`` alone ask for the whole airline;
    registrations work too (``G-ABCD`` -> ``golf alfa bravo charlie delta``).

    Raises:
        DataError: ``text`` holds no letters or digits.
    """
    from ..phraseology.callsigns import callsign_reference
    from ..phraseology.vocabulary import CODE_OF_TELEPHONY, TELEPHONY_OF_CODE

    code = text.strip().upper()
    if code in TELEPHONY_OF_CODE:
        return CallsignQuery(TELEPHONY_OF_CODE[code], True)
    words = callsign_reference(text)
    return CallsignQuery(words, words in CODE_OF_TELEPHONY)


def _like(text: str) -> str:
    """``%text%`` for LIKE with ``\\`` escaping the wildcards the user typed."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def search_transcripts(
    catalogue: Catalogue,
    *,
    callsign: str | None = None,
    text: str | None = None,
    since: str | datetime | None = None,
    until: str | datetime | None = None,
    source: str | None = None,
    low_confidence: bool | None = None,
    limit: int | None = DEFAULT_LIMIT,
    offset: int = 0,
    newest_first: bool = False,
) -> list[dict[str, Any]]:
    """Find transcripts in the catalogue; every filter given must match.

    Args:
        catalogue: An open catalogue.
        callsign: Callsign in designator form (``DLH4AB``), in words (``lufthansa four alfa
            bravo``) or an airline alone (``DLH``); see :func:`callsign_query`.
        text: Words the transcript contains, case-insensitive; also matched against the
            normalised transcript, so ``flight level three five zero`` finds ``FL 350``.
        since: Earliest start time (inclusive): ISO text, an age (``2h``) or a datetime.
        until: Latest start time (inclusive; a bare date means the end of that day).
        source: Part of the source's name (stream URL, device, or the archive folder), case-insensitive.
        low_confidence: Only flagged (True) or only unflagged (False) transcripts.
        limit: At most this many rows (None or 0: all).
        offset: Rows to skip first (for paging).
        newest_first: Order by start time descending instead of ascending.

    Returns:
        Rows as dicts, as :meth:`Catalogue.transcripts` returns them (``commands`` decoded,
        ``audio_path`` absolute, ``extra`` merged in).

    Raises:
        DataError: A time or callsign cannot be understood.
    """
    from ..phraseology import normalize_atc

    where: list[str] = []
    args: list[Any] = []
    if callsign is not None and callsign.strip():
        query = callsign_query(callsign)
        if query.airline_only:
            where.append("(lower(callsign) = ? OR lower(callsign) LIKE ? ESCAPE '\\')")
            args += [query.words, query.words.replace("%", "\\%").replace("_", "\\_") + " %"]
        else:
            where.append("lower(callsign) = ?")
            args.append(query.words)
    if text is not None and text.strip():
        norm = normalize_atc(text)
        where.append("(text LIKE ? ESCAPE '\\' OR (text_norm IS NOT NULL AND ? != '' AND text_norm LIKE ? ESCAPE '\\'))")
        args += [_like(text.strip()), norm, _like(norm)]
    if since is not None:
        where.append("started_at >= ?")
        args.append(utc_iso(since if isinstance(since, datetime) else parse_time(since)))
    if until is not None:
        where.append("started_at <= ?")
        args.append(utc_iso(until if isinstance(until, datetime) else parse_time(until, end_of_day=True)))
    if source is not None and source.strip():
        where.append("source LIKE ? ESCAPE '\\'")
        args.append(_like(source.strip()))
    if low_confidence is not None:
        where.append("low_confidence = ?")
        args.append(int(low_confidence))
    order = "DESC" if newest_first else "ASC"
    sql = "SELECT * FROM transcripts" + (f" WHERE {' AND '.join(where)}" if where else "")
    sql += f" ORDER BY started_at {order}, id {order}"
    if limit:
        sql += " LIMIT ? OFFSET ?"
        args += [int(limit), int(offset)]
    elif offset:
        sql += " LIMIT -1 OFFSET ?"
        args.append(int(offset))
    return catalogue.query_transcripts(sql, args)


def replace_file_transcripts(catalogue: Catalogue, audio_path: str | Path, rows: list[dict[str, Any]]) -> list[int]:
    """Store the transcripts of one audio file, replacing what an earlier run stored for it.

    A file transcribed again (other model or settings) must not appear twice in searches, so
    its earlier file rows (those with an ``offset_s``) are deleted in the same transaction as
    the new ones are added. Live rows are never touched.

    Args:
        catalogue: An open catalogue.
        audio_path: The transcribed file.
        rows: One dict per segment, as :meth:`Catalogue.add_transcripts` takes them, each with
            ``offset_s`` (its start in the file).

    Returns:
        The new row ids.
    """
    stored = catalogue.relative_path(audio_path)
    with catalogue.transaction() as conn:
        conn.execute("DELETE FROM transcripts WHERE audio_path = ? AND offset_s IS NOT NULL", (stored,))
        return catalogue.add_transcripts([{**row, "audio_path": audio_path} for row in rows])


def file_transcript_rows(
    segments: list[dict[str, Any]], *, recording_start: datetime, source: str, extra: dict[str, Any] | None = None
) -> list[dict[str, Any]]:
    """Catalogue rows for a file's segments (dicts as :meth:`FileSegment.as_dict` gives them).

    Args:
        segments: The segments, with ``start``/``end`` in seconds from the file's start.
        recording_start: When the recording began (UTC); each row starts at that plus its offset.
        source: What the rows are filed under (the archive folder, a manifest's ``source``).
        extra: More keys stored with every row (the job key, where the time came from).
    """
    rows = []
    for seg in segments:
        start_s, end_s = float(seg["start"]), float(seg["end"])
        kept = {k: v for k, v in seg.items() if k not in ("file", "start", "end")}
        rows.append({
            **kept,
            **(extra or {}),
            "started_at": utc_iso(recording_start + timedelta(seconds=start_s)),
            "duration_s": max(0.0, end_s - start_s),
            "offset_s": start_s,
            "source": source,
            "text": seg.get("text") or "",
        })
    return rows


def rows_as_json(rows: list[dict[str, Any]]) -> list[str]:
    """JSON lines for ``rows`` (paths as text)."""
    return [json.dumps(row, ensure_ascii=False, default=str) for row in rows]


__all__ = [
    "DEFAULT_LIMIT", "CallsignQuery", "callsign_query", "file_transcript_rows", "parse_time",
    "replace_file_transcripts", "rows_as_json", "search_transcripts", "utc_iso",
]
