"""Numbers the ATC way: spelling values into words and reading them back.

ATC speaks most numbers digit by digit ("heading two seven zero", "one one eight decimal
seven"); altitudes use whole thousands and hundreds ("three thousand five hundred feet",
"one zero thousand feet", ICAO Annex 10 Vol. II 5.2.1.4). These helpers are shared by the
generator (value -> words), the normaliser (numerals -> words) and the parser (words -> value),
so that all three agree on one convention.
"""

from __future__ import annotations

from collections.abc import Sequence

from atc_whisper.phraseology.vocabulary import DIGIT_OF_WORD, DIGIT_WORDS

RUNWAY_SIDES: dict[str, str] = {"L": "left", "R": "right", "C": "center"}
SIDE_LETTERS: dict[str, str] = {word: letter for letter, word in RUNWAY_SIDES.items()}


def spell_digits(digits: str) -> list[str]:
    """Spell a string of digits one word per digit: ``"270"`` -> ``["two", "seven", "zero"]``."""
    return [DIGIT_WORDS[int(ch)] for ch in digits if ch.isdigit()]


def altitude_words(feet: int) -> list[str]:
    """Spell an altitude in thousands and hundreds (without the unit).

    ``5000`` -> ``five thousand``; ``3500`` -> ``three thousand five hundred``; ``11000`` ->
    ``one one thousand``; ``800`` -> ``eight hundred``. A value that is not a whole number of
    hundreds is spelled digit by digit.
    """
    if feet <= 0 or feet % 100:
        return spell_digits(str(feet))
    thousands, hundreds = divmod(feet, 1000)
    words: list[str] = []
    if thousands:
        words += [*spell_digits(str(thousands)), "thousand"]
    if hundreds:
        words += [*spell_digits(str(hundreds // 100)), "hundred"]
    return words


def frequency_words(frequency: str) -> list[str]:
    """Spell a frequency such as ``"118.700"`` the way it is spoken: ``one one eight decimal seven``.

    Trailing zeros of the decimal part are dropped but one digit always stays
    (``121.000`` -> ``one two one decimal zero``); 8.33 kHz channels keep all three
    (``132.835`` -> ``one three two decimal eight three five``).
    """
    whole, _, frac = frequency.partition(".")
    frac = frac.rstrip("0") or "0"
    return [*spell_digits(whole), "decimal", *spell_digits(frac)]


def runway_words(designator: str) -> list[str]:
    """Spell a runway designator: ``"27L"`` -> ``two seven left``, ``"09"`` -> ``zero nine``."""
    digits = "".join(ch for ch in designator if ch.isdigit())
    side = designator[len(digits):]
    return spell_digits(digits.zfill(2)) + ([RUNWAY_SIDES[side]] if side else [])


def read_digits(tokens: Sequence[str], start: int, max_count: int = 99) -> tuple[str, int]:
    """Read consecutive digit words from ``tokens[start:]``.

    Returns:
        ``(digits, end)``: the digit string (empty when none) and the index after the last one.
    """
    out: list[str] = []
    i = start
    while i < len(tokens) and len(out) < max_count and tokens[i] in DIGIT_OF_WORD:
        out.append(DIGIT_OF_WORD[tokens[i]])
        i += 1
    return "".join(out), i


def read_altitude(tokens: Sequence[str], start: int) -> tuple[int | None, int]:
    """Read an altitude in feet: ``five thousand [five hundred] [feet]``, ``eight hundred feet``
    or digits followed by ``feet`` (``two five zero zero feet``).

    Returns:
        ``(feet, end)``, or ``(None, start)`` when no altitude starts at ``start``.
    """
    digits, i = read_digits(tokens, start, 3)
    if not digits:
        return None, start
    feet = None
    if i < len(tokens) and tokens[i] == "thousand":
        feet = int(digits) * 1000
        i += 1
        hundreds, j = read_digits(tokens, i, 1)
        if hundreds and j < len(tokens) and tokens[j] == "hundred":
            feet += int(hundreds) * 100
            i = j + 1
    elif i < len(tokens) and tokens[i] == "hundred" and len(digits) == 1:
        feet = int(digits) * 100
        i += 1
    else:
        more, j = read_digits(tokens, i, 3)
        all_digits = digits + more
        if j < len(tokens) and tokens[j] == "feet" and len(all_digits) >= 3:
            return int(all_digits), j + 1
        return None, start
    if i < len(tokens) and tokens[i] == "feet":
        i += 1
    return feet, i


def read_flight_level(tokens: Sequence[str], start: int) -> tuple[int | None, int]:
    """Read ``flight level d d [d]`` starting at ``start``; returns ``(level, end)`` or ``(None, start)``."""
    if tuple(tokens[start:start + 2]) != ("flight", "level"):
        return None, start
    digits, i = read_digits(tokens, start + 2, 3)
    if len(digits) < 2:
        return None, start
    return int(digits), i


def read_frequency(tokens: Sequence[str], start: int) -> tuple[str | None, int]:
    """Read ``d d d decimal d [d [d]]`` as a canonical frequency (``"118.700"``) in the VHF
    air band 118.000-136.990 MHz; returns ``(frequency, end)`` or ``(None, start)``."""
    whole, i = read_digits(tokens, start, 3)
    if len(whole) != 3 or i >= len(tokens) or tokens[i] != "decimal":
        return None, start
    frac, j = read_digits(tokens, i + 1, 3)
    if not frac:
        return None, start
    value = f"{whole}.{frac.ljust(3, '0')}"
    if not 118.0 <= float(value) <= 136.99:  # 136.990 is the highest 8.33 kHz channel name
        return None, start
    return value, j


def read_runway(tokens: Sequence[str], start: int) -> tuple[str | None, int]:
    """Read a runway designator (``two seven left`` -> ``"27L"``); ``(None, start)`` when absent.

    One or two digits (``niner`` style ``"9"`` becomes ``"09"``) in 01-36, optionally left/right/center.
    """
    digits, i = read_digits(tokens, start, 2)
    if not digits or not 1 <= int(digits) <= 36:
        return None, start
    side = ""
    if i < len(tokens) and tokens[i] in SIDE_LETTERS:
        side = SIDE_LETTERS[tokens[i]]
        i += 1
    return f"{int(digits):02d}{side}", i
