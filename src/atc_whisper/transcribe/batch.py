"""A whole batch: folders and manifests in, one transcript per file out, resumable, locally or on Ray.

:func:`transcribe_batch` is what ``atc-whisper transcribe DIR --output OUT`` runs. It finds the
files (:mod:`atc_whisper.transcribe.inputs`), resolves the model without loading it, locks the
output folder and fixes the settings part of the job key (:func:`plan_batch`), then
:func:`run_batch` skips every file already done under the same key and hands the rest to an
executor: :class:`LocalExecutor` (one engine in this process, loaded at the first file that needs
it, so a re-run with nothing to do never loads the model) or
:class:`atc_whisper.transcribe.cluster.RayExecutor`. Both run the same
:func:`atc_whisper.transcribe.jobs.run_file_job`; only this driver writes the index and the
catalogue. Failed files are listed in the :class:`BatchSummary`, never raised.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from ..config import Settings
from ..errors import AtcWhisperError, ConfigError
from ..fsutil import sha256_file
from ..log import get_logger
from ..workspace import Workspace
from .inputs import FileJob
from .job_index import JobIndex, remove_leftovers
from .jobs import (
    FileResult,
    FileTask,
    job_key,
    model_dirs,
    model_fingerprint,
    output_suffix,
    result_settings,
    run_file_job,
    stable_digest,
)

log = get_logger(__name__)

#: Formats whose outputs can be read back into segments (to fill the catalogue without decoding again).
READABLE_FORMATS = ("json", "jsonl")


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
        segments: Segments (transmissions) written by this run.
        low_confidence: How many of them are flagged.
        readback_mismatches: How many are readbacks that differ from their instruction.
        load_s: Time spent loading the model(s), seconds.
        wall_s: Time from the first job to the last result, seconds (model loading excluded).
        workers: Engines that ran the jobs.
        rows_stored: Transcript rows written to the catalogue.
        without_context: With ``context = "recording"``: files that had no recording context of
            their own (biased by the callsign list alone, if any).
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
    readback_mismatches: int = 0
    load_s: float = 0.0
    wall_s: float = 0.0
    workers: int = 0
    rows_stored: int = 0
    without_context: int = 0

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
    file_callsigns: dict[Path, tuple[str, ...]] = field(default_factory=dict)

    def callsigns_of(self, job: FileJob) -> tuple[tuple[str, ...] | None, str]:
        """``job``'s callsign list and the settings digest its key is made with.

        A file with a list of its own (its recording's callsigns nearby) keys on that list,
        so a changed ``.info`` file or catalogue context redoes exactly that file.
        """
        own = self.file_callsigns.get(job.path)
        if own is None or own == (self.callsigns or ()):
            return self.callsigns, self.settings_digest
        return own or None, stable_digest({"settings": self.settings_digest, "callsigns": list(own)})

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
    file_callsigns: dict[Path, tuple[str, ...]] | None = None,
) -> BatchPlan:
    """Find the files, lock the output folder and fix the settings part of the job key.

    Args:
        inputs: Folders, manifests and audio files (see :mod:`atc_whisper.transcribe.inputs`).
        output_dir: Where the transcripts go (created).
        settings: Resolved settings.
        resolved_model: The model's folders (:func:`atc_whisper.transcribe.engines.resolve_engine_model`);
            their files are hashed.
        engine: The engine that will run it (``ct2`` or ``hf``).
        fmt: Output format.
        callsigns: Known callsigns, reference form.
        catalogue_path: Store the transcripts in this catalogue too (None: do not).
        catalogue_root: The catalogue's root for relative audio paths (the workspace).
        force: Transcribe every file again, finished or not.
        extra_settings: More options that change the result (see :func:`result_settings`).
        jobs: The files, when already found with :func:`find_jobs` (``inputs`` is then not read).
        file_callsigns: Each file's own callsign list (``{job.path: names}``, e.g. from
            :func:`atc_whisper.transcribe.context.file_callsigns`), used instead of ``callsigns``.

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
    return BatchPlan(jobs=jobs, output_dir=output_dir, fmt=fmt, settings=settings, settings_digest=stable_digest(basis),
                     model_fingerprint=fingerprint, callsigns=tuple(callsigns) if callsigns else None, index=index,
                     catalogue_path=catalogue_path, catalogue_root=catalogue_root, force=force,
                     file_callsigns=dict(file_callsigns or {}))


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
        callsigns, digest = plan.callsigns_of(job)
        key = job_key(sha, digest)
        if entry is not None and entry.get("failed") and entry.get("key") == key and not plan.force:
            summary.failed.append(FailedFile(job.path, f"{entry['failed']} (unchanged since the last run; --force tries again)"))
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
        yield FileTask(job=job, key=key, target=target, fmt=plan.fmt, callsigns=callsigns,
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
    summary.readback_mismatches += result.readback_mismatches


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def summary_lines(summary: BatchSummary) -> list[str]:
    """The summary as a person reads it: counts, audio hours, speed, then each failed file."""
    lines = [
        f"{summary.files} file(s): {summary.done} transcribed, {summary.skipped} already done"
        + (f", {summary.catalogued} added to the catalogue from earlier outputs" if summary.catalogued else "")
        + f", {len(summary.failed)} failed.",
        f"Audio transcribed {summary.audio_s / 3600:.3f} h ({summary.audio_s:.1f} s), "
        f"{summary.segments} segment(s), {summary.low_confidence} low-confidence, "
        f"{summary.readback_mismatches} readback mismatch(es); "
        f"{summary.workers} engine(s), model load {summary.load_s:.1f} s, transcription {summary.wall_s:.1f} s"
        + (f" (real-time factor {summary.real_time_factor:.3f})" if summary.audio_s else "") + ".",
        *([f"{summary.without_context} file(s) had no recording context (no <name>.info beside them, not in the "
           "catalogue): transcribed without their callsigns nearby."] if summary.without_context else []),
        f"Transcripts in {summary.output_dir}"
        + (f"; {summary.rows_stored} row(s) stored in the catalogue" if summary.rows_stored else "") + ".",
    ]
    if summary.failed:
        lines.append(f"Failed ({len(summary.failed)}; a re-run tries files that changed and failures not caused "
                     "by the file itself):")
        lines += [f"  {f.reason}" if str(f.path) in f.reason else f"  {f.path}: {f.reason}" for f in summary.failed]
    return lines


def transcribe_batch(
    inputs: Sequence[Path],
    output_dir: Path,
    settings: Settings,
    workspace: Workspace,
    *,
    model: str,
    engine: str | None = None,
    fmt: str = "json",
    callsigns: Sequence[str] | None = None,
    context: str | None = None,
    context_file: Path | None = None,
    catalogue: bool = False,
    ray_address: str | None = None,
    force: bool = False,
    progress: bool = True,
    extra_settings: dict[str, Any] | None = None,
) -> BatchSummary:
    """Transcribe every audio file behind ``inputs`` into ``output_dir``, skipping finished ones.

    Args:
        inputs: Folders (walked recursively), manifests (``.txt``/``.csv``) and audio files.
        output_dir: One transcript per input file, at the input's relative path.
        settings: Resolved settings.
        workspace: Model caches and the catalogue.
        model: Model name or folder (resolved as ``--model`` is).
        engine: ``auto``, ``ct2`` or ``hf`` (None: ``decode.engine``).
        fmt: Output format (``text``, ``jsonl``, ``json``, ``srt``, ...).
        callsigns: Known callsigns (reference form) for prompting and snapping.
        context: ``recording``: each file is also biased with its own recording's callsigns
            nearby (the ``.info`` beside it, else the catalogue); ``none``: not
            (:func:`atc_whisper.transcribe.context.file_callsigns`). Default ``decode.context``.
        context_file: A ``.info`` file whose callsigns bias every file; default
            ``decode.context_file`` (:func:`atc_whisper.transcribe.context.context_file_path`).
        catalogue: Also store the segments in the workspace catalogue's transcripts table.
        ray_address: Run on this Ray cluster (``local``, ``auto``, ``host:port``, ``ray://host:port``).
        force: Transcribe every file again.
        progress: Show a progress bar.
        extra_settings: Further options that change results (part of the job key).

    Returns:
        The summary (failed files are listed in it).

    Raises:
        ConfigError: Bad inputs or output folder, a locked folder, or Ray missing/unreachable.
        ModelError: The model cannot be resolved or loaded (on any worker).
    """
    from .engines import load_engine, resolve_engine_model

    if ray_address is not None:
        from .cluster import require_ray

        require_ray()  # before any work: a missing extra is a setup error, not 10,000 failed files
    # Inputs first: a wrong folder or manifest is reported before any model is looked for.
    jobs = find_jobs(inputs, output_dir, settings)
    per_file, without_context = _file_contexts(jobs, settings, context, context_file, callsigns, workspace)
    # A model folder is passed on as an absolute path: Ray workers do not share this working folder.
    if Path(model).expanduser().exists():
        model = str(Path(model).expanduser().resolve())
    # The folder the engine will load (a CTranslate2 model as it is, no conversion) is what the key hashes.
    resolved = resolve_engine_model(model, settings, workspace, engine=engine)
    engine_name = resolved.engine
    plan = plan_batch(
        inputs, output_dir, settings, resolved_model=resolved, engine=engine_name, fmt=fmt, callsigns=callsigns,
        catalogue_path=workspace.db_path if catalogue else None, catalogue_root=workspace.root, force=force,
        extra_settings=extra_settings, jobs=jobs, file_callsigns=per_file,
    )
    executor: Executor
    if ray_address is not None:
        from .cluster import RayExecutor

        executor = RayExecutor(ray_address, model=model, settings=settings, workspace_root=workspace.root,
                               engine=engine_name, expected_model=plan.model_fingerprint)
    else:
        executor = LocalExecutor(lambda: load_engine(model, settings, workspace, engine=engine_name), settings)
    try:
        summary = run_batch(plan, executor, progress=progress)
    finally:
        executor.close()
        plan.close()
    summary.without_context = without_context
    return summary


def _file_contexts(jobs: Sequence[FileJob], settings: Settings, context: str | None, context_file: Path | None,
                   callsigns: Sequence[str] | None, workspace: Workspace) -> tuple[dict[Path, tuple[str, ...]], int]:
    """Each file's own callsign list and how many files had no recording context (none asked: ``{}, 0``)."""
    from .context import context_file_path, file_callsigns, has_own_context

    context = context or settings.decode.context
    context_file = context_file_path(settings, workspace, context_file)
    if context == "none" and context_file is None:
        return {}, 0

    found = file_callsigns([j.path for j in jobs], context=context, context_file=context_file, callsigns=callsigns,
                           workspace=workspace)
    missing = sum(1 for f in found.values() if not has_own_context(f)) if context_file is None else 0
    return {path: f.callsigns for path, f in found.items()}, missing
