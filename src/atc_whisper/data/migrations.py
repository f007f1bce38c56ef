"""Numbered schema migrations of the catalogue, applied in order when a database is opened.

The schema version lives in SQLite's ``PRAGMA user_version``. Migration ``n`` turns a
version ``n - 1`` database into version ``n``; each runs in its own transaction together
with the version bump, so a crash leaves the database at the old or the new version, never
in between. Never edit a released migration: append a new one.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

from ..log import get_logger

log = get_logger(__name__)

# Version 1: the first release - samples, runs and the skip log.
_V1 = """
CREATE TABLE samples (
    id           INTEGER PRIMARY KEY,
    uid          TEXT NOT NULL UNIQUE,
    audio_path   TEXT NOT NULL UNIQUE,
    sha256       TEXT NOT NULL UNIQUE,
    duration_s   REAL NOT NULL CHECK (duration_s >= 0),
    sample_rate  INTEGER NOT NULL,
    source       TEXT NOT NULL,
    engine       TEXT,
    voice        TEXT,
    params       TEXT NOT NULL DEFAULT '{}',
    augmented    INTEGER NOT NULL DEFAULT 0,
    parent_uid   TEXT,
    snr_db       REAL,
    role         TEXT,
    text_raw     TEXT NOT NULL,
    text_norm    TEXT NOT NULL,
    split        TEXT NOT NULL CHECK (split IN ('train', 'dev', 'test')),
    created_at   TEXT NOT NULL
);
CREATE INDEX samples_split ON samples (split);
CREATE INDEX samples_source ON samples (source);

CREATE TABLE runs (
    id           INTEGER PRIMARY KEY,
    kind         TEXT NOT NULL CHECK (kind IN ('train', 'evaluate', 'prepare', 'import')),
    config       TEXT NOT NULL DEFAULT '{}',
    started_at   TEXT NOT NULL,
    finished_at  TEXT,
    status       TEXT NOT NULL DEFAULT 'running',
    metrics      TEXT NOT NULL DEFAULT '{}',
    model_path   TEXT
);

CREATE TABLE skipped (
    id           INTEGER PRIMARY KEY,
    source       TEXT NOT NULL,
    item         TEXT NOT NULL,
    reason       TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    UNIQUE (source, item)
);
"""

# Version 2: structured meaning, leakage groups, speakers and flight phase on samples;
# evaluation results and live transcripts.
_V2 = """
ALTER TABLE samples ADD COLUMN phase TEXT;
ALTER TABLE samples ADD COLUMN speaker TEXT;
ALTER TABLE samples ADD COLUMN meaning TEXT NOT NULL DEFAULT '{}';
ALTER TABLE samples ADD COLUMN group_id TEXT;
UPDATE samples SET group_id = COALESCE(parent_uid, uid) WHERE group_id IS NULL;
CREATE INDEX samples_group ON samples (group_id);

ALTER TABLE skipped ADD COLUMN run_id INTEGER REFERENCES runs (id) ON DELETE SET NULL;

