"""Conversation tracker: exchanges, readback checks in order, callsign matching, no false alarms."""

from __future__ import annotations

import json
import random

import pytest

from atc_whisper.config import Settings
from atc_whisper.errors import ConfigError
from atc_whisper.phraseology.conversation import Conversation, analyse_transmissions
from atc_whisper.phraseology.exchanges import frequency_order, generate_exchanges


def feed(conversation: Conversation, texts: list[str], gap_s: float = 1.0, duration_s: float = 3.0):
    entries, t = [], 0.0
    for text in texts:
        entries.append(conversation.add(text, start_s=t, end_s=t + duration_s))
        t += duration_s + gap_s
    return entries


def test_instruction_and_wrong_readback():
    entries = feed(Conversation(), [
        "speedbird one two three climb flight level three five zero",
        "climbing flight level three three zero speedbird one two three",
    ])
    atc, pilot = entries
    assert (atc.role, atc.exchange, atc.readback) == ("controller", 0, None)
    assert pilot.role == "pilot" and pilot.exchange == 0 and pilot.readback_mismatch
    assert pilot.as_dict() == {"role": "pilot", "role_score": round(pilot.role_score, 3), "exchange": 0, "readback": {
        "status": "mismatch", "instruction": 0,
        "differences": [{"item": "level", "expected": "FL350", "heard": "FL330", "kind": "changed"}]}}
    json.dumps([e.as_dict() for e in entries])  # JSON-ready


def test_interleaved_aircraft_each_checked_against_their_own_instruction():
    entries = feed(Conversation(), [
        "speedbird one two three climb flight level three five zero",
        "lufthansa four alfa bravo turn left heading two seven zero",
        "climbing flight level three five zero speedbird one two three",
        "left heading two five zero lufthansa four alfa bravo",
        "speedbird one two three contact london control one two one decimal five",  # next exchange
        "one two one decimal five speedbird one two three",
    ])
    assert [e.exchange for e in entries] == [0, 1, 0, 1, 2, 2]
    assert entries[2].readback.status == "ok" and entries[2].readback.instruction == 0
    assert entries[3].readback.instruction == 1 and entries[3].readback.describe() == "heading 270 read back as 250"
    assert entries[5].readback.status == "ok" and entries[5].readback.instruction == 4
    assert [e.role for e in entries] == ["controller", "controller", "pilot", "pilot", "controller", "pilot"]


def test_say_again_then_repeat_then_readback_is_one_exchange():
    entries = feed(Conversation(), [
        "speedbird one two three squawk four five two one",
        "say again speedbird one two three",
        "speedbird one two three squawk four five two one",
        "squawk four five two one speedbird one two three",
    ])
    assert {e.exchange for e in entries} == {0}
    assert entries[1].readback is None
    assert entries[3].readback.status == "ok" and entries[3].readback.instruction == 2


def test_correction_after_a_wrong_readback_stays_in_the_exchange():
    entries = feed(Conversation(), [
        "speedbird one two three descend flight level one two zero",
        "descending flight level one three zero speedbird one two three",
        "speedbird one two three negative descend flight level one two zero",
        "descending flight level one two zero speedbird one two three",
    ])
    assert [e.exchange for e in entries] == [0, 0, 0, 0]
    assert entries[1].readback_mismatch and entries[3].readback.status == "ok"
    assert entries[3].readback.instruction == 2


def test_pilot_call_opens_the_exchange_and_request_is_not_a_readback():
    conversation = Conversation()
    entries = feed(conversation, [
        "london control speedbird one two three request direct lamso",
        "speedbird one two three proceed direct lamso",
        "direct lamso speedbird one two three",
    ])
    assert [e.exchange for e in entries] == [0, 0, 0]
    assert entries[0].readback is None and entries[2].readback.status == "ok"
    assert conversation.stats.readbacks == 1 and conversation.stats.mismatches == 0


def test_unknown_callsign_joins_no_exchange():
    entries = feed(Conversation(), ["roger", "climb flight level three five zero"])
    assert [e.exchange for e in entries] == [None, None]
    assert all(e.readback is None for e in entries)


def test_exchange_window_closes_exchanges_and_counts_unanswered_instructions():
    conversation = Conversation(exchange_window_s=10.0)
    first = conversation.add("speedbird one two three climb flight level three five zero", start_s=0.0, end_s=3.0)
    late = conversation.add("climbing flight level three five zero speedbird one two three", start_s=20.0, end_s=23.0)
    assert late.exchange != first.exchange and late.readback is None  # too late to be that readback
    assert [u.as_dict() for u in conversation.unanswered()] == [
        {"instruction": 0, "callsign": "speedbird one two three", "exchange": 0, "items": ["level"]}]
    # an instruction with nothing to read back is not "unanswered"
    conversation.add("speedbird one two three report established", start_s=40.0, end_s=42.0)
    assert len(conversation.finish()) == 1


