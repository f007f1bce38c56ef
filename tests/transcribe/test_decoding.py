"""Bounded decoding: the duration bound, loop detection, temperature fallback, confidence.

The rules are checked as pure functions, then through the real tiny.en weights with
Hugging Face ``generate`` on real espeak-ng speech (``generate_bounded``).
"""

from __future__ import annotations

import numpy as np
import pytest

from atc_whisper.config import DecodeSettings
from atc_whisper.errors import AudioError
from atc_whisper.transcribe.decoding import (
    MAX_TARGET_POSITIONS,
    Attempt,
    find_repetition,
    finish,
    max_new_tokens_for,
    needs_fallback,
    pick_best,
    truncate_repetition,
)
from atc_whisper.transcribe.hf_engine import generate_bounded
from atc_whisper.transcribe.types import compression_ratio

SENTENCE = "Speedbird one two three, climb flight level three five zero, turn left heading two seven zero"
LOOP_SENTENCE = " ".join(["climb"] * 16)


# -- pure rules ------------------------------------------------------------------------------


def test_bound_grows_with_duration_and_never_exceeds_the_decoder():
    decode = DecodeSettings()
    bounds = [max_new_tokens_for(d, decode) for d in (0.0, 0.5, 2.0, 4.0, 10.0, 30.0)]
    assert bounds == sorted(bounds) and len(set(bounds)) == len(bounds)
    # 4 s of ATC speech is at most ~24 words at 6 words/s: far below the 448-token ceiling.
    assert max_new_tokens_for(4.0, decode) < 100
    assert max_new_tokens_for(4.0, decode) >= 4.0 * decode.max_words_per_second
    # A long prompt leaves fewer positions; the bound shrinks rather than overflowing.
    assert max_new_tokens_for(30.0, decode, prefix_tokens=300) == MAX_TARGET_POSITIONS - 300
    assert max_new_tokens_for(1e6, decode) == MAX_TARGET_POSITIONS - 4
    slower = DecodeSettings(max_words_per_second=3.0)
    assert max_new_tokens_for(10.0, slower) < max_new_tokens_for(10.0, decode)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("climb climb climb climb climb climb climb", "climb"),
        ("roger, roger, roger, roger, roger, roger", "roger,"),
        ("descend to descend to descend to descend to", "descend to"),
        ("pan pan pan pan pan pan pan pan pan", "pan"),  # more than the urgency call's six
        ("speedbird one two three Rachorachorachorachorachoracho", "speedbird one two three Rachor"),
    ],
)
def test_loops_are_cut_after_one_copy(text, expected):
    assert truncate_repetition(text) == (expected, True)


@pytest.mark.parametrize(
    "text",
    [
        "squawk two two two two",  # four identical digits are legitimate ATC
        "Speedbird 1 2 3, climb flight level 350, turn left heading 270.",
        "contact one one eight decimal seven, one one eight decimal seven",  # a readback repeats once
        "pan pan pan pan pan pan chicago center southwest nine six five five",  # the urgency call: PAN PAN x 3
        "PAN PAN, PAN PAN, PAN PAN, Chicago Center",
        "",
    ],
)
def test_legitimate_text_is_not_cut(text):
    assert truncate_repetition(text) == (text, False)
    assert find_repetition(text.split()) is None


def test_compression_ratio_separates_loops_from_speech():
    decode = DecodeSettings()
    assert compression_ratio(SENTENCE) < decode.compression_ratio_threshold
    assert compression_ratio(LOOP_SENTENCE) > decode.compression_ratio_threshold
    assert compression_ratio("") == 0.0


def test_fallback_rules_and_choice_of_attempt():
    decode = DecodeSettings()
    good = Attempt(SENTENCE, -0.3, 0.05, 0.0, True)
    looping = Attempt(LOOP_SENTENCE, -0.1, 0.05, 0.0, True)
    unlikely = Attempt("speed bird", -2.0, 0.05, 0.4, True)
    unfinished = Attempt("speedbird one two", -0.2, 0.05, 0.0, False)
    silence = Attempt("you", -1.5, 0.9, 0.0, True)
    assert not needs_fallback(good, decode)
    assert needs_fallback(looping, decode)
    assert needs_fallback(unlikely, decode)
    assert needs_fallback(unfinished, decode)
    assert not needs_fallback(silence, decode)  # silence is an answer, not a failure
    # All failed: the likeliest non-looping, finished attempt is kept, not the last one.
    assert pick_best([looping, unlikely, unfinished], decode) is unlikely
    assert pick_best([looping, good], decode) is good

    result = finish(silence, decode, duration_s=2.0, latency_s=0.1, engine="hf")
    assert result.text == "" and result.low_confidence and "no_speech" in result.reasons

    # The latency-minded rule (live decoding) retries runaway output only; unlikely text stays flagged.
    live = DecodeSettings(fallback_on_low_logprob=False)
    assert not needs_fallback(unlikely, live)
    assert needs_fallback(looping, live) and needs_fallback(unfinished, live)
    assert pick_best([unlikely], live) is unlikely
    assert finish(unlikely, live, duration_s=2.0, latency_s=0.1, engine="hf").low_confidence
    result = finish(looping, decode, duration_s=2.0, latency_s=0.1, engine="hf")
    assert result.text == "climb" and result.low_confidence and "repetition" in result.reasons
    result = finish(good, decode, duration_s=2.0, latency_s=0.1, engine="hf")
    assert result.text == SENTENCE and not result.low_confidence and result.reasons == []
    result = finish(unfinished, decode, duration_s=2.0, latency_s=0.1, engine="hf")
    assert result.low_confidence and "length_bound" in result.reasons
    # A confident "." (what a tuned model may say over static) is no transcript: no text, no segment.
    for dots in (".", " ... ", "?!"):
        result = finish(Attempt(dots, -0.05, 0.7, 0.0, True), decode, duration_s=2.0, latency_s=0.1, engine="hf")
        assert result.text == "" and result.segments == []
    assert finish(Attempt("7.", -0.05, 0.7, 0.0, True), decode, duration_s=2.0, latency_s=0.1, engine="hf").text == "7."


