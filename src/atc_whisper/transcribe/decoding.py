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

:func:`decode_clips` is the one loop that applies them, whatever the engine: clips sorted by
length and batched, a bound per clip, the prompt cut to Whisper's budget, retries of only the
clips that need one (on the encoder output already computed), seeded sampling, latency shared
out per clip. An engine (:class:`Decoder`: ``hf_engine.py``, ``ct2_engine.py``) supplies only
``encode`` and ``generate``.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from ..audio.io import SAMPLE_RATE
from ..config import DecodeSettings
from ..errors import AudioError
from .types import (
    REASON_LENGTH,
    REASON_REPETITION,
    Segment,
    Transcription,
    compression_ratio,
    confidence_reasons,
)

#: Whisper's decoder has 448 learned positions (prompt + start tokens + generated text).
MAX_TARGET_POSITIONS = 448
#: Whisper's BPE spends about 1.3 tokens per ATC word ("speedbird" = 2, "two" = 1,
#: punctuation adds some); 2.0 leaves room for unusual words and numerals.
TOKENS_PER_WORD = 2.0
#: Slack for end-of-text, punctuation and very short clips (a 0.5 s "roger" still gets 13 tokens).
BOUND_SLACK_TOKENS = 10
#: A prompt (<|startofprev|> and text) may fill at most half of the decoder's context, as
#: openai/whisper allows; longer ones keep their last tokens.
MAX_PROMPT_TOKENS = MAX_TARGET_POSITIONS // 2 - 1
#: Clips per decoding batch unless an engine asks for fewer.
BATCH_SIZE = 8


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
#: Words that phraseology itself repeats more often than that: the urgency call is "PAN PAN" said
#: three times (ICAO Annex 10), six "pan" in a row. Up to this many in a row are speech, not a
#: loop (the realistic test set's urgency calls were all cut to "pan" before).
LEGITIMATE_RUNS = {"pan": 6}


