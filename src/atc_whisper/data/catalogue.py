"""The SQLite catalogue: every sample, run, evaluation result and transcript (live or from files).

One file, ``data/atc_dataset/atc_dataset.db``, is the single source of truth about the data:
which clips exist, what was said in them, where they came from and which split they are in.
It is opened in WAL mode (readers never block the writer) with foreign keys on, every write
runs in one transaction, and the schema is brought up to date by numbered migrations
(:mod:`atc_whisper.data.migrations`) each time it is opened.

Audio paths are stored relative to the workspace root so a workspace can be moved; the API
hands out absolute :class:`~pathlib.Path` objects.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

from ..errors import DataError
from .migrations import LATEST_VERSION, migrate, schema_version

SPLITS = ("train", "dev", "test")
RUN_KINDS = ("train", "evaluate", "prepare", "import")
RUN_STATUSES = ("running", "completed", "failed", "interrupted")
# How long a writer waits for another process's transaction before giving up.
BUSY_TIMEOUT_S = 30.0


def now_iso() -> str:
    """UTC time as ISO 8601 with seconds, the format of every timestamp in the catalogue."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


@dataclass
class Sample:
    """One audio clip with its transcript.

    Attributes:
        uid: stable identity (the same utterance or corpus segment always gets the same uid).
        audio_path: absolute path of the 16 kHz mono WAV file.
        sha256: hex digest of the file, checked by ``atc-whisper data check``.
        duration_s: length in seconds.
        text_raw: the transcript as spoken/annotated (TTS input, or the corpus text with its tags).
        text_norm: the reference transcript in ATC convention (what models are scored against).
        split: "train", "dev" or "test".
        source: "synthetic", "atco2", "atcosim" or "generic:<name>".
        engine: TTS engine ("espeak", "piper", "kokoro", "flite", "festival") for synthetic clips, else None.
        voice: TTS voice id ("espeak:en-us+m3") for synthetic clips, else None.
        role: "controller", "pilot" or None when unknown.
        snr_db: signal-to-noise ratio of the added radio noise, None for clean clips.
        params: TTS and radio-channel parameters (synthetic) or corpus metadata (imported).
        augmented: True for radio-channel variants of a clean clip.
        parent_uid: uid of the clean clip an augmented variant was made from.
        phase: flight phase of a generated utterance.
        speaker: speaker or recording-channel label of real corpora.
        meaning: structured meaning, e.g. {"callsign": ..., "commands": [...]}.
        group_id: leakage group; all samples of a group are in the same split.
        sample_rate: sampling rate of the file, Hz.
        id: database row id (None before the sample is stored).
        created_at: when the row was written (UTC, ISO 8601).
    """

    uid: str
    audio_path: Path
    sha256: str
    duration_s: float
    text_raw: str
    text_norm: str
    split: str
    source: str
    engine: str | None = None
    voice: str | None = None
    role: str | None = None
    snr_db: float | None = None
    params: dict[str, Any] = field(default_factory=dict)
    augmented: bool = False
    parent_uid: str | None = None
    phase: str | None = None
    speaker: str | None = None
    meaning: dict[str, Any] = field(default_factory=dict)
    group_id: str | None = None
    sample_rate: int = 16_000
    id: int | None = None
    created_at: str | None = None


