"""Seeded generator of ATC transmissions with their reference transcript and meaning.

Synthetic training data is only useful when it reads like real radio: ICAO phraseology
across the phases of a flight, controller instructions and pilot readbacks, callsigns of
real airlines and registrations, realistic values (8.33/25 kHz frequencies, octal squawks,
runway designators). Each `Utterance` carries what a TTS engine should say (`text`), the
reference transcript in ATC convention (`reference`: lower-case words, digits spelled one by
one, "nine" not "niner"), the speaker role, the phase and the structured meaning (callsign
and `Command` tuple) that `parse_atc` recovers from the reference.

The mix follows what real frequencies carry (the real-radio table: European transmissions last
1.7 / 3.4 / 6.5 s at p10 / median / p90): besides instructions, readbacks and pilot calls, a
share ``short_fraction`` are the short transmissions a frequency is full of - acknowledgements
("roger", "wilco", "copied"), callsign-only calls, greetings and farewells, "say again",
"standby", "go ahead" - pilots check in ("... with you, flight level three four zero"), and a
few transmissions are blocked: cut short by another station keying over them (the reference
holds the words said before the cut; ``blocked`` tells the radio channel to add the blocking).
A share ``us_fraction`` uses FAA (US) phraseology instead of ICAO/European: US facilities and
carriers, "climb and maintain", altitudes below 18 000 ft, "altimeter" rather than QNH, "point"
spoken for "decimal", 25 kHz channels, "heavy" after wide-body callsigns, "taxi to runway ...
via ...", the old "position and hold", "descend via" / "climb via" a published procedure.

Every utterance records its ``kind`` (`KINDS`), whether it was ``blocked`` and its
``phraseology`` ("icao" or "faa"), besides role, phase, callsign and commands.

Reproducibility: utterance ``k`` of seed ``s`` is drawn from its own ``random.Random`` seeded
with ``"s:k"`` (its content) and ``"s:k:mix"`` (its kind, phraseology and blocking); the global
random state is never touched, and ``generate_utterances(10, s)`` is a prefix of
``generate_utterances(20, s)``. The two streams are separate so that an ICAO instruction,
readback or call that is not blocked is word for word what earlier versions made for its slot,
but for its airline: airlines follow a seeded low-discrepancy sequence over the indexes
(`_airline_slot`), so each is heard about equally often, whatever the FAA share.
"""

from __future__ import annotations

import bisect
import functools
import hashlib
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from atc_whisper.errors import ConfigError
from atc_whisper.phraseology.commands import Command
from atc_whisper.phraseology.numbers import altitude_words, frequency_words, runway_words, spell_digits
from atc_whisper.phraseology.vocabulary import (
    AIRLINES,
    DESTINATIONS,
    EMERGENCY_NATURES,
    ICAO_ALPHABET,
    SPOKEN_DIGIT_VARIANTS,
    STATIONS_BY_PHASE,
    TAXIWAY_LETTERS,
    TELEPHONY_OF_CODE,
    TEXT_OF_TELEPHONY,
    TEXT_OF_WORD,
    US_AIRLINE_CODES,
    US_DESTINATIONS,
    US_STATIONS_BY_PHASE,
    WAYPOINTS,
)

PHASES: tuple[str, ...] = ("clearance", "ground", "tower", "departure", "approach", "enroute", "emergency")
ROLES: tuple[str, ...] = ("controller", "pilot")
#: What a transmission is: an instruction (controller), a readback of one (pilot), a pilot's call
#: (request, report, distress call), a check-in on a new frequency (pilot), or one of the short
#: transmissions of `SHORT_KINDS`.
KINDS: tuple[str, ...] = ("instruction", "readback", "call", "check_in", "acknowledgement", "callsign_only",
                          "greeting", "farewell", "say_again", "standby", "go_ahead")
#: The short radio-procedure transmissions drawn with ``short_fraction``, with their weights
#: (acknowledgements and farewells are the commonest on real frequencies).
SHORT_KINDS: dict[str, int] = {"acknowledgement": 30, "callsign_only": 12, "farewell": 18, "greeting": 8,
                               "say_again": 8, "standby": 8, "go_ahead": 8}
#: Defaults of the mix (also the defaults of ``data.short_fraction`` and ``data.us_fraction``).
DEFAULT_SHORT_FRACTION = 0.25
DEFAULT_US_FRACTION = 0.3
#: Share of the other transmissions that are blocked (cut short by another station).
BLOCKED_SHARE = 0.04
#: Share of pilot transmissions in departure, approach and en-route phases that are check-ins.
CHECK_IN_SHARE = 0.12
#: Share of FAA airline callsigns followed by "heavy" (wide-body aircraft).
HEAVY_SHARE = 0.15
#: Share of ICAO (European) callsigns that are an airline's (the rest are registrations), and the
#: same for FAA (US) callsigns (the rest are November registrations).
ICAO_AIRLINE_SHARE = 0.84
FAA_AIRLINE_SHARE = 0.75
#: Step of the sequence that spreads airlines over utterance indexes (see `_airline_slot`):
#: sqrt(2) - 1, so that it is independent of the golden-ratio sequence of speaker roles.
AIRLINE_STEP = 0.41421356237309515

Words = list[str]


@dataclass(frozen=True)
class Utterance:
    """One generated radio transmission.

    Attributes:
        uid: Stable id derived from the seed and the index (``"s42-000007"``).
        text: What the TTS engine speaks (words, ICAO pronunciations such as "niner", punctuation).
        reference: Reference transcript in ATC convention (lower-case words, digits spelled).
        role: ``"controller"`` or ``"pilot"``.
        phase: One of `PHASES`.
        callsign: The callsign in reference form ("speedbird one two three"); "" when the
            transmission names none ("roger", "good day", a blocked one cut before it).
        commands: The commands the transmission carries, in spoken order.
        kind: What the transmission is, one of `KINDS`.
        blocked: Cut short by another station; the reference holds the words said before the cut.
        phraseology: "icao" (European) or "faa" (US).
    """

    uid: str
    text: str
    reference: str
    role: str
    phase: str
    callsign: str
    commands: tuple[Command, ...] = field(default=())
    kind: str = "instruction"
    blocked: bool = False
    phraseology: str = "icao"

    def as_dict(self) -> dict[str, object]:
        """Return a JSON-ready dict (commands as dicts)."""
        return {"uid": self.uid, "text": self.text, "reference": self.reference, "role": self.role,
                "phase": self.phase, "callsign": self.callsign,
                "commands": [c.as_dict() for c in self.commands], "kind": self.kind, "blocked": self.blocked,
                "phraseology": self.phraseology}


