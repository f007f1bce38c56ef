"""Transcribing thousands of files as resumable jobs: one output per input, written atomically.

A year of radio archives is days of decoding; a run that dies at file 3,000 must not start
again at file 1, and one corrupt recording must not stop the other 9,999. So a batch is a set
of independent **file jobs** (:func:`run_file_job`: decode one file, write its transcript
through a temporary file and a rename), and the output folder keeps an **index**
(``OUT/.atc_whisper/index.jsonl``, one JSON line appended per finished file) of what was
done with which inputs and settings.

A file counts as done when its index entry carries the same **job key** as now: a hash of
the file's content (SHA-256) and of everything that changes the result (the model's files,
the engine, device and compute type, the decoding and segmentation settings, the callsign
list, the output format; :func:`result_settings`). Change any of these and the file is
decoded again; change nothing and a re-run decodes nothing. Hashing is cached by size and
modification time, so a re-run over an unchanged archive does not even read the audio.

Failures are results, not exceptions: a file that cannot be read or decoded is reported
with its reason at the end (and retried by the next run), the others carry on.

The same :func:`run_file_job` runs in this process (:class:`LocalExecutor`) or on the
workers of a Ray cluster (:mod:`atc_whisper.transcribe.cluster`); only the driver writes the
index and the catalogue.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import re
import socket
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TextIO

from ..config import Settings
from ..errors import AtcWhisperError, AudioError, ConfigError
from ..fsutil import atomic_path, atomic_write_text, sha256_file
from ..log import get_logger
from .inputs import FileJob

log = get_logger(__name__)

#: Bump when a code change alters what a job writes for the same inputs and settings, so
#: that existing outputs are redone. (Package upgrades alone do not redo a finished archive.)
JOB_VERSION = 1
#: Folder of the output directory that holds the index, the hash cache and the lock.
STATE_DIR = ".atc_whisper"
INDEX_NAME = "index.jsonl"
MODEL_HASHES_NAME = "model_hashes.json"
LOCK_NAME = "lock"
#: File name ending of each output format (others get ``.<format>``).
FORMAT_SUFFIXES = {"text": ".txt", "jsonl": ".jsonl", "json": ".json", "srt": ".srt", "vtt": ".vtt", "tsv": ".tsv"}
#: Formats whose outputs can be read back into segments (to fill the catalogue without decoding again).
READABLE_FORMATS = ("json", "jsonl")
#: Live/segmenter settings that shape how a file is cut (part of the job key).
SEGMENTATION_KEYS = ("vad", "threshold", "min_silence_ms", "speech_pad_ms", "min_speech_ms", "max_segment_s")
#: Settings sections, if present, that belong to segmentation as a whole.
SEGMENTATION_SECTIONS = ("segment", "segmentation", "segmenter")
# What atomic_path leaves behind when a process is killed: ".<name>.<8 random chars>.tmp".
_LEFTOVER = re.compile(r"^\..+\.[a-z0-9_]{8}\.tmp$")


def output_suffix(fmt: str) -> str:
    """The file name ending of ``fmt`` outputs (``json`` -> ``.json``, ``text`` -> ``.txt``)."""
    return FORMAT_SUFFIXES.get(fmt, f".{fmt}")


def _digest(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode("utf-8")).hexdigest()


# -- what the result depends on --------------------------------------------------------------


def model_dirs(resolved: Any) -> list[Path]:
    """The folders whose files make up a resolved model (its Hugging Face and/or CTranslate2 folder)."""
    dirs = []
    for attr in ("hf_dir", "ct2_dir"):
        folder = getattr(resolved, attr, None)
        if folder is not None and Path(folder).is_dir() and Path(folder) not in dirs:
            dirs.append(Path(folder))
    if not dirs:
        raise ConfigError(f"model {getattr(resolved, 'name', resolved)} has no folder to identify it by.")
    return dirs


def model_fingerprint(dirs: Sequence[Path], cache: dict[str, list[Any]] | None = None) -> str:
    """SHA-256 over the names and contents of every file in the model's folders.

    Args:
        dirs: The model's folders (:func:`model_dirs`).
        cache: ``{absolute path: [size, mtime_ns, sha256]}``; a file whose size and
            modification time match is not read again. Updated in place.
    """
    parts = []
    for folder in dirs:
        for path in sorted(p for p in Path(folder).rglob("*") if p.is_file()):
            st = path.stat()
            key = str(path.resolve())
            hit = (cache or {}).get(key)
            if hit is not None and hit[0] == st.st_size and hit[1] == st.st_mtime_ns:
                digest = str(hit[2])
            else:
                digest = sha256_file(path)
                if cache is not None:
                    cache[key] = [st.st_size, st.st_mtime_ns, digest]
            parts.append([path.relative_to(folder).as_posix(), digest])
    return _digest(parts)


def result_settings(
    settings: Settings,
    *,
    model: str,
    engine: str,
    fmt: str,
    callsigns: Sequence[str] | None,
    parse: bool = True,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Everything besides the audio that changes a file's transcript: the basis of the job key.

    Args:
        settings: Resolved settings.
        model: The model's fingerprint (:func:`model_fingerprint`).
        engine: The engine that runs it (``ct2`` or ``hf``, "auto" resolved).
        fmt: The output format.
        callsigns: The known-callsign list (prompt and snapping), in order.
        parse: Whether callsign and commands are parsed.
        extra: Any further option that changes the result (e.g. a segmentation mode given on
            the command line rather than in the settings).
    """
    decode = dataclasses.asdict(settings.decode)
    decode.pop("engine", None)  # resolved: ``engine``
    decode.pop("callsigns_file", None)  # its content: ``callsigns``
    segmentation: dict[str, Any] = {k: getattr(settings.live, k) for k in SEGMENTATION_KEYS if hasattr(settings.live, k)}
    everything = settings.to_dict()
    for section in SEGMENTATION_SECTIONS:
        if section in everything:
            segmentation[section] = everything[section]
    return {
        "job_version": JOB_VERSION, "model": model, "engine": engine, "device": settings.model.device,
        "decode": decode, "segmentation": segmentation, "callsigns": list(callsigns or []), "format": fmt,
        "parse": parse, **(extra or {}),
    }


