"""Seeded synthetic exchanges: a controller instruction and the pilot's readback, some of them wrong.

The readback check (`readback.check_readback`) and the conversation tracker can only be
measured against transmissions whose truth is known. `generate_exchanges` builds pairs with the
utterance generator's own phase and instruction builders (so the phraseology, values and
callsigns are the same as in the training data): the controller calls an aircraft and
instructs it; the pilot reads the same items back and ends with the callsign. At
``error_rate`` a readback is made wrong the way real ones are (Eurocontrol's level-bust and
hearback studies: a wrong value - most often a level, heading or frequency - or a required
item left out), and the error is recorded. Correct readbacks are not all word-for-word: at
``variation_rate`` an item is said the short way pilots legitimately use (the level without
the verb, the heading without the turn direction, "three five zero" without "flight level",
approvals just acknowledged), so a check that merely compares commands would cry wolf. Some
exchanges open with a pilot's call ("london control, speedbird one two three, request direct
lamso"), as on a real frequency.

Every transmission is a generator `Utterance`: ``text`` for a TTS engine, ``reference``,
``role``, ``callsign`` and ``commands`` (what the words actually say - for a wrong readback,
the wrong value). `frequency_order` interleaves exchanges the way a busy frequency does
(a controller calls the next aircraft before the previous one has read back), for the
conversation tracker and for synthetic "archive" recordings.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from atc_whisper.errors import ConfigError
from atc_whisper.phraseology import generator as gen
from atc_whisper.phraseology.commands import Command
from atc_whisper.phraseology.generator import PHASES, Utterance
from atc_whisper.phraseology.numbers import altitude_words, frequency_words, runway_words, spell_digits
from atc_whisper.phraseology.parser import parse_tokens
from atc_whisper.phraseology.readback import REQUIRED_ITEMS, _item
from atc_whisper.phraseology.vocabulary import DIGIT_OF_WORD, LETTER_OF_WORD, WAYPOINTS

ERROR_KINDS: tuple[str, ...] = ("changed", "missing")
# Phases whose instructions are read back (the emergency phase's "roger mayday" is not).
EXCHANGE_PHASES: tuple[str, ...] = tuple(p for p in PHASES if p != "emergency")


@dataclass(frozen=True)
class InjectedError:
    """The readback error planted in an exchange (the ground truth of the check).

    Attributes:
        kind: ``"changed"`` (a value read back wrong) or ``"missing"`` (a required item left out).
        item: The readback item (``level``, ``heading``, ``frequency``, ... see `readback`).
        expected: The instructed command.
        heard: The command the readback says instead (None when missing).
    """

    kind: str
    item: str
    expected: Command
    heard: Command | None = None

    def as_dict(self) -> dict[str, object]:
        """JSON-ready dict."""
        return {"kind": self.kind, "item": self.item, "expected": self.expected.as_dict(),
                "heard": self.heard.as_dict() if self.heard else None}


@dataclass(frozen=True)
class Exchange:
    """One generated exchange.

    Attributes:
        uid: ``"x{seed}-{index:06d}"``.
        instruction: The controller's transmission.
        readback: The pilot's reply to it.
        opening: A pilot's call that came first, or None.
        error: The planted readback error, or None for a correct readback.
    """

    uid: str
    instruction: Utterance
    readback: Utterance
    opening: Utterance | None = None
    error: InjectedError | None = None

    @property
    def wrong(self) -> bool:
        """Whether the readback is wrong (what the check should flag)."""
        return self.error is not None

    @property
    def callsign(self) -> str:
        """The aircraft's callsign in reference form."""
        return self.instruction.callsign

    @property
    def transmissions(self) -> tuple[Utterance, ...]:
        """In spoken order: the opening call (if any), the instruction, the readback."""
        return (*((self.opening,) if self.opening else ()), self.instruction, self.readback)

    def as_dict(self) -> dict[str, object]:
        """JSON-ready dict."""
        return {"uid": self.uid, "callsign": self.callsign, "transmissions": [t.as_dict() for t in self.transmissions],
                "error": self.error.as_dict() if self.error else None}


# -- changing one value ----------------------------------------------------------------------


def _find(words: Sequence[str], sub: Sequence[str]) -> int | None:
    for k in range(len(words) - len(sub), -1, -1):
        if list(words[k:k + len(sub)]) == list(sub):
            return k
    return None


def _value_words(command: Command) -> list[str]:
    """The words that say ``command``'s value, as the generator spells them."""
    t, v = command.type, command.value
    if t in ("climb", "descend", "maintain"):
        return spell_digits(v[2:]) if v.startswith("FL") else altitude_words(int(v[:-2]))
    if t in ("heading", "squawk", "qnh", "altimeter"):
        return spell_digits(v)
    if t == "speed":
        return spell_digits(v[3:] if v.startswith("M0.") else v)
    if t in ("contact", "monitor"):
        return frequency_words(v)
    if t in ("runway", "approach"):
        return runway_words(v)
    if t == "direct":
        return [v.lower()]
    return []


