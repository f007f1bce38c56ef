"""The CTranslate2 engine: faster-whisper's model wrapper under the shared decoding loop.

CTranslate2 runs Whisper int8 on a CPU about 1.5x faster than PyTorch fp32 (tiny.en, measured
here). faster-whisper's own ``transcribe`` is not used: the loop of
:func:`~atc_whisper.transcribe.decoding.decode_clips` applies exactly the bound, fallback and
flags the Hugging Face engine gets, and keeps the no-speech probability of windows it judges
silent (faster-whisper drops those segments). This module supplies only the log-mel features,
the encoder and one ``generate`` call per temperature.

**Short encoder passes** (``decode.encoder_pad_s`` below 30, CPU, opt-in). Whisper's encoder always takes a 30 s
window, and for a radio transmission of a few seconds most of it is padding: the encoder pass
costs as much as a 30 s clip, several times the decoding. Here only the clip and
``encoder_pad_s`` of silence after it are encoded (the log-mel of those frames is exactly that of
the padded window), and the encoder output is completed to Whisper's 1500 positions with the
output of a window of silence at the clip's padding level (one encoder pass per level, cached).
The decoder still attends to a full window whose speech starts at position 0, as it was trained.
Without that completion (a truncated encoder output) tiny.en drops words; with it, measured on
synthetic radio and clean transmissions (README, *Transcribing radio archives*), WER is no worse
than with the full window and the encoder costs a quarter. It is not the same computation, and
single transcripts change (some of the test suite's callsigns come out wrong), so the default,
``encoder_pad_s = 30``, encodes the whole window; short passes are opt-in.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..audio.io import SAMPLE_RATE
from ..config import DecodeSettings
from ..errors import ModelError
from .decoding import FRAMES_PER_SECOND, MAX_TARGET_POSITIONS, Attempt, BoundedEngine

#: Mel frames of Whisper's stock 30 s window (the only window length Whisper was trained on).
STOCK_ENCODER_FRAMES = 3000
#: Short encoder inputs are rounded up to this many mel frames (1 s), so a batch's clips share one
#: length and padding levels repeat.
FRAME_STEP = 100
#: Padding levels of the silence completion are rounded to this step (log-mel units, after
#: Whisper's scaling; a clip's level is its loudest frame minus 2): a handful of levels covers
#: real recordings, each costing one full encoder pass the first time it is met.
LEVEL_STEP = 0.25
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
        self.model_dir = Path(ct2_dir)
        self.decode = decode
        self.seed = seed
        self.batch_size = decode.batch_size
        self.workers = workers
        self.device = device
        self._silence: dict[float, np.ndarray] = {}  # padding level -> encoder output of a silent window
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

    def encoder_frames(self, longest_samples: int) -> int:
        """Mel frames encoded for a batch whose longest clip has ``longest_samples`` samples."""
        if self.device != "cpu" or self.decode.encoder_pad_s >= self.window_s:
            return STOCK_ENCODER_FRAMES
        needed = longest_samples / (SAMPLE_RATE // FRAMES_PER_SECOND) + self.decode.encoder_pad_s * FRAMES_PER_SECOND
        return int(min(STOCK_ENCODER_FRAMES, -(-needed // FRAME_STEP) * FRAME_STEP))

    def _silence_states(self, level: float) -> np.ndarray:
        """Encoder output of a window whose every frame is at ``level`` (silence padding), cached."""
        level = round(level / LEVEL_STEP) * LEVEL_STEP
        if level not in self._silence:
            features = np.full((1, self.model.feature_extractor.mel_filters.shape[0], STOCK_ENCODER_FRAMES), level,
                               np.float32)
            self._silence[level] = np.array(self.model.encode(features))[0]
        return self._silence[level]

    def encode(self, clips: list[np.ndarray], prompt: list[int]) -> tuple[np.ndarray, Any]:
        """Features and encoder output of the clips (a short pass completed with silence, see the module docstring)."""
        frames = self.encoder_frames(max(len(c) for c in clips))
        features = np.stack([self._features(c, frames) for c in clips])
        if frames == STOCK_ENCODER_FRAMES:
            return features, self.model.encode(features)
        short = np.array(self.model.encode(features))
        positions = short.shape[1]
        full = np.empty((len(clips), STOCK_ENCODER_FRAMES // 2, short.shape[2]), dtype=np.float32)
        for row, clip_features in enumerate(features):
            full[row, :positions] = short[row]
            # The last frame is padding (encoder_pad_s > 0 leaves some): its value is the level.
            full[row, positions:] = self._silence_states(float(clip_features[:, -1].min()))[positions:]
        return features, full

    def _storage(self, encoded: Any) -> Any:
        import ctranslate2

        if isinstance(encoded, np.ndarray):
            return ctranslate2.StorageView.from_array(np.ascontiguousarray(encoded))
        return encoded

    def select(self, encoded: tuple[np.ndarray, Any], rows: list[int]) -> tuple[np.ndarray, Any]:
        """The encoder output of ``rows``: indexed when it is held as an array (CPU), else encoded
        again (a CTranslate2 StorageView on a GPU cannot be indexed). A retry of a whole batch
        (always so for one clip: live mode) reuses the output and never comes here."""
        features, states = encoded
        if isinstance(states, np.ndarray):
            return features[rows], states[rows]
        if self.device == "cpu":
            return features[rows], np.array(states)[rows]
        return features[rows], self.model.encode(features[rows])

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
            self._storage(encoded[1]),
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