def job_key(content_sha256: str, settings_digest: str) -> str:
    """The key a finished file is recorded under: its content and the result settings."""
    return hashlib.sha256(f"{content_sha256}:{settings_digest}".encode()).hexdigest()[:32]


# -- one file ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class FileTask:
    """Everything a worker needs to transcribe one file (picklable, sent to Ray workers).

    Attributes:
        job: The file and its output name.
        key: Its job key.
        target: The output file, absolute.
        fmt: Output format.
        callsigns: Known callsigns (prompt and snapping), or None.
        keep_segments: Return the segments (as dicts) for the catalogue.
        size: The input's size when the key was computed, bytes.
        mtime_ns: The input's modification time then.
        sha256: The input's content hash.
    """

    job: FileJob
    key: str
    target: Path
    fmt: str
    callsigns: tuple[str, ...] | None
    keep_segments: bool
    size: int
    mtime_ns: int
    sha256: str


@dataclass
class FileResult:
    """What came of one file job.

    Attributes:
        task: The task.
        ok: True when the transcript was written.
        error: Why not, when not (one line, naming the file).
        audio_s: Duration of the audio, seconds (0 when it could not be read).
        wall_s: Time the job took (reading, decoding, writing), seconds.
        segments: Number of segments written.
        low_confidence: How many of them are flagged.
        rows: The segments as dicts (``FileSegment.as_dict``) when the task keeps them.
        worker: ``host:pid`` of the process that ran it.
        permanent: The failure comes from the file itself (not audio, corrupt, silent): trying
            the same content again would fail again, so later runs report it without retrying.
    """

    task: FileTask
    ok: bool
    error: str | None = None
    audio_s: float = 0.0
    wall_s: float = 0.0
    segments: int = 0
    low_confidence: int = 0
    rows: list[dict[str, Any]] = field(default_factory=list)
    worker: str = ""
    permanent: bool = False


def worker_name() -> str:
    """``host:pid`` of this process."""
    return f"{socket.gethostname()}:{os.getpid()}"


