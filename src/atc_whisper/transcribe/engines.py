"""Two inference engines behind one interface: CTranslate2 (fast, int8 on CPU) and transformers.

Both take 16 kHz mono clips of at most one Whisper window and return the same
:class:`~atc_whisper.transcribe.types.Transcription`, decoded by the same loop
(:func:`~atc_whisper.transcribe.decoding.decode_clips`: duration bound, temperature fallback,
loop cut, confidence flags), so file transcription, live mode and evaluation can switch
engines without changing anything else. CTranslate2 is the default when installed: measured
here it is ~1.5x faster than PyTorch fp32 on CPU for tiny.en. The Hugging Face engine runs
any model transformers can load, including ones whose input length was changed by training.
This module picks and loads one; ``ct2_engine.py`` and ``hf_engine.py`` hold the engines.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from ..config import Settings
from ..errors import ModelError
from ..log import get_logger
from ..workspace import Workspace
from .ct2_engine import CT2_MAX_NEW_TOKENS, CT2Engine, ct2_max_length
from .hf_engine import HFEngine
from .types import Transcription
from .window import FRAMES_PER_SECOND, STOCK_ENCODER_FRAMES

log = get_logger(__name__)

ENGINES = ("auto", "ct2", "hf")
#: Key a training run writes into a saved model's config.json when it changed the encoder's
#: input length (mel frames); stock Whisper takes 3000 frames (30 s).
ENCODER_FRAMES_KEY = "atc_whisper_encoder_frames"
__all__ = [
    "CT2_MAX_NEW_TOKENS", "ENGINES", "STOCK_ENCODER_FRAMES", "CT2Engine", "Engine", "HFEngine", "choose_engine",
    "ct2_available", "ct2_max_length", "ct2_workers", "encoder_frames_of", "load_engine",
]


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


@dataclass(frozen=True)
class EngineModel:
    """Which engine runs a model and from which folder, decided without loading anything.

    Attributes:
        name: The model as asked for (id, alias or folder).
        engine: ``ct2`` or ``hf``.
        ct2_dir: The CTranslate2 folder the ct2 engine runs as it is, or None.
        hf_dir: The Hugging Face folder: run by the hf engine, or exported (once, cached) for
            the ct2 engine when ``ct2_dir`` is None.
    """

    name: str
    engine: str
    ct2_dir: Path | None = None
    hf_dir: Path | None = None


def resolve_engine_model(
    model: str | Path, settings: Settings, workspace: Workspace, *, engine: str | None = None
) -> EngineModel:
    """The engine and model folder :func:`load_engine` will use, without loading the model.

    A batch fingerprints these folders before deciding whether anything needs the model.

    Raises:
        ModelError: The model cannot be resolved, or the engine cannot run it.
    """
    from ..models.resolve import resolve_ct2, resolve_model

    offline = settings.model.offline
    if choose_engine(engine, settings) == "ct2":
        ct2_dir = resolve_ct2(str(model), workspace, offline=offline)
        if ct2_dir is not None:
            return EngineModel(str(model), "ct2", ct2_dir=ct2_dir)
    resolved = resolve_model(str(model), workspace, offline=offline)
    return EngineModel(str(model), choose_engine(engine, settings, resolved.hf_dir), hf_dir=resolved.hf_dir)


def load_engine(
    model: str | Path, settings: Settings, workspace: Workspace, *, engine: str | None = None
) -> Engine:
    """Resolve ``model`` and load it into an engine.

    A CTranslate2 folder (the bundled tiny.en and base, a faster-whisper model) runs on the
    ct2 engine as it is, its weights converted on load to ``decode.compute_type``; a Hugging
    Face model runs on the hf engine, or on ct2 through a cached export. A CTranslate2 model is
    converted to Hugging Face format only for the hf engine.

    Args:
        model: Hugging Face id, alias (``tiny.en``), local Hugging Face folder or CTranslate2 Whisper folder.
        settings: Resolved settings (``[model]`` for device/threads, ``[decode]`` for decoding).
        workspace: Where converted and exported models are cached.
        engine: "auto", "ct2" or "hf"; None uses ``settings.decode.engine``.

    Returns:
        A loaded engine (``.name`` says which).

    Raises:
        ModelError: The model cannot be resolved or loaded, or the engine cannot run it.
    """
    from ..models.load import resolve_device

    chosen = resolve_engine_model(model, settings, workspace, engine=engine)
    if chosen.ct2_dir is not None:
        return _ct2_engine(chosen.ct2_dir, settings)
    assert chosen.hf_dir is not None
    if chosen.engine == "ct2":
        from ..models.export import export_ct2

        quantization = "int8" if settings.decode.compute_type == "default" else settings.decode.compute_type
        return _ct2_engine(export_ct2(chosen.hf_dir, workspace, quantization=quantization), settings)

    import torch
    from transformers.utils import logging as hf_logging

    from ..models.load import load_hf

    device = resolve_device(settings.model.device, runtime="torch")
    if settings.model.threads > 0:
        torch.set_num_threads(settings.model.threads)
    hf_logging.disable_progress_bar()  # a weight-loading bar per model load is noise in CLI output
    hf_model, processor = load_hf(chosen.hf_dir, device=device)
    log.debug("Hugging Face engine on %s from %s", device, chosen.hf_dir)
    return HFEngine(hf_model, processor, settings.decode, batch_size=settings.decode.batch_size)


def _ct2_engine(ct2_dir: Path, settings: Settings) -> CT2Engine:
    from ..models.load import resolve_device

    device = resolve_device(settings.model.device, runtime="ctranslate2")
    # 0 = every core; CTranslate2's own default (4) would oversubscribe a 2-core machine.
    threads = settings.model.threads or (os.cpu_count() or 1)
    workers = ct2_workers(settings.model.workers, threads, device)
    log.debug("CTranslate2 engine on %s from %s: %d worker(s) x %d thread(s)", device, ct2_dir, workers,
              max(1, threads // workers))
    return CT2Engine(ct2_dir, settings.decode, device=device, threads=max(1, threads // workers), workers=workers)


def ct2_workers(requested: int, threads: int, device: str) -> int:
    """Batches a CTranslate2 engine decodes at once (``model.workers``; 0: 2 on a CPU with 2+ threads)."""
    if device != "cpu":
        return max(1, requested)
    if requested:
        return max(1, min(requested, threads))
    return 2 if threads >= 2 else 1
