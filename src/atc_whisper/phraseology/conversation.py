"""Follow a frequency: speaker roles, exchanges by callsign, readback checks as transmissions come.

A `Conversation` is fed transmissions one at a time, in the order they were heard - live
transcription feeds each as it ends, file transcription feeds a file's transmissions in order -
and answers at once, for each, what a controller-assistance display needs:

* ``role`` / ``role_score``: who spoke (`roles.classify_role`);
* ``exchange``: an id shared by the transmissions of one callsign that belong together - a
  controller's call and the aircraft's replies, or a pilot's call and the controller's answer.
  An exchange stays open while each of its transmissions starts within ``exchange_window_s`` of
  the end of the previous one; a new instruction after a correct readback opens the next
  exchange. Transmissions without a recognised callsign join none (``None``);
* ``readback``: for a pilot's transmission that answers a controller instruction of the same
  callsign, the `readback.ReadbackResult` (``ok`` / ``mismatch`` with the differences, and the
  index of the instruction answered).

Callsigns are matched exactly, else to the nearest callsign of an open exchange within
``callsign_max_distance`` (`callsigns.callsign_distance`: a recogniser that turned one digit or
letter of the readback's callsign is still heard as the same aircraft) and clearly nearer than
any other; an abbreviated registration ("golf charlie delta" for "golf alfa bravo charlie
delta") matches its full form.

False alarms are avoided on purpose: a pilot's "say again", "standby", "unable" or a request is
not a readback; a reply whose words hold none of the instructed items and no acknowledgement
("roger", "wilco") is too garbled to judge and is not checked, nor is one whose check came out
``unchecked`` (a required value heard but unreadable: "climbing flight level three for nero"
for flight level three five zero) - ``readback`` stays None rather than ``ok``, the
instruction stays open for a clearer readback, and ``stats.unchecked`` counts it. An instruction whose readback was
never heard is not flagged on the transmission: a receiver often misses the pilot's side. It is
counted (`ConversationStats.unanswered`) and listed by `Conversation.unanswered`.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass

from atc_whisper.errors import ConfigError
from atc_whisper.phraseology.callsigns import snap_callsign
from atc_whisper.phraseology.commands import ParsedTransmission
from atc_whisper.phraseology.normalize import normalize_atc
from atc_whisper.phraseology.parser import parse_tokens
from atc_whisper.phraseology.readback import (
    REQUIRED_ITEMS,
    UNCHECKED,
    ReadbackResult,
    _item,
    check_readback,
    says_numbers,
)
from atc_whisper.phraseology.roles import CONTROLLER, PILOT, RoleGuess, classify_role
from atc_whisper.phraseology.vocabulary import LETTER_OF_WORD

# A pilot reply with these is not a readback: the instruction stays open (or, "unable", is refused).
_NOT_A_READBACK = (("say", "again"), ("standby",), ("stand", "by"), ("unable",), ("request",), ("requesting",))
_UNANSWERED_KEPT = 10_000
_ACKNOWLEDGEMENTS = frozenset({"roger", "wilco", "copied", "copy", "affirm", "affirmative", "will", "do"})


@dataclass(frozen=True)
class ConversationEntry:
    """What the conversation says about one transmission.

    Attributes:
        index: The transmission's index (as given to `Conversation.add`).
        role: ``"controller"``, ``"pilot"`` or ``"unknown"``.
        role_score: Confidence in the role, 0.5-1.
        callsign: The callsign of the exchange joined (the exchange's spelling when matched
            fuzzily), or None.
        exchange: Exchange id, or None (no callsign recognised).
        readback: The readback check (``ok`` or ``mismatch``) when this transmission answers an
            instruction and could be judged, else None.
    """

    index: int
    role: str
    role_score: float
    callsign: str | None = None
    exchange: int | None = None
    readback: ReadbackResult | None = None

    @property
    def readback_mismatch(self) -> bool:
        """Whether this transmission is a flagged readback."""
        return self.readback is not None and self.readback.mismatch

    def as_dict(self) -> dict[str, object]:
        """The fields a transmission record gains: ``role``, ``role_score``, ``exchange``, ``readback``."""
        return {"role": self.role, "role_score": round(self.role_score, 3), "exchange": self.exchange,
                "readback": self.readback.as_dict() if self.readback is not None else None}


@dataclass(frozen=True)
class Unanswered:
    """A controller instruction with required readback items whose readback was never heard.

    Attributes:
        instruction: Index of the controller transmission.
        callsign: Whom it was for.
        exchange: Its exchange id.
        items: The required items that were not read back (``level``, ``heading`` ...).
    """

    instruction: int
    callsign: str
    exchange: int
    items: tuple[str, ...]

    def as_dict(self) -> dict[str, object]:
        """JSON-ready dict."""
        return {"instruction": self.instruction, "callsign": self.callsign, "exchange": self.exchange,
                "items": list(self.items)}


@dataclass
class ConversationStats:
    """Counts over everything fed so far."""

    transmissions: int = 0
    controller: int = 0
    pilot: int = 0
    unknown_role: int = 0
    exchanges: int = 0
    readbacks: int = 0
    mismatches: int = 0
    unchecked: int = 0  # replies taken as readbacks whose values could not be read (not in ``readbacks``)
    unanswered: int = 0

    def as_dict(self) -> dict[str, int]:
        """JSON-ready dict."""
        return dict(self.__dict__)


@dataclass
class _Instruction:
    index: int
    parsed: ParsedTransmission

    def required_items(self) -> tuple[str, ...]:
        names = []
        for command in self.parsed.commands:
            item = _item(command)
            if item is not None and item.name in REQUIRED_ITEMS and (item.value or item.name == "hold_position"):
                names.append(item.name)
        return tuple(dict.fromkeys(names))


@dataclass
class _Exchange:
    id: int
    callsign: str
    last_end_s: float
    pending: _Instruction | None = None  # the latest instruction not yet answered
    instructed: bool = False  # a controller instruction has been given in this exchange
    last_status: str | None = None  # status of the last readback


def _abbreviates(short: str, full: str) -> bool:
    """ICAO abbreviated registration: first letter and the last two ("golf charlie delta")."""
    s, f = short.split(), full.split()
    return (len(s) == 3 and len(f) == 5 and all(w in LETTER_OF_WORD for w in f)
            and s == [f[0], f[-2], f[-1]])


def _has_phrase(tokens: list[str], phrases: Iterable[tuple[str, ...]]) -> bool:
    for phrase in phrases:
        n = len(phrase)
        if any(tuple(tokens[k:k + n]) == phrase for k in range(len(tokens) - n + 1)):
            return True
    return False


class Conversation:
    """Incremental tracker of roles, exchanges and readbacks on one frequency.

    Feed it from one thread, in the order the transmissions were heard (it keeps state between
    calls; one instance per frequency or per file).

    Args:
        exchange_window_s: See ``[conversation] exchange_window_s``.
        role_min_score: See ``[conversation] role_min_score``.
        callsign_max_distance: See ``[conversation] callsign_max_distance``.

    Raises:
        ConfigError: When ``exchange_window_s`` is not positive.

    Example:
        >>> conv = Conversation()
        >>> conv.add("speedbird one two three climb flight level three five zero", start_s=0.0, end_s=3.0).role
        'controller'
        >>> conv.add("climbing flight level three three zero speedbird one two three", start_s=4.0,
        ...          end_s=7.0).readback.describe()
        'level FL350 read back as FL330'
    """

    def __init__(self, *, exchange_window_s: float = 30.0, role_min_score: float = 0.6,
                 callsign_max_distance: float = 1.0) -> None:
        if exchange_window_s <= 0:
            raise ConfigError(f"exchange_window_s must be > 0, got {exchange_window_s}; set "
                              "conversation.exchange_window_s to a number of seconds (30 is typical).")
        self.exchange_window_s = exchange_window_s
        self.role_min_score = role_min_score
        self.callsign_max_distance = callsign_max_distance
        self.stats = ConversationStats()
        self._open: list[_Exchange] = []
        # the most recent ones only: a live session may run for weeks (stats.unanswered counts all)
        self._unanswered: deque[Unanswered] = deque(maxlen=_UNANSWERED_KEPT)
        self._next_index = 0

    @classmethod
    def from_settings(cls, settings: object) -> Conversation:
        """Build from `config.Settings` (its ``conversation`` section) or a `ConversationSettings`."""
        section = getattr(settings, "conversation", settings)
        return cls(exchange_window_s=float(section.exchange_window_s),  # type: ignore[attr-defined]
                   role_min_score=float(section.role_min_score),  # type: ignore[attr-defined]
                   callsign_max_distance=float(section.callsign_max_distance))  # type: ignore[attr-defined]

    # -- feeding ------------------------------------------------------------------------------
    def add(self, text: str, *, start_s: float, end_s: float | None = None, index: int | None = None,
            parsed: ParsedTransmission | None = None, role: RoleGuess | None = None) -> ConversationEntry:
        """Take the next transmission and say what it is.

        Args:
            text: The transcript (any style; normalised here).
            start_s: When it started, seconds on any clock that only moves forward (stream or
                file position).
            end_s: When it ended (default: ``start_s``).
            index: Its index in the caller's list (default: one more than the previous).
            parsed: Its parse when already computed (e.g. with a snapped callsign); parsed here otherwise.
            role: Its role when already known; classified here otherwise.

        Returns:
            The transmission's `ConversationEntry`.
        """
        index = self._next_index if index is None else int(index)
        self._next_index = index + 1
        end_s = start_s if end_s is None else end_s
        self._expire(start_s)
        tokens = normalize_atc(text if isinstance(text, str) else "").split()
        parsed = parsed if parsed is not None else parse_tokens(tokens)
        heard_callsign = parsed.callsign
        exchange = self._exact(heard_callsign)
        if exchange is None:  # a misheard callsign of an aircraft in an open exchange?
            tokens, parsed, exchange = self._snap(tokens, parsed)
        guess = role if role is not None else classify_role(" ".join(tokens), parsed, min_score=self.role_min_score)
        if guess.role == CONTROLLER and heard_callsign is not None and parsed.callsign != heard_callsign \
                and not _abbreviates(heard_callsign, str(parsed.callsign)):
            # A controller names the aircraft it calls: "eurowings two" is never taken for an
            # open "eurowings three". Only replies (and calls without a readable callsign) are snapped.
            parsed, exchange = ParsedTransmission(heard_callsign, parsed.commands), None
        self._count_role(guess.role)
        if parsed.callsign is None:
            return ConversationEntry(index, guess.role, guess.score)
        exchange = self._exact(parsed.callsign) if exchange is None else exchange
        text = " ".join(tokens)
        readback = None
        if guess.role == CONTROLLER:
            exchange = self._controller(exchange, parsed, index, end_s)
        elif guess.role == PILOT:
            exchange, readback = self._pilot(exchange, parsed, tokens, text, end_s)
        else:
            exchange, readback = self._unknown(exchange, parsed, tokens, text, end_s)
        exchange.last_end_s = max(exchange.last_end_s, end_s)
        return ConversationEntry(index, guess.role, guess.score, exchange.callsign, exchange.id, readback)

    def finish(self) -> list[Unanswered]:
        """End of the recording: close every exchange; return all unanswered instructions."""
        for exchange in self._open:
            self._close(exchange)
        self._open = []
        return self.unanswered()

    def unanswered(self) -> list[Unanswered]:
        """Instructions whose exchange closed without a readback of their required items (the
        latest 10 000; ``stats.unanswered`` counts them all)."""
        return list(self._unanswered)

    # -- internals ------------------------------------------------------------------------------
    def _count_role(self, role: str) -> None:
        s = self.stats
        s.transmissions += 1
        if role == CONTROLLER:
            s.controller += 1
        elif role == PILOT:
            s.pilot += 1
        else:
            s.unknown_role += 1

    def _expire(self, now_s: float) -> None:
        keep = []
        for exchange in self._open:
            if now_s - exchange.last_end_s > self.exchange_window_s:
                self._close(exchange)
            else:
                keep.append(exchange)
        self._open = keep

    def _close(self, exchange: _Exchange) -> None:
        pending = exchange.pending
        if pending is not None and pending.required_items():
            self._unanswered.append(Unanswered(pending.index, exchange.callsign, exchange.id, pending.required_items()))
            self.stats.unanswered += 1
        exchange.pending = None

    def _exact(self, callsign: str | None) -> _Exchange | None:
        return next((e for e in reversed(self._open) if e.callsign == callsign), None) if callsign else None

    def _snap(self, tokens: list[str], parsed: ParsedTransmission
              ) -> tuple[list[str], ParsedTransmission, _Exchange | None]:
        """Match a callsign not heard exactly to an open exchange's: an abbreviated registration,
        or (`callsigns.snap_callsign`) one within ``callsign_max_distance`` and clearly nearest;
        exchanges awaiting a readback are tried first."""
        if not self._open:
            return tokens, parsed, None
        if parsed.callsign is not None:
            for exchange in reversed(self._open):
                if _abbreviates(parsed.callsign, exchange.callsign):
                    return tokens, ParsedTransmission(exchange.callsign, parsed.commands), exchange
        if self.callsign_max_distance <= 0:
            return tokens, parsed, None
        waiting = [e.callsign for e in self._open if e.pending is not None]
        for known in (waiting, [e.callsign for e in self._open]):
            if not known:
                continue
            text, match = snap_callsign(" ".join(tokens), known, max_distance=self.callsign_max_distance)
            if match is not None:
                snapped = text.split()
                return snapped, ParsedTransmission(match, parse_tokens(snapped).commands), self._exact(match)
        return tokens, parsed, None

    def _new(self, callsign: str, end_s: float) -> _Exchange:
        exchange = _Exchange(self.stats.exchanges, callsign, end_s)
        self.stats.exchanges += 1
        self._open.append(exchange)
        return exchange

    def _controller(self, exchange: _Exchange | None, parsed: ParsedTransmission, index: int,
                    end_s: float) -> _Exchange:
        assert parsed.callsign is not None
        if parsed.commands:
            # A new instruction after a correct readback opens the next exchange; a repeat (after
            # "say again" or no answer), a correction (after a wrong readback) or the answer to a
            # pilot's call stays in this one.
            if exchange is None or (exchange.instructed and exchange.pending is None and exchange.last_status == "ok"):
                if exchange is not None:
                    self._open.remove(exchange)
                exchange = self._new(parsed.callsign, end_s)
            exchange.pending = _Instruction(index, parsed)
            exchange.instructed = True
        elif exchange is None:
            exchange = self._new(parsed.callsign, end_s)
        return exchange

    def _pilot(self, exchange: _Exchange | None, parsed: ParsedTransmission, tokens: list[str], text: str,
               end_s: float) -> tuple[_Exchange, ReadbackResult | None]:
        assert parsed.callsign is not None
        if exchange is None:
            return self._new(parsed.callsign, end_s), None
        pending = exchange.pending
        if pending is None:
            return exchange, None
        heard = [it for it in (_item(c) for c in parsed.commands) if it is not None]
        if not heard and _has_phrase(tokens, _NOT_A_READBACK):
            if "unable" in tokens:
                exchange.pending = None
                exchange.last_status = "unable"
            return exchange, None
        if not heard and not (_ACKNOWLEDGEMENTS & set(tokens)) and not says_numbers(text):
            return exchange, None  # too garbled to judge: no item, no number, no acknowledgement
        result = check_readback(pending.parsed, parsed, readback_text=text, instruction_index=pending.index)
        if result.status == UNCHECKED:  # a required value misheard: neither "ok" nor a mismatch
            self.stats.unchecked += 1
            return exchange, None
        exchange.pending = None
        exchange.last_status = result.status
        self.stats.readbacks += 1
        self.stats.mismatches += int(result.mismatch)
        return exchange, result

    def _unknown(self, exchange: _Exchange | None, parsed: ParsedTransmission, tokens: list[str], text: str,
                 end_s: float) -> tuple[_Exchange, ReadbackResult | None]:
        """Role unclear: a reply that repeats items of the open instruction is taken as its readback."""
        assert parsed.callsign is not None
        if exchange is None:
            return self._new(parsed.callsign, end_s), None
        pending = exchange.pending
        if pending is not None and parsed.commands:
            instructed = {it.name for it in (_item(c) for c in pending.parsed.commands) if it is not None}
            heard = {it.name for it in (_item(c) for c in parsed.commands) if it is not None}
            if instructed & heard:
                return self._pilot(exchange, parsed, tokens, text, end_s)
        return exchange, None


def analyse_transmissions(transmissions: Iterable[tuple[str, float, float]], **options: float) -> list[ConversationEntry]:
    """Run a `Conversation` over ``(text, start_s, end_s)`` triples in order (a file's transmissions).

    Args:
        transmissions: The transmissions, in the order heard.
        **options: `Conversation` arguments (``exchange_window_s`` ...).

    Returns:
        One entry per transmission, index 0, 1, ...
    """
    conversation = Conversation(**options)
    return [conversation.add(text, start_s=start, end_s=end) for text, start, end in transmissions]