@dataclass
class _Item:
    """One instruction: controller words, pilot readback words (None: not read back), commands."""

    ctrl: Words
    pilot: Words | None = None
    commands: tuple[Command, ...] = ()


class _Draw(random.Random):
    """One utterance's random stream, which also knows the utterance's phraseology.

    Builders take it as ``rng``; ``faa`` selects the FAA (US) forms. Where the ICAO forms are
    drawn, exactly the same draws are made as before FAA phraseology existed.
    """

    def __init__(self, seed: str, faa: bool = False, airline_slot: float | None = None,
                 us_fraction: float = DEFAULT_US_FRACTION) -> None:
        super().__init__(seed)
        self.faa = faa
        self.airline_slot = airline_slot
        self.us_fraction = us_fraction


def _faa(rng: random.Random) -> bool:
    return bool(getattr(rng, "faa", False))


# -- values -----------------------------------------------------------------------------------


def _pick(rng: random.Random, options: Sequence[Words]) -> Words:
    return list(rng.choice(options))


def _letter(rng: random.Random, letters: Sequence[str] | None = None) -> str:
    return rng.choice(letters or list(ICAO_ALPHABET.values()))


def _airline_slot(seed: int, index: int) -> float:
    """Where utterance ``index`` of seed ``seed`` falls in the airline sequence, in [0, 1).

    Airlines follow a low-discrepancy sequence over the utterance indexes (seeded offset) rather
    than independent draws, so every airline is heard about equally often: 3000 independent
    draws over 76 airlines left the rarest with 6 training clips against a median of 37, and
    callsigns of airlines heard in 20 clips or fewer were right 64 % of the time. Even coverage
    did not raise overall callsign accuracy at that size (README, *Chasing the callsign
    target*): how hard a name is to hear matters as much as how often it was heard.
    """
    offset = random.Random(f"{seed}:airlines").random()
    return (index * AIRLINE_STEP + offset) % 1.0


@functools.lru_cache(maxsize=32)
def _icao_airline_cdf(us_fraction: float) -> tuple[float, ...]:
    """Cumulative weights of `AIRLINES` for ICAO callsigns, evening out each airline's total.

    FAA transmissions (a share ``us_fraction``) name only the US carriers (`US_AIRLINE_CODES`);
    ICAO transmissions pick those less often by as much, so that over both phraseologies every
    airline is expected equally often (at ``us_fraction`` 0.3 a US carrier has a fifth of the
    weight of another airline on an ICAO frequency, as on European frequencies).
    """
    us_codes = set(US_AIRLINE_CODES)
    per_us_carrier = us_fraction * FAA_AIRLINE_SHARE / len(us_codes)
    icao = (1.0 - us_fraction) * ICAO_AIRLINE_SHARE
    gap = per_us_carrier / icao if icao > 0 else 0.0
    other = (1.0 + len(us_codes) * gap) / len(AIRLINES)
    weights = [max(0.0, other - gap) if code in us_codes else other for code, _, _ in AIRLINES]
    cumulative, total = [], 0.0
    for weight in weights:
        total += weight
        cumulative.append(total)
    return tuple(cumulative)


def _airline(rng: random.Random, faa: bool) -> str:
    """The telephony of the airline of this utterance's callsign.

    The random draw is always made, so that the draws after it stay as they were; an utterance
    of `generate_utterances` (which sets the slot) then takes the airline its slot gives.
    """
    drawn = TELEPHONY_OF_CODE[rng.choice(US_AIRLINE_CODES)] if faa else rng.choice(AIRLINES)[1]
    if not isinstance(rng, _Draw) or rng.airline_slot is None:
        return drawn
    slot = rng.airline_slot
    if faa:
        return TELEPHONY_OF_CODE[US_AIRLINE_CODES[min(int(slot * len(US_AIRLINE_CODES)), len(US_AIRLINE_CODES) - 1)]]
    cdf = _icao_airline_cdf(rng.us_fraction)
    return AIRLINES[min(bisect.bisect_right(cdf, slot * cdf[-1]), len(AIRLINES) - 1)][1]


def _callsign(rng: random.Random) -> tuple[Words, str]:
    """Return (reference words, text prefix for the telephony part or "")."""
    if rng.random() < ICAO_AIRLINE_SHARE:
        telephony = _airline(rng, faa=False)
        n_digits = rng.choices((1, 2, 3, 4), weights=(1, 3, 4, 3))[0]
        number = str(rng.randint(1, 9)) + "".join(str(rng.randint(0, 9)) for _ in range(n_digits - 1))
        words = telephony.split() + spell_digits(number)
        if n_digits <= 3 and rng.random() < 0.3:
            words += [_letter(rng) for _ in range(rng.randint(1, 2))]
        return words, TEXT_OF_TELEPHONY[telephony]
    kind = rng.choice(("G", "D", "F", "HB", "PH", "EI", "OE", "N"))
    if kind == "N":
        digits = str(rng.randint(1, 9)) + "".join(str(rng.randint(0, 9)) for _ in range(rng.randint(0, 2)))
        letters = [_letter(rng) for _ in range(rng.randint(0, 2))]
        return ["november", *spell_digits(digits), *letters], ""
    fixed = {"G": "G", "D": "DE", "F": "FG", "HB": "HB", "PH": "PH", "EI": "EI", "OE": "OE"}[kind]
    letters = [ICAO_ALPHABET[ch] for ch in fixed] + [_letter(rng) for _ in range(5 - len(fixed))]
    if rng.random() < 0.3:  # abbreviated after first contact: first letter and last two
        letters = [letters[0], *letters[-2:]]
    return letters, ""


def _callsign_faa(rng: random.Random) -> tuple[Words, str, Words]:
    """A callsign heard on a US frequency: (reference words, TTS telephony text or "", suffix words).

    US carriers (and a few foreign ones) or a November registration; "heavy" follows some
    airline callsigns - spoken with the callsign, but not part of it.
    """
    if rng.random() < FAA_AIRLINE_SHARE:
        telephony = _airline(rng, faa=True)
        n_digits = rng.choices((1, 2, 3, 4), weights=(1, 3, 4, 4))[0]
        number = str(rng.randint(1, 9)) + "".join(str(rng.randint(0, 9)) for _ in range(n_digits - 1))
        heavy = ["heavy"] if rng.random() < HEAVY_SHARE else []
        return telephony.split() + spell_digits(number), TEXT_OF_TELEPHONY[telephony], heavy
    digits = str(rng.randint(1, 9)) + "".join(str(rng.randint(0, 9)) for _ in range(rng.randint(0, 3)))
    letters = [_letter(rng) for _ in range(rng.randint(0, min(2, 5 - len(digits))))]
    return ["november", *spell_digits(digits), *letters], "", []


