"""The one parse-and-snap step every transcript goes through (files, live, the Python API).

A transcript becomes ATC facts here: the callsign is snapped to the nearest known one when a
callsign list is given (e.g. the aircraft on frequency from surveillance data), then the
callsign and commands are parsed (:func:`atc_whisper.phraseology.parse_atc`) and the commands
turned into plain dicts by :meth:`~atc_whisper.phraseology.Command.as_dict`.

The callsign list is found the same way by every command (:func:`callsigns_file`): a
``--callsigns`` path as given, else ``decode.callsigns_file`` relative to the workspace, and
the same list is the decoding prompt (:func:`callsign_prompt`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import DataError

if TYPE_CHECKING:
    from ..config import Settings
    from ..phraseology import ParsedTransmission
    from ..workspace import Workspace


@dataclass(frozen=True)
class Annotation:
    """What a transcript says in ATC terms.

    Attributes:
        text: The transcript; the normalised ATC form when a callsign was snapped.
        callsign: The parsed callsign in reference form ("speedbird one two three"), or None.
        commands: The parsed commands as dicts (type, value, qualifier, detail).
        snapped_from: The callsign as heard, when it was replaced by a known one.
        parsed: The parse itself (commands as objects), for the steps built on it: the
            conversation tracker of live mode, the scoring of evaluation.
    """

    text: str
    callsign: str | None = None
    commands: list[dict[str, Any]] = field(default_factory=list)
    snapped_from: str | None = None
    parsed: ParsedTransmission | None = field(default=None, compare=False, repr=False)


def annotate(text: str, callsigns: Sequence[str] | None = None) -> Annotation:
    """Snap the callsign to ``callsigns`` (when given) and parse the ATC content of ``text``.

    Args:
        text: A transcript in any style (Whisper output or reference convention).
        callsigns: Known callsigns; a recognised callsign close to one of them is replaced by it.

    Returns:
        The :class:`Annotation`; empty text gives no callsign and no commands.
    """
    from ..phraseology import parse_atc, snap_callsign

    if not text.strip():
        return Annotation(text)
    snapped_from = None
    if callsigns:
        snapped_text, snapped = snap_callsign(text, list(callsigns))
        if snapped is not None and snapped_text != text:
            snapped_from = parse_atc(text).callsign or text
            text = snapped_text
    parsed = parse_atc(text)
    return Annotation(text, parsed.callsign, [c.as_dict() for c in parsed.commands], snapped_from, parsed)


def callsign_prompt(callsigns: Sequence[str]) -> str | None:
    """The decoding prompt for known callsigns: "Speedbird one two three, Lufthansa four five six."."""
    names = [c.strip() for c in callsigns if c.strip()]
    if not names:
        return None
    return ", ".join(n[:1].upper() + n[1:] for n in names) + "."


def callsigns_file(settings: Settings, workspace: Workspace, given: str | Path | None = None) -> Path | None:
    """Where the known callsigns are, by the one rule every command follows.

    Args:
        settings: Resolved settings (``decode.callsigns_file``).
        workspace: The workspace a relative ``decode.callsigns_file`` belongs to.
        given: A ``--callsigns`` path: used as given (relative to the current folder, like
            every path on a command line); it wins over the setting.

    Returns:
        The file, or None when neither names one. A relative ``decode.callsigns_file`` is
        taken relative to the workspace root (the folder of the ``atc_whisper.toml`` it is
        written in); an absolute one as is.
    """
    if given is not None and str(given).strip():
        return Path(given).expanduser()
    return workspace.setting_path(settings.decode.callsigns_file)


def load_callsign_list(path: str | Path) -> list[str]:
    """Known callsigns from ``path`` (one per line), via the phraseology loader.

    Raises:
        DataError: The file is missing or lists no callsign; the message names the path.
    """
    from ..phraseology import load_callsigns

    path = Path(path).expanduser()
    if not path.is_file():
        raise DataError(
            f"callsigns file {path} does not exist; give a text file with one callsign per line "
            "(--callsigns is relative to the current folder, decode.callsigns_file to the workspace)."
        )
    return list(load_callsigns(path))  # raises DataError for a list without callsigns


def known_callsigns(settings: Settings, workspace: Workspace, given: str | Path | None = None) -> list[str] | None:
    """The known callsigns (:func:`callsigns_file`, :func:`load_callsign_list`), or None when none are configured.

    Raises:
        DataError: The file named is missing or empty.
    """
    path = callsigns_file(settings, workspace, given)
    return load_callsign_list(path) if path is not None else None
