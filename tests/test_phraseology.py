"""Utterance generator and vocabulary: reproducibility, coverage, reference convention, realistic values."""

from __future__ import annotations

import random
import re
from collections import Counter

import pytest

from atc_whisper.phraseology import (
    PHASES,
    PLAIN_SENTENCES,
    ROLES,
    generate_utterances,
    plain_sentences,
    write_vocabulary,
)
from atc_whisper.phraseology.vocabulary import AIRLINES, DIGIT_WORDS, ICAO_ALPHABET, WAYPOINTS


def test_same_seed_same_utterances_independent_of_global_random() -> None:
    random.seed(1)
    first = generate_utterances(200, seed=42)
    random.seed(2)
    random.random()
    second = generate_utterances(200, seed=42)
    assert first == second


def test_different_seed_different_utterances() -> None:
    a = [u.reference for u in generate_utterances(100, seed=1)]
    b = [u.reference for u in generate_utterances(100, seed=2)]
    assert sum(x != y for x, y in zip(a, b, strict=True)) > 90


def test_shorter_run_is_a_prefix_and_uids_are_stable() -> None:
    short = generate_utterances(10, seed=7)
    long = generate_utterances(30, seed=7)
    assert long[:10] == short
    uids = [u.uid for u in long]
    assert len(set(uids)) == len(uids)
    assert uids[3] == "s7-000003"


def test_all_phases_and_roles_covered() -> None:
    utterances = generate_utterances(500, seed=3)
    pairs = Counter((u.phase, u.role) for u in utterances)
    for phase in PHASES:
        for role in ROLES:
            assert pairs[(phase, role)] >= 5, (phase, role)
    pilot_share = sum(u.role == "pilot" for u in utterances) / len(utterances)
    assert 0.33 <= pilot_share <= 0.47
    command_types = {c.type for u in utterances for c in u.commands}
    assert {"climb", "descend", "heading", "speed", "contact", "monitor", "squawk", "qnh", "runway", "taxi",
            "approach", "direct", "clearance", "emergency", "go_around"} <= command_types
    clearances = {c.qualifier for u in utterances for c in u.commands if c.type == "runway"}
    assert clearances == {"line_up", "takeoff", "land", "cross", "hold_short"}


def test_pilot_fraction_and_phase_filter() -> None:
    assert {u.role for u in generate_utterances(50, seed=1, pilot_fraction=0.0)} == {"controller"}
    assert {u.role for u in generate_utterances(50, seed=1, pilot_fraction=1.0)} == {"pilot"}
    assert {u.phase for u in generate_utterances(50, seed=1, phases=["tower", "ground"])} == {"tower", "ground"}


@pytest.mark.parametrize("kwargs", [{"n": -1}, {"pilot_fraction": 1.5}, {"phases": ["cruise"]}, {"phases": []}])
def test_bad_arguments_are_refused(kwargs: dict) -> None:
    args = {"n": 3, "seed": 0, **kwargs}
    with pytest.raises(ValueError):
        generate_utterances(args.pop("n"), args.pop("seed"), **args)


def test_reference_convention() -> None:
    for u in generate_utterances(1000, seed=11):
        assert re.fullmatch(r"[a-z]+( [a-z]+)*", u.reference), u.reference
        words = u.reference.split()
        assert not {"niner", "tree", "fife", "fower", "alpha", "juliet", "x"} & set(words), u.reference
        assert " point " not in u.reference.replace("holding point", "")  # frequencies say "decimal"
        assert u.callsign in u.reference
        assert not re.search(r"\d", u.text), u.text  # TTS engines read digits badly: always words


def test_spoken_text_uses_icao_pronunciations_sometimes() -> None:
    texts = " ".join(u.text.lower() for u in generate_utterances(500, seed=5)).split()
    counts = Counter(texts)
    assert counts["niner"] > 0 and counts["nine"] > 0
    assert counts["tree"] > 0 and counts["fife"] > 0


def test_controllers_lead_with_callsign_and_readbacks_end_with_it() -> None:
    for u in generate_utterances(600, seed=8):
        if u.role == "controller":
            assert u.reference.startswith(u.callsign)
        elif not u.reference.startswith(("mayday", "pan")) and u.phase != "emergency":
            # readback (callsign last) or a call to a station ("london control, <callsign>, ...")
            assert u.reference.endswith(u.callsign) or f" {u.callsign} " in u.reference


