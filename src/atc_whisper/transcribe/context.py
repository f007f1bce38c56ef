"""Which callsigns bias the transcription of a file: a global list, a context file, or the file's own recording.

Why this module exists: a recording from a corpus such as ATCO2 comes with its own context
(the ``.info`` file: callsigns of the aircraft nearby at that moment). Biasing each file with
*its* list is what callsign boosting means in the ATCO2 work, and it is more precise than one
list for every file. :func:`file_callsigns` decides, per file, from (in this order):

1. ``context_file`` (``--context-file X.info``): that file's callsigns, for every file;
2. ``context = "recording"``: the ``<name>.info`` file beside the audio, else the context
   stored in the workspace's catalogue when the corpus was imported (matched by path, else by
   recording name);

and adds the global list (``--callsigns`` / ``decode.callsigns_file``, found by
:func:`atc_whisper.transcribe.annotate.known_callsigns`) after those callsigns. The context
file is found by the same rule (:func:`context_file_path`): ``--context-file`` as given,
``decode.context_file`` relative to the workspace. Each file's list then goes to
:func:`atc_whisper.transcribe.files.transcribe_file`: the decoding prompt, and the snapping of
:func:`atc_whisper.transcribe.annotate.annotate`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import DataError
from ..workspace import Workspace

if TYPE_CHECKING:
    from ..config import Settings

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


def context_file_path(settings: Settings, workspace: Workspace, given: str | Path | None = None) -> Path | None:
    """The context (``.info``) file whose callsigns bias every file, or None.

    ``given`` (``--context-file``) as given, else ``decode.context_file`` relative to the
    workspace root: the rule of :func:`atc_whisper.transcribe.annotate.callsigns_file`.
    """
    if given is not None and str(given).strip():
        return Path(given).expanduser()
    return workspace.setting_path(settings.decode.context_file)


def has_own_context(found: FileContext) -> bool:
    """Whether ``found`` came from the file's own recording (an ``.info`` beside it or the catalogue)."""
    return found.origin.startswith((".info", "catalogue"))


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
