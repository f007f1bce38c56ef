"""Where live transcripts go besides the screen: JSON lines, the catalogue, saved audio.

Each sink receives every :class:`~atc_whisper.live.runner.LiveRecord` in order, from the
recogniser thread. Appends are flushed per transmission, so a crash or a pulled plug loses
at most the line being written (an append-only log cannot be rewritten atomically at every
line without copying it each time).

Saved audio closes the training loop: each transmission becomes ``<session>_<index>.wav``
under ``data/live/audio/`` and a row of ``manifest.csv`` in the generic importer's format
(``audio,text``); correct the ``text`` column and run
``atc-whisper import generic data/live/audio/manifest.csv``.
"""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path
from typing import IO

from ..audio.segment import Transmission
from ..errors import DataError
from ..log import get_logger
from .runner import LiveRecord, session_id

log = get_logger(__name__)

MANIFEST_NAME = "manifest.csv"
#: Manifest columns: ``audio`` and ``text`` are what the generic importer reads; the rest
#: help the person correcting transcripts (the importer ignores them).
MANIFEST_COLUMNS = ("audio", "text", "low_confidence", "avg_logprob", "callsign", "started_at", "source")


class _AppendFile:
    """A text file opened for appending, flushed to the OS after every write."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._fh: IO[str] | None = open(path, "a", encoding="utf-8", newline="")  # closed in close()
        except OSError as exc:
            raise DataError(f"cannot write {path}: {exc.strerror or exc}; choose another file or fix its permissions.") from None

    @property
    def empty(self) -> bool:
        return self.path.stat().st_size == 0

    def write(self, text: str) -> None:
        if self._fh is None:
            return
        self._fh.write(text)
        self._fh.flush()

    def close(self) -> None:
        if self._fh is not None:
            self._fh.flush()
            os.fsync(self._fh.fileno())
            self._fh.close()
            self._fh = None


class JsonlSink:
    """Appends one JSON object per transmission (:meth:`LiveRecord.as_dict`) to ``path``."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._file = _AppendFile(self.path)

    def write(self, record: LiveRecord, transmission: Transmission) -> None:
        self._file.write(json.dumps(record.as_dict(), ensure_ascii=False) + "\n")

    def close(self) -> None:
        self._file.close()


class CatalogueSink:
    """Stores every transcript in the catalogue's ``transcripts`` table (one transaction each)."""

    def __init__(self, db_path: str | Path, *, root: str | Path | None = None) -> None:
        from ..data.catalogue import Catalogue

        self.catalogue = Catalogue(db_path, root=root)
        self.ids: list[int] = []

    def write(self, record: LiveRecord, transmission: Transmission) -> None:
        row = record.as_dict()
        row["started_at"] = record.wall_start  # the catalogue formats epoch seconds itself
        self.ids += self.catalogue.add_transcripts([row])

    def close(self) -> None:
        self.catalogue.close()


class AudioSink:
    """Saves each transmission as a WAV and lists it in a generic-importer manifest.

    Must come before the other sinks: it fills in ``record.audio_path``.

    Args:
        folder: Where the WAVs and ``manifest.csv`` go.
        session: Prefix of the file names (default: the session's start time).
    """

    def __init__(self, folder: str | Path, session: str | None = None) -> None:
        self.folder = Path(folder)
        self.session = session or session_id()
        self.manifest = self.folder / MANIFEST_NAME
        self._file = _AppendFile(self.manifest)
        if self._file.empty:
            self._file.write(self._row(list(MANIFEST_COLUMNS)))

    @staticmethod
    def _row(cells: list[str]) -> str:
        buffer = io.StringIO()
        csv.writer(buffer, lineterminator="\n").writerow(cells)
        return buffer.getvalue()

    def write(self, record: LiveRecord, transmission: Transmission) -> None:
        from ..audio.io import write_wav

        name = f"{self.session}_{record.index:05d}.wav"
        path = write_wav(self.folder / name, transmission.audio)
        record.audio_path = str(path)
        self._file.write(self._row([
            name, record.text, "1" if record.low_confidence else "0", f"{record.avg_logprob:.3f}",
            record.callsign or "", record.started_at, record.source,
        ]))

    def close(self) -> None:
        self._file.close()
