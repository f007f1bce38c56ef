"""Synthetic exchanges (ground truth of the readback check) and simulated recognition errors."""

from __future__ import annotations

import json
import random

import pytest

from atc_whisper.errors import ConfigError
from atc_whisper.phraseology import normalize_atc, parse_atc
from atc_whisper.phraseology.asr_noise import simulate_asr_errors
from atc_whisper.phraseology.exchanges import EXCHANGE_PHASES, frequency_order, generate_exchanges


def test_reproducible_and_prefix_stable():
    a = generate_exchanges(40, seed=1)
    assert a == generate_exchanges(40, seed=1)
    assert a[:10] == generate_exchanges(10, seed=1)
    assert a != generate_exchanges(40, seed=2)
    random.seed(123)  # the global random state does not matter
    assert generate_exchanges(5, seed=1) == a[:5]


def test_transmissions_carry_what_tts_and_scoring_need():
    for x in generate_exchanges(300, seed=4, error_rate=0.5, opening_rate=0.5):
        assert x.instruction.role == "controller" and x.readback.role == "pilot"
        assert x.instruction.callsign == x.readback.callsign == x.callsign
        assert x.instruction.phase in EXCHANGE_PHASES
        for t in x.transmissions:
            assert t.text and t.text[0].isupper() and t.text.endswith(".")
            assert normalize_atc(t.text) == normalize_atc(t.reference)  # the TTS text says the reference
            parsed = parse_atc(t.reference)
            assert (parsed.callsign, parsed.commands) == (t.callsign, t.commands), t.reference
        assert x.readback.reference.endswith(x.callsign)  # pilots end with the callsign
        json.dumps(x.as_dict())


def test_planted_errors_change_or_drop_exactly_one_item():
    exchanges = generate_exchanges(400, seed=5, error_rate=0.5)
    wrong = [x for x in exchanges if x.wrong]
    assert 0.4 <= len(wrong) / len(exchanges) <= 0.55
    for x in wrong:
        error = x.error
        assert error.expected in x.instruction.commands
        if error.kind == "changed":
            assert error.heard in x.readback.commands and error.heard != error.expected
            assert error.heard.type == error.expected.type
        else:
            assert error.heard is None and error.expected not in x.readback.commands
    for x in exchanges:
        if not x.wrong:  # a correct readback says only instructed values (maybe without a turn direction)
            assert {(c.type, c.value) for c in x.readback.commands} <= {(c.type, c.value) for c in x.instruction.commands}
    assert {x.error.kind for x in wrong} == {"changed", "missing"}


def test_correct_readbacks_use_legitimate_short_forms():
    exchanges = generate_exchanges(400, seed=8, error_rate=0.0, variation_rate=1.0)
    readbacks = [x.readback.reference.split() for x in exchanges]
    assert any(words[0] == "flight" for words in readbacks)  # level without the verb
    assert any(set(x.readback.commands) != {c for c in x.instruction.commands if c.type != "emergency"}
               for x in exchanges)  # so a plain comparison of commands would flag correct readbacks
    word_for_word = generate_exchanges(50, seed=8, error_rate=0.0, variation_rate=0.0)
    assert all(x.readback.reference.split()[0] not in ("flight",) for x in word_for_word)


def test_error_kinds_and_rates_are_honoured():
    assert not any(x.wrong for x in generate_exchanges(100, seed=6, error_rate=0.0))
    only_missing = generate_exchanges(200, seed=6, error_rate=1.0, error_kinds=("missing",))
    assert {x.error.kind for x in only_missing if x.error} == {"missing"}
    assert all(x.opening is None for x in generate_exchanges(50, seed=6, opening_rate=0.0))
    assert {x.instruction.phase for x in generate_exchanges(50, seed=6, phases=["tower"])} == {"tower"}


@pytest.mark.parametrize("kwargs", [{"n": -1}, {"error_rate": 1.5}, {"error_kinds": ("swapped",)},
                                    {"phases": ["emergency"]}, {"opening_rate": -0.1}])
def test_bad_arguments(kwargs):
    args = {"n": 3, "seed": 0, **kwargs}
    with pytest.raises(ConfigError, match=r"must be >= 0|within 0-1|unknown (error kind|phase)"):
        generate_exchanges(args.pop("n"), args.pop("seed"), **args)


def test_frequency_order_keeps_each_exchange_in_order():
    exchanges = generate_exchanges(60, seed=7, opening_rate=0.3)
    turns = frequency_order(exchanges, seed=7, interleave=0.6)
    assert sorted(id(t.utterance) for t in turns) == sorted(id(u) for x in exchanges for u in x.transmissions)
    for k, x in enumerate(exchanges):
        positions = [i for i, t in enumerate(turns) if t.exchange == k]
        assert [turns[i].utterance for i in positions] == list(x.transmissions)
    # some readbacks really are overtaken by the next instruction
    assert any(turns[i].utterance.role == "controller" and turns[i + 1].utterance.role == "pilot"
               and turns[i].exchange != turns[i + 1].exchange for i in range(len(turns) - 1))


def test_simulated_recognition_errors():
    reference = "speedbird one two three climb flight level three five zero turn left heading two seven zero"
    assert simulate_asr_errors(reference, random.Random(0), 0.0) == reference
    rng = random.Random(1)
    damaged = [simulate_asr_errors(reference, rng, 0.2) for _ in range(200)]
    changed_words = sum(a != b for d in damaged for a, b in zip(reference.split(), d.split(), strict=False))
    assert any(d != reference for d in damaged) and changed_words > 0
    lengths = [len(d.split()) for d in damaged]
    assert min(lengths) < len(reference.split())  # deletions happen
    assert simulate_asr_errors(reference, random.Random(5), 0.3) == simulate_asr_errors(reference, random.Random(5), 0.3)
    with pytest.raises(ConfigError, match="word_error_rate must be within 0-1"):
        simulate_asr_errors(reference, rng, 1.2)
    with pytest.raises(ConfigError, match="interleave must be within 0-1"):
        frequency_order([], seed=0, interleave=-0.5)
