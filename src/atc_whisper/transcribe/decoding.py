"""Bounded, repetition-safe decoding shared by every path that runs Whisper.

Without bounds, the base model loops on noisy radio audio ("climb climb climb ..." up to
448 tokens): one such clip stalls an evaluation and dominates its WER (see the
finetuning-experiment note: 1090 insertions over 559 reference words). So every decoding
path (file transcription, live mode, evaluation, training's dev predictions) goes through
the rules here:

1. generation is bounded by the audio's duration (:func:`max_new_tokens_for`);
2. a decoding that repeats itself (compression ratio above the threshold), is unlikely
   (average log-probability below the threshold) or runs into the bound is retried at the
   next temperature of ``decode.temperatures`` (sampling), as openai/whisper does, and the
   best attempt is kept (:func:`pick_best`);
3. a final output that still loops is cut at the repeat and flagged low-confidence
   (:func:`truncate_repetition`); a window the model judges silent yields empty text.

:func:`generate_bounded` applies them to a Hugging Face model in batches; the CTranslate2
engine (``engines.py``) applies the same :func:`needs_fallback` / :func:`pick_best` /
:func:`finish` to its own decoder, so both engines flag the same things.
"""

from __future__ import annotations

import contextlib
import logging
import math
import re
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..config import DecodeSettings
from .types import (
    REASON_LENGTH,
    REASON_REPETITION,
    Segment,
    Transcription,
    compression_ratio,
    confidence_reasons,
)

SAMPLE_RATE = 16_000
#: Whisper's decoder has 448 learned positions (prompt + start tokens + generated text).
MAX_TARGET_POSITIONS = 448
#: Whisper's BPE spends about 1.3 tokens per ATC word ("speedbird" = 2, "two" = 1,
#: punctuation adds some); 2.0 leaves room for unusual words and numerals.
TOKENS_PER_WORD = 2.0
#: Slack for end-of-text, punctuation and very short clips (a 0.5 s "roger" still gets 13 tokens).
BOUND_SLACK_TOKENS = 10
#: Whisper's feature frames per second (hop of 160 samples at 16 kHz).
FRAMES_PER_SECOND = 100
#: Keep the stored per-step scores of one generate call below this many bytes
#: (steps x batch x vocabulary x 4 bytes); batches are split to respect it.
MAX_SCORE_BYTES = 256 * 1024 * 1024


def max_new_tokens_for(
    duration_s: float,
    decode: DecodeSettings,
    *,
    prefix_tokens: int = 4,
    max_target_positions: int = MAX_TARGET_POSITIONS,
) -> int:
    """Most tokens a clip of ``duration_s`` seconds may generate.

    ATC speech runs at 3-4 words per second; ``decode.max_words_per_second`` (default 6)
    leaves a margin, each word costs at most ~``TOKENS_PER_WORD`` tokens, plus a small
    constant. The result never exceeds what the decoder can hold after the prefix.

    Args:
        duration_s: Audio duration in seconds.
        decode: The ``[decode]`` settings.
        prefix_tokens: Tokens the decoder is fed before generating (start tokens + prompt).
        max_target_positions: The decoder's position limit (448 for every Whisper size).

    Returns:
        The bound, at least 1.
    """
    words = max(0.0, duration_s) * decode.max_words_per_second
    bound = math.ceil(words * TOKENS_PER_WORD) + BOUND_SLACK_TOKENS
    return max(1, min(bound, max_target_positions - prefix_tokens))


# -- repetition ------------------------------------------------------------------------------

#: Consecutive copies of an n-gram that count as a loop: single words repeat legitimately
#: in ATC ("squawk two two two two" has four), longer n-grams almost never three times.
MIN_REPEATS_UNIGRAM = 5
MIN_REPEATS_NGRAM = 3
MAX_NGRAM = 12


