"""ATC text normalisation for scoring: one function applied to reference and hypothesis alike.

A word error rate is only meaningful when "heading 270" (how Whisper writes it) and "heading
two seven zero" (how an ATC transcript spells it) count as the same words. `normalize_atc`
maps both to the ATC reference convention; `raw_normalize` only folds case, punctuation and
whitespace, for the "raw WER" column reported beside the normalised one.

Rules of `normalize_atc`, in order:

0. Letters with diacritics are transliterated to plain ASCII letters (``dobrý`` -> ``dobry``,
   ``Zürich`` -> ``zurich``, ``Øresund`` -> ``oresund``, ``straße`` -> ``strasse``), the way the
   ATCO2 corpus recipes strip diacritics, so a word is never cut into fragments; a word whose
   letters have no Latin transliteration (Cyrillic, Greek ...) is dropped whole.
1. Corpus tags are removed: anything in square or angle brackets (``[#callsign]``,
   ``[/#callsign]``, ``[noise]``, ``[HES]``, ``<unk>``, ``<FL>``) - the words between an
   opening and a closing tag are kept.
2. Written aviation forms are spelled out:
   ``FL350`` / ``FL 350`` -> ``flight level three five zero``;
   ``118.7`` -> ``one one eight decimal seven`` (any ``digits.digits``);
   ``5,000`` -> ``5000``; ``5000ft`` / ``5000 ft`` -> ``5000 feet``; ``kts``/``kt`` -> ``knots``;
   ``hPa`` -> ``hectopascals``;
   ``27L`` / ``09R`` / ``36C`` -> ``two seven left`` / ``zero nine right`` / ``three six center``;
   registrations ``G-ABCD`` -> ``golf alfa bravo charlie delta``; an airline's ICAO code with a
   flight number (upper case, ``BAW123``, ``DLH 4AB``) -> its telephony (``speedbird one two three``);
   other letter+digit tokens (``N123AB``, ``A1``, ``1430Z``) are spelled character by
   character, letters in the ICAO alphabet; ordinals (``2nd``) keep their digits only.
3. Lower case; apostrophes dropped (``don't`` -> ``dont``); every other punctuation
   character becomes a space (so ``one-one-eight`` -> ``one one eight``); ``&`` -> ``and``.
4. Remaining numerals are spelled. ATC convention (ICAO Annex 10): digit by digit
   (``270`` -> ``two seven zero``, ``7700`` -> ``seven seven zero zero``), except a whole
   number of hundreds that is an altitude - followed by ``feet`` or shortly after climb,
   descend, maintain, altitude, passing or leaving - which is spelled in thousands and hundreds
   (``5000 feet`` -> ``five thousand feet``, ``climb 3500`` -> ``climb three thousand five
   hundred``). After squawk, code, heading, speed, level, runway, qnh or frequency a number is
   always spelled digit by digit.
5. Spelling variants -> reference spelling: niner->nine, tree->three, fife->five,
   fower->four, tousand->thousand, alpha->alfa, juliet->juliett, whisky->whiskey,
   x-ray / x ray -> xray, centre->center, takeoff->take off, pushback->push back,
   startup->start up; acronyms written letter by letter are joined (``Q N H`` -> qnh, also
   ils, rnp, klm, vor, dme, atis, rnav, tcas, atc, vfr, ifr); one-word airline telephony
   designators written in two words are joined (``speed bird`` -> speedbird, ``ryan air`` ->
   ryanair, ``sky west``, ``jet blue``, ``south west``, ``west jet``, ``fed ex``, ...).
6. ``point`` between two digit words, or after ``mach``, becomes ``decimal`` (FAA "one two
   four point three five", "mach point seven eight"); ``.78`` -> ``decimal seven eight``.
7. Hesitations (uh, um, er, erm, ah, eh, hmm, hm, mm, uhm, ehm) are removed; whitespace collapsed.

The result contains only ``a-z`` words separated by single spaces, and
``normalize_atc(normalize_atc(x)) == normalize_atc(x)``.
"""

from __future__ import annotations

import re
import unicodedata

from atc_whisper.phraseology.numbers import RUNWAY_SIDES, altitude_words, spell_digits
from atc_whisper.phraseology.vocabulary import (
    DIGIT_OF_WORD,
    HESITATIONS,
    ICAO_ALPHABET,
    TELEPHONY_OF_CODE,
    WORD_VARIANTS,
)

