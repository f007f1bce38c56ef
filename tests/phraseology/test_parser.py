"""ATC parser: hand-written real-phraseology table, Whisper-style output, generated-data invariant, garbage."""

from __future__ import annotations

import random

import pytest

from atc_whisper.phraseology import Command, ParsedTransmission, generate_utterances, normalize_atc, parse_atc
from atc_whisper.phraseology.parser import parse_tokens

C = Command

# (transcript, expected callsign, expected commands) - written by hand from ICAO Doc 4444 / FAA
# 7110.65 style phraseology; several are in the digit style Whisper writes.
TABLE: list[tuple[str, str | None, tuple[Command, ...]]] = [
    ("Speedbird 123, climb and maintain flight level 350.", "speedbird one two three", (C("climb", "FL350"),)),
    ("lufthansa four alfa bravo descend to altitude four thousand feet qnh one zero one three",
     "lufthansa four alfa bravo", (C("descend", "4000ft"), C("qnh", "1013"))),
    ("Ryanair 82T, turn right heading 090, reduce speed to 210 knots.", "ryanair eight two tango",
     (C("heading", "090", "right"), C("speed", "210"))),
    ("easy one two three four contact london control one three two decimal eight three five good day",
     "easy one two three four", (C("contact", "132.835"),)),
    ("one three two decimal eight three five good day easy one two three four", "easy one two three four",
     (C("contact", "132.835"),)),
    ("Delta 2451, runway 27L, cleared to land, wind 260 degrees 12 knots.", "delta two four five one",
     (C("runway", "27L", "land"),)),
    ("cleared for take off runway two seven right skywest three four five seven", "skywest three four five seven",
     (C("runway", "27R", "takeoff"),)),
    ("Air France 1234, line up and wait runway 09.", "air france one two three four", (C("runway", "09", "line_up"),)),
    ("golf alfa bravo charlie delta, hold short of runway two four", "golf alfa bravo charlie delta",
     (C("runway", "24", "hold_short"),)),
    ("N123AB, cross runway 31 left.", "november one two three alfa bravo", (C("runway", "31L", "cross"),)),
    ("United 345, squawk 4521.", "united three four five", (C("squawk", "4521"),)),
    ("KLM 1571, proceed direct LAMSO, climb FL240.", "klm one five seven one",
     (C("direct", "LAMSO"), C("climb", "FL240"))),
    ("Shamrock 12 Kilo, cleared ILS approach runway 28.", "shamrock one two kilo", (C("approach", "28", "ils"),)),
    ("Mayday mayday mayday, London Control, Speedbird 9, engine failure, descending FL 100.", "speedbird nine",
     (C("emergency", "mayday"), C("descend", "FL100"))),
    ("pan pan pan pan pan pan scottish control golf charlie delta medical emergency request priority landing",
     "golf charlie delta", (C("emergency", "pan_pan"),)),
    ("Southwest 1234, turn left heading 180, descend and maintain 3,000.", "southwest one two three four",
     (C("heading", "180", "left"), C("descend", "3000ft"))),
    ("American 55, contact departure 124.35.", "american five five", (C("contact", "124.350"),)),
    ("Lufthansa 400, monitor tower one one eight decimal five.", "lufthansa four zero zero",
     (C("monitor", "118.500"),)),
    ("Iberia 3162, altimeter 2992.", "iberia three one six two", (C("altimeter", "29.92"),)),
    ("Speedbird 123, cleared to Frankfurt via LAMSO 1G departure, climb initially altitude 6000 feet, squawk 2341.",
     "speedbird one two three",
     (C("clearance", "EDDF", "LAMSO1G"), C("climb", "6000ft"), C("squawk", "2341"))),
    ("Easy 45, taxi to holding point alfa one runway two seven left via bravo kilo.", "easy four five",
     (C("taxi", "27L", "A1"),)),
    ("Emirates 3, push back and start up approved.", "emirates three", (C("pushback"), C("startup"))),
    ("Ryanair 1AB, go around, I say again, go around, climb altitude 3000 feet.", "ryanair one alfa bravo",
     (C("go_around"), C("climb", "3000ft"))),
    ("uh speedbird one two three [noise] descend flight level niner zero", "speedbird one two three",
     (C("descend", "FL090"),)),
    ("Cathay 8, wind calm, runway 07R cleared for takeoff.", "cathay eight", (C("runway", "07R", "takeoff"),)),
    ("Qantas 1, maintain flight level 370.", "qantas one", (C("maintain", "FL370"),)),
    ("Turkish 1883, when ready descend flight level 120, expect ILS approach runway 16.", "turkish one eight eight three",
     (C("descend", "FL120"),)),
    ("left heading two seven zero, reducing one eight zero knots, Swiss 22", "swiss two two",
     (C("heading", "270", "left"), C("speed", "180"))),
    ("request direct tulip, wizz air two one", "wizz air two one", ()),
    ("Finnair 7, roger.", "finnair seven", ()),
    ("Air Canada 870, contact Gander Center 135.3", "air canada eight seven zero", (C("contact", "135.300"),)),
    ("climbing flight level seven zero one three four decimal seven seven five november four whiskey",
     "november four whiskey", (C("climb", "FL070"), C("contact", "134.775"))),
    ("Delta 123, taxi via Delta 1, hold short runway 9R.", "delta one two three",
     (C("taxi", "", None), C("runway", "09R", "hold_short"))),
    ("D-EABC, descend 2500 feet, QNH 998.", "delta echo alfa bravo charlie",
     (C("descend", "2500ft"), C("qnh", "998"))),
    ("Jetblue 7 heavy fly heading 360, maintain 250 knots", "jetblue seven",
     (C("heading", "360"), C("speed", "250"))),
    ("Speedbird 123, contact London Control on 118.7.", "speedbird one two three", (C("contact", "118.700"),)),
    ("Speed Bird 456, cleared for the ILS 27R.", "speedbird four five six", (C("approach", "27R", "ils"),)),
    ("Ryan Air 12, maintain Mach .78, climb flight level 380.", "ryanair one two",
     (C("speed", "M0.78"), C("climb", "FL380"))),
    ("Fedex 1407, descend and maintain 11,000, altimeter 30.12.", "fedex one four zero seven",
     (C("descend", "11000ft"), C("altimeter", "30.12"))),
    ("Lufthansa 9 Lima, hold position.", "lufthansa nine lima", (C("hold_position"),)),
]