def test_misheard_callsign_in_the_readback_still_matches():
    entries = feed(Conversation(), [
        "speedbird one two three climb flight level three five zero",
        "lufthansa four alfa bravo descend flight level one two zero",
        "climbing flight level three five zero speedbert one two three",  # misspelt airline
        "descending flight level one one zero four alfa bravo",  # airline name lost
    ])
    assert entries[2].exchange == 0 and entries[2].readback.status == "ok"
    assert entries[2].callsign == "speedbird one two three"
    assert entries[3].exchange == 1 and entries[3].readback.describe() == "level FL120 read back as FL110"


def test_similar_callsigns_are_not_confused():
    entries = feed(Conversation(), [
        "eurowings three descend flight level two four zero",
        "eurowings two climb flight level one five zero",  # another aircraft, one digit apart
        "descending flight level two four zero eurowings three",
        "climbing flight level one five zero eurowings two",
    ])
    assert [e.exchange for e in entries] == [0, 1, 0, 1]
    assert [e.readback.status for e in entries[2:]] == ["ok", "ok"]


def test_abbreviated_registration_matches():
    entries = feed(Conversation(), [
        "golf alfa bravo charlie delta hold short runway two seven",
        "holding short runway two five golf charlie delta",
        "golf charlie delta negative hold short runway two seven",  # the controller abbreviates too
        "holding short runway two seven golf charlie delta",
    ])
    assert [e.exchange for e in entries] == [0, 0, 0, 0]
    assert entries[1].readback_mismatch and entries[3].readback.status == "ok"
    assert entries[3].readback.instruction == 2 and entries[3].callsign == "golf alfa bravo charlie delta"


def test_garbled_reply_is_not_judged():
    entries = feed(Conversation(), [
        "speedbird one two three climb flight level three five zero",
        "speedbird one two three",  # only the callsign came through
    ])
    assert entries[1].exchange == 0 and entries[1].readback is None


def test_readback_with_an_unreadable_level_is_not_reported_ok():
    # tiny.en's transcript of "climbing flight level three five zero, speedbird one two three"
    conversation = Conversation()
    entries = feed(conversation, [
        "Speedbird 123, climb flight level 350",
        "Climbing flight level 3 for Nero, speedbird 1 2 3",
    ])
    pilot = entries[1]
    assert pilot.role == "pilot" and pilot.exchange == 0
    assert pilot.readback is None and not pilot.readback_mismatch and pilot.as_dict()["readback"] is None
    assert conversation.stats.readbacks == 0 and conversation.stats.unchecked == 1
    # the instruction is still open: a clear readback that follows is checked against it
    clear = conversation.add("climbing flight level three five zero speedbird one two three", start_s=9.0, end_s=12.0)
    assert clear.exchange == 0 and clear.readback is not None and clear.readback.status == "ok"
    assert clear.readback.instruction == 0


def test_settings_and_indices():
    settings = Settings().replace(conversation={"exchange_window_s": 5.0, "callsign_max_distance": 0.0})
    conversation = Conversation.from_settings(settings)
    assert conversation.exchange_window_s == 5.0 and conversation.callsign_max_distance == 0.0
    entry = conversation.add("speedbird one two three climb flight level three five zero", start_s=0.0, index=17)
    readback = conversation.add("climbing flight level three five zero speedbert one two three", start_s=2.0)
    assert entry.index == 17 and readback.index == 18
    assert readback.exchange is None and readback.readback is None  # no fuzzy matching at distance 0
    with pytest.raises(ConfigError, match=r"set conversation\.exchange_window_s"):
        Conversation(exchange_window_s=0.0)


def test_analyse_transmissions_for_files():
    entries = analyse_transmissions([
        ("Speedbird 123, climb FL350.", 0.0, 2.5),
        ("Climbing FL330, Speedbird 123.", 3.0, 5.0),
    ])
    assert [e.index for e in entries] == [0, 1] and entries[1].readback_mismatch


@pytest.mark.parametrize("interleave", [0.0, 0.5])
def test_generated_frequency_every_wrong_readback_flagged_no_correct_one(interleave):
    exchanges = generate_exchanges(300, seed=9, error_rate=0.4, opening_rate=0.3)
    turns = frequency_order(exchanges, seed=9, interleave=interleave)
    assert len(turns) == sum(len(x.transmissions) for x in exchanges)
    conversation = Conversation()
    t, flagged, ids = 0.0, {}, {}
    rng = random.Random(9)
    for k, turn in enumerate(turns):
        duration = len(turn.utterance.reference.split()) / 3.0
        entry = conversation.add(turn.utterance.text, start_s=t, end_s=t + duration, index=k)  # the TTS text
        t += duration + rng.uniform(0.5, 3.0)
        ids.setdefault(turn.exchange, set()).add(entry.exchange)
        assert entry.role == turn.utterance.role
        if turn.utterance is exchanges[turn.exchange].readback:
            assert entry.readback is not None
            flagged[turn.exchange] = entry.readback_mismatch
    assert flagged == {k: x.wrong for k, x in enumerate(exchanges)}
    # each exchange's instruction and readback share an id (an opening call may differ only if
    # its exchange was already closed by a correct readback, which generated data never does)
    assert all(len(v) == 1 for v in ids.values())
