"""Searching the catalogue's transcripts (data/transcripts.py) and the ``search`` command, on real SQLite files."""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from atc_whisper.data.catalogue import Catalogue
from atc_whisper.data.migrations import LATEST_VERSION, migrate
from atc_whisper.data.transcripts import (
    callsign_query,
    file_transcript_rows,
    parse_time,
    replace_file_transcripts,
    search_transcripts,
    utc_iso,
)
from atc_whisper.errors import DataError

ROWS = [
    # (started_at, source, callsign, text, low_confidence)
    ("2024-03-01T09:59:59Z", "EDDF tower", "lufthansa four alfa bravo", "Lufthansa 4AB, climb flight level 350", False),
    ("2024-03-01T10:00:05Z", "EDDF tower", "lufthansa four alfa bravo", "climb FL350, Lufthansa 4 Alpha Bravo", False),
    ("2024-03-01T23:59:00Z", "EDDF approach", "lufthansa one two three", "Lufthansa 123, descend altitude 4000", True),
    ("2024-03-02T00:00:00Z", "EGLL tower", "speedbird one two three", "Speedbird 123 hold short runway 27L", False),
    ("2024-03-03T08:00:00Z", "https://stream.example/eham", "golf alfa bravo charlie delta", "G-ABCD squawk 7000", False),
]


@pytest.fixture
def catalogue(tmp_path: Path):
    with Catalogue(tmp_path / "ws" / "data" / "atc_dataset" / "atc_dataset.db") as cat:
        cat.add_transcripts([
            {"started_at": t, "duration_s": 3.0, "source": s, "callsign": c, "text": x, "low_confidence": low}
            for t, s, c, x, low in ROWS
        ])
        yield cat


def _texts(rows):
    return [r["text"] for r in rows]


def test_callsign_in_designator_form_and_in_words(catalogue):
    words = search_transcripts(catalogue, callsign="lufthansa four alfa bravo")
    assert _texts(words) == [ROWS[0][3], ROWS[1][3]]
    for form in ("DLH4AB", "dlh 4ab", "Lufthansa 4AB", "LUFTHANSA FOUR ALPHA BRAVO"):
        assert search_transcripts(catalogue, callsign=form) == words, form
    assert _texts(search_transcripts(catalogue, callsign="BAW123")) == [ROWS[3][3]]
    assert _texts(search_transcripts(catalogue, callsign="G-ABCD")) == [ROWS[4][3]]
    # An airline alone finds all its flights; a full callsign does not find its longer neighbours.
    assert len(search_transcripts(catalogue, callsign="DLH")) == 3
    assert len(search_transcripts(catalogue, callsign="lufthansa")) == 3
    assert search_transcripts(catalogue, callsign="DLH4A") == []
    assert callsign_query("DLH").airline_only and not callsign_query("DLH4AB").airline_only
    with pytest.raises(DataError):
        search_transcripts(catalogue, callsign="!!")


def test_time_range_text_source_and_flags(catalogue):
    assert _texts(search_transcripts(catalogue, since="2024-03-01T10:00:00Z", until="2024-03-01")) == [
        ROWS[1][3], ROWS[2][3]]  # a bare --until date includes that whole day
    assert len(search_transcripts(catalogue, since="2024-03-02")) == 2
    assert _texts(search_transcripts(catalogue, since="2024-03-01T11:00+01:00", until="2024-03-01T10:00:05Z")) == [
        ROWS[1][3]]  # offsets are converted to UTC
    # Words match the raw text, and the normalised text: "flight level three five zero" finds "FL350".
    assert len(search_transcripts(catalogue, text="flight level three five zero")) == 2
    assert _texts(search_transcripts(catalogue, text="HOLD SHORT")) == [ROWS[3][3]]
    assert search_transcripts(catalogue, text="100%") == []  # wildcards typed by the user are literal
    assert len(search_transcripts(catalogue, source="eddf")) == 3
    assert _texts(search_transcripts(catalogue, low_confidence=True)) == [ROWS[2][3]]
    assert _texts(search_transcripts(catalogue, source="EDDF", callsign="DLH", low_confidence=False)) == [
        ROWS[0][3], ROWS[1][3]]
    newest = search_transcripts(catalogue, newest_first=True, limit=2)
    assert _texts(newest) == [ROWS[4][3], ROWS[3][3]]
    assert _texts(search_transcripts(catalogue, limit=2, offset=1)) == [ROWS[1][3], ROWS[2][3]]
    assert len(search_transcripts(catalogue, limit=None)) == len(ROWS)


