"""The Hugging Face transformers engine: ``WhisperForConditionalGeneration`` under the shared loop.

It runs any model transformers can load, including fine-tuned ones whose encoder input
length was changed by training, and it is the path training's dev predictions and
evaluation use (:func:`generate_bounded`). The fallback, bounds and flags are the ones of
:func:`~atc_whisper.transcribe.decoding.decode_clips`; this module supplies only the
encoder (log-mel features, encoder states and openai/whisper's no-speech probability) and
one ``generate`` call per temperature.

On a CPU it encodes short passes completed with silence, exactly as the CTranslate2 engine
does (:mod:`~atc_whisper.transcribe.window`), so training's dev predictions read the encoder
states that inference will give the decoder; ``decode.encoder_pad_s = 30`` (and a GPU) decodes
the whole window.
"""

from __future__ import annotations

import contextlib
import logging
import math
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from ..audio.io import SAMPLE_RATE
from ..config import DecodeSettings
from .decoding import (
    BATCH_SIZE,
    MAX_TARGET_POSITIONS,
    Attempt,
    BoundedEngine,
    decode_clips,
)
from .types import Transcription
from .window import (
    FRAMES_PER_SECOND,
    STOCK_ENCODER_FRAMES,
    ShortWindow,
    level_key,
    padding_level,
    shortened,
    silence_features,
    whole_window_no_speech,
)

#: Keep the stored per-step scores of one generate call below this many bytes
#: (steps x batch x vocabulary x 4 bytes); batches are split to respect it.
MAX_SCORE_BYTES = 256 * 1024 * 1024


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