# -- real model: generate_bounded ------------------------------------------------------------


@pytest.fixture(scope="module")
def hf_model(tiny_en):
    import torch

    from atc_whisper.models.load import load_hf

    # One thread: on a shared 2-core machine, two OpenMP threads stall on every small
    # decoder step (measured 10x slower wall time under load).
    torch.set_num_threads(1)
    return load_hf(tiny_en.hf_dir)


@pytest.fixture(scope="module")
def clips(synth_clip):
    from atc_whisper.audio.io import load_audio

    return {
        "atc": load_audio(synth_clip(SENTENCE)),
        "short": load_audio(synth_clip("Lufthansa four five six, contact tower")),
        "loop": load_audio(synth_clip(LOOP_SENTENCE)),
    }


def _n_tokens(processor, text: str) -> int:
    return len(processor.tokenizer.encode(" " + text, add_special_tokens=False)) if text else 0


def test_batched_decoding_matches_single_and_keeps_order(hf_model, clips):
    model, processor = hf_model
    decode = DecodeSettings()
    batch = generate_bounded(model, processor, [clips["atc"], clips["short"]], decode)
    single = generate_bounded(model, processor, [clips["short"]], decode)
    assert [t.engine for t in batch] == ["hf", "hf"]
    assert "heading" in batch[0].text.lower() and "climb" in batch[0].text.lower()
    assert "tower" in batch[1].text.lower()
    assert batch[1].text == single[0].text
    assert batch[1].duration_s == pytest.approx(len(clips["short"]) / 16000)
    for result in batch:
        assert -5.0 < result.avg_logprob < 0.0
        assert 0.0 <= result.no_speech_prob <= 1.0
        assert result.latency_s > 0


def test_generation_never_exceeds_the_duration_bound(hf_model, clips):
    model, processor = hf_model
    tight = DecodeSettings(max_words_per_second=0.1, temperatures=[0.0])
    bound = max_new_tokens_for(len(clips["atc"]) / 16000, tight, prefix_tokens=2)
    (result,) = generate_bounded(model, processor, [clips["atc"]], tight)
    assert _n_tokens(processor, result.text) <= bound
    assert result.low_confidence and "length_bound" in result.reasons
    # With the normal bound the same clip finishes on its own.
    (free,) = generate_bounded(model, processor, [clips["atc"]], DecodeSettings())
    assert "length_bound" not in free.reasons
    assert _n_tokens(processor, free.text) > bound


@pytest.mark.parametrize("window", ["whole", "short"])
def test_a_looping_clip_is_retried_cut_and_flagged(hf_model, clips, window):
    model, processor = hf_model
    # The whole 30 s window (openai/whisper's computation) and the CPU default's short pass.
    decode = DecodeSettings(encoder_pad_s=30.0, context_s=30.0) if window == "whole" else DecodeSettings()
    (result,) = generate_bounded(model, processor, [clips["loop"]], decode)
    bound = max_new_tokens_for(len(clips["loop"]) / 16000, decode, prefix_tokens=2)
    assert _n_tokens(processor, result.text) <= bound
    if window == "whole":  # there a sampled retry escapes the loop; over the short pass every attempt loops
        assert result.temperature > 0.0, "the compression check should have triggered the fallback"
    assert result.low_confidence
    assert "repetition" in result.reasons
    assert truncate_repetition(result.text) == (result.text, False)  # what is shown no longer loops


def test_a_prompt_is_used_for_decoding(hf_model, clips):
    model, processor = hf_model
    decode = DecodeSettings()
    prompt = processor.get_prompt_ids("Speedbird one two three, Lufthansa four five six.", return_tensors="np")
    (plain,) = generate_bounded(model, processor, [clips["atc"]], decode)
    (prompted,) = generate_bounded(model, processor, [clips["atc"]], decode, prompt_ids=prompt)
    # The prompt's spelled-out digits carry over to the transcript (plain decoding writes "1 2 3").
    assert "speedbird one two three" in prompted.text.lower()
    assert prompted.text != plain.text
    assert "startofprev" not in prompted.text and "Lufthansa" not in prompted.text


def test_empty_input_list_and_too_long_clip(hf_model):
    model, processor = hf_model
    assert generate_bounded(model, processor, [], DecodeSettings()) == []
    with pytest.raises(AudioError, match="window"):
        generate_bounded(model, processor, [np.zeros(16000 * 31, dtype=np.float32)], DecodeSettings())


def test_dev_predictions_in_train_mode_decode_without_dropout(hf_model, clips):
    model, processor = hf_model
    decode = DecodeSettings()
    (reference,) = generate_bounded(model, processor, [clips["short"]], decode)
    model.train()
    try:
        runs = [generate_bounded(model, processor, [clips["short"]], decode)[0].text for _ in range(2)]
        assert model.training, "the caller's train mode must be restored"
    finally:
        model.eval()
    assert runs == [reference.text, reference.text]