def run_file_job(task: FileTask, engine: Any, settings: Settings) -> FileResult:
    """Transcribe one file and write its transcript atomically; a bad file is a failed result, not an error.

    The transcript goes to a temporary file beside ``task.target`` and is renamed onto it when
    complete (and flushed to disk), so a reader, or a re-run after a kill, never sees half of
    one. The decoding itself is :func:`atc_whisper.transcribe.files.transcribe_file`.

    Args:
        task: The file, its output and options.
        engine: A loaded engine (kept by the caller across files).
        settings: Resolved settings.

    Returns:
        The result; ``ok`` is False with ``error`` set when the file could not be read,
        decoded or written.
    """
    from ..audio.io import check_speech, load_audio
    from .files import transcribe_file
    from .formats import TranscriptWriter

    started = time.perf_counter()
    result = FileResult(task=task, ok=False, worker=worker_name())
    rows: list[dict[str, Any]] = []
    try:
        audio = load_audio(task.job.path)
        result.audio_s = len(audio) / 16_000
        check_speech(audio, task.job.path)
        with atomic_path(task.target) as tmp:
            with tmp.open("w", encoding="utf-8") as handle:
                writer = TranscriptWriter(handle, task.fmt)
                callsigns = list(task.callsigns) if task.callsigns else None
                for segment in transcribe_file(task.job.path, engine, settings, callsigns=callsigns, audio=audio):
                    writer.write(segment)
                    result.segments += 1
                    result.low_confidence += int(segment.low_confidence)
                    if task.keep_segments:
                        rows.append(segment.as_dict())
                writer.close()
                handle.flush()
                os.fsync(handle.fileno())
    except AudioError as exc:
        result.error = str(exc)
        result.permanent = True
    except AtcWhisperError as exc:
        result.error = str(exc)
    except OSError as exc:
        result.error = f"{task.job.path}: {exc.strerror or exc} ({exc.filename or task.target})"
    except Exception as exc:  # a decoder bug on one file must not stop the other thousands
        log.debug("Transcribing %s failed", task.job.path, exc_info=True)
        result.error = f"{task.job.path}: unexpected {type(exc).__name__}: {exc} (re-run with --debug for details)"
    else:
        result.ok = True
        result.rows = rows
    result.wall_s = time.perf_counter() - started
    return result


# -- the output folder's index -----------------------------------------------------------------


class JobIndex:
    """The record of finished files in ``OUT/.atc_whisper/``, and the lock that keeps one run per folder.

    ``index.jsonl`` holds one JSON object per finished output (the last line for an output
    wins); it is appended to, flushed and synced after every file, and rewritten compactly
    when opened. A line cut short by a kill is ignored.

    Raises:
        ConfigError: Another run holds the folder's lock.
    """

    def __init__(self, output_dir: Path) -> None:
        self.output_dir = output_dir
        self.state_dir = output_dir / STATE_DIR
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.path = self.state_dir / INDEX_NAME
        self._lock_handle = self._lock()
        self.entries: dict[str, dict[str, Any]] = {}
        lines = 0
        if self.path.exists():
            for line in self.path.read_text(encoding="utf-8").splitlines():
                lines += 1
                with contextlib.suppress(ValueError):
                    entry = json.loads(line)
                    if isinstance(entry, dict) and "output" in entry:
                        self.entries[str(entry["output"])] = entry
        if lines != len(self.entries):
            self._rewrite()
        self._handle: TextIO | None = self.path.open("a", encoding="utf-8")
        self.model_hashes: dict[str, list[Any]] = self._read_json(self.state_dir / MODEL_HASHES_NAME)

    def _lock(self) -> Any:
        handle = (self.state_dir / LOCK_NAME).open("a+", encoding="utf-8")
        try:
            import fcntl
        except ImportError:  # not POSIX: no lock
            return handle
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            handle.close()
            raise ConfigError(f"another transcription ({holder}) is writing to {self.output_dir}; wait for it to "
                              "finish, or choose another --output folder.") from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()} on {socket.gethostname()}\n")
        handle.flush()
        return handle

    @staticmethod
    def _read_json(path: Path) -> dict[str, Any]:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def _rewrite(self) -> None:
        text = "".join(json.dumps(e, sort_keys=True) + "\n" for e in self.entries.values())
        atomic_write_text(self.path, text)

    def get(self, output: str) -> dict[str, Any] | None:
        """The entry of ``output`` (path below the output folder, with suffix), if finished before."""
        return self.entries.get(output)

    def record(self, entry: dict[str, Any]) -> None:
        """Add or replace the entry of ``entry["output"]``, durably."""
        self.entries[str(entry["output"])] = entry
        assert self._handle is not None
        self._handle.write(json.dumps(entry, sort_keys=True) + "\n")
        self._handle.flush()
        os.fsync(self._handle.fileno())

    def save_model_hashes(self) -> None:
        """Keep the model files' hash cache for the next run."""
        atomic_write_text(self.state_dir / MODEL_HASHES_NAME, json.dumps(self.model_hashes, sort_keys=True))

    def close(self) -> None:
        """Close the index and release the lock (idempotent)."""
        if self._handle is not None:
            self._handle.close()
            self._handle = None
        if self._lock_handle is not None:
            self._lock_handle.close()
            self._lock_handle = None


