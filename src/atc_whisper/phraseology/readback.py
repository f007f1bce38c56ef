"""Readback check: does the pilot's readback carry the values the controller gave?

A readback that changes a value (flight level three five zero read back as three three zero) or
leaves out a safety-relevant item is the error a controller must catch - the hearback problem
behind many level busts and runway incursions. ICAO Doc 4444 (4.5.7.5.1) lists what must always
be read back: route clearances; clearances to enter, land on, take off from, hold short of,
cross, taxi on a runway; runway in use, altimeter settings, SSR codes, new frequencies, level,
heading and speed instructions. Those items are *required* here; the rest (start-up and
push-back approvals, go-around, traffic information, "report established") may be answered
with "roger" or "wilco".

How two transmissions are compared (`check_readback`):

* Each `Command` becomes an **item** (``level``, ``heading``, ``speed``, ``frequency``,
  ``squawk``, ``qnh``, ``altimeter``, ``runway``, ``hold_short``, ``hold_position``, ``taxi``,
  ``approach``, ``direct``, ``clearance``, ...). Equivalent wordings are one item: "descend"
  read back as "descending" or "maintaining" is the same level; "contact london control one
  one eight decimal seven" read back as just the frequency is the same frequency (station names
  are not compared); a heading read back without its turn direction is the same heading.
* Items of the instruction are matched with items of the same kind in the readback: equal
  values are fine, a different value is ``changed`` (also climb read back as descend, left as
  right, line up as take-off); a required item with no counterpart is ``missing``.
* A value read back without its keyword ("three five zero, speedbird one two three" for flight
  level three five zero) is found among the readback's bare numbers: digits equal to the
  expected value count as read back; when exactly one unexplained number of the same length is
  left for exactly one missing item, that item is ``changed`` to it.
* Items only in the readback (a request added, a word misparsed) are not flagged.
* Recognition errors are not readback errors: a value that could not have been said on purpose
  (heading 027, FL035, an 8.33 kHz channel that does not exist) and a required item whose
  keyword is there but whose value is unreadable ("squawking four five one") are not flagged;
  an instructed value that is itself implausible is not compared.
* Neither are they a correct readback: when such a required item cannot be judged and nothing
  else differs, the result is ``unchecked`` (the items in ``unreadable``), never ``ok`` - "ok"
  means every required value was heard read back. `conversation.Conversation` reports an
  unchecked readback as no readback check at all (``readback`` null in transcript records).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from atc_whisper.phraseology.callsigns import _levenshtein
from atc_whisper.phraseology.commands import Command, ParsedTransmission
from atc_whisper.phraseology.normalize import normalize_atc
from atc_whisper.phraseology.numbers import (
    read_altitude,
    read_digits,
    read_flight_level,
    read_frequency,
    read_runway,
)
from atc_whisper.phraseology.parser import find_callsign
from atc_whisper.phraseology.vocabulary import DESTINATIONS, LETTER_OF_WORD

OK, MISMATCH, UNCHECKED = "ok", "mismatch", "unchecked"
CHANGED, MISSING = "changed", "missing"

# Command type -> item name.
_ITEM_OF_TYPE: dict[str, str] = {
    "climb": "level", "descend": "level", "maintain": "level", "heading": "heading", "speed": "speed",
    "contact": "frequency", "monitor": "frequency", "squawk": "squawk", "qnh": "qnh", "altimeter": "altimeter",
    "taxi": "taxi", "approach": "approach", "direct": "direct", "clearance": "clearance", "pushback": "pushback",
    "startup": "startup", "go_around": "go_around", "hold_position": "hold_position",
}
#: Items a pilot must read back (ICAO Doc 4444 4.5.7.5.1); others may be acknowledged with "roger"/"wilco".
REQUIRED_ITEMS: frozenset[str] = frozenset({
    "level", "heading", "speed", "frequency", "squawk", "qnh", "altimeter", "runway", "hold_short",
    "hold_position", "taxi", "approach", "direct", "clearance",
})
_CLEARANCE_WORDS = {"line_up": "line up", "takeoff": "take off", "land": "land", "cross": "cross"}


@dataclass(frozen=True)
class Difference:
    """One way a readback differs from the instruction.

    Attributes:
        item: What differs: ``level``, ``heading``, ``speed``, ``frequency``, ``squawk``, ``qnh``,
            ``altimeter``, ``runway``, ``hold_short``, ``hold_position``, ``taxi``, ``approach``,
            ``direct`` or ``clearance``.
        expected: The instructed value as displayed (``"FL350"``, ``"left 270"``, ``"land 27L"``).
        heard: The value read back, or None when it is missing.
        kind: ``"changed"`` or ``"missing"``.
    """

    item: str
    expected: str
    heard: str | None
    kind: str

    def as_dict(self) -> dict[str, str | None]:
        """``{"item", "expected", "heard", "kind"}``."""
        return {"item": self.item, "expected": self.expected, "heard": self.heard, "kind": self.kind}

    def __str__(self) -> str:
        if self.kind == MISSING:
            return f"{self.item} {self.expected} missing"
        return f"{self.item} {self.expected} read back as {self.heard}"


@dataclass(frozen=True)
class ReadbackResult:
    """The outcome of comparing one readback with the instruction it answers.

    Attributes:
        status: ``"mismatch"`` (at least one difference), ``"unchecked"`` (no difference, but a
            required item's value could not be read - a recognition error, so the readback
            cannot be called correct) or ``"ok"`` (every required value read back unchanged).
        differences: What differed, in the order of the instruction's items.
        instruction: Index of the controller transmission answered (set by `Conversation`), or None.
        unreadable: Required items whose readback could not be judged (``level``, ``squawk`` ...),
            in the order of the instruction; may be set with any status.
    """

    status: str
    differences: tuple[Difference, ...] = ()
    instruction: int | None = None
    unreadable: tuple[str, ...] = ()

    @property
    def mismatch(self) -> bool:
        """True when the readback is a ``readback_mismatch``."""
        return self.status == MISMATCH

    def as_dict(self) -> dict[str, object]:
        """``{"status", "instruction", "differences": [...]}``, as transmission records carry it."""
        return {"status": self.status, "instruction": self.instruction,
                "differences": [d.as_dict() for d in self.differences]}

    def describe(self) -> str:
        """One line for people: ``"level FL350 read back as FL330; squawk 4521 missing"``, ``"ok"``
        or ``"not checked: level unreadable"``."""
        if self.status == UNCHECKED:
            return f"not checked: {', '.join(self.unreadable)} unreadable"
        return describe_differences([d.as_dict() for d in self.differences])


def describe_differences(differences: Sequence[dict[str, str | None]]) -> str:
    """One line for people from differences as dicts (the ``readback.differences`` of a JSON record)."""
    return "; ".join(str(Difference(str(d.get("item")), str(d.get("expected")), d.get("heard"), str(d.get("kind"))))
                     for d in differences) or OK


@dataclass(frozen=True)
class _Item:
    name: str
    value: str  # the compared value
    mode: str | None  # what must agree too when both sides state it (verb, turn, clearance kind)

    @property
    def display(self) -> str:
        """The value as shown in a difference: ``FL350``, ``270``, ``land 27L``, ``holding point A1 runway 27L``."""
        if self.name == "runway" and self.mode:
            return f"{_CLEARANCE_WORDS.get(self.mode, self.mode)} {self.value}".strip()
        if self.name == "approach" and self.mode:
            return f"{self.mode} {self.value}".strip()
        if self.name == "taxi":
            return " ".join(p for p in (f"holding point {self.mode}" if self.mode else "",
                                        f"runway {self.value}" if self.value else "") if p) or "taxi"
        if self.name == "clearance" and self.mode:
            return f"{self.value} via {self.mode}"
        return self.value or self.name.replace("_", " ")

    def display_with_mode(self) -> str:
        """The value with the verb or turn direction, when that is what differs (``descend FL080``)."""
        if self.name in ("level", "heading") and self.mode:
            return f"{self.mode} {self.value}".strip()
        return self.display

    def agrees(self, other: _Item) -> bool:
        """Same value (or none instructed), and what qualifies it does not contradict."""
        return self.values_agree(other) and self.modes_agree(other)

    def values_agree(self, other: _Item) -> bool:
        if not self.value:  # the instruction did not state it ("hold short" of a runway not heard)
            return True
        if self.name == "direct":
            return _same_name(self.value, other.value)
        return self.value == other.value

    def modes_agree(self, other: _Item) -> bool:
        if self.name == "level":  # maintain goes with either; climb and descend do not
            return self.mode == other.mode or "maintain" in (self.mode, other.mode)
        if self.name == "runway":
            return self.mode == other.mode
        if other.mode is None or self.mode is None:
            return True  # a turn direction, approach type, holding point or SID left out is no contradiction
        if self.name == "clearance":
            return _same_name(self.mode, other.mode)
        return self.mode == other.mode


def _same_name(a: str, b: str) -> bool:
    """Waypoint and SID names one letter apart are one name misheard ("BITKA" for "BIRKA"): a
    readback of another name differs by more (names are chosen to sound unlike each other).
    A SID's number and letter must agree exactly."""
    if a == b:
        return True
    head_a, tail_a = _split_sid(a)
    head_b, tail_b = _split_sid(b)
    return tail_a == tail_b and len(head_a) >= 4 and _levenshtein(head_a, head_b) <= 1


