"""Training data for Whisper: torch datasets, the padding collator and the encoder-output cache.

Two kinds of items feed the trainer:

* :class:`SpeechDataset` returns log-mel ``input_features`` (always the full 30 s window,
  exactly as at inference) and ``labels``; used when the encoder runs every step
  (modes ``full`` and ``frozen_encoder``).
* :class:`CachedEncoderDataset` returns the frozen encoder's output for the clip, computed
  once by :class:`EncoderCache` and stored on disk (float16), and ``labels``; used when only
  the decoder learns (modes ``decoder_cached`` and ``lora``). On a CPU this is what makes
  training practical: the encoder pass over a padded 30 s window is most of a step's cost,
  and a frozen encoder gives the same output every epoch.

Labels follow what the model expects at inference: the model prepends the decoder start
token itself, so labels hold the rest of the prompt (``<|notimestamps|>`` for English-only
models; language, task and ``<|notimestamps|>`` for multilingual ones), then the
reference with a leading space (Whisper's own outputs begin with a space token), then
end-of-text.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from ..audio.io import SAMPLE_RATE, load_audio
from ..data.prepare import EVERYDAY_PHASE
from ..errors import ConfigError, ModelError
from ..fsutil import atomic_path, sha256_file
from ..log import get_logger

log = get_logger(__name__)

IGNORE_INDEX = -100  # label positions the loss skips (padding)


@dataclass(frozen=True)
class TrainItem:
    """One clip to learn from: what the datasets need from a catalogue sample.

    Attributes:
        uid: Stable identifier (catalogue sample id).
        audio_path: Absolute path of the audio file.
        text: Reference transcript (ATC convention).
        duration_s: Clip length in seconds.
        sha256: Content hash of the audio file, the encoder cache key ("" = compute it).
        rehearsal: An everyday-English clip mixed in against forgetting (``data.plain_fraction``);
            ``train.distill_weight`` applies to these.
        source: The catalogue source ("synthetic", "atco2", "generic:myradio"), for
            ``train.source_weights``.
    """

    uid: str
    audio_path: Path
    text: str
    duration_s: float
    sha256: str = ""
    rehearsal: bool = False
    source: str = "synthetic"


def items_from_samples(samples: Sequence[Any]) -> list[TrainItem]:
    """Turn catalogue samples (``uid, audio_path, text_norm, duration_s, sha256``) into :class:`TrainItem`."""
    return [
        TrainItem(
            uid=str(getattr(s, "uid", None) or s.id),
            audio_path=Path(s.audio_path),
            text=str(s.text_norm),
            duration_s=float(s.duration_s or 0.0),
            sha256=str(getattr(s, "sha256", "") or ""),
            rehearsal=getattr(s, "phase", None) == EVERYDAY_PHASE,
            source=str(getattr(s, "source", None) or "synthetic"),
        )
        for s in samples
    ]


class LabelEncoder:
    """Reference text -> label ids, matching the prompt the model is given at inference."""

    def __init__(self, tokenizer: Any, generation_config: Any, max_length: int = 448) -> None:
        self.tokenizer = tokenizer
        self.max_length = max_length
        self.eos_id = int(tokenizer.eos_token_id)
        self.prefix = self._prefix_ids(tokenizer, generation_config)

    @staticmethod
    def _prefix_ids(tokenizer: Any, generation_config: Any) -> list[int]:
        def token_id(token: str) -> int:
            value = tokenizer.convert_tokens_to_ids(token)
            if value is None or value == tokenizer.unk_token_id:
                raise ModelError(f"the model's tokenizer has no {token} token, so it is not a Whisper tokenizer; "
                                 "train a Whisper model (model.name, e.g. openai/whisper-tiny.en).")
            return int(value)

        no_ts = getattr(generation_config, "no_timestamps_token_id", None)
        no_ts = int(no_ts) if no_ts is not None else token_id("<|notimestamps|>")
        if not getattr(generation_config, "is_multilingual", False):
            return [no_ts]
        lang_to_id = getattr(generation_config, "lang_to_id", None) or {}
        task_to_id = getattr(generation_config, "task_to_id", None) or {}
        lang = int(lang_to_id.get("<|en|>", token_id("<|en|>")))
        task = int(task_to_id.get("transcribe", token_id("<|transcribe|>")))
        return [lang, task, no_ts]

    def __call__(self, text: str) -> list[int]:
        """Label ids for one reference (truncated to the decoder's length, end-of-text kept)."""
        body = self.tokenizer.encode(" " + text.strip(), add_special_tokens=False)
        ids = [*self.prefix, *body][: self.max_length - 1]
        return [*ids, self.eos_id]


class _LabelledClips(Dataset[dict[str, Any]]):
    """Common part of the training datasets: the items and their length for batching."""

    items: list[TrainItem]

    def __len__(self) -> int:
        return len(self.items)

    @property
    def lengths(self) -> list[float]:
        """Reference lengths in characters, for length-grouped batching.

        The encoder input is always the 30 s window, so only the label length varies the
        cost of a batch; the text's length predicts it better than the clip's duration.
        """
        return [float(len(item.text)) for item in self.items]


class SpeechDataset(_LabelledClips):
    """Clips as 30 s log-mel features plus labels (the encoder runs at every step)."""

    def __init__(self, items: Sequence[TrainItem], feature_extractor: Any, labels: LabelEncoder) -> None:
        self.items = list(items)
        self.feature_extractor = feature_extractor
        self.labels = labels

    def __getitem__(self, index: int) -> dict[str, Any]:
        item = self.items[index]
        audio = load_audio(item.audio_path)
        features = self.feature_extractor(audio, sampling_rate=SAMPLE_RATE, return_tensors="np").input_features[0]
        return {"input_features": torch.from_numpy(np.asarray(features, dtype=np.float32)), "labels": self.labels(item.text),
                "rehearsal": item.rehearsal}


class CachedEncoderDataset(_LabelledClips):
    """Clips as cached encoder outputs plus labels (only the decoder runs at each step)."""

    def __init__(self, items: Sequence[TrainItem], cache_files: Sequence[Path], labels: LabelEncoder) -> None:
        if len(items) != len(cache_files):  # a programming error: the encoder cache returns one file per item
            raise ValueError("one cache file per item is needed")
        self.items = list(items)
        self.cache_files = list(cache_files)
        self.labels = labels

    def __getitem__(self, index: int) -> dict[str, Any]:
        hidden = np.load(self.cache_files[index])
        item = self.items[index]
        return {"encoder_hidden": torch.from_numpy(hidden.astype(np.float32)), "labels": self.labels(item.text),
                "rehearsal": item.rehearsal}


@dataclass
class WhisperCollator:
    """Stack features (or cached encoder outputs) and pad labels with -100.

    The decoder start token is not added: the model shifts the labels right and prepends it.
    Cached encoder outputs are passed as ``encoder_outputs=(hidden,)``, which the Whisper
    forward accepts in place of running its encoder.
    """

    pad_to_multiple_of: int = 8  # tensor shapes repeat more often, which helps the CPU kernels
    rehearsal_mask: bool = False  # also pass which rows are rehearsal clips (for the distillation loss)

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, Any]:
        longest = max(len(f["labels"]) for f in features)
        longest = int(math.ceil(longest / self.pad_to_multiple_of) * self.pad_to_multiple_of)
        labels = torch.full((len(features), longest), IGNORE_INDEX, dtype=torch.long)
        for row, f in enumerate(features):
            labels[row, : len(f["labels"])] = torch.as_tensor(f["labels"], dtype=torch.long)
        batch: dict[str, Any] = {"labels": labels}
        if "encoder_hidden" in features[0]:
            batch["encoder_outputs"] = (torch.stack([f["encoder_hidden"] for f in features]),)
        else:
            batch["input_features"] = torch.stack([f["input_features"] for f in features])
        if self.rehearsal_mask:
            batch["rehearsal"] = torch.tensor([bool(f.get("rehearsal", False)) for f in features])
        return batch