def remove_leftovers(output_dir: Path) -> int:
    """Delete the temporary files a killed run left in ``output_dir`` (``.<name>.<random>.tmp``); returns how many."""
    removed = 0
    for root, _, files in os.walk(output_dir):
        for name in files:
            if _LEFTOVER.match(name):
                with contextlib.suppress(OSError):
                    (Path(root) / name).unlink()
                    removed += 1
    return removed


# -- the batch ---------------------------------------------------------------------------------


@dataclass
class FailedFile:
    """A file that could not be transcribed, and why."""

    path: Path
    reason: str


@dataclass
class BatchSummary:
    """What a batch run did.

    Attributes:
        output_dir: Where the transcripts are.
        files: Files in the batch.
        done: Files transcribed by this run.
        skipped: Files already done with the same key (nothing to do).
        catalogued: Finished files only added to the catalogue, read back from their outputs.
        failed: Files that could not be transcribed, with the reason.
        audio_s: Audio transcribed by this run, seconds.
        skipped_audio_s: Audio of the skipped files, seconds.
        segments: Segments written by this run.
        low_confidence: How many of them are flagged.
        load_s: Time spent loading the model(s), seconds.
        wall_s: Time from the first job to the last result, seconds (model loading excluded).
        workers: Engines that ran the jobs.
        rows_stored: Transcript rows written to the catalogue.
    """

    output_dir: Path
    files: int = 0
    done: int = 0
    skipped: int = 0
    catalogued: int = 0
    failed: list[FailedFile] = field(default_factory=list)
    audio_s: float = 0.0
    skipped_audio_s: float = 0.0
    segments: int = 0
    low_confidence: int = 0
    load_s: float = 0.0
    wall_s: float = 0.0
    workers: int = 0
    rows_stored: int = 0

    @property
    def real_time_factor(self) -> float:
        """Transcription time over audio duration (below 1 is faster than real time; 0 when nothing ran)."""
        return self.wall_s / self.audio_s if self.audio_s else 0.0


class Executor(Protocol):
    """Runs file tasks somewhere and hands back their results (in any order)."""

    workers: int
    load_s: float

    def run(self, tasks: Iterator[FileTask]) -> Iterator[FileResult]:
        """Run every task ``tasks`` yields; yield each result as it is ready."""
        ...

    def close(self) -> None:
        """Release the engines / the cluster."""
        ...


class LocalExecutor:
    """Runs the tasks one after another in this process with one engine, loaded at the first task.

    Loading lazily means that a re-run with nothing to do never loads the model.
    """

    def __init__(self, load: Callable[[], Any], settings: Settings) -> None:
        """Args: load: returns a loaded engine; settings: resolved settings."""
        self._load = load
        self.settings = settings
        self.engine: Any = None
        self.workers = 0  # 1 once the engine is loaded
        self.load_s = 0.0

    def run(self, tasks: Iterator[FileTask]) -> Iterator[FileResult]:
        """See :class:`Executor`."""
        for task in tasks:
            if self.engine is None:
                started = time.perf_counter()
                self.engine = self._load()
                self.load_s = time.perf_counter() - started
                self.workers = 1
            yield run_file_job(task, self.engine, self.settings)

    def close(self) -> None:
        """Drop the engine."""
        self.engine = None


