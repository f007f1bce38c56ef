"""The aviation vocabulary that the generator, normaliser and parser share.

One place holds every word list the phraseology package knows (ICAO alphabet and digits,
airline telephony designators, stations, waypoints, destinations, taxiways), so that what the
generator says, what the normaliser keeps and what the parser recognises cannot drift apart.
`write_vocabulary` exports it as a text file (the prototype wrote one for inspection and for
prompting a decoder with domain words).

Reference forms are lower-case words as they appear in an ATC-convention transcript; the
"text" forms are what a text-to-speech engine is given (some need spelling out to be read
right, e.g. ``"qnh"`` is written ``"Q N H"``).
"""

from __future__ import annotations

import os
from pathlib import Path

from atc_whisper.fsutil import atomic_write_text

# ICAO spelling alphabet, in the ICAO Annex 10 spelling ("alfa", "juliett"); A-Z order.
ICAO_ALPHABET: dict[str, str] = {
    "A": "alfa", "B": "bravo", "C": "charlie", "D": "delta", "E": "echo", "F": "foxtrot",
    "G": "golf", "H": "hotel", "I": "india", "J": "juliett", "K": "kilo", "L": "lima",
    "M": "mike", "N": "november", "O": "oscar", "P": "papa", "Q": "quebec", "R": "romeo",
    "S": "sierra", "T": "tango", "U": "uniform", "V": "victor", "W": "whiskey", "X": "xray",
    "Y": "yankee", "Z": "zulu",
}
LETTER_OF_WORD: dict[str, str] = {word: letter for letter, word in ICAO_ALPHABET.items()}

DIGIT_WORDS: tuple[str, ...] = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
DIGIT_OF_WORD: dict[str, str] = {word: str(i) for i, word in enumerate(DIGIT_WORDS)}

# ICAO radiotelephony pronunciations of digits as spoken on the radio (Annex 10 Vol. II);
# they appear in the spoken text, never in a reference transcript.
SPOKEN_DIGIT_VARIANTS: dict[str, str] = {"nine": "niner", "three": "tree", "five": "fife", "four": "fower"}

# Spelling variants the scoring normaliser maps onto the reference spelling.
WORD_VARIANTS: dict[str, str] = {
    "niner": "nine", "tree": "three", "fife": "five", "fower": "four", "tousand": "thousand",
    "dayseemal": "decimal", "alpha": "alfa", "juliet": "juliett", "centre": "center",
    "whisky": "whiskey", "takeoff": "take off", "pushback": "push back", "startup": "start up",
    "xray": "xray",
}

# Letters that begin a civil registration in the generator (nationality prefixes).
NATIONALITY_LETTERS: frozenset[str] = frozenset(
    {"golf", "delta", "foxtrot", "hotel", "papa", "echo", "oscar", "november"}
)
# Taxiway letters used by the generator: nationality letters are left out so that a taxi route
# read back just before a registration callsign cannot be mistaken for part of it.
TAXIWAY_LETTERS: tuple[str, ...] = (
    "alfa", "bravo", "kilo", "lima", "mike", "tango", "whiskey", "yankee", "uniform", "juliett",
    "quebec", "romeo", "sierra", "victor",
)

