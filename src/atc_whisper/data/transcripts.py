"""Searching the catalogue's transcripts, and storing the transcripts of whole files.

The ``transcripts`` table holds what ``live`` heard and what ``transcribe --catalogue`` decoded
from files. People look things up in it by aircraft ("everything DLH4AB said or was told
yesterday"), by words, by time, by source, by speaker role or readback outcome.
:func:`search_transcripts` is that query, the one function behind the CLI (``atc-whisper search``),
the serve page's search and ``GET /api/transmissions``.

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


#: The columns a word of the text query may appear in (any of them, case-insensitive).
_WORD_COLUMNS = ("text", "text_corrected", "text_norm", "callsign")
#: Readback filters: what the conversation tracker stored in the row's ``readback``.
READBACK_FILTERS = ("ok", "mismatch", "checked", "none")


@dataclass(frozen=True)
class TranscriptPage:
    """One page of a transcript search.

    Attributes:
        rows: The transcripts, as :meth:`Catalogue.transcript` returns them (``commands``
            decoded, ``audio_path`` absolute, the ``extra`` keys such as ``role``, ``exchange``
            and ``readback`` merged in).
        total: How many transcripts match in all (for paging).
        limit: The page size asked for (None: all).
        offset: Matches skipped before the page.
    """

    rows: list[dict[str, Any]]
    total: int
    limit: int | None
    offset: int

    @property
    def more(self) -> int:
        """Matches after this page."""
        return max(0, self.total - self.offset - len(self.rows))


def _spoken(text: str) -> str | None:
    """``text`` in the normalised (spoken) form, or None when normalising only drops case and
    punctuation: then what the user typed is matched literally (``climb_`` must not find ``climb``)."""
    from ..phraseology import normalize_atc

    norm = normalize_atc(text)
    return norm if norm and norm.split() != re.findall(r"[a-z0-9]+", text.lower()) else None


def _text_condition(text: str) -> tuple[str, list[Any]]:
    """The SQL condition of a text query: every word matches, or the whole query in spoken form does.

    A word matches when it appears in one of :data:`_WORD_COLUMNS`, or when its spoken form
    appears in the normalised text (``DLH4AB heading`` finds ``lufthansa four alfa bravo turn
    left heading ...``). The whole query in spoken form covers what only reads right as a
    phrase (``FL 350`` -> ``flight level three five zero``).
    """
    any_column = " OR ".join(f"COALESCE({c}, '') LIKE ? ESCAPE '\\'" for c in _WORD_COLUMNS)
    terms: list[str] = []
    args: list[Any] = []
    for word in text.split():
        spoken = _spoken(word)
        terms.append(f"({any_column}" + (" OR COALESCE(text_norm, '') LIKE ? ESCAPE '\\')" if spoken else ")"))
        args += [_like(word)] * len(_WORD_COLUMNS) + ([_like(spoken)] if spoken else [])
    condition = " AND ".join(terms)
    phrase = _spoken(text)
    if phrase and len(text.split()) > 1:
        condition = f"({condition}) OR COALESCE(text_norm, '') LIKE ? ESCAPE '\\'"
        args.append(_like(phrase))
    return f"({condition})", args


def search_transcripts(
    catalogue: Catalogue,
    text: str | None = None,
    *,
    callsign: str | None = None,
    since: str | datetime | None = None,
    until: str | datetime | None = None,
    source: str | None = None,
    exact_source: bool = False,
    low_confidence: bool | None = None,
    corrected: bool | None = None,
    role: str | None = None,
    readback: str | None = None,
    limit: int | None = DEFAULT_LIMIT,
    offset: int = 0,
    newest_first: bool = False,
) -> TranscriptPage:
    """Find transcripts in the catalogue; every filter given must match.

    The one search of the ``transcripts`` table: ``atc-whisper search``, the serve page and
    ``GET /api/transmissions`` all call it.

    Args:
        catalogue: An open catalogue.
        text: Words that must all appear (case-insensitive, anywhere in a word) in the machine
            text, the correction, the normalised text or the callsign. The query normalised as a
            whole is also looked for in the normalised text, so ``FL350`` finds ``flight level
            three five zero`` and ``flight level three five zero`` finds ``FL 350``.
        callsign: Callsign in designator form (``DLH4AB``), in words (``lufthansa four alfa
            bravo``) or an airline alone (``DLH``, ``speedbird``); see :func:`callsign_query`.
        since: Earliest start time (inclusive): ISO text, an age (``2h``) or a datetime.
        until: Latest start time (inclusive; a bare date means the end of that day).
        source: The source's name (stream URL, device, frequency, or the archive folder): a part of
            it, case-insensitive, or exactly with ``exact_source``.
        exact_source: Match ``source`` exactly (a frequency chosen from a list).
        low_confidence: Only flagged (True) or only unflagged (False) transcripts.
        corrected: Only corrected (True) or only uncorrected (False) transcripts.
        role: Only transmissions of this speaker role (``controller``, ``pilot`` or ``unknown``).
        readback: ``ok`` or ``mismatch`` (pilot readbacks checked against their instruction with
            that outcome), ``checked`` (either) or ``none`` (no readback check).
        limit: At most this many rows (None or 0: all).
        offset: Matches to skip first (for paging).
        newest_first: Order by start time descending instead of ascending.

    Returns:
        The page of matching rows and the number of all matches.

    Raises:
        DataError: A time or callsign cannot be understood, or ``role``/``readback`` is not one
            of the choices.
    """
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
        condition, text_args = _text_condition(text.strip())
        where.append(condition)
        args += text_args
    if since is not None and str(since).strip():
        where.append("started_at >= ?")
        args.append(utc_iso(since if isinstance(since, datetime) else parse_time(since)))
    if until is not None and str(until).strip():
        where.append("started_at <= ?")
        args.append(utc_iso(until if isinstance(until, datetime) else parse_time(until, end_of_day=True)))
    if source is not None and source.strip():
        where.append("source = ?" if exact_source else "source LIKE ? ESCAPE '\\'")
        args.append(source if exact_source else _like(source.strip()))
    if low_confidence is not None:
        where.append("COALESCE(low_confidence, 0) = ?")  # never judged counts as not flagged
        args.append(int(low_confidence))
    if corrected is not None:
        where.append("text_corrected IS NOT NULL" if corrected else "text_corrected IS NULL")
    if role is not None:
        from ..phraseology.roles import CONTROLLER, PILOT, UNKNOWN

        if role not in (CONTROLLER, PILOT, UNKNOWN):
            raise DataError(f"role {role!r} is not one of {CONTROLLER}, {PILOT}, {UNKNOWN}.")
        where.append("COALESCE(json_extract(extra, '$.role'), 'unknown') = ?")
        args.append(role)
    if readback is not None:
        if readback not in READBACK_FILTERS:
            raise DataError(f"readback filter {readback!r} is not one of {', '.join(READBACK_FILTERS)}.")
        status = "json_extract(extra, '$.readback.status')"
        where.append({"checked": f"{status} IS NOT NULL", "none": f"{status} IS NULL"}.get(readback, f"{status} = ?"))
        if readback in ("ok", "mismatch"):
            args.append(readback)
    order = "DESC" if newest_first else "ASC"
    rows, total = catalogue.select_transcripts(
        " AND ".join(where), args, order_by=f"started_at {order}, id {order}", limit=limit, offset=offset)
    return TranscriptPage(rows=rows, total=total, limit=limit or None, offset=max(0, int(offset)))


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
    "DEFAULT_LIMIT", "READBACK_FILTERS", "CallsignQuery", "TranscriptPage", "callsign_query", "file_transcript_rows",
    "parse_time", "replace_file_transcripts", "rows_as_json", "search_transcripts", "utc_iso",
]