@dataclass
class BatchPlan:
    """A batch ready to run: its jobs, key basis, index and options (see :func:`plan_batch`)."""

    jobs: list[FileJob]
    output_dir: Path
    fmt: str
    settings: Settings
    settings_digest: str
    model_fingerprint: str
    callsigns: tuple[str, ...] | None
    index: JobIndex
    catalogue_path: Path | None = None
    catalogue_root: Path | None = None
    force: bool = False

    def target(self, job: FileJob) -> tuple[str, Path]:
        """(name below the output folder, absolute path) of ``job``'s transcript."""
        name = job.output + output_suffix(self.fmt)
        return name, self.output_dir / name

    def close(self) -> None:
        """Release the output folder."""
        self.index.close()


def check_output_dir(output_dir: Path) -> Path:
    """The output folder, absolute; ConfigError when it is an existing file."""
    output_dir = Path(output_dir).expanduser().resolve()
    if output_dir.exists() and not output_dir.is_dir():
        raise ConfigError(f"--output {output_dir} is a file; a batch writes one transcript per input into a folder.")
    return output_dir


def find_jobs(inputs: Sequence[Path], output_dir: Path, settings: Settings) -> list[FileJob]:
    """The files of a batch (:func:`atc_whisper.transcribe.inputs.collect_jobs` with ``batch.audio_extensions``)."""
    from .inputs import collect_jobs

    return collect_jobs(inputs, settings.batch.audio_extensions, output_dir=check_output_dir(output_dir))


def plan_batch(
    inputs: Sequence[Path],
    output_dir: Path,
    settings: Settings,
    *,
    resolved_model: Any,
    engine: str,
    fmt: str,
    callsigns: Sequence[str] | None = None,
    catalogue_path: Path | None = None,
    catalogue_root: Path | None = None,
    force: bool = False,
    extra_settings: dict[str, Any] | None = None,
    jobs: list[FileJob] | None = None,
) -> BatchPlan:
    """Find the files, lock the output folder and fix the settings part of the job key.

    Args:
        inputs: Folders, manifests and audio files (see :mod:`atc_whisper.transcribe.inputs`).
        output_dir: Where the transcripts go (created).
        settings: Resolved settings.
        resolved_model: The model (:func:`atc_whisper.models.resolve.resolve_model`); its files are hashed.
        engine: The engine that will run it (``ct2`` or ``hf``).
        fmt: Output format.
        callsigns: Known callsigns, reference form.
        catalogue_path: Store the transcripts in this catalogue too (None: do not).
        catalogue_root: The catalogue's root for relative audio paths (the workspace).
        force: Transcribe every file again, finished or not.
        extra_settings: More options that change the result (see :func:`result_settings`).
        jobs: The files, when already found with :func:`find_jobs` (``inputs`` is then not read).

    Raises:
        ConfigError: No input, an unusable manifest, an output that is a file, or a locked folder.
    """
    output_dir = check_output_dir(output_dir)
    if jobs is None:
        jobs = find_jobs(inputs, output_dir, settings)
    output_dir.mkdir(parents=True, exist_ok=True)
    index = JobIndex(output_dir)
    try:
        removed = remove_leftovers(output_dir)
        if removed:
            log.info("Removed %d half-written file(s) left by an interrupted run in %s", removed, output_dir)
        fingerprint = model_fingerprint(model_dirs(resolved_model), index.model_hashes)
        index.save_model_hashes()
        basis = result_settings(settings, model=fingerprint, engine=engine, fmt=fmt, callsigns=callsigns,
                                extra=extra_settings)
    except BaseException:
        index.close()
        raise
    return BatchPlan(jobs=jobs, output_dir=output_dir, fmt=fmt, settings=settings, settings_digest=_digest(basis),
                     model_fingerprint=fingerprint, callsigns=tuple(callsigns) if callsigns else None, index=index,
                     catalogue_path=catalogue_path, catalogue_root=catalogue_root, force=force)


class _Progress:
    def __init__(self, total: int, enabled: bool) -> None:
        from tqdm import tqdm

        self.bar = tqdm(total=total, unit="file", desc="files", file=sys.stderr, disable=not enabled, leave=False,
                        dynamic_ncols=True)

    def step(self, summary: BatchSummary, started: float, load_s: float) -> None:
        elapsed = time.perf_counter() - started - load_s
        rtf = f", RTF {elapsed / summary.audio_s:.2f}" if summary.audio_s else ""
        self.bar.set_postfix_str(f"audio {summary.audio_s / 3600:.2f} h{rtf}, {len(summary.failed)} failed",
                                 refresh=False)
        self.bar.update(1)

    def close(self) -> None:
        self.bar.close()