class HFEngine(BoundedEngine):
    """Hugging Face transformers ``WhisperForConditionalGeneration`` decoded by the shared loop.

    Args:
        model: A ``WhisperForConditionalGeneration`` (see :func:`~atc_whisper.transcribe.engines.load_engine`).
        processor: Its ``WhisperProcessor``.
        decode: The ``[decode]`` settings.
        seed: Base seed of the sampling fallback.
        batch_size: Most clips per ``generate`` call (fewer for long bounds, see :data:`MAX_SCORE_BYTES`).
    """

    name = "hf"

    def __init__(self, model: Any, processor: Any, decode: DecodeSettings, *, seed: int = 0,
                 batch_size: int = BATCH_SIZE) -> None:
        self.model = model
        self.processor = processor
        self.decode = decode
        self.seed = seed
        self.batch_size = batch_size
        self.window_s = encoder_frames(model) / FRAMES_PER_SECOND
        self.max_new_tokens = MAX_TARGET_POSITIONS
        self._prefix = decoder_prefix(model)
        self.prefix_tokens = len(self._prefix)
        self.window = ShortWindow.of(decode)
        self._silence: dict[tuple[float, int], Any] = {}
        self._vocab = int(model.config.vocab_size)

    def prompt_tokens(self, prompt: str | None) -> list[int]:
        """``processor.get_prompt_ids`` of the stripped prompt (``[]`` without one)."""
        if not prompt or not prompt.strip():
            return []
        return _as_prompt_list(self.processor.get_prompt_ids(prompt.strip(), return_tensors="np"))

    def max_batch(self, bound_tokens: int) -> int:
        """Clips whose per-step scores fit in :data:`MAX_SCORE_BYTES`."""
        return max(1, MAX_SCORE_BYTES // (bound_tokens * self._vocab * 4))

    def _short(self) -> bool:
        """Whether short passes apply: on a CPU, a stock 30 s encoder, ``encoder_pad_s`` below 30."""
        return (self.model.device.type == "cpu" and not self.window.whole
                and encoder_frames(self.model) == STOCK_ENCODER_FRAMES)

    def _features(self, clips: list[np.ndarray]) -> Any:
        """Log-mel features of the clips, each padded with silence to the model's window."""
        model = self.model
        features = self.processor.feature_extractor(clips, sampling_rate=SAMPLE_RATE, return_tensors="pt").input_features
        return features[..., : encoder_frames(model)].to(device=model.device, dtype=next(model.parameters()).dtype)

    def _silence_states(self, level: float, frames: int) -> Any:
        """Encoder output of a ``frames``-long window of silence at ``level``, cached per rounded level
        and length (an engine holds fixed weights: training's dev predictions make a new one each time)."""
        import torch

        from ..models import encoder_pass

        key = (level_key(level), frames)
        if key not in self._silence:
            mels = int(self.model.config.num_mel_bins)
            features = torch.from_numpy(silence_features(level, frames, mels)).to(self.model.device)
            self._silence[key] = encoder_pass.encode(self.model.get_encoder(), features)[0]
        return self._silence[key]

    def _short_states(self, clips: list[np.ndarray]) -> list[Any]:
        """Each clip's short pass completed with silence to its context (see the module docstring)."""
        import torch

        from ..models import encoder_pass

        frames = [self.window.encoder_frames(len(c)) for c in clips]
        states: list[Any] = [None] * len(clips)
        features = self._features(clips)
        for length in sorted(set(frames)):
            rows = [i for i, f in enumerate(frames) if f == length]
            short = encoder_pass.encode(self.model.get_encoder(), features[rows, :, :length])
            wanted = self.window.context_frames(length) // 2
            for row, out in zip(rows, short, strict=True):
                if out.shape[0] < wanted:
                    silence = self._silence_states(padding_level(features[row, :, :length].cpu().numpy()), 2 * wanted)
                    out = torch.cat([out, silence[out.shape[0] : wanted]])
                states[row] = out[:wanted]
        return states

    def _no_speech(self, hidden: Any, prompt: list[int]) -> list[float]:
        """openai/whisper's no-speech probability: the softmax at the <|startoftranscript|> position
        (before any forced token), read at the no-speech token."""
        import torch

        model = self.model
        full_prefix = torch.tensor([prompt + self._prefix], device=model.device).repeat(hidden.shape[0], 1)
        logits = model(encoder_outputs=(hidden,), decoder_input_ids=full_prefix).logits
        no_speech_token = int(model.generation_config.no_timestamps_token_id) - 1
        return [float(p) for p in logits[:, len(prompt)].float().softmax(-1)[:, no_speech_token].tolist()]

    def encode(self, clips: list[np.ndarray], prompt: list[int]) -> tuple[Any, list[float]]:
        """Encoder states and each clip's no-speech probability. The whole window gives one
        ``[batch, 1500, d]`` tensor; short passes give one ``[context, d]`` tensor per clip (their
        no-speech probability put back on the whole window's scale)."""
        import torch

        with torch.inference_mode(), _quiet_transformers():
            if not self._short():
                hidden = self.model.get_encoder()(self._features(clips)).last_hidden_state
                return hidden, self._no_speech(hidden, prompt)
            states = self._short_states(clips)
            no_speech = [0.0] * len(clips)
            for rows, hidden in _by_length(states):
                for row, p in zip(rows, self._no_speech(hidden, prompt), strict=True):
                    no_speech[row] = whole_window_no_speech(p) if shortened(hidden.shape[1]) else p
        return states, no_speech

    def select(self, encoded: tuple[Any, list[float]], rows: list[int]) -> tuple[Any, list[float]]:
        """The encoder states of ``rows`` (no second encoder pass)."""
        import torch

        hidden, no_speech = encoded
        with torch.inference_mode():
            picked = [hidden[i] for i in rows] if isinstance(hidden, list) else hidden[rows]
            return picked, [no_speech[i] for i in rows]

    def generate(self, encoded: tuple[Any, list[float]], prompt: list[int], bounds: list[int],
                 temperature: float, seed: int) -> list[Attempt]:
        """One ``generate`` call over the encoder states (one per context length for short passes)."""
        import torch
        from transformers.modeling_outputs import BaseModelOutput

        hidden, no_speech = encoded
        groups = _by_length(hidden) if isinstance(hidden, list) else [(list(range(len(bounds))), hidden)]
        attempts: list[Attempt | None] = [None] * len(bounds)
        with torch.inference_mode(), _quiet_transformers():
            for rows, states in groups:
                texts, logprobs, finished = _generate_texts(
                    self.model, self.processor, BaseModelOutput(last_hidden_state=states), [bounds[i] for i in rows],
                    self.decode, prompt, self._prefix, temperature, seed,
                )
                for k, i in enumerate(rows):
                    attempts[i] = Attempt(texts[k], logprobs[k], no_speech[i], temperature, finished[k])
        return [a for a in attempts if a is not None]


def _by_length(states: list[Any]) -> list[tuple[list[int], Any]]:
    """Per-clip ``[positions, d]`` tensors grouped by length: (rows, stacked ``[rows, positions, d]``)."""
    import torch

    lengths = sorted({int(x.shape[0]) for x in states})
    groups = []
    for length in lengths:
        rows = [i for i, x in enumerate(states) if int(x.shape[0]) == length]
        groups.append((rows, torch.stack([states[i] for i in rows])))
    return groups


def generate_bounded(
    model: Any,
    processor: Any,
    audios: Sequence[np.ndarray],
    decode: DecodeSettings,
    *,
    prompt_ids: Any = None,
    batch_size: int = BATCH_SIZE,
    seed: int = 0,
) -> list[Transcription]:
    """Transcribe clips with a Hugging Face Whisper model under the bounded-decoding rules.

    The path of training's dev predictions and of any caller holding a loaded model; it runs
    :func:`~atc_whisper.transcribe.decoding.decode_clips` over an :class:`HFEngine`.

    Args:
        model: A ``WhisperForConditionalGeneration`` (in train mode it decodes without
            dropout and is handed back in train mode).
        processor: Its ``WhisperProcessor``.
        audios: 16 kHz mono float32 clips, each no longer than the encoder window (30 s).
        decode: The ``[decode]`` settings.
        prompt_ids: Optional prompt from ``processor.get_prompt_ids(text)`` (starts with
            <|startofprev|>), e.g. known callsigns.
        batch_size: Clips per ``generate`` call (reduced automatically for long bounds).
        seed: Base seed for the sampling fallback, so results are reproducible.

    Returns:
        One :class:`Transcription` per clip, in input order (``engine="hf"``).

    Raises:
        AudioError: A clip is longer than the model's encoder window.
    """
    if not len(audios):
        return []
    engine = HFEngine(model, processor, decode, seed=seed, batch_size=batch_size)
    was_training = bool(getattr(model, "training", False))
    model.eval()
    try:
        return decode_clips(engine, audios, decode, prompt=_as_prompt_list(prompt_ids), seed=seed,
                            batch_size=batch_size)
    finally:
        if was_training:
            model.train()




def _generate_texts(
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