_TAG_RE = re.compile(r"\[[^\]]*\]|<[^>]*>")
_XRAY_RE = re.compile(r"\bx[\s-]?ray\b", re.IGNORECASE)
_FL_RE = re.compile(r"\bF\.?L\.?[\s-]*(\d{2,3})\b", re.IGNORECASE)
_GROUPED_RE = re.compile(r"(?<=\d),(?=\d{3}\b)")
_DECIMAL_RE = re.compile(r"\b(\d+)\.(\d+)\b")
_BARE_DECIMAL_RE = re.compile(r"(?<![\w.])\.(\d+)\b")
_FEET_RE = re.compile(r"\b(\d+)\s*(?:ft|feet)\b", re.IGNORECASE)
_KNOTS_RE = re.compile(r"\b(\d+)\s*(?:kts|kt|knots)\b", re.IGNORECASE)
_HPA_RE = re.compile(r"\b(\d+)\s*hpa\b", re.IGNORECASE)
_RUNWAY_RE = re.compile(r"\b(\d{1,2})([LRC])\b", re.IGNORECASE)
_REGISTRATION_RE = re.compile(r"\b([A-Z]{1,2})-([A-Z]{3,4})\b")
_AIRLINE_CODE_RE = re.compile(r"\b(" + "|".join(TELEPHONY_OF_CODE) + r")\s?(\d{1,4}[A-Z]{0,2})\b")
_ORDINAL_RE = re.compile(r"\b(\d+)(?:st|nd|rd|th)\b", re.IGNORECASE)
_ALNUM_RE = re.compile(r"\b(?=[A-Za-z]*\d)(?=\d*[A-Za-z])[A-Za-z0-9]+\b")
# Unicode-aware: a run of anything that is not a letter or digit separates words; letters
# outside a-z that survive transliteration make their word unusable (dropped whole).
_SEPARATOR_RE = re.compile(r"[\W_]+")
_ASCII_WORD_RE = re.compile(r"[a-z0-9]+")
# Latin letters that Unicode does not decompose into a base letter plus combining marks.
_TRANSLITERATION = str.maketrans({
    "ß": "ss", "ẞ": "SS", "æ": "ae", "Æ": "AE", "œ": "oe", "Œ": "OE", "ø": "o", "Ø": "O", "ł": "l", "Ł": "L",
    "đ": "d", "Đ": "D", "ð": "d", "Ð": "D", "þ": "th", "Þ": "TH", "ı": "i", "ŀ": "l", "Ŀ": "L", "ħ": "h", "Ħ": "H",
})

# The nearest of these words before a number decides how it is spelled.
_DIGIT_CONTEXT = frozenset({"squawk", "squawking", "code", "heading", "speed", "level", "runway", "qnh",
                            "frequency", "decimal", "knots", "mach", "altimeter"})
_ALTITUDE_CONTEXT = frozenset({"climb", "climbing", "descend", "descending", "maintain", "maintaining",
                               "altitude", "passing", "leaving"})
# Acronyms spoken letter by letter that a transcript may write spaced out ("Q N H", "I.L.S.").
_ACRONYMS = ("qnh", "ils", "rnp", "klm", "vor", "dme", "atis", "rnav", "tcas", "atc", "vfr", "ifr")
# One-word airline telephony designators that transcripts often split in two.
_SPLIT_TELEPHONY = ("speed bird", "sky west", "ryan air", "jet blue", "south west", "west jet", "fed ex",
                    "euro wings", "german wings", "finn air", "egypt air", "aero flot", "cargo lux", "ice air",
                    "tom jet", "bee line")
_MULTI_WORD_VARIANTS: tuple[tuple[tuple[str, ...], tuple[str, ...]], ...] = (
    (("x", "ray"), ("xray",)),
    *((tuple(acronym), (acronym,)) for acronym in _ACRONYMS),
    *((tuple(split.split()), (split.replace(" ", ""),)) for split in _SPLIT_TELEPHONY if " " in split),
)


def raw_normalize(text: str) -> str:
    """Fold case, drop punctuation (apostrophes vanish, other marks become spaces), collapse spaces.

    Used for the raw (unnormalised) WER beside the ATC-normalised one; numerals stay numerals.
    """
    text = text.lower().replace("'", "").replace("’", "")
    return " ".join(re.sub(r"[^\w]+|_", " ", text).split())


def transliterate(text: str) -> str:
    """Letters with diacritics as plain ASCII letters (``dobrý den`` -> ``dobry den``); other text unchanged.

    Only letters are decomposed (NFKD, combining marks dropped), so symbols such as ``½`` or
    ``²`` are left for the punctuation rules; letters without a Latin decomposition stay as they are.
    """
    if text.isascii():
        return text
    out = []
    for ch in text.translate(_TRANSLITERATION):
        if ch.isascii() or not ch.isalpha():
            out.append(ch)
            continue
        decomposed = unicodedata.normalize("NFKD", ch)
        base = "".join(c for c in decomposed if not unicodedata.combining(c))
        out.append(base if base.isascii() and base.isalpha() else ch)
    return "".join(out)


