"""Searching the catalogue's transcripts (data/transcripts.py) and the ``search`` command, on real SQLite files."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime, timedelta
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


def _find(catalogue, **filters):
    return search_transcripts(catalogue, **filters).rows


def _texts(rows):
    return [r["text"] for r in rows]


def test_callsign_in_designator_form_and_in_words(catalogue):
    words = _find(catalogue, callsign="lufthansa four alfa bravo")
    assert _texts(words) == [ROWS[0][3], ROWS[1][3]]
    for form in ("DLH4AB", "dlh 4ab", "Lufthansa 4AB", "LUFTHANSA FOUR ALPHA BRAVO"):
        assert _find(catalogue, callsign=form) == words, form
    assert _texts(_find(catalogue, callsign="BAW123")) == [ROWS[3][3]]
    assert _texts(_find(catalogue, callsign="G-ABCD")) == [ROWS[4][3]]
    # An airline alone finds all its flights; a full callsign does not find its longer neighbours.
    assert len(_find(catalogue, callsign="DLH")) == 3
    assert len(_find(catalogue, callsign="lufthansa")) == 3
    assert _find(catalogue, callsign="DLH4A") == []
    assert callsign_query("DLH").airline_only and not callsign_query("DLH4AB").airline_only
    with pytest.raises(DataError):
        _find(catalogue, callsign="!!")


def test_time_range_text_source_and_flags(catalogue):
    assert _texts(_find(catalogue, since="2024-03-01T10:00:00Z", until="2024-03-01")) == [
        ROWS[1][3], ROWS[2][3]]  # a bare --until date includes that whole day
    assert len(_find(catalogue, since="2024-03-02")) == 2
    assert _texts(_find(catalogue, since="2024-03-01T11:00+01:00", until="2024-03-01T10:00:05Z")) == [
        ROWS[1][3]]  # offsets are converted to UTC
    # Words match the raw text, and the normalised text: "flight level three five zero" finds "FL350".
    assert len(_find(catalogue, text="flight level three five zero")) == 2
    assert _texts(_find(catalogue, text="HOLD SHORT")) == [ROWS[3][3]]
    assert _find(catalogue, text="100%") == []  # wildcards typed by the user are literal
    assert len(_find(catalogue, source="eddf")) == 3
    assert _texts(_find(catalogue, low_confidence=True)) == [ROWS[2][3]]
    assert _texts(_find(catalogue, source="EDDF", callsign="DLH", low_confidence=False)) == [
        ROWS[0][3], ROWS[1][3]]
    newest = _find(catalogue, newest_first=True, limit=2)
    assert _texts(newest) == [ROWS[4][3], ROWS[3][3]]
    assert _texts(_find(catalogue, limit=2, offset=1)) == [ROWS[1][3], ROWS[2][3]]
    assert len(_find(catalogue, limit=None)) == len(ROWS)


def test_words_all_match_anywhere_and_written_forms_find_spoken_ones(catalogue):
    # Every word must appear, in any order and in any of text, correction, normalised text, callsign.
    assert _texts(_find(catalogue, text="descend lufthansa")) == [ROWS[2][3]]
    assert _find(catalogue, text="descend speedbird") == []
    # Written forms find what was stored spoken, and the other way round.
    assert _texts(_find(catalogue, text="FL350")) == [ROWS[0][3], ROWS[1][3]]
    assert _texts(_find(catalogue, text="DLH4AB climb")) == [ROWS[0][3], ROWS[1][3]]
    assert _texts(_find(catalogue, text="squawk seven zero zero zero")) == [ROWS[4][3]]
    # Normalising that only drops punctuation is not applied: what was typed is matched as typed.
    assert _find(catalogue, text="climb_") == []
    # Corrections: a word only the correction has, and the corrected filter.
    first = _find(catalogue, callsign="BAW123")[0]
    catalogue.correct_transcript(first["id"], "speedbird one two three hold short runway two seven left")
    assert _texts(_find(catalogue, text="seven left")) == [ROWS[3][3]]
    assert _texts(_find(catalogue, corrected=True)) == [ROWS[3][3]]
    assert len(_find(catalogue, corrected=False)) == len(ROWS) - 1
    # The total counts every match, not just the page.
    page = search_transcripts(catalogue, callsign="DLH", limit=2, offset=1, newest_first=True)
    assert page.total == 3 and len(page.rows) == 2 and page.more == 0
    assert _texts(page.rows) == [ROWS[1][3], ROWS[0][3]]
    assert search_transcripts(catalogue, limit=1).more == len(ROWS) - 1
    # A frequency chosen from a list matches exactly; typed, a part of the name does.
    assert _find(catalogue, source="EDDF", exact_source=True) == []
    assert len(_find(catalogue, source="EDDF tower", exact_source=True)) == 2


def test_role_and_readback_filters(catalogue):
    readback = {"status": "mismatch", "instruction": 5,
                "differences": [{"item": "level", "expected": "FL350", "heard": "FL330", "kind": "changed"}]}
    catalogue.add_transcripts([
        {"started_at": "2024-03-04T10:00:00Z", "duration_s": 2.0, "source": "EDDF tower", "text": "climb FL350 DLH4AB",
         "callsign": "lufthansa four alfa bravo", "role": "controller", "role_score": 0.9, "exchange": 1},
        {"started_at": "2024-03-04T10:00:04Z", "duration_s": 2.0, "source": "EDDF tower", "text": "climb FL330 DLH4AB",
         "callsign": "lufthansa four alfa bravo", "role": "pilot", "role_score": 0.8, "exchange": 1,
         "readback": readback},
        {"started_at": "2024-03-04T10:01:00Z", "duration_s": 2.0, "source": "EDDF tower", "text": "descend FL100 DLH4AB",
         "callsign": "lufthansa four alfa bravo", "role": "pilot", "role_score": 0.8, "exchange": 2,
         "readback": {"status": "ok", "instruction": 7, "differences": []}},
    ])
    (mismatch,) = _find(catalogue, readback="mismatch")
    assert mismatch["text"] == "climb FL330 DLH4AB" and mismatch["readback"] == readback
    assert (mismatch["role"], mismatch["role_score"], mismatch["exchange"]) == ("pilot", 0.8, 1)
    assert _texts(_find(catalogue, readback="ok")) == ["descend FL100 DLH4AB"]
    assert len(_find(catalogue, readback="checked")) == 2
    assert len(_find(catalogue, readback="none")) == len(ROWS) + 1
    assert _texts(_find(catalogue, role="controller")) == ["climb FL350 DLH4AB"]
    assert len(_find(catalogue, role="unknown")) == len(ROWS)  # rows without a role count as unknown
    assert len(_find(catalogue, role="pilot", callsign="DLH4AB", since="2024-03-04")) == 2
    with pytest.raises(DataError, match="mismatch"):
        _find(catalogue, readback="wrong")
    with pytest.raises(DataError, match="controller"):
        _find(catalogue, role="atc")


def test_times_people_type():
    now = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)
    assert parse_time("2h", now=now) == now - timedelta(hours=2)
    assert parse_time("90m", now=now) == now - timedelta(minutes=90)
    assert parse_time("2024-03-01") == datetime(2024, 3, 1, tzinfo=UTC)
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
    start = datetime(2024, 3, 5, 8, 0, tzinfo=UTC)
    rows = file_transcript_rows(segments, recording_start=start, source="archive", extra={"file_key": "k"})
    replace_file_transcripts(catalogue, audio, rows)
    replace_file_transcripts(catalogue, audio, rows[:1])  # the file transcribed again: its old rows go
    found = _find(catalogue, source="archive")
    assert len(found) == 1
    assert found[0]["started_at"] == "2024-03-05T08:00:01.500Z" and found[0]["offset_s"] == 1.5
    assert found[0]["duration_s"] == 2.5 and found[0]["audio_path"] == audio and found[0]["file_key"] == "k"
    assert found[0]["commands"] == [{"type": "climb"}]
    assert len(_find(catalogue, limit=None)) == len(ROWS) + 1


def test_migration_from_version_2_keeps_transcripts(tmp_path):
    db = tmp_path / "old.db"
    conn = sqlite3.connect(db, isolation_level=None)
    assert migrate(conn, target=2) == [1, 2]
    conn.execute("INSERT INTO transcripts (started_at, duration_s, source, text, callsign) "
                 "VALUES ('2024-01-01T00:00:00.000Z', 2.0, 'mic', 'Delta 12 climb', 'delta one two')")
    conn.close()
    with Catalogue(db) as cat:
        assert cat.schema_version == LATEST_VERSION
        rows = _find(cat, callsign="DAL12")
        assert _texts(rows) == ["Delta 12 climb"] and rows[0]["offset_s"] is None
        indexes = {r[0] for r in cat.connection.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
        assert {"transcripts_started", "transcripts_callsign", "transcripts_audio"} <= indexes


def test_migration_from_version_3_fills_the_normalised_text(tmp_path):
    # A live row stored by version 3 (corrections, no normalised text) is found by written forms.
    db = tmp_path / "v3.db"
    conn = sqlite3.connect(db, isolation_level=None)
    assert migrate(conn, target=3) == [1, 2, 3]
    conn.execute("INSERT INTO transcripts (started_at, duration_s, source, text, callsign, text_corrected, extra) "
                 "VALUES ('2026-11-24T21:05:00.000Z', 2.0, 'Tower', 'Lufthansa 4AB climb flight level 350', "
                 "'lufthansa four alfa bravo', 'lufthansa four alfa bravo climb flight level three six zero', "
                 "'{\"role\": \"controller\"}')")
    conn.close()
    with Catalogue(db) as cat:
        assert cat.schema_version == LATEST_VERSION >= 4
        (row,) = _find(cat, text="FL350")
        assert row["text_norm"] == "lufthansa four alfa bravo climb flight level three five zero"
        assert row["text_corrected"].endswith("three six zero") and row["role"] == "controller"
        assert _find(cat, text="six", corrected=True, role="controller") == [row]


def test_search_cli_table_json_and_errors(run_cli, catalogue, tmp_path):
    ws = tmp_path / "ws"
    table = run_cli("search", "-w", str(ws), "--callsign", "DLH4AB")
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert lines[0].split() == ["started_at", "source", "role", "callsign", "text", "readback", "where"]
    assert len(lines) == 3 and "2 transcript(s)." in table.stderr
    flagged = run_cli("search", "-w", str(ws), "--low-confidence", "-f", "jsonl")
    assert [json.loads(line)["callsign"] for line in flagged.stdout.splitlines()] == ["lufthansa one two three"]
    limited = run_cli("search", "-w", str(ws), "-n", "1")
    assert "1 of 5 transcript(s) (limit 1; 4 more" in limited.stderr and "--offset 1" in limited.stderr

    # Role and readback: tagged in the table, filtered on, carried whole in JSON.
    readback = {"status": "mismatch", "instruction": 0,
                "differences": [{"item": "level", "expected": "FL350", "heard": "FL330", "kind": "changed"}]}
    catalogue.add_transcripts([{"started_at": "2024-03-04T10:00:04Z", "duration_s": 2.0, "source": "EDDF tower",
                                "text": "climb FL330 DLH4AB", "callsign": "lufthansa four alfa bravo", "role": "pilot",
                                "role_score": 0.8, "exchange": 3, "readback": readback}])
    mismatches = run_cli("search", "-w", str(ws), "--readback", "mismatch", "--role", "pilot")
    assert mismatches.returncode == 0, mismatches.stderr
    header, row = mismatches.stdout.splitlines()
    assert "PLT #3" in row and "MISMATCH: level FL350 read back as FL330" in row
    assert row.index("PLT #3") == header.index("role") and row.index("MISMATCH") == header.index("readback")
    as_json = run_cli("search", "-w", str(ws), "--readback", "checked", "-f", "jsonl")
    (record,) = [json.loads(line) for line in as_json.stdout.splitlines()]
    assert record["readback"] == readback and (record["role"], record["exchange"]) == ("pilot", 3)
    wrong = run_cli("search", "-w", str(ws), "--readback", "maybe")
    assert wrong.returncode == 2 and "Traceback" not in wrong.stderr

    bad = run_cli("search", "-w", str(ws), "--since", "yesterday-ish")
    assert bad.returncode == 1 and "Traceback" not in bad.stderr and "not understood" in bad.stderr
    missing = run_cli("search", "-w", str(tmp_path / "empty"), "--text", "climb")
    assert missing.returncode == 1 and "no catalogue" in missing.stderr and "Traceback" not in missing.stderr
    assert not (tmp_path / "empty").exists()