def _split_sid(name: str) -> tuple[str, str]:
    """``"LAMSO1G"`` -> ``("LAMSO", "1G")``; a waypoint has no tail."""
    first_digit = next((k for k, ch in enumerate(name) if ch.isdigit()), len(name))
    return name[:first_digit], name[first_digit:]


def _item(command: Command) -> _Item | None:
    if command.type == "runway":
        if command.qualifier == "hold_short":
            return _Item("hold_short", command.value, None)
        return _Item("runway", command.value, command.qualifier)
    name = _ITEM_OF_TYPE.get(command.type)
    if name is None:  # emergency declarations are acknowledged, not read back
        return None
    mode = command.type if name == "level" else command.qualifier
    return _Item(name, command.value, mode)


# 8.33 kHz channel names and 25 kHz channels end in these two kHz digits (ICAO Annex 10 Vol. V).
_CHANNEL_ENDINGS = frozenset({"00", "05", "10", "15", "25", "30", "35", "40", "50", "55", "60", "65", "75", "80", "85",
                              "90"})


_DESTINATION_CODES = frozenset(DESTINATIONS.values())
_DESTINATION_WORDS = {code: city for city, code in DESTINATIONS.items()}
# Words that are only said with an item's value: one of them in a readback without the value
# means the value was misheard, not left out ("squawking two three two" for four digits).
_VALUE_KEYWORDS: dict[str, frozenset[str]] = {
    "level": frozenset({"level", "altitude", "feet", "thousand", "hundred"}),
    "heading": frozenset({"heading"}),
    "speed": frozenset({"speed", "knots", "mach"}),
    "frequency": frozenset({"decimal"}),
    "squawk": frozenset({"squawk", "squawking"}),
    "qnh": frozenset({"qnh"}),
    "altimeter": frozenset({"altimeter"}),
    "hold_short": frozenset({"short"}),
    "approach": frozenset({"approach", "ils", "visual", "rnp", "localizer"}),
    "taxi": frozenset({"point"}),  # "holding point"; "holding short" is another item
    "direct": frozenset({"direct"}),
    "clearance": frozenset({"via", "departure"}),
}