def _spell_alnum(token: str) -> str:
    """Spell a mixed letter/digit token character by character (letters in the ICAO alphabet)."""
    return " ".join(ICAO_ALPHABET[ch.upper()] if ch.isalpha() else spell_digits(ch)[0] for ch in token)


def _spell_written_forms(text: str) -> str:
    text = _XRAY_RE.sub(" xray ", text)
    text = _FL_RE.sub(lambda m: " flight level " + " ".join(spell_digits(m.group(1))) + " ", text)
    text = _GROUPED_RE.sub("", text)
    text = _DECIMAL_RE.sub(
        lambda m: " " + " ".join([*spell_digits(m.group(1)), "decimal", *spell_digits(m.group(2))]) + " ", text
    )
    text = _BARE_DECIMAL_RE.sub(lambda m: " " + " ".join(["decimal", *spell_digits(m.group(1))]) + " ", text)
    text = _FEET_RE.sub(r" \1 feet ", text)
    text = _KNOTS_RE.sub(r" \1 knots ", text)
    text = _HPA_RE.sub(r" \1 hectopascals ", text)
    text = _RUNWAY_RE.sub(
        lambda m: " " + " ".join([*spell_digits(m.group(1).zfill(2)), RUNWAY_SIDES[m.group(2).upper()]]) + " ", text
    )
    text = _AIRLINE_CODE_RE.sub(
        lambda m: " " + TELEPHONY_OF_CODE[m.group(1)] + " " + _spell_alnum(m.group(2)) + " ", text
    )
    text = _REGISTRATION_RE.sub(lambda m: " " + _spell_alnum(m.group(1) + m.group(2)) + " ", text)
    text = _ORDINAL_RE.sub(r"\1", text)
    return _ALNUM_RE.sub(lambda m: " " + _spell_alnum(m.group(0)) + " ", text)


def _number_words(tokens: list[str], index: int) -> list[str]:
    """Spell the numeral ``tokens[index]`` according to its context (rule 4)."""
    token = tokens[index]
    value = int(token)
    is_hundreds = value >= 100 and value % 100 == 0 and not token.startswith("0")
    if not is_hundreds:
        return spell_digits(token)
    if index + 1 < len(tokens) and tokens[index + 1] == "feet":
        return altitude_words(value)
    for back in range(index - 1, max(-1, index - 4), -1):
        word = tokens[back]
        if word in _DIGIT_CONTEXT or word.isdigit():
            break
        if word in _ALTITUDE_CONTEXT:
            return altitude_words(value)
    return spell_digits(token)


def _apply_variants(tokens: list[str]) -> list[str]:
    out: list[str] = []
    i = 0
    while i < len(tokens):
        for pattern, replacement in _MULTI_WORD_VARIANTS:
            if tuple(tokens[i:i + len(pattern)]) == pattern:
                out.extend(replacement)
                i += len(pattern)
                break
        else:
            word = tokens[i]
            if word not in HESITATIONS:
                out.extend(WORD_VARIANTS.get(word, word).split())
            i += 1
    return out


def normalize_atc(text: str) -> str:
    """Normalise a transcript to the ATC reference convention for scoring (rules in the module docstring).

    Args:
        text: A reference transcript or a model hypothesis, in any casing and numeral style.

    Returns:
        Lower-case ``a-z`` words separated by single spaces (empty for empty input).
    """
    if not text:
        return ""
    text = transliterate(text)
    text = _TAG_RE.sub(" ", text)
    text = _spell_written_forms(text)
    text = text.lower().replace("&", " and ").replace("'", "").replace("’", "")
    if not text.isascii():  # non-ASCII symbols (½, ², °) separate words like punctuation does
        text = "".join(ch if ch.isascii() or ch.isalpha() else " " for ch in text)
    # A word with letters outside a-z (no Latin transliteration) is dropped whole, never cut.
    tokens = [t for t in _SEPARATOR_RE.sub(" ", text).split() if _ASCII_WORD_RE.fullmatch(t)]
    spelled: list[str] = []
    for index, token in enumerate(tokens):
        spelled.extend(_number_words(tokens, index) if token.isdigit() else [token])
    words = _apply_variants(spelled)
    for i in range(1, len(words) - 1):
        if words[i] == "point" and (words[i - 1] in DIGIT_OF_WORD or words[i - 1] == "mach") \
                and words[i + 1] in DIGIT_OF_WORD:
            words[i] = "decimal"
    return " ".join(words)
