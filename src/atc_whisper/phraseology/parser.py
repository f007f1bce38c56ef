"""Parse an ATC transmission into its callsign and commands.

Evaluation asks what an ATC person asks - was the callsign right, was the flight level right -
and live transcription shows the same facts beside the text. `parse_atc` reads reference-style
transcripts and (after `normalize_atc`, which it applies itself) raw Whisper output such as
"Speedbird 123, climb FL350".

How it reads a transmission:

* **Callsign.** An airline telephony designator followed by 1-4 digits and up to two ICAO
  letters ("speedbird one two three", "lufthansa four alfa bravo"), or a registration: a
  nationality letter and four more letters ("golf alfa bravo charlie delta"), its abbreviated
  three-letter form ("golf charlie delta"), or "november" + digits + up to two letters. It is
  looked for at the start (controller instructions; after "mayday mayday mayday" and a
  station such as "london control" in pilot calls), then at the end (pilot readbacks), then
  anywhere (an airline designator only).
* **Commands.** Keyword patterns over the remaining words (see `commands` for the canonical
  values): climb/descend/maintain with a flight level or altitude; heading with the turn
  direction ("turn left heading", "left heading"); speed; contact/monitor with the station
  name and frequency (a bare frequency read back counts as contact); squawk; QNH and
  altimeter; runway with clearance kind (line up, take-off, land, cross, hold short - bound to
  the runway named just after the phrase, else the one named just before); taxi; approach
  clearances; direct-to; departure clearance with SID; push back / start up approved; go
  around; hold position; mayday / pan pan. Wind is read and ignored; what follows "request"
  or "expect" is not an instruction and is skipped.

It never raises on garbage: unknown words are skipped and the result is
``ParsedTransmission(None, ())`` when nothing is recognised.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from atc_whisper.phraseology.commands import Command, ParsedTransmission
from atc_whisper.phraseology.normalize import normalize_atc
from atc_whisper.phraseology.numbers import (
    read_altitude,
    read_digits,
    read_flight_level,
    read_frequency,
    read_runway,
)
from atc_whisper.phraseology.vocabulary import (
    AIRPORTS,
    APPROACH_TYPES,
    DIGIT_OF_WORD,
    LETTER_OF_WORD,
    NATIONALITY_LETTERS,
    TELEPHONY_WORDS,
    UNIT_WORDS,
)

log = logging.getLogger(__name__)

_BOUNDARY = "|"  # stands where the callsign was cut out, so no pattern reads across it
_CLIMB = {"climb": "climb", "climbing": "climb", "descend": "descend", "descending": "descend",
          "maintain": "maintain", "maintaining": "maintain"}
_LEVEL_FILLERS = frozenset({"and", "to", "initially", "altitude", "maintain", "maintaining", "now", "further"})
_SPEED_WORDS = frozenset({"speed", "reduce", "reducing", "increase", "increasing"})
_STATION_STOP = frozenset({"and", "when", "on", "now", "then", _BOUNDARY, "squawk", "climb", "descend", "good", "bye"})
# Words that cannot be a waypoint name after "direct".
_NOT_WAYPOINT = frozenset({"to", "and", "then", "when", "for", "the", _BOUNDARY, *DIGIT_OF_WORD, *LETTER_OF_WORD})


# -- callsign ---------------------------------------------------------------------------------


def _airline_end(tokens: Sequence[str], i: int) -> int | None:
    """End index of an airline callsign starting at ``i``, or None."""
    for tele in TELEPHONY_WORDS:
        if tuple(tokens[i:i + len(tele)]) != tele:
            continue
        digits, j = read_digits(tokens, i + len(tele), 4)
        if not digits:
            continue
        letters = 0
        while j < len(tokens) and letters < 2 and tokens[j] in LETTER_OF_WORD:
            j += 1
            letters += 1
        return j
    return None


def _registration_end(tokens: Sequence[str], i: int, exact_end: int | None = None) -> int | None:
    """End index of a registration callsign starting at ``i`` (ending exactly at ``exact_end``
    when given), or None."""
    if i >= len(tokens) or tokens[i] not in NATIONALITY_LETTERS:
        return None
    if tokens[i] == "november":
        digits, j = read_digits(tokens, i + 1, 5)
        if digits and not digits.startswith("0"):
            letters = 0
            while j < len(tokens) and letters < 2 and len(digits) + letters < 5 and tokens[j] in LETTER_OF_WORD:
                j += 1
                letters += 1
            return j if exact_end is None or j == exact_end else None
    run = 0
    while i + run < len(tokens) and tokens[i + run] in LETTER_OF_WORD:
        run += 1
    if exact_end is not None:
        return exact_end if i + run == exact_end and run in (3, 5) else None
    if run >= 5:
        return i + 5
    return i + 3 if run >= 3 else None


def _skip_preamble(tokens: Sequence[str]) -> int:
    """Index after a leading "mayday mayday mayday" / "pan pan ..." and a station call."""
    i = 0
    while i < len(tokens) and tokens[i] in ("mayday", "pan"):
        i += 1
    for j in range(i, min(i + 4, len(tokens))):
        if tokens[j] in UNIT_WORDS:
            return j + 1
    return i


def find_callsign(tokens: Sequence[str]) -> tuple[int, int] | None:
    """Return the ``(start, end)`` token span of the callsign in normalised tokens, or None.

    Args:
        tokens: Words of a normalised transmission.
    """
    n = len(tokens)
    if not n:
        return None
    starts = [0]
    lead = 0
    while lead < n and tokens[lead] in ("mayday", "pan"):
        lead += 1
    starts += [lead, _skip_preamble(tokens)]
    for start in dict.fromkeys(starts):
        end = _airline_end(tokens, start) or _registration_end(tokens, start)
        if end is not None:
            return start, end
    for start in range(max(0, n - 8), n):
        if _airline_end(tokens, start) == n or _registration_end(tokens, start, exact_end=n) is not None:
            return start, n
    for start in range(n):
        end = _airline_end(tokens, start)
        if end is not None:
            return start, end
    return None


# -- commands ---------------------------------------------------------------------------------


class _Scanner:
    """Left-to-right keyword scanner; each ``_at_*`` method consumes a phrase or returns False."""

    def __init__(self, tokens: list[str]) -> None:
        self.t = tokens
        self.i = 0
        self.commands: list[Command] = []
        self.pending_runway: str | None = None
        self.pending_turn: str | None = None

    def word(self, offset: int = 0) -> str:
        k = self.i + offset
        return self.t[k] if 0 <= k < len(self.t) else ""

    def emit(self, command: Command) -> None:
        self.commands.append(command)
        if command.type != "heading":
            self.pending_turn = None

    def run(self) -> list[Command]:
        while self.i < len(self.t):
            if not self.step():
                self.i += 1
        unique: list[Command] = []
        for command in self.commands:
            if command not in unique:
                unique.append(command)
        return unique

    def step(self) -> bool:
        w = self.word()
        handler = _HANDLERS.get(w)
        if handler is not None and handler(self):
            return True
        if w in DIGIT_OF_WORD:
            return self._at_number()
        return False

    # --- helpers
    def runway_after(self, k: int) -> tuple[str | None, int]:
        """Read ``[of] runway <designator>`` starting at token ``k``."""
        if k < len(self.t) and self.t[k] == "of":
            k += 1
        if k < len(self.t) and self.t[k] == "runway":
            value, end = read_runway(self.t, k + 1)
            if value:
                return value, end
        return None, k

    def runway_action(self, kind: str, after: int) -> bool:
        runway, end = self.runway_after(after)
        if runway is None:
            runway, self.pending_runway = self.pending_runway, None
            end = after
        self.emit(Command("runway", runway or "", kind))
        self.i = end
        return True

    def level(self, k: int) -> tuple[str | None, int]:
        while k < len(self.t) and self.t[k] in _LEVEL_FILLERS:
            k += 1
        fl, end = read_flight_level(self.t, k)
        if fl is not None:
            if fl >= 100 and read_frequency(self.t, end - 1)[0] is not None:
                # "flight level seven zero one three four decimal ..." : FL070, then a frequency
                fl, end = fl // 10, end - 1
            return f"FL{fl:03d}", end
        feet, end = read_altitude(self.t, k)
        if feet is not None:
            return f"{feet}ft", end
        return None, k

    def speed_value(self, k: int) -> tuple[str | None, int]:
        digits, end = read_digits(self.t, k, 3)
        if len(digits) >= 2 and not digits.startswith("0"):
            if end < len(self.t) and self.t[end] == "knots":
                end += 1
            return str(int(digits)), end
        return None, k

    # --- handlers
    def _at_climb(self) -> bool:
        kind = _CLIMB[self.word()]
        if kind != "maintain" and self.word(1) == "via" and self._procedure(kind):
            return True
        value, end = self.level(self.i + 1)
        if value is not None:
            self.emit(Command(kind, value))
            self.i = end
            return True
        if kind == "maintain" and self.word(1) == "mach":
            return self._skip_to_mach()
        if kind == "maintain":
            speed, end = self.speed_value(self.i + 1)
            if speed is not None and self.t[end - 1] == "knots":
                self.emit(Command("speed", speed))
                self.i = end
                return True
        return False

    def _procedure(self, kind: str) -> bool:
        """FAA "descend via the lamso two arrival" / "climb via the lamso two departure"."""
        k = self.i + 2
        if self.word(2) == "the":
            k += 1
        if k >= len(self.t) or self.t[k] in _NOT_WAYPOINT or not self.t[k].isalpha():
            return False
        digits, end = read_digits(self.t, k + 1, 1)
        if not digits:
            return False
        if end < len(self.t) and self.t[end] in ("arrival", "departure"):
            end += 1
        self.emit(Command(f"{kind}_via", f"{self.t[k].upper()}{digits}"))
        self.i = end
        return True

    def _skip_to_mach(self) -> bool:
        self.i += 1
        return self._at_mach()

    def _at_passing(self) -> bool:
        value, end = self.level(self.i + 1)
        if value is None:
            return False
        self.i = end
        return True

    def _at_turn(self) -> bool:
        if self.word(1) not in ("left", "right"):
            return False
        self.pending_turn = self.word(1)
        self.i += 2
        digits, end = read_digits(self.t, self.i, 3)
        if len(digits) == 3:
            self._emit_heading(digits, end)
        return True

    def _at_side(self) -> bool:
        if self.word(1) != "heading":
            return False
        self.pending_turn = self.word()
        self.i += 1
        return True

    def _at_heading(self) -> bool:
        digits, end = read_digits(self.t, self.i + 1, 3)
        if len(digits) < 2 or not 1 <= int(digits) <= 360:
            return False
        self._emit_heading(digits, end)
        return True

    def _emit_heading(self, digits: str, end: int) -> None:
        self.emit(Command("heading", f"{int(digits):03d}", self.pending_turn))
        self.pending_turn = None
        self.i = end

    def _at_speed(self) -> bool:
        k = self.i + 1
        while k < len(self.t) and self.t[k] in ("speed", "to"):
            k += 1
        speed, end = self.speed_value(k)
        if speed is None:
            return False
        self.emit(Command("speed", speed))
        self.i = end
        return True

    def _at_contact(self) -> bool:
        kind = "monitor" if self.word().startswith("monitor") else "contact"
        k = self.i + 1
        station: list[str] = []
        while k < len(self.t) and len(station) < 4 and self.t[k] not in DIGIT_OF_WORD \
                and self.t[k] not in _STATION_STOP:
            station.append(self.t[k])
            k += 1
        if k < len(self.t) and self.t[k] == "on":  # "contact london control on one one eight ..."
            k += 1
        frequency, end = read_frequency(self.t, k)
        if frequency is None and not (station and station[-1] in UNIT_WORDS):
            return False
        self.emit(Command(kind, frequency or "", None, " ".join(station) or None))
        self.i = end if frequency else k
        return True

    def _at_number(self) -> bool:
        frequency, end = read_frequency(self.t, self.i)
        if frequency is not None:
            self.emit(Command("contact", frequency))
            self.i = end
            return True
        speed, end = self.speed_value(self.i)
        if speed is not None and self.t[end - 1] == "knots":
            self.emit(Command("speed", speed))
            self.i = end
            return True
        return False

    def _at_mach(self) -> bool:
        k = self.i + 1
        if self.word(1) in ("decimal", "point"):
            k += 1
        digits, end = read_digits(self.t, k, 2)
        if len(digits) != 2:
            return False
        self.emit(Command("speed", f"M0.{digits}"))
        self.i = end
        return True

    def _at_squawk(self) -> bool:
        digits, end = read_digits(self.t, self.i + 1, 4)
        if len(digits) != 4 or any(ch in "89" for ch in digits):
            return False
        self.emit(Command("squawk", digits))
        self.i = end
        return True

    def _at_qnh(self) -> bool:
        digits, end = read_digits(self.t, self.i + 1, 4)
        if len(digits) == 2 and self.word() == "altimeter" and end < len(self.t) and self.t[end] == "decimal":
            more, end = read_digits(self.t, end + 1, 2)  # "altimeter 29.92" as Whisper writes it
            digits += more
        if digits.startswith("9") and len(digits) == 4:  # QNH below 1000 hPa has three digits
            digits, end = digits[:3], end - 1
        if len(digits) < 3:
            return False
        if self.word() == "altimeter":
            if len(digits) != 4:
                return False
            self.emit(Command("altimeter", f"{digits[:2]}.{digits[2:]}"))
        else:
            self.emit(Command("qnh", str(int(digits))))
        self.i = end
        return True

    def _at_direct(self) -> bool:
        k = self.i + 1
        if self.word(1) == "to":
            k += 1
        if k >= len(self.t) or self.t[k] in _NOT_WAYPOINT or not self.t[k].isalpha():
            return False
        self.emit(Command("direct", self.t[k].upper()))
        self.i = k + 1
        return True

    def _at_cleared(self) -> bool:
        k = self.i + 1
        while self.word(k - self.i) in ("for", "the", "immediate"):
            k += 1
        nxt = self.t[k] if k < len(self.t) else ""
        if nxt == "take" and k + 1 < len(self.t) and self.t[k + 1] == "off":
            return self.runway_action("takeoff", k + 2)
        if nxt == "to" and k + 1 < len(self.t) and self.t[k + 1] == "land":
            return self.runway_action("land", k + 2)
        if nxt in APPROACH_TYPES:
            k += 1
            if k < len(self.t) and self.t[k] == "approach":
                k += 1
            runway, end = self.runway_after(k)
            if runway is None:  # "cleared ils two seven right" names the runway without the word
                runway, end = read_runway(self.t, k)
            if runway is None:
                runway, self.pending_runway, end = self.pending_runway, None, k
            self.emit(Command("approach", runway or "", nxt))
            self.i = end
            return True
        if nxt == "to" and k + 1 < len(self.t) and self.t[k + 1].isalpha() and self.t[k + 1] not in _NOT_WAYPOINT:
            return self._clearance(k + 1)
        return False

    def _clearance(self, k: int) -> bool:
        place = self.t[k]
        destination = AIRPORTS.get(place, place.upper())
        k += 1
        if k < len(self.t) and self.t[k] == "airport":
            k += 1
        sid = None
        if k < len(self.t) and self.t[k] == "via":
            # "via lamso one golf departure" (ICAO) or "via the lamso two departure" (FAA, no letter)
            w = k + 2 if self.word(k + 1 - self.i) == "the" else k + 1
            digits, j = read_digits(self.t, w + 1, 1)
            if w < len(self.t) and self.t[w] not in _NOT_WAYPOINT and self.t[w].isalpha() and digits:
                letter = ""
                if j < len(self.t) and self.t[j] in LETTER_OF_WORD:
                    letter, j = LETTER_OF_WORD[self.t[j]], j + 1
                sid = f"{self.t[w].upper()}{digits}{letter}"
                k = j
                if k < len(self.t) and self.t[k] == "departure":
                    k += 1
        self.emit(Command("clearance", destination, sid))
        self.i = k
        return True

    def _at_line(self) -> bool:
        if self.word(1) != "up":
            return False
        k = self.i + 2
        if self.t[k:k + 2] == ["and", "wait"]:
            k += 2
        return self.runway_action("line_up", k)

    def _at_position(self) -> bool:
        """The FAA's former "(taxi into) position and hold" = line up and wait."""
        if self.t[self.i + 1:self.i + 3] != ["and", "hold"]:
            return False
        return self.runway_action("line_up", self.i + 3)

    def _at_cross(self) -> bool:
        return self.runway_action("cross", self.i + 1)

    def _at_hold(self) -> bool:
        if self.word(1) == "short":
            return self.runway_action("hold_short", self.i + 2)
        if self.word(1) == "position":
            self.emit(Command("hold_position"))
            self.i += 2
            return True
        return False

    def _at_runway(self) -> bool:
        value, end = read_runway(self.t, self.i + 1)
        if value is None:
            return False
        self.pending_runway = value
        self.i = end
        return True

    def _at_taxi(self) -> bool:
        k = self.i + 1
        runway = holding_point = None
        route: list[str] = []
        while k < len(self.t):
            w = self.t[k]
            if w == "to":
                k += 1
            elif w == "holding" and k + 1 < len(self.t) and self.t[k + 1] == "point":
                holding_point, k = self._taxiway(k + 2)
            elif w == "runway":
                value, end = read_runway(self.t, k + 1)
                if value is None:
                    break
                runway, k = value, end
            elif w == "via":
                k += 1
                while k < len(self.t) and self.t[k] in LETTER_OF_WORD:
                    name, k = self._taxiway(k)
                    if name:
                        route.append(name)
            else:
                break
        if runway is None and holding_point is None and not route:
            return False
        self.emit(Command("taxi", runway or "", holding_point, " ".join(route) or None))
        self.i = k
        return True

    def _taxiway(self, k: int) -> tuple[str | None, int]:
        if k >= len(self.t) or self.t[k] not in LETTER_OF_WORD:
            return None, k
        digits, end = read_digits(self.t, k + 1, 2)
        return LETTER_OF_WORD[self.t[k]] + digits, end

    def _at_go(self) -> bool:
        if self.word(1) != "around":
            return False
        self.emit(Command("go_around"))
        self.i += 2
        return True

    def _at_push(self) -> bool:
        if self.word(1) != "back" or "approved" not in self.t[self.i + 2:self.i + 8]:
            return False
        self.emit(Command("pushback"))
        self.i += 2
        return True

    def _at_start(self) -> bool:
        if self.word(1) != "up" or "approved" not in self.t[self.i + 2:self.i + 8]:
            return False
        self.emit(Command("startup"))
        self.i += 2
        return True

    def _at_emergency(self) -> bool:
        w = self.word()
        if w == "pan" and self.word(1) != "pan":
            return False
        while self.word() == w:
            self.i += 1
        self.emit(Command("emergency", "mayday" if w == "mayday" else "pan_pan"))
        return True

    def _at_wind(self) -> bool:
        k = self.i + 1
        if self.word(1) == "calm":
            self.i = k + 1
            return True
        if self.word(1) == "variable":
            k += 1
        _, k = read_digits(self.t, k, 3)
        if k < len(self.t) and self.t[k] in ("degrees", "at"):  # "wind two seven zero at one five" (FAA)
            k += 1
        for _ in range(2):
            _, k = read_digits(self.t, k, 3)
            if k < len(self.t) and self.t[k] == "knots":
                k += 1
            if k < len(self.t) and self.t[k] in ("gusting", "gusts", "maximum"):
                k += 1
            else:
                break
        self.i = k
        return True

    def _at_request(self) -> bool:
        # What a pilot asks for or a controller says to expect is not an instruction: parse the
        # next phrase to know where it ends, then drop whatever it produced.
        saved = (list(self.commands), self.pending_runway, self.pending_turn)
        self.i += 1
        if self.i < len(self.t) and not self.step():
            self.i += 1
        self.commands, self.pending_runway, self.pending_turn = saved
        return True

    def _at_information(self) -> bool:
        if self.word(1) not in LETTER_OF_WORD:
            return False
        self.i += 2
        return True


