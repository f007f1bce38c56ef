"""Which callsigns bias the transcription of a file: a global list, a context file, or the file's own recording.

Why this module exists: a recording from a corpus such as ATCO2 comes with its own context
(the ``.info`` file: callsigns of the aircraft nearby at that moment). Biasing each file with
*its* list is what callsign boosting means in the ATCO2 work, and it is more precise than one
list for every file. :func:`file_callsigns` decides, per file, from (in this order):

1. ``context_file`` (``--context-file X.info``): that file's callsigns, for every file;
2. ``context = "recording"``: the ``<name>.info`` file beside the audio, else the context
   stored in the workspace's catalogue when the corpus was imported (matched by path, else by
   recording name);

and adds the global list (``--callsigns`` / ``decode.callsigns_file``) after those callsigns.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ..errors import DataError
from ..workspace import Workspace

CONTEXTS = ("none", "recording")


@dataclass(frozen=True)
class FileContext:
    """The callsign list for one file and where it came from.

    Attributes:
        callsigns: Reference-form callsigns (empty: no biasing).
        origin: "context file X", ".info beside the file", "catalogue (atco2 recording X)",
            "callsign list" or "none".
    """

    callsigns: tuple[str, ...]
    origin: str


def file_callsigns(
    files: Sequence[Path],
    *,
    context: str = "none",
    context_file: str | Path | None = None,
    callsigns: Sequence[str] | None = None,
    workspace: Workspace | None = None,
) -> dict[Path, FileContext]:
    """The callsign list of each file (see the module docstring for the order).

    Args:
        files: The audio files.
        context: "recording" to look up each file's own recording context, "none" to not.
        context_file: A context (``.info``) file whose callsigns apply to every file.
        callsigns: A global list, added after each file's own callsigns.
        workspace: Where the catalogue of imported recordings is (optional).

    Returns:
        One :class:`FileContext` per file (a file without any list gets an empty one).

    Raises:
        DataError: ``context`` is unknown, or ``context_file`` is missing or unreadable.
    """
    from ..data.importers.recording_info import read_recording_info

    if context not in CONTEXTS:
        raise DataError(f"unknown context {context!r}; choose {' or '.join(CONTEXTS)}.")
    extra = tuple(callsigns or ())
    shared: FileContext | None = None
    if context_file:
        info = read_recording_info(context_file)
        shared = FileContext(tuple(info.known_callsigns()), f"context file {context_file}")
    catalogue = None
    if context == "recording" and shared is None and workspace is not None and workspace.db_path.is_file():
        from ..data.catalogue import Catalogue

        catalogue = Catalogue(workspace.db_path)
    out: dict[Path, FileContext] = {}
    try:
        for path in files:
            own = shared
            if own is None and context == "recording":
                beside = path.with_name(f"{path.name.split('.')[0]}.info")
                if beside.is_file():
                    own = FileContext(tuple(read_recording_info(beside).known_callsigns()), f".info beside the file ({beside.name})")
                elif catalogue is not None:
                    found = catalogue.find_recording(path)
                    if found is not None:
                        own = FileContext(tuple(found.known_callsigns()),
                                          f"catalogue ({found.source} recording {found.recording})")
            names = tuple(dict.fromkeys([*(own.callsigns if own else ()), *extra]))
            origin = own.origin if own is not None else ("callsign list" if extra else "none")
            out[path] = FileContext(names, origin)
    finally:
        if catalogue is not None:
            catalogue.close()
    return out