@pytest.mark.parametrize(("text", "callsign", "commands"), TABLE, ids=[row[0][:40] for row in TABLE])
def test_parser_on_real_phraseology(text: str, callsign: str | None, commands: tuple[Command, ...]) -> None:
    parsed = parse_atc(text)
    assert parsed.callsign == callsign
    assert parsed.commands == commands


def test_table_is_large_enough() -> None:
    assert len(TABLE) >= 25


def test_contact_keeps_station_name_as_detail() -> None:
    parsed = parse_atc("easy one two three four contact london control one three two decimal eight three five")
    assert parsed.commands[0].detail == "london control"
    # the detail does not take part in equality: a readback without the station matches
    assert parsed.commands[0] == Command("contact", "132.835")


def test_frequency_spellings_compare_equal() -> None:
    forms = ["contact one one eight decimal seven", "contact 118.7", "contact one one eight decimal seven zero zero",
             "contact 118.700", "contact one one eight point seven"]
    values = {parse_atc(f).commands for f in forms}
    assert values == {(Command("contact", "118.700"),)}


def test_whisper_digits_and_reference_give_same_structure() -> None:
    whisper = "Speedbird 123, turn left heading 270, descend FL80, squawk 7700."
    reference = ("speedbird one two three turn left heading two seven zero descend flight level eight zero "
                 "squawk seven seven zero zero")
    assert parse_atc(whisper) == parse_atc(reference)
    assert parse_atc(whisper).commands == (C("heading", "270", "left"), C("descend", "FL080"), C("squawk", "7700"))


def test_parser_invariant_over_generated_utterances() -> None:
    utterances = generate_utterances(3000, seed=2024)
    # Short transmissions ("roger", "good day") and blocked ones may name no callsign ("").
    meaning = {u.uid: ParsedTransmission(u.callsign or None, u.commands) for u in utterances}
    mismatches = [u for u in utterances if parse_atc(u.reference) != meaning[u.uid]]
    assert mismatches == []
    # the spoken text (niner, tree, x-ray, Q N H, FAA "point" ...) parses to the same meaning as well
    assert all(parse_atc(u.text) == meaning[u.uid] for u in utterances[:500])


@pytest.mark.parametrize("garbage", [
    "", "   ", "!!!", "[noise] <unk>", "climb", "heading", "squawk one", "contact", "runway", "direct",
    "flight level", "cleared to", "one two three decimal", "taxi via", "mayday", "pan", "qnh nine",
    "speedbird", "november", "\u00e9\u00e8 \U0001f600 \x00", "9" * 500, "runway " * 200, "x" * 10_000,
])
def test_parser_never_raises_on_garbage(garbage: str, caplog: pytest.LogCaptureFixture) -> None:
    # The inner parser, without parse_atc's safety net: a crash on this input fails here.
    inner = parse_tokens(normalize_atc(garbage).split())
    assert isinstance(inner.commands, tuple) and all(isinstance(c, Command) for c in inner.commands)
    assert parse_atc(garbage) == inner  # the safety net was not what produced the result
    assert "parse_atc failed" not in caplog.text


def test_parser_on_random_word_salad_never_raises() -> None:
    rng = random.Random(5)
    words = ("climb descend heading turn left right runway cleared to land take off one two three nine decimal "
             "speedbird golf alfa november squawk qnh contact monitor direct via holding point taxi hold short "
             "wind knots feet thousand hundred flight level request expect mayday pan go around").split()
    for _ in range(500):
        text = " ".join(rng.choice(words) for _ in range(rng.randint(0, 25)))
        inner = parse_tokens(normalize_atc(text).split())  # raises on a parser bug
        assert parse_atc(text) == inner


def test_non_string_input_gives_empty_result() -> None:
    assert parse_atc(None) == ParsedTransmission(None, ())  # type: ignore[arg-type]


def test_as_dict_is_json_ready() -> None:
    parsed = parse_atc("Speedbird 123, turn left heading 270")
    assert parsed.as_dict() == {"callsign": "speedbird one two three",
                                "commands": [{"type": "heading", "value": "270", "qualifier": "left", "detail": None}]}


def test_commands_sort_and_hash() -> None:
    commands = [C("heading", "270", "left"), C("heading", "270"), C("climb", "FL350")]
    assert sorted(commands)[0] == C("climb", "FL350")
    assert sorted(commands)[1] == C("heading", "270")
    assert len({C("contact", "118.700", None, "tower"), C("contact", "118.700")}) == 1