def test_times_people_type():
    now = datetime(2024, 3, 1, 12, 0, tzinfo=timezone.utc)
    assert parse_time("2h", now=now) == now - timedelta(hours=2)
    assert parse_time("90m", now=now) == now - timedelta(minutes=90)
    assert parse_time("2024-03-01") == datetime(2024, 3, 1, tzinfo=timezone.utc)
    assert utc_iso(parse_time("2024-03-01", end_of_day=True)) == "2024-03-01T23:59:59.999Z"
    assert utc_iso(parse_time("1709294400")) == "2024-03-01T12:00:00.000Z"
    assert utc_iso("2024-03-01T14:30:00+02:00") == "2024-03-01T12:30:00.000Z"
    with pytest.raises(DataError, match="not understood"):
        parse_time("last tuesday")


def test_file_rows_replace_earlier_ones_and_leave_live_rows_alone(catalogue, tmp_path):
    audio = tmp_path / "archive" / "twr.wav"
    segments = [{"file": str(audio), "start": 1.5, "end": 4.0, "text": "Speedbird 123, climb FL350",
                 "callsign": "speedbird one two three", "commands": [{"type": "climb"}], "low_confidence": False,
                 "reasons": []},
                {"file": str(audio), "start": 10.0, "end": 12.0, "text": "", "callsign": None, "commands": []}]
    start = datetime(2024, 3, 5, 8, 0, tzinfo=timezone.utc)
    rows = file_transcript_rows(segments, recording_start=start, source="archive", extra={"file_key": "k"})
    replace_file_transcripts(catalogue, audio, rows)
    replace_file_transcripts(catalogue, audio, rows[:1])  # the file transcribed again: its old rows go
    found = search_transcripts(catalogue, source="archive")
    assert len(found) == 1
    assert found[0]["started_at"] == "2024-03-05T08:00:01.500Z" and found[0]["offset_s"] == 1.5
    assert found[0]["duration_s"] == 2.5 and found[0]["audio_path"] == audio and found[0]["file_key"] == "k"
    assert found[0]["commands"] == [{"type": "climb"}]
    assert len(search_transcripts(catalogue, limit=None)) == len(ROWS) + 1


def test_migration_from_version_2_keeps_transcripts(tmp_path):
    db = tmp_path / "old.db"
    conn = sqlite3.connect(db, isolation_level=None)
    assert migrate(conn, target=2) == [1, 2]
    conn.execute("INSERT INTO transcripts (started_at, duration_s, source, text, callsign) "
                 "VALUES ('2024-01-01T00:00:00.000Z', 2.0, 'mic', 'Delta 12 climb', 'delta one two')")
    conn.close()
    with Catalogue(db) as cat:
        assert cat.schema_version == LATEST_VERSION
        rows = search_transcripts(cat, callsign="DAL12")
        assert _texts(rows) == ["Delta 12 climb"] and rows[0]["offset_s"] is None
        indexes = {r[0] for r in cat.connection.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
        assert {"transcripts_started", "transcripts_callsign", "transcripts_audio"} <= indexes


def test_search_cli_table_json_and_errors(run_cli, catalogue, tmp_path):
    ws = tmp_path / "ws"
    table = run_cli("search", "-w", str(ws), "--callsign", "DLH4AB")
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert lines[0].split() == ["started_at", "source", "callsign", "text", "where"] and len(lines) == 3
    assert "2 transcript(s)." in table.stderr
    flagged = run_cli("search", "-w", str(ws), "--low-confidence", "-f", "jsonl")
    assert [json.loads(line)["callsign"] for line in flagged.stdout.splitlines()] == ["lufthansa one two three"]
    limited = run_cli("search", "-w", str(ws), "-n", "1")
    assert "limit 1" in limited.stderr

    bad = run_cli("search", "-w", str(ws), "--since", "yesterday-ish")
    assert bad.returncode == 1 and "Traceback" not in bad.stderr and "not understood" in bad.stderr
    missing = run_cli("search", "-w", str(tmp_path / "empty"), "--text", "climb")
    assert missing.returncode == 1 and "no catalogue" in missing.stderr and "Traceback" not in missing.stderr
    assert not (tmp_path / "empty").exists()