def _plausible(item: _Item) -> bool:
    """Whether a value could have been said on purpose: flight levels and headings in fives,
    altitudes in hundreds, valid channel names, QNH 940-1060 hPa. A recogniser that dropped or
    swapped a digit often leaves a value that could not be an instruction (FL035, heading 027);
    such a value says the words were misheard, not that the pilot read back something else."""
    value = item.value
    try:
        if item.name == "level":
            if value.startswith("FL"):
                level = int(value[2:])
                return 30 <= level <= 600 and level % 5 == 0
            feet = int(value[:-2])
            return 500 <= feet <= 60_000 and feet % 100 == 0
        if item.name == "heading":
            return 1 <= int(value) <= 360 and int(value) % 5 == 0
        if item.name == "speed":
            return 0.4 <= float(value[1:]) <= 0.99 if value.startswith("M") else 100 <= int(value) <= 450
        if item.name == "frequency":
            return value[-2:] in _CHANNEL_ENDINGS
        if item.name == "qnh":
            return 940 <= int(value) <= 1060
        if item.name == "altimeter":
            return 27.5 <= float(value) <= 31.5
        if item.name in ("runway", "hold_short", "approach", "taxi"):
            return not value or (1 <= int(value[:2]) <= 36 and value[2:] in ("", "L", "R", "C"))
        if item.name == "clearance":  # a destination the parser knows, or an ICAO location indicator
            return value in _DESTINATION_CODES or (len(value) == 4 and value.isalpha())
    except ValueError:
        return False
    return True