def _runway(rng: random.Random) -> str:
    number = rng.randint(1, 36)
    side = rng.choices(("", "L", "R", "C"), weights=(5, 4, 4, 1))[0]
    return f"{number:02d}{side}"


def _frequency(rng: random.Random) -> str:
    """A VHF air-band channel name, 118.000-136.975 MHz: 25 kHz channels or 8.33 kHz channel names
    (25 kHz only in the US, which has no 8.33 kHz channels)."""
    if _faa(rng):
        return f"{rng.randint(118, 135)}.{100 * rng.randint(0, 9) + rng.choice((0, 25, 50, 75)):03d}"
    while True:
        mhz = rng.randint(118, 136)
        if rng.random() < 0.7:
            khz = rng.choice((0, 25, 50, 75)) + 100 * rng.randint(0, 9)
        else:  # 8.33 kHz channel names end in 05/10/15, 30/35/40, 55/60/65, 80/85/90
            khz = 100 * rng.randint(0, 9) + rng.choice((5, 10, 15, 30, 35, 40, 55, 60, 65, 80, 85, 90))
        if mhz * 1000 + khz <= 136_975:
            return f"{mhz}.{khz:03d}"


def _squawk(rng: random.Random) -> str:
    while True:
        code = "".join(str(rng.randint(0, 7)) for _ in range(4))
        if code not in ("7500", "7600", "7700", "0000"):
            return code


def _flight_level(rng: random.Random, low: int, high: int) -> int:
    return rng.randrange(low, high + 1, 10)


_FAA_ALTITUDES_FT = (2000, 2500, 3000, 4000, 5000, 6000, 7000, 8000, 9000, 10000, 11000, 12000, 13000, 14000,
                     15000, 16000, 17000)


def _level_faa(rng: random.Random, phase: str) -> tuple[Words, str]:
    """US levels: altitudes up to 17 000 ft (the transition altitude is 18 000 ft), rarely with
    "feet"; flight levels from 180."""
    if phase in ("approach", "tower") or (phase in ("departure", "clearance", "emergency") and rng.random() < 0.6):
        top = 11000 if phase in ("approach", "tower") else 17000
        feet = rng.choice([f for f in _FAA_ALTITUDES_FT if f <= top])
        return altitude_words(feet) + (["feet"] if rng.random() < 0.2 else []), f"{feet}ft"
    low, high = {"enroute": (180, 410), "departure": (180, 240)}.get(phase, (180, 250))
    fl = _flight_level(rng, low, high)
    return ["flight", "level", *spell_digits(str(fl))], f"FL{fl:03d}"


def _level(rng: random.Random, phase: str) -> tuple[Words, str]:
    """A flight level or altitude suitable for the phase: (words, canonical value)."""
    if _faa(rng):
        return _level_faa(rng, phase)
    if phase in ("approach", "tower") or (phase in ("departure", "clearance", "emergency") and rng.random() < 0.5):
        feet = rng.choice((1500, 2000, 2500, 3000, 3500, 4000, 4500, 5000, 6000, 7000, 8000, 10000, 12000))
        unit = ["feet"] if rng.random() < 0.75 else []
        prefix = ["altitude"] if rng.random() < 0.4 else []
        return prefix + altitude_words(feet) + unit, f"{feet}ft"
    low, high = {"enroute": (200, 410), "departure": (70, 250)}.get(phase, (60, 250))
    fl = _flight_level(rng, low, high)
    return ["flight", "level", *spell_digits(str(fl))], f"FL{fl:03d}"


def _station(rng: random.Random, phase: str) -> Words:
    table = US_STATIONS_BY_PHASE if _faa(rng) else STATIONS_BY_PHASE
    return rng.choice(table.get(phase, table["enroute"])).split()


# -- instruction builders ---------------------------------------------------------------------


def _vertical(rng: random.Random, phase: str, kind: str | None = None) -> _Item:
    kind = kind or rng.choice(("climb", "descend"))
    words, value = _level(rng, phase)
    if kind == "maintain":
        return _Item(["maintain", *words], _pick(rng, (["maintain"], ["maintaining"])) + words,
                     (Command("maintain", value),))
    verb_ing = "climbing" if kind == "climb" else "descending"
    if _faa(rng):  # "climb and maintain" is the FAA form
        ctrl = _pick(rng, ([kind, "and", "maintain"], [kind, "and", "maintain"], [kind])) + words
        pilot = _pick(rng, ([kind, "and", "maintain"], [verb_ing], [verb_ing, "and", "maintain"])) + words
        return _Item(ctrl, pilot, (Command(kind, value),))
    ctrl = _pick(rng, ([kind], [kind, "to"], [kind, "and", "maintain"], ["when", "ready", kind])) + words
    pilot = _pick(rng, ([kind], [verb_ing], [kind, "and", "maintain"], [kind, "to"])) + words
    return _Item(ctrl, pilot, (Command(kind, value),))


def _procedure(rng: random.Random, kind: str) -> _Item:
    """FAA "descend via the lamso two arrival" / "climb via the lamso two departure" (a STAR or SID)."""
    waypoint, digit = rng.choice(WAYPOINTS), str(rng.randint(1, 9))
    words = ["via", "the", waypoint, *spell_digits(digit), "arrival" if kind == "descend" else "departure"]
    pilot = _pick(rng, ([kind], ["descending" if kind == "descend" else "climbing"])) + words
    return _Item([kind, *words], pilot, (Command(f"{kind}_via", f"{waypoint.upper()}{digit}"),))


def _heading(rng: random.Random) -> _Item:
    heading = rng.randrange(10, 361, rng.choice((5, 10, 10)))
    digits = spell_digits(f"{heading:03d}")
    direction = rng.choice(("left", "right", None))
    if direction:
        ctrl = _pick(rng, (["turn", direction, "heading"], ["turn", direction, "heading"])) + digits
        pilot = _pick(rng, ([direction, "heading"], ["turn", direction, "heading"])) + digits
    else:
        ctrl = _pick(rng, (["fly", "heading"], ["continue", "heading"], ["heading"])) + digits
        pilot = _pick(rng, (["heading"], ["fly", "heading"])) + digits
    return _Item(ctrl, pilot, (Command("heading", f"{heading:03d}", direction),))