def test_values_are_realistic() -> None:
    for u in generate_utterances(2000, seed=13):
        for c in u.commands:
            if c.type in ("contact", "monitor"):
                mhz = float(c.value)
                assert 118.0 <= mhz <= 136.975
                khz = int(c.value.split(".")[1]) % 100
                assert khz in {0, 25, 50, 75, 5, 10, 15, 30, 35, 40, 55, 60, 65, 80, 85, 90}
            elif c.type == "squawk":
                assert re.fullmatch(r"[0-7]{4}", c.value)
                assert c.value not in ("7500", "7600") and (c.value != "7700" or u.phase == "emergency")
            elif c.type == "heading":
                assert 1 <= int(c.value) <= 360 and len(c.value) == 3
            elif c.type == "qnh":
                assert 950 <= int(c.value) <= 1050
            elif c.type in ("climb", "descend", "maintain"):
                assert re.fullmatch(r"FL\d{3}|\d+ft", c.value)
            elif c.type == "speed":
                assert re.fullmatch(r"M0\.[78]\d", c.value) or 160 <= int(c.value) <= 290
            elif c.type == "altimeter":
                assert 29.5 <= float(c.value) <= 30.4
            elif c.type == "runway":
                assert re.fullmatch(r"(0[1-9]|[12]\d|3[0-6])[LRC]?", c.value)


def test_vocabulary_contents() -> None:
    assert len(AIRLINES) >= 60
    codes = [code for code, _, _ in AIRLINES]
    assert len(set(codes)) == len(codes) and all(re.fullmatch(r"[A-Z]{3}", c) for c in codes)
    telephony = {words for _, words, _ in AIRLINES}
    assert {"speedbird", "lufthansa", "ryanair", "delta", "skywest"} <= telephony
    assert ICAO_ALPHABET["A"] == "alfa" and ICAO_ALPHABET["J"] == "juliett" and ICAO_ALPHABET["X"] == "xray"
    assert len(WAYPOINTS) == len(set(WAYPOINTS)) and all(re.fullmatch(r"[a-z]{5}", w) for w in WAYPOINTS)
    # no waypoint may be mistaken for another vocabulary word
    assert not set(WAYPOINTS) & (set(ICAO_ALPHABET.values()) | set(DIGIT_WORDS) | telephony)


def test_write_vocabulary(tmp_path) -> None:
    path = write_vocabulary(tmp_path / "sub" / "vocabulary.txt")
    text = path.read_text(encoding="utf-8")
    assert "# airline_telephony" in text and "BAW speedbird" in text and "DLH lufthansa" in text
    assert "9 nine (niner)" in text and "J juliett" in text and "lamso" in text
    lines = text.splitlines()
    assert "27L two seven left" in lines and "EDDF frankfurt" in lines
    for section in ("icao_alphabet", "digits", "stations", "waypoints", "registration_prefixes",
                    "runway_designators", "taxiways", "value_formats"):
        assert f"# {section}" in lines
    assert not list(path.parent.glob(".vocabulary.txt.*"))  # no temporary left behind


def test_plain_sentences() -> None:
    assert len(PLAIN_SENTENCES) >= 60
    assert len(set(PLAIN_SENTENCES)) == len(PLAIN_SENTENCES)
    for sentence in PLAIN_SENTENCES:
        assert not re.search(r"\d", sentence)
        assert not {"runway", "heading", "squawk", "climb", "descend"} & set(sentence.lower().split())


def test_plain_sentences_sampler_is_seeded() -> None:
    assert plain_sentences(10, seed=1) == plain_sentences(10, seed=1)
    assert plain_sentences(10, seed=1) != plain_sentences(10, seed=2)
    many = plain_sentences(150, seed=3)
    assert len(many) == 150 and set(many) == set(PLAIN_SENTENCES)
    assert plain_sentences(0) == []


def test_everyday_sentences_are_varied_reproducible_and_never_the_held_out_ones():
    import re

    from atc_whisper.phraseology import PLAIN_SENTENCES, normalize_atc, parse_atc
    from atc_whisper.phraseology.everyday import everyday_sentences

    sentences = everyday_sentences(2000, seed=3)
    assert sentences == everyday_sentences(2000, seed=3)
    assert sentences != everyday_sentences(2000, seed=4)
    assert len(set(sentences)) > 1900  # composed, not a short list cycling
    assert not set(sentences) & set(PLAIN_SENTENCES)  # the forgetting check stays held out
    for s in sentences[:300]:
        assert not re.search(r"\d", s) and s[0].isupper() and s[-1] in ".?"
        parsed = parse_atc(normalize_atc(s))
        assert parsed.callsign is None and not parsed.commands, s  # nothing ATC about them