def _required(item: _Item) -> bool:
    # "contact tower" without a frequency, or a clearance without a runway, has no value to lose
    return item.name in REQUIRED_ITEMS and (bool(item.value) or item.name in ("hold_position",))


def _commands_of(x: Sequence[Command] | ParsedTransmission) -> Sequence[Command]:
    return x.commands if isinstance(x, ParsedTransmission) else x


# -- bare numbers in the readback ---------------------------------------------------------------


@dataclass(frozen=True)
class _Bare:
    kind: str  # "digits", "feet", "level", "runway"
    value: str
    start: int  # token index: a runway designator and its digits are one number read two ways


# Words after which a designator is a runway ("cleared to land two seven left"); after an ICAO
# letter it is a taxiway or holding point ("alfa two").
_RUNWAY_CONTEXT = frozenset({"runway", "land", "off", "wait", "short", "of", "cross", "crossing", "ils", "visual", "rnp",
                             "localizer", "approach", "vacate", "vacating", "backtrack"})


def _bare_values(text: str) -> list[_Bare]:
    """Numbers said in ``text`` outside the callsign: flight levels, altitudes, digit runs and
    runway designators (the same span may yield a digit run and a runway)."""
    tokens = normalize_atc(text).split()
    span = find_callsign(tokens)
    if span is not None:
        tokens = [*tokens[:span[0]], "|", *tokens[span[1]:]]
    found: list[_Bare] = []
    i = 0
    while i < len(tokens):
        fl, end = read_flight_level(tokens, i)
        if fl is not None and end - i == 5 and not _plausible(_Item("level", f"FL{fl:03d}", None)) \
                and _plausible(_Item("level", f"FL{fl // 10:03d}", None)) and read_frequency(tokens, end - 1)[0]:
            fl, end = fl // 10, end - 1  # "flight level eight zero one three two decimal ...": FL080, then 132.xxx
        if fl is not None:
            found.append(_Bare("level", f"FL{fl:03d}", i))
            i = end
            continue
        feet, end = read_altitude(tokens, i)
        if feet is not None:
            found.append(_Bare("feet", f"{feet}ft", i))
            i = end
            continue
        digits, end = read_digits(tokens, i)
        if digits and end < len(tokens) and tokens[end] in ("thousand", "hundred") and end - i > 1:
            # "heading zero two zero one thousand five hundred feet": the altitude's digits end the run
            end = end - 2 if end - i in (2, 5) else end - 1
            digits = digits[:end - i]
        if digits:
            while end < len(tokens) and tokens[end] == "decimal":  # "one one eight decimal seven"
                more, after = read_digits(tokens, end + 1)
                if not more:
                    break
                digits, end = digits + more, after
            runway, _ = read_runway(tokens, i)
            before = tokens[i - 1] if i else ""
            if runway is not None and len(digits) <= 2 and (before in _RUNWAY_CONTEXT or (
                    runway[-1].isalpha() and before not in LETTER_OF_WORD)):
                found.append(_Bare("runway", runway, i))
            found.append(_Bare("digits", digits, i))
            i = end
            continue
        i += 1
    return found