@dataclass
class Recording:
    """Context of one source recording of a real corpus, shared by all of its segments.

    ATCO2 ships an ``.info`` file beside each recording: the airport, the channel and its
    frequency, the callsigns of the aircraft nearby (from surveillance data, with their spoken
    forms) and the waypoints nearby. ``evaluate --context recording`` and
    ``transcribe --context recording`` bias each segment with its own recording's callsigns.

    Attributes:
        source: Catalogue source of its segments ("atco2", "generic:<name>").
        recording: The recording's name (file stem), unique within the source.
        group_id: The ``group_id`` its segments carry in ``samples`` (``"atco2:<stem>"``).
        audio_path: The source recording (absolute, or relative to the workspace when inside it).
        airport: ICAO code of the airport ("LKPR"), when known.
        airport_name: Its name ("Prague Ruzyne").
        channel: The ATC unit / channel ("Tower", "Approach").
        frequency_mhz: The channel's frequency, MHz.
        callsigns: Callsigns nearby: dicts with ``code`` ("CSA4AB"), ``spoken`` (as the file
            gives it, may be empty) and ``reference`` (reference words, "csa four alfa bravo").
        waypoints: Waypoint names nearby.
        info: Every field of the context file, parsed (``fields``), plus parser ``warnings``.
        raw_info: The context file's text as it was.
        info_path: Where it was read from.
        id: Database row id.
        created_at: When the row was (last) written.
    """

    source: str
    recording: str
    group_id: str
    audio_path: Path | None = None
    airport: str | None = None
    airport_name: str | None = None
    channel: str | None = None
    frequency_mhz: float | None = None
    callsigns: list[dict[str, str]] = field(default_factory=list)
    waypoints: list[str] = field(default_factory=list)
    info: dict[str, Any] = field(default_factory=dict)
    raw_info: str = ""
    info_path: Path | None = None
    id: int | None = None
    created_at: str | None = None

    def known_callsigns(self) -> list[str]:
        """The callsigns nearby in reference words, in file order, without duplicates."""
        return list(dict.fromkeys(c["reference"] for c in self.callsigns if c.get("reference")))


_RECORDING_COLUMNS = (
    "source", "recording", "group_id", "audio_path", "airport", "airport_name", "channel", "frequency_mhz",
    "callsigns", "waypoints", "info", "raw_info", "info_path", "created_at",
)
_SAMPLE_COLUMNS = (
    "uid", "audio_path", "sha256", "duration_s", "sample_rate", "source", "engine", "voice", "params",
    "augmented", "parent_uid", "snr_db", "role", "phase", "speaker", "text_raw", "text_norm", "meaning",
    "group_id", "split", "created_at",
)
_RESULT_COLUMNS = (
    "sample_id", "model", "hypothesis", "wer", "callsign_ok", "commands_ok", "avg_logprob",
    "no_speech_prob", "compression_ratio", "low_confidence", "latency_s",
)
_TRANSCRIPT_COLUMNS = (
    "started_at", "duration_s", "source", "text", "avg_logprob", "no_speech_prob", "compression_ratio",
    "low_confidence", "callsign", "commands", "audio_path", "latency_s", "offset_s", "text_norm",
)


def _json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=_json_default)


def _json_default(value: Any) -> Any:
    # Commands and other small dataclasses from the phraseology module; numpy scalars.
    if hasattr(value, "__dataclass_fields__"):
        return {k: getattr(value, k) for k in value.__dataclass_fields__}
    if hasattr(value, "item"):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    return str(value)


def _bool_or_none(value: Any) -> int | None:
    return None if value is None else int(bool(value))


def remove_partial_files(folder: Path, suffix: str = ".wav") -> int:
    """Delete half-written temporary files (``.<name>.<random><suffix>``) a killed run left in ``folder``.

    Atomic writes go to such hidden temporaries first; after ``kill -9`` they are garbage.
    Returns how many were removed.
    """
    if not folder.is_dir():
        return 0
    removed = 0
    for path in folder.glob(f".*{suffix}"):
        with contextlib.suppress(OSError):
            path.unlink()
            removed += 1
    return removed


