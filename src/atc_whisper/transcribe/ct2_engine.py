"""The CTranslate2 engine: faster-whisper's model wrapper under the shared decoding loop.

CTranslate2 runs Whisper int8 on a CPU about 1.5x faster than PyTorch fp32 (tiny.en, measured
here). faster-whisper's own ``transcribe`` is not used: the loop of
:func:`~atc_whisper.transcribe.decoding.decode_clips` applies exactly the bound, fallback and
flags the Hugging Face engine gets, and keeps the no-speech probability of windows it judges
silent (faster-whisper drops those segments). This module supplies only the log-mel features,
the encoder and one ``generate`` call per temperature.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..audio.io import SAMPLE_RATE
from ..config import DecodeSettings
from ..errors import ModelError
from .decoding import FRAMES_PER_SECOND, MAX_TARGET_POSITIONS, Attempt, BoundedEngine

#: Mel frames of Whisper's stock 30 s window (the only input length CTranslate2 runs).
STOCK_ENCODER_FRAMES = 3000
#: CTranslate2 (4.8) lets Whisper generate at most ``min(max_length / 2, max_length - prompt)``
#: tokens (OpenNMT/CTranslate2#1856), i.e. never more than 224.
CT2_MAX_NEW_TOKENS = MAX_TARGET_POSITIONS // 2


def ct2_max_length(new_tokens: int, prompt_tokens: int) -> int:
    """The ``max_length`` that lets CTranslate2 generate ``new_tokens`` after a prompt.

    CTranslate2 counts decoding steps from the prompt's last token, hence the ``- 1``.
    """
    return min(MAX_TARGET_POSITIONS, max(2 * new_tokens, new_tokens + prompt_tokens - 1))


class CT2Engine(BoundedEngine):
    """A CTranslate2 Whisper folder (an export, a faster-whisper model, the bundled weights).

    Args:
        ct2_dir: The folder (``model.bin``, ``config.json``, ``tokenizer.json``).
        decode: The ``[decode]`` settings (``compute_type``: float16 weights are converted to
            it on load, e.g. int8 on a CPU).
        device: ``cpu`` or ``cuda``.
        threads: CPU threads (0: CTranslate2's default).
        seed: Base seed of the sampling fallback.

    Raises:
        ModelError: CTranslate2 cannot load the folder with that compute type on that device.
    """

    name = "ct2"
    window_s = STOCK_ENCODER_FRAMES / FRAMES_PER_SECOND
    max_new_tokens = CT2_MAX_NEW_TOKENS

    def __init__(
        self, ct2_dir: Path, decode: DecodeSettings, *, device: str = "cpu", threads: int = 0, seed: int = 0
    ) -> None:
        from faster_whisper import WhisperModel
        from faster_whisper.tokenizer import Tokenizer

        compute_type = decode.compute_type
        try:
            self.model = WhisperModel(str(ct2_dir), device=device, compute_type=compute_type, cpu_threads=threads)
        except (RuntimeError, ValueError) as exc:
            raise ModelError(
                f"CTranslate2 cannot load {ct2_dir} with compute type {compute_type!r} on {device} ({exc}); "
                "try --set decode.compute_type=int8 on CPU, or --engine hf."
            ) from None
        self.model_dir = Path(ct2_dir)
        self.decode = decode
        self.seed = seed
        self.tokenizer = Tokenizer(
            self.model.hf_tokenizer, self.model.model.is_multilingual, task="transcribe", language="en"
        )
        self._prefix = [*self.tokenizer.sot_sequence, self.tokenizer.no_timestamps]
        self.prefix_tokens = len(self._prefix)

    def prompt_tokens(self, prompt: str | None) -> list[int]:
        """``[<|startofprev|>, *tokens of " " + prompt]``, or ``[]`` without a prompt."""
        if not prompt or not prompt.strip():
            return []
        return [self.tokenizer.sot_prev, *self.tokenizer.encode(" " + prompt.strip())]

    def _features(self, clip: np.ndarray) -> np.ndarray:
        """Log-mel features of the clip padded with silence to 30 s, as openai/whisper and
        transformers compute them (and as training saw them). faster-whisper instead pads the
        finished log-mel with zeros, a level that is not silence after normalisation.
        """
        samples = int(self.window_s * SAMPLE_RATE)
        padded = np.pad(clip, (0, max(0, samples - len(clip))))
        return np.asarray(self.model.feature_extractor(padded)[:, :STOCK_ENCODER_FRAMES], dtype=np.float32)

    def encode(self, clips: list[np.ndarray], prompt: list[int]) -> tuple[np.ndarray, Any]:
        """Features and encoder output of the clips."""
        features = np.stack([self._features(c) for c in clips])
        return features, self.model.encode(features)

    def select(self, encoded: tuple[np.ndarray, Any], rows: list[int]) -> tuple[np.ndarray, Any]:
        """Encode ``rows`` again: a CTranslate2 encoder output cannot be indexed. A retry of a
        whole batch (always so for one clip: live mode) reuses the output and never comes here."""
        features = encoded[0][rows]
        return features, self.model.encode(features)

    def generate(self, encoded: tuple[np.ndarray, Any], prompt: list[int], bounds: list[int],
                 temperature: float, seed: int) -> list[Attempt]:
        """One ``generate`` call over the encoder output."""
        import ctranslate2

        if temperature > 0:
            # Measured with ctranslate2 4.8: the seed takes effect when a model's worker thread
            # first samples; later calls continue that thread's sequence. So a freshly loaded
            # model repeats its fallbacks call for call, but one call's sample depends on the
            # sampling calls made before it in the process.
            ctranslate2.set_random_seed(seed)
            options: dict[str, Any] = {"beam_size": 1, "sampling_topk": 0, "sampling_temperature": temperature}
        else:
            options = {"beam_size": self.decode.beam_size}
        tokens_in = [*prompt, *self._prefix]
        outputs = self.model.model.generate(
            encoded[1],
            [tokens_in] * len(bounds),
            max_length=ct2_max_length(max(bounds), len(tokens_in)),
            return_scores=True,
            return_no_speech_prob=True,
            suppress_blank=True,
            suppress_tokens=[-1],  # -1: the model's own list of non-speech symbols
            **options,
        )
        attempts = []
        for bound, result in zip(bounds, outputs, strict=True):
            tokens = result.sequences_ids[0]
            # CTranslate2 reports the length-normalised cumulative log-probability; rescale to
            # openai/whisper's average, which counts end-of-text in the denominator.
            avg_logprob = result.scores[0] * len(tokens) / (len(tokens) + 1)
            finished = len(tokens) < bound
            attempts.append(Attempt(
                text=self.tokenizer.decode(tokens[:bound]),  # the batch may have run on for a longer clip
                avg_logprob=float(avg_logprob),
                no_speech_prob=float(result.no_speech_prob),
                temperature=temperature,
                finished=finished,
            ))
        return attempts