# Real airline radiotelephony designators: (ICAO three-letter code, reference words, TTS text).
# Air France's filed telephony is spelled AIRFRANS; it is spoken and transcribed "air france".
AIRLINES: tuple[tuple[str, str, str], ...] = (
    ("BAW", "speedbird", "Speedbird"),
    ("DLH", "lufthansa", "Lufthansa"),
    ("RYR", "ryanair", "Ryanair"),
    ("DAL", "delta", "Delta"),
    ("SKW", "skywest", "Skywest"),
    ("AFR", "air france", "Air France"),
    ("EZY", "easy", "Easy"),
    ("UAL", "united", "United"),
    ("AAL", "american", "American"),
    ("KLM", "klm", "K L M"),
    ("SWA", "southwest", "Southwest"),
    ("ACA", "air canada", "Air Canada"),
    ("EIN", "shamrock", "Shamrock"),
    ("IBE", "iberia", "Iberia"),
    ("SAS", "scandinavian", "Scandinavian"),
    ("FIN", "finnair", "Finnair"),
    ("AUA", "austrian", "Austrian"),
    ("SWR", "swiss", "Swiss"),
    ("TAP", "air portugal", "Air Portugal"),
    ("THY", "turkish", "Turkish"),
    ("UAE", "emirates", "Emirates"),
    ("QTR", "qatari", "Qatari"),
    ("ETD", "etihad", "Etihad"),
    ("SIA", "singapore", "Singapore"),
    ("QFA", "qantas", "Qantas"),
    ("CPA", "cathay", "Cathay"),
    ("JAL", "japan air", "Japan Air"),
    ("KAL", "korean air", "Korean Air"),
    ("CCA", "air china", "Air China"),
    ("VIR", "virgin", "Virgin"),
    ("EXS", "channex", "Channex"),
    ("TOM", "tomjet", "Tomjet"),
    ("WZZ", "wizz air", "Wizz Air"),
    ("VLG", "vueling", "Vueling"),
    ("EWG", "eurowings", "Eurowings"),
    ("BEL", "beeline", "Beeline"),
    ("LOT", "pollot", "Pollot"),
    ("AEE", "aegean", "Aegean"),
    ("ELY", "el al", "El Al"),
    ("ICE", "iceair", "Iceair"),
    ("JBU", "jetblue", "Jetblue"),
    ("ASA", "alaska", "Alaska"),
    ("FFT", "frontier flight", "Frontier Flight"),
    ("NKS", "spirit wings", "Spirit Wings"),
    ("ENY", "envoy", "Envoy"),
    ("RPA", "brickyard", "Brickyard"),
    ("FDX", "fedex", "Fedex"),
    ("GTI", "giant", "Giant"),
    ("CLX", "cargolux", "Cargolux"),
    ("SHT", "shuttle", "Shuttle"),
    ("CFE", "flyer", "Flyer"),
    ("LOG", "logan", "Logan"),
    ("AMX", "aeromexico", "Aeromexico"),
    ("AVA", "avianca", "Avianca"),
    ("ETH", "ethiopian", "Ethiopian"),
    ("MSR", "egyptair", "Egyptair"),
    ("SAA", "springbok", "Springbok"),
    ("KQA", "kenya", "Kenya"),
    ("SVA", "saudia", "Saudia"),
    ("AIC", "air india", "Air India"),
    ("THA", "thai", "Thai"),
    ("MAS", "malaysian", "Malaysian"),
    ("CAL", "dynasty", "Dynasty"),
    ("EVA", "eva", "Eva"),
    ("HAL", "hawaiian", "Hawaiian"),
    ("WJA", "westjet", "Westjet"),
    ("TSC", "air transat", "Air Transat"),
    ("JZA", "jazz", "Jazz"),
    ("AFL", "aeroflot", "Aeroflot"),
    ("AAR", "asiana", "Asiana"),
    ("BTI", "air baltic", "Air Baltic"),
    ("ANZ", "new zealand", "New Zealand"),
    ("GWI", "germanwings", "Germanwings"),
    ("CTN", "croatia", "Croatia"),
    ("DLA", "dolomiti", "Dolomiti"),
    ("ITY", "itarrow", "Itarrow"),
)
TELEPHONY_OF_CODE: dict[str, str] = {code: words for code, words, _ in AIRLINES}
CODE_OF_TELEPHONY: dict[str, str] = {words: code for code, words, _ in AIRLINES}
TEXT_OF_TELEPHONY: dict[str, str] = {words: text for _, words, text in AIRLINES}
# Longest telephony first so that a parser matching greedily prefers "air canada" over "air".
TELEPHONY_WORDS: tuple[tuple[str, ...], ...] = tuple(
    sorted((tuple(words.split()) for _, words, _ in AIRLINES), key=len, reverse=True)
)

# Air traffic service units; a station is "<place words> <unit>".
UNIT_WORDS: frozenset[str] = frozenset(
    {"control", "radar", "approach", "director", "tower", "ground", "delivery", "departure",
     "center", "information", "apron", "radio", "arrival", "clearance"}
)
STATIONS_BY_PHASE: dict[str, tuple[str, ...]] = {
    "clearance": ("heathrow delivery", "gatwick delivery", "frankfurt delivery", "schiphol delivery",
                  "dublin delivery", "boston clearance"),
    "ground": ("heathrow ground", "gatwick ground", "munich ground", "schiphol ground", "dublin ground",
               "zurich apron", "frankfurt apron", "boston ground"),
    "tower": ("heathrow tower", "gatwick tower", "frankfurt tower", "schiphol tower", "dublin tower",
              "munich tower", "manchester tower", "boston tower"),
    "departure": ("london control", "langen radar", "schiphol departure", "munich radar", "dublin control",
                  "boston departure", "manchester control"),
    "approach": ("heathrow director", "london control", "schiphol approach", "frankfurt director",
                 "dublin approach", "munich director", "boston approach", "essex radar"),
    "enroute": ("london control", "scottish control", "maastricht radar", "reims control", "brest control",
                "shannon control", "langen radar", "rhein radar", "boston center", "new york center"),
}

