"""Training data for Whisper: torch datasets, the padding collator and the encoder-output cache.

Two kinds of items feed the trainer:

* :class:`SpeechDataset` returns log-mel ``input_features`` (always the full 30 s window,
  exactly as at inference) and ``labels``; used when the encoder runs every step
  (modes ``full`` and ``frozen_encoder``).
* :class:`CachedEncoderDataset` returns the clip's cached encoder states (its short pass up to
  the first trained layer, computed once by :class:`~atc_whisper.train.encoder_states.EncoderCache`)
  and ``labels``; used when the encoder is frozen below the layers that learn (modes
  ``decoder_cached`` and ``lora``). On a CPU this is what makes training practical: the encoder
  pass is most of a step's cost, and a frozen encoder gives the same output every epoch.

Labels follow what the model expects at inference: the model prepends the decoder start
token itself, so labels hold the rest of the prompt (``<|notimestamps|>`` for English-only
models; language, task and ``<|notimestamps|>`` for multilingual ones), then the
reference with a leading space (Whisper's own outputs begin with a space token), then
end-of-text.
"""

from __future__ import annotations

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
from ..data.static import STATIC_PHASE
from ..errors import ConfigError, ModelError
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
        no_speech: A static clip (no transmission, ``data.static_fraction``): taught as the
            no-speech token, then an empty transcript.
    """

    uid: str
    audio_path: Path
    text: str
    duration_s: float
    sha256: str = ""
    rehearsal: bool = False
    source: str = "synthetic"
    no_speech: bool = False


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
            no_speech=getattr(s, "phase", None) == STATIC_PHASE,
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
        """Label ids for one reference (truncated to the decoder's length, end-of-text kept); an
        empty reference is the prompt and end-of-text alone."""
        body = self.tokenizer.encode(" " + text.strip(), add_special_tokens=False) if text.strip() else []
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

        The label length drives the decoder's cost, and the text's length predicts it better than
        the clip's duration (which, with short encoder passes, also follows the text).
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
                "rehearsal": item.rehearsal, "no_speech": item.no_speech}


class CachedEncoderDataset(_LabelledClips):
    """Clips as cached encoder states plus labels (the frozen part of the encoder does not run)."""

    def __init__(self, items: Sequence[TrainItem], cache_files: Sequence[Path], labels: LabelEncoder) -> None:
        if len(items) != len(cache_files):  # a programming error: the encoder cache returns one file per item
            raise ValueError("one cache file per item is needed")
        self.items = list(items)
        self.cache_files = list(cache_files)
        self.labels = labels

    def __getitem__(self, index: int) -> dict[str, Any]:
        from .encoder_states import load_states

        states, level = load_states(self.cache_files[index])
        item = self.items[index]
        return {"encoder_states": torch.from_numpy(states), "level": level, "labels": self.labels(item.text),
                "rehearsal": item.rehearsal, "no_speech": item.no_speech}


@dataclass
class NoSpeechTarget:
    """How a static clip is taught: the no-speech token where Whisper reads its no-speech
    probability (the prediction right after <|startoftranscript|>), while the decoder is still fed
    the inference prompt, which then ends at once (an empty transcript).

    Attributes:
        token_id: The no-speech token (<|nospeech|>, <|nocaptions|> in older vocabularies).
        decoder_start_id: <|startoftranscript|>.
        pad_id: The id that stands for label padding in decoder inputs.
    """

    token_id: int
    decoder_start_id: int
    pad_id: int

    @classmethod
    def of(cls, model: Any) -> NoSpeechTarget:
        """The target of a Whisper model (the no-speech token precedes <|notimestamps|>, as the
        engines read it)."""
        generation = model.generation_config
        return cls(int(generation.no_timestamps_token_id) - 1, int(model.config.decoder_start_token_id),
                   int(model.config.pad_token_id))


@dataclass
class WhisperCollator:
    """Stack features (or list cached encoder states) and pad labels with -100.

    The decoder start token is not added: the model shifts the labels right and prepends it.
    Cached states stay a list (``encoder_states``, clips differ in length) with their padding
    ``levels``; the trainer finishes them into ``encoder_outputs=(hidden,)``
    (:class:`~atc_whisper.train.encoder_states.EncoderTop`), which the Whisper forward accepts in
    place of running its encoder. A batch with static clips gets explicit ``decoder_input_ids``
    (the shifted labels) and their first label becomes the no-speech token (``no_speech``).
    """

    pad_to_multiple_of: int = 8  # tensor shapes repeat more often, which helps the CPU kernels
    rehearsal_mask: bool = False  # also pass which rows are rehearsal clips (for the distillation loss)
    no_speech: NoSpeechTarget | None = None

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, Any]:
        longest = max(len(f["labels"]) for f in features)
        longest = int(math.ceil(longest / self.pad_to_multiple_of) * self.pad_to_multiple_of)
        labels = torch.full((len(features), longest), IGNORE_INDEX, dtype=torch.long)
        for row, f in enumerate(features):
            labels[row, : len(f["labels"])] = torch.as_tensor(f["labels"], dtype=torch.long)
        batch: dict[str, Any] = {"labels": labels}
        silent = [row for row, f in enumerate(features) if f.get("no_speech")]
        if silent and self.no_speech is not None:
            from transformers.models.whisper.modeling_whisper import shift_tokens_right

            target = self.no_speech
            batch["decoder_input_ids"] = shift_tokens_right(labels, target.pad_id, target.decoder_start_id)
            labels[silent, 0] = target.token_id
        if "encoder_states" in features[0]:
            batch["encoder_states"] = [f["encoder_states"] for f in features]
            batch["levels"] = torch.tensor([float(f["level"]) for f in features])
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
