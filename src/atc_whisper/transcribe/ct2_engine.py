"""The CTranslate2 engine: faster-whisper's model wrapper under the shared decoding loop.

CTranslate2 runs Whisper int8 on a CPU about 1.5x faster than PyTorch fp32 (tiny.en, measured
here). faster-whisper's own ``transcribe`` is not used: the loop of
:func:`~atc_whisper.transcribe.decoding.decode_clips` applies exactly the bound, fallback and
flags the Hugging Face engine gets, and keeps the no-speech probability of windows it judges
silent (faster-whisper drops those segments). This module supplies only the log-mel features,
the encoder and one ``generate`` call per temperature.

**Short encoder passes** (CPU, the default; ``decode.encoder_pad_s = 30`` turns them off).
Whisper's encoder always takes a 30 s window, and for a radio transmission of a few seconds most
of it is padding: the encoder pass costs as much as a 30 s clip, several times the decoding. Here
only the clip and ``encoder_pad_s`` of silence after it are encoded (the log-mel of those frames
is exactly that of the padded window), and the encoder output is completed with the output of a
window of silence at the clip's padding level (one encoder pass per level, cached). The decoder
still attends to a window whose speech starts at position 0, as it was trained. Without that
completion (the encoder output cut at the clip and its pad) tiny.en drops words.

**A shorter context** (``decode.context_s``, 10 s by default on CPU). The decoder's
cross-attention keys and values are computed over every encoder position before the first token,
and for a short transmission that costs more than generating its text (tiny.en, batch 8: 0.26 s
over 1500 positions, 0.04 s over 500, then ~10 ms per token). So the completed output is kept to
``context_s`` (at least the clip and its pad), the silence completion coming from a silent window
of that length. The no-speech probability runs higher with a shorter context, so it is reported on
the whole window's scale (:data:`NO_SPEECH_LOGIT_SHIFT`). Measured on the real-size run's
realistic test clips (README, *Short encoder passes*): WER no worse than the whole window, and
decoding four to seven times faster. It is not the same computation as openai/whisper's, and
single transcripts change; the whole window is ``encoder_pad_s = 30`` with ``context_s = 30``,
and the Hugging Face engine always decodes it.
"""

from __future__ import annotations

import math
import threading
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
#: real recordings, each costing one encoder pass over a silent context-long window the first time it is met.
LEVEL_STEP = 0.25
#: With a context shorter than the whole window, tiny.en's no-speech probability runs higher, by a
#: median of 1.03 in log-odds on 139 speech clips and 0.58 on 64 clips of radio static (10 s
#: context against the whole window, measured with base tiny.en): uncorrected, 25 of 278 speech
#: clips would pass ``decode.no_speech_threshold`` and be emptied, against 1 with the whole
#: window. The reported probability is shifted back by this much, so the threshold keeps its
#: openai/whisper meaning: then 1 of 278 speech clips and 60 of 64 static clips are judged silent
#: (whole window: 1 and 54).
NO_SPEECH_LOGIT_SHIFT = 1.0
#: CTranslate2 (4.8) lets Whisper generate at most ``min(max_length / 2, max_length - prompt)``
#: tokens (OpenNMT/CTranslate2#1856), i.e. never more than 224.
CT2_MAX_NEW_TOKENS = MAX_TARGET_POSITIONS // 2


def ct2_max_length(new_tokens: int, prompt_tokens: int) -> int:
    """The ``max_length`` that lets CTranslate2 generate ``new_tokens`` after a prompt.

    CTranslate2 counts decoding steps from the prompt's last token, hence the ``- 1``.
    """
    return min(MAX_TARGET_POSITIONS, max(2 * new_tokens, new_tokens + prompt_tokens - 1))


def whole_window_no_speech(probability: float) -> float:
    """A no-speech probability read with a shortened context, on the whole window's scale
    (:data:`NO_SPEECH_LOGIT_SHIFT`)."""
    p = min(max(float(probability), 1e-7), 1 - 1e-7)
    return 1.0 / (1.0 + math.exp(-(math.log(p / (1 - p)) - NO_SPEECH_LOGIT_SHIFT)))


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
        """Mel frames encoded for a clip of ``samples`` samples (its own length: a clip's
        transcript does not depend on the clips batched with it)."""
        if not self._short() or self.decode.encoder_pad_s >= self.window_s:
            return STOCK_ENCODER_FRAMES
        needed = samples / (SAMPLE_RATE // FRAMES_PER_SECOND) + self.decode.encoder_pad_s * FRAMES_PER_SECOND
        return int(min(STOCK_ENCODER_FRAMES, -(-needed // FRAME_STEP) * FRAME_STEP))

    def context_frames(self, encoded_frames: int) -> int:
        """Mel frames' worth of encoder output the decoder attends to for a clip encoded over
        ``encoded_frames`` (``decode.context_s``, at least what was encoded, in ``FRAME_STEP``s)."""
        if not self._short():
            return STOCK_ENCODER_FRAMES
        wanted = -(-round(self.decode.context_s * FRAMES_PER_SECOND) // FRAME_STEP) * FRAME_STEP
        return int(min(STOCK_ENCODER_FRAMES, max(encoded_frames, wanted)))

    def _silence_states(self, level: float, frames: int) -> np.ndarray:
        """Encoder output of a ``frames``-long window whose every frame is at ``level`` (silence
        padding), cached per rounded level and length."""
        key = (round(level / LEVEL_STEP) * LEVEL_STEP, frames)
        with self._silence_lock:
            if key not in self._silence:
                mels = self.model.feature_extractor.mel_filters.shape[0]
                features = np.full((1, mels, frames), key[0], np.float32)
                self._silence[key] = np.array(self.model.encode(features))[0]
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
                # The last frame is padding (encoder_pad_s > 0 leaves some): its value is the level.
                full[positions:] = self._silence_states(float(clip_features[:, -1].min()), context)[positions:wanted]
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
                                   temperature, seed, shortened=positions < STOCK_ENCODER_FRAMES // 2)
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
