"""Known-callsign lists and snapping a recognised callsign to the nearest known one.

A controller knows which aircraft are on frequency (surveillance data, flight strips). With
that list, a recogniser that heard "speedbird one two tree" or "speed bird one to three" can be
corrected to "speedbird one two three" - the contextual biasing that ATCO2/HAAWAII found worth
20-50 points of callsign accuracy. `load_callsigns` reads such a list in any common notation;
`snap_callsign` does the post-correction.

Distance: a word-level edit distance in which an insertion or deletion costs 1, a wrong digit
or ICAO letter costs 1, and a substitution of other words (telephony designators) costs their
normalised character edit distance when that is at most 0.5 (a misspelling) and 1 + that
distance otherwise (a different airline is more than one word edit away). When the word
counts differ it is also computed on the space-free strings (character edits / 5, about one
word) so that word-splitting errors ("speed bird") cost little; the smaller is used. A callsign is snapped when the best known callsign is within ``max_distance`` and
clearly better than the second best (otherwise the choice would be a guess).
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path

from atc_whisper.errors import DataError
from atc_whisper.phraseology.normalize import normalize_atc
from atc_whisper.phraseology.numbers import spell_digits
from atc_whisper.phraseology.parser import find_callsign
from atc_whisper.phraseology.vocabulary import DIGIT_WORDS, ICAO_ALPHABET, TELEPHONY_OF_CODE, TELEPHONY_WORDS

_ICAO_FLIGHT_RE = re.compile(r"^([A-Z]{3})\s*(\d{1,4}[A-Z]{0,2})$")
_REGISTRATION_RE = re.compile(r"^([A-Z]{1,2})-([A-Z0-9]{2,5})$")
_N_NUMBER_RE = re.compile(r"^N\d{1,5}[A-Z]{0,2}$")
# Average length of a spoken callsign word; turns character edits into "words".
_CHARS_PER_WORD = 5.0
# The best candidate must beat the runner-up by this much to be trusted.
_AMBIGUITY_MARGIN = 0.25
_SPELLED = frozenset(DIGIT_WORDS) | frozenset(ICAO_ALPHABET.values())
#: How a misheard callsign went wrong (`callsign_miss_kind`), in the order reports list them.
CALLSIGN_MISS_KINDS = ("none_heard", "airline", "number", "airline_and_number", "registration")


def callsign_reference(entry: str) -> str:
    """Turn a callsign in any common notation into its spoken reference form.

    ``"BAW123"`` / ``"BAW 123"`` -> ``speedbird one two three``; ``"DLH4AB"`` -> ``lufthansa four
    alfa bravo``; ``"G-ABCD"`` -> ``golf alfa bravo charlie delta``; ``"N123AB"`` -> ``november
    one two three alfa bravo``; ``"Speedbird 123"`` and ``"speedbird one two three"`` -> the
    same. An unknown three-letter airline code is spelled in the ICAO alphabet.

    Raises:
        DataError: When the entry contains no letters or digits.
    """
    raw = entry.strip()
    upper = raw.upper()
    match = _ICAO_FLIGHT_RE.match(upper)
    if match and match.group(1) in TELEPHONY_OF_CODE:
        return " ".join(TELEPHONY_OF_CODE[match.group(1)].split() + _spell_chars(match.group(2)))
    if _REGISTRATION_RE.match(upper) or _N_NUMBER_RE.match(upper):
        return " ".join(_spell_chars(upper.replace("-", "")))
    words = normalize_atc(raw)
    if not words:
        raise DataError(f"callsign {entry!r} has no letters or digits; write e.g. BAW123, G-ABCD or "
                        "'speedbird one two three'")
    return words


def _spell_chars(chars: str) -> list[str]:
    return [ICAO_ALPHABET[ch] if ch.isalpha() else spell_digits(ch)[0] for ch in chars.upper()]


def callsign_miss_kind(reference: str, heard: str | None) -> str | None:
    """How a heard callsign differs from the reference callsign (both in reference form).

    Returns:
        None when they are equal; else one of `CALLSIGN_MISS_KINDS`: ``none_heard`` (no callsign
        parsed from the transcript), ``airline`` (the telephony designator is wrong, the flight
        number and letters are right: "eva five three seven" heard as "november five three
        seven"), ``number`` (right airline, wrong digits or letters), ``airline_and_number``, or
        ``registration`` (the reference is a registration and was not heard exactly).
    """
    if heard == reference:
        return None
    if not heard:
        return "none_heard"
    words = reference.split()
    airline = next((tele for tele in TELEPHONY_WORDS if tuple(words[:len(tele)]) == tele and len(words) > len(tele)),
                   None)
    if airline is None:
        return "registration"
    flight, heard_words = words[len(airline):], heard.split()
    if tuple(heard_words[:len(airline)]) == airline:
        return "number"
    return "airline" if heard_words[-len(flight):] == flight else "airline_and_number"


def load_callsigns(path: str | os.PathLike[str]) -> list[str]:
    """Read a callsign list (one per line; blank lines and ``#`` comments ignored).

    Args:
        path: UTF-8 text file; entries in any notation `callsign_reference` accepts.

    Returns:
        Reference-form callsigns, duplicates removed, in file order.

    Raises:
        DataError: When the file is missing, unreadable, not UTF-8 or holds no callsign.
    """
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DataError(f"callsign list {file} does not exist; pass a text file with one callsign per line") from None
    except IsADirectoryError:
        raise DataError(f"callsign list {file} is a directory; pass a text file with one callsign per line") from None
    except UnicodeDecodeError:
        raise DataError(f"callsign list {file} is not UTF-8 text; save it as UTF-8") from None
    except OSError as exc:
        raise DataError(f"cannot read callsign list {file}: {exc.strerror}") from None
    found: dict[str, None] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        entry = line.split("#", 1)[0].strip()
        if not entry:
            continue
        try:
            found[callsign_reference(entry)] = None
        except DataError as exc:
            raise DataError(f"{file}:{number}: {exc}") from None
    if not found:
        raise DataError(f"callsign list {file} holds no callsign; write one per line (e.g. BAW123)")
    return list(found)


def _levenshtein(a: Sequence[str], b: Sequence[str]) -> int:
    previous = list(range(len(b) + 1))
    for i, x in enumerate(a, start=1):
        current = [i]
        for j, y in enumerate(b, start=1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (x != y)))
        previous = current
    return previous[-1]


def _word_cost(a: str, b: str) -> float:
    if a == b:
        return 0.0
    if a in _SPELLED or b in _SPELLED:
        # a wrong digit or letter is a whole wrong word: "four" is no closer to "five" than to "three"
        return 1.0
    distance = _levenshtein(a, b) / max(len(a), len(b))
    # a slightly misspelt telephony ("speedbert") is close; a different airline is more than a
    # whole word away, so "ryanair one two three" is never snapped to "speedbird one two three"
    return distance if distance <= 0.5 else 1.0 + distance


def callsign_distance(a: str, b: str) -> float:
    """Distance between two reference-form callsigns, in approximate word edits (see module docstring)."""
    wa, wb = a.split(), b.split()
    previous = [float(j) for j in range(len(wb) + 1)]
    for i, x in enumerate(wa, start=1):
        current = [float(i)]
        for j, y in enumerate(wb, start=1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + _word_cost(x, y)))
        previous = current
    if len(wa) == len(wb):
        return previous[-1]
    # different word counts: maybe a word split or merged ("speed bird"); compare the letters
    joined = _levenshtein("".join(wa), "".join(wb)) / _CHARS_PER_WORD
    return min(previous[-1], joined)


def _best(candidate: str, known: Sequence[str]) -> tuple[str | None, float, float]:
    """(best known callsign, its distance, the runner-up distance)."""
    scored = sorted((callsign_distance(candidate, k), k) for k in dict.fromkeys(known))
    if not scored:
        return None, float("inf"), float("inf")
    runner_up = scored[1][0] if len(scored) > 1 else float("inf")
    return scored[0][1], scored[0][0], runner_up


def snap_callsign(text: str, known: Sequence[str], max_distance: float = 1.0) -> tuple[str, str | None]:
    """Replace the callsign in ``text`` by the nearest known callsign when it is close enough.

    The callsign is found with the parser (start of a controller call, end of a readback); when
    the parser finds none (e.g. "speed bird one to three"), every word window as long as a known
    callsign (plus or minus one word) at the start or the end of the text is tried.

    Args:
        text: A transcript (any style; it is normalised).
        known: Known callsigns in reference form (see `load_callsigns`).
        max_distance: Largest `callsign_distance` that is still snapped (about one word edit).

    Returns:
        ``(text, callsign)``: when a known callsign is found within ``max_distance`` (and no
        other known one is about as close), the normalised text with that callsign in place and
        the callsign; an exact match returns ``text`` unchanged and the callsign. Otherwise
        ``(text, None)`` with ``text`` untouched.
    """
    references = [k for k in known if k]
    if not text or not references:
        return text, None
    tokens = normalize_atc(text).split()
    spans: list[tuple[int, int]] = []
    span = find_callsign(tokens)
    if span is not None:
        spans.append(span)
    else:
        lengths = {len(k.split()) + d for k in references for d in (-1, 0, 1)}
        for length in sorted(x for x in lengths if 0 < x <= len(tokens)):
            spans += [(0, length), (len(tokens) - length, len(tokens))]
    best: tuple[float, float, str, tuple[int, int]] | None = None
    for start, end in spans:
        candidate = " ".join(tokens[start:end])
        match, distance, runner_up = _best(candidate, references)
        if match is not None and (best is None or distance < best[0]):
            best = (distance, runner_up, match, (start, end))
    if best is None:
        return text, None
    distance, runner_up, match, (start, end) = best
    if distance > max_distance or (runner_up - distance < _AMBIGUITY_MARGIN and distance > 0):
        return text, None
    if " ".join(tokens[start:end]) == match:
        return text, match
    return " ".join([*tokens[:start], *match.split(), *tokens[end:]]), match