def _speed(rng: random.Random, phase: str) -> _Item:
    knots = rng.randrange(160, 231, 10) if phase == "approach" else rng.randrange(180, 291, 10)
    digits = spell_digits(str(knots))
    ctrl = _pick(rng, (["reduce", "speed", "to"], ["reduce", "speed"], ["speed"], ["increase", "speed", "to"],
                       ["maintain"])) + digits + ["knots"]
    pilot = _pick(rng, (["speed"], ["reducing"], ["reduce", "speed"], ["maintain"])) + digits + \
        _pick(rng, (["knots"], ["knots"], []))
    if pilot[-1] != "knots" and pilot[0] == "maintain":
        pilot.append("knots")
    return _Item(ctrl, pilot, (Command("speed", str(knots)),))


def _contact(rng: random.Random, next_phase: str, kind: str | None = None) -> _Item:
    kind = kind or ("contact" if rng.random() < 0.8 else "monitor")
    station = _station(rng, next_phase)
    if station[-1] in _SHORT_UNITS and rng.random() < 0.3:
        station = station[-1:]  # "contact tower ..."
    frequency = _frequency(rng)
    freq_words = frequency_words(frequency)
    ctrl = [kind, *station, *freq_words] + (["good", "day"] if rng.random() < 0.3 else [])
    if kind == "monitor":
        pilot = _pick(rng, (["monitor"], ["monitoring"])) + station + freq_words
    else:
        pilot = _pick(rng, ([], ["contact", *station])) + freq_words
    if rng.random() < 0.3:
        pilot += ["good", "day"]
    return _Item(ctrl, pilot, (Command(kind, frequency, None, " ".join(station)),))


_SHORT_UNITS = frozenset({"tower", "ground", "departure", "approach", "director", "radar", "delivery"})


def _mach(rng: random.Random) -> _Item:
    hundredths = str(rng.randint(72, 85))
    words = ["mach", "decimal", *spell_digits(hundredths)]
    ctrl = _pick(rng, (["maintain"], ["reduce"], [])) + words
    pilot = _pick(rng, (["maintain"], [])) + words
    return _Item(ctrl, pilot, (Command("speed", f"M0.{hundredths}"),))


def _squawk_item(rng: random.Random, code: str | None = None) -> _Item:
    code = code or _squawk(rng)
    digits = spell_digits(code)
    return _Item(["squawk", *digits], _pick(rng, (["squawk"], ["squawking"])) + digits, (Command("squawk", code),))


def _qnh(rng: random.Random) -> _Item:
    if _faa(rng) or rng.random() < 0.2:  # North American altimeter setting in inches of mercury
        inhg = f"{rng.randint(2950, 3040):04d}"
        words = ["altimeter", *spell_digits(inhg)]
        return _Item(words, list(words), (Command("altimeter", f"{inhg[:2]}.{inhg[2:]}"),))
    hpa = rng.randint(985, 1035)
    words = ["qnh", *spell_digits(str(hpa))]
    return _Item(words, list(words), (Command("qnh", str(hpa)),))


def _direct(rng: random.Random) -> _Item:
    waypoint = rng.choice(WAYPOINTS)
    ctrl = [*_pick(rng, (["proceed", "direct"], ["direct"], ["direct", "to"], ["cleared", "direct"])), waypoint]
    pilot = [*_pick(rng, (["direct"], ["proceeding", "direct"], ["direct", "to"])), waypoint]
    return _Item(ctrl, pilot, (Command("direct", waypoint.upper()),))


def _approach(rng: random.Random, runway: str) -> _Item:
    kind = rng.choices(("ils", "visual", "rnp", "localizer"), weights=(6, 2, 2, 1))[0]
    rwy = runway_words(runway)
    ctrl = _pick(rng, (["cleared", kind, "approach", "runway"], ["cleared", "for", "the", kind, "approach", "runway"],
                       ["cleared", kind, "runway"])) + rwy
    pilot = _pick(rng, (["cleared", kind, "approach", "runway"], ["cleared", kind, "runway"])) + rwy
    return _Item(ctrl, pilot, (Command("approach", runway, kind),))


def _wind(rng: random.Random) -> _Item:
    direction = rng.randrange(10, 361, 10)
    knots = rng.randint(2, 25)
    if _faa(rng):  # "wind two seven zero at one five, gusts two five"
        words = ["wind", *spell_digits(f"{direction:03d}"), "at", *spell_digits(str(knots))]
        if knots > 15 and rng.random() < 0.4:
            words += ["gusts", *spell_digits(str(knots + rng.randint(8, 15)))]
        return _Item(words)
    words = ["wind", *spell_digits(f"{direction:03d}"), "degrees", *spell_digits(str(knots)), "knots"]
    if knots > 15 and rng.random() < 0.4:
        words += ["gusting", *spell_digits(str(knots + rng.randint(8, 15))), "knots"]
    return _Item(words)


def _runway_clearance(rng: random.Random, kind: str, runway: str) -> list[_Item]:
    rwy = ["runway", *runway_words(runway)]
    command = (Command("runway", runway, kind),)
    if kind == "line_up" and _faa(rng) and rng.random() < 0.25:  # the FAA's form before 2011
        ctrl = _pick(rng, ([*rwy, "taxi", "into", "position", "and", "hold"], ["taxi", "into", "position", "and", "hold",
                                                                                *rwy]))
        return [_Item(ctrl, ["position", "and", "hold", *rwy], command)]
    if kind == "line_up":
        ctrl = _pick(rng, ([*rwy, "line", "up", "and", "wait"], ["line", "up", "and", "wait", *rwy]))
        pilot = _pick(rng, (["line", "up", "and", "wait", *rwy], ["lining", "up", *rwy]))
        return [_Item(ctrl, pilot, command)]
    if kind in ("takeoff", "land"):
        action = ["cleared", "for", "take", "off"] if kind == "takeoff" else ["cleared", "to", "land"]
        pilot = action + rwy
        wind = _wind(rng)
        if rng.random() < 0.5:  # "runway two seven left, wind ..., cleared to land"
            return [_Item(rwy), wind, _Item(action, pilot, command)]
        return [_Item(rwy + action, pilot, command), wind]
    if kind == "cross":
        return [_Item(["cross", *rwy], _pick(rng, (["crossing"], ["cross"])) + rwy, command)]
    ctrl = _pick(rng, (["hold", "short"], ["hold", "short", "of"])) + rwy
    pilot = _pick(rng, (["holding", "short"], ["hold", "short"])) + rwy
    return [_Item(ctrl, pilot, command)]