class Catalogue:
    """The dataset catalogue in one SQLite file.

    Use it as a context manager::

        with Catalogue(workspace.db_path) as catalogue:
            train = catalogue.samples("train")

    Args:
        db_path: the database file; it and its folder are created when missing.
        root: folder that relative audio paths are resolved against; by default the
            workspace root, i.e. three levels above ``data/atc_dataset/atc_dataset.db``.

    Raises:
        DataError: the file is not a database, is newer than this code, or cannot be opened.
    """

    def __init__(self, db_path: str | Path, *, root: str | Path | None = None) -> None:
        self.db_path = Path(db_path).expanduser().resolve()
        self.root = Path(root).resolve() if root is not None else self.db_path.parent.parent.parent
        if self.db_path.is_dir():
            raise DataError(f"catalogue {self.db_path} is a folder; pass the .db file.")
        self.db_path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._depth = 0
        try:
            # isolation_level=None: we issue BEGIN/COMMIT ourselves, so a transaction is
            # exactly what `transaction()` encloses. check_same_thread=False lets the live
            # writer thread share the object; the lock serialises access.
            self._conn = sqlite3.connect(
                self.db_path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
            )
            self._conn.row_factory = sqlite3.Row
            self._conn.execute("PRAGMA journal_mode = WAL")
            self._conn.execute("PRAGMA foreign_keys = ON")
            self._conn.execute("PRAGMA synchronous = NORMAL")
            migrate(self._conn)
        except sqlite3.DatabaseError as exc:
            with contextlib.suppress(Exception):
                self._conn.close()
            raise DataError(
                f"cannot open the catalogue {self.db_path}: {exc}. If the file is damaged, move it away "
                "and run 'atc-whisper prepare' (and your imports) again to rebuild it."
            ) from None
        except ValueError as exc:
            self._conn.close()
            raise DataError(f"{exc} ({self.db_path}); upgrade atc-whisper to read this catalogue.") from None

    # -- lifecycle -----------------------------------------------------------------------
    def close(self) -> None:
        """Close the connection (idempotent)."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None  # type: ignore[assignment]

    def __enter__(self) -> Catalogue:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    @property
    def schema_version(self) -> int:
        """The schema version of the open database (equals ``migrations.LATEST_VERSION``)."""
        return schema_version(self._conn)

    @property
    def connection(self) -> sqlite3.Connection:
        """The underlying connection, for read-only queries the API does not cover."""
        return self._conn

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """Run the enclosed writes as one transaction: all of them are stored, or none.

        Nested use joins the outer transaction.
        """
        with self._lock:
            if self._depth:
                self._depth += 1
                try:
                    yield self._conn
                finally:
                    self._depth -= 1
                return
            self._conn.execute("BEGIN IMMEDIATE")
            self._depth = 1
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            else:
                self._conn.execute("COMMIT")
            finally:
                self._depth = 0

    # -- paths -----------------------------------------------------------------------------
    def relative_path(self, path: str | Path) -> str:
        """How ``path`` is stored: relative to the root when inside it, else absolute."""
        path = Path(path).resolve()
        try:
            return path.relative_to(self.root).as_posix()
        except ValueError:
            return str(path)

    def absolute_path(self, stored: str) -> Path:
        """The absolute path of a stored audio path."""
        path = Path(stored)
        return path if path.is_absolute() else self.root / path

    # -- samples ---------------------------------------------------------------------------
    def add_sample(self, sample: Sample) -> int:
        """Store one sample and return its row id (see :meth:`add_samples`)."""
        return self.add_samples([sample])[0]

    def add_samples(self, samples: Iterable[Sample]) -> list[int]:
        """Store samples in one transaction and return their row ids.

        Raises:
            DataError: a uid, audio path or sha256 is already catalogued, or a field is invalid;
                nothing is stored then.
        """
        rows = []
        for s in samples:
            if s.split not in SPLITS:
                raise DataError(f"sample {s.uid}: split {s.split!r} is not one of {', '.join(SPLITS)}.")
            rows.append((
                s.uid, self.relative_path(s.audio_path), s.sha256, float(s.duration_s), int(s.sample_rate),
                s.source, s.engine, s.voice, _json(s.params), int(bool(s.augmented)), s.parent_uid,
                None if s.snr_db is None else float(s.snr_db), s.role, s.phase, s.speaker, s.text_raw,
                s.text_norm, _json(s.meaning), s.group_id or s.parent_uid or s.uid, s.split,
                s.created_at or now_iso(),
            ))
        sql = f"INSERT INTO samples ({', '.join(_SAMPLE_COLUMNS)}) VALUES ({', '.join('?' * len(_SAMPLE_COLUMNS))})"
        ids = []
        try:
            with self.transaction() as conn:
                for row in rows:
                    ids.append(int(conn.execute(sql, row).lastrowid or 0))
        except sqlite3.IntegrityError as exc:
            raise DataError(f"cannot add samples to {self.db_path}: {exc} (already catalogued?).") from None
        return ids

    def _to_sample(self, row: sqlite3.Row) -> Sample:
        return Sample(
            id=row["id"], uid=row["uid"], audio_path=self.absolute_path(row["audio_path"]), sha256=row["sha256"],
            duration_s=row["duration_s"], sample_rate=row["sample_rate"], source=row["source"],
            engine=row["engine"], voice=row["voice"], params=json.loads(row["params"] or "{}"),
            augmented=bool(row["augmented"]), parent_uid=row["parent_uid"], snr_db=row["snr_db"],
            role=row["role"], phase=row["phase"], speaker=row["speaker"], text_raw=row["text_raw"],
            text_norm=row["text_norm"], meaning=json.loads(row["meaning"] or "{}"), group_id=row["group_id"],
            split=row["split"], created_at=row["created_at"],
        )

    def samples(
        self,
        split: str | None = None,
        *,
        source: str | None = None,
        augmented: bool | None = None,
        role: str | None = None,
        limit: int | None = None,
    ) -> list[Sample]:
        """Samples in a stable order (by row id), optionally filtered.

        Args:
            split: "train", "dev" or "test"; None or "all" for every split.
            source: exact source ("synthetic", "atco2", "generic:foo") or a prefix ending in
                ":" ("generic:") to match a family of sources.
            augmented: True for radio variants only, False for clean/real clips only.
            role: "controller" or "pilot".
            limit: at most this many samples.

        Raises:
            DataError: ``split`` is not a known split.
        """
        where: list[str] = []
        args: list[Any] = []
        if split not in (None, "all"):
            if split not in SPLITS:
                raise DataError(f"unknown split {split!r}; valid splits: {', '.join(SPLITS)}, all.")
            where.append("split = ?")
            args.append(split)
        if source is not None:
            if source.endswith(":"):
                where.append("source LIKE ? ESCAPE '\\'")
                args.append(source.replace("%", "\\%").replace("_", "\\_") + "%")
            else:
                where.append("source = ?")
                args.append(source)
        if augmented is not None:
            where.append("augmented = ?")
            args.append(int(augmented))
        if role is not None:
            where.append("role = ?")
            args.append(role)
        sql = "SELECT * FROM samples" + (f" WHERE {' AND '.join(where)}" if where else "") + " ORDER BY id"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        with self._lock:
            return [self._to_sample(r) for r in self._conn.execute(sql, args)]

    def sample(self, uid: str) -> Sample | None:
        """The sample with this uid, or None."""
        with self._lock:
            row = self._conn.execute("SELECT * FROM samples WHERE uid = ?", (uid,)).fetchone()
        return None if row is None else self._to_sample(row)

    def uids(self, source: str | None = None) -> set[str]:
        """Every catalogued uid (of one source), for resuming interrupted work."""
        sql, args = "SELECT uid FROM samples", ()
        if source is not None:
            sql, args = "SELECT uid FROM samples WHERE source = ?", (source,)  # type: ignore[assignment]
        with self._lock:
            return {r[0] for r in self._conn.execute(sql, args)}

    def uid_for_sha256(self, sha256: str) -> str | None:
        """The uid of the sample whose file has this hash, or None."""
        with self._lock:
            row = self._conn.execute("SELECT uid FROM samples WHERE sha256 = ?", (sha256,)).fetchone()
        return None if row is None else row[0]

    def count(self, split: str | None = None, source: str | None = None) -> int:
        """Number of samples (in a split / of a source)."""
        return len(self.samples(split, source=source))

    def delete_samples(self, uids: Iterable[str]) -> int:
        """Remove samples (and their results) by uid in one transaction; returns how many went."""
        with self.transaction() as conn:
            return sum(conn.execute("DELETE FROM samples WHERE uid = ?", (u,)).rowcount for u in uids)

    def stats(self) -> list[dict[str, Any]]:
        """Counts and hours per (source, split, role, augmented), for ``atc-whisper data stats``."""
        sql = (
            "SELECT source, split, COALESCE(role, 'unknown') AS role, augmented, COUNT(*) AS n, "
            "SUM(duration_s) / 3600.0 AS hours FROM samples GROUP BY source, split, role, augmented "
            "ORDER BY source, split, role, augmented"
        )
        with self._lock:
            return [dict(r) for r in self._conn.execute(sql)]

    def verify_files(self, *, progress: bool = False) -> list[tuple[str, str]]:
        """Samples whose file is missing, unreadable or no longer matches the stored sha256.

        Returns:
            (uid, problem) pairs, the problem naming the file; empty when all is well.
        """
        from tqdm.auto import tqdm

        from ..fsutil import sha256_file

        problems = []
        for s in tqdm(self.samples(), desc="check files", unit="file", disable=not progress, leave=False):
            if not s.audio_path.is_file():
                problems.append((s.uid, f"file {s.audio_path} is missing"))
                continue
            try:
                digest = sha256_file(s.audio_path)
            except OSError as exc:
                problems.append((s.uid, f"file {s.audio_path} cannot be read ({exc.strerror or exc})"))
                continue
            if digest != s.sha256:
                problems.append((s.uid, f"file {s.audio_path} was modified (sha256 {digest[:12]}... "
                                        f"!= catalogued {s.sha256[:12]}...)"))
        return problems

    # -- recordings (per-recording context of real corpora) ------------------------------
    def upsert_recording(self, recording: Recording) -> int:
        """Store a recording's context, replacing an earlier version of it; returns its row id."""
        row = (
            recording.source, recording.recording, recording.group_id,
            None if recording.audio_path is None else self.relative_path(recording.audio_path),
            recording.airport, recording.airport_name, recording.channel,
            None if recording.frequency_mhz is None else float(recording.frequency_mhz),
            _json(list(recording.callsigns)), _json(list(recording.waypoints)), _json(recording.info),
            recording.raw_info, None if recording.info_path is None else str(recording.info_path),
            recording.created_at or now_iso(),
        )
        updates = ", ".join(f"{c} = excluded.{c}" for c in _RECORDING_COLUMNS if c not in ("source", "recording"))
        sql = (f"INSERT INTO recordings ({', '.join(_RECORDING_COLUMNS)}) VALUES ({', '.join('?' * len(row))}) "
               f"ON CONFLICT (source, recording) DO UPDATE SET {updates}")
        with self.transaction() as conn:
            conn.execute(sql, row)
            found = conn.execute("SELECT id FROM recordings WHERE source = ? AND recording = ?",
                                 (recording.source, recording.recording)).fetchone()
        return int(found[0])

    def _to_recording(self, row: sqlite3.Row) -> Recording:
        return Recording(
            id=row["id"], source=row["source"], recording=row["recording"], group_id=row["group_id"],
            audio_path=None if row["audio_path"] is None else self.absolute_path(row["audio_path"]),
            airport=row["airport"], airport_name=row["airport_name"], channel=row["channel"],
            frequency_mhz=row["frequency_mhz"], callsigns=json.loads(row["callsigns"] or "[]"),
            waypoints=json.loads(row["waypoints"] or "[]"), info=json.loads(row["info"] or "{}"),
            raw_info=row["raw_info"] or "", info_path=None if row["info_path"] is None else Path(row["info_path"]),
            created_at=row["created_at"],
        )

    def recordings(self, source: str | None = None) -> list[Recording]:
        """Recording contexts (of one source), in the order they were first stored."""
        sql, args = "SELECT * FROM recordings", ()
        if source is not None:
            sql, args = sql + " WHERE source = ?", (source,)  # type: ignore[assignment]
        with self._lock:
            return [self._to_recording(r) for r in self._conn.execute(sql + " ORDER BY id", args)]

    def recordings_by_group(self) -> dict[str, Recording]:
        """Every recording context keyed by the ``group_id`` of its segments."""
        return {r.group_id: r for r in self.recordings()}

    def find_recording(self, audio_path: str | Path) -> Recording | None:
        """The context of a source recording file: matched by its path, else by its name when unique."""
        path = Path(audio_path).expanduser().resolve()
        stored = self.relative_path(path)
        with self._lock:
            row = self._conn.execute("SELECT * FROM recordings WHERE audio_path = ? ORDER BY id LIMIT 1",
                                     (stored,)).fetchone()
            if row is None:
                rows = self._conn.execute("SELECT * FROM recordings WHERE recording = ?", (path.stem,)).fetchall()
                row = rows[0] if len(rows) == 1 else None
        return None if row is None else self._to_recording(row)

    # -- skipped items ---------------------------------------------------------------------
    def record_skip(self, source: str, item: str, reason: str, run_id: int | None = None) -> None:
        """Remember that ``item`` of ``source`` was skipped and why (the latest reason wins)."""
        with self.transaction() as conn:
            conn.execute(
                "INSERT INTO skipped (source, item, reason, created_at, run_id) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT (source, item) DO UPDATE SET reason = excluded.reason, "
                "created_at = excluded.created_at, run_id = excluded.run_id",
                (source, item, reason, now_iso(), run_id),
            )

    def clear_skip(self, source: str, item: str) -> None:
        """Forget a skip (the item was imported after all)."""
        with self.transaction() as conn:
            conn.execute("DELETE FROM skipped WHERE source = ? AND item = ?", (source, item))

    def skipped(self, source: str | None = None) -> list[dict[str, Any]]:
        """Skipped items: dicts with source, item, reason, created_at, run_id."""
        sql, args = "SELECT source, item, reason, created_at, run_id FROM skipped", ()
        if source is not None:
            sql, args = sql + " WHERE source = ?", (source,)  # type: ignore[assignment]
        with self._lock:
            return [dict(r) for r in self._conn.execute(sql + " ORDER BY id", args)]

    # -- runs ------------------------------------------------------------------------------
    def start_run(self, kind: str, config: dict[str, Any]) -> int:
        """Record the start of a run (train, evaluate, prepare, import); returns its id."""
        if kind not in RUN_KINDS:
            raise DataError(f"unknown run kind {kind!r}; valid kinds: {', '.join(RUN_KINDS)}.")
        with self.transaction() as conn:
            cur = conn.execute(
                "INSERT INTO runs (kind, config, started_at, status) VALUES (?, ?, ?, 'running')",
                (kind, _json(config), now_iso()),
            )
            return int(cur.lastrowid or 0)

    def finish_run(self, run_id: int, status: str = "completed", metrics: dict[str, Any] | None = None,
                   model_path: str | Path | None = None) -> None:
        """Record the end of a run: its status, final metrics and the model it produced."""
        if status not in RUN_STATUSES:
            raise DataError(f"unknown run status {status!r}; valid: {', '.join(RUN_STATUSES)}.")
        with self.transaction() as conn:
            cur = conn.execute(
                "UPDATE runs SET finished_at = ?, status = ?, metrics = ?, model_path = ? WHERE id = ?",
                (now_iso(), status, _json(metrics or {}), None if model_path is None else str(model_path), run_id),
            )
            if cur.rowcount != 1:
                raise DataError(f"run {run_id} is not in the catalogue {self.db_path}.")

    def runs(self, kind: str | None = None) -> list[dict[str, Any]]:
        """Runs (of one kind), oldest first, with config and metrics decoded."""
        sql, args = "SELECT * FROM runs", ()
        if kind is not None:
            sql, args = sql + " WHERE kind = ?", (kind,)  # type: ignore[assignment]
        with self._lock:
            rows = [dict(r) for r in self._conn.execute(sql + " ORDER BY id", args)]
        for r in rows:
            r["config"] = json.loads(r["config"] or "{}")
            r["metrics"] = json.loads(r["metrics"] or "{}")
        return rows

    # -- evaluation results ----------------------------------------------------------------
    def add_results(self, run_id: int, rows: list[dict[str, Any]]) -> int:
        """Store per-sample evaluation results of a run in one transaction.

        Each row needs ``sample_id``, ``model`` (a label such as "base" or "fine-tuned") and
        ``hypothesis``; ``wer``, ``callsign_ok``, ``commands_ok``, ``avg_logprob``,
        ``no_speech_prob``, ``compression_ratio``, ``low_confidence`` and ``latency_s`` are
        optional; any other keys are kept in the ``extra`` JSON column.

        Returns:
            The number of rows stored.
        """
        sql = (f"INSERT INTO results (run_id, {', '.join(_RESULT_COLUMNS)}, extra) "
               f"VALUES ({', '.join('?' * (len(_RESULT_COLUMNS) + 2))})")
        values = []
        for row in rows:
            missing = [k for k in ("sample_id", "model", "hypothesis") if row.get(k) is None]
            if missing:
                raise DataError(f"evaluation result {row!r} lacks {', '.join(missing)}.")
            extra = {k: v for k, v in row.items() if k not in _RESULT_COLUMNS}
            values.append((
                run_id, int(row["sample_id"]), str(row["model"]), str(row["hypothesis"]), row.get("wer"),
                _bool_or_none(row.get("callsign_ok")), _bool_or_none(row.get("commands_ok")),
                row.get("avg_logprob"), row.get("no_speech_prob"), row.get("compression_ratio"),
                _bool_or_none(row.get("low_confidence")), row.get("latency_s"), _json(extra),
            ))
        try:
            with self.transaction() as conn:
                conn.executemany(sql, values)
        except sqlite3.IntegrityError as exc:
            raise DataError(f"cannot store results of run {run_id}: {exc} (unknown run or sample id?).") from None
        return len(values)

    def results(self, run_id: int) -> list[dict[str, Any]]:
        """The stored results of a run, with ``extra`` merged back in."""
        with self._lock:
            rows = [dict(r) for r in self._conn.execute("SELECT * FROM results WHERE run_id = ? ORDER BY id", (run_id,))]
        for r in rows:
            r.update(json.loads(r.pop("extra") or "{}"))
        return rows

    # -- transcripts (live and files) ------------------------------------------------------
    def add_transcripts(self, rows: list[dict[str, Any]]) -> list[int]:
        """Store transcripts in one transaction; returns their ids.

        Each row needs ``started_at`` (ISO text or epoch seconds; stored as ISO UTC with
        milliseconds), ``duration_s``, ``source`` and ``text``; confidence fields, ``callsign``,
        ``commands`` (a list), ``audio_path``, ``latency_s`` and ``offset_s`` (start within
        ``audio_path`` for file transcripts) are optional; ``text_norm`` is filled in from
        ``text``; other keys go to ``extra``.

        Raises:
            DataError: A row lacks a required key or its ``started_at`` is not a time.
        """
        from ..phraseology import normalize_atc
        from .transcripts import utc_iso

        sql = (f"INSERT INTO transcripts ({', '.join(_TRANSCRIPT_COLUMNS)}, extra) "
               f"VALUES ({', '.join('?' * (len(_TRANSCRIPT_COLUMNS) + 1))})")
        values = []
        for row in rows:
            missing = [k for k in ("started_at", "duration_s", "source", "text") if row.get(k) is None]
            if missing:
                raise DataError(f"transcript {row!r} lacks {', '.join(missing)}.")
            audio = row.get("audio_path")
            offset = row.get("offset_s")
            extra = {k: v for k, v in row.items() if k not in _TRANSCRIPT_COLUMNS}
            values.append((
                utc_iso(row["started_at"]), float(row["duration_s"]), str(row["source"]), str(row["text"]),
                row.get("avg_logprob"), row.get("no_speech_prob"), row.get("compression_ratio"),
                _bool_or_none(row.get("low_confidence")), row.get("callsign"), _json(list(row.get("commands") or [])),
                None if audio is None else self.relative_path(audio), row.get("latency_s"),
                None if offset is None else float(offset), normalize_atc(str(row["text"])), _json(extra),
            ))
        ids = []
        with self.transaction() as conn:
            for v in values:
                ids.append(int(conn.execute(sql, v).lastrowid or 0))
        return ids

    def transcripts(self, limit: int | None = None) -> list[dict[str, Any]]:
        """Transcripts, oldest first, with ``commands`` decoded and ``audio_path`` absolute."""
        return self.select_transcripts(order_by="id", limit=limit)[0]

    def select_transcripts(
        self, where: str = "", args: Sequence[Any] = (), *, order_by: str = "id", limit: int | None = None,
        offset: int = 0,
    ) -> tuple[list[dict[str, Any]], int]:
        """One page of transcripts and the number of all that match, read in one go.

        The query itself is built by :func:`atc_whisper.data.transcripts.search_transcripts`
        (the one search of the table); this only runs it and decodes the rows.

        Args:
            where: An SQL condition on the ``transcripts`` columns with ``?`` placeholders ("": all rows).
            args: The values of the placeholders.
            order_by: The ``ORDER BY`` terms.
            limit: Page size (None or 0: every match).
            offset: Rows skipped before the page.

        Returns:
            (rows, total): rows as :meth:`transcript` returns them, and the count of all matches.
        """
        clause = f" WHERE {where}" if where else ""
        page = [-1 if not limit else max(0, int(limit)), max(0, int(offset))]
        with self._lock:
            total = int(self._conn.execute(f"SELECT COUNT(*) FROM transcripts{clause}", list(args)).fetchone()[0])
            rows = [dict(r) for r in self._conn.execute(
                f"SELECT * FROM transcripts{clause} ORDER BY {order_by} LIMIT ? OFFSET ?", [*args, *page])]
        return [self._transcript_row(r) for r in rows], total

    def _transcript_row(self, r: dict[str, Any]) -> dict[str, Any]:
        """A stored row as callers see it: ``commands`` decoded, ``extra`` merged in, ``audio_path`` absolute."""
        r["commands"] = json.loads(r["commands"] or "[]")
        # The columns win over same-named keys a sink left in ``extra``.
        r = {**json.loads(r.pop("extra") or "{}"), **r}
        if r["audio_path"] is not None:
            r["audio_path"] = self.absolute_path(r["audio_path"])
        return r

    def transcript(self, transcript_id: int) -> dict[str, Any] | None:
        """One transcript by row id (as :meth:`transcripts` returns them), or None."""
        with self._lock:
            row = self._conn.execute("SELECT * FROM transcripts WHERE id = ?", (int(transcript_id),)).fetchone()
        return None if row is None else self._transcript_row(dict(row))

    def correct_transcript(self, transcript_id: int, text: str | None) -> dict[str, Any]:
        """Store a human correction beside the machine text (``None`` or the machine text removes it).

        Returns:
            The updated transcript.

        Raises:
            DataError: no transcript has this id.
        """
        with self.transaction() as conn:
            row = conn.execute("SELECT text FROM transcripts WHERE id = ?", (int(transcript_id),)).fetchone()
            if row is None:
                raise DataError(f"transcript {transcript_id} is not in the catalogue {self.db_path}.")
            cleaned = None if text is None else " ".join(text.split())
            if cleaned is not None and cleaned == row["text"]:
                cleaned = None  # "corrected" back to what the model heard: nothing to learn from
            conn.execute("UPDATE transcripts SET text_corrected = ?, corrected_at = ? WHERE id = ?",
                         (cleaned, None if cleaned is None else now_iso(), int(transcript_id)))
        result = self.transcript(transcript_id)
        assert result is not None
        return result


__all__ = ["LATEST_VERSION", "RUN_KINDS", "SPLITS", "Catalogue", "Recording", "Sample", "now_iso"]