def _digits_of(item: _Item) -> str:
    """The digits of an item's value as a bare readback says them."""
    value = item.value
    if item.name == "frequency":
        whole, _, frac = value.partition(".")
        return whole + (frac.rstrip("0") or "0")
    if item.name == "level" and value.endswith("ft"):
        return ""  # altitudes are read as words ("five thousand"), found as "feet" values
    return "".join(ch for ch in value if ch.isdigit())


def _bare_matches(item: _Item, bare: _Bare) -> bool:
    if item.name == "level":
        return (bare.kind in ("level", "feet") and bare.value == item.value) or \
            (bare.kind == "digits" and bare.value == _digits_of(item) and item.value.startswith("FL"))
    if item.name in ("runway", "hold_short", "approach"):
        return bare.kind == "runway" and bare.value == item.value
    digits = _digits_of(item)
    return bool(digits) and bare.kind == "digits" and bare.value == digits


def _bare_display(item: _Item, bare: _Bare) -> str:
    """A bare number in the item's canonical form (``330`` for a flight level -> ``FL330``)."""
    digits = bare.value
    if bare.kind != "digits":
        return digits
    if item.name == "level":
        return f"FL{int(digits):03d}" if item.value.startswith("FL") else digits
    if item.name == "frequency" and len(digits) > 3:
        return f"{digits[:3]}.{digits[3:].ljust(3, '0')}"
    if item.name == "altimeter" and len(digits) == 4:
        return f"{digits[:2]}.{digits[2:]}"
    return digits


def _explained(bare: _Bare, items: Sequence[_Item]) -> bool:
    """A bare value that is some parsed readback item's own value (not an extra number)."""
    return any(_bare_matches(it, bare) for it in items)


def says_numbers(text: str) -> bool:
    """Whether ``text`` says a number outside its callsign (a value, maybe without its keyword)."""
    return bool(_bare_values(text))


# Bare values that can only be an item of this kind (a digit run could be anything).
_TYPED_BARE: dict[str, tuple[str, ...]] = {"level": ("level", "feet"), "runway": ("runway",), "hold_short": ("runway",),
                                          "approach": ("runway",)}


def _name_said(item: _Item, tokens: Sequence[str]) -> bool:
    """A waypoint or destination read back without "direct" / "cleared to" ("... kudos, envoy ...")."""
    if item.name == "direct":
        return any(_same_name(item.value, w.upper()) for w in tokens)
    if item.name == "clearance":
        return _DESTINATION_WORDS.get(item.value, item.value.lower()) in tokens
    return False


def _misheard(item: _Item, tokens: Sequence[str], *, partial: bool) -> bool:
    """A word only said with the item's value is there, the value is not: it was misheard."""
    if partial:  # the phrase was read ("cleared to land"): was a designator or frequency attempted?
        keywords = frozenset({"decimal"}) if item.name == "frequency" else frozenset({"runway"})
    else:
        keywords = _VALUE_KEYWORDS.get(item.name, frozenset())
    return bool(keywords & set(tokens))


# -- the check -------------------------------------------------------------------------------