def _taxi_faa(rng: random.Random, runway: str) -> _Item:
    """FAA taxi instruction: "taxi to runway two seven left via alfa bravo" (no holding point)."""
    route_names: list[str] = []
    route_words: Words = []
    for _ in range(rng.randint(1, 3)):
        name = rng.choice(TAXIWAY_LETTERS)
        suffix = str(rng.randint(1, 9)) if rng.random() < 0.3 else ""
        route_words += [name, *spell_digits(suffix)]
        route_names.append(name[0].upper() + suffix)
    words = ["taxi", "to", "runway", *runway_words(runway), "via", *route_words]
    return _Item(words, list(words), (Command("taxi", runway, None, " ".join(route_names)),))


def _taxi(rng: random.Random, runway: str) -> _Item:
    if _faa(rng):
        return _taxi_faa(rng, runway)
    letter = rng.choice(TAXIWAY_LETTERS)
    number = str(rng.randint(1, 4))
    holding = ["holding", "point", letter, *spell_digits(number)]
    route_names: list[str] = []
    route_words: Words = []
    for _ in range(rng.randint(0, 3)):
        name = rng.choice(TAXIWAY_LETTERS)
        suffix = str(rng.randint(1, 9)) if rng.random() < 0.3 else ""
        route_words += [name, *spell_digits(suffix)]
        route_names.append(name[0].upper() + suffix)
    rwy = ["runway", *runway_words(runway)]
    if not route_words:
        words = ["taxi", "to", *holding, *rwy]
    elif rng.random() < 0.5:
        words = ["taxi", "to", *holding, *rwy, "via", *route_words]
    else:
        words = ["taxi", "via", *route_words, "to", *holding, *rwy]
    command = Command("taxi", runway, letter[0].upper() + number, " ".join(route_names) or None)
    return _Item(words, list(words), (command,))


def _info(words: Words) -> _Item:
    return _Item(words)


# -- phases -----------------------------------------------------------------------------------


def _clearance_items_faa(rng: random.Random) -> list[_Item]:
    """FAA clearance: "cleared to kennedy airport via the lamso two departure then as filed ..."."""
    city = rng.choice(list(US_DESTINATIONS))
    words = ["cleared", "to", city, "airport"]
    sid = None
    if rng.random() < 0.7:
        waypoint, digit = rng.choice(WAYPOINTS), str(rng.randint(1, 9))
        sid = f"{waypoint.upper()}{digit}"
        words += ["via", "the", waypoint, *spell_digits(digit), "departure"]
    if rng.random() < 0.5:
        words += ["then", "as", "filed"]
    items = [_Item(words, list(words), (Command("clearance", US_DESTINATIONS[city], sid),))]
    items.append(_vertical(rng, "clearance", "climb"))
    items.append(_squawk_item(rng))
    return items


def _clearance_items(rng: random.Random) -> list[_Item]:
    if _faa(rng):
        return _clearance_items_faa(rng)
    city = rng.choice(list(DESTINATIONS))
    waypoint = rng.choice(WAYPOINTS)
    sid_digit = str(rng.randint(1, 9))
    sid_letter = _letter(rng, ("alfa", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel",
                               "juliett", "kilo", "lima", "mike", "papa", "romeo", "sierra", "tango", "yankee"))
    words = ["cleared", "to", city]
    sid = None
    if rng.random() < 0.8:
        sid = f"{waypoint.upper()}{sid_digit}{sid_letter[0].upper()}"
        words += ["via", waypoint, *spell_digits(sid_digit), sid_letter, "departure"]
    items = [_Item(words, list(words), (Command("clearance", DESTINATIONS[city], sid),))]
    level_words, value = _level(rng, "clearance")
    items.append(_Item(["climb", "initially", *level_words],
                       _pick(rng, (["climb", "initially"], ["climb"])) + level_words, (Command("climb", value),)))
    items.append(_squawk_item(rng))
    if rng.random() < 0.3:
        items.append(_info(["information", _letter(rng), "is", "current"]))
    return items


def _ground_items(rng: random.Random) -> list[_Item]:
    runway = _runway(rng)
    choice = rng.randrange(6)
    if choice == 0:
        words = _pick(rng, (["push", "back", "and", "start", "up", "approved"], ["start", "up", "and", "push", "back",
                                                                                    "approved"]))
        return [_Item(words, list(words), (Command("pushback"), Command("startup"))
                      if words[0] == "push" else (Command("startup"), Command("pushback")))]
    if choice == 1:
        items = [_Item(["start", "up", "approved"], ["start", "up", "approved"], (Command("startup"),))]
        return items + ([_qnh(rng)] if rng.random() < 0.6 else [])
    if choice == 2:
        items = [_taxi(rng, runway)]
        if rng.random() < 0.4:
            items.append(_qnh(rng))
        return items
    if choice == 3:
        other = _runway(rng)
        return [_taxi(rng, runway), *_runway_clearance(rng, "hold_short", other)]
    if choice == 4:
        return [*_runway_clearance(rng, "cross", runway), _contact(rng, "tower")]
    return [*_runway_clearance(rng, "hold_short", runway)]


def _tower_items(rng: random.Random) -> list[_Item]:
    runway = _runway(rng)
    choice = rng.randrange(5)
    if choice == 0:
        return _runway_clearance(rng, "line_up", runway)
    if choice == 1:
        return _runway_clearance(rng, "takeoff", runway)
    if choice == 2:
        return _runway_clearance(rng, "land", runway)
    if choice == 3:
        items = [_Item(["go", "around"], ["going", "around"], (Command("go_around"),))]
        if rng.random() < 0.7:
            feet = rng.choice((2000, 2500, 3000, 3500, 4000, 5000))
            words = altitude_words(feet) + (["feet"] if rng.random() < 0.7 else [])
            items.append(_Item(["climb", *words], ["climbing", *words], (Command("climb", f"{feet}ft"),)))
        return items
    return [_contact(rng, "departure")]


def _departure_items(rng: random.Random) -> list[_Item]:
    if _faa(rng) and rng.random() < 0.15:
        return [_procedure(rng, "climb")]
    items: list[_Item] = []
    if rng.random() < 0.3:
        items.append(_info(["identified"]))
    builders: list[Callable[[], _Item]] = [lambda: _vertical(rng, "departure", "climb"), lambda: _heading(rng),
                                           lambda: _direct(rng), lambda: _speed(rng, "departure"),
                                           lambda: _contact(rng, "enroute")]
    for index in sorted(rng.sample(range(len(builders)), rng.randint(1, 2))):
        items.append(builders[index]())
    return items