_HANDLERS = {
    **dict.fromkeys(_CLIMB, _Scanner._at_climb),
    **dict.fromkeys(("passing", "leaving"), _Scanner._at_passing),
    "turn": _Scanner._at_turn,
    "turning": _Scanner._at_turn,
    "left": _Scanner._at_side,
    "right": _Scanner._at_side,
    "heading": _Scanner._at_heading,
    **dict.fromkeys(_SPEED_WORDS, _Scanner._at_speed),
    **dict.fromkeys(("contact", "contacting", "monitor", "monitoring"), _Scanner._at_contact),
    **dict.fromkeys(("squawk", "squawking"), _Scanner._at_squawk),
    "mach": _Scanner._at_mach,
    "qnh": _Scanner._at_qnh,
    "altimeter": _Scanner._at_qnh,
    "direct": _Scanner._at_direct,
    "cleared": _Scanner._at_cleared,
    "line": _Scanner._at_line,
    "lining": _Scanner._at_line,
    "position": _Scanner._at_position,
    "cross": _Scanner._at_cross,
    "crossing": _Scanner._at_cross,
    "hold": _Scanner._at_hold,
    "holding": _Scanner._at_hold,
    "runway": _Scanner._at_runway,
    "taxi": _Scanner._at_taxi,
    "go": _Scanner._at_go,
    "going": _Scanner._at_go,
    "push": _Scanner._at_push,
    "start": _Scanner._at_start,
    "mayday": _Scanner._at_emergency,
    "pan": _Scanner._at_emergency,
    "wind": _Scanner._at_wind,
    "request": _Scanner._at_request,
    "requesting": _Scanner._at_request,
    "expect": _Scanner._at_request,
    "information": _Scanner._at_information,
}


def parse_tokens(tokens: Sequence[str]) -> ParsedTransmission:
    """Parse already-normalised words (see `parse_atc`)."""
    words = list(tokens)
    span = find_callsign(words)
    callsign = None
    if span is not None:
        callsign = " ".join(words[span[0]:span[1]])
        words = [*words[:span[0]], _BOUNDARY, *words[span[1]:]]
    return ParsedTransmission(callsign, tuple(_Scanner(words).run()))


def parse_atc(text: str) -> ParsedTransmission:
    """Extract the callsign and commands of one transmission.

    Args:
        text: A transcript in any style (reference convention or raw Whisper output); it is
            passed through `normalize_atc` first.

    Returns:
        The callsign in reference form (or None) and the commands in spoken order, duplicates
        removed. Never raises on unexpected input.
    """
    try:
        return parse_tokens(normalize_atc(text if isinstance(text, str) else "").split())
    except Exception:  # a parser bug must never take down evaluation or live transcription
        log.warning("parse_atc failed on %r; returning an empty result", text, exc_info=True)
        return ParsedTransmission(None, ())
