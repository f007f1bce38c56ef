"""Metric arithmetic on hand-computed examples (alignment, WER/CER/SER, medians, coverage)."""

from __future__ import annotations

import math

import jiwer
import pytest

from atc_whisper.errors import ConfigError, DataError
from atc_whisper.evaluate.metrics import (
    align,
    cer,
    coverage_curve,
    edit_distance,
    score_corpus,
    sentence_error_rate,
    threshold_split,
    utterance_wers,
    wer,
)


def test_alignment_counts_and_ops_for_deletion_and_insertion():
    a = align("climb flight level three five zero".split(), "climb level three five zero zero".split())
    assert (a.hits, a.subs, a.dels, a.ins) == (5, 0, 1, 1)
    assert a.errors == 2 and a.n_ref == 6 and a.n_hyp == 6
    assert ("del", "flight", None) in a.ops
    assert [op for op in a.ops if op[0] == "ins"] == [("ins", None, "zero")]
    assert a.error_rate == pytest.approx(2 / 6)


def test_alignment_substitution_keeps_positions():
    a = align("turn left heading two seven zero".split(), "turn right heading two seven zero".split())
    assert (a.hits, a.subs, a.dels, a.ins) == (5, 1, 0, 0)
    assert a.ops[1] == ("sub", "left", "right")
    assert [op for op, _, _ in a.ops] == ["hit", "sub", "hit", "hit", "hit", "hit"]


def test_alignment_prefers_hits_among_equal_cost_paths():
    # "a b" -> "b c": two substitutions or delete/keep/insert both cost 2; the hit is kept.
    a = align(["a", "b"], ["b", "c"])
    assert (a.hits, a.subs, a.dels, a.ins) == (1, 0, 1, 1)


def test_alignment_ops_rebuild_both_sides():
    ref, hyp = "a b c d e f".split(), "x b c e f f g".split()
    a = align(ref, hyp)
    assert [r for _, r, _ in a.ops if r is not None] == ref
    assert [h for _, _, h in a.ops if h is not None] == hyp
    # a->x (sub), d deleted, one f/g pair extra: 1 sub + 1 del + 2 ins = edit distance 4
    assert a.errors == edit_distance(ref, hyp) == 4


def test_empty_references_and_hypotheses():
    assert align([], []).error_rate == 0.0
    silence = align([], "roger roger".split())
    assert (silence.ins, silence.error_rate) == (2, 2.0)  # an empty reference counts as one word
    missed = align("contact tower".split(), [])
    assert (missed.dels, missed.error_rate) == (2, 1.0)
    assert wer(["", ""], ["", "hello"], normalize=False) == 1.0
    assert wer([""], [""], normalize=False) == 0.0


def test_corpus_wer_is_total_edits_over_total_reference_words():
    refs = ["a b c", "d e"]
    hyps = ["a b", "d e f g"]
    # utterance 1: 1 deletion / 3 words; utterance 2: 2 insertions / 2 words
    assert wer(refs, hyps, normalize=False) == pytest.approx(3 / 5)
    assert utterance_wers(refs, hyps, normalize=False) == pytest.approx([1 / 3, 1.0])
    assert wer(refs, hyps, normalize=False) == pytest.approx(jiwer.wer(refs, hyps))


def test_score_corpus_counts_rates_and_median():
    refs = ["a b c d", "e f", "g h i j"]
    hyps = ["a b c d", "e x", "g h"]
    s = score_corpus(refs, hyps, normalize=False)
    assert (s["hits"], s["subs"], s["dels"], s["ins"]) == (7, 1, 2, 0)
    assert s["n_ref_words"] == 10 and s["n_hyp_words"] == 8 and s["n_utterances"] == 3
    assert s["wer"] == pytest.approx(3 / 10)
    assert s["ser"] == pytest.approx(2 / 3)
    assert s["median_utt_wer"] == pytest.approx(0.5)  # per utterance: 0, 0.5, 0.5
    assert s["mean_utt_wer"] == pytest.approx(1 / 3)
    assert s["insertion_rate"] == 0.0
    assert s["correct_word_rate"] == pytest.approx(0.7)
    assert s["raw_wer"] == s["wer"]  # no ATC normalisation asked for


