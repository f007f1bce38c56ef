"""Simulated recognition errors on reference transcripts.

Role classification and the readback check read recogniser output, not clean references. To
measure them at scale without decoding thousands of clips, `simulate_asr_errors` damages a
reference the way a recogniser does on radio audio: words dropped (most often), words
replaced by a word of the same kind (a digit by a digit, an ICAO letter by a letter - what a
recogniser confuses on a noisy channel), other words misspelt or swapped for a common short
word, and a few words inserted. The share of damaged words is the word error rate asked for
(about: several errors may fall on one word). Seeded, so figures are reproducible.
"""

from __future__ import annotations

import random

from atc_whisper.errors import ConfigError
from atc_whisper.phraseology.vocabulary import DIGIT_WORDS, ICAO_ALPHABET

_LETTER_WORDS: tuple[str, ...] = tuple(ICAO_ALPHABET.values())
# Digits a recogniser confuses on a narrow-band channel, most likely first (five/nine, the
# "fife"/"niner" pair; two/three; four/for; zero/two via "oh"): a confused digit is drawn
# from its own list half of the time, uniformly otherwise.
_DIGIT_CONFUSIONS: dict[str, tuple[str, ...]] = {
    "zero": ("two", "four"), "one": ("nine", "seven"), "two": ("three", "zero"), "three": ("two", "tree"),
    "four": ("for", "five"), "five": ("nine", "four"), "six": ("seven", "three"), "seven": ("one", "six"),
    "eight": ("eighty", "three"), "nine": ("five", "one"),
}
_SHORT_WORDS: tuple[str, ...] = ("the", "to", "and", "a", "of", "on", "in", "for", "at", "is")
# Weights of the edit kinds: deletion, substitution, insertion.
_EDIT_WEIGHTS = (0.45, 0.45, 0.10)


def _substitute(word: str, rng: random.Random) -> str:
    if word in _DIGIT_CONFUSIONS:
        if rng.random() < 0.5:
            return rng.choice(_DIGIT_CONFUSIONS[word])
        return rng.choice([d for d in DIGIT_WORDS if d != word])
    if word in _LETTER_WORDS:
        return rng.choice([w for w in _LETTER_WORDS if w != word])
    if len(word) > 3 and rng.random() < 0.7:
        k = rng.randrange(len(word))
        return word[:k] + rng.choice("aeioulnrst") + word[k + 1:]  # a misspelling
    return rng.choice(_SHORT_WORDS)


def simulate_asr_errors(text: str, rng: random.Random, word_error_rate: float = 0.15) -> str:
    """Return ``text`` with simulated recognition errors.

    Args:
        text: A reference-style transcript (lower-case words).
        rng: Random source (seed it for reproducible damage).
        word_error_rate: Chance that each word is damaged (deleted, substituted, or followed
            by an inserted word), 0-1.

    Returns:
        The damaged text (words separated by single spaces; possibly empty).

    Raises:
        ConfigError: When ``word_error_rate`` is outside 0-1.
    """
    if not 0.0 <= word_error_rate <= 1.0:
        raise ConfigError(f"word_error_rate must be within 0-1, got {word_error_rate}; give a rate between 0 and 1 "
                          "(0.1 is 10 %).")
    out: list[str] = []
    for word in text.split():
        if rng.random() >= word_error_rate:
            out.append(word)
            continue
        kind = rng.choices(("delete", "substitute", "insert"), weights=_EDIT_WEIGHTS)[0]
        if kind == "substitute":
            out.append(_substitute(word, rng))
        elif kind == "insert":
            out += [word, rng.choice(_SHORT_WORDS)]
    return " ".join(out)
