"""The generic import format: a CSV/TSV manifest, or a folder of audio files with .txt twins.

Manifest (``.csv``, ``.tsv`` or ``.txt``; header row required; delimiter detected)::

    audio,text,start,end,speaker,role
    clips/0001.wav,"speedbird one two three climb flight level three five zero",,,
    long/session.wav,lufthansa four alfa bravo contact tower,12.40,15.95,LH4AB,pilot

* ``audio`` (also ``path``, ``file``, ``audio_path``, ``wav``): audio file, relative to the
  manifest's folder or absolute; any format :func:`~atc_whisper.audio.io.load_audio` reads.
* ``text`` (also ``transcript``, ``transcription``, ``sentence``, ``reference``).
* optional ``start`` / ``end`` (seconds): cut this segment out of the file.
* optional ``speaker`` (also ``speaker_id``): used as the leakage group, so one speaker's
  clips never straddle splits; without it the group is the audio file.
* optional ``role``: controller (also atc, atco) or pilot.

Transcripts may mark foreign-language stretches as ATCO2 does (``[NE Czech] dobrý den [/NE]``)
or as ATCOSIM does (``<FL> ... </FL>``); ``data.non_english`` strips them or skips the segment.

Folder: every audio file below it (wav, flac, ogg, mp3, m4a) whose transcript sits beside it
with the same name and a ``.txt`` extension (``a/b.wav`` + ``a/b.txt``). The live mode's saved
transmissions, once corrected, can be imported back this way.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path

from ...errors import DataError
from .base import AUDIO_EXTENSIONS, CorpusItem, Skip, role_from_label, split_foreign, transcript_for

COLUMN_ALIASES: dict[str, tuple[str, ...]] = {
    "audio": ("audio", "audio_path", "path", "file", "filename", "wav"),
    "text": ("text", "transcript", "transcription", "sentence", "reference"),
    "start": ("start", "start_s", "begin", "offset"),
    "end": ("end", "end_s", "stop"),
    "speaker": ("speaker", "speaker_id", "spk"),
    "role": ("role", "speaker_role"),
}


def corpus_name(path: Path) -> str:
    """Default name of a generic corpus: the manifest's stem or the folder's name."""
    return (path.stem if path.is_file() else path.name) or "corpus"


def read_generic(path: Path) -> Iterator[CorpusItem | Skip]:
    """Items of a generic manifest file or folder.

    Raises:
        DataError: the path does not exist, or a manifest lacks a header with audio and text columns.
    """
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path} does not exist; pass a CSV/TSV manifest or a folder of audio files with .txt transcripts.")
    if path.is_dir():
        audio_files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in AUDIO_EXTENSIONS)
        if not audio_files:
            raise DataError(f"no audio files ({', '.join(AUDIO_EXTENSIONS)}) found under {path}.")
        return _folder_items(path, audio_files)
    return _read_manifest(path)


def _folder_items(folder: Path, audio_files: list[Path]) -> Iterator[CorpusItem | Skip]:
    for audio in audio_files:
        rel = audio.relative_to(folder).as_posix()
        txt = audio.with_suffix(".txt")
        text = transcript_for(audio, txt, f"{txt.name} is missing beside the audio file")
        if isinstance(text, Skip):
            yield text
            continue
        english, foreign = split_foreign(text)
        yield CorpusItem(key=rel, audio_path=audio, text_raw=text, text_clean=english, group_id=rel,
                         params={"transcript_file": str(txt)}, foreign=foreign)


def _columns(header: list[str], manifest: Path) -> dict[str, int]:
    lowered = [h.strip().lower() for h in header]
    found: dict[str, int] = {}
    for column, aliases in COLUMN_ALIASES.items():
        for alias in aliases:
            if alias in lowered:
                found[column] = lowered.index(alias)
                break
    missing = [c for c in ("audio", "text") if c not in found]
    if missing:
        raise DataError(
            f"manifest {manifest} has no {' or '.join(missing)} column (header: {', '.join(header) or 'empty'}); "
            "the first row must name the columns, e.g. audio,text,start,end,speaker (accepted names: "
            + "; ".join(f"{c}: {', '.join(COLUMN_ALIASES[c])}" for c in missing) + ")."
        )
    return found


def _seconds(value: str) -> float | None:
    value = value.strip()
    if not value:
        return None
    return float(value)


def _read_manifest(manifest: Path) -> Iterator[CorpusItem | Skip]:
    try:
        raw = manifest.read_bytes()
    except OSError as exc:
        raise DataError(f"cannot read manifest {manifest}: {exc.strerror or exc}.") from None
    # surrogateescape keeps undecodable bytes visible per row, so one bad transcript is
    # skipped instead of rejecting the whole manifest.
    text = raw.decode("utf-8-sig", errors="surrogateescape")
    if manifest.suffix.lower() == ".tsv":
        delimiter = "\t"
    else:
        first = text.splitlines()[0] if text.strip() else ""
        delimiter = max((",", "\t", ";", "|"), key=first.count)
    rows = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    header = next(rows, None)
    if header is None:
        raise DataError(f"manifest {manifest} is empty; it needs a header row (audio,text,...) and one row per clip.")
    cols = _columns(header, manifest)
    base = manifest.parent
    return _manifest_items(rows, cols, base, manifest)


def _manifest_items(rows: Iterator[list[str]], cols: dict[str, int], base: Path,
                    manifest: Path) -> Iterator[CorpusItem | Skip]:
    for line_no, row in enumerate(rows, start=2):
        where = f"{manifest.name} line {line_no}"
        if not any(cell.strip() for cell in row):
            continue
        cells = {name: (row[i] if i < len(row) else "") for name, i in cols.items()}
        audio_name = cells["audio"].strip()
        if not audio_name:
            yield Skip(where, "no audio path in this row")
            continue
        text = cells["text"].strip()
        try:
            text.encode("utf-8")
            audio_name.encode("utf-8")
        except UnicodeEncodeError:
            yield Skip(where, "transcript is not UTF-8 text; save the manifest as UTF-8")
            continue
        try:
            start = _seconds(cells.get("start", ""))
            end = _seconds(cells.get("end", ""))
        except ValueError:
            yield Skip(where, f"start/end are not numbers: {cells.get('start')!r}, {cells.get('end')!r}")
            continue
        audio = Path(audio_name).expanduser()
        audio = audio if audio.is_absolute() else base / audio
        if not audio.is_file():
            yield Skip(where, f"audio file missing: {audio}")
            continue
        speaker = cells.get("speaker", "").strip() or None
        role_label = cells.get("role", "").strip() or None
        key = Path(audio_name).as_posix()
        if start is not None or end is not None:
            key += f"@{start or 0:.2f}-{end if end is not None else 0:.2f}"
        english, foreign = split_foreign(text)
        yield CorpusItem(
            key=key, audio_path=audio, text_raw=text, text_clean=english, start_s=start, end_s=end, speaker=speaker,
            role=role_from_label(role_label, strict=True), group_id=speaker or Path(audio_name).as_posix(),
            params={"manifest": str(manifest), "line": line_no}, foreign=foreign,
        )
