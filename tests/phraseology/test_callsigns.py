"""Known-callsign lists and callsign snapping."""

from __future__ import annotations

from pathlib import Path

import pytest

from atc_whisper.errors import DataError
from atc_whisper.phraseology import callsign_distance, callsign_reference, load_callsigns, snap_callsign

KNOWN = ["speedbird one two three", "lufthansa four alfa bravo", "ryanair eight two tango",
         "golf alfa bravo charlie delta", "november three four five"]


@pytest.mark.parametrize(("entry", "reference"), [
    ("BAW123", "speedbird one two three"),
    ("BAW 123", "speedbird one two three"),
    ("dlh4ab", "lufthansa four alfa bravo"),
    ("Speedbird 123", "speedbird one two three"),
    ("speedbird one two tree", "speedbird one two three"),
    ("G-ABCD", "golf alfa bravo charlie delta"),
    ("D-EABC", "delta echo alfa bravo charlie"),
    ("N345", "november three four five"),
    ("N123AB", "november one two three alfa bravo"),
    ("AFR1234", "air france one two three four"),
    ("XYZ12", "xray yankee zulu one two"),
])
def test_callsign_reference_notations(entry: str, reference: str) -> None:
    assert callsign_reference(entry) == reference


def test_load_callsigns(tmp_path: Path) -> None:
    path = tmp_path / "callsigns.txt"
    path.write_text("# on frequency\nBAW123\n\nSpeedbird 123  # duplicate\nG-ABCD\nryanair eight two tango\n",
                    encoding="utf-8")
    assert load_callsigns(path) == ["speedbird one two three", "golf alfa bravo charlie delta",
                                    "ryanair eight two tango"]


@pytest.mark.parametrize(("content", "message"), [
    (None, "does not exist"), (b"# nothing\n\n", "holds no callsign"), (b"\xff\xfe\x00bad", "not UTF-8"),
    (b"BAW123\n---\n", ":2:"),
])
def test_load_callsigns_errors(tmp_path: Path, content: bytes | None, message: str) -> None:
    path = tmp_path / "list.txt"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(DataError, match=message):
        load_callsigns(path)


def test_load_callsigns_directory(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="directory"):
        load_callsigns(tmp_path)


def test_snap_close_callsign_is_replaced() -> None:
    text, snapped = snap_callsign("speedbird one two four climb flight level three five zero", KNOWN)
    assert snapped == "speedbird one two three"
    assert text == "speedbird one two three climb flight level three five zero"


def test_snap_readback_at_the_end_and_whisper_digits() -> None:
    text, snapped = snap_callsign("Climb FL350, Ryanair 82D.", KNOWN)
    assert snapped == "ryanair eight two tango"
    assert text == "climb flight level three five zero ryanair eight two tango"


def test_snap_split_telephony_word() -> None:
    # "loft hansa" is no telephony, so the parser finds no callsign; word windows are tried
    text, snapped = snap_callsign("loft hansa four alfa bravo turn left heading two seven zero", KNOWN)
    assert snapped == "lufthansa four alfa bravo"
    assert text == "lufthansa four alfa bravo turn left heading two seven zero"


def test_snap_far_callsign_is_untouched() -> None:
    original = "Iberia 7, descend flight level one two zero"
    assert snap_callsign(original, KNOWN) == (original, None)


def test_snap_other_airline_with_same_number_is_untouched() -> None:
    original = "ryanair one two three climb flight level three five zero"
    assert snap_callsign(original, ["speedbird one two three"]) == (original, None)


def test_snap_misspelt_telephony_is_corrected() -> None:
    text, snapped = snap_callsign("speedbert one two three climb flight level three five zero",
                                  ["speedbird one two three"])
    assert (text, snapped) == ("speedbird one two three climb flight level three five zero", "speedbird one two three")


def test_snap_exact_callsign_is_unchanged() -> None:
    original = "Speedbird 123, descend flight level 120"
    assert snap_callsign(original, KNOWN) == (original, "speedbird one two three")


def test_snap_ambiguous_candidates_are_left_alone() -> None:
    known = ["speedbird one two three", "speedbird one two five"]
    original = "speedbird one two four descend flight level one two zero"
    assert snap_callsign(original, known) == (original, None)


def test_snap_registration_letter_error() -> None:
    text, snapped = snap_callsign("golf alfa bravo charlie echo cleared to land", KNOWN)
    assert snapped == "golf alfa bravo charlie delta"
    assert text == "golf alfa bravo charlie delta cleared to land"


def test_snap_without_known_or_text() -> None:
    assert snap_callsign("speedbird one two three", []) == ("speedbird one two three", None)
    assert snap_callsign("", KNOWN) == ("", None)
    assert snap_callsign("hello there", KNOWN) == ("hello there", None)


def test_distance_properties() -> None:
    assert callsign_distance("speedbird one two three", "speedbird one two three") == 0
    near = callsign_distance("speedbird one two four", "speedbird one two three")
    far = callsign_distance("iberia seven", "speedbird one two three")
    assert 0 < near <= 1.0 < far
    assert callsign_distance("speed bird one two three", "speedbird one two three") < 0.5


@pytest.mark.parametrize(("reference", "heard", "kind"), [
    ("speedbird one two three", "speedbird one two three", None),
    ("speedbird one two three", None, "none_heard"),
    ("speedbird one two three", "", "none_heard"),
    # the flight number is right, the airline is not: also when the airline became a registration
    ("eva five three seven", "november five three seven", "airline"),
    ("channex six nine", "vueling six nine", "airline"),
    # a two-word telephony is one airline: "air china" heard, the letter wrong
    ("air china two india", "air china two eight", "number"),
    ("fedex seven one zero one", "fedex seven one zero", "number"),
    ("emirates five six six four", "avianca eight five six six", "airline_and_number"),
    ("golf kilo alfa lima mike", "golf kilo delta lima mike", "registration"),
    ("november two seven one zulu", "november two seven one zero", "registration"),
])
def test_callsign_miss_kind(reference: str, heard: str | None, kind: str | None) -> None:
    from atc_whisper.phraseology.callsigns import CALLSIGN_MISS_KINDS, callsign_miss_kind

    assert callsign_miss_kind(reference, heard) == kind
    assert kind is None or kind in CALLSIGN_MISS_KINDS
