"""One file job of a batch: the key that says whether it is done, and the function that does it.

A year of radio archives is days of decoding; a run that dies at file 3,000 must not start
again at file 1, and one corrupt recording must not stop the other 9,999. So a batch
(:mod:`atc_whisper.transcribe.batch`) is a set of independent file jobs:
:func:`run_file_job` decodes one file and writes its transcript through a temporary file and
a rename. A failure is a result, not an exception.

A file counts as done when the output folder's index (:mod:`atc_whisper.transcribe.job_index`)
holds it under the same **job key** as now: a hash of the file's content (SHA-256) and of
everything that changes the result (the model's files, the engine, device and compute type,
the decoding and segmentation settings, the callsign list, the output format;
:func:`result_settings`). Change any of these and the file is decoded again; change nothing and
a re-run decodes nothing.

The same :func:`run_file_job` runs in this process or on the workers of a Ray cluster
(:mod:`atc_whisper.transcribe.cluster`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..config import Settings
from ..errors import AtcWhisperError, AudioError, ConfigError
from ..fsutil import atomic_path, sha256_file
from ..log import get_logger
from .inputs import FileJob

log = get_logger(__name__)

#: Bump when a code change alters what a job writes for the same inputs and settings, so
#: that existing outputs are redone. (Package upgrades alone do not redo a finished archive.)
#: 2: one segment per transmission (VAD), with role, exchange and readback (issue 12).
JOB_VERSION = 2
#: File name ending of each output format (others get ``.<format>``).
FORMAT_SUFFIXES = {"text": ".txt", "jsonl": ".jsonl", "json": ".json", "srt": ".srt", "vtt": ".vtt", "tsv": ".tsv",
                   "conversation": ".conversation.txt"}
#: Settings sections besides ``[decode]`` that change a file's transcript (part of the job key):
#: how a file is cut into transmissions, and how transmissions are grouped into exchanges.
RESULT_SECTIONS = ("segment", "conversation")


def output_suffix(fmt: str) -> str:
    """The file name ending of ``fmt`` outputs (``json`` -> ``.json``, ``text`` -> ``.txt``)."""
    return FORMAT_SUFFIXES.get(fmt, f".{fmt}")


def stable_digest(value: Any) -> str:
    """SHA-256 of ``value`` as sorted JSON."""
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
    return stable_digest(parts)


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
    sections = {name: dataclasses.asdict(getattr(settings, name)) for name in RESULT_SECTIONS}
    return {
        "job_version": JOB_VERSION, "model": model, "engine": engine, "device": settings.model.device,
        "decode": decode, **sections, "callsigns": list(callsigns or []), "format": fmt,
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
        readback_mismatches: How many are readbacks that differ from their instruction.
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
    readback_mismatches: int = 0
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
    from ..audio.io import check_speech, duration_s, load_audio
    from .files import transcribe_file
    from .formats import TranscriptWriter

    started = time.perf_counter()
    result = FileResult(task=task, ok=False, worker=worker_name())
    rows: list[dict[str, Any]] = []
    try:
        audio = load_audio(task.job.path)
        result.audio_s = duration_s(audio)
        check_speech(audio, task.job.path)
        with atomic_path(task.target) as tmp:
            with tmp.open("w", encoding="utf-8") as handle:
                writer = TranscriptWriter(handle, task.fmt)
                callsigns = list(task.callsigns) if task.callsigns else None
                for segment in transcribe_file(task.job.path, engine, settings, callsigns=callsigns, audio=audio):
                    writer.write(segment)
                    result.segments += 1
                    result.low_confidence += int(segment.low_confidence)
                    result.readback_mismatches += int(segment.readback_mismatch)
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