def _approach_items(rng: random.Random) -> list[_Item]:
    if _faa(rng) and rng.random() < 0.15:
        return [_procedure(rng, "descend")]
    runway = _runway(rng)
    choice = rng.randrange(5)
    if choice == 0:
        items = [_vertical(rng, "approach", "descend")]
        if rng.random() < 0.6:
            items.append(_qnh(rng))
        return items
    if choice == 1:
        return [_heading(rng), *([_vertical(rng, "approach", "descend")] if rng.random() < 0.5 else [])]
    if choice == 2:
        return [_speed(rng, "approach"), *([_heading(rng)] if rng.random() < 0.4 else [])]
    if choice == 3:
        items = [_heading(rng)] if rng.random() < 0.5 else []
        items.append(_approach(rng, runway))
        if rng.random() < 0.3:
            items.append(_info(["report", "established"]))
        return items
    return [_contact(rng, "tower")]


def _enroute_items(rng: random.Random) -> list[_Item]:
    if _faa(rng) and rng.random() < 0.15:
        return [_procedure(rng, "descend")]
    choice = rng.randrange(7)
    if choice == 0:
        return [_vertical(rng, "enroute")]
    if choice == 1:
        return [_direct(rng), *([_vertical(rng, "enroute")] if rng.random() < 0.4 else [])]
    if choice == 2:
        return [_contact(rng, "enroute")]
    if choice == 3:
        return [_vertical(rng, "enroute", "maintain")]
    if choice == 4:
        return [_squawk_item(rng)]
    if choice == 5:
        return [_mach(rng), *([_vertical(rng, "enroute", "climb")] if rng.random() < 0.4 else [])]
    return [_vertical(rng, "enroute", "descend"), _speed(rng, "enroute")]


def _emergency_items(rng: random.Random) -> list[_Item]:
    mayday = rng.random() < 0.6
    ack = ["roger", "mayday"] if mayday else ["roger", "pan", "pan"]
    items = [_Item(ack, None, (Command("emergency", "mayday" if mayday else "pan_pan"),))]
    choice = rng.randrange(4)
    if choice == 0:
        items.append(_vertical(rng, "emergency", "descend"))
    elif choice == 1:
        items.append(_heading(rng))
    elif choice == 2:
        items.append(_direct(rng))
    else:
        items.append(_approach(rng, _runway(rng)))
    if rng.random() < 0.4:
        items.append(_squawk_item(rng, "7700"))
    return items


_PHASE_ITEMS: dict[str, Callable[[random.Random], list[_Item]]] = {
    "clearance": _clearance_items, "ground": _ground_items, "tower": _tower_items,
    "departure": _departure_items, "approach": _approach_items, "enroute": _enroute_items,
    "emergency": _emergency_items,
}


Piece = tuple[Words, tuple[Command, ...]]  # a chunk of words and the commands it carries


def _pilot_call(rng: random.Random, phase: str, callsign: Words) -> list[Piece]:
    """A pilot-initiated call (request, report, distress call): pieces after the callsign's own."""
    if phase == "emergency":
        mayday = rng.random() < 0.6
        head = ["mayday"] * 3 if mayday else ["pan", "pan"] * 3
        pieces: list[Piece] = [(head, (Command("emergency", "mayday" if mayday else "pan_pan"),)),
                               (_station(rng, "enroute"), ()), (callsign, ()),
                               (rng.choice(EMERGENCY_NATURES).split(), ())]
        if rng.random() < 0.5:
            words, value = _level(rng, "emergency")
            pieces.append((["descending", *words], (Command("descend", value),)))
        pieces.append((_pick(rng, (["request", "immediate", "return"], ["request", "vectors", "for", "landing"],
                                   ["request", "priority", "landing"])), ()))
        if rng.random() < 0.4:
            pieces.append((["squawking", *spell_digits("7700")], (Command("squawk", "7700"),)))
        return pieces
    station = _station(rng, phase)
    if phase in ("departure", "approach") and rng.random() < 0.6:
        kind = "climb" if phase == "departure" else "descend"
        words, value = _level(rng, phase)
        return [(station, ()), (callsign, ()), (["climbing" if kind == "climb" else "descending", *words],
                                                (Command(kind, value),))]
    if phase == "enroute" and rng.random() < 0.5:
        words, value = _level(rng, "enroute")
        return [(station, ()), (callsign, ()), (["maintaining", *words], (Command("maintain", value),))]
    requests: dict[str, list[Words]] = {
        "clearance": [["request", "start", "up", "information", _letter(rng)], ["request", "departure", "clearance"]],
        "ground": [["request", "push", "back"], ["request", "taxi"], ["ready", "to", "taxi"]],
        "tower": [["ready", "for", "departure"], ["established", "ils", "runway", *runway_words(_runway(rng))]],
        "departure": [["request", "direct", rng.choice(WAYPOINTS)]],
        "approach": [["request", "vectors", "for", "the", "ils"], ["information", _letter(rng), "received"]],
        "enroute": [["request", "direct", rng.choice(WAYPOINTS)], ["request", "climb", "flight", "level", "three", "six",
                                                                    "zero"]],
    }
    return [(station, ()), (callsign, ()), (rng.choice(requests[phase]), ())]


def _check_in(rng: random.Random, phase: str, callsign: Words) -> list[Piece]:
    """A pilot's first call on a new frequency: "[good morning] london control, speedbird one two
    three, with you flight level three four zero" (FAA: "... with you at one one thousand")."""
    greeting = _pick(rng, ([], [], ["good", "morning"], ["hello"], ["good", "afternoon"], ["good", "evening"]))
    station = _station(rng, phase)
    words, value = _level(rng, phase)
    kind = {"departure": "climb", "approach": "descend"}.get(phase)
    report: Piece
    if kind and rng.random() < 0.6:
        verb = "climbing" if kind == "climb" else "descending"
        if rng.random() < 0.4:
            passing, _ = _level(rng, phase)
            report = (["passing", *passing, verb, *words], (Command(kind, value),))
        else:
            report = ([verb, *words], (Command(kind, value),))
    else:
        bare = words[0] == "flight" and rng.random() < 0.3  # "..., speedbird one two three, flight level three four zero"
        report = (words if bare else _pick(rng, (["with", "you"], ["with", "you", "at"])) + words, ())
    pieces: list[Piece] = [(greeting, ()), (station, ()), (callsign, ()), report]
    if phase == "approach" and rng.random() < 0.3:
        pieces.append((["information", _letter(rng)], ()))
    return pieces


