"""Everything decided before the trainer starts: checks, mode, devices, training arguments.

:func:`preflight` runs first and is cheap: it reads the catalogue, checks the splits and
audio files, resolves the model and the device, and finds the checkpoint to resume - so a
run that cannot start fails in a second with an error naming the fix, before any model is
loaded.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..config import Settings
from ..errors import ConfigError, DataError, ModelError, TrainingError, WorkspaceError
from ..log import get_logger
from ..models.load import resolve_device
from ..workspace import Workspace

log = get_logger(__name__)

MODES = ("full", "frozen_encoder", "decoder_cached", "lora")
CACHED_MODES = ("decoder_cached", "lora")  # the encoder is frozen, so its outputs can be cached


@dataclass
class Plan:
    """The resolved decisions of a run (no model loaded yet).

    Attributes:
        model_name: The model as the user named it.
        hf_dir: Its Hugging Face folder.
        english_only: Whether the model is English-only.
        mode: Training mode after resolving ``auto``.
        device: ``cpu`` or ``cuda``.
        precision: ``fp32``, ``fp16`` or ``bf16``.
        train_samples / dev_samples: Catalogue samples of the two splits.
        output_dir: Where the final model goes; checkpoints and logs live inside it.
        resume_from: Checkpoint folder to continue from, or None.
        rank / world_size: This process's place in a data-parallel run.
        encoder_layers: Top encoder layers that learn on cached states (``train.encoder_layers``
            in mode ``decoder_cached``; 0 otherwise).
    """

    model_name: str
    hf_dir: Path
    english_only: bool
    mode: str
    device: str
    precision: str
    train_samples: list[Any]
    dev_samples: list[Any]
    output_dir: Path
    resume_from: Path | None = None
    rank: int = 0
    world_size: int = 1
    local_world_size: int = 1
    encoder_layers: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def checkpoints_dir(self) -> Path:
        return self.output_dir / "checkpoints"

    @property
    def logs_dir(self) -> Path:
        return self.output_dir / "logs"

    @property
    def uses_cache(self) -> bool:
        return self.mode in CACHED_MODES


def _dist_env() -> tuple[int, int, int]:
    """(rank, world size, processes on this node) from the torchrun / accelerate environment."""
    rank = int(os.environ.get("RANK", "0"))
    world = int(os.environ.get("WORLD_SIZE", "1"))
    local_world = int(os.environ.get("LOCAL_WORLD_SIZE", str(world)))
    return rank, world, local_world


def last_checkpoint(folder: Path) -> Path | None:
    """The checkpoint with the highest step in ``folder`` (``checkpoint-<step>``), or None."""
    if not folder.is_dir():
        return None
    found = [(int(m.group(1)), p) for p in folder.iterdir()
             if p.is_dir() and (m := re.fullmatch(r"checkpoint-(\d+)", p.name)) and (p / "trainer_state.json").exists()]
    return max(found)[1] if found else None


def resolve_precision(requested: str, device: str) -> str:
    """``auto`` -> bf16 (or fp16 on older GPUs) on CUDA, fp32 on CPU."""
    if requested == "auto":
        if device != "cuda":
            return "fp32"
        import torch

        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    if requested == "fp16" and device != "cuda":
        raise ConfigError("train.precision = 'fp16' needs a CUDA GPU; use fp32 (or bf16) on the CPU.")
    return requested


def resolve_mode(requested: str, device: str) -> str:
    """``auto`` -> decoder_cached on CPU (measured fastest and at least as accurate), full on CUDA."""
    if requested == "auto":
        return "decoder_cached" if device == "cpu" else "full"
    if requested not in MODES:
        raise ConfigError(f"unknown training mode {requested!r}; valid: auto, {', '.join(MODES)}.")
    return requested


def preflight(workspace: Workspace, settings: Settings, *, model: str | None = None, resume: bool = False,
              output_dir: Path | None = None) -> Plan:
    """Check that a run can start, cheaply; return its :class:`Plan`.

    Raises:
        WorkspaceError: the workspace does not exist.
        DataError: no catalogue, an empty train split, or missing audio files.
        ModelError: the model cannot be resolved, or CUDA was asked for but is absent.
        TrainingError: ``resume`` without a checkpoint.
    """
    from ..data.catalogue import Catalogue

    if not workspace.root.is_dir():
        raise WorkspaceError(f"workspace {workspace.root} does not exist; create it with 'atc-whisper init {workspace.root}'.")
    if not workspace.db_path.is_file():
        raise DataError(f"no catalogue at {workspace.db_path}; create training data first with 'atc-whisper prepare' "
                        "(synthetic) or 'atc-whisper import' (real corpora).")
    with Catalogue(workspace.db_path, root=workspace.root) as catalogue:
        train = catalogue.samples("train")
        dev = catalogue.samples("dev")
    if not train:
        raise DataError(f"the train split of {workspace.db_path} is empty; add data with 'atc-whisper prepare --samples N' "
                        "or 'atc-whisper import', or lower data.dev_fraction / data.test_fraction.")
    missing = [s.audio_path for s in [*train, *dev] if not Path(s.audio_path).is_file()]
    if missing:
        raise DataError(f"{len(missing)} catalogued audio files are missing (first: {missing[0]}); "
                        "run 'atc-whisper data check' and re-run 'atc-whisper prepare' to rebuild them.")
    mix_notes = check_source_weights(settings.train.source_weights, [str(s.source) for s in train])
    device = resolve_device(settings.model.device)
    precision = resolve_precision(settings.train.precision, device)
    mode = resolve_mode(settings.train.mode, device)
    from ..models.resolve import resolve_model

    name = model or settings.model.name
    try:
        resolved = resolve_model(name, workspace, offline=settings.model.offline)
    except ModelError:
        raise
    except OSError as exc:
        raise ModelError(f"cannot resolve model {name!r}: {exc}") from None
    out = Path(output_dir).expanduser().resolve() if output_dir is not None else workspace.model_dir
    rank, world, local_world = _dist_env()
    plan = Plan(
        model_name=str(name), hf_dir=Path(resolved.hf_dir), english_only=bool(resolved.english_only), mode=mode,
        device=device, precision=precision, train_samples=train, dev_samples=dev, output_dir=out,
        rank=rank, world_size=world, local_world_size=local_world,
    )
    plan.encoder_layers = _encoder_layers(settings.train.encoder_layers, mode, plan.hf_dir, plan.notes)
    if resume:
        plan.resume_from = last_checkpoint(plan.checkpoints_dir)
        if plan.resume_from is None:
            raise TrainingError(f"--resume: no checkpoint in {plan.checkpoints_dir}; start a new run without --resume.")
    if not dev:
        plan.notes.append("the dev split is empty: no dev WER, and the last (not the best) model is kept")
    plan.notes += mix_notes
    return plan


def _encoder_layers(requested: int, mode: str, hf_dir: Path, notes: list[str]) -> int:
    """``train.encoder_layers`` checked against the mode and the model's encoder.

    Other modes note that the setting does not apply to them (it has a default, so a refusal would
    make ``--mode lora`` fail out of the box).

    Raises:
        ConfigError: more layers than the encoder has.
    """
    if not requested:
        return 0
    if mode != "decoder_cached":  # the setting has a default, so another mode notes it rather than refusing
        what = {"full": "trains the whole encoder", "lora": "adapts the decoder only"}.get(mode, "keeps the encoder frozen")
        notes.append(f"train.encoder_layers = {requested} applies to mode decoder_cached only; mode {mode} {what}")
        return 0
    import json

    try:
        total = int(json.loads((hf_dir / "config.json").read_text(encoding="utf-8"))["encoder_layers"])
    except (OSError, ValueError, KeyError):
        return requested  # the model folder is checked when it loads
    if requested > total:
        raise ConfigError(f"train.encoder_layers = {requested}, but the model's encoder has {total} layers; "
                          f"choose 0..{total}.")
    return requested


def check_source_weights(weights: dict[str, float], sources: list[str]) -> list[str]:
    """Check ``train.source_weights`` against the training split's sources; return notes for the user.

    Raises:
        ConfigError: a training source has no key, or no key with a positive share has clips.
    """
    if not weights:
        return []
    from .dataset import source_key

    keys = list(weights)
    present = {key for key in (source_key(source, keys) for source in sources) if key is not None}
    unmatched = sorted({source for source in sources if source_key(source, keys) is None})
    if unmatched:
        raise ConfigError(
            f"train.source_weights ({', '.join(f'{k} = {v:g}' for k, v in weights.items())}) gives no share to the "
            f"training source(s) {', '.join(unmatched)}; add them (e.g. --set 'train.source_weights="
            f"{{ imported = 0.5, synthetic = 0.5 }}') or give 0 to leave a source out."
        )
    if not any(weights[k] > 0 for k in present):
        raise ConfigError(f"train.source_weights gives a positive share only to sources without training clips "
                          f"(training sources: {', '.join(sorted(set(sources)))}).")
    return [f"train.source_weights: '{key}' matches no training clip; the other shares are scaled up"
            for key in keys if key not in present and weights[key] > 0]


def eval_save_schedule(settings: Settings, has_dev: bool) -> dict[str, Any]:
    """Evaluation and checkpoint intervals that the best-model tracking accepts.

    Keeping the best model needs evaluation and saving on the same schedule, with checkpoints
    at a multiple of the evaluation interval; this reconciles the two settings.
    """
    t = settings.train
    if not has_dev:
        if t.save_steps:
            return {"eval_strategy": "no", "save_strategy": "steps", "save_steps": t.save_steps}
        return {"eval_strategy": "no", "save_strategy": "epoch"}
    if not t.eval_steps and not t.save_steps:
        return {"eval_strategy": "epoch", "save_strategy": "epoch"}
    eval_steps = t.eval_steps or t.save_steps
    save_steps = int(math.ceil((t.save_steps or eval_steps) / eval_steps) * eval_steps)
    return {"eval_strategy": "steps", "eval_steps": eval_steps, "save_strategy": "steps", "save_steps": save_steps}


def effective_learning_rate(configured: float, mode: str) -> float:
    """``train.learning_rate``, or for 0 the rate that suits the mode.

    Decoder-only training on cached encoder outputs learned best at 1e-4 in the first CPU
    experiment (shared notes), while full fine-tuning uses the usual Whisper 1e-5.
    """
    if configured > 0:
        return configured
    return 1e-4 if mode in CACHED_MODES else 1e-5


def training_arguments(settings: Settings, plan: Plan, *, progress: bool, run_name: str) -> Any:
    """The ``Seq2SeqTrainingArguments`` of a run, every value from ``settings.train``."""
    from transformers import Seq2SeqTrainingArguments

    t = settings.train
    has_dev = bool(plan.dev_samples) and t.dev_evaluation
    report = ["wandb"] if "wandb" in t.report_to and t.wandb_mode != "disabled" else []
    return Seq2SeqTrainingArguments(
        output_dir=str(plan.checkpoints_dir),
        run_name=run_name,
        per_device_train_batch_size=t.batch_size,
        per_device_eval_batch_size=t.batch_size,
        gradient_accumulation_steps=t.gradient_accumulation_steps,
        num_train_epochs=t.epochs,
        max_steps=t.max_steps if t.max_steps > 0 else -1,
        learning_rate=effective_learning_rate(t.learning_rate, plan.mode),
        lr_scheduler_type=t.lr_scheduler,
        warmup_steps=t.warmup_steps,
        weight_decay=t.weight_decay,
        max_grad_norm=t.max_grad_norm,
        logging_strategy="steps",
        logging_steps=t.logging_steps,
        logging_first_step=True,
        save_total_limit=t.save_total_limit,
        load_best_model_at_end=has_dev,
        metric_for_best_model="wer" if has_dev else None,
        greater_is_better=False if has_dev else None,
        seed=t.seed,
        use_cpu=plan.device == "cpu",
        fp16=plan.precision == "fp16",
        bf16=plan.precision == "bf16",
        activation_checkpointing=t.gradient_checkpointing and plan.mode in ("full", "frozen_encoder"),
        report_to=report,
        disable_tqdm=not progress,
        remove_unused_columns=False,
        label_names=["labels"],
        dataloader_num_workers=0,
        predict_with_generate=False,  # dev predictions use bounded decoding instead (see AtcTrainer)
        ddp_find_unused_parameters=False,
        **eval_save_schedule(settings, has_dev),
    )