def _other(current: str, make: Callable[[], object]) -> str:
    """A value from ``make`` that differs from ``current``."""
    for _ in range(50):
        value = str(make())
        if value != current:
            return value
    # a programming error (a value maker with a single outcome), not something a user can fix
    raise RuntimeError(f"could not draw a value other than {current!r}")  # pragma: no cover


def _changed(command: Command, rng: random.Random) -> tuple[Command, list[str]] | None:
    """A plausible wrong value for ``command`` (a digit or two off, the other side): (command, words)."""
    t, v = command.type, command.value
    if t in ("climb", "descend", "maintain"):
        if v.startswith("FL"):
            fl = int(v[2:])
            new = _other(v, lambda: f"FL{max(fl + rng.choice((-40, -20, -10, 10, 20, 40)), 30):03d}")
            return Command(t, new), spell_digits(new[2:])
        feet = int(v[:-2])
        new_feet = int(_other(str(feet), lambda: max(feet + rng.choice((-2000, -1000, -500, 500, 1000, 2000)), 1000)))
        return Command(t, f"{new_feet}ft"), altitude_words(new_feet)
    if t == "heading":
        h = int(v)
        new = _other(v, lambda: f"{(h + rng.choice((-30, -20, -10, 10, 20, 30)) - 1) % 360 + 1:03d}")
        return Command(t, new, command.qualifier), spell_digits(new)
    if t == "speed":
        if v.startswith("M0."):
            new = _other(v, lambda: f"M0.{int(v[3:]) + rng.choice((-2, -1, 1, 2))}")
            return Command(t, new), spell_digits(new[3:])
        new = _other(v, lambda: str(int(v) + rng.choice((-20, -10, 10, 20))))
        return Command(t, new), spell_digits(new)
    if t in ("contact", "monitor"):
        new = _other(v, lambda: gen._frequency(rng))
        return Command(t, new, None, command.detail), frequency_words(new)
    if t == "squawk":
        k = rng.randrange(4)
        new = _other(v, lambda: v[:k] + str(rng.randint(0, 7)) + v[k + 1:])
        return Command(t, new), spell_digits(new)
    if t == "qnh":
        new = _other(v, lambda: str(int(v) + rng.choice((-10, -2, -1, 1, 2, 10))))
        return Command(t, new), spell_digits(new)
    if t == "altimeter":
        digits = v.replace(".", "")
        new = _other(digits, lambda: f"{int(digits) + rng.choice((-10, -1, 1, 10)):04d}")
        return Command(t, f"{new[:2]}.{new[2:]}"), spell_digits(new)
    if t in ("runway", "approach"):
        number, side = v[:2], v[2:]
        if side in ("L", "R") and rng.random() < 0.6:
            new = number + {"L": "R", "R": "L"}[side]
        else:
            new = _other(v, lambda: f"{(int(number) + rng.choice((-18, 1, -1, 18)) - 1) % 36 + 1:02d}{side}")
        return Command(t, new, command.qualifier), runway_words(new)
    if t == "direct":
        new = _other(v, lambda: rng.choice(WAYPOINTS).upper())
        return Command(t, new), [new.lower()]
    return None  # taxi routes and departure clearances are not changed (see _CHANGEABLE)


# Command types whose value `_changed` can alter in the words.
_CHANGEABLE = frozenset({"climb", "descend", "maintain", "heading", "speed", "contact", "monitor", "squawk", "qnh",
                         "altimeter", "runway", "approach", "direct"})


def _change_item(item: gen._Item, rng: random.Random) -> tuple[gen._Item, InjectedError] | None:
    """The item with one of its commands' values changed in the pilot's words."""
    assert item.pilot is not None
    candidates = [c for c in item.commands if c.type in _CHANGEABLE and c.value]
    rng.shuffle(candidates)
    for command in candidates:
        words = _value_words(command)
        at = _find(item.pilot, words)
        changed = _changed(command, rng) if at is not None else None
        if changed is None or at is None:
            continue
        new_command, new_words = changed
        pilot = [*item.pilot[:at], *new_words, *item.pilot[at + len(words):]]
        commands = tuple(new_command if c == command else c for c in item.commands)
        found = _item(command)
        error = InjectedError("changed", found.name if found else command.type, command, new_command)
        return gen._Item(item.ctrl, pilot, commands), error
    return None


# -- exchanges -------------------------------------------------------------------------------


def _required(item: gen._Item) -> str | None:
    """The readback item name of a required command of ``item`` (None when it has none)."""
    for command in item.commands:
        found = _item(command)
        if found is not None and found.name in REQUIRED_ITEMS and (command.value or found.name == "hold_position"):
            return found.name
    return None