# Short transmissions: templates of chunks; "C" stands for the callsign, "S" for a station.
_SHORT_TEMPLATES: dict[str, dict[str, tuple[tuple[object, ...], ...]]] = {
    "acknowledgement": {
        "pilot": ((["roger"],), (["wilco"],), (["copied"],), (["roger"], "C"), ("C", ["roger"]), (["wilco"], "C"),
                  (["roger", "wilco"],), (["affirm"],), (["affirm"], "C"), (["negative"],), (["roger", "thank", "you"],),
                  (["copied"], "C")),
        "controller": (("C", ["roger"]), (["roger"],), ("C", ["copied"]), (["roger", "thank", "you"],), ("C", ["affirm"]),
                       ("C", ["negative"]), (["thank", "you"],), ("C", ["thank", "you"])),
    },
    "callsign_only": {
        "pilot": (("C",), ("C",), ("S", "C")),
        "controller": (("C",),),
    },
    "greeting": {
        "pilot": ((["good", "morning"],), (["hello"],), ("C", ["good", "morning"]), (["good", "afternoon"], "C"),
                  (["good", "evening"],), (["hello"], "S")),
        "controller": (("C", ["good", "morning"]), (["good", "morning"],), (["hello"],), (["good", "evening"], "C"),
                       ("C", ["hello"])),
    },
    "farewell": {
        "pilot": ((["bye"],), (["bye", "bye"],), (["good", "day"],), (["thank", "you", "bye"],), (["thanks", "bye"],),
                  (["cheers"],), (["good", "day"], "C"), ("C", ["good", "day"]), (["thank", "you", "good", "day"],),
                  (["see", "you"],), ("C", ["bye"]), (["good", "bye"],)),
        "controller": ((["bye"],), (["bye", "bye"],), (["good", "day"],), ("C", ["good", "day"]), (["good", "bye"],),
                       (["cheers"],), ("C", ["bye", "bye"])),
    },
    "say_again": {
        "pilot": ((["say", "again"],), (["say", "again"], "C"), (["say", "again", "please"],), ("C", ["say", "again"]),
                  (["say", "again", "the", "frequency"],)),
        "controller": (("C", ["say", "again"]), (["say", "again"],), (["station", "calling"], "S", ["say", "again"]),
                       (["say", "again", "your", "callsign"],), ("C", ["say", "again", "your", "request"])),
    },
    "standby": {
        "pilot": ((["standby"],), ("C", ["standby"]), (["standby"], "C")),
        "controller": (("C", ["standby"]), (["standby"],)),
    },
    "go_ahead": {
        "pilot": ((["go", "ahead"],), ("C", ["go", "ahead"])),
        "controller": (("C", ["go", "ahead"]), ("C", "S", ["go", "ahead"]), (["go", "ahead"],)),
    },
}


def _short(rng: random.Random, kind: str, role: str, phase: str, callsign: Words) -> list[Piece]:
    """A short radio-procedure transmission of ``kind`` (see `SHORT_KINDS`); no commands."""
    template = rng.choice(_SHORT_TEMPLATES[kind][role])
    pieces: list[Piece] = []
    for part in template:
        if part == "C":
            pieces.append((callsign, ()))
        elif part == "S":
            pieces.append((_station(rng, phase), ()))
        else:
            pieces.append((list(part), ()))  # type: ignore[call-overload]
    return pieces


def _truncate(pieces: list[Piece], callsign: Words, rng: random.Random) -> tuple[list[Piece], bool] | None:
    """Cut a transmission short, as another station keying over it does.

    The cut falls after at least two words and drops at least two; a piece cut in the middle
    keeps its words but loses its commands (they were never completed). The cut is accepted
    only when what is left still parses to exactly the commands (and callsign) kept - a half
    value such as "descend flight level one two" would teach a wrong meaning - else it moves
    back to the start of the piece it fell in, and failing that the transmission is not cut.

    Returns:
        (kept pieces, whether the callsign was kept whole) or None.
    """
    from atc_whisper.phraseology.commands import ParsedTransmission
    from atc_whisper.phraseology.parser import parse_tokens

    total = sum(len(words) for words, _ in pieces)
    if total < 5:
        return None
    cut = rng.randint(2, total - 2)
    kept: list[Piece] = []
    partial: Piece | None = None
    used = 0
    for words, commands in pieces:
        if used + len(words) <= cut:
            kept.append((words, commands))
            used += len(words)
            continue
        if cut > used:
            partial = (words[: cut - used], ())
        break
    for candidate in ([*kept, partial] if partial else kept, kept):
        flat = [w for words, _ in candidate for w in words]
        if len(flat) < 2:
            continue
        with_callsign = any(words is callsign for words, _ in candidate)
        expected = ParsedTransmission(" ".join(callsign) if with_callsign else None,
                                      tuple(c for _, cmds in candidate for c in cmds))
        if parse_tokens(flat) == expected:
            return candidate, with_callsign
    return None


def _render_text(chunks: list[Words], telephony_text: str, callsign: Words, rng: random.Random) -> str:
    """Spoken text for TTS: ICAO pronunciations for some speakers, telephony spelled for TTS, commas.

    FAA speakers say "point" where the reference writes "decimal" (the scoring normaliser maps
    it back).
    """
    niner = rng.random() < 0.75
    icao_purist = rng.random() < 0.25  # says "tree", "fife", "fower" too
    variants = {k: v for k, v in SPOKEN_DIGIT_VARIANTS.items() if (k == "nine" and niner) or (k != "nine" and icao_purist)}
    if _faa(rng):
        variants["decimal"] = "point"
    rendered: list[str] = []
    for chunk in chunks:
        words = list(chunk)
        if telephony_text and chunk is callsign:
            words = [telephony_text, *words[len(_telephony_of(words)):]]
        out = [variants.get(w, TEXT_OF_WORD.get(w, w)) if w in variants or w in TEXT_OF_WORD else w for w in words]
        if words and words[-1] == "decimal":  # "mach decimal" cut short: only "point" before a digit means decimal
            out[-1] = "decimal"
        rendered.append(" ".join(out))
    text = ", ".join(rendered)
    return text[:1].upper() + text[1:] + "."


def _telephony_of(words: Words) -> Words:
    for _, telephony, _ in AIRLINES:
        tele = telephony.split()
        if words[:len(tele)] == tele:
            return tele
    return []


@dataclass(frozen=True)
class _Mix:
    """The draws of an utterance's own mix stream (``"seed:index:mix"``), all made up front so
    each is independent of the settings that use the others."""

    short: float
    short_kind: str
    blocked: float
    faa: float
    check_in: float
    cut: random.Random

    @classmethod
    def draw(cls, seed: int, index: int) -> _Mix:
        rng = random.Random(f"{seed}:{index}:mix")
        short, blocked, faa, check_in = rng.random(), rng.random(), rng.random(), rng.random()
        kind = rng.choices(list(SHORT_KINDS), weights=list(SHORT_KINDS.values()))[0]
        return cls(short, kind, blocked, faa, check_in, random.Random(rng.random()))


