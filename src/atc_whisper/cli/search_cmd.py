"""``atc-whisper search``: find transcripts in the catalogue by callsign, words, time, source, role and readback."""

from __future__ import annotations

import json

import click

from ..errors import DataError
from .common import App, pass_app

_FORMATS = ("table", "jsonl")
#: Characters of text shown per row in the table (JSON lines carry all of it).
_TEXT_WIDTH = 70
#: Characters of a readback mismatch's description shown in the table.
_READBACK_WIDTH = 48
_ROLE_TAGS = {"controller": "ATC", "pilot": "PLT"}


@click.command("search")
@click.option("--callsign", default=None, metavar="CALLSIGN",
              help="DLH4AB, 'lufthansa four alfa bravo', or an airline alone (DLH) for all its flights.")
@click.option("--text", default=None,
              help="Words that must all appear in the text, the correction or the callsign (case-insensitive); "
                   "written forms find spoken ones (FL350 finds 'flight level three five zero').")
@click.option("--since", default=None, metavar="TIME",
              help="From this time on: 2024-03-01, 2024-03-01T14:30Z, Unix seconds, or an age (90m, 2h, 3d).")
@click.option("--until", default=None, metavar="TIME", help="Up to this time (a bare date includes that whole day).")
@click.option("--source", default=None, help="Part of the source's name: stream, device, frequency or archive folder.")
@click.option("--low-confidence/--confident", "low_confidence", default=None,
              help="Only flagged, or only unflagged, transcripts.")
@click.option("--corrected/--uncorrected", "corrected", default=None,
              help="Only transcripts a listener corrected (serve page), or only uncorrected ones.")
@click.option("--role", type=click.Choice(("controller", "pilot", "unknown")), default=None,
              help="Only this speaker role (live transcripts carry one).")
@click.option("--readback", type=click.Choice(("ok", "mismatch", "checked", "none")), default=None,
              help="Only pilot readbacks checked ok, with a mismatch, checked at all, or not checked.")
@click.option("-n", "--limit", type=click.IntRange(min=0), default=100, show_default=True,
              help="At most this many rows; 0 shows all.")
@click.option("--offset", type=click.IntRange(min=0), default=0, help="Skip this many matches first (paging).")
@click.option("--newest-first", is_flag=True, help="Newest first (default: oldest first).")
@click.option("-f", "--format", "fmt", type=click.Choice(_FORMATS), default="table", show_default=True,
              help="An aligned table, or one JSON object per line.")
@pass_app
def search_command(app: App, callsign: str | None, text: str | None, since: str | None, until: str | None,
                   source: str | None, low_confidence: bool | None, corrected: bool | None, role: str | None,
                   readback: str | None, limit: int, offset: int, newest_first: bool, fmt: str) -> None:
    """Search the transcripts stored by `live`, `serve` and `transcribe --catalogue`.

    Every filter given must match. Times are UTC. Examples:

      atc-whisper search --callsign DLH4AB --since 2024-03-01 --until 2024-03-07

      atc-whisper search --text "hold short" --source EDDF --format jsonl

      atc-whisper search --readback mismatch --since 1d
    """
    from ..data.catalogue import Catalogue
    from ..data.transcripts import search_transcripts

    db = app.workspace.db_path
    if not db.exists():
        raise DataError(f"no catalogue at {db}: transcripts are stored there by `atc-whisper live`, `atc-whisper "
                        "serve` and `atc-whisper transcribe DIR --output OUT --catalogue`; pass the workspace with -w.")
    with Catalogue(db, root=app.workspace.root) as catalogue:
        page = search_transcripts(catalogue, text, callsign=callsign, since=since, until=until, source=source,
                                  low_confidence=low_confidence, corrected=corrected, role=role, readback=readback,
                                  limit=limit, offset=offset, newest_first=newest_first)
    if fmt == "jsonl":
        for row in page.rows:
            click.echo(json.dumps(row, ensure_ascii=False, default=str))
    else:
        _print_table(page.rows)
    shown = f"{len(page.rows)} of {page.total}" if page.more or offset else f"{len(page.rows)}"
    hint = (f" (limit {limit}; {page.more} more: raise --limit or pass --offset {offset + len(page.rows)})"
            if page.more else "")
    click.echo(f"{shown} transcript(s){hint}.", err=True)


def _where(row: dict[str, object]) -> str:
    audio = row.get("audio_path")
    if audio is None:
        return ""
    offset = row.get("offset_s")
    return f"{audio}" + (f" @{float(offset):.1f}s" if isinstance(offset, (int, float)) else "")


def _readback(row: dict[str, object]) -> str:
    """``ok``, ``MISMATCH: level FL350 read back as FL330`` or "" (no readback check)."""
    from ..phraseology.readback import describe_differences

    check = row.get("readback")
    if not isinstance(check, dict):
        return ""
    if check.get("status") != "mismatch":
        return "ok"
    what = "MISMATCH: " + describe_differences(check.get("differences") or [])
    return what if len(what) <= _READBACK_WIDTH else what[: _READBACK_WIDTH - 1] + "…"


def _print_table(rows: list[dict[str, object]]) -> None:
    headers = ("started_at", "source", "role", "callsign", "text", "readback", "where")
    table = []
    for row in rows:
        text = str(row.get("text_corrected") or row.get("text") or "(no speech)")
        if row.get("text_corrected"):
            text = "[CORRECTED] " + text
        if row.get("low_confidence"):
            text = "[LOW] " + text
        if len(text) > _TEXT_WIDTH:
            text = text[: _TEXT_WIDTH - 1] + "…"
        role = _ROLE_TAGS.get(str(row.get("role")), "")
        if role and row.get("exchange") is not None:
            role += f" #{row['exchange']}"
        table.append((str(row.get("started_at", "")), str(row.get("source", "")), role,
                      str(row.get("callsign") or ""), text, _readback(row), _where(row)))
    if not table:
        return
    widths = [max(len(h), *(len(r[i]) for r in table)) for i, h in enumerate(headers)]
    click.echo("  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip())
    for r in table:
        click.echo("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())


COMMANDS = [search_command]