def test_median_shows_what_corpus_wer_hides():
    # One looping utterance dominates corpus WER; the median says most utterances were fine.
    refs = ["a b c d", "a b c d", "a b c d"]
    hyps = ["a b c d", "a b c d", "a b c d " + "loop " * 20]
    s = score_corpus(refs, hyps, normalize=False)
    assert s["wer"] == pytest.approx(20 / 12)
    assert s["median_utt_wer"] == 0.0
    assert s["insertion_rate"] == pytest.approx(20 / 12)


def test_cer_and_sentence_error_rate():
    assert cer(["abc"], ["abd"], normalize=False) == pytest.approx(1 / 3)
    # "a b c" -> "a b": 2 character deletions (" c") over 5; "d e" -> "d e f g": 4 insertions over 3
    assert cer(["a b c", "d e"], ["a b", "d e f g"], normalize=False) == pytest.approx(6 / 8)
    assert sentence_error_rate(["a b", "c"], ["a b", "d"], normalize=False) == 0.5


def test_matches_jiwer_on_random_texts(rng):
    vocab = ["alfa", "bravo", "two", "seven", "zero", "climb", "level", "tower"]
    refs, hyps = [], []
    for _ in range(40):
        refs.append(" ".join(rng.choice(vocab, size=rng.integers(1, 10))))
        hyps.append(" ".join(rng.choice(vocab, size=rng.integers(0, 12))))
    ours = score_corpus(refs, hyps, normalize=False)
    theirs = jiwer.process_words(refs, hyps)
    assert ours["wer"] == pytest.approx(theirs.wer)
    # Same edit distance; among equal-cost paths ours keeps the most hits, jiwer's may keep fewer.
    assert ours["hits"] >= theirs.hits
    assert ours["subs"] + ours["dels"] + ours["ins"] == theirs.substitutions + theirs.deletions + theirs.insertions
    assert ours["cer"] == pytest.approx(jiwer.cer(refs, hyps))


def test_mismatched_lengths_are_rejected():
    with pytest.raises(DataError, match="2 references but 1 hypotheses"):
        wer(["a", "b"], ["a"], normalize=False)


def test_raw_versus_normalised_wer():
    pytest.importorskip("atc_whisper.phraseology")
    ref = ["heading two seven zero"]
    hyp = ["Heading 270."]
    assert wer(ref, hyp) == 0.0
    # raw: "heading" hit, "270" substitutes "two", "seven" and "zero" deleted -> 3 / 4
    assert wer(ref, hyp, normalize="raw") == pytest.approx(3 / 4)
    s = score_corpus(ref, hyp)
    assert s["wer"] == 0.0 and s["raw_wer"] == pytest.approx(3 / 4)


# -- coverage ----------------------------------------------------------------------------------

CONF = [-0.1, -0.5, -0.2, -0.9]
ERRS = [0, 2, 1, 4]
NREF = [5, 5, 5, 5]
CALL = [True, False, True, None]


def test_coverage_curve_keeps_the_most_confident_share():
    curve = coverage_curve(CONF, ERRS, NREF, CALL, shares=(0.1, 0.5, 0.75, 1.0))
    by_share = {p["share"]: p for p in curve}
    # 0.1 of 4 -> keep 1 (the surest, utterance 0): no errors
    assert by_share[0.1]["n_kept"] == 1 and by_share[0.1]["wer"] == 0.0 and by_share[0.1]["callsign_acc"] == 1.0
    # 0.5 -> utterances 0 and 2: 1 error over 10 words, both callsigns right, threshold -0.2
    assert by_share[0.5]["wer"] == pytest.approx(0.1)
    assert by_share[0.5]["threshold"] == -0.2 and by_share[0.5]["coverage"] == 0.5
    # 0.75 -> 0, 2, 1: 3 errors / 15 words, callsigns 2 of 3
    assert by_share[0.75]["wer"] == pytest.approx(0.2) and by_share[0.75]["callsign_acc"] == pytest.approx(2 / 3)
    # everything: 7 / 20; utterance 3 has no reference callsign and does not count
    assert by_share[1.0]["wer"] == pytest.approx(0.35) and by_share[1.0]["callsign_acc"] == pytest.approx(2 / 3)
    wers = [p["wer"] for p in curve]
    assert wers == sorted(wers)  # here confidence ranks errors, so WER rises with coverage