CREATE TABLE results (
    id                INTEGER PRIMARY KEY,
    run_id            INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    sample_id         INTEGER NOT NULL REFERENCES samples (id) ON DELETE CASCADE,
    model             TEXT NOT NULL,
    hypothesis        TEXT NOT NULL,
    wer               REAL,
    callsign_ok       INTEGER,
    commands_ok       INTEGER,
    avg_logprob       REAL,
    no_speech_prob    REAL,
    compression_ratio REAL,
    low_confidence    INTEGER,
    latency_s         REAL,
    extra             TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX results_run ON results (run_id);

CREATE TABLE transcripts (
    id                INTEGER PRIMARY KEY,
    started_at        TEXT NOT NULL,
    duration_s        REAL NOT NULL,
    source            TEXT NOT NULL,
    text              TEXT NOT NULL,
    avg_logprob       REAL,
    no_speech_prob    REAL,
    compression_ratio REAL,
    low_confidence    INTEGER,
    callsign          TEXT,
    commands          TEXT NOT NULL DEFAULT '[]',
    audio_path        TEXT,
    latency_s         REAL,
    extra             TEXT NOT NULL DEFAULT '{}'
);
"""

# Version 3: corrections of live transcripts made in the web view, kept beside the machine text
# (``text`` is never overwritten, so what the model heard stays comparable), and indexes for
# the page's search by time and callsign.
_V3 = """
ALTER TABLE transcripts ADD COLUMN text_corrected TEXT;
ALTER TABLE transcripts ADD COLUMN corrected_at TEXT;
CREATE INDEX transcripts_started ON transcripts (started_at);
CREATE INDEX transcripts_callsign ON transcripts (callsign);
"""

# Version 4: transcripts of whole files (``transcribe --catalogue``) and searching them
# (``atc-whisper search``, the serve page and API): where in the file a row starts, the
# normalised text for word search, and an index for the file look-ups. The time and callsign
# indexes come from version 3; "IF NOT EXISTS" keeps this migration whole on its own.
_V4 = """
ALTER TABLE transcripts ADD COLUMN offset_s REAL;
ALTER TABLE transcripts ADD COLUMN text_norm TEXT;
CREATE INDEX IF NOT EXISTS transcripts_started ON transcripts (started_at);
CREATE INDEX IF NOT EXISTS transcripts_callsign ON transcripts (callsign);
CREATE INDEX IF NOT EXISTS transcripts_audio ON transcripts (audio_path);
"""


def _fill_text_norm(conn: sqlite3.Connection) -> None:
    """Version 4, after its SQL: the normalised text of the transcripts stored before it, so that
    the search finds old live rows the way it finds new ones ("FL350" -> "flight level three five zero")."""
    from ..phraseology import normalize_atc

    rows = conn.execute("SELECT id, text FROM transcripts WHERE text_norm IS NULL").fetchall()
    if len(rows) > 10_000:  # ~0.4 ms a row: say why the first open after an upgrade takes a while
        log.info("normalising the text of %d stored transcripts for search (once)", len(rows))
    conn.executemany("UPDATE transcripts SET text_norm = ? WHERE id = ?",
                     ((normalize_atc(str(text)), int(row_id)) for row_id, text in rows))


# Version 5: per-recording context of real corpora (ATCO2 ``.info`` files: airport, channel,
# frequency, the callsigns and waypoints nearby), keyed by the samples' leakage group, so
# evaluation can bias each segment with its own recording's callsign list.
_V5 = """
CREATE TABLE recordings (
    id            INTEGER PRIMARY KEY,
    source        TEXT NOT NULL,
    recording     TEXT NOT NULL,
    group_id      TEXT NOT NULL,
    audio_path    TEXT,
    airport       TEXT,
    airport_name  TEXT,
    channel       TEXT,
    frequency_mhz REAL,
    callsigns     TEXT NOT NULL DEFAULT '[]',
    waypoints     TEXT NOT NULL DEFAULT '[]',
    info          TEXT NOT NULL DEFAULT '{}',
    raw_info      TEXT NOT NULL DEFAULT '',
    info_path     TEXT,
    created_at    TEXT NOT NULL,
    UNIQUE (source, recording)
);
CREATE INDEX recordings_group ON recordings (group_id);
"""


MIGRATIONS: list[str] = [_V1, _V2, _V3, _V4, _V5]
#: Python steps run after a version's SQL, in the same transaction.
_AFTER_SQL: dict[int, Callable[[sqlite3.Connection], None]] = {4: _fill_text_norm}
LATEST_VERSION = len(MIGRATIONS)


def schema_version(conn: sqlite3.Connection) -> int:
    """The schema version stored in the database (0 for a new, empty file)."""
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def migrate(conn: sqlite3.Connection, target: int = LATEST_VERSION) -> list[int]:
    """Apply every migration above the database's version up to ``target``.

    Args:
        conn: an open connection in autocommit mode (``isolation_level=None``).
        target: the version to reach; tests pass a lower one to build an old database.

    Returns:
        The versions that were applied, in order.

    Raises:
        sqlite3.DatabaseError: a migration failed; the database stays at its previous version.
        ValueError: the database is newer than this code knows.
    """
    current = schema_version(conn)
    if current > LATEST_VERSION:
        raise ValueError(f"catalogue schema version {current} is newer than this toolkit's {LATEST_VERSION}")
    applied = []
    for version in range(current + 1, target + 1):
        conn.execute("BEGIN IMMEDIATE")
        try:
            for statement in _statements(MIGRATIONS[version - 1]):
                conn.execute(statement)
            if version in _AFTER_SQL:
                _AFTER_SQL[version](conn)
            conn.execute(f"PRAGMA user_version = {version}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        applied.append(version)
    return applied


def _statements(script: str) -> list[str]:
    """Split a migration script into statements (none of ours contain ';' inside literals)."""
    return [s.strip() for s in script.split(";") if s.strip()]
