"""Readback check: hand-written tricky cases, then every generated exchange."""

from __future__ import annotations

import pytest

from atc_whisper.phraseology import parse_atc
from atc_whisper.phraseology.exchanges import generate_exchanges
from atc_whisper.phraseology.readback import REQUIRED_ITEMS, check_readback

CS = "speedbird one two three"


def check(instruction: str, readback: str):
    return check_readback(parse_atc(f"{CS} {instruction}"), parse_atc(f"{readback} {CS}"),
                          readback_text=f"{readback} {CS}", instruction_index=4)


@pytest.mark.parametrize(("instruction", "readback"), [
    ("climb flight level three five zero", "climbing flight level three five zero"),
    ("descend and maintain flight level one two zero", "descending flight level one two zero"),
    ("descend flight level one two zero", "maintaining flight level one two zero"),  # maintain goes with either
    ("climb flight level three five zero", "flight level three five zero"),  # no verb
    ("climb flight level three five zero", "three five zero"),  # unit-less number
    ("descend to five thousand feet", "descending five thousand"),  # no unit
    ("turn left heading two seven zero", "heading two seven zero"),  # direction left out: not a contradiction
    ("turn left heading two seven zero", "two seven zero"),
    ("contact london control one one eight decimal seven", "one one eight decimal seven"),  # frequency only
    ("contact london control one one eight decimal seven", "contact london one one eight seven"),  # no "decimal"
    ("monitor tower one two one decimal five", "monitoring one two one decimal five"),
    ("squawk four five two one", "four five two one"),
    ("qnh one zero one three", "one zero one three"),
    ("runway two seven left cleared to land", "cleared to land two seven left"),  # designator without "runway"
    ("report established", "wilco"),  # not a required item
    ("push back and start up approved", "roger"),
    ("proceed direct lamso", "direct to lamso"),
    ("cleared ils approach runway two seven right", "cleared ils two seven right"),
    ("climb flight level three five zero squawk four five two one", "squawk four five two one climbing flight level three "
                                                                    "five zero"),  # other order
    ("reduce speed to one eight zero knots", "reducing one eight zero"),
    ("hold short runway two seven left", "holding short two seven left"),
    ("turn right heading zero two zero descend one thousand five hundred feet",
     "heading zero two zero one thousand five hundred feet"),  # two bare values in a row
    ("taxi to holding point alfa two runway zero two left", "taxi to holding point alfa two runway zero two left"),
    ("climb flight level eight zero contact reims control one three two decimal zero seven five",
     "flight level eight zero one three two decimal zero seven five"),  # FL080, not FL801 then 32.075
])
def test_equivalent_readbacks_are_ok(instruction, readback):
    result = check(instruction, readback)
    assert result.status == "ok", result.describe()
    assert result.differences == () and result.instruction == 4


@pytest.mark.parametrize(("instruction", "readback", "item", "expected", "heard", "kind"), [
    ("climb flight level three five zero", "climbing flight level three three zero", "level", "FL350", "FL330", "changed"),
    ("climb flight level three five zero", "three three zero", "level", "FL350", "FL330", "changed"),  # unit-less
    ("descend flight level one two zero", "climbing flight level one two zero", "level", "descend FL120", "climb FL120",
     "changed"),
    ("descend to five thousand feet", "descending four thousand feet", "level", "5000ft", "4000ft", "changed"),
    ("descend to flight level five zero", "descending five thousand feet", "level", "FL050", "5000ft", "changed"),
    ("turn left heading two seven zero", "left heading two five zero", "heading", "270", "250", "changed"),
    ("turn left heading two seven zero", "right heading two seven zero", "heading", "left 270", "right 270", "changed"),
    ("contact london control one one eight decimal seven", "one one eight decimal niner", "frequency", "118.700",
     "118.900", "changed"),
    ("squawk four five two one", "squawk four five two two", "squawk", "4521", "4522", "changed"),
    ("runway two seven left cleared to land", "cleared to land runway two seven right", "runway", "land 27L", "land 27R",
     "changed"),
    ("line up and wait runway two seven", "cleared for take off runway two seven", "runway", "line up 27", "take off 27",
     "changed"),
    ("climb flight level three five zero", "roger", "level", "FL350", None, "missing"),
    ("hold short runway two seven left", "wilco", "hold_short", "27L", None, "missing"),
    ("runway two seven left cleared to land", "cleared to land", "runway", "land 27L", "land", "missing"),
    ("contact london control one one eight decimal seven", "wilco good day", "frequency", "118.700", None, "missing"),
    ("proceed direct lamso", "direct tobak", "direct", "LAMSO", "TOBAK", "changed"),
    # as a recogniser writes it: "climb in flight level 3 3 0" is no command to the parser
    ("climb flight level three five zero", "Climb in flight level 3 3 0", "level", "FL350", "FL330", "changed"),
    ("taxi to holding point alfa two runway zero two left hold short of runway zero eight left",
     "taxi to holding point alfa two runway zero two left", "hold_short", "08L", None, "missing"),  # not "alfa two"
])
def test_changed_or_missing_items_are_flagged(instruction, readback, item, expected, heard, kind):
    result = check(instruction, readback)
    assert result.status == "mismatch"
    assert [d.as_dict() for d in result.differences] == [
        {"item": item, "expected": expected, "heard": heard, "kind": kind}]


