"""What a batch transcription works on: the audio files behind folders and manifests.

``atc-whisper transcribe ARCHIVE/ --output OUT/`` must find every recording below
``ARCHIVE`` and give each its own transcript at the same relative place below ``OUT``. A
manifest lists files instead of a folder walk:

* a **text manifest** (``.txt``, ``.lst``): one audio path per line; blank lines and lines
  starting with ``#`` are skipped;
* a **CSV manifest** (``.csv``; ``.tsv`` tab-separated) with a header row: an ``audio``
  column (required), and optionally ``started_at`` (when the recording began: ISO 8601 or
  Unix seconds, used for the catalogue's times) and ``source`` (what the catalogue files it
  under, e.g. ``EDDF tower 119.9``); other columns are ignored.

Relative paths in a manifest are relative to the manifest's folder. Output names mirror the
input paths relative to a root: a folder input is its own root; the files of a manifest (or
audio files given directly) are relative to the folder they all share. With several inputs
the root is the folder all their roots share, so ``transcribe 2024/jan 2024/feb -o out``
writes ``out/jan/...`` and ``out/feb/...``.

When a recording's start is not given, it is read from the file name where it holds a
timestamp (``20240301T143000Z``, ``2024-03-01_14-30-00``, LiveATC's ``Mar-01-2024-1430Z``;
times without a zone are taken as UTC), and otherwise taken as the file's modification
time minus its duration (a recorder writes the file until the recording ends).
"""

from __future__ import annotations

import csv
import os
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

from ..errors import ConfigError

#: Input names that are read as manifests rather than audio.
TEXT_MANIFEST_SUFFIXES = (".txt", ".lst")
CSV_MANIFEST_SUFFIXES = (".csv", ".tsv")
MANIFEST_SUFFIXES = TEXT_MANIFEST_SUFFIXES + CSV_MANIFEST_SUFFIXES
#: Column of a CSV manifest that holds the audio path.
AUDIO_COLUMN = "audio"
#: Where the recording time came from (stored with catalogue rows as ``time_source``).
TIME_FROM_MANIFEST, TIME_FROM_NAME, TIME_FROM_MTIME = "manifest", "file name", "file mtime"

