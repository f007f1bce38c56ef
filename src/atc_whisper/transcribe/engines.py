"""Two inference engines behind one interface: CTranslate2 (fast, int8 on CPU) and transformers.

Both take 16 kHz mono clips of at most one Whisper window and return the same
:class:`~atc_whisper.transcribe.types.Transcription`, decoded under the same rules
(``decoding.py``: duration bound, temperature fallback, loop cut, confidence flags), so
file transcription, live mode and evaluation can switch engines without changing anything
else. CTranslate2 is the default when installed: measured here it is ~1.5x faster than
PyTorch fp32 on CPU for tiny.en. The Hugging Face engine runs any model transformers can
load, including ones whose input length was changed by training.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from ..config import DecodeSettings, Settings
from ..errors import ModelError
from ..log import get_logger
from ..workspace import Workspace
from .decoding import (
    FRAMES_PER_SECOND,
    MAX_TARGET_POSITIONS,
    SAMPLE_RATE,
    Attempt,
    encoder_frames,
    finish,
    generate_bounded,
    max_new_tokens_for,
    needs_fallback,
    pick_best,
)
from .types import Transcription

log = get_logger(__name__)

ENGINES = ("auto", "ct2", "hf")
#: Key a training run writes into a saved model's config.json when it changed the encoder's
#: input length (mel frames); stock Whisper takes 3000 frames (30 s).
ENCODER_FRAMES_KEY = "atc_whisper_encoder_frames"
STOCK_ENCODER_FRAMES = 3000
#: CTranslate2 (4.8) lets Whisper generate at most ``min(max_length / 2, max_length - prompt)``
#: tokens (OpenNMT/CTranslate2#1856), i.e. never more than 224.
CT2_MAX_NEW_TOKENS = MAX_TARGET_POSITIONS // 2


def ct2_max_length(new_tokens: int, prompt_tokens: int) -> int:
    """The ``max_length`` that lets CTranslate2 generate ``new_tokens`` after a prompt.

    CTranslate2 counts decoding steps from the prompt's last token, hence the ``- 1``.
    """
    return min(MAX_TARGET_POSITIONS, max(2 * new_tokens, new_tokens + prompt_tokens - 1))


class Engine(Protocol):
    """What every engine offers."""

    name: str
    #: Longest clip one call accepts, seconds (30 for stock Whisper).
    window_s: float

    def transcribe(self, audio: np.ndarray, *, prompt: str | None = None) -> Transcription:
        """Transcribe one 16 kHz mono clip no longer than ``window_s``."""
        ...

    def transcribe_batch(self, audios: list[np.ndarray], *, prompt: str | None = None) -> list[Transcription]:
        """Transcribe several clips (batched where the engine can)."""
        ...


def _check_clip(audio: np.ndarray, window_s: float) -> np.ndarray:
    audio = np.asarray(audio, dtype=np.float32)
    if audio.ndim != 1:
        raise ValueError(f"expected mono audio (1-D array), got shape {audio.shape}")
    if len(audio) / SAMPLE_RATE > window_s + 1e-6:
        raise ValueError(
            f"clip lasts {len(audio) / SAMPLE_RATE:.1f} s, longer than the {window_s:.0f} s window; "
            "use atc_whisper.transcribe.files.transcribe_audio for long audio"
        )
    return audio


class HFEngine:
    """Hugging Face transformers ``WhisperForConditionalGeneration`` + :func:`generate_bounded`."""

    name = "hf"

    def __init__(self, model: Any, processor: Any, decode: DecodeSettings) -> None:
        """Wrap an already loaded model and processor (see :func:`load_engine`)."""
        self.model = model
        self.processor = processor
        self.decode = decode
        self.window_s = encoder_frames(model) / FRAMES_PER_SECOND

    def _prompt_ids(self, prompt: str | None) -> Any:
        if not prompt or not prompt.strip():
            return None
        return self.processor.get_prompt_ids(prompt.strip(), return_tensors="np")

    def transcribe(self, audio: np.ndarray, *, prompt: str | None = None) -> Transcription:
        """Transcribe one clip; see :class:`Engine`."""
        return self.transcribe_batch([audio], prompt=prompt)[0]

    def transcribe_batch(self, audios: list[np.ndarray], *, prompt: str | None = None) -> list[Transcription]:
        """Transcribe clips in batches with :func:`generate_bounded`."""
        clips = [_check_clip(a, self.window_s) for a in audios]
        return generate_bounded(self.model, self.processor, clips, self.decode, prompt_ids=self._prompt_ids(prompt))


class CT2Engine:
    """CTranslate2 through faster-whisper's model wrapper, decoded under the shared rules.

    faster-whisper's own ``transcribe`` is not used: the loop below applies exactly the
    bound, fallback and flags of ``decoding.py``, and keeps the no-speech probability of
    windows it judges silent (faster-whisper drops those segments). Clips are decoded in
    batches; only clips that need the temperature fallback are decoded again.
    """

    name = "ct2"
    window_s = STOCK_ENCODER_FRAMES / FRAMES_PER_SECOND
    #: Clips per CTranslate2 call in :meth:`transcribe_batch`.
    batch_size = 8

    def __init__(
        self, ct2_dir: Path, decode: DecodeSettings, *, device: str = "cpu", threads: int = 0, seed: int = 0
    ) -> None:
        """Load a CTranslate2 Whisper folder (see :func:`load_engine`)."""
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

    def _prompt(self, prompt: str | None) -> list[int]:
        tokens: list[int] = []
        if prompt and prompt.strip():
            text_tokens = self.tokenizer.encode(" " + prompt.strip())
            keep = MAX_TARGET_POSITIONS // 2 - 2
            tokens = [self.tokenizer.sot_prev, *text_tokens[-keep:]]
        return [*tokens, *self.tokenizer.sot_sequence, self.tokenizer.no_timestamps]

    def _features(self, clip: np.ndarray) -> np.ndarray:
        """Log-mel features of the clip padded with silence to 30 s, as openai/whisper and
        transformers compute them (and as training saw them). faster-whisper instead pads the
        finished log-mel with zeros, a level that is not silence after normalisation.
        """
        samples = int(self.window_s * SAMPLE_RATE)
        padded = np.pad(clip, (0, max(0, samples - len(clip))))
        return np.asarray(self.model.feature_extractor(padded)[:, :STOCK_ENCODER_FRAMES], dtype=np.float32)

    def transcribe(self, audio: np.ndarray, *, prompt: str | None = None) -> Transcription:
        """Transcribe one clip; see :class:`Engine`."""
        return self.transcribe_batch([audio], prompt=prompt)[0]

    def transcribe_batch(self, audios: list[np.ndarray], *, prompt: str | None = None) -> list[Transcription]:
        """Transcribe clips, ``batch_size`` per CTranslate2 call."""
        results: list[Transcription] = []
        for first in range(0, len(audios), self.batch_size):
            results += self._decode_batch(audios[first : first + self.batch_size], prompt)
        return results

    def _decode_batch(self, audios: list[np.ndarray], prompt: str | None) -> list[Transcription]:
        import ctranslate2

        started = time.perf_counter()
        clips = [_check_clip(a, self.window_s) for a in audios]
        durations = [len(c) / SAMPLE_RATE for c in clips]
        features = np.stack([self._features(c) for c in clips])
        prompt_tokens = self._prompt(prompt)
        bounds = [min(CT2_MAX_NEW_TOKENS, max_new_tokens_for(d, self.decode, prefix_tokens=len(prompt_tokens)))
                  for d in durations]
        attempts: list[list[Attempt]] = [[] for _ in clips]
        latency = [0.0] * len(clips)
        active = list(range(len(clips)))
        encoder_output: Any = None
        encoded_for = 0
        for temperature in self.decode.temperatures:
            t0 = time.perf_counter()
            if temperature > 0:
                ctranslate2.set_random_seed(self.seed)  # reproducible fallback, like the HF engine
                options: dict[str, Any] = {"beam_size": 1, "sampling_topk": 0, "sampling_temperature": temperature}
            else:
                options = {"beam_size": self.decode.beam_size}
            # A fallback reuses the encoder output when every clip of the batch needs one (always
            # so for a single clip: live mode, where it saves a third of the retry); for a subset
            # the encoder runs again on those clips only.
            if encoder_output is None or len(active) != encoded_for:
                encoder_output = self.model.encode(features[active])
                encoded_for = len(active)
            outputs = self.model.model.generate(
                encoder_output,
                [prompt_tokens] * len(active),
                max_length=ct2_max_length(max(bounds[i] for i in active), len(prompt_tokens)),
                return_scores=True,
                return_no_speech_prob=True,
                suppress_blank=True,
                suppress_tokens=[-1],  # -1: the model's own list of non-speech symbols
                **options,
            )
            share = (time.perf_counter() - t0) / len(active)
            still = []
            for i, result in zip(active, outputs, strict=True):
                tokens = result.sequences_ids[0]
                # CTranslate2 reports the length-normalised cumulative log-probability; rescale to
                # openai/whisper's average, which counts end-of-text in the denominator.
                avg_logprob = result.scores[0] * len(tokens) / (len(tokens) + 1)
                finished = len(tokens) < bounds[i]
                if len(tokens) > bounds[i]:  # the batch ran on for a longer clip
                    tokens = tokens[: bounds[i]]
                attempt = Attempt(
                    text=self.tokenizer.decode(tokens),
                    avg_logprob=float(avg_logprob),
                    no_speech_prob=float(result.no_speech_prob),
                    temperature=temperature,
                    finished=finished,
                )
                attempts[i].append(attempt)
                latency[i] += share
                if needs_fallback(attempt, self.decode):
                    still.append(i)
            active = still
            if not active:
                break
        features_share = (time.perf_counter() - started - sum(latency)) / len(clips)
        return [
            finish(pick_best(attempts[i], self.decode), self.decode, duration_s=durations[i],
                   latency_s=latency[i] + features_share, engine=self.name)
            for i in range(len(clips))
        ]


def ct2_available() -> bool:
    """Whether CTranslate2 and faster-whisper can be imported."""
    try:
        import ctranslate2  # noqa: F401
        import faster_whisper  # noqa: F401
    except ImportError:
        return False
    return True


def encoder_frames_of(hf_dir: Path) -> int:
    """Mel frames the saved model's encoder takes (from the training marker or the config)."""
    try:
        config = json.loads((Path(hf_dir) / "config.json").read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return STOCK_ENCODER_FRAMES
    if ENCODER_FRAMES_KEY in config:
        return int(config[ENCODER_FRAMES_KEY])
    return int(config.get("max_source_positions", 1500)) * 2


def _device(requested: str, engine: str) -> str:
    if engine == "hf":
        from ..models.load import resolve_device

        return resolve_device(requested)
    import ctranslate2

    has_gpu = ctranslate2.get_cuda_device_count() > 0
    if requested == "auto":
        return "cuda" if has_gpu else "cpu"
    if requested.startswith("cuda") and not has_gpu:
        raise ModelError(f"device '{requested}' was requested but CTranslate2 sees no CUDA GPU; use --device cpu.")
    return requested


def choose_engine(requested: str | None, settings: Settings, hf_dir: Path | None = None) -> str:
    """Resolve "auto": ct2 when importable and the model has the stock input length, else hf."""
    name = requested or settings.decode.engine
    if name not in ENGINES:
        raise ModelError(f"unknown engine {name!r}; choose one of {', '.join(ENGINES)}.")
    frames = encoder_frames_of(hf_dir) if hf_dir is not None else STOCK_ENCODER_FRAMES
    if name == "ct2":
        if not ct2_available():
            raise ModelError("the ct2 engine needs the ctranslate2 and faster-whisper packages; "
                             "pip install ctranslate2 faster-whisper, or use --engine hf.")
        if frames != STOCK_ENCODER_FRAMES:
            raise ModelError(
                f"the model in {hf_dir} was trained with a {frames / FRAMES_PER_SECOND:.0f} s encoder window "
                f"({frames} mel frames) and CTranslate2 only runs Whisper's stock 30 s window; use --engine hf."
            )
        return "ct2"
    if name == "auto":
        return "ct2" if ct2_available() and frames == STOCK_ENCODER_FRAMES else "hf"
    return name


def load_engine(
    model: str | Path, settings: Settings, workspace: Workspace, *, engine: str | None = None
) -> Engine:
    """Resolve ``model`` and load it into an engine.

    Args:
        model: Hugging Face id, local Hugging Face folder or CTranslate2 Whisper folder.
        settings: Resolved settings (``[model]`` for device/threads, ``[decode]`` for decoding).
        workspace: Where converted and exported models are cached.
        engine: "auto", "ct2" or "hf"; None uses ``settings.decode.engine``.

    Returns:
        A loaded engine (``.name`` says which).

    Raises:
        ModelError: The model cannot be resolved or loaded, or the engine cannot run it.
    """
    from ..models.resolve import resolve_model

    resolved = resolve_model(str(model), workspace, offline=settings.model.offline)
    name = choose_engine(engine, settings, resolved.hf_dir)
    device = _device(settings.model.device, name)
    threads = settings.model.threads
    if name == "ct2":
        from ..models.export import export_ct2

        quantization = "int8" if settings.decode.compute_type == "default" else settings.decode.compute_type
        ct2_dir = export_ct2(resolved.hf_dir, workspace, quantization=quantization)
        log.debug("CTranslate2 engine on %s from %s", device, ct2_dir)
        # 0 = every core; CTranslate2's own default (4) would oversubscribe a 2-core machine.
        return CT2Engine(ct2_dir, settings.decode, device=device, threads=threads or (os.cpu_count() or 1))

    import torch
    from transformers.utils import logging as hf_logging

    from ..models.load import load_hf

    if threads > 0:
        torch.set_num_threads(threads)
    hf_logging.disable_progress_bar()  # a weight-loading bar per model load is noise in CLI output
    hf_model, processor = load_hf(resolved.hf_dir, device=device)
    log.debug("Hugging Face engine on %s from %s", device, resolved.hf_dir)
    return HFEngine(hf_model, processor, settings.decode)