def _utterance(seed: int, index: int, pilot_fraction: float, phases: Sequence[str], short_fraction: float = 0.0,
               us_fraction: float = 0.0) -> Utterance:
    mix = _Mix.draw(seed, index)
    faa = mix.faa < us_fraction
    rng = _Draw(f"{seed}:{index}", faa=faa, airline_slot=_airline_slot(seed, index), us_fraction=us_fraction)
    phase = rng.choice(list(phases))
    rng.random()  # keeps the per-utterance stream as it was when roles were drawn here
    # Roles follow a golden-ratio sequence (seeded offset) rather than independent draws, so
    # even the 10-sample default gets its share of pilot readbacks.
    role_offset = random.Random(f"{seed}:roles").random()
    role = "pilot" if (index * 0.6180339887498949 + role_offset) % 1.0 < pilot_fraction else "controller"
    if faa:
        callsign, telephony_text, suffix = _callsign_faa(rng)
    else:
        (callsign, telephony_text), suffix = _callsign(rng), []
    spoken_callsign = callsign + suffix  # "delta one two three heavy": said together, callsign without "heavy"
    pieces: list[Piece]
    if mix.short < short_fraction:
        kind = mix.short_kind
        pieces = _short(rng, kind, role, phase, spoken_callsign)
    elif role == "pilot" and phase in ("departure", "approach", "enroute") and mix.check_in < CHECK_IN_SHARE:
        kind, pieces = "check_in", _check_in(rng, phase, spoken_callsign)
    elif role == "pilot" and ((phase == "emergency" and rng.random() < 0.7) or rng.random() < 0.2):
        kind, pieces = "call", _pilot_call(rng, phase, spoken_callsign)
    else:
        items = _PHASE_ITEMS[phase](rng)
        if role == "controller":
            kind = "instruction"
            pieces = [(spoken_callsign, ())] + [(item.ctrl, item.commands) for item in items]
        else:
            kind = "readback"
            read_back = [item for item in items if item.pilot is not None]
            if not read_back:  # nothing to read back: acknowledge
                read_back = [_Item(["roger"], ["roger"])]
            pieces = [(item.pilot, item.commands) for item in read_back if item.pilot] + [(spoken_callsign, ())]
    pieces = [(words, commands) for words, commands in pieces if words]  # drop empty chunks
    blocked = False
    has_callsign = any(words is spoken_callsign for words, _ in pieces)
    if kind in ("instruction", "readback", "call", "check_in") and mix.blocked < BLOCKED_SHARE:
        cut = _truncate(pieces, spoken_callsign, mix.cut)
        if cut is not None:
            (pieces, has_callsign), blocked = cut, True
    chunks = [words for words, _ in pieces]
    commands = tuple(c for _, cmds in pieces for c in cmds)
    reference = " ".join(w for chunk in chunks for w in chunk)
    text = _render_text(chunks, telephony_text, spoken_callsign, rng)
    return Utterance(uid=f"s{seed}-{index:06d}", text=text, reference=reference, role=role, phase=phase,
                     callsign=" ".join(callsign) if has_callsign else "", commands=commands, kind=kind,
                     blocked=blocked, phraseology="faa" if faa else "icao")


def generate_utterances(n: int, seed: int, *, pilot_fraction: float = 0.4,
                        phases: Sequence[str] | None = None, short_fraction: float = DEFAULT_SHORT_FRACTION,
                        us_fraction: float = DEFAULT_US_FRACTION) -> list[Utterance]:
    """Generate ``n`` ATC transmissions, reproducibly.

    Args:
        n: Number of utterances (0 or more).
        seed: Seed; the same seed always gives the same utterances, whatever the global random state.
        pilot_fraction: Share of utterances spoken by pilots (readbacks and pilot calls), 0-1.
        phases: Restrict to these phases (default: all of `PHASES`).
        short_fraction: Share of short radio-procedure transmissions (`SHORT_KINDS`: "roger",
            a callsign, "good day", "say again", "standby", "go ahead"), 0-1.
        us_fraction: Share of transmissions in FAA (US) rather than ICAO (European) phraseology, 0-1.

    Returns:
        The utterances, uid ``"s{seed}-{index:06d}"``.

    Raises:
        ConfigError: On a negative ``n``, a share outside 0-1 or an unknown phase (the
            ``[data]`` settings of the same names feed these).
    """
    if n < 0:
        raise ConfigError(f"utterance count must be >= 0, got {n}; ask for 0 or more (data.samples).")
    for name, share in (("pilot_fraction", pilot_fraction), ("short_fraction", short_fraction),
                        ("us_fraction", us_fraction)):
        if not 0.0 <= share <= 1.0:
            raise ConfigError(f"{name} must be within 0-1, got {share}; set data.{name} to a share between 0 and 1.")
    chosen = tuple(phases) if phases is not None else PHASES
    unknown = [p for p in chosen if p not in PHASES]
    if unknown or not chosen:
        raise ConfigError(f"unknown phase(s) {list(unknown or chosen)}; choose one or more of {', '.join(PHASES)}.")
    return [_utterance(seed, index, pilot_fraction, chosen, short_fraction, us_fraction) for index in range(n)]


def generate_utterance(seed: int, index: int, *, pilot_fraction: float = 0.4, phases: Sequence[str] | None = None,
                       short_fraction: float = DEFAULT_SHORT_FRACTION,
                       us_fraction: float = DEFAULT_US_FRACTION) -> Utterance:
    """The ``index``-th utterance of ``generate_utterances(..., seed)`` alone (same arguments, same result).

    Raises:
        ConfigError: as :func:`generate_utterances`, and for a negative ``index``.
    """
    if index < 0:
        raise ConfigError(f"utterance index must be >= 0, got {index}; indexes count from 0.")
    generate_utterances(0, seed, pilot_fraction=pilot_fraction, phases=phases, short_fraction=short_fraction,
                        us_fraction=us_fraction)  # validates the arguments
    return _utterance(seed, index, pilot_fraction, tuple(phases) if phases is not None else PHASES, short_fraction,
                      us_fraction)


def utterance_digest(utterances: Sequence[Utterance]) -> str:
    """SHA-256 over the references of ``utterances`` (handy to compare two generated sets)."""
    digest = hashlib.sha256()
    for u in utterances:
        digest.update(f"{u.uid}\t{u.reference}\n".encode())
    return digest.hexdigest()
