"""Corrected live transcripts -> a manifest the generic importer reads: the correction loop.

A listener fixes a transcript where they read it (the web view's edit box, stored by
:meth:`~atc_whisper.data.catalogue.Catalogue.correct_transcript` beside the machine text).
:func:`export_corrections` writes every corrected transmission whose audio was saved as one
row of a CSV manifest in the generic importer's format, so ::

    atc-whisper import generic data/live/corrections.csv
    atc-whisper train

learns from them. The file is rewritten whole (temp file + rename) at each export, so it always
lists every correction, the latest text of each; the importer's uid is the audio path, so a
second import of a grown manifest adds only the new rows.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from pathlib import Path

from ..fsutil import atomic_write_text
from .catalogue import Catalogue
from .transcripts import search_transcripts

#: Columns of the exported manifest: ``audio`` and ``text`` (the correction) are what the generic
#: importer needs, ``role`` it reads when known; the rest document where the row came from.
CORRECTIONS_COLUMNS = ("audio", "text", "role", "machine_text", "callsign", "started_at", "source", "transcript_id")
CORRECTIONS_NAME = "corrections.csv"
_ROLES = ("controller", "pilot")


@dataclass
class CorrectionsExport:
    """What :func:`export_corrections` wrote.

    Attributes:
        path: The manifest.
        rows: Corrected transmissions listed in it.
        without_audio: Corrected transcripts left out because their audio was not saved (or is gone).
    """

    path: Path
    rows: int = 0
    without_audio: list[int] = field(default_factory=list)

    @property
    def import_command(self) -> str:
        """The command that brings the manifest into the catalogue as training data."""
        return f"atc-whisper import generic {self.path}"


def export_corrections(catalogue: Catalogue, path: str | Path) -> CorrectionsExport:
    """Write every corrected transcript with saved audio to the manifest at ``path``.

    Audio paths are written relative to the manifest's folder when the audio lies below it
    (the workspace can be moved), else absolute.

    Args:
        catalogue: The catalogue holding the live transcripts.
        path: The CSV manifest to (re)write, e.g. ``data/live/corrections.csv``.

    Returns:
        What was written; transcripts without audio are counted, not written.
    """
    path = Path(path).resolve()
    report = CorrectionsExport(path=path)
    rows = search_transcripts(catalogue, corrected=True, limit=None).rows  # oldest first, like the live manifest
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CORRECTIONS_COLUMNS)
    for row in rows:
        audio = row.get("audio_path")
        if audio is None or not Path(audio).is_file():
            report.without_audio.append(int(row["id"]))
            continue
        audio = Path(audio).resolve()
        try:
            shown = audio.relative_to(path.parent).as_posix()
        except ValueError:
            shown = str(audio)
        role = row.get("role") if row.get("role") in _ROLES else ""
        writer.writerow([shown, row["text_corrected"], role, row["text"], row.get("callsign") or "",
                         row["started_at"], row["source"], row["id"]])
        report.rows += 1
    atomic_write_text(path, buffer.getvalue())
    return report