def _utterance(uid: str, chunks: list[list[str]], telephony: str, callsign: list[str], rng: random.Random, role: str,
               phase: str, commands: tuple[Command, ...]) -> Utterance:
    chunks = [c for c in chunks if c]
    reference = " ".join(w for chunk in chunks for w in chunk)
    text = gen._render_text(chunks, telephony, callsign, rng)
    return Utterance(uid=uid, text=text, reference=reference, role=role, phase=phase, callsign=" ".join(callsign),
                     commands=commands)


def _exchange(seed: int, index: int, error_rate: float, kinds: Sequence[str], opening_rate: float,
              variation_rate: float, phases: Sequence[str]) -> Exchange:
    rng = random.Random(f"x{seed}:{index}")
    uid = f"x{seed}-{index:06d}"
    while True:  # an exchange needs something to read back
        phase = rng.choice(list(phases))
        items = gen._PHASE_ITEMS[phase](rng)
        if any(item.pilot is not None for item in items):
            break
    callsign, telephony = gen._callsign(rng)
    opening = None
    if rng.random() < opening_rate:
        pieces = gen._pilot_call(rng, phase, callsign)  # (words, commands) per chunk
        chunks, commands = [words for words, _ in pieces], tuple(c for _, cs in pieces for c in cs)
        opening = _utterance(f"{uid}-call", chunks, telephony, callsign, rng, "pilot", phase, commands)
    instruction = _utterance(f"{uid}-atc", [callsign, *[item.ctrl for item in items]], telephony, callsign, rng,
                             "controller", phase, tuple(c for item in items for c in item.commands))
    read_back = [item for item in items if item.pilot is not None]
    error: InjectedError | None = None
    if rng.random() < error_rate:
        for kind in rng.sample(list(kinds), len(kinds)):
            error, read_back = _inject(kind, read_back, rng)
            if error is not None:
                break
    chunks = [c for c in _vary([item for item in read_back if item.pilot], error, variation_rate, rng) if c]
    if not chunks:  # nothing (left) to read back: the pilot only acknowledges
        chunks = [[rng.choice(("roger", "wilco"))]]
    # what the words say (a value read back without its keyword is no parsed command)
    commands = parse_tokens([w for chunk in chunks for w in chunk]).commands
    readback = _utterance(f"{uid}-pilot", [*chunks, callsign], telephony, callsign, rng, "pilot", phase, commands)
    return Exchange(uid, instruction, readback, opening, error)


def _vary(items: list[gen._Item], error: InjectedError | None, rate: float, rng: random.Random) -> list[list[str]]:
    """The pilot's words of each item, some said the short ways pilots legitimately use: the
    level without the verb, the heading without the turn direction, a value without its keyword
    ("three five zero", at most one per readback, never right after another number), start-up
    and push-back approvals not read back."""
    chunks: list[list[str]] = []
    bare_used = False
    for item in items:
        words = list(item.pilot or [])
        types = [c.type for c in item.commands]
        planted = error is not None and (error.expected in item.commands or error.heard in item.commands)
        if planted or len(types) != 1 or rng.random() >= rate:
            chunks.append(words)
            continue
        kind = types[0]
        after_number = bool(chunks) and bool(chunks[-1]) and chunks[-1][-1] in _SPELLED
        value = _value_words(item.commands[0])
        bare_ok = not bare_used and not after_number and bool(value) and _find(words, value) is not None
        if kind in ("pushback", "startup"):
            words = []
        elif kind in ("climb", "descend", "maintain") and "flight" in words:
            at = words.index("flight")
            words = value if bare_ok and rng.random() < 0.4 else words[at:]
            bare_used = bare_used or words == value
        elif kind in ("climb", "descend", "maintain") and words and words[0] in _LEVEL_VERBS:
            words = [w for w in words if w not in _LEVEL_VERBS and w not in ("to", "and")]
        elif kind == "heading" and words and words[0] in ("left", "right", "turn"):
            words = words[words.index("heading"):] if "heading" in words else words
        elif kind in ("squawk", "qnh") and bare_ok:
            words, bare_used = value, True
        chunks.append(words)
    return chunks


_SPELLED = frozenset(DIGIT_OF_WORD) | frozenset(LETTER_OF_WORD)
_LEVEL_VERBS = frozenset({"climb", "climbing", "descend", "descending", "maintain", "maintaining"})


def _inject(kind: str, items: list[gen._Item], rng: random.Random) -> tuple[InjectedError | None, list[gen._Item]]:
    order = list(range(len(items)))
    rng.shuffle(order)
    for k in order:
        if kind == "missing":
            name = _required(items[k])
            if name is not None:
                command = next(c for c in items[k].commands if (_item(c) is not None and _item(c).name == name))  # type: ignore[union-attr]
                return InjectedError("missing", name, command), [*items[:k], *items[k + 1:]]
        else:
            changed = _change_item(items[k], rng)
            if changed is not None:
                new_item, error = changed
                return error, [*items[:k], new_item, *items[k + 1:]]
    return None, items