class LengthGroupedSampler(Sampler[int]):
    """Shuffled order in which neighbouring batches hold clips of similar length.

    The order depends only on ``seed`` and the epoch (``set_epoch``), never on global RNG
    state, so a resumed run sees exactly the same batches and every data-parallel rank draws
    the same permutation (each then takes its own shard).
    """

    def __init__(self, lengths: Sequence[float], batch_size: int, seed: int, group_batches: int = 50) -> None:
        self.lengths = list(lengths)
        self.batch_size = batch_size
        self.seed = seed
        self.group_batches = group_batches
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Choose the epoch whose order :meth:`__iter__` yields."""
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.lengths)

    def __iter__(self) -> Iterator[int]:
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        order = torch.randperm(len(self.lengths), generator=generator).tolist()
        return iter(length_grouped(order, self.lengths, self.batch_size, self.group_batches, generator))


def length_grouped(order: list[int], lengths: Sequence[float], batch_size: int, group_batches: int,
                   generator: torch.Generator) -> list[int]:
    """``order`` rearranged so that neighbouring batches hold clips of similar length.

    Windows of ``batch_size * group_batches`` indices are sorted by length and cut into
    batches; the batches are then shuffled with ``generator``, the one with the longest clips
    first (memory problems show at step 1).
    """
    group = batch_size * group_batches
    chunks = [order[i : i + group] for i in range(0, len(order), group)]
    batches: list[list[int]] = []
    for chunk in chunks:
        chunk.sort(key=lambda i: -lengths[i])
        batches += [chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size)]
    longest = max(range(len(batches)), key=lambda b: max(lengths[i] for i in batches[b])) if batches else 0
    rest = [b for k, b in enumerate(batches) if k != longest]
    perm = torch.randperm(len(rest), generator=generator).tolist()
    ordered = ([batches[longest]] if batches else []) + [rest[k] for k in perm]
    return [i for batch in ordered for i in batch]


#: ``train.source_weights`` key that stands for every source except synthetic speech.
IMPORTED = "imported"


def source_key(source: str, keys: Sequence[str]) -> str | None:
    """The ``train.source_weights`` key a clip of ``source`` belongs to: the most specific match.

    An exact source name wins over a prefix ending in ``:`` (the longest one), which wins over
    ``imported`` (any source but ``synthetic``). None when no key matches.
    """
    if source in keys:
        return source
    prefixes = [k for k in keys if k.endswith(":") and source.startswith(k)]
    if prefixes:
        return max(prefixes, key=len)
    if IMPORTED in keys and source != "synthetic":
        return IMPORTED
    return None


def share_counts(weights: Mapping[str, float], total: int) -> dict[str, int]:
    """Draws per key out of ``total`` in proportion to ``weights`` (largest remainder: they add up to ``total``)."""
    mass = sum(weights.values())
    if mass <= 0 or total <= 0:
        return {k: 0 for k in weights}
    exact = {k: total * w / mass for k, w in weights.items()}
    counts = {k: math.floor(v) for k, v in exact.items()}
    for k in sorted(exact, key=lambda k: (counts[k] - exact[k], k))[: total - sum(counts.values())]:
        counts[k] += 1
    return counts


class SourceMixSampler(Sampler[int]):
    """Each epoch, draws clips so that every source group fills its share of the batches.

    Why: a user with an hour of real radio and thousands of synthetic clips wants, say, half of
    every batch to be real speech. Each epoch keeps the dataset's length; a group whose share
    asks for more clips than it has is repeated (every clip as evenly as possible: whole shuffled
    passes, then a random part of one more), a larger group is subsampled afresh each epoch.
    With ``lengths`` the drawn clips are length-grouped into batches like
    :class:`LengthGroupedSampler`. The order depends only on ``seed`` and the epoch, so a resumed
    run and every data-parallel rank see the same batches.

    Args:
        groups: Clip indices per group (see :func:`source_key`).
        weights: Share of each group; groups without clips or weight get none.
        batch_size: Clips per batch (for length grouping).
        seed: Seed of the draws.
        lengths: Per-clip lengths for length grouping, or None for a plain shuffle.
        epoch_size: Clips per epoch (default: all clips of every group).
        group_batches: Batches per length-sorting window.
    """

    def __init__(self, groups: Mapping[str, Sequence[int]], weights: Mapping[str, float], batch_size: int, seed: int,
                 *, lengths: Sequence[float] | None = None, epoch_size: int | None = None, group_batches: int = 50) -> None:
        self.groups = {k: list(v) for k, v in groups.items() if v}
        live = {k: float(weights.get(k, 0.0)) for k in self.groups if weights.get(k, 0.0) > 0}
        if not live:
            raise ConfigError(f"no source with training clips has a positive share (sources {', '.join(self.groups)}; "
                              f"shares {dict(weights)}); give one of them a share above 0 in train.source_weights.")
        self.size = epoch_size if epoch_size is not None else sum(len(v) for v in groups.values())
        self.counts = share_counts(live, self.size)
        self.batch_size = batch_size
        self.seed = seed
        self.lengths = list(lengths) if lengths is not None else None
        self.group_batches = group_batches
        self.epoch = 0
        self.key_of = {i: k for k, members in self.groups.items() for i in members}
        #: Clips handed out so far, per group (what training actually read, give or take a prefetched batch).
        self.drawn: dict[str, int] = dict.fromkeys(self.counts, 0)

    def set_epoch(self, epoch: int) -> None:
        """Choose the epoch whose draw :meth:`__iter__` yields."""
        self.epoch = epoch

    def __len__(self) -> int:
        return self.size

    def shares(self) -> dict[str, float]:
        """The realised share of each group in an epoch."""
        return {k: n / self.size for k, n in self.counts.items()} if self.size else {}

    def __iter__(self) -> Iterator[int]:
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        drawn: list[int] = []
        for key in sorted(self.counts):  # a fixed order: the draw depends on the seed only
            members, need = self.groups[key], self.counts[key]
            while need > 0:
                take = min(need, len(members))
                drawn += [members[i] for i in torch.randperm(len(members), generator=generator)[:take].tolist()]
                need -= take
        order = [drawn[i] for i in torch.randperm(len(drawn), generator=generator).tolist()]
        if self.lengths is not None:
            order = length_grouped(order, self.lengths, self.batch_size, self.group_batches, generator)
        return self._counted(order)

    def _counted(self, order: list[int]) -> Iterator[int]:
        for index in order:
            self.drawn[self.key_of[index]] += 1
            yield index


def source_mix(items: Sequence[TrainItem], weights: Mapping[str, float]) -> tuple[dict[str, list[int]], list[str]]:
    """Clip indices per ``train.source_weights`` key, and the sources no key matches."""
    keys = list(weights)
    groups: dict[str, list[int]] = {k: [] for k in keys}
    unmatched: dict[str, None] = {}
    for index, item in enumerate(items):
        key = source_key(item.source, keys)
        if key is None:
            unmatched[item.source] = None
        else:
            groups[key].append(index)
    return groups, list(unmatched)


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
    """Encoder outputs from the PyTorch model being trained (its own encoder, its own device).

    Args:
        model: The Hugging Face Whisper model.
        precision: "fp32", or "bf16" (autocast: matrix products in bfloat16, about 3x faster on
            CPUs with AMX, outputs within about 1 % of fp32's).
    """

    name = "torch"

    def __init__(self, model: Any, precision: str = "fp32") -> None:
        if precision not in ("fp32", "bf16"):
            raise ConfigError(f"the PyTorch encoder runs in fp32 or bf16, not {precision!r}; set "
                              "train.encoder_cache_backend to torch-fp32, torch-bf16 or a ct2 backend.")
        self.encoder = model.get_encoder()
        self.precision = precision
        # fp32's cache folder is the bare fingerprint (as before backends existed).
        self.key = "" if precision == "fp32" else f"torch-{precision}"

    def __call__(self, features: np.ndarray) -> np.ndarray:
        """``[batch, mels, frames]`` log-mel features -> ``[batch, positions, d_model]`` float16 outputs."""
        parameter = next(self.encoder.parameters())
        inputs = torch.from_numpy(features).to(parameter.device, dtype=parameter.dtype)
        with torch.inference_mode(), torch.autocast(parameter.device.type, dtype=torch.bfloat16,
                                                    enabled=self.precision == "bf16"):
            hidden = self.encoder(inputs).last_hidden_state
        return hidden.to(torch.float16).cpu().numpy()


class CT2Encoder:
    """Encoder outputs from a CTranslate2 copy of the same model.

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
        self.model = ctranslate2.models.Whisper(str(ct2_dir), device=device, compute_type=compute_type,
                                                intra_threads=threads, inter_threads=1)

    def __call__(self, features: np.ndarray) -> np.ndarray:
        import ctranslate2

        output = self.model.encode(ctranslate2.StorageView.from_array(np.ascontiguousarray(features, dtype=np.float32)),
                                   to_cpu=True)
        return np.asarray(output, dtype=np.float32).astype(np.float16)


class EncoderCache:
    """Encoder outputs of clips, computed once and kept on disk as float16 ``.npy`` files.

    Layout: ``<root>/<encoder fingerprint>[-<backend key>]/<sha256[:2]>/<sha256>.npy`` (the
    PyTorch backend's key is empty; CTranslate2's is ``ct2-<compute type>``). Each file is
    written atomically, so an interrupted caching pass resumes where it stopped and readers
    never see half a file. The window is the standard padded 30 s one, so the decoder learns
    on exactly the encoder states it will see at inference.

    Args:
        root: The cache root (``data/cache/encoder``).
        model: The Hugging Face Whisper model; its encoder weights are the cache key.
        feature_extractor: Turns audio into log-mel features.
        batch_size: Clips per encoder call.
        encoder: Who computes the outputs: a :class:`TorchEncoder` (default) or :class:`CT2Encoder`
            built from the same weights.
    """

    def __init__(self, root: Path, model: Any, feature_extractor: Any, *, batch_size: int = 1,
                 encoder: TorchEncoder | CT2Encoder | None = None) -> None:
        self.model = model
        self.feature_extractor = feature_extractor
        self.batch_size = batch_size
        self.encoder = encoder or TorchEncoder(model)
        key = encoder_fingerprint(model)
        self.folder = Path(root) / (f"{key}-{self.encoder.key}" if self.encoder.key else key)

    def path_for(self, item: TrainItem) -> Path:
        """Cache file of ``item`` (its content hash is computed when the catalogue has none)."""
        sha = item.sha256 or sha256_file(item.audio_path)
        return self.folder / sha[:2] / f"{sha}.npy"

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
        log.info("Caching encoder outputs of %d clips in %s with %s (once; later runs reuse them).", len(todo),
                 self.folder, self.encoder.name)
        bar = None
        if progress and rank == 0:
            from tqdm.auto import tqdm

            bar = tqdm(total=len(todo), desc="Encoding clips", unit="clip")
        try:
            for start in range(0, len(todo), self.batch_size):
                chunk = todo[start : start + self.batch_size]
                audios = [load_audio(item.audio_path) for item, _ in chunk]
                features = self.feature_extractor(audios, sampling_rate=SAMPLE_RATE, return_tensors="np").input_features
                hidden_np = self.encoder(np.asarray(features, dtype=np.float32))
                for (_, path), array in zip(chunk, hidden_np, strict=True):
                    with atomic_path(path, suffix=".npy") as tmp:
                        with open(tmp, "wb") as handle:
                            np.save(handle, array)
                if bar is not None:
                    bar.update(len(chunk))
        finally:
            if bar is not None:
                bar.close()
        return paths
