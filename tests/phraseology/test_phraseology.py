"""Utterance generator and vocabulary: reproducibility, coverage, reference convention, realistic values."""

from __future__ import annotations

import random
import re
from collections import Counter

import pytest

from atc_whisper.errors import ConfigError
from atc_whisper.phraseology import (
    PHASES,
    PLAIN_SENTENCES,
    ROLES,
    generate_utterances,
    normalize_atc,
    parse_atc,
    plain_sentences,
    write_vocabulary,
)
from atc_whisper.phraseology.vocabulary import (
    AIRLINES,
    DIGIT_WORDS,
    ICAO_ALPHABET,
    TELEPHONY_WORDS,
    US_AIRLINE_CODES,
    WAYPOINTS,
)


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
    with pytest.raises(ConfigError, match=r"must be >= 0|within 0-1|unknown phase"):
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
    # Instructions, readbacks and calls; short transmissions ("good evening <callsign>") and
    # blocked ones (cut before the callsign) are placed freely.
    for u in generate_utterances(600, seed=8):
        if u.blocked or u.kind not in ("instruction", "readback", "call"):
            continue
        assert u.callsign
        if u.role == "controller":
            assert u.reference.startswith(u.callsign)
        elif not u.reference.startswith(("mayday", "pan")) and u.phase != "emergency":
            # readback (callsign last, "heavy" after it) or a call to a station ("london control, <callsign>, ...")
            assert u.reference.endswith((u.callsign, f"{u.callsign} heavy")) or f" {u.callsign} " in u.reference


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


# -- the radio mix: short transmissions, check-ins, blocked transmissions, FAA phraseology -------


