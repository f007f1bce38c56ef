"""Who is speaking: controller or pilot, from what the words say.

A receiver hears both sides of a frequency on one channel, and the readback check needs to know
which transmission is the instruction and which the readback. Radiotelephony phraseology gives
it away (ICAO Doc 4444 12.3, Doc 9432 2.4):

* **where the callsign sits** - a controller addresses the aircraft first ("speedbird one two
  three, climb ..."); a pilot reads back and ends with the callsign ("climbing ..., speedbird
  one two three") and starts a call with the station it calls ("london control, speedbird one
  two three, ...");
* **verb forms** - controllers give imperatives (climb, turn, contact, squawk, report, expect);
  pilots answer with participles (climbing, turning, squawking) - although a readback may
  repeat the imperative, which is why verb forms weigh less than the callsign position;
* **words only one side says** - "request", "with you", "ready", "wilco", "unable",
  "mayday mayday mayday" (pilot); "identified", "radar contact", "report", "expect",
  "when ready", "wind", "station calling" (controller).

Short procedure transmissions carry little: "roger", "standby", "say again", "go ahead", a
greeting or a farewell are said by both sides, and so are "speedbird one two three, roger" and
"good evening, speedbird one two three"; there the callsign's position is no evidence and the
guess is usually ``"unknown"``. "roger, speedbird one two three" (callsign last after the
acknowledgement) stays a pilot's form. A wake category after the callsign ("... american one
two three heavy") belongs to the callsign.

Each cue adds evidence in log-odds (positive: pilot); the sum, through a logistic function,
is the probability that a pilot spoke. The weights were set by hand from the phraseology and
checked on the generator's utterances (references and simulated recognition errors, see
``tests/phraseology/test_roles.py`` and ``bench/readback.py``). The score errs on the modest side: with
15 % simulated word errors, guesses scored 0.6-0.65 were right 74 % of the time, 0.7-0.75
85 %, 0.8 and above 99-100 %. Below ``min_score`` the guess is reported as ``"unknown"``.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

from atc_whisper.phraseology.callsigns import _levenshtein
from atc_whisper.phraseology.commands import ParsedTransmission
from atc_whisper.phraseology.normalize import normalize_atc
from atc_whisper.phraseology.parser import find_callsign
from atc_whisper.phraseology.vocabulary import (
    DIGIT_OF_WORD,
    LETTER_OF_WORD,
    PHRASE_WORDS,
    TELEPHONY_WORDS,
    UNIT_WORDS,
)

CONTROLLER, PILOT, UNKNOWN = "controller", "pilot", "unknown"
#: Default confidence below which the role is reported as unknown (see ``conversation.role_min_score``).
DEFAULT_MIN_SCORE = 0.6

# Evidence weights in log-odds (positive: pilot, negative: controller).
_CALLSIGN_LAST = 3.0  # "... speedbird one two three": a readback
_STATION_FIRST = 3.0  # "london control, speedbird one two three ...": a pilot's call
_CALLSIGN_FIRST = -2.5  # "speedbird one two three, climb ...": a controller's instruction
_PARTIAL_LAST = 1.5  # a misheard callsign at the end (airline name or number only)
_PARTIAL_FIRST = -1.2  # ... at the start
_PARTICIPLE = 1.2  # per participle, at most _MAX_VERBS of them count
_IMPERATIVE = -0.5  # per imperative: pilots repeat them in readbacks, so they weigh little
_MAX_VERBS = 3

# Imperatives of instructions and their readback participles.
_IMPERATIVES = frozenset({
    "climb", "descend", "turn", "fly", "contact", "monitor", "squawk", "reduce", "increase", "proceed",
    "cross", "vacate", "continue", "taxi", "stop", "give", "follow", "expedite", "resume", "recycle",
})
_PARTICIPLES = frozenset({
    "climbing", "descending", "maintaining", "turning", "reducing", "increasing", "contacting", "monitoring",
    "squawking", "proceeding", "crossing", "lining", "vacating", "continuing", "taxiing", "passing", "leaving",
    "approaching", "going", "expediting", "flying", "returning", "diverting", "requesting",
})
# Said after the callsign at the end of a readback.
_COURTESY = frozenset({"good", "day", "bye", "goodbye", "thanks", "thank", "you", "cheers", "ciao", "servus",
                       "morning", "evening", "afternoon", "night"})
# Wake turbulence category said with the callsign (FAA: "american one two three heavy").
_CALLSIGN_SUFFIX = frozenset({"heavy", "super"})
# Greetings (and courtesy) that either side says before a callsign ("good evening, speedbird one two three").
_GREETING = _COURTESY | {"hello"}
# Procedure words that either side says after a callsign ("speedbird one two three, roger / standby / say again").
_PROCEDURE = _GREETING | _CALLSIGN_SUFFIX | {"roger", "wilco", "copied", "copy", "affirm", "affirmative", "negative",
                                             "standby", "say", "again", "go", "ahead", "please"}
# Words after which a digit run is a value, not a callsign's number.
_VALUE_WORDS = frozenset({
    "level", "heading", "squawk", "squawking", "decimal", "runway", "qnh", "altimeter", "speed", "mach", "to",
    "altitude", "point", "information", "wind", "degrees", "gusting", "knots", "feet", "thousand", "hundred",
    "frequency", "on", "via", "code", "route", "and", "maintain", "climb", "descend", "holding", "left", "right",
    "center", "reduce", "increase", "contact", "monitor",
})
# Single words (and word pairs) that one side says, with their weight.
_WORD_CUES: dict[str, float] = {
    "request": 3.0, "wilco": 3.0, "unable": 3.0, "ready": 1.0, "established": 1.2, "received": 1.5,
    "looking": 1.0, "we": 0.8, "our": 0.8, "my": 0.8, "us": 0.5, "affirm": 0.3,
    "identified": -2.0, "report": -1.5, "expect": -1.5, "wind": -1.5, "caution": -1.2, "traffic": -0.8,
    "your": -1.0, "you": -0.5, "correction": -0.3, "break": -0.8, "approved": -0.3, "number": -0.5,
    "advise": -1.0, "negative": -0.2, "confirm": -0.3,
}
_PHRASE_CUES: dict[tuple[str, ...], float] = {
    ("with", "you"): 4.0, ("in", "sight"): 1.5, ("say", "again"): 0.3, ("good", "day"): 0.0,
    ("when", "ready"): -2.5,  # cancels "ready"
    ("report", "established"): 0.0, ("radar", "contact"): -2.0, ("go", "ahead"): -0.3, ("station", "calling"): -3.0,
    ("see", "you"): 0.0, ("your", "request"): -2.0,
    ("roger", "mayday"): -4.0, ("roger", "pan"): -4.0, ("mayday", "mayday"): 2.5, ("pan", "pan"): 2.5,
    ("thank", "you"): 0.0, ("hold", "short"): 0.0, ("holding", "point"): 0.0,  # "taxi to holding point": not a participle
    ("holding", "short"): 1.2, ("line", "up"): -0.3, ("say", "heading"): -1.5, ("say", "altitude"): -1.5,
}

# Phraseology words: a word outside this set where a callsign's airline name should be is
# probably that name, misheard.
_KNOWN_WORDS = frozenset(PHRASE_WORDS) | _VALUE_WORDS | _IMPERATIVES | _PARTICIPLES | frozenset(_WORD_CUES) | {
    w for pair in _PHRASE_CUES for w in pair} | UNIT_WORDS | _COURTESY


@dataclass(frozen=True)
class RoleGuess:
    """The speaker role of one transmission.

    Attributes:
        role: ``"controller"``, ``"pilot"`` or ``"unknown"`` (confidence below the threshold).
        score: Confidence in the more likely of the two roles, 0.5-1 (0.5: no cue at all).
        pilot_probability: Probability that a pilot spoke, 0-1.
        cues: The cues that decided, for display and debugging (e.g. ``"callsign last"``).
    """

    role: str
    score: float
    pilot_probability: float = 0.5
    cues: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, object]:
        """``{"role": ..., "role_score": ...}`` as transmission records carry them."""
        return {"role": self.role, "role_score": round(self.score, 3)}


def _callsign_span(tokens: Sequence[str], parsed: ParsedTransmission | None) -> tuple[int, int] | None:
    """Where the callsign sits: the parsed callsign's words when given (it may have been snapped
    to a known callsign, then the words may differ), else the parser's own search."""
    if parsed is not None:
        if parsed.callsign is None:
            return None
        words = parsed.callsign.split()
        for start in range(len(tokens) - len(words), -1, -1):
            if list(tokens[start:start + len(words)]) == words:
                return start, start + len(words)
    return find_callsign(tokens)


