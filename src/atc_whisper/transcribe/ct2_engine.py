"""The CTranslate2 engine: faster-whisper's model wrapper under the shared decoding loop.

CTranslate2 runs Whisper int8 on a CPU about 1.5x faster than PyTorch fp32 (tiny.en, measured
here). faster-whisper's own ``transcribe`` is not used: the loop of
:func:`~atc_whisper.transcribe.decoding.decode_clips` applies exactly the bound, fallback and
flags the Hugging Face engine gets, and keeps the no-speech probability of windows it judges
silent (faster-whisper drops those segments). This module supplies only the log-mel features,
the encoder and one ``generate`` call per temperature.

**Short encoder passes** (CPU, the default; ``decode.encoder_pad_s = 30`` turns them off): only
the clip and ``encoder_pad_s`` of silence after it are encoded, and the output is completed with
the encoder output of silence to ``decode.context_s``; :mod:`~atc_whisper.transcribe.window` holds
the rules, which training shares. Measured on the real-size run's realistic test clips (README,
*Short encoder passes*): WER no worse than the whole window, and decoding four to seven times
faster. It is not the same computation as openai/whisper's, and single transcripts change; the
whole window is ``encoder_pad_s = 30`` with ``context_s = 30``.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np

from ..audio.io import SAMPLE_RATE
from ..config import DecodeSettings
from ..errors import ModelError
from .decoding import MAX_TARGET_POSITIONS, Attempt, BoundedEngine
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
        threads: CPU threads per worker (0: CTranslate2's default).
        seed: Base seed of the sampling fallback.
        workers: Batches decoded at once (CTranslate2's ``inter_threads``): ``decode_clips``
            runs that many batches in parallel threads.

    Raises:
        ModelError: CTranslate2 cannot load the folder with that compute type on that device.
    """

    name = "ct2"
    window_s = STOCK_ENCODER_FRAMES / FRAMES_PER_SECOND
    max_new_tokens = CT2_MAX_NEW_TOKENS

    def __init__(
        self, ct2_dir: Path, decode: DecodeSettings, *, device: str = "cpu", threads: int = 0, seed: int = 0,
        workers: int = 1,
    ) -> None:
        from faster_whisper import WhisperModel
        from faster_whisper.tokenizer import Tokenizer

        compute_type = decode.compute_type
        try:
            self.model = WhisperModel(str(ct2_dir), device=device, compute_type=compute_type, cpu_threads=threads,
                                      num_workers=workers)
        except (RuntimeError, ValueError) as exc:
            raise ModelError(
                f"CTranslate2 cannot load {ct2_dir} with compute type {compute_type!r} on {device} ({exc}); "
                "try --set decode.compute_type=int8 on CPU, or --engine hf."
            ) from None
        # The mel projection in float64: in float32 its sums depend on the BLAS thread count (1e-7),
        # which the int8 encoder magnifies into another transcript - a Ray worker (one OpenMP
        # thread) would then write something else than the local path. Rounded back to float32,
        # the features no longer depend on the threads.
        extractor = self.model.feature_extractor
        extractor.mel_filters = np.asarray(extractor.mel_filters, dtype=np.float64)
        self.model_dir = Path(ct2_dir)
        self.decode = decode
        self.seed = seed
        self.batch_size = decode.batch_size
        self.workers = workers
        self.device = device
        self.window = ShortWindow.of(decode)
        self._silence: dict[tuple[float, int], np.ndarray] = {}  # (level, frames) -> encoder output of silence
        self._silence_lock = threading.Lock()  # the parallel workers would otherwise encode a new level twice
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

    def _features(self, clip: np.ndarray, frames: int = STOCK_ENCODER_FRAMES) -> np.ndarray:
        """The first ``frames`` log-mel frames of the clip padded with silence to 30 s, as
        openai/whisper and transformers compute them (and as training saw them). faster-whisper
        instead pads the finished log-mel with zeros, a level that is not silence after
        normalisation. Only the samples those frames need are transformed: the padding's level
        follows from the clip's loudest frame, so the result is the same."""
        samples = frames * (SAMPLE_RATE // FRAMES_PER_SECOND)
        padded = np.pad(clip, (0, max(0, samples - len(clip))))
        return np.asarray(self.model.feature_extractor(padded)[:, :frames], dtype=np.float32)

    def _short(self) -> bool:
        """Whether short passes and the shorter context apply (CPU: the encoder output is an array)."""
        return self.device == "cpu"

    def encoder_frames(self, samples: int) -> int:
        """Mel frames encoded for a clip of ``samples`` samples (:class:`ShortWindow`; the whole
        window on a GPU)."""
        return self.window.encoder_frames(samples) if self._short() else STOCK_ENCODER_FRAMES

    def context_frames(self, encoded_frames: int) -> int:
        """Mel frames' worth of encoder output the decoder attends to (:class:`ShortWindow`)."""
        return self.window.context_frames(encoded_frames) if self._short() else STOCK_ENCODER_FRAMES

    def _silence_states(self, level: float, frames: int) -> np.ndarray:
        """Encoder output of a ``frames``-long window whose every frame is at ``level`` (silence
        padding), cached per rounded level and length."""
        key = (level_key(level), frames)
        with self._silence_lock:
            if key not in self._silence:
                mels = self.model.feature_extractor.mel_filters.shape[0]
                self._silence[key] = np.array(self.model.encode(silence_features(level, frames, mels)))[0]
            return self._silence[key]

    def encode(self, clips: list[np.ndarray], prompt: list[int]) -> tuple[np.ndarray | None, Any]:
        """The encoder output of the clips: on a GPU (or with the whole window) features and one
        StorageView; on a CPU one array per clip, its own short pass completed with silence to its
        own context (see the module docstring). Clips of the same length share an encoder call."""
        frames = [self.encoder_frames(len(c)) for c in clips]
        if not self._short() or min(frames) == STOCK_ENCODER_FRAMES:  # the whole window, as openai/whisper
            features = np.stack([self._features(c) for c in clips])
            return features, self.model.encode(features)
        states: list[np.ndarray | None] = [None] * len(clips)
        for length in sorted(set(frames)):
            rows = [i for i, f in enumerate(frames) if f == length]
            features = np.stack([self._features(clips[i], length) for i in rows])
            short = np.array(self.model.encode(features))
            context = self.context_frames(length)
            positions, wanted = short.shape[1], context // 2
            for row, clip_features, out in zip(rows, features, short, strict=True):
                if positions >= wanted:
                    states[row] = np.ascontiguousarray(out[:wanted])
                    continue
                full = np.empty((wanted, short.shape[2]), dtype=np.float32)
                full[:positions] = out
                full[positions:] = self._silence_states(padding_level(clip_features), context)[positions:wanted]
                states[row] = full
        return None, states

    def _storage(self, encoded: Any) -> Any:
        import ctranslate2

        if isinstance(encoded, np.ndarray):
            return ctranslate2.StorageView.from_array(np.ascontiguousarray(encoded))
        return encoded

    def select(self, encoded: tuple[np.ndarray | None, Any], rows: list[int]) -> tuple[np.ndarray | None, Any]:
        """The encoder output of ``rows``: picked from the per-clip arrays (CPU), else encoded
        again (a CTranslate2 StorageView on a GPU cannot be indexed). A retry of a whole batch
        (always so for one clip: live mode) reuses the output and never comes here."""
        features, states = encoded
        if isinstance(states, list):
            return None, [states[i] for i in rows]
        assert features is not None
        if self.device == "cpu":
            return features[rows], np.array(states)[rows]
        return features[rows], self.model.encode(features[rows])

    def generate(self, encoded: tuple[np.ndarray | None, Any], prompt: list[int], bounds: list[int],
                 temperature: float, seed: int) -> list[Attempt]:
        """One ``generate`` call per context length over the encoder output (one call when all
        clips share it, as short transmissions do)."""
        states = encoded[1]
        if not isinstance(states, list):
            return self._generate(states, prompt, bounds, temperature, seed, shortened=False)
        attempts: list[Attempt | None] = [None] * len(states)
        for positions in sorted({len(x) for x in states}):
            rows = [i for i, x in enumerate(states) if len(x) == positions]
            group = self._generate(np.stack([states[i] for i in rows]), prompt, [bounds[i] for i in rows],
                                   temperature, seed, shortened=shortened(positions))
            for i, attempt in zip(rows, group, strict=True):
                attempts[i] = attempt
        return [a for a in attempts if a is not None]

    def _generate(self, states: Any, prompt: list[int], bounds: list[int], temperature: float, seed: int, *,
                  shortened: bool) -> list[Attempt]:
        """One CTranslate2 ``generate`` call (``shortened``: the context is cut, so the no-speech
        probability is put back on the whole window's scale)."""
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
            self._storage(states),
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
                no_speech_prob=whole_window_no_speech(result.no_speech_prob) if shortened else float(result.no_speech_prob),
                temperature=temperature,
                finished=finished,
            ))
        return attempts