def test_mix_of_kinds_has_plausible_shares_and_consistent_roles() -> None:
    from atc_whisper.phraseology.generator import KINDS, SHORT_KINDS

    utterances = generate_utterances(4000, seed=21, short_fraction=0.25)
    kinds = Counter(u.kind for u in utterances)
    assert set(kinds) == set(KINDS)
    short = sum(kinds[k] for k in SHORT_KINDS) / len(utterances)
    assert 0.22 <= short <= 0.28
    # The commonest short transmissions on a real frequency are acknowledgements and farewells.
    assert kinds["acknowledgement"] > kinds["farewell"] > kinds["greeting"]
    assert 0.01 <= sum(u.blocked for u in utterances) / len(utterances) <= 0.05
    for u in utterances:
        assert u.phase in PHASES and u.role in ROLES
        if u.kind in SHORT_KINDS:
            assert u.commands == () and len(u.reference.split()) <= 12, u
        if u.kind == "instruction":
            assert u.role == "controller"
        if u.kind in ("readback", "call", "check_in"):
            assert u.role == "pilot"
        if u.kind == "check_in":
            assert u.phase in ("departure", "approach", "enroute") and u.callsign
    # Short transmissions are short: the median one has a few words.
    short_words = sorted(len(u.reference.split()) for u in utterances if u.kind in SHORT_KINDS)
    assert short_words[len(short_words) // 2] <= 4
    assert {"roger", "wilco", "standby"} <= {w for u in utterances if u.kind in SHORT_KINDS for w in u.reference.split()}
    refs = {u.reference for u in utterances}
    assert {"say again", "go ahead", "good day", "bye", "roger"} <= refs


def test_short_fraction_setting_and_independence_of_the_other_transmissions() -> None:
    from atc_whisper.phraseology.generator import SHORT_KINDS

    none = generate_utterances(300, seed=4, short_fraction=0.0)
    assert not [u for u in none if u.kind in SHORT_KINDS]
    assert all(u.kind in SHORT_KINDS for u in generate_utterances(100, seed=4, short_fraction=1.0))
    # Raising the share turns some slots into short transmissions and leaves the others as they were.
    low = generate_utterances(300, seed=4, short_fraction=0.2)
    high = generate_utterances(300, seed=4, short_fraction=0.5)
    both_long = [i for i in range(300) if low[i].kind not in SHORT_KINDS and high[i].kind not in SHORT_KINDS]
    assert len(both_long) > 100 and all(low[i] == high[i] == none[i] for i in both_long)
    assert sum(u.kind in SHORT_KINDS for u in high) > sum(u.kind in SHORT_KINDS for u in low)


def test_short_transmissions_name_their_callsign_when_they_have_one() -> None:
    from atc_whisper.phraseology.generator import SHORT_KINDS

    with_callsign = 0
    for u in generate_utterances(1500, seed=6, short_fraction=1.0):
        parsed = parse_atc(u.reference)
        assert parsed.callsign == (u.callsign or None) and parsed.commands == (), u
        assert u.kind in SHORT_KINDS
        with_callsign += bool(u.callsign)
    assert 0.3 < with_callsign / 1500 < 0.8  # "roger" alone and "speedbird one two three, roger" both occur


def test_blocked_transmissions_are_a_cut_prefix_of_the_whole_one(monkeypatch: pytest.MonkeyPatch) -> None:
    from atc_whisper.phraseology import generator

    utterances = generate_utterances(1500, seed=9)
    blocked = [u for u in utterances if u.blocked]
    assert len(blocked) > 15
    monkeypatch.setattr(generator, "BLOCKED_SHARE", 0.0)
    whole = {u.uid: u for u in generate_utterances(1500, seed=9)}
    for u in blocked:
        full = whole[u.uid]
        words, full_words = u.reference.split(), full.reference.split()
        assert 2 <= len(words) <= len(full_words) - 2 and full_words[: len(words)] == words, (u, full)
        assert u.commands == full.commands[: len(u.commands)]  # only commands said in full are kept
        assert u.callsign in ("", full.callsign) and u.kind == full.kind and u.role == full.role
        parsed = parse_atc(u.reference)
        assert (parsed.callsign, parsed.commands) == (u.callsign or None, u.commands)
        assert normalize_atc(u.text) == u.reference
    assert any(len(u.commands) < len(whole[u.uid].commands) for u in blocked)


def test_faa_and_icao_phraseology_both_appear() -> None:
    utterances = generate_utterances(3000, seed=12, us_fraction=0.3)
    faa = [u for u in utterances if u.phraseology == "faa"]
    icao = [u for u in utterances if u.phraseology == "icao"]
    assert 0.26 <= len(faa) / len(utterances) <= 0.34
    faa_refs = " ".join(u.reference for u in faa)
    icao_refs = " ".join(u.reference for u in icao)
    for phrase in ("climb and maintain", "altimeter", "position and hold", "heavy", "descend via the", "climb via the",
                   "airport via the", "line up and wait", " wind "):
        assert phrase in faa_refs, phrase
    assert " qnh " not in f" {faa_refs} " and " qnh " in f" {icao_refs} "
    faa_text = " ".join(u.text.lower() for u in faa)
    assert " point " in faa_text and " decimal " not in faa_text.replace("mach decimal.", "")
    assert " decimal " in " ".join(u.text.lower() for u in icao)
    for u in faa:
        for c in u.commands:
            if c.type in ("contact", "monitor"):
                assert int(c.value.split(".")[1]) % 25 == 0  # no 8.33 kHz channels in the US
            if c.type in ("climb", "descend", "maintain") and c.value.endswith("ft"):
                assert int(c.value[:-2]) < 18_000  # altitudes below the US transition altitude
            if c.type in ("climb_via", "descend_via"):
                assert re.fullmatch(r"[A-Z]{5}\d", c.value)
    stations = {c.detail for u in faa for c in u.commands if c.type == "contact" and c.detail}
    assert any(s.endswith("center") for s in stations)
    heavy = [u for u in faa if u.reference.split()[-1:] == ["heavy"] or " heavy " in f" {u.reference} "]
    assert heavy and all("heavy" not in u.callsign for u in heavy)
    assert not [u for u in generate_utterances(200, seed=12, us_fraction=0.0) if u.phraseology == "faa"]


def _airline_counts(utterances: list) -> Counter:
    """Utterances per airline (telephony words followed by a flight number, not a registration)."""
    telephony = [" ".join(words) for words in TELEPHONY_WORDS]  # longest first, as the parser matches
    counts: Counter = Counter({words: 0 for words in telephony})
    for u in utterances:
        for words in telephony:
            rest = u.callsign[len(words):].split()
            if u.callsign.startswith(words + " ") and rest and rest[0] in DIGIT_WORDS:
                counts[words] += 1
                break
    return counts


@pytest.mark.parametrize("us_fraction", [0.3, 0.0])
def test_every_airline_is_heard_about_equally_often(us_fraction: float) -> None:
    # Callsign accuracy follows how often an airline was heard in training; independent draws
    # left the rarest airlines a third of the median's clips, and FAA transmissions (US carriers
    # only) doubled the US carriers' share.
    counts = _airline_counts(generate_utterances(3000, seed=5, us_fraction=us_fraction))
    us = {words for code, words, _ in AIRLINES if code in US_AIRLINE_CODES}
    values = sorted(counts.values())
    median = values[len(values) // 2]
    # Before: rarest 0.4-0.7 and commonest 1.5-2.5 times the median (seeds 5-7); now 0.57-0.79 and 1.2-1.3.
    assert median >= 25 and values[0] >= 0.5 * median and values[-1] <= 1.4 * median, values
    us_median = sorted(counts[w] for w in us)[len(us) // 2]
    other_median = sorted(counts[w] for w in counts if w not in us)[(len(counts) - len(us)) // 2]
    assert 0.8 <= us_median / other_median <= 1.25, (us_median, other_median)