def run_batch(plan: BatchPlan, executor: Executor, *, progress: bool = True) -> BatchSummary:
    """Run every unfinished file of ``plan`` on ``executor``; record each result as it comes.

    For each file: skip it when its index entry has the same key and its transcript exists;
    otherwise hand it to the executor. Each finished file is appended to the index (and, with
    a catalogue, its segments replace the file's earlier rows) before the next result is
    taken, so an interrupted run loses at most the files in flight.

    Args:
        plan: From :func:`plan_batch`.
        executor: :class:`LocalExecutor` or :class:`atc_whisper.transcribe.cluster.RayExecutor`.
        progress: Show a progress bar on standard error.

    Returns:
        The summary; failed files are listed in it, not raised.
    """
    summary = BatchSummary(output_dir=plan.output_dir, files=len(plan.jobs))
    catalogue = None
    if plan.catalogue_path is not None:
        from ..data.catalogue import Catalogue

        catalogue = Catalogue(plan.catalogue_path, root=plan.catalogue_root)
    bar = _Progress(len(plan.jobs), progress)
    started = time.perf_counter()
    try:
        tasks = _pending(plan, summary, catalogue, lambda: bar.step(summary, started, executor.load_s))
        for result in executor.run(tasks):
            _record(plan, summary, catalogue, result)
            bar.step(summary, started, executor.load_s)
    finally:
        bar.close()
        summary.wall_s = max(0.0, time.perf_counter() - started - executor.load_s)
        summary.load_s = executor.load_s
        summary.workers = executor.workers
        if catalogue is not None:
            catalogue.close()
    return summary


def _stat_and_hash(job: FileJob, entry: dict[str, Any] | None) -> tuple[int, int, str]:
    st = job.path.stat()
    if (entry is not None and entry.get("input") == str(job.path) and entry.get("size") == st.st_size
            and entry.get("mtime_ns") == st.st_mtime_ns and entry.get("sha256")):
        return st.st_size, st.st_mtime_ns, str(entry["sha256"])
    return st.st_size, st.st_mtime_ns, sha256_file(job.path)


def _pending(plan: BatchPlan, summary: BatchSummary, catalogue: Any, step: Callable[[], None]) -> Iterator[FileTask]:
    """The tasks still to do, in order; finished files are counted (and catalogued) on the way."""
    for job in plan.jobs:
        name, target = plan.target(job)
        entry = plan.index.get(name)
        try:
            size, mtime_ns, sha = _stat_and_hash(job, entry)
        except OSError as exc:
            summary.failed.append(FailedFile(job.path, f"cannot read {job.path}: {exc.strerror or exc}"))
            step()
            continue
        key = job_key(sha, plan.settings_digest)
        if entry is not None and entry.get("failed") and entry.get("key") == key and not plan.force:
            summary.failed.append(FailedFile(job.path, f"{entry['failed']} (unchanged since the last run)"))
            step()
            continue
        same = (entry is not None and not entry.get("failed") and entry.get("key") == key and target.exists()
                and not plan.force)
        if same and entry is not None:
            if catalogue is not None and entry.get("catalogued") != str(plan.catalogue_path):
                if plan.fmt in READABLE_FORMATS and _catalogue_from_output(plan, catalogue, job, key, target, entry):
                    summary.catalogued += 1
                    summary.skipped_audio_s += float(entry.get("audio_s", 0.0))
                    step()
                    continue
            else:
                if entry.get("size") != size or entry.get("mtime_ns") != mtime_ns or entry.get("input") != str(job.path):
                    plan.index.record({**entry, "input": str(job.path), "size": size, "mtime_ns": mtime_ns})
                summary.skipped += 1
                summary.skipped_audio_s += float(entry.get("audio_s", 0.0))
                step()
                continue
        yield FileTask(job=job, key=key, target=target, fmt=plan.fmt, callsigns=plan.callsigns,
                       keep_segments=catalogue is not None, size=size, mtime_ns=mtime_ns, sha256=sha)