def generate_exchanges(
    n: int,
    seed: int,
    *,
    error_rate: float = 0.3,
    error_kinds: Sequence[str] = ERROR_KINDS,
    opening_rate: float = 0.2,
    variation_rate: float = 0.3,
    phases: Sequence[str] | None = None,
) -> list[Exchange]:
    """Generate ``n`` controller-instruction / pilot-readback exchanges, reproducibly.

    Args:
        n: Number of exchanges (0 or more).
        seed: Seed; exchange ``k`` of a seed is always the same, whatever ``n`` and the global random state.
        error_rate: Share of readbacks given an error, 0-1 (an exchange with nothing of the asked
            kind to get wrong stays correct, so the realised share can be a little lower).
        error_kinds: Which errors to plant: ``"changed"`` (a value), ``"missing"`` (a required item).
        opening_rate: Share of exchanges that start with a pilot's call, 0-1.
        variation_rate: Share of correctly read-back items said a legitimate short way (level
            without the verb, heading without the direction, a value without its keyword,
            approvals not read back), 0-1: what a plain comparison of commands gets wrong.
        phases: Flight phases to draw from (default: every phase but emergency).

    Returns:
        The exchanges, uid ``"x{seed}-{index:06d}"``.

    Raises:
        ConfigError: On a negative ``n``, a rate outside 0-1, an unknown error kind or phase.
    """
    if n < 0:
        raise ConfigError(f"exchange count must be >= 0, got {n}; ask for 0 or more exchanges.")
    for name, rate in (("error_rate", error_rate), ("opening_rate", opening_rate), ("variation_rate", variation_rate)):
        if not 0.0 <= rate <= 1.0:
            raise ConfigError(f"{name} must be within 0-1, got {rate}; give a share between 0 and 1.")
    unknown = [k for k in error_kinds if k not in ERROR_KINDS]
    if unknown or not error_kinds:
        raise ConfigError(f"unknown error kind(s) {unknown or list(error_kinds)}; choose one or more of "
                          f"{', '.join(ERROR_KINDS)}.")
    chosen = tuple(phases) if phases is not None else EXCHANGE_PHASES
    bad = [p for p in chosen if p not in EXCHANGE_PHASES]
    if bad or not chosen:
        raise ConfigError(f"unknown phase(s) {bad or list(chosen)}; choose one or more of {', '.join(EXCHANGE_PHASES)}.")
    return [_exchange(seed, k, error_rate, tuple(error_kinds), opening_rate, variation_rate, chosen)
            for k in range(n)]


@dataclass(frozen=True)
class Turn:
    """One transmission of an interleaved frequency: which exchange it belongs to.

    Attributes:
        exchange: Index of the exchange in the list given to `frequency_order`.
        utterance: The transmission.
    """

    exchange: int
    utterance: Utterance


def frequency_order(exchanges: Sequence[Exchange], seed: int, *, interleave: float = 0.3) -> list[Turn]:
    """Put exchanges on one frequency, in speaking order.

    Each exchange's transmissions keep their order; with probability ``interleave`` the
    controller's next instruction (to another aircraft) comes before the current readback, as
    when a controller moves on and the pilot answers a moment later (only when that next
    exchange does not open with a pilot's call).

    Args:
        exchanges: The exchanges, e.g. from `generate_exchanges`.
        seed: Seed of the interleaving.
        interleave: Chance that a readback is overtaken by the next instruction, 0-1.

    Returns:
        Every transmission once, with the index of its exchange.

    Raises:
        ConfigError: When ``interleave`` is outside 0-1.
    """
    if not 0.0 <= interleave <= 1.0:
        raise ConfigError(f"interleave must be within 0-1, got {interleave}; give a chance between 0 and 1.")
    rng = random.Random(f"order:{seed}")
    turns: list[Turn] = []
    waiting: Turn | None = None  # a readback overtaken by the next exchange
    for k, exchange in enumerate(exchanges):
        if exchange.opening is not None:
            turns.append(Turn(k, exchange.opening))
        turns.append(Turn(k, exchange.instruction))
        if waiting is not None:
            turns.append(waiting)
            waiting = None
        readback = Turn(k, exchange.readback)
        following = exchanges[k + 1] if k + 1 < len(exchanges) else None
        # only the next instruction overtakes a readback, not a pilot's call and its answer
        if (rng.random() < interleave and following is not None and following.opening is None
                and following.callsign != exchange.callsign):
            waiting = readback
        else:
            turns.append(readback)
    if waiting is not None:
        turns.append(waiting)
    return turns

