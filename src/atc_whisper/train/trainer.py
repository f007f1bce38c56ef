"""Fine-tuning a Whisper model on the catalogue: the trainer and :func:`run_training`.

:class:`AtcTrainer` is a ``Seq2SeqTrainer`` with four additions: length-grouped batches
drawn in a seed-determined order (so ``--resume`` and every data-parallel rank see the same
batches), a stop with a clear message at the first non-finite loss, per-part gradient norms
in the logs, and a dev WER computed with the same bounded decoding as transcription, which
picks the best checkpoint.

:func:`run_training` does the heavy part of :func:`atc_whisper.train.train_model`: model
loading, encoder caching, training, saving the final model folder (model, processor,
generation config, resolved config, model card) and recording the run in the catalogue.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from transformers import Seq2SeqTrainer
from transformers.trainer_callback import PrinterCallback, ProgressCallback

from ..audio.io import SAMPLE_RATE, load_audio
from ..config import DecodeSettings, Settings, render_toml
from ..errors import ConfigError, ModelError, TrainingError
from ..log import get_logger
from ..transcribe.window import ShortWindow
from ..workspace import Workspace
from .api import TrainResult
from .blend import blend_saved
from .callbacks import MonitoringCallback, StopOnSignal
from .dataset import (
    IGNORE_INDEX,
    CachedEncoderDataset,
    LabelEncoder,
    LengthGroupedSampler,
    NoSpeechTarget,
    SourceMixSampler,
    SpeechDataset,
    TrainItem,
    WhisperCollator,
    items_from_samples,
    source_mix,
)
from .encoder_states import CT2Encoder, EncoderCache, EncoderTop, TorchEncoder, cpu_has_native_bf16
from .modelcard import render_model_card
from .perf import peak_rss_mb
from .setup import Plan, training_arguments

log = get_logger(__name__)

OOM_ADVICE = (
    "Lower train.batch_size (e.g. --batch-size 2) and raise train.gradient_accumulation_steps to keep the "
    "effective batch, or set train.gradient_checkpointing = true, or use --mode decoder_cached / lora, "
    "then resume with --resume."
)


class DevScorer:
    """Dev WER with bounded decoding on a fixed subset of dev clips (audio loaded once)."""

    def __init__(self, items: list[TrainItem], processor: Any, decode: DecodeSettings, *, max_samples: int,
                 monitor_samples: int, batch_size: int) -> None:
        self.items = items[:max_samples] if max_samples > 0 else list(items)
        self.processor = processor
        self.decode = decode
        self.monitor_samples = monitor_samples
        self.batch_size = batch_size
        self._audios: list[np.ndarray] | None = None

    def score(self, model: Any) -> tuple[float, list[tuple[str, str, float]]]:
        """(corpus WER over the subset, rows of the first ``monitor_samples`` clips)."""
        from ..transcribe.hf_engine import generate_bounded

        if self._audios is None:
            self._audios = [load_audio(item.audio_path, SAMPLE_RATE) for item in self.items]
        if hasattr(model, "get_base_model"):  # LoRA: the adapters are injected into the base model
            model = model.get_base_model()
        transcripts = generate_bounded(model, self.processor, self._audios, self.decode, batch_size=self.batch_size)
        refs = [item.text for item in self.items]
        hyps = [t.text for t in transcripts]
        shown = min(self.monitor_samples, len(refs))
        wer, per = _wer(refs, hyps, shown)
        return wer, [(refs[i], hyps[i].strip(), float(per[i])) for i in range(shown)]


def _wer(refs: list[str], hyps: list[str], shown: int) -> tuple[float, list[float]]:
    """Normalised corpus WER and the first ``shown`` utterance WERs (evaluation's own metric)."""
    from ..evaluate import metrics

    return float(metrics.wer(refs, hyps)), list(metrics.utterance_wers(refs[:shown], hyps[:shown]))


def distillation_loss(teacher: Any, student_logits: torch.Tensor, inputs: dict[str, Any],
                      rows: torch.Tensor, teacher_audio: dict[str, Any] | None = None) -> torch.Tensor:
    """KL(teacher || student) of the next-token distributions on the ``rows`` of a batch.

    Averaged over the label positions of those rows (padding skipped). The teacher (the frozen
    pretrained model) reads the same audio (its own encoder, the cached encoder outputs, or, when
    the student tunes top encoder layers, the rows' cached states finished by the teacher's own:
    ``teacher_audio``) and the same reference prefix as the student, so the loss is zero where the
    student still predicts what the pretrained model did.
    """
    from transformers.models.whisper.modeling_whisper import shift_tokens_right

    index = rows.nonzero().squeeze(-1).to(student_logits.device)
    labels = inputs["labels"][index]
    audio: dict[str, Any]
    if teacher_audio is not None:  # already the rows' own
        audio = teacher_audio
    elif "encoder_outputs" in inputs:
        audio = {"encoder_outputs": (inputs["encoder_outputs"][0][index],)}
    else:
        audio = {"input_features": inputs["input_features"][index]}
    if next(teacher.parameters()).device != student_logits.device:
        teacher.to(student_logits.device)  # once: on a GPU the trainer moved the student after loading
    config = teacher.config
    decoder_input_ids = shift_tokens_right(labels, config.pad_token_id, config.decoder_start_token_id)
    with torch.no_grad():
        teacher_logits = teacher(**audio, decoder_input_ids=decoder_input_ids).logits
    keep = labels != IGNORE_INDEX
    student_logp = torch.log_softmax(student_logits[index][keep].float(), dim=-1)
    teacher_logp = torch.log_softmax(teacher_logits[keep].float(), dim=-1)
    # batchmean: summed over the vocabulary, averaged over the kept positions
    return torch.nn.functional.kl_div(student_logp, teacher_logp, log_target=True, reduction="batchmean")


def mix_sampler(dataset: Any, weights: dict[str, float], batch_size: int, seed: int, *,
                group_by_length: bool) -> SourceMixSampler:
    """The ``train.source_weights`` sampler over a training dataset (its ``items`` carry their source)."""
    groups, unmatched = source_mix(dataset.items, weights)
    if unmatched:  # preflight checks this first; kept here for direct use of the trainer
        raise TrainingError(f"train.source_weights has no share for the training source(s) {', '.join(unmatched)}.")
    return SourceMixSampler(groups, weights, batch_size, seed, lengths=dataset.lengths if group_by_length else None)


class AtcTrainer(Seq2SeqTrainer):
    """``Seq2SeqTrainer`` with ordered length grouping, a non-finite loss stop, part norms and dev WER."""

    def __init__(self, *args: Any, monitor: MonitoringCallback, dev_scorer: DevScorer | None,
                 group_by_length: bool, teacher: Any = None, distill_weight: float = 0.0,
                 source_weights: dict[str, float] | None = None, encoder_top: EncoderTop | None = None,
                 teacher_top: EncoderTop | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.encoder_top = encoder_top
        self.teacher_top = teacher_top
        self.monitor = monitor
        self.dev_scorer = dev_scorer
        self.group_by_length = group_by_length
        self.source_weights = dict(source_weights or {})
        self.mix_sampler: SourceMixSampler | None = None
        self.teacher = teacher
        self.distill_weight = distill_weight
        self._distill_sum = 0.0
        self._distill_batches = 0

    def compute_loss(self, model: Any, inputs: dict[str, Any], return_outputs: bool = False,
                     num_items_in_batch: Any = None) -> Any:
        """Cross-entropy, plus ``distill_weight`` x the distillation loss on the batch's rehearsal rows."""
        rehearsal = inputs.pop("rehearsal", None)
        states, levels = inputs.pop("encoder_states", None), inputs.pop("levels", None)
        if states is not None:  # cached states: the tuned top layers and the silence completion run here
            assert self.encoder_top is not None
            inputs["encoder_outputs"] = (self.encoder_top(states, levels.tolist()),)
        if self.teacher is None or rehearsal is None or not model.training or not bool(rehearsal.any()):
            return super().compute_loss(model, inputs, return_outputs=return_outputs,
                                        num_items_in_batch=num_items_in_batch)
        loss, outputs = super().compute_loss(model, inputs, return_outputs=True, num_items_in_batch=num_items_in_batch)
        teacher_audio = None
        if states is not None and self.teacher_top is not None and self.teacher_top.trains:
            rows = rehearsal.nonzero().squeeze(-1).tolist()
            with torch.no_grad():
                teacher_audio = {"encoder_outputs": (self.teacher_top([states[i] for i in rows],
                                                                      [float(levels[i]) for i in rows]),)}
        distill = distillation_loss(self.teacher, outputs.logits, inputs, rehearsal, teacher_audio)
        self._distill_sum += float(distill.detach().float().item())
        self._distill_batches += 1
        loss = loss + self.distill_weight * distill
        return (loss, outputs) if return_outputs else loss

    def _get_train_sampler(self, train_dataset: Any = None) -> Any:
        dataset: Any = train_dataset if train_dataset is not None else self.train_dataset
        if self.source_weights and hasattr(dataset, "items"):
            self.mix_sampler = mix_sampler(dataset, self.source_weights, self.args.train_batch_size, self.args.seed,
                                           group_by_length=self.group_by_length)
            return self.mix_sampler
        if self.group_by_length and hasattr(dataset, "lengths"):
            return LengthGroupedSampler(dataset.lengths, self.args.train_batch_size, self.args.seed)
        generator = torch.Generator().manual_seed(self.args.seed)
        return torch.utils.data.RandomSampler(dataset, generator=generator)

    def training_step(self, model: Any, inputs: dict[str, Any], num_items_in_batch: Any = None) -> torch.Tensor:
        loss = super().training_step(model, inputs, num_items_in_batch)
        value = float(loss.detach().float().item())
        if not math.isfinite(value):
            step = self.state.global_step + 1
            raise TrainingError(
                f"the training loss became {value} at step {step} (epoch {self.state.epoch or 0.0:.2f}); training "
                f"stopped. The learning rate ({self.args.learning_rate:g}) is probably too high: lower it "
                "(--lr), add warm-up (train.warmup_steps) or keep gradient clipping on (train.max_grad_norm); "
                "checkpoints written before this step are intact."
            )
        return loss

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        if "loss" in logs and "grad_norm" in logs:
            for part, value in self.monitor.scaled_part_norms(logs.get("grad_norm")).items():
                logs[f"grad_norm/{part}"] = value
        if "loss" in logs and self._distill_batches:  # mean over the batches since the last log that had any
            logs["distill_loss"] = round(self._distill_sum / self._distill_batches, 5)
            self._distill_sum, self._distill_batches = 0.0, 0
        super().log(logs, start_time)

    def evaluation_loop(self, dataloader: Any, description: str, prediction_loss_only: bool | None = None,
                        ignore_keys: list[str] | None = None, metric_key_prefix: str = "eval") -> Any:
        output = super().evaluation_loop(dataloader, description, prediction_loss_only, ignore_keys, metric_key_prefix)
        if self.dev_scorer is not None and metric_key_prefix == "eval":
            model = self.accelerator.unwrap_model(self.model)
            was_training = model.training
            model.eval()
            wer, rows = self.dev_scorer.score(model)
            model.train(was_training)
            assert output.metrics is not None
            output.metrics[f"{metric_key_prefix}_wer"] = wer
            self.monitor.dev_rows = rows
        return output


# -- the library entry point -----------------------------------------------------------------


def _log_source_mix(train_ds: Any, t: Any, batch_size: int, seed: int) -> dict[str, Any]:
    """Log (and return) what each ``train.source_weights`` key contributes to an epoch."""
    if not t.source_weights:
        return {}
    sampler = mix_sampler(train_ds, t.source_weights, batch_size, seed, group_by_length=False)
    mix = {key: {"clips": len(sampler.groups.get(key, [])), "per_epoch": sampler.counts.get(key, 0),
                 "share": round(sampler.shares().get(key, 0.0), 4)} for key in t.source_weights}
    log.info("Training mix per epoch (train.source_weights): %s.", ", ".join(
        f"{key} {100 * m['share']:.0f} % ({m['per_epoch']} draws from {m['clips']} clips)" for key, m in mix.items()))
    return mix


def _set_threads(settings: Settings, plan: Plan) -> None:
    """Share the cores among the local processes (torchrun on one machine runs several)."""
    cores = settings.model.threads or os.cpu_count() or 1
    torch.set_num_threads(max(1, cores // max(plan.local_world_size, 1)))


def _data_counts(plan: Plan) -> dict[str, dict[str, Any]]:
    counts: dict[str, dict[str, Any]] = {}
    for name, samples in (("train", plan.train_samples), ("dev", plan.dev_samples)):
        sources: dict[str, int] = {}
        for s in samples:
            sources[str(s.source)] = sources.get(str(s.source), 0) + 1
        counts[name] = {"clips": len(samples), "hours": sum(float(s.duration_s or 0) for s in samples) / 3600,
                        "sources": sources}
    return counts


def _configure_model(model: Any, plan: Plan, settings: Settings) -> Any:
    """Freeze what the mode does not train; wrap with LoRA adapters for mode lora."""
    model.model.encoder.embed_positions.requires_grad_(False)  # sinusoidal, never trained
    if plan.mode != "full":
        model.freeze_encoder()
        top = plan.encoder_layers
        if top:  # decoder_cached: the top layers learn on the cached states of the ones below
            encoder = model.model.encoder
            for layer in encoder.layers[len(encoder.layers) - top :]:
                layer.requires_grad_(True)
            encoder.layer_norm.requires_grad_(True)
    if settings.train.freeze_embeddings:  # also the output layer, which shares the weight
        model.model.decoder.embed_tokens.requires_grad_(False)
    if plan.mode == "lora":
        from peft import LoraConfig, get_peft_model

        config = LoraConfig(
            r=settings.train.lora_rank, lora_alpha=2 * settings.train.lora_rank, lora_dropout=0.05,
            target_modules=r".*decoder\.layers\.\d+\.(self_attn|encoder_attn)\.(q_proj|k_proj|v_proj|out_proj)",
        )
        model = get_peft_model(model, config)
    if settings.train.gradient_checkpointing and plan.mode in ("full", "frozen_encoder"):
        model.config.use_cache = False
    return model


def train_window(plan: Plan, settings: Settings) -> ShortWindow:
    """The encoder pass training caches: the CPU engines' short pass (``[decode]``), or the whole
    window where the engines decode it (a GPU)."""
    window = ShortWindow.of(settings.decode)
    return window if plan.device == "cpu" else ShortWindow(30.0, 30.0)


def _datasets(plan: Plan, model: Any, processor: Any, settings: Settings, workspace: Workspace,
              progress: bool) -> tuple[Any, Any, list[TrainItem], float, EncoderCache | None]:
    """Train and dev datasets, the dev items, the seconds spent computing encoder states and the
    encoder cache (cached modes)."""
    labels = LabelEncoder(processor.tokenizer, model.generation_config, model.config.max_target_positions)
    train_items = items_from_samples(plan.train_samples)
    dev_items = items_from_samples(plan.dev_samples)
    if not plan.uses_cache:
        fe = processor.feature_extractor
        return (SpeechDataset(train_items, fe, labels), (SpeechDataset(dev_items, fe, labels) if dev_items else None),
                dev_items, 0.0, None)
    cache = EncoderCache(workspace.cache_dir / "encoder", model, processor.feature_extractor, train_window(plan, settings),
                         batch_size=settings.train.encoder_batch_size,
                         encoder=_cache_encoder(plan, model, settings, workspace))
    if plan.device == "cuda":
        model.to("cuda")
    started = time.monotonic()
    cache.ensure([*train_items, *dev_items], progress=progress, rank=plan.rank, world_size=plan.world_size)
    cache_s = time.monotonic() - started
    if plan.world_size > 1 and torch.distributed.is_initialized():
        torch.distributed.barrier()  # every rank's share is on disk before anyone reads
    train_files = [cache.path_for(i) for i in train_items]
    dev_files = [cache.path_for(i) for i in dev_items]
    train_ds = CachedEncoderDataset(train_items, train_files, labels)
    dev_ds = CachedEncoderDataset(dev_items, dev_files, labels) if dev_items else None
    return train_ds, dev_ds, dev_items, cache_s, cache


def _cache_encoder(plan: Plan, model: Any, settings: Settings, workspace: Workspace) -> TorchEncoder | CT2Encoder:
    """The backend that fills the encoder cache (``train.encoder_cache_backend``), running the
    layers below the ones that learn."""
    backend = settings.train.encoder_cache_backend
    if backend == "auto":
        backend = "torch-bf16" if plan.device == "cpu" and cpu_has_native_bf16() else "torch-fp32"
    engine, precision = backend.split("-")
    layers = len(model.model.encoder.layers) - plan.encoder_layers
    if engine == "torch":
        return TorchEncoder(model, precision, layers)
    if plan.encoder_layers:
        raise ConfigError(f"train.encoder_cache_backend = {backend!r} computes only the whole encoder's output, but "
                          f"train.encoder_layers = {plan.encoder_layers} needs the states below the tuned layers; use "
                          "torch-fp32 or torch-bf16 (or auto).")
    from ..models.export import export_ct2

    compute_type = "int8" if precision == "int8" else "float32"
    # int8 weights for int8 compute; full-precision weights otherwise (de-quantised int8 is not fp32).
    ct2_dir = export_ct2(plan.hf_dir, workspace, quantization="int8" if compute_type == "int8" else "default")
    cores = settings.model.threads or os.cpu_count() or 1
    try:
        return CT2Encoder(ct2_dir, compute_type, device=plan.device, threads=max(1, cores // max(plan.local_world_size, 1)))
    except (RuntimeError, ValueError) as exc:
        raise ModelError(f"CTranslate2 could not load {ct2_dir} for the encoder cache ({exc}); set "
                         "train.encoder_cache_backend = \"torch-fp32\".") from None


def _teacher(plan: Plan, settings: Settings, train_ds: Any) -> Any:
    """The frozen pretrained model for ``train.distill_weight``, or None when there is nothing to distil."""
    if settings.train.distill_weight <= 0:
        return None
    rehearsal = sum(item.rehearsal for item in train_ds.items)
    if not rehearsal:
        log.info("No rehearsal clips in the training split (data.plain_fraction): nothing to distil, "
                 "train.distill_weight has no effect.")
        return None
    from ..models.load import load_hf

    teacher, _ = load_hf(plan.hf_dir, device="cpu")
    teacher.requires_grad_(False)
    teacher.eval()
    log.info("Distilling the pretrained model's predictions on %d rehearsal clips (weight %g).",
             rehearsal, settings.train.distill_weight)
    return teacher


def _save_final(trainer: AtcTrainer, processor: Any, plan: Plan, settings: Settings, card: str,
                summary: dict[str, Any]) -> None:
    """Write the model folder: files go to a temporary folder first, then are moved in one by one."""
    model = trainer.accelerator.unwrap_model(trainer.model)
    if hasattr(model, "merge_and_unload"):  # LoRA: a plain Whisper model, adapters folded in
        model = model.merge_and_unload()
    t = settings.train
    summary["base_blend"] = {"share": t.base_blend, "embedding_share": t.base_blend_embeddings,
                             **blend_saved(model, plan.hf_dir, share=t.base_blend, embedding_share=t.base_blend_embeddings,
                                         base=trainer.teacher)}
    model.config.use_cache = True
    plan.output_dir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".model.", dir=plan.output_dir))
    try:
        model.save_pretrained(tmp)
        processor.save_pretrained(tmp)
        processor.feature_extractor.save_pretrained(tmp)  # preprocessor_config.json, which faster-whisper reads
        (tmp / "training_config.toml").write_text(
            render_toml(settings, "# Resolved settings of the training run that produced this model."), encoding="utf-8")
        (tmp / "training_summary.json").write_text(json.dumps(summary, indent=2, default=str), encoding="utf-8")
        (tmp / "README.md").write_text(card, encoding="utf-8")
        for path in sorted(tmp.iterdir()):
            os.replace(path, plan.output_dir / path.name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _final_metrics(trainer: AtcTrainer, train_loss: float) -> dict[str, Any]:
    history = trainer.state.log_history
    evals = [h for h in history if "eval_loss" in h]
    best_step = trainer.state.best_global_step
    chosen = next((h for h in evals if h.get("step") == best_step), evals[-1] if evals else {})
    metrics: dict[str, Any] = {"train_loss": round(train_loss, 5), "epochs": round(float(trainer.state.epoch or 0), 3)}
    if chosen:
        metrics["dev_loss"] = round(float(chosen["eval_loss"]), 5)
        if "eval_wer" in chosen:
            metrics["dev_wer"] = round(float(chosen["eval_wer"]), 5)
        metrics["dev_step"] = int(chosen.get("step", 0))
    return metrics


def _is_oom(exc: BaseException) -> bool:
    if isinstance(exc, (torch.OutOfMemoryError, MemoryError)):
        return True
    text = str(exc).lower()
    return isinstance(exc, RuntimeError) and ("out of memory" in text or "can't allocate memory" in text)


def run_training(plan: Plan, workspace: Workspace, settings: Settings, *, progress: bool = True) -> TrainResult:
    """Run a checked :class:`Plan`: record it, train, save, finish the catalogue record.

    Use :func:`atc_whisper.train.train_model`, which checks the run first.
    """
    for note in plan.notes:
        log.warning("Note: %s.", note)
    from ..data.catalogue import Catalogue

    _set_threads(settings, plan)
    run_name = time.strftime("run-%Y%m%d-%H%M%S")
    if plan.resume_from is not None and plan.logs_dir.is_dir():
        previous = sorted(p for p in plan.logs_dir.iterdir() if p.is_dir() and p.name.startswith("run-"))
        run_name = previous[-1].name if previous else run_name  # keep one TensorBoard run across resumes
    args = training_arguments(settings, plan, progress=progress, run_name=run_name)  # sets up torch.distributed
    if "wandb" in args.report_to:
        os.environ["WANDB_MODE"] = settings.train.wandb_mode
        os.environ["WANDB_PROJECT"] = settings.train.wandb_project
        os.environ["WANDB_DIR"] = str(plan.output_dir)
        (plan.output_dir / "wandb").mkdir(parents=True, exist_ok=True)
    if plan.is_main and plan.resume_from is None and plan.checkpoints_dir.exists():
        log.info("Starting a new run: removing old checkpoints in %s (use --resume to continue one).", plan.checkpoints_dir)
        shutil.rmtree(plan.checkpoints_dir, ignore_errors=True)

    run_id: int | None = None
    if plan.is_main:
        with Catalogue(workspace.db_path, root=workspace.root) as catalogue:
            run_id = catalogue.start_run("train", {
                "settings": settings.to_dict(), "model": plan.model_name, "mode": plan.mode, "device": plan.device,
                "precision": plan.precision, "resume_from": str(plan.resume_from) if plan.resume_from else None,
                "world_size": plan.world_size, "data": _data_counts(plan),
            })
    status, metrics, saved = "failed", {}, None
    try:
        result = _train(plan, settings, workspace, args, progress, run_id)
        status, metrics, saved = "completed", result.metrics, result.model_dir
        return result
    except KeyboardInterrupt:
        status = "interrupted"
        raise
    except TrainingError as exc:
        metrics = {"error": str(exc)}
        raise
    except Exception as exc:
        if _is_oom(exc):
            metrics = {"error": "out of memory"}
            raise TrainingError(f"out of memory during training ({type(exc).__name__}). {OOM_ADVICE}") from None
        metrics = {"error": f"{type(exc).__name__}: {exc}"}
        raise
    finally:
        if run_id is not None:
            with Catalogue(workspace.db_path, root=workspace.root) as catalogue:
                catalogue.finish_run(run_id, status, metrics, saved)


def _train(plan: Plan, settings: Settings, workspace: Workspace, args: Any, progress: bool,
           run_id: int | None) -> TrainResult:
    from transformers.integrations import TensorBoardCallback

    from ..models.load import load_hf

    t = settings.train
    if not progress:
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
    _ = args.device  # sets up the process group under torchrun before the ranks share the encoder cache
    model, processor = load_hf(plan.hf_dir, device="cpu")
    train_ds, dev_ds, dev_items, cache_s, cache = _datasets(plan, model, processor, settings, workspace, progress)
    model = _configure_model(model, plan, settings)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    tuned = f" + the top {plan.encoder_layers} encoder layers" if plan.encoder_layers else ""
    log.info("Training %s in mode %s%s on %s (%s): %d train / %d dev clips, %.1fM of %.1fM parameters trainable.",
             plan.model_name, plan.mode, tuned, plan.device, plan.precision, len(train_ds), len(dev_items),
             trainable / 1e6, total / 1e6)

    tb = None
    if "tensorboard" in t.report_to and plan.is_main:
        tb = TensorBoardCallback()
        tb.logging_dir = str(plan.logs_dir / args.run_name)
    samples_per_step = t.batch_size * t.gradient_accumulation_steps * plan.world_size
    monitor = MonitoringCallback(samples_per_step=samples_per_step, perf_interval_s=t.perf_interval_s, tb_callback=tb,
                                 use_wandb="wandb" in args.report_to)
    stopper = StopOnSignal()
    scorer = None
    if dev_items:
        # Bounded and repetition-checked like transcription, but one greedy attempt per clip: the
        # temperature fallback would make an early, still-poor model's evaluation many times slower.
        decode = dataclasses.replace(settings.decode, temperatures=[0.0])
        scorer = DevScorer(dev_items, processor, decode, max_samples=t.eval_max_samples,
                           monitor_samples=t.monitor_samples, batch_size=max(t.batch_size, 8))
    callbacks = [c for c in (tb, monitor, stopper) if c is not None]
    teacher = _teacher(plan, settings, train_ds)
    encoder_top = teacher_top = None
    if cache is not None:
        encoder_top = EncoderTop(_plain(model).model.encoder, cache.split, cache.window)
        if teacher is not None:  # the lower layers are the same frozen ones: share their silence states
            teacher_top = EncoderTop(teacher.model.encoder, cache.split, cache.window, encoder_top.silence_lower)
    trainer = AtcTrainer(
        model=model, args=args, train_dataset=train_ds, eval_dataset=dev_ds,
        data_collator=WhisperCollator(rehearsal_mask=teacher is not None, no_speech=NoSpeechTarget.of(model)),
        processing_class=processor, callbacks=callbacks, monitor=monitor, dev_scorer=scorer,
        group_by_length=t.group_by_length, teacher=teacher, distill_weight=t.distill_weight,
        source_weights=t.source_weights, encoder_top=encoder_top, teacher_top=teacher_top,
    )
    mix = _log_source_mix(train_ds, t, args.train_batch_size, args.seed)
    trainer.remove_callback(PrinterCallback)
    if progress:  # keep the bar, drop its dict printing: the monitor prints one line per log instead
        trainer.remove_callback(ProgressCallback)
        trainer.add_callback(_BarOnly())
    log.debug("rank %d/%d: %d train clips, %d samples per step over all processes", plan.rank, plan.world_size,
              len(train_ds), samples_per_step)
    started = time.monotonic()
    start_step = 0
    if plan.resume_from is not None:
        start_step = int(json.loads((plan.resume_from / "trainer_state.json").read_text())["global_step"])
        log.info("Resuming from %s (step %d).", plan.resume_from, start_step)
    output = trainer.train(resume_from_checkpoint=str(plan.resume_from) if plan.resume_from else None)
    seconds = time.monotonic() - started
    steps_done = trainer.state.global_step - start_step
    rate = steps_done * samples_per_step / max(seconds, 1e-9)
    if stopper.requested:
        last = plan.checkpoints_dir / f"checkpoint-{trainer.state.global_step}"
        log.warning("Stopped by %s at step %d; checkpoint %s. Continue with 'atc-whisper train --resume'.",
                    stopper.signal_name or "a signal", trainer.state.global_step, last)
        raise KeyboardInterrupt
    log.log(logging.INFO if plan.world_size > 1 else logging.DEBUG, "rank %d/%d finished at step %d.",
            plan.rank, plan.world_size, trainer.state.global_step)
    metrics = _final_metrics(trainer, float(output.training_loss))
    metrics.update({"steps": trainer.state.global_step, "train_seconds": round(seconds, 2),
                    "samples_per_s": round(rate, 3), "encoder_cache_s": round(cache_s, 2)})
    if mix:
        for key, drawn in (trainer.mix_sampler.drawn if trainer.mix_sampler else {}).items():
            mix[key]["drawn"] = drawn  # clips of each group the run read, over every epoch it started
        metrics["source_mix"] = mix
    result = TrainResult(model_dir=plan.output_dir, steps=trainer.state.global_step, train_seconds=seconds,
                         samples_per_s=rate, metrics=metrics, mode=plan.mode,
                         logs_dir=plan.logs_dir / args.run_name, run_id=run_id, peak_rss_mb=peak_rss_mb())
    if trainer.is_world_process_zero():
        hyper = {k: v for k, v in settings.to_dict()["train"].items() if k not in ("wandb_project",)}
        hyper.update({"mode (resolved)": plan.mode, "device": plan.device, "precision": plan.precision,
                      "processes": plan.world_size})
        card = render_model_card(base_model=plan.model_name, mode=plan.mode, data_counts=_data_counts(plan),
                                 hyperparameters=hyper, metrics=metrics, english_only=plan.english_only)
        _save_final(trainer, processor, plan, settings, card, result.as_dict())
        log.info("Saved the fine-tuned model to %s.", plan.output_dir)
    if plan.world_size > 1 and torch.distributed.is_initialized():
        torch.distributed.barrier()
    return result


def _plain(model: Any) -> Any:
    """The Whisper model inside a LoRA wrapper (or the model itself)."""
    return model.get_base_model() if hasattr(model, "get_base_model") else model


class _BarOnly(ProgressCallback):
    """The standard progress bar without its printing of every log dict."""

    def on_log(self, args: Any, state: Any, control: Any, logs: Any = None, **kwargs: Any) -> None:
        return None