def _store_rows(plan: BatchPlan, catalogue: Any, job: FileJob, key: str, rows: list[dict[str, Any]],
                audio_s: float) -> int:
    from ..data.transcripts import file_transcript_rows, replace_file_transcripts
    from .inputs import recording_start

    start, time_source = recording_start(job, audio_s)
    extra = {"file_key": key, "time_source": time_source, "output": plan.target(job)[0]}
    stored = file_transcript_rows(rows, recording_start=start, source=job.source, extra=extra)
    return len(replace_file_transcripts(catalogue, job.path, stored))


def _catalogue_from_output(plan: BatchPlan, catalogue: Any, job: FileJob, key: str, target: Path,
                           entry: dict[str, Any]) -> bool:
    """Fill the catalogue from a finished JSON/JSONL transcript (no decoding); False when it cannot be read."""
    try:
        text = target.read_text(encoding="utf-8")
        rows = json.loads(text) if plan.fmt == "json" else [json.loads(line) for line in text.splitlines() if line]
        _store_rows(plan, catalogue, job, key, list(rows), float(entry.get("audio_s", 0.0)))
    except (OSError, ValueError, KeyError, TypeError, AtcWhisperError) as exc:
        log.debug("Cannot read %s back for the catalogue (%s); transcribing again", target, exc)
        return False
    plan.index.record({**entry, "catalogued": str(plan.catalogue_path)})
    return True


def _record(plan: BatchPlan, summary: BatchSummary, catalogue: Any, result: FileResult) -> None:
    task = result.task
    name, target = plan.target(task.job)
    if not result.ok:
        summary.failed.append(FailedFile(task.job.path, result.error or "failed"))
        if result.permanent:
            # The file as it is now cannot be transcribed: say so next time without trying, and drop
            # a transcript of what it held before, which no longer describes it.
            target.unlink(missing_ok=True)
            plan.index.record({"output": name, "input": str(task.job.path), "key": task.key, "sha256": task.sha256,
                               "size": task.size, "mtime_ns": task.mtime_ns, "failed": result.error or "failed",
                               "finished_at": _now()})
        return
    if catalogue is not None:
        try:
            summary.rows_stored += _store_rows(plan, catalogue, task.job, task.key, result.rows, result.audio_s)
        except AtcWhisperError as exc:
            summary.failed.append(FailedFile(task.job.path, f"transcribed, but not stored in the catalogue: {exc}"))
            return
    plan.index.record({
        "output": name, "input": str(task.job.path), "key": task.key, "sha256": task.sha256,
        "size": task.size, "mtime_ns": task.mtime_ns, "audio_s": round(result.audio_s, 3),
        "segments": result.segments, "low_confidence": result.low_confidence,
        "catalogued": str(plan.catalogue_path) if catalogue is not None else None,
        "worker": result.worker, "wall_s": round(result.wall_s, 3), "finished_at": _now(),
    })
    summary.done += 1
    summary.audio_s += result.audio_s
    summary.segments += result.segments
    summary.low_confidence += result.low_confidence


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def summary_lines(summary: BatchSummary) -> list[str]:
    """The summary as a person reads it: counts, audio hours, speed, then each failed file."""
    lines = [
        f"{summary.files} file(s): {summary.done} transcribed, {summary.skipped} already done"
        + (f", {summary.catalogued} added to the catalogue from earlier outputs" if summary.catalogued else "")
        + f", {len(summary.failed)} failed.",
        f"Audio transcribed {summary.audio_s / 3600:.3f} h ({summary.audio_s:.1f} s), "
        f"{summary.segments} segment(s), {summary.low_confidence} low-confidence; "
        f"{summary.workers} engine(s), model load {summary.load_s:.1f} s, transcription {summary.wall_s:.1f} s"
        + (f" (real-time factor {summary.real_time_factor:.3f})" if summary.audio_s else "") + ".",
        f"Transcripts in {summary.output_dir}"
        + (f"; {summary.rows_stored} row(s) stored in the catalogue" if summary.rows_stored else "") + ".",
    ]
    if summary.failed:
        lines.append(f"Failed ({len(summary.failed)}; they are retried by the next run):")
        lines += [f"  {f.reason}" if str(f.path) in f.reason else f"  {f.path}: {f.reason}" for f in summary.failed]
    return lines