# US (FAA) facilities, for transmissions in FAA phraseology: "<place> <unit>" as for Europe.
US_STATIONS_BY_PHASE: dict[str, tuple[str, ...]] = {
    "clearance": ("kennedy clearance", "boston clearance", "atlanta clearance", "denver clearance",
                  "seattle clearance"),
    "ground": ("kennedy ground", "boston ground", "atlanta ground", "denver ground", "burbank ground",
               "seattle ground"),
    "tower": ("kennedy tower", "boston tower", "atlanta tower", "denver tower", "burbank tower",
              "seattle tower", "newark tower"),
    "departure": ("new york departure", "boston departure", "socal departure", "potomac departure",
                  "denver departure"),
    "approach": ("new york approach", "boston approach", "socal approach", "potomac approach",
                 "norcal approach", "atlanta approach"),
    "enroute": ("new york center", "boston center", "chicago center", "los angeles center",
                "jacksonville center", "denver center"),
}
# Airlines heard on US frequencies (ICAO codes of `AIRLINES`): US carriers and a few foreign ones.
US_AIRLINE_CODES: tuple[str, ...] = (
    "UAL", "AAL", "DAL", "SWA", "SKW", "JBU", "ASA", "FFT", "NKS", "ENY", "RPA", "FDX", "GTI", "HAL",
    "ACA", "WJA", "JZA", "SHT", "AMX", "BAW", "DLH", "AFR", "KLM", "UAE", "JAL", "VIR",
)

# Waypoint-like five-letter names (pronounceable, as ICAO five-letter name-codes are meant to be).
WAYPOINTS: tuple[str, ...] = (
    "lamso", "tulip", "sugol", "remba", "kolag", "rekna", "bagir", "dibor", "nelsa", "pesar",
    "tobak", "gamlo", "vasok", "lunip", "merol", "tanus", "bekon", "solmi", "rudak", "fenix",
    "kopas", "mavin", "odnap", "pilur", "ramos", "sitek", "ugren", "velad", "wobun", "zimra",
    "adnis", "birka", "colim", "dorak", "elbax", "gidan", "hemsa", "ibvat", "kudos", "lasni",
)

# Destinations named in departure clearances: spoken city name -> ICAO location indicator.
DESTINATIONS: dict[str, str] = {
    "frankfurt": "EDDF", "amsterdam": "EHAM", "dublin": "EIDW", "madrid": "LEMD", "barcelona": "LEBL",
    "rome": "LIRF", "munich": "EDDM", "zurich": "LSZH", "vienna": "LOWW", "brussels": "EBBR",
    "copenhagen": "EKCH", "oslo": "ENGM", "stockholm": "ESSA", "helsinki": "EFHK", "lisbon": "LPPT",
    "geneva": "LSGG", "athens": "LGAV", "istanbul": "LTFM", "prague": "LKPR", "warsaw": "EPWA",
    "manchester": "EGCC", "edinburgh": "EGPH", "glasgow": "EGPF", "heathrow": "EGLL", "gatwick": "EGKK",
    "hamburg": "EDDH", "berlin": "EDDB", "stuttgart": "EDDS", "palma": "LEPA", "malaga": "LEMG",
    "faro": "LPFR", "nice": "LFMN", "lyon": "LFLL", "boston": "KBOS", "denver": "KDEN", "atlanta": "KATL",
    "seattle": "KSEA", "newark": "KEWR", "kennedy": "KJFK",
}
# Destinations of clearances in FAA phraseology: US airports.
US_DESTINATIONS: dict[str, str] = {
    "boston": "KBOS", "denver": "KDEN", "atlanta": "KATL", "seattle": "KSEA", "newark": "KEWR", "kennedy": "KJFK",
    "chicago": "KORD", "dallas": "KDFW", "miami": "KMIA", "phoenix": "KPHX", "orlando": "KMCO", "houston": "KIAH",
    "detroit": "KDTW", "charlotte": "KCLT", "minneapolis": "KMSP", "philadelphia": "KPHL",
}
# Every destination the parser knows.
AIRPORTS: dict[str, str] = {**DESTINATIONS, **US_DESTINATIONS}

APPROACH_TYPES: tuple[str, ...] = ("ils", "visual", "rnp", "localizer")
# Spoken text of words a TTS engine would misread when written as one word.
TEXT_OF_WORD: dict[str, str] = {"qnh": "Q N H", "ils": "I L S", "rnp": "R N P", "xray": "x-ray"}

# Filler words, hesitations and courtesy phrases seen in real transcripts.
HESITATIONS: frozenset[str] = frozenset({"uh", "um", "er", "ah", "hmm", "erm", "uhm", "eh", "hm", "mm", "ehm"})

