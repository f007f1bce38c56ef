"""``atc-whisper search``: find transcripts in the catalogue by callsign, words, time and source."""

from __future__ import annotations

import json

import click

from ..errors import DataError
from .common import App, pass_app

_FORMATS = ("table", "jsonl")
#: Characters of text shown per row in the table (JSON lines carry all of it).
_TEXT_WIDTH = 70


@click.command("search")
@click.option("--callsign", default=None, metavar="CALLSIGN",
              help="DLH4AB, 'lufthansa four alfa bravo', or an airline alone (DLH) for all its flights.")
@click.option("--text", default=None, help="Words the transcript contains (case-insensitive).")
@click.option("--since", default=None, metavar="TIME",
              help="From this time on: 2024-03-01, 2024-03-01T14:30Z, Unix seconds, or an age (90m, 2h, 3d).")
@click.option("--until", default=None, metavar="TIME", help="Up to this time (a bare date includes that whole day).")
@click.option("--source", default=None, help="Part of the source's name: stream, device, or the archive folder.")
@click.option("--low-confidence/--confident", "low_confidence", default=None,
              help="Only flagged, or only unflagged, transcripts.")
@click.option("-n", "--limit", type=click.IntRange(min=0), default=100, show_default=True,
              help="At most this many rows; 0 shows all.")
@click.option("--newest-first", is_flag=True, help="Newest first (default: oldest first).")
@click.option("-f", "--format", "fmt", type=click.Choice(_FORMATS), default="table", show_default=True,
              help="An aligned table, or one JSON object per line.")
@pass_app
def search_command(app: App, callsign: str | None, text: str | None, since: str | None, until: str | None,
                   source: str | None, low_confidence: bool | None, limit: int, newest_first: bool, fmt: str) -> None:
    """Search the transcripts stored by `live` and `transcribe --catalogue`.

    Every filter given must match. Times are UTC. Examples:

      atc-whisper search --callsign DLH4AB --since 2024-03-01 --until 2024-03-07

      atc-whisper search --text "hold short" --source EDDF --format jsonl
    """
    from ..data.catalogue import Catalogue
    from ..data.transcripts import search_transcripts

    db = app.workspace.db_path
    if not db.exists():
        raise DataError(f"no catalogue at {db}: transcripts are stored there by `atc-whisper live` and by "
                        "`atc-whisper transcribe DIR --output OUT --catalogue`; pass the workspace with -w.")
    with Catalogue(db, root=app.workspace.root) as catalogue:
        rows = search_transcripts(catalogue, callsign=callsign, text=text, since=since, until=until, source=source,
                                  low_confidence=low_confidence, limit=limit, newest_first=newest_first)
    if fmt == "jsonl":
        for row in rows:
            click.echo(json.dumps(row, ensure_ascii=False, default=str))
        return
    _print_table(rows)
    click.echo(f"{len(rows)} transcript(s)" + (f" (limit {limit}; raise it with --limit)" if limit and len(rows) == limit
                                               else "") + ".", err=True)


def _where(row: dict[str, object]) -> str:
    audio = row.get("audio_path")
    if audio is None:
        return ""
    offset = row.get("offset_s")
    return f"{audio}" + (f" @{float(offset):.1f}s" if isinstance(offset, (int, float)) else "")


def _print_table(rows: list[dict[str, object]]) -> None:
    headers = ("started_at", "source", "callsign", "text", "where")
    table = []
    for row in rows:
        text = str(row.get("text") or "(no speech)")
        if row.get("low_confidence"):
            text = "[LOW] " + text
        if len(text) > _TEXT_WIDTH:
            text = text[: _TEXT_WIDTH - 1] + "…"
        table.append((str(row.get("started_at", "")), str(row.get("source", "")), str(row.get("callsign") or ""),
                      text, _where(row)))
    if not table:
        return
    widths = [max(len(h), *(len(r[i]) for r in table)) for i, h in enumerate(headers)]
    click.echo("  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip())
    for r in table:
        click.echo("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())


COMMANDS = [search_command]