def _strip_tail(tokens: Sequence[str], end: int) -> int:
    """Index after the last word that matters: courtesy words ("good day", "bye") and one
    stray short word after ``end`` are ignored."""
    n = len(tokens)
    k = n
    while k > end and tokens[k - 1] in _COURTESY:
        k -= 1
    while k > end and tokens[end] in _CALLSIGN_SUFFIX and k == end + 1:  # "... heavy" is the callsign's
        k -= 1
    if k == end + 1 and len(tokens[end]) <= 3:  # one inserted "the", "is", "and"
        k = end
    return k


def _is_spelled(word: str) -> bool:
    return word in DIGIT_OF_WORD or word in LETTER_OF_WORD


def _unknown_word(word: str) -> bool:
    """Neither a spelled digit/letter nor a phraseology word, nor one letter away from one
    ("leveo" is a misheard "level", not an airline)."""
    if _is_spelled(word) or word in _KNOWN_WORDS:
        return False
    if len(word) < 4:
        return True
    return not any(abs(len(word) - len(k)) <= 1 and _levenshtein(word, k) <= 1 for k in _KNOWN_WORDS)


def _partial_callsign_evidence(tokens: Sequence[str], cues: list[str]) -> float:
    """Cues of a callsign the parser could not read (a garbled airline name or number)."""
    n = len(tokens)
    for tele in TELEPHONY_WORDS:  # an airline name without a readable number
        size = len(tele)
        for start in range(n - size + 1):
            if tuple(tokens[start:start + size]) != tele:
                continue
            end = start + size
            while end < n and _is_spelled(tokens[end]):
                end += 1
            if start == 0 and end < n:
                cues.append("airline first")
                return _PARTIAL_FIRST
            if start > 0 and _strip_tail(tokens, end) == end:
                cues.append("airline last")
                return _PARTIAL_LAST
    # a run of digits/letters closing the transmission after a word that introduces no value:
    # the number of a callsign whose airline name was misheard ("... fedei two zero three")
    end = _strip_tail(tokens, n)
    start = end
    while start > 0 and _is_spelled(tokens[start - 1]):
        start -= 1
    if end - start >= 2 and start > 1 and _unknown_word(tokens[start - 1]):
        cues.append("number last")
        return _PARTIAL_LAST
    start = 1
    while start < n and _is_spelled(tokens[start]):
        start += 1
    if start >= 3 and start < n and _unknown_word(tokens[0]):
        cues.append("number first")
        return _PARTIAL_FIRST
    return 0.0