def find_repetition(words: Sequence[str]) -> int | None:
    """Index after the first copy of the earliest looping n-gram in ``words``, or None.

    A loop is an n-gram (1 <= n <= 12) repeated back to back at least 5 times for single
    words, 3 times for longer n-grams. Keeping ``words[:index]`` keeps one copy.
    """
    folded = [w.lower().strip(".,!?;:") for w in words]
    best: int | None = None
    for n in range(1, min(MAX_NGRAM, len(folded) // 2) + 1):
        needed = MIN_REPEATS_UNIGRAM if n == 1 else MIN_REPEATS_NGRAM
        if n * needed > len(folded):
            continue
        for start in range(len(folded) - n * needed + 1):
            if best is not None and start >= best:
                break
            gram = folded[start : start + n]
            copies = 1
            while folded[start + copies * n : start + (copies + 1) * n] == gram:
                copies += 1
            if copies >= needed:
                best = start + n if best is None else min(best, start + n)
                break
    return best


#: A stretch of 3-50 characters repeated back to back 5+ times: loops inside one "word"
#: ("Rachorachoracho...") that the word n-gram check cannot see.
_CHAR_LOOP = re.compile(r"(.{3,50}?)\1{4,}", re.DOTALL)


def truncate_repetition(text: str) -> tuple[str, bool]:
    """Cut ``text`` after the first copy of a loop; returns (text, was_cut).

    Two checks: a word n-gram repeated back to back (:func:`find_repetition`) and a run of
    characters repeated 5+ times (a loop within one "word").
    """
    words = text.split()
    cut = find_repetition(words)
    was_cut = cut is not None
    if cut is not None:
        text = " ".join(words[:cut])
    match = _CHAR_LOOP.search(text)
    if match:
        text = text[: match.start() + len(match.group(1))].rstrip()
        was_cut = True
    return text, was_cut


# -- attempts, fallback and the final result -------------------------------------------------


@dataclass
class Attempt:
    """One decoding of one clip at one temperature."""

    text: str
    avg_logprob: float
    no_speech_prob: float
    temperature: float
    finished: bool  # end-of-text was emitted within the bound
    compression_ratio: float = 0.0

    def __post_init__(self) -> None:
        self.text = self.text.strip()
        self.compression_ratio = compression_ratio(self.text)


def is_silence(attempt: Attempt, decode: DecodeSettings) -> bool:
    """openai/whisper's rule: the no-speech token is likely and the text is unlikely."""
    return attempt.no_speech_prob > decode.no_speech_threshold and attempt.avg_logprob < decode.log_prob_threshold


def needs_fallback(attempt: Attempt, decode: DecodeSettings) -> bool:
    """Whether to retry at the next temperature: looping, unlikely or unfinished output."""
    if is_silence(attempt, decode):
        return False
    return (
        attempt.compression_ratio > decode.compression_ratio_threshold
        or (decode.fallback_on_low_logprob and attempt.avg_logprob < decode.log_prob_threshold)
        or not attempt.finished
    )


def pick_best(attempts: Sequence[Attempt], decode: DecodeSettings) -> Attempt:
    """The attempt to keep: the last one if it passed, else the most likely non-looping one."""
    last = attempts[-1]
    if not needs_fallback(last, decode):
        return last
    clean = [a for a in attempts if a.compression_ratio <= decode.compression_ratio_threshold and a.finished]
    return max(clean or list(attempts), key=lambda a: a.avg_logprob)


def finish(
    attempt: Attempt, decode: DecodeSettings, *, duration_s: float, latency_s: float, engine: str
) -> Transcription:
    """Turn the kept attempt into a :class:`Transcription`: silence, loop cut, flags."""
    text = attempt.text
    reasons = confidence_reasons(attempt.avg_logprob, attempt.no_speech_prob, attempt.compression_ratio, decode)
    if is_silence(attempt, decode):
        text = ""  # what Whisper says over silence is a hallucination, not a transcript
    else:
        text, was_cut = truncate_repetition(text)
        if was_cut and REASON_REPETITION not in reasons:
            reasons.append(REASON_REPETITION)
        if not attempt.finished:
            reasons.append(REASON_LENGTH)
    segment = Segment(
        start_s=0.0,
        end_s=duration_s,
        text=text,
        avg_logprob=attempt.avg_logprob,
        no_speech_prob=attempt.no_speech_prob,
        compression_ratio=attempt.compression_ratio,
        temperature=attempt.temperature,
    )
    return Transcription(
        text=text,
        segments=[segment] if text else [],
        avg_logprob=attempt.avg_logprob,
        no_speech_prob=attempt.no_speech_prob,
        compression_ratio=attempt.compression_ratio,
        duration_s=duration_s,
        latency_s=latency_s,
        low_confidence=bool(reasons),
        engine=engine,
        temperature=attempt.temperature,
        reasons=reasons,
    )


# -- Hugging Face batched decoding -----------------------------------------------------------


@contextlib.contextmanager
def _quiet_transformers() -> Iterator[None]:
    """Silence transformers' per-call advice (max_length vs max_new_tokens, flag notes)."""
    logger = logging.getLogger("transformers")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def encoder_frames(model: Any) -> int:
    """Mel frames the model's encoder takes: 3000 (30 s) for stock Whisper."""
    stride = model.model.encoder.conv1.stride[0] * model.model.encoder.conv2.stride[0]
    return int(stride * model.config.max_source_positions)


def decoder_prefix(model: Any) -> list[int]:
    """The forced start tokens: <|startoftranscript|> [<|en|> <|transcribe|>] <|notimestamps|>."""
    config = model.generation_config
    prefix = [int(config.decoder_start_token_id)]
    if getattr(config, "is_multilingual", False) and getattr(config, "lang_to_id", None):
        prefix += [int(config.lang_to_id["<|en|>"]), int(config.task_to_id["transcribe"])]
    prefix.append(int(config.no_timestamps_token_id))
    return prefix


def _as_prompt_list(prompt_ids: Any) -> list[int]:
    if prompt_ids is None:
        return []
    if hasattr(prompt_ids, "tolist"):
        prompt_ids = prompt_ids.tolist()
    return [int(t) for t in prompt_ids]


def _limit_prompt(prompt: list[int]) -> list[int]:
    """Keep <|startofprev|> and the last tokens: Whisper allows half the context to a prompt."""
    limit = MAX_TARGET_POSITIONS // 2 - 1
    if len(prompt) <= limit:
        return prompt
    return [prompt[0], *prompt[-(limit - 1) :]]


def generate_bounded(
    model: Any,
    processor: Any,
    audios: Sequence[np.ndarray],
    decode: DecodeSettings,
    *,
    prompt_ids: Any = None,
    batch_size: int = 8,
    seed: int = 0,
) -> list[Transcription]:
    """Transcribe clips with a Hugging Face Whisper model under the bounded-decoding rules.

    Clips are sorted by length and decoded in batches (greedy, or beam search when
    ``decode.beam_size > 1``); each batch is bounded by its longest clip and each clip by
    its own duration. Clips whose output loops, is unlikely or hits the bound are retried
    at the next temperature of ``decode.temperatures``; the best attempt is kept.

    Args:
        model: A ``WhisperForConditionalGeneration`` in eval mode.
        processor: Its ``WhisperProcessor``.
        audios: 16 kHz mono float32 clips, each no longer than the encoder window (30 s).
        decode: The ``[decode]`` settings.
        prompt_ids: Optional prompt from ``processor.get_prompt_ids(text)`` (starts with
            <|startofprev|>), e.g. known callsigns.
        batch_size: Clips per ``generate`` call (reduced automatically for long bounds).
        seed: Seed for the sampling fallback, so results are reproducible.

    Returns:
        One :class:`Transcription` per clip, in input order (``engine="hf"``).

    Raises:
        ValueError: A clip is longer than the model's encoder window.
    """

    if not audios:
        return []
    window_s = encoder_frames(model) / FRAMES_PER_SECOND
    durations = [len(a) / SAMPLE_RATE for a in audios]
    for i, dur in enumerate(durations):
        if dur > window_s + 1e-6:
            raise ValueError(f"clip {i} lasts {dur:.1f} s, longer than the model's {window_s:.0f} s window; cut it first")

    prompt = _limit_prompt(_as_prompt_list(prompt_ids))
    prefix = decoder_prefix(model)
    vocab = int(model.config.vocab_size)
    order = sorted(range(len(audios)), key=lambda i: durations[i])
    results: list[Transcription | None] = [None] * len(audios)
    # Dev predictions during training call this on a model in train mode: decode without
    # dropout, then give the trainer its model back as it was.
    was_training = bool(getattr(model, "training", False))
    model.eval()
    try:
        _decode_in_batches(model, processor, audios, durations, order, results, decode, prompt, prefix,
                           batch_size, seed, vocab)
    finally:
        if was_training:
            model.train()
    return [r for r in results if r is not None]


def _decode_in_batches(
    model: Any,
    processor: Any,
    audios: Sequence[np.ndarray],
    durations: list[float],
    order: list[int],
    results: list[Transcription | None],
    decode: DecodeSettings,
    prompt: list[int],
    prefix: list[int],
    batch_size: int,
    seed: int,
    vocab: int,
) -> None:
    import torch

    start = 0
    while start < len(order):
        bound = max_new_tokens_for(durations[order[min(start + batch_size, len(order)) - 1]], decode,
                                   prefix_tokens=len(prompt) + len(prefix))
        fits = max(1, MAX_SCORE_BYTES // (bound * vocab * 4))
        chunk = order[start : start + min(batch_size, fits)]
        start += len(chunk)
        with torch.inference_mode(), _quiet_transformers():
            transcripts = _decode_batch(model, processor, [audios[i] for i in chunk], [durations[i] for i in chunk],
                                        decode, prompt, prefix, seed)
        for i, transcript in zip(chunk, transcripts, strict=True):
            results[i] = transcript


def _decode_batch(
    model: Any,
    processor: Any,
    audios: list[np.ndarray],
    durations: list[float],
    decode: DecodeSettings,
    prompt: list[int],
    prefix: list[int],
    seed: int,
) -> list[Transcription]:
    import torch
    from transformers.modeling_outputs import BaseModelOutput

    started = time.perf_counter()
    n_frames = encoder_frames(model)
    device, dtype = model.device, next(model.parameters()).dtype
    features = processor.feature_extractor(
        [np.asarray(a, dtype=np.float32) for a in audios], sampling_rate=SAMPLE_RATE, return_tensors="pt"
    ).input_features[..., :n_frames]
    features = features.to(device=device, dtype=dtype)
    hidden = model.get_encoder()(features).last_hidden_state

    # No-speech probability as openai/whisper computes it: softmax of the logits at the
    # <|startoftranscript|> position (before any forced token), read at the no-speech token.
    full_prefix = torch.tensor([prompt + prefix], device=device).repeat(len(audios), 1)
    logits = model(encoder_outputs=(hidden,), decoder_input_ids=full_prefix).logits
    no_speech_token = int(model.generation_config.no_timestamps_token_id) - 1
    no_speech = logits[:, len(prompt)].float().softmax(-1)[:, no_speech_token].tolist()

    bounds = [max_new_tokens_for(d, decode, prefix_tokens=len(prompt) + len(prefix)) for d in durations]
    attempts: list[list[Attempt]] = [[] for _ in audios]
    latency = [0.0] * len(audios)
    latency_share = (time.perf_counter() - started) / len(audios)
    for i in range(len(audios)):
        latency[i] += latency_share
    active = list(range(len(audios)))
    for step, temperature in enumerate(decode.temperatures):
        t0 = time.perf_counter()
        sub_hidden = hidden[active]
        texts, logprobs, finished = _generate(
            model, processor, BaseModelOutput(last_hidden_state=sub_hidden), [bounds[i] for i in active],
            decode, prompt, prefix, temperature, seed + step,
        )
        share = (time.perf_counter() - t0) / len(active)
        still = []
        for j, i in enumerate(active):
            latency[i] += share
            attempt = Attempt(texts[j], logprobs[j], no_speech[i], temperature, finished[j])
            attempts[i].append(attempt)
            if needs_fallback(attempt, decode):
                still.append(i)
        active = still
        if not active:
            break
    return [
        finish(pick_best(attempts[i], decode), decode, duration_s=durations[i], latency_s=latency[i], engine="hf")
        for i in range(len(audios))
    ]


def _generate(
    model: Any,
    processor: Any,
    encoder_outputs: Any,
    bounds: list[int],
    decode: DecodeSettings,
    prompt: list[int],
    prefix: list[int],
    temperature: float,
    seed: int,
) -> tuple[list[str], list[float], list[bool]]:
    """One ``generate`` call; returns texts, average log-probabilities and finished flags."""
    import torch
    import torch.nn.functional as F

    config = model.generation_config
    eos = int(config.eos_token_id)
    sampling = temperature > 0.0
    beams = 1 if sampling else decode.beam_size
    kwargs: dict[str, Any] = {
        "encoder_outputs": encoder_outputs,
        "max_new_tokens": max(bounds),
        "return_dict_in_generate": True,
        "output_scores": True,
        "num_beams": beams,
        "return_timestamps": False,
    }
    if sampling:
        kwargs.update(temperature=temperature, top_k=0, top_p=1.0)
    if prompt:
        kwargs["prompt_ids"] = torch.tensor(prompt, device=model.device)
    if getattr(config, "is_multilingual", False):
        kwargs.update(language="en", task="transcribe")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        out = model.generate(**kwargs)
    n_in = len(prompt) + len(prefix)
    generated = out.sequences[:, n_in:].tolist()
    sequence_scores = getattr(out, "sequences_scores", None)
    token_logprobs: list[list[float]] = [[] for _ in generated]
    if beams == 1 and out.scores:
        # Log-probability of each chosen token: the processed scores (suppressed tokens at
        # -inf) rescaled by the temperature, as openai/whisper scores its samples.
        scale = temperature if sampling else 1.0
        chosen = out.sequences[:, n_in : n_in + len(out.scores)]
        per_step = [
            F.log_softmax(step_scores.float() * scale, dim=-1).gather(1, chosen[:, k : k + 1]).squeeze(1)
            for k, step_scores in enumerate(out.scores)
        ]
        token_logprobs = torch.stack(per_step, dim=1).tolist()
    texts: list[str] = []
    logprobs: list[float] = []
    finished: list[bool] = []
    for b, tokens in enumerate(generated):
        if eos in tokens:
            n_text, done = tokens.index(eos), True
        else:
            n_text, done = len(tokens), False
        if n_text > bounds[b]:  # the batch ran on for a longer clip; hold this one to its own bound
            n_text, done = bounds[b], False
        text_tokens = tokens[:n_text]
        if beams > 1 and sequence_scores is not None:
            avg = float(sequence_scores[b])
        else:
            n_scored = n_text + 1 if done else n_text  # end-of-text counts when it was emitted
            total = sum(token_logprobs[b][:n_scored])
            avg = total / (n_text + 1)  # openai/whisper's denominator: text tokens + end-of-text
        texts.append(processor.tokenizer.decode(text_tokens, skip_special_tokens=True))
        logprobs.append(avg if math.isfinite(avg) else -100.0)
        finished.append(done)
    return texts, logprobs, finished
