"""The SQLite catalogue: schema, transactions, CRUD, runs/results/transcripts and migrations."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from atc_whisper.data.catalogue import Catalogue, Sample
from atc_whisper.data.migrations import LATEST_VERSION, migrate
from atc_whisper.data.transcripts import search_transcripts
from atc_whisper.errors import DataError


def make_sample(root: Path, uid: str, split: str = "train", **kw) -> Sample:
    fields = dict(uid=uid, audio_path=root / "data" / "atc_dataset" / "synthetic" / f"{uid}.wav", sha256=f"sha-{uid}",
                  duration_s=2.5, text_raw=f"Speedbird {uid}", text_norm=f"speedbird {uid}", split=split,
                  source="synthetic", voice="espeak:en-us", engine="espeak", role="controller")
    fields.update(kw)
    return Sample(**fields)


@pytest.fixture
def catalogue(tmp_path: Path):
    with Catalogue(tmp_path / "data" / "atc_dataset" / "atc_dataset.db") as cat:
        yield cat


def test_new_database_is_current_wal_with_foreign_keys(catalogue: Catalogue, tmp_path: Path):
    conn = catalogue.connection
    assert catalogue.schema_version == LATEST_VERSION
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"samples", "runs", "results", "transcripts", "skipped"} <= tables
    assert catalogue.root == tmp_path.resolve()


def test_sample_round_trip_paths_and_filters(catalogue: Catalogue, tmp_path: Path):
    clean = make_sample(tmp_path, "u1", params={"tts": {"rate_wpm": 170}}, meaning={"callsign": "speedbird one"},
                        phase="approach")
    radio = make_sample(tmp_path, "u1-aug0", augmented=True, parent_uid="u1", snr_db=12.5,
                        audio_path=tmp_path / "data" / "augmented" / "u1-aug0.wav")
    other = make_sample(tmp_path, "r1", split="test", source="generic:live", role="pilot", voice=None, engine=None)
    ids = catalogue.add_samples([clean, radio, other])
    assert len(set(ids)) == 3
    stored = catalogue.connection.execute("SELECT audio_path FROM samples WHERE uid = 'u1'").fetchone()[0]
    assert stored == "data/atc_dataset/synthetic/u1.wav"  # relative to the workspace root
    got = catalogue.sample("u1")
    assert got is not None and got.audio_path == clean.audio_path and got.audio_path.is_absolute()
    assert got.params == {"tts": {"rate_wpm": 170}} and got.meaning == {"callsign": "speedbird one"}
    assert got.phase == "approach" and got.group_id == "u1" and got.created_at
    assert catalogue.sample("u1-aug0").group_id == "u1"  # a variant joins its parent's group by default
    assert [s.uid for s in catalogue.samples("train")] == ["u1", "u1-aug0"]
    assert [s.uid for s in catalogue.samples(augmented=True)] == ["u1-aug0"]
    assert catalogue.samples("train", augmented=True)[0].snr_db == 12.5
    assert [s.uid for s in catalogue.samples(source="generic:")] == ["r1"]
    assert [s.uid for s in catalogue.samples(role="pilot")] == ["r1"]
    assert catalogue.count("test") == 1 and len(catalogue.samples("all")) == 3
    with pytest.raises(DataError, match="unknown split"):
        catalogue.samples("validation")


def test_failed_batch_stores_nothing(catalogue: Catalogue, tmp_path: Path):
    catalogue.add_sample(make_sample(tmp_path, "a"))
    batch = [make_sample(tmp_path, "b"), make_sample(tmp_path, "a", sha256="other")]  # second repeats uid "a"
    with pytest.raises(DataError, match="already catalogued"):
        catalogue.add_samples(batch)
    assert catalogue.uids() == {"a"}
    with pytest.raises(DataError, match="split"):
        catalogue.add_sample(make_sample(tmp_path, "c", split="holdout"))
    dup_hash = make_sample(tmp_path, "d", sha256="sha-a")
    with pytest.raises(DataError):
        catalogue.add_sample(dup_hash)
    assert catalogue.uid_for_sha256("sha-a") == "a"


def test_transaction_rolls_back_every_write_on_error(catalogue: Catalogue, tmp_path: Path):
    with pytest.raises(RuntimeError), catalogue.transaction():
        catalogue.add_sample(make_sample(tmp_path, "x"))  # joins the outer transaction
        catalogue.record_skip("synthetic", "y", "test")
        raise RuntimeError("boom")
    assert catalogue.uids() == set() and catalogue.skipped() == []
    # A second connection sees committed rows only.
    catalogue.add_sample(make_sample(tmp_path, "z"))
    other = sqlite3.connect(catalogue.db_path)
    assert other.execute("SELECT uid FROM samples").fetchall() == [("z",)]
    other.close()


def test_runs_results_and_cascade(catalogue: Catalogue, tmp_path: Path):
    (sid,) = catalogue.add_samples([make_sample(tmp_path, "s")])
    run = catalogue.start_run("evaluate", {"model": "tiny"})
    assert catalogue.runs("evaluate")[0]["status"] == "running"
    n = catalogue.add_results(run, [
        {"sample_id": sid, "model": "base", "hypothesis": "speed bird", "wer": 0.5, "callsign_ok": False,
         "avg_logprob": -0.3, "snr_bucket": "10-20"},
        {"sample_id": sid, "model": "fine-tuned", "hypothesis": "speedbird s", "wer": 0.0, "callsign_ok": True},
    ])
    assert n == 2
    catalogue.finish_run(run, "completed", {"wer": 0.25}, tmp_path / "model")
    r = catalogue.runs()[0]
    assert r["status"] == "completed" and r["metrics"] == {"wer": 0.25} and r["config"] == {"model": "tiny"}
    assert r["model_path"] == str(tmp_path / "model") and r["finished_at"]
    rows = catalogue.results(run)
    assert rows[0]["callsign_ok"] == 0 and rows[0]["snr_bucket"] == "10-20" and rows[1]["callsign_ok"] == 1
    with pytest.raises(DataError, match="unknown run or sample"):
        catalogue.add_results(run, [{"sample_id": 999, "model": "base", "hypothesis": "x"}])
    with pytest.raises(DataError, match="lacks"):
        catalogue.add_results(run, [{"sample_id": sid, "model": "base"}])
    with pytest.raises(DataError, match="not in the catalogue"):
        catalogue.finish_run(12345)
    with pytest.raises(DataError, match="run kind"):
        catalogue.start_run("dance", {})
    assert catalogue.delete_samples(["s"]) == 1
    assert catalogue.results(run) == []  # foreign key cascade


def test_transcripts_and_skips(catalogue: Catalogue, tmp_path: Path):
    ids = catalogue.add_transcripts([
        {"started_at": "2026-01-01T10:00:00Z", "duration_s": 3.2, "source": "mic", "text": "lufthansa one two",
         "avg_logprob": -0.2, "low_confidence": False, "callsign": "lufthansa one two",
         "commands": [{"kind": "climb", "value": "FL120"}], "audio_path": tmp_path / "data" / "live" / "t1.wav",
         "latency_s": 0.4, "lag_s": 0.1},
        {"started_at": 0.0, "duration_s": 1.0, "source": "stdin", "text": ""},
    ])
    rows = catalogue.transcripts()
    assert [r["id"] for r in rows] == ids
    assert rows[0]["commands"] == [{"kind": "climb", "value": "FL120"}] and rows[0]["lag_s"] == 0.1
    assert rows[0]["audio_path"] == tmp_path / "data" / "live" / "t1.wav" and rows[1]["audio_path"] is None
    assert rows[1]["started_at"].startswith("1970-01-01T00:00:00")
    catalogue.record_skip("atco2", "a.wav", "too long")
    catalogue.record_skip("atco2", "a.wav", "silent")  # the latest reason wins, no duplicate rows
    assert [(s["item"], s["reason"]) for s in catalogue.skipped("atco2")] == [("a.wav", "silent")]
    catalogue.clear_skip("atco2", "a.wav")
    assert catalogue.skipped() == []


def test_stats_groups_counts_and_hours(catalogue: Catalogue, tmp_path: Path):
    catalogue.add_samples([make_sample(tmp_path, f"u{i}", duration_s=1800.0) for i in range(3)]
                          + [make_sample(tmp_path, "p", role=None, split="dev", duration_s=360.0)])
    rows = {(r["source"], r["split"], r["role"]): (r["n"], round(r["hours"], 3)) for r in catalogue.stats()}
    assert rows == {("synthetic", "train", "controller"): (3, 1.5), ("synthetic", "dev", "unknown"): (1, 0.1)}


def test_migration_from_version_1_keeps_data(tmp_path: Path):
    db = tmp_path / "data" / "atc_dataset" / "atc_dataset.db"
    db.parent.mkdir(parents=True)
    conn = sqlite3.connect(db, isolation_level=None)
    assert migrate(conn, target=1) == [1]
    conn.execute(
        "INSERT INTO samples (uid, audio_path, sha256, duration_s, sample_rate, source, params, text_raw, text_norm,"
        " split, created_at) VALUES ('old', 'data/atc_dataset/synthetic/old.wav', 'h', 1.5, 16000, 'synthetic', '{}',"
        " 'Climb FL350', 'climb flight level three five zero', 'dev', '2025-01-01T00:00:00Z')"
    )
    conn.execute("INSERT INTO runs (kind, config, started_at, status) VALUES ('train', '{}', '2025-01-01', 'completed')")
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 1
    conn.close()

    with Catalogue(db) as cat:
        assert cat.schema_version == LATEST_VERSION
        (old,) = cat.samples("dev")
        assert (old.uid, old.text_norm, old.duration_s) == ("old", "climb flight level three five zero", 1.5)
        assert old.group_id == "old" and old.meaning == {} and old.phase is None
        assert old.audio_path == tmp_path.resolve() / "data" / "atc_dataset" / "synthetic" / "old.wav"
        assert cat.runs("train")[0]["status"] == "completed"
        run = cat.start_run("evaluate", {})
        assert cat.add_results(run, [{"sample_id": old.id, "model": "base", "hypothesis": "climb"}]) == 1
    with Catalogue(db) as cat:  # opening again applies nothing and changes nothing
        assert cat.schema_version == LATEST_VERSION and cat.count() == 1


def test_transcript_corrections_survive_migration_and_search_escapes_wildcards(tmp_path: Path):
    db = tmp_path / "data" / "atc_dataset" / "atc_dataset.db"
    db.parent.mkdir(parents=True)
    conn = sqlite3.connect(db, isolation_level=None)
    migrate(conn, target=2)  # a live transcript stored before corrections existed
    conn.execute("INSERT INTO transcripts (started_at, duration_s, source, text, callsign, extra) VALUES "
                 "('2026-11-24T21:05:00.000Z', 3.0, 'Tower', 'climb 100% now', 'dlh4ab', '{\"index\": 0}')")
    conn.close()
    with Catalogue(db) as cat:
        old = cat.transcript(1)
        assert old["text"] == "climb 100% now" and old["text_corrected"] is None and old["index"] == 0
        cat.add_transcripts([{"started_at": "2026-11-24T21:06:00.000Z", "duration_s": 1.0, "source": "Tower",
                              "text": "climb 1000 now"}])
        # LIKE wildcards in a query are literal characters, not patterns.
        assert [r["id"] for r in search_transcripts(cat, "100%").rows] == [1]
        assert search_transcripts(cat, "climb_").total == 0
        assert search_transcripts(cat, since="2026-11-24T21:06").total == 1
        fixed = cat.correct_transcript(1, " climb  flight level one zero zero ")
        assert fixed["text_corrected"] == "climb flight level one zero zero" and fixed["text"] == "climb 100% now"
        assert [r["id"] for r in search_transcripts(cat, "flight", corrected=True).rows] == [1]
        # Setting it back to what the model heard is no correction.
        assert cat.correct_transcript(1, "climb 100% now")["text_corrected"] is None
        with pytest.raises(DataError, match="transcript 99"):
            cat.correct_transcript(99, "x")


def test_bad_database_files_give_clear_errors(tmp_path: Path):
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"this is not sqlite at all" * 100)
    with pytest.raises(DataError, match="cannot open the catalogue"):
        Catalogue(junk)
    future = tmp_path / "future.db"
    conn = sqlite3.connect(future)
    conn.execute("PRAGMA user_version = 99")
    conn.close()
    with pytest.raises(DataError, match="newer"):
        Catalogue(future)
    with pytest.raises(DataError, match="folder"):
        Catalogue(tmp_path)