def test_several_differences_in_instruction_order():
    result = check("descend to five thousand feet qnh one zero one three", "descending six thousand feet")
    assert [(d.item, d.kind) for d in result.differences] == [("level", "changed"), ("qnh", "missing")]
    assert result.describe() == "level 5000ft read back as 6000ft; qnh 1013 missing"


def test_result_dict_has_the_contract_fields():
    result = check("climb flight level three five zero", "climbing flight level three three zero")
    assert result.as_dict() == {"status": "mismatch", "instruction": 4, "differences": [
        {"item": "level", "expected": "FL350", "heard": "FL330", "kind": "changed"}]}
    assert check("climb flight level three five zero", "climbing flight level three five zero").as_dict() == {
        "status": "ok", "instruction": 4, "differences": []}


@pytest.mark.parametrize(("instruction", "readback", "item"), [
    # a value that could not have been said (a dropped digit) is a recognition error, not a wrong readback
    ("turn left heading two seven zero", "left heading two seven", "heading"),
    ("squawk four five two one", "squawking four five one", "squawk"),  # the keyword is there, the value garbled
    ("contact tower one one eight decimal seven", "one one eight decimal", "frequency"),
])
def test_misheard_values_are_neither_flagged_nor_ok(instruction, readback, item):
    result = check(instruction, readback)
    assert result.status == "unchecked" and not result.mismatch and result.differences == ()
    assert result.unreadable == (item,) and result.describe() == f"not checked: {item} unreadable"


def test_an_instruction_without_a_readable_value_has_nothing_to_compare():
    # the instruction's runway was not understood ("zero right"): the readback repeats all it readably said
    result = check("cross runway zero right", "crossing runway zero five right")
    assert result.status == "ok" and result.unreadable == ()


def test_garbled_level_from_a_real_transcript_is_not_ok():
    # tiny.en wrote "climbing flight level three five zero, speedbird one two three" as this
    instruction, readback = "Speedbird 123, climb flight level 350", "Climbing flight level 3 for Nero, speedbird 1 2 3"
    result = check_readback(parse_atc(instruction), parse_atc(readback), readback_text=readback)
    assert result.status == "unchecked" and result.unreadable == ("level",) and result.differences == ()


def test_a_real_difference_beside_an_unreadable_item_is_still_a_mismatch():
    result = check("climb flight level three five zero squawk four five two one",
                   "climbing flight level three three zero squawking four five one")
    assert result.status == "mismatch" and result.unreadable == ("squawk",)
    assert [(d.item, d.heard) for d in result.differences] == [("level", "FL330")]


def test_extra_items_in_the_readback_are_not_flagged():
    result = check("climb flight level three five zero", "climbing flight level three five zero request direct lamso "
                   "heading two seven zero")
    assert result.status == "ok"


def test_required_items_follow_icao():
    assert {"level", "heading", "speed", "frequency", "squawk", "runway", "hold_short", "qnh"} <= REQUIRED_ITEMS
    assert not {"pushback", "startup", "go_around"} & REQUIRED_ITEMS


def test_every_planted_error_is_found_and_no_correct_readback_is_flagged():
    exchanges = generate_exchanges(1500, seed=3, error_rate=0.5)
    assert sum(x.wrong for x in exchanges) > 600
    kinds = set()
    for x in exchanges:
        result = check_readback(parse_atc(x.instruction.reference), parse_atc(x.readback.reference),
                                readback_text=x.readback.reference)
        found = [(d.item, d.kind) for d in result.differences]
        assert found == ([(x.error.item, x.error.kind)] if x.error else []), (x.instruction.reference,
                                                                              x.readback.reference, result.describe())
        if x.error:
            kinds.add((x.error.item, x.error.kind))
    # every required item kind was planted and found, both ways
    assert {(item, kind) for item in ("level", "heading", "frequency", "squawk", "runway", "speed")
            for kind in ("changed", "missing")} <= kinds
