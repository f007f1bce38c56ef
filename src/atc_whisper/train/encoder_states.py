"""Encoder states for training on a CPU: computed once per clip, cached, completed like at inference.

In the cached modes (``decoder_cached``, ``lora``) the frozen part of the encoder runs once per
clip and its output is stored on disk; each step then runs only what learns. What is stored is the
clip's **short pass** (:mod:`~atc_whisper.transcribe.window`: the clip and ``decode.encoder_pad_s``
of silence, not the whole 30 s window) up to the first trained layer: with
``train.encoder_layers = 0`` the whole encoder's output, with ``k`` the output of all but the top
``k`` layers, which then learn at every step on it. :class:`EncoderTop` finishes a batch the way
the engines do at inference (the tuned top layers, then the silence completion to
``decode.context_s``), so the decoder learns on exactly the encoder states it will be given.

Why short passes: they cost a fifth of a 30 s window to cache (a 4 s transmission and its 2 s
pad), the decoder's cross-attention then reads 500 positions instead of 1500 (its largest cost per
step), and they are what the CPU engines decode. Why the top layers: a frozen encoder hears radio
noise, clipping and accents exactly as the pretrained model does, and the decoder can only guess
around what it cannot hear; tuning the top layers on cached lower states adapts the hearing at a
fraction of full fine-tuning's cost.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..audio.io import SAMPLE_RATE, load_audio
from ..errors import ConfigError
from ..fsutil import atomic_path, sha256_file
from ..log import get_logger
from ..models import encoder_pass
from ..transcribe.window import ShortWindow, level_key, padding_level, silence_features
from .dataset import TrainItem

log = get_logger(__name__)


def encoder_fingerprint(model: Any) -> str:
    """A short hash of the encoder's weights and input size: the cache's model key.

    Content-based, so a cache never serves outputs of a different (e.g. fully fine-tuned)
    encoder that happens to live at the same path.
    """
    digest = hashlib.sha256()
    config = model.config
    digest.update(f"{config.d_model}:{config.encoder_layers}:{config.num_mel_bins}:{config.max_source_positions}".encode())
    encoder = model.get_encoder()
    for name, tensor in sorted(encoder.state_dict().items()):
        digest.update(name.encode())
        flat = tensor.detach().reshape(-1)
        if flat.numel() > 1_000_000:  # large tensors: a strided sample is plenty to tell encoders apart
            flat = flat[:: max(1, flat.numel() // 65_536)]
        digest.update(flat.to(torch.float32).cpu().numpy().tobytes())
    return digest.hexdigest()[:16]


def cpu_has_native_bf16() -> bool:
    """Whether this CPU computes bfloat16 natively (AMX or AVX-512 BF16), where PyTorch's bf16
    matrix products are several times faster than fp32 ones; elsewhere bf16 is emulated and slower."""
    cpu = getattr(torch, "cpu", None)
    checks = [getattr(cpu, name, None) for name in ("_is_amx_tile_supported", "_is_avx512_bf16_supported")]
    try:
        return any(bool(check()) for check in checks if callable(check))
    except Exception:  # a private PyTorch helper that changed: assume no
        return False


class TorchEncoder:
    """Encoder states from the PyTorch model being trained (its own encoder, its own device).

    Args:
        model: The Hugging Face Whisper model.
        precision: "fp32", or "bf16" (autocast: matrix products in bfloat16, about 3x faster on
            CPUs with AMX, outputs within about 1 % of fp32's).
        layers: Encoder layers to run (all of them: the encoder's output; fewer: the input of the
            first trained layer, see :func:`~atc_whisper.models.encoder_pass.lower`).
    """

    name = "torch"

    def __init__(self, model: Any, precision: str = "fp32", layers: int | None = None) -> None:
        if precision not in ("fp32", "bf16"):
            raise ConfigError(f"the PyTorch encoder runs in fp32 or bf16, not {precision!r}; set "
                              "train.encoder_cache_backend to torch-fp32, torch-bf16 or a ct2 backend.")
        self.encoder = model.get_encoder()
        self.precision = precision
        self.layers = encoder_pass.layer_count(self.encoder) if layers is None else layers
        self.key = f"torch-{precision}"

    def __call__(self, features: np.ndarray) -> np.ndarray:
        """``[batch, mels, frames]`` log-mel features -> ``[batch, frames / 2, d_model]`` float16 states."""
        parameter = next(self.encoder.parameters())
        inputs = torch.from_numpy(features).to(parameter.device, dtype=parameter.dtype)
        with torch.inference_mode(), torch.autocast(parameter.device.type, dtype=torch.bfloat16,
                                                    enabled=self.precision == "bf16"):
            hidden = encoder_pass.lower(self.encoder, inputs, self.layers)
        return hidden.to(torch.float16).cpu().numpy()


class CT2Encoder:
    """Encoder outputs from a CTranslate2 copy of the same model (the whole encoder only).

    Args:
        ct2_dir: The CTranslate2 export of the model's weights.
        compute_type: CTranslate2 compute type ("int8", "float32", ...); part of the cache key,
            since int8 outputs differ from fp32 ones (about 4 % relative RMS for tiny.en).
        device: "cpu" or "cuda".
        threads: CTranslate2 intra-op threads (0: its default).
    """

    name = "ct2"

    def __init__(self, ct2_dir: Path, compute_type: str = "int8", *, device: str = "cpu", threads: int = 0) -> None:
        import ctranslate2

        self.compute_type = compute_type
        self.key = f"ct2-{compute_type}"
        self.layers: int | None = None  # the whole encoder: CTranslate2 returns no inner layer
        self.model = ctranslate2.models.Whisper(str(ct2_dir), device=device, compute_type=compute_type,
                                                intra_threads=threads, inter_threads=1)

    def __call__(self, features: np.ndarray) -> np.ndarray:
        import ctranslate2

        output = self.model.encode(ctranslate2.StorageView.from_array(np.ascontiguousarray(features, dtype=np.float32)),
                                   to_cpu=True)
        return np.asarray(output, dtype=np.float32).astype(np.float16)


def cache_key(fingerprint: str, window: ShortWindow, split: int, total_layers: int, backend: str) -> str:
    """Folder name of a cache: the encoder's weights, the pass (whole window or the pad), the layer
    the states come from (omitted for the whole encoder) and the backend."""
    span = "w30" if window.whole else f"pad{window.pad_s:g}"
    layer = "" if split >= total_layers else f"-l{split}"
    return f"{fingerprint}-{span}{layer}-{backend}"


class EncoderCache:
    """Each clip's encoder states up to the first trained layer, kept on disk as ``.npz`` files.

    Layout: ``<root>/<key>/<sha256[:2]>/<sha256>.npz`` (see :func:`cache_key`), each holding
    ``states`` (float16, ``[frames / 2, d_model]`` for the clip's short pass) and ``level`` (the
    log-mel value of its silence padding, which picks its silence completion). Each file is
    written atomically, so an interrupted caching pass resumes where it stopped and readers
    never see half a file.

    Args:
        root: The cache root (``data/cache/encoder``).
        model: The Hugging Face Whisper model; its encoder weights are the cache key.
        feature_extractor: Turns audio into log-mel features (padded to 30 s, then cut).
        window: The short-pass geometry (``decode.encoder_pad_s``), as at inference.
        batch_size: Clips per encoder call (clips of one length share a call).
        encoder: Who computes the states: a :class:`TorchEncoder` (default: fp32, the whole
            encoder) or a :class:`CT2Encoder` built from the same weights.
    """

    def __init__(self, root: Path, model: Any, feature_extractor: Any, window: ShortWindow, *, batch_size: int = 1,
                 encoder: TorchEncoder | CT2Encoder | None = None) -> None:
        self.feature_extractor = feature_extractor
        self.window = window
        self.batch_size = batch_size
        self.encoder = encoder or TorchEncoder(model)
        total = encoder_pass.layer_count(model.get_encoder())
        self.split = total if self.encoder.layers is None else self.encoder.layers
        self.folder = Path(root) / cache_key(encoder_fingerprint(model), window, self.split, total, self.encoder.key)

    def path_for(self, item: TrainItem) -> Path:
        """Cache file of ``item`` (its content hash is computed when the catalogue has none)."""
        sha = item.sha256 or sha256_file(item.audio_path)
        return self.folder / sha[:2] / f"{sha}.npz"

    def ensure(self, items: Sequence[TrainItem], *, progress: bool = False, rank: int = 0, world_size: int = 1) -> list[Path]:
        """Compute what is missing and return one cache file per item.

        With several processes each computes its own share (``rank::world_size``); the caller
        waits for all of them before reading.
        """
        paths = [self.path_for(item) for item in items]
        todo = [(item, path) for k, (item, path) in enumerate(zip(items, paths, strict=True))
                if k % world_size == rank and not path.exists()]
        if not todo:
            return paths
        log.info("Caching encoder states of %d clips in %s with %s (once; later runs reuse them).", len(todo),
                 self.folder, self.encoder.name)
        bar = None
        if progress and rank == 0:
            from tqdm.auto import tqdm

            bar = tqdm(total=len(todo), desc="Encoding clips", unit="clip")
        try:
            for start in range(0, len(todo), self.batch_size):
                chunk = todo[start : start + self.batch_size]
                self._encode_chunk(chunk)
                if bar is not None:
                    bar.update(len(chunk))
        finally:
            if bar is not None:
                bar.close()
        return paths

    def _encode_chunk(self, chunk: list[tuple[TrainItem, Path]]) -> None:
        audios = [load_audio(item.audio_path) for item, _ in chunk]
        frames = [self.window.encoder_frames(len(a)) for a in audios]
        features = np.asarray(self.feature_extractor(audios, sampling_rate=SAMPLE_RATE, return_tensors="np").input_features,
                              dtype=np.float32)
        for length in sorted(set(frames)):
            rows = [i for i, f in enumerate(frames) if f == length]
            clip_features = np.ascontiguousarray(features[rows, :, :length])
            states = self.encoder(clip_features)
            for row, array, feats in zip(rows, states, clip_features, strict=True):
                with atomic_path(chunk[row][1], suffix=".npz") as tmp:
                    with open(tmp, "wb") as handle:
                        np.savez(handle, states=array, level=np.float32(padding_level(feats)))


def load_states(path: Path) -> tuple[np.ndarray, float]:
    """(``[positions, d_model]`` float32 states, padding level) of one cache file."""
    with np.load(path) as data:
        return data["states"].astype(np.float32), float(data["level"])


class EncoderTop:
    """A batch of cached states -> the encoder output the decoder reads at inference.

    Runs the encoder's layers from ``split`` on (the ones training tunes; none when ``split`` is
    the whole encoder) over each clip's cached states, then completes each clip with the encoder
    output of silence at its padding level, as the engines do (:mod:`~atc_whisper.transcribe.window`).
    The silence completion runs without gradients: it is what the current weights make of silence,
    and the decoder attends to the speech.

    One difference from inference, for batching: every clip of a batch is completed to the batch's
    longest context (a clip longer than ``decode.context_s`` lengthens it), from a silent window of
    that length.

    Args:
        encoder: The Whisper encoder (the model's; the teacher's for distillation).
        split: Index of the first layer run here (the cache holds the states before it).
        window: The short-pass geometry.
        silence_lower: A shared cache of the frozen lower layers' states of silence, so a
            teacher and its student compute each level once.
    """

    def __init__(self, encoder: Any, split: int, window: ShortWindow,
                 silence_lower: dict[tuple[float, int], torch.Tensor] | None = None) -> None:
        self.encoder = encoder
        self.split = split
        self.window = window
        self.trains = split < encoder_pass.layer_count(encoder)
        self.silence_lower = silence_lower if silence_lower is not None else {}

    def _silence(self, level: float, frames: int) -> torch.Tensor:
        """The states of a silent window at ``level`` before layer ``split`` (frozen: cached)."""
        key = (level_key(level), frames)
        if key not in self.silence_lower:
            parameter = next(self.encoder.parameters())
            mels = int(self.encoder.conv1.in_channels)
            features = torch.from_numpy(silence_features(level, frames, mels)).to(parameter.device, parameter.dtype)
            with torch.no_grad():
                self.silence_lower[key] = encoder_pass.lower(self.encoder, features, self.split)[0].detach()
        return self.silence_lower[key]

    def __call__(self, states: Sequence[torch.Tensor], levels: Sequence[float]) -> torch.Tensor:
        """``[batch, context, d_model]`` encoder output for per-clip ``[positions, d_model]`` states."""
        positions = [int(s.shape[0]) for s in states]
        context = max(self.window.context_frames(2 * p) // 2 for p in positions)
        tops: list[torch.Tensor | None] = [None] * len(states)
        for length in sorted(set(positions)):
            rows = [i for i, p in enumerate(positions) if p == length]
            out = encoder_pass.upper(self.encoder, torch.stack([states[i] for i in rows]), self.split)
            for row, clip in zip(rows, out, strict=True):
                tops[row] = clip
        fills: dict[float, torch.Tensor] = {}
        rows_out = []
        for top, level, p in zip(tops, levels, positions, strict=True):
            assert top is not None
            if p >= context:
                rows_out.append(top[:context])
                continue
            key = level_key(float(level))
            if key not in fills:
                with torch.no_grad():
                    fills[key] = encoder_pass.upper(self.encoder, self._silence(key, 2 * context)[None], self.split)[0]
            rows_out.append(torch.cat([top, fills[key][p:context].to(top.dtype)]))
        return torch.stack(rows_out)