def check_readback(
    instruction: Sequence[Command] | ParsedTransmission,
    readback: Sequence[Command] | ParsedTransmission,
    *,
    readback_text: str | None = None,
    instruction_index: int | None = None,
) -> ReadbackResult:
    """Compare a controller instruction with the pilot's readback.

    Args:
        instruction: The controller transmission's commands (or its parse).
        readback: The pilot transmission's commands (or its parse).
        readback_text: The readback's words; when given, values read back without their
            keyword ("three five zero") are found among its bare numbers.
        instruction_index: Stored in the result's ``instruction``.

    Returns:
        ``mismatch`` with the differences when a value changed or a required item was left out;
        else ``unchecked`` when a required item's value was garbled (keyword heard, value
        unreadable or implausible on either side); else ``ok``: every instructed value was read
        back unchanged.
    """
    expected = [it for it in (_item(c) for c in _commands_of(instruction)) if it is not None]
    heard = [it for it in (_item(c) for c in _commands_of(readback)) if it is not None]
    used = [False] * len(heard)
    pending: list[int] = []
    for k, item in enumerate(expected):  # first every exact match, wherever it is
        match = next((j for j, h in enumerate(heard) if not used[j] and h.name == item.name and item.agrees(h)), None)
        if match is None:
            pending.append(k)
        else:
            used[match] = True
    differences: dict[int, Difference] = {}
    missing: list[int] = []
    partial: dict[int, str] = {}  # said without its value ("cleared to land"): what was heard
    unjudged: set[int] = set()  # required items that could not be judged (misheard): never "ok"
    for k in pending:  # then pair what is left, item kind by item kind, in order
        item = expected[k]
        match = next((j for j, h in enumerate(heard) if not used[j] and h.name == item.name), None)
        if match is not None:
            used[match] = True
            other = heard[match]
            if not other.value and item.modes_agree(other):
                partial[k] = other.display
                missing.append(k)
            elif not (_plausible(item) and _plausible(other)):
                unjudged.add(k)  # a misheard value on either side: no flag for what was not really said
            elif not item.modes_agree(other):  # climb read back as descend, left as right
                differences[k] = Difference(item.name, item.display_with_mode(), other.display_with_mode(), CHANGED)
            else:
                differences[k] = Difference(item.name, item.display, other.display, CHANGED)
        elif _required(item):
            missing.append(k)
    if missing and readback_text:
        tokens = normalize_atc(readback_text).split()
        values = _bare_values(readback_text)
        explained = {b.start for b in values if _explained(b, heard)}
        bare = [b for b in values if b.start not in explained]
        still: list[int] = []
        for k in missing:
            item = expected[k]
            hit = next((b for b in bare if _bare_matches(item, b)), None)
            typed = next((b for b in bare if b.kind in _TYPED_BARE.get(item.name, ())), None)
            if hit is not None:
                bare = [b for b in bare if b.start != hit.start]
            elif _name_said(item, tokens):
                pass
            elif typed is not None:  # "flight level three three zero" the parser did not read as a command
                bare = [b for b in bare if b.start != typed.start]
                heard_item = _Item(item.name, typed.value, item.mode)
                if _plausible(item) and _plausible(heard_item):
                    differences[k] = Difference(item.name, item.display, heard_item.display, CHANGED)
                else:
                    unjudged.add(k)
            elif _misheard(item, tokens, partial=k in partial):
                unjudged.add(k)  # the value was said but not understood: no flag for what cannot be judged
            else:
                still.append(k)
        missing = still
        numbers = [b for b in bare if b.kind == "digits"]
        if len(missing) == 1 and len(numbers) == 1:
            item = expected[missing[0]]
            guess = _Item(item.name, _bare_display(item, numbers[0]), item.mode)
            if _digits_of(item) and len(numbers[0].value) == len(_digits_of(item)) and _plausible(guess):
                differences[missing[0]] = Difference(item.name, item.display, guess.value, CHANGED)
                missing = []
    for k in missing:
        if _required(expected[k]) and _plausible(expected[k]):
            differences[k] = Difference(expected[k].name, expected[k].display, partial.get(k), MISSING)
        elif _required(expected[k]):
            unjudged.add(k)  # the instruction itself was misheard: nothing to compare with
    ordered = tuple(differences[k] for k in sorted(differences))
    unreadable = tuple(dict.fromkeys(expected[k].name for k in sorted(unjudged - set(differences))
                                     if _required(expected[k])))
    status = MISMATCH if ordered else UNCHECKED if unreadable else OK
    return ReadbackResult(status, ordered, instruction_index, unreadable)