def _callsign_evidence(tokens: Sequence[str], span: tuple[int, int] | None, cues: list[str]) -> float:
    if span is None:
        return _partial_callsign_evidence(tokens, cues)
    start, end = span
    if start == 0 and _strip_tail(tokens, end) == end:
        return 0.0  # the callsign alone: a controller calling or a pilot answering
    if start == 0 and all(w in _PROCEDURE for w in tokens[end:]):
        return 0.0  # "speedbird one two three, roger / standby / say again": either side
    before = tokens[:start]
    if any(w in UNIT_WORDS for w in before[-4:]) or before[:1] in (["mayday"], ["pan"]):
        cues.append("station first")
        return _STATION_FIRST
    if _strip_tail(tokens, end) == end:
        if all(w in _GREETING for w in before):
            return 0.0  # "good evening, speedbird one two three": either side
        cues.append("callsign last")
        return _CALLSIGN_LAST
    if start == 0:
        cues.append("callsign first")
        return _CALLSIGN_FIRST
    return 0.0


def _word_evidence(tokens: Sequence[str], cues: list[str]) -> float:
    evidence = 0.0
    participles = imperatives = 0
    pairs = list(itertools.pairwise(tokens))
    for pair in pairs:
        weight = _PHRASE_CUES.get(pair)
        if weight:
            evidence += weight
            cues.append(" ".join(pair))
    paired = {w for pair in pairs if pair in _PHRASE_CUES for w in pair}
    for w in tokens:
        if w in _PARTICIPLES and w not in paired:
            participles += 1
        elif w in _IMPERATIVES and w not in paired:
            imperatives += 1
        elif w in _WORD_CUES and w not in paired and _WORD_CUES[w]:
            evidence += _WORD_CUES[w]
            cues.append(w)
    if participles:
        cues.append(f"{participles} participle(s)")
    if imperatives:
        cues.append(f"{imperatives} imperative(s)")
    return evidence + _PARTICIPLE * min(participles, _MAX_VERBS) + _IMPERATIVE * min(imperatives, _MAX_VERBS)


def classify_role(text: str, parsed: ParsedTransmission | None = None, *,
                  min_score: float = DEFAULT_MIN_SCORE) -> RoleGuess:
    """Guess whether a controller or a pilot spoke ``text``.

    Args:
        text: The transmission in any style (reference or raw recogniser output); normalised here.
        parsed: The transmission's parse, when already computed: its callsign is looked up in
            the words to know where it sits (without it the parser's callsign search runs here).
        min_score: Confidence (0.5-1) below which the role is ``"unknown"``.

    Returns:
        A :class:`RoleGuess`; ``"unknown"`` with score 0.5 for empty text.
    """
    tokens = normalize_atc(text if isinstance(text, str) else "").split()
    if not tokens:
        return RoleGuess(UNKNOWN, 0.5)
    cues: list[str] = []
    evidence = _callsign_evidence(tokens, _callsign_span(tokens, parsed), cues) + _word_evidence(tokens, cues)
    p_pilot = 1.0 / (1.0 + math.exp(-evidence))
    score = max(p_pilot, 1.0 - p_pilot)
    role = UNKNOWN if score < min_score else (PILOT if p_pilot > 0.5 else CONTROLLER)
    return RoleGuess(role, score, p_pilot, tuple(cues))