_MONTHS = {m: i for i, m in enumerate(
    ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"), start=1)}
# LiveATC archive names: KJFK-Twr-Mar-01-2024-1430Z.mp3
_LIVEATC_TIME = re.compile(r"(?P<mon>[A-Za-z]{3})-(?P<d>\d{2})-(?P<y>\d{4})-(?P<H>\d{2})(?P<M>\d{2})Z")
# 20240301T143000Z, 2024-03-01_14-30-00, 2024-03-01T14:30, 20240301-1430
_NUMERIC_TIME = re.compile(
    r"(?<!\d)(?P<y>(?:19|20)\d{2})[-_.]?(?P<m>\d{2})[-_.]?(?P<d>\d{2})[T_\- ]?"
    r"(?P<H>\d{2})[-_:.]?(?P<M>\d{2})(?:[-_:.]?(?P<S>\d{2}))?(?!\d)"
)


@dataclass(frozen=True)
class FileJob:
    """One audio file of a batch and where its transcript goes.

    Attributes:
        path: The audio file, absolute.
        output: Its transcript's path below the output folder, POSIX style, without the
            format's suffix (``tower/2024-03-01`` -> ``OUT/tower/2024-03-01.json``).
        source: What catalogue rows are filed under (manifest ``source``, else the folder).
        started_at: When the recording began, if the manifest says (ISO 8601 or Unix seconds).
    """

    path: Path
    output: str
    source: str
    started_at: str | None = None


def is_manifest(path: Path) -> bool:
    """Whether ``path`` is read as a manifest (by its suffix: .txt, .lst, .csv, .tsv)."""
    return path.suffix.lower() in MANIFEST_SUFFIXES


def is_batch_input(path: Path) -> bool:
    """Whether ``path`` asks for a batch (a folder or a manifest) rather than being one audio file."""
    return path.is_dir() or is_manifest(path)


def _suffixes(extensions: Iterable[str]) -> frozenset[str]:
    return frozenset(e.lower() if e.startswith(".") else f".{e.lower()}" for e in extensions if e.strip())


def walk_audio(folder: Path, extensions: Iterable[str], *, exclude: Path | None = None) -> list[Path]:
    """Audio files below ``folder`` (recursively, sorted), skipping hidden files and folders.

    Args:
        folder: Where to look.
        extensions: File name endings that count as audio (case-insensitive).
        exclude: A folder not to descend into (the output folder, when it lies inside).
    """
    wanted = _suffixes(extensions)
    found = []
    skip = exclude.resolve() if exclude is not None else None
    for root, dirs, files in os.walk(folder, followlinks=True):
        here = Path(root)
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and (skip is None or (here / d).resolve() != skip))
        found += [here / f for f in sorted(files) if not f.startswith(".") and Path(f).suffix.lower() in wanted]
    return found


@dataclass(frozen=True)
class _Entry:
    path: Path
    source: str | None = None
    started_at: str | None = None


def read_manifest(manifest: Path) -> list[_Entry]:
    """The files a manifest lists (see the module docstring for the two formats).

    Raises:
        ConfigError: The manifest cannot be read, has no ``audio`` column, or lists nothing.
    """
    try:
        text = manifest.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise ConfigError(f"manifest {manifest} does not exist; pass a folder, a manifest or audio files.") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read manifest {manifest} ({exc}); it must be UTF-8 text.") from None
    base = manifest.parent
    entries: list[_Entry] = []
    if manifest.suffix.lower() in CSV_MANIFEST_SUFFIXES:
        delimiter = "\t" if manifest.suffix.lower() == ".tsv" else ","
        reader = csv.DictReader(text.splitlines(), delimiter=delimiter)
        columns = [c.strip() for c in reader.fieldnames or []]
        if AUDIO_COLUMN not in columns:
            raise ConfigError(f"manifest {manifest} has no '{AUDIO_COLUMN}' column (columns: {', '.join(columns) or 'none'}); "
                              f"its header row must name the column that holds the audio paths '{AUDIO_COLUMN}'.")
        for row in reader:
            row = {(k or "").strip(): (v or "").strip() for k, v in row.items()}
            if not row.get(AUDIO_COLUMN):
                continue
            entries.append(_Entry(base / Path(row[AUDIO_COLUMN]).expanduser(), row.get("source") or None,
                                  row.get("started_at") or None))
    else:
        for line in text.splitlines():
            entry = line.strip()
            if entry and not entry.startswith("#"):
                entries.append(_Entry(base / Path(entry).expanduser()))
    if not entries:
        raise ConfigError(f"manifest {manifest} lists no audio files.")
    return entries


def _common_folder(paths: Sequence[Path]) -> Path:
    parents = [str(p.parent) for p in paths]
    return Path(os.path.commonpath(parents)) if parents else Path("/")


def collect_jobs(inputs: Sequence[Path], extensions: Iterable[str], *, output_dir: Path | None = None) -> list[FileJob]:
    """Every audio file behind ``inputs`` (folders, manifests, audio files), once, with its output name.

    Args:
        inputs: Folders (walked recursively), manifests and audio files, in any mix.
        extensions: What counts as audio in a folder walk (``batch.audio_extensions``).
        output_dir: The output folder; never walked when it lies inside an input folder.

    Returns:
        The jobs in input order (folders sorted). A file named twice is kept once. Two files
        whose transcripts would get the same name (``a.wav`` and ``a.mp3``) keep their audio
        suffix in the name (``a.wav.json``, ``a.mp3.json``).

    Raises:
        ConfigError: An input does not exist, a manifest is unusable, or nothing was found.
    """
    groups: list[tuple[Path, list[_Entry]]] = []  # (root, entries)
    loose: list[_Entry] = []
    for given in inputs:
        path = Path(given).expanduser()
        if path.is_dir():
            root = path.resolve()
            files = walk_audio(root, extensions, exclude=output_dir)
            groups.append((root, [_Entry(f) for f in files]))
        elif is_manifest(path):
            entries = [_Entry(e.path.resolve(), e.source, e.started_at) for e in read_manifest(path.resolve())]
            groups.append((_common_folder([e.path for e in entries]), entries))
        elif path.exists():
            loose.append(_Entry(path.resolve()))
        else:
            raise ConfigError(f"input {path} does not exist; pass folders, manifests (.txt/.csv) or audio files.")
    if loose:
        groups.append((_common_folder([e.path for e in loose]), loose))
    roots = [root for root, _ in groups]
    top = Path(os.path.commonpath([str(r) for r in roots])) if roots else Path("/")
    seen: set[Path] = set()
    planned: list[tuple[_Entry, str]] = []  # (entry, path relative to the top folder, with suffix)
    for _, entries in groups:
        for entry in entries:
            if entry.path in seen:
                continue
            seen.add(entry.path)
            planned.append((entry, entry.path.relative_to(top).as_posix()))
    if not planned:
        raise ConfigError(f"no audio files found in {', '.join(str(p) for p in inputs)} "
                          f"(looked for {', '.join(sorted(_suffixes(extensions)))}; see batch.audio_extensions).")
    stems = [_stem(relative) for _, relative in planned]
    uses = Counter(stems)
    jobs = []
    for (entry, relative), stem in zip(planned, stems, strict=True):
        output = stem if uses[stem] == 1 else relative
        # Default catalogue source: the folder the file is in, named from the top folder down.
        source = "/".join(part for part in (top.name, Path(relative).parent.as_posix()) if part and part != ".")
        jobs.append(FileJob(entry.path, output, entry.source or source or "/", entry.started_at))
    return jobs


def _stem(relative: str) -> str:
    name = Path(relative).name
    return relative[: len(relative) - len(Path(name).suffix)] if Path(name).suffix else relative


def recording_start(job: FileJob, duration_s: float) -> tuple[datetime, str]:
    """When the recording of ``job`` began (UTC) and where that came from (see the module docstring).

    Raises:
        DataError: The manifest's ``started_at`` is not a time.
    """
    from ..data.transcripts import parse_time

    if job.started_at:
        return parse_time(job.started_at), TIME_FROM_MANIFEST
    from_name = time_from_name(job.path.name)
    if from_name is not None:
        return from_name, TIME_FROM_NAME
    mtime = datetime.fromtimestamp(job.path.stat().st_mtime, tz=timezone.utc)
    return mtime - timedelta(seconds=duration_s), TIME_FROM_MTIME


def time_from_name(name: str) -> datetime | None:
    """The timestamp in a recording's file name (UTC), or None when it holds none."""
    match = _LIVEATC_TIME.search(name)
    if match and match.group("mon").lower() in _MONTHS:
        try:
            return datetime(int(match.group("y")), _MONTHS[match.group("mon").lower()], int(match.group("d")),
                            int(match.group("H")), int(match.group("M")), tzinfo=timezone.utc)
        except ValueError:
            pass
    for match in _NUMERIC_TIME.finditer(name):
        try:
            return datetime(int(match.group("y")), int(match.group("m")), int(match.group("d")), int(match.group("H")),
                            int(match.group("M")), int(match.group("S") or 0), tzinfo=timezone.utc)
        except ValueError:
            continue
    return None