def test_threshold_split_separates_kept_and_flagged():
    split = threshold_split(CONF, ERRS, NREF, CALL, threshold=-0.3)
    assert split["coverage"] == 0.5
    assert split["kept"] == {"n": 2, "wer": pytest.approx(0.1), "callsign_acc": 1.0}
    assert split["flagged"]["n"] == 2 and split["flagged"]["wer"] == pytest.approx(0.6)
    assert split["flagged"]["callsign_acc"] == 0.0
    assert math.isnan(threshold_split([], [], [], [], -1.0)["coverage"])


def test_coverage_rejects_bad_shares():
    with pytest.raises(ConfigError, match="share 0"):
        coverage_curve(CONF, ERRS, NREF, CALL, shares=(0.0,))


# -- ATC facts ---------------------------------------------------------------------------------

ATC_REFS = [
    "lufthansa one two three climb flight level three five zero",
    "speedbird four five six turn left heading two seven zero",
    "klm four four contact tower one one eight decimal seven",
    "climb flight level three five zero",
]
ATC_HYPS = [
    "Lufthansa 123, climb FL350.",  # both right once normalised
    "speedbird four five six turn right heading two seven zero",  # turn direction wrong
    "klm four five contact tower 118.7",  # callsign wrong, frequency right
    "climb flight level three five zero descend flight level one two zero",  # an extra command
]


def test_callsign_and_command_accuracy_on_hand_made_pairs():
    pytest.importorskip("atc_whisper.phraseology")
    from atc_whisper.evaluate.metrics import score_atc

    s = score_atc(ATC_REFS, ATC_HYPS)
    # callsigns: three references name one, two of them are heard right
    assert s["n_with_callsign"] == 3 and s["callsign_correct"] == 2
    assert s["callsign_acc"] == pytest.approx(2 / 3)
    # the one miss ("klm four four" heard as "klm four five") is a wrong number, counted as such
    assert s["callsign_misses"] == {"none_heard": 0, "airline": 0, "number": 1, "airline_and_number": 0,
                                    "registration": 0}
    # commands: 4 in the references (climb, heading, contact, climb); heading's direction is wrong
    assert (s["n_ref_commands"], s["n_hyp_commands"], s["commands_matched"]) == (4, 5, 3)
    assert s["command_acc"] == pytest.approx(3 / 4)
    assert s["command_precision"] == pytest.approx(3 / 5)
    # every command right and none extra: utterances 1 and 3 of 4
    assert s["utterance_command_acc"] == pytest.approx(2 / 4)
    per = s["per_command"]
    assert (per["climb"]["n_ref"], per["climb"]["matched"], per["climb"]["recall"]) == (2, 2, 1.0)
    assert per["heading"]["recall"] == 0.0 and per["contact"]["recall"] == 1.0
    assert per["descend"]["n_ref"] == 0 and per["descend"]["precision"] == 0.0
    assert math.isnan(per["descend"]["recall"])


def test_atc_pair_without_callsign_or_commands_is_not_counted():
    pytest.importorskip("atc_whisper.phraseology")
    from atc_whisper.evaluate.metrics import score_atc_pair

    score = score_atc_pair("good morning", "good morning")
    assert score.ref_callsign is None and score.callsign_correct is None
    assert score.ref_commands == 0 and score.commands_correct is None
    right = score_atc_pair(ATC_REFS[0], ATC_HYPS[0])
    assert right.callsign_correct is True and right.commands_correct is True
    assert right.hyp_callsign == "lufthansa one two three"
    assert right.callsign_miss is None and score.callsign_miss is None
    unheard = score_atc_pair(ATC_REFS[0], "climb flight level three five zero")
    assert unheard.callsign_correct is False and unheard.callsign_miss == "none_heard"
