"""Importers for real ATC speech corpora: generic manifests/folders, ATCO2 and ATCOSIM.

:func:`import_corpus` is the entry point (``atc-whisper import FORMAT PATH``). Each format has
a reader that turns the corpus layout into segments; :func:`~.base.ingest` validates, cuts,
writes and catalogues them, skipping bad items with a recorded reason. Imports are
resumable: re-running the same import adds only what is missing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

from ...config import Settings
from ...errors import DataError
from ...workspace import Workspace
from ..catalogue import SPLITS, Recording
from .atco2 import read_atco2
from .atcosim import read_atcosim
from .base import CorpusItem, ImportReport, Skip, ingest, safe_name
from .generic import corpus_name, read_generic

READERS: dict[str, Callable[[Path], Iterable[CorpusItem | Skip | Recording]]] = {
    "generic": read_generic,
    "atco2": read_atco2,
    "atcosim": read_atcosim,
}
FORMATS = tuple(READERS)


def import_corpus(
    fmt: str,
    path: str | Path,
    workspace: Workspace,
    settings: Settings,
    *,
    name: str | None = None,
    split: str | None = None,
    progress: bool = True,
) -> ImportReport:
    """Import a corpus into the workspace's catalogue.

    Args:
        fmt: "generic", "atco2" or "atcosim".
        path: the manifest file or corpus folder.
        workspace: the workspace whose catalogue and ``data/atc_dataset/imported/`` receive it.
        settings: ``data`` limits (``min_duration_s``, ``max_duration_s``, ``end_tolerance_s``),
            ``data.non_english`` and split fractions.
        name: catalogue name of a generic corpus (source ``generic:<name>``); default: the
            manifest's stem or the folder's name.
        split: put every imported sample into this split (e.g. "test" for an evaluation-only
            corpus such as the ATCO2 1 h set) instead of hashing speaker/recording groups.
        progress: show a progress bar.

    Returns:
        An :class:`ImportReport` (added, already present, skipped with reasons, hours).

    Raises:
        DataError: unknown format or split, or the path does not have the format's layout.
    """
    if fmt not in READERS:
        raise DataError(f"unknown import format {fmt!r}; valid formats: {', '.join(FORMATS)}.")
    if split is not None and split not in SPLITS:
        raise DataError(f"unknown split {split!r}; valid splits: {', '.join(SPLITS)}.")
    path = Path(path).expanduser().resolve()
    if not path.exists():
        raise DataError(f"{path} does not exist; pass the {fmt} corpus folder or manifest file.")
    source = fmt
    if fmt == "generic":
        source = f"generic:{safe_name(name or corpus_name(path))}"
    items = READERS[fmt](path)
    return ingest(items, source=source, kind=fmt, path=path, workspace=workspace, settings=settings, split=split,
                  progress=progress)


__all__ = ["FORMATS", "ImportReport", "import_corpus"]