EMERGENCY_NATURES: tuple[str, ...] = (
    "engine failure", "smoke in the cabin", "medical emergency on board", "bird strike",
    "hydraulic failure", "fuel shortage", "pressurisation problem", "electrical failure",
)

# Aviation terms exported with the vocabulary (words the phrase templates use).
PHRASE_WORDS: tuple[str, ...] = (
    "climb", "descend", "maintain", "flight", "level", "altitude", "feet", "thousand", "hundred",
    "heading", "turn", "left", "right", "speed", "knots", "reduce", "increase", "contact", "monitor",
    "decimal", "squawk", "qnh", "runway", "center", "cleared", "take", "off", "land", "line", "up",
    "wait", "cross", "hold", "short", "taxi", "holding", "point", "via", "direct", "proceed",
    "approach", "established", "wind", "degrees", "mayday", "pan", "roger", "wilco", "request",
    "push", "back", "start", "approved", "go", "around", "departure", "initially", "information",
    "position", "altimeter", "via", "arrival", "heavy", "affirm", "negative", "copied", "standby",
    "say", "again", "ahead", "with", "you", "good", "day", "bye", "calling", "passing",
)


def _spell(digits: str) -> list[str]:
    return [DIGIT_WORDS[int(ch)] for ch in digits]


def vocabulary_sections() -> dict[str, list[str]]:
    """Return the vocabulary as named sections of reference-form entries.

    Returns:
        Mapping from section name to its entries (each entry one line of the exported file).
    """
    return {
        "icao_alphabet": [f"{letter} {word}" for letter, word in ICAO_ALPHABET.items()],
        "digits": [f"{i} {word}" + (f" ({SPOKEN_DIGIT_VARIANTS[word]})" if word in SPOKEN_DIGIT_VARIANTS else "")
                   for i, word in enumerate(DIGIT_WORDS)],
        "airline_telephony": [f"{code} {words}" for code, words, _ in AIRLINES],
        "stations": sorted({s for table in (STATIONS_BY_PHASE, US_STATIONS_BY_PHASE)
                            for group in table.values() for s in group}),
        "waypoints": list(WAYPOINTS),
        "destinations": [f"{code} {city}" for city, code in AIRPORTS.items()],
        "registration_prefixes": [
            "G golf + 4 letters (G-ABCD: golf alfa bravo charlie delta; abbreviated golf charlie delta)",
            "D-E delta echo + 3 letters", "F-G foxtrot golf + 3 letters", "HB hotel bravo + 3 letters",
            "PH papa hotel + 3 letters", "EI echo india + 3 letters", "OE oscar echo + 3 letters",
            "N november + 1-5 digits and up to 2 letters (N123AB: november one two three alfa bravo)",
        ],
        "runway_designators": [f"{n:02d}{side} {' '.join(_spell(f'{n:02d}') + ([word] if word else []))}"
                               for n in range(1, 37)
                               for side, word in (("", ""), ("L", "left"), ("R", "right"), ("C", "center"))],
        "taxiways": [f"{word[0].upper()}1 {word} one" for word in TAXIWAY_LETTERS],
        "value_formats": [
            "heading: turn left|right heading two seven zero (001-360, three digits)",
            "flight level: flight level three five zero (FL060-FL410)",
            "altitude: three thousand five hundred feet; one zero thousand feet",
            "speed: one eight zero knots; mach decimal seven eight",
            "frequency: one one eight decimal seven; one three two decimal eight three five "
            "(118.000-136.975 MHz, 25 kHz and 8.33 kHz channels)",
            "squawk: four five two one (four octal digits; 7500/7600/7700 emergencies)",
            "qnh: qnh one zero one three (hectopascals); altimeter two nine nine two (inches)",
            "wind: wind two seven zero degrees one five knots [gusting two five knots]",
        ],
        "approach_types": list(APPROACH_TYPES),
        "phrase_words": list(PHRASE_WORDS),
        "spelling_variants": [f"{variant} -> {standard}" for variant, standard in WORD_VARIANTS.items()
                              if variant != standard],
    }


def write_vocabulary(path: str | os.PathLike[str]) -> Path:
    """Write the vocabulary to a UTF-8 text file atomically, one entry per line.

    Sections start with a ``# name`` line, so the file is easy to grep and to turn into a
    decoder prompt or a word list.

    Args:
        path: Target file; its folder is created when missing.

    Returns:
        The path written.
    """
    lines = ["# ATC Whisper aviation vocabulary (reference forms: lower-case words)"]
    for name, entries in vocabulary_sections().items():
        lines.append("")
        lines.append(f"# {name}")
        lines.extend(entries)
    return atomic_write_text(path, "\n".join(lines) + "\n")