def find_repetition(words: Sequence[str]) -> int | None:
    """Index after the first copy of the earliest looping n-gram in ``words``, or None.

    A loop is an n-gram (1 <= n <= 12) repeated back to back at least 5 times for single
    words, 3 times for longer n-grams, unless it is one word of :data:`LEGITIMATE_RUNS` running
    no longer than phraseology has it. Keeping ``words[:index]`` keeps one copy.
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
            if copies >= needed and not _legitimate_run(gram, copies):
                best = start + n if best is None else min(best, start + n)
                break
    return best


def _legitimate_run(gram: list[str], copies: int) -> bool:
    """Whether ``copies`` of ``gram`` are one word that phraseology repeats that often ("pan")."""
    word = gram[0]
    return all(w == word for w in gram) and len(gram) * copies <= LEGITIMATE_RUNS.get(word, 0)


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
    match = next((m for m in _CHAR_LOOP.finditer(text) if not _legitimate_chars(m)), None)
    if match:
        text = text[: match.start() + len(match.group(1))].rstrip()
        was_cut = True
    return text, was_cut


def _legitimate_chars(match: re.Match[str]) -> bool:
    """Whether a repeated stretch of characters is whole words of :data:`LEGITIMATE_RUNS` ("pan pan pan ")."""
    unit = match.group(1)
    words = unit.lower().replace(",", " ").replace(".", " ").split()
    return bool(words) and _legitimate_run(words, len(match.group(0)) // len(unit))


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
        if not any(ch.isalnum() for ch in text):
            text = ""  # punctuation alone (a "." over static) says nothing: no transcript
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




# -- the decoding loop, shared by every engine -------------------------------------------------


class Decoder(Protocol):
    """What an engine supplies to :func:`decode_clips`: a way to encode clips and to generate.

    Attributes:
        name: "ct2" or "hf" (stamped on every :class:`Transcription`).
        workers: Batches it can decode at once from parallel threads (1: one at a time).
        window_s: Longest clip the encoder takes, seconds.
        max_new_tokens: Most tokens one generation may produce (the decoder's own limit).
        prefix_tokens: Forced start tokens after the prompt (<|startoftranscript|>,
            [<|en|> <|transcribe|>,] <|notimestamps|>); they count against the decoder's positions.
    """

    name: str
    workers: int
    window_s: float
    max_new_tokens: int
    prefix_tokens: int

    def max_batch(self, bound_tokens: int) -> int:
        """Most clips one call may take when generating up to ``bound_tokens`` tokens each."""
        ...

    def encode(self, clips: list[np.ndarray], prompt: list[int]) -> Any:
        """Run the encoder over the clips (at most one window each); returns an opaque state."""
        ...

    def select(self, encoded: Any, rows: list[int]) -> Any:
        """The state of ``rows`` of ``encoded`` (the clips that need a retry)."""
        ...

    def generate(self, encoded: Any, prompt: list[int], bounds: list[int], temperature: float,
                 seed: int) -> list[Attempt]:
        """One decoding of every clip in ``encoded``: greedy/beam at 0, else sampled with ``seed``;
        clip ``i`` holds to ``bounds[i]`` tokens (a longer run is cut there and unfinished)."""
        ...


def limit_prompt(prompt: Sequence[int]) -> list[int]:
    """Keep <|startofprev|> and the last tokens: Whisper allows half the context to a prompt."""
    prompt = list(prompt)
    if len(prompt) <= MAX_PROMPT_TOKENS:
        return prompt
    return [prompt[0], *prompt[-(MAX_PROMPT_TOKENS - 1) :]]


def check_clip(audio: np.ndarray, window_s: float) -> np.ndarray:
    """``audio`` as a float32 mono array no longer than one window.

    Raises:
        AudioError: The clip is not mono or lasts longer than ``window_s``.
    """
    audio = np.asarray(audio, dtype=np.float32)
    if audio.ndim != 1:
        raise AudioError(f"expected mono audio (a 1-D array), got shape {audio.shape}; mix the channels down first.")
    if len(audio) / SAMPLE_RATE > window_s + 1e-6:
        raise AudioError(
            f"clip lasts {len(audio) / SAMPLE_RATE:.1f} s, longer than the model's {window_s:.0f} s window; "
            "cut it first, or use atc_whisper.transcribe.files.transcribe_audio for long audio."
        )
    return audio


def decode_clips(
    decoder: Decoder,
    audios: Sequence[np.ndarray],
    decode: DecodeSettings,
    *,
    prompt: Sequence[int] = (),
    seed: int = 0,
    batch_size: int = BATCH_SIZE,
) -> list[Transcription]:
    """Transcribe clips under the bounded-decoding rules: the one loop every engine goes through.

    Clips are sorted by length and decoded in batches (of ``batch_size``, fewer when the
    decoder asks; ``decoder.workers`` batches at once from parallel threads); each batch runs to
    the bound of its longest clip and each clip is held to its own. Clips whose output loops, is unlikely or hits the bound are retried at the next
    temperature of ``decode.temperatures`` - only those clips, on the encoder output already
    computed - and the best attempt is kept.

    Args:
        decoder: The engine's encode/generate (:class:`Decoder`).
        audios: 16 kHz mono float32 clips, each at most ``decoder.window_s`` long.
        decode: The ``[decode]`` settings.
        prompt: Prompt tokens, ``[<|startofprev|>, ...]`` (cut to Whisper's budget here).
        seed: Sampling at the k-th temperature of ``decode.temperatures`` is seeded with
            ``seed + k``, so fallbacks are reproducible.
        batch_size: Most clips per batch.

    Returns:
        One :class:`Transcription` per clip, in input order.

    Raises:
        AudioError: A clip is not mono or longer than the window.
    """
    clips = [check_clip(a, decoder.window_s) for a in audios]
    if not clips:
        return []
    tokens = limit_prompt(prompt)
    durations = [len(c) / SAMPLE_RATE for c in clips]
    prefix_tokens = len(tokens) + decoder.prefix_tokens
    bounds = [min(decoder.max_new_tokens, max_new_tokens_for(d, decode, prefix_tokens=prefix_tokens))
              for d in durations]
    order = sorted(range(len(clips)), key=lambda i: durations[i])
    workers = max(1, int(getattr(decoder, "workers", 1)))
    if workers > 1:
        # Parallel workers: at least two batches per worker, so that no worker is left decoding
        # the last (longest) batch alone while the others idle. On a CPU a batch costs about its
        # clips' sum whatever its size, so smaller batches lose little.
        batch_size = max(1, min(batch_size, math.ceil(len(clips) / (2 * workers))))
    chunks = []
    start = 0
    while start < len(order):
        longest = bounds[order[min(start + batch_size, len(order)) - 1]]
        chunk = order[start : start + max(1, min(batch_size, decoder.max_batch(longest)))]
        start += len(chunk)
        chunks.append(chunk)

    def run(chunk: list[int]) -> list[Transcription]:
        return _decode_batch(decoder, [clips[i] for i in chunk], [durations[i] for i in chunk],
                             [bounds[i] for i in chunk], decode, tokens, seed)

    if workers > 1 and len(chunks) > 1:
        from concurrent.futures import ThreadPoolExecutor

        # The engine releases the GIL while it computes; each thread runs one batch at a time.
        # Longest batches first, so the last ones to start are the shortest.
        chunks.reverse()
        with ThreadPoolExecutor(min(workers, len(chunks)), thread_name_prefix="atc-decode") as pool:
            batches = list(pool.map(run, chunks))
    else:
        batches = [run(chunk) for chunk in chunks]
    results: list[Transcription | None] = [None] * len(clips)
    for chunk, batch in zip(chunks, batches, strict=True):
        for i, transcript in zip(chunk, batch, strict=True):
            results[i] = transcript
    return [r for r in results if r is not None]


def _decode_batch(decoder: Decoder, clips: list[np.ndarray], durations: list[float], bounds: list[int],
                  decode: DecodeSettings, prompt: list[int], seed: int) -> list[Transcription]:
    """One batch: encode once, then generate at each temperature for the clips that still need it."""
    started = time.perf_counter()
    encoded = decoder.encode(clips, prompt)
    latency = [(time.perf_counter() - started) / len(clips)] * len(clips)
    attempts: list[list[Attempt]] = [[] for _ in clips]
    everyone = list(range(len(clips)))
    active, state, state_rows = everyone, encoded, everyone
    for step, temperature in enumerate(decode.temperatures):
        t0 = time.perf_counter()
        if active != state_rows:  # a retry of part of the batch: only those clips go on
            state, state_rows = decoder.select(encoded, active), active
        outcome = decoder.generate(state, prompt, [bounds[i] for i in active], temperature, seed + step)
        share = (time.perf_counter() - t0) / len(active)
        still = []
        for i, attempt in zip(active, outcome, strict=True):
            latency[i] += share
            attempts[i].append(attempt)
            if needs_fallback(attempt, decode):
                still.append(i)
        active = still
        if not active:
            break
    return [
        finish(pick_best(attempts[i], decode), decode, duration_s=durations[i], latency_s=latency[i],
               engine=decoder.name)
        for i in range(len(clips))
    ]


class BoundedEngine:
    """An engine whose ``transcribe`` runs :func:`decode_clips` over its own :class:`Decoder` methods.

    Subclasses set ``name``, ``window_s``, ``max_new_tokens``, ``prefix_tokens`` and ``decode``
    and implement ``prompt_tokens``, ``encode``, ``select`` and ``generate``.
    """

    name: str
    window_s: float
    max_new_tokens: int
    prefix_tokens: int
    decode: DecodeSettings
    #: Base seed of the sampling fallback (see :func:`decode_clips`).
    seed: int = 0
    batch_size: int = BATCH_SIZE
    #: Batches decoded at once (see :class:`Decoder`).
    workers: int = 1

    def prompt_tokens(self, prompt: str | None) -> list[int]:
        """``[<|startofprev|>, *tokens of " " + prompt]``, or ``[]`` without a prompt."""
        raise NotImplementedError

    def max_batch(self, bound_tokens: int) -> int:
        """Most clips per call; engines with memory limits lower it."""
        return self.batch_size

    def encode(self, clips: list[np.ndarray], prompt: list[int]) -> Any:
        raise NotImplementedError

    def select(self, encoded: Any, rows: list[int]) -> Any:
        raise NotImplementedError

    def generate(self, encoded: Any, prompt: list[int], bounds: list[int], temperature: float,
                 seed: int) -> list[Attempt]:
        raise NotImplementedError

    def transcribe(self, audio: np.ndarray, *, prompt: str | None = None) -> Transcription:
        """Transcribe one 16 kHz mono clip no longer than ``window_s``."""
        return self.transcribe_batch([audio], prompt=prompt)[0]

    def transcribe_batch(self, audios: list[np.ndarray], *, prompt: str | None = None) -> list[Transcription]:
        """Transcribe several clips, batched (see :func:`decode_clips`)."""
        return decode_clips(self, audios, self.decode, prompt=self.prompt_tokens(prompt), seed=self.seed,
                            batch_size=self.batch_size)
