"""Per-recording context files: the ATCO2 ``.info`` format, read liberally.

Why this module exists: ATCO2 ships, beside each recording, what the controller's screen
knew at the time: the airport, the channel and its frequency, the waypoints nearby and the
callsigns of the aircraft nearby (from surveillance data) with their spoken forms. Biasing the
recogniser with *that recording's* callsigns is how the ATCO2 and HAAWAII work measures
callsign boosting. The file looks like this (the ATCO2 corpus and its preparation scripts)::

    airport: LKPR (Prague Ruzyne)
    channel: Tower
    frequency: 134.560
    waypoints nearby: BAVOX GOLOP RAPET
    callsigns nearby:
    CSA4AB : CSA Four Alfa Bravo
    BLA131 : All Charter One Three One

What is accepted, since real files vary:

* ``key: value`` header lines in any order and case, ``=`` as well as ``:``; unknown keys are
  kept in ``fields``; blank lines and ``#`` comments are ignored; UTF-8 (with or without BOM),
  else Latin-1;
* the airport as ``ICAO (Name)``, ``ICAO Name`` or just the code or name;
* the frequency with or without a unit (``134.560``, ``134,56 MHz``, ``134560 kHz``);
* waypoints separated by spaces or commas, on the header line;
* callsigns after ``callsigns nearby:``, one per line as ``CODE : spoken form`` (also ``-``,
  ``=`` or a tab as separator; several spoken forms separated by ``|`` or ``;``), or several
  bare codes per line, or bare codes on the header line itself; a spoken form is turned into
  reference words by the ATC normaliser, a bare code by the callsign reader (``BAW123`` ->
  ``speedbird one two three``);
* the airport, channel and frequency, when the file lacks them, from an ATCO2 file name such
  as ``LKPR_RUZYNE_Tower_134_560MHz_20201025_090915``.

Lines that cannot be understood are listed in ``warnings``, never fatal.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ...errors import DataError

#: Header keys (lower case, single spaces) that end a callsign block.
HEADER_KEYS = frozenset({
    "airport", "airport name", "icao", "channel", "frequency", "freq", "waypoints", "waypoints nearby",
    "nearby waypoints", "callsigns", "callsigns nearby", "nearby callsigns", "time", "date", "datetime",
    "start", "start time", "end time", "recording", "file", "duration", "country", "city", "unit", "sector",
})
_CALLSIGN_KEYS = frozenset({"callsigns", "callsigns nearby", "nearby callsigns"})
_WAYPOINT_KEYS = frozenset({"waypoints", "waypoints nearby", "nearby waypoints"})
_HEADER_RE = re.compile(r"^\s*([A-Za-z][A-Za-z _-]*?)\s*[:=]\s*(.*?)\s*$")
_ENTRY_SEPARATOR_RE = re.compile(r"\s*(?::|=|\t| - )\s*")
_FREQUENCY_RE = re.compile(r"(\d{2,6}(?:[.,]\d+)?)\s*(mhz|khz)?", re.IGNORECASE)
_ICAO_RE = re.compile(r"^([A-Z]{4})\b\s*[-,(]?\s*(.*?)\)?\s*$")
# ATCO2 recording names: <ICAO>_<NAME>_<Channel>_<MHz>_<kHz>MHz_<date>_<time>
_NAME_RE = re.compile(r"^(?P<icao>[A-Z]{4})_(?P<name>.+?)_(?P<channel>[A-Za-z]+)_(?P<mhz>\d{3})_(?P<khz>\d{1,3})MHz")


@dataclass
class RecordingInfo:
    """What a context file says about one recording.

    Attributes:
        airport: ICAO code ("LKPR"), when given.
        airport_name: The airport's name ("Prague Ruzyne").
        channel: The ATC unit ("Tower").
        frequency_mhz: The channel frequency, MHz.
        callsigns: ``{"code", "spoken", "reference"}`` per callsign nearby, duplicates removed.
        waypoints: Waypoint names nearby.
        fields: Every ``key: value`` header line, keys in lower case.
        warnings: Lines that could not be understood.
    """

    airport: str | None = None
    airport_name: str | None = None
    channel: str | None = None
    frequency_mhz: float | None = None
    callsigns: list[dict[str, str]] = field(default_factory=list)
    waypoints: list[str] = field(default_factory=list)
    fields: dict[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def known_callsigns(self) -> list[str]:
        """The callsigns nearby in reference words, in file order, without duplicates."""
        return list(dict.fromkeys(c["reference"] for c in self.callsigns if c.get("reference")))


def _key(raw: str) -> str:
    return " ".join(raw.lower().replace("_", " ").replace("-", " ").split())


def parse_frequency_mhz(text: str) -> float | None:
    """``"134.560"``, ``"134,56 MHz"`` or ``"134560 kHz"`` -> 134.56; None when there is no number."""
    match = _FREQUENCY_RE.search(text or "")
    if not match:
        return None
    value = float(match.group(1).replace(",", "."))
    unit = (match.group(2) or "").lower()
    if unit == "khz" or (not unit and value >= 1000):
        value /= 1000.0
    return round(value, 4)


def _split_airport(value: str) -> tuple[str | None, str | None]:
    value = value.strip()
    if not value:
        return None, None
    match = _ICAO_RE.match(value)
    if match:
        return match.group(1), (match.group(2).strip(" ()-,") or None)
    if "(" in value:  # "Prague Ruzyne (LKPR)"
        name, _, rest = value.partition("(")
        code = rest.strip(" )")
        if re.fullmatch(r"[A-Z]{4}", code):
            return code, name.strip() or None
    return None, value


def _reference(code: str, spoken: str) -> str:
    """Reference words of a callsign: its spoken form normalised, else the code read as a callsign."""
    from ...phraseology import normalize_atc
    from ...phraseology.callsigns import callsign_reference

    if spoken:
        return normalize_atc(spoken)
    try:
        return callsign_reference(code)
    except DataError:
        return ""


def _callsign_entries(line: str) -> list[tuple[str, str]]:
    """(code, spoken form) pairs of one line of a callsign block."""
    parts = _ENTRY_SEPARATOR_RE.split(line.strip(), maxsplit=1)
    if len(parts) == 2 and parts[0] and " " not in parts[0]:
        code, spoken = parts
        forms = [f.strip() for f in re.split(r"\s*[|;]\s*", spoken) if f.strip()] or [""]
        return [(code, form) for form in forms]
    tokens = line.replace(",", " ").split()
    # Several bare codes ("BLA131 CSA4AB"), or one code followed by its spoken form without a separator.
    if tokens and all(re.search(r"\d", t) or (t.isupper() and len(t) >= 3) for t in tokens):
        return [(t, "") for t in tokens]
    return [(tokens[0], " ".join(tokens[1:]))] if tokens else []


def facts_from_name(name: str) -> dict[str, Any]:
    """Airport, channel and frequency read from an ATCO2 recording name (empty when it has none)."""
    match = _NAME_RE.match(name)
    if not match:
        return {}
    return {"airport": match.group("icao"), "airport_name": match.group("name").replace("_", " ").title(),
            "channel": match.group("channel"),
            "frequency_mhz": round(float(f"{match.group('mhz')}.{match.group('khz')}"), 4)}


def parse_recording_info(text: str, *, name: str | None = None) -> RecordingInfo:
    """Parse the text of a context file (see the module docstring for what is accepted).

    Args:
        text: The file's text.
        name: The recording's name (file stem): fills airport, channel and frequency the text
            does not give, from an ATCO2-style name.

    Returns:
        A :class:`RecordingInfo`; never raises on odd content (see ``warnings``).
    """
    info = RecordingInfo()
    in_callsigns = False
    entries: list[tuple[str, str]] = []
    for number, raw_line in enumerate(text.splitlines(), start=1):
        line = raw_line.strip()
        if not line or line.startswith("#"):
            continue
        header = _HEADER_RE.match(line)
        key = _key(header.group(1)) if header else ""
        if header and (key in HEADER_KEYS or not in_callsigns):
            value = header.group(2)
            in_callsigns = key in _CALLSIGN_KEYS
            info.fields[key] = value
            if in_callsigns and value:
                entries += _callsign_entries(value)
            elif key in _WAYPOINT_KEYS:
                info.waypoints += [w for w in re.split(r"[\s,;]+", value) if w]
            elif key in ("airport", "icao"):
                info.airport, info.airport_name = _split_airport(value)
            elif key == "airport name":
                info.airport_name = value or info.airport_name
            elif key == "channel":
                info.channel = value or None
            elif key in ("frequency", "freq"):
                info.frequency_mhz = parse_frequency_mhz(value)
            continue
        if in_callsigns:
            found = _callsign_entries(line)
            if found:
                entries += found
                continue
        info.warnings.append(f"line {number} not understood: {line[:80]!r}")
    seen: set[str] = set()
    for code, spoken in entries:
        reference = _reference(code, spoken)
        if not reference:
            info.warnings.append(f"callsign {code!r} has no letters or digits")
            continue
        if reference in seen:
            continue
        seen.add(reference)
        info.callsigns.append({"code": code, "spoken": spoken, "reference": reference})
    for key, value in facts_from_name(name or "").items():
        if getattr(info, key) is None:
            setattr(info, key, value)
    return info


def read_text_liberally(path: Path) -> str:
    """A small text file's content: UTF-8 (a BOM is dropped), else Latin-1, never a decoding error.

    Raises:
        OSError: the file cannot be read.
    """
    data = path.read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def read_recording_info(path: str | Path) -> RecordingInfo:
    """Read and parse a context file.

    Raises:
        DataError: the file is missing or unreadable (the message names it).
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise DataError(f"recording context file {path} does not exist; give an ATCO2-style .info file "
                        "(airport:, channel:, frequency:, callsigns nearby: ...).")
    try:
        text = read_text_liberally(path)
    except OSError as exc:
        raise DataError(f"cannot read recording context file {path}: {exc.strerror or exc}.") from None
    return parse_recording_info(text, name=path.name.split(".")[0])
