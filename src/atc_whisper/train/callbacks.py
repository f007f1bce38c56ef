"""Trainer callbacks: what a person watching a run needs to see, and a clean stop on signals.

* :class:`MonitoringCallback` - per-part gradient norms (encoder, decoder, embeddings),
  one concise console line per logging step, dev predictions (reference vs hypothesis) in
  TensorBoard's Text tab at every evaluation, and performance records (``perf/*``).
  Loss, learning rate and the global gradient norm reach TensorBoard through the standard
  reporting integration; the part norms join them in :meth:`AtcTrainer.log`.
* :class:`StopOnSignal` - Ctrl-C / SIGTERM finish the current step, save a checkpoint and
  stop, so ``--resume`` continues from there. A second Ctrl-C quits at once.
"""

from __future__ import annotations

import math
import signal
import time
from types import FrameType
from typing import Any

import torch
from transformers import TrainerCallback, TrainerControl, TrainerState, TrainingArguments

from ..log import get_logger
from .perf import PerfLogger, PerfRecord, write_perf

log = get_logger(__name__)

PARTS = ("encoder", "decoder", "embeddings")


def part_of(name: str) -> str:
    """Which part of a Whisper model a parameter belongs to (by its name, LoRA wrappers included)."""
    if "embed_tokens" in name or "embed_positions" in name or "proj_out" in name:
        return "embeddings"
    if ".encoder." in f".{name}":
        return "encoder"
    return "decoder"


def part_grad_norms(model: torch.nn.Module) -> dict[str, float]:
    """L2 norm of the current gradients of each part, over the parameters that have one."""
    squares: dict[str, float] = {}
    seen: set[int] = set()
    for name, param in model.named_parameters():
        if param.grad is None or id(param) in seen:  # tied weights (proj_out = embed_tokens) count once
            continue
        seen.add(id(param))
        part = part_of(name)
        squares[part] = squares.get(part, 0.0) + float(torch.linalg.vector_norm(param.grad.detach().float()) ** 2)
    return {part: math.sqrt(value) for part, value in squares.items()}


def predictions_markdown(rows: list[tuple[str, str, float]]) -> str:
    """A markdown table of (reference, hypothesis, utterance WER) rows for TensorBoard's Text tab."""

    def cell(text: str) -> str:
        return text.replace("|", "\\|").replace("\n", " ") or "(empty)"

    lines = ["| # | reference | hypothesis | WER |", "|---|---|---|---|"]
    lines += [f"| {i} | {cell(ref)} | {cell(hyp)} | {wer:.0%} |" for i, (ref, hyp, wer) in enumerate(rows, 1)]
    return "\n".join(lines)


class MonitoringCallback(TrainerCallback):
    """Gradient norms per part, console lines, dev predictions and performance records.

    Args:
        samples_per_step: Training samples per optimiser step over all processes
            (batch size x accumulation x processes), for the throughput figures.
        perf_interval_s: Seconds between performance records.
        tb_callback: The run's ``TensorBoardCallback`` (its writer is reused), or None.
        use_wandb: Also send text and performance records to the active W&B run.
    """

    def __init__(self, *, samples_per_step: int, perf_interval_s: float, tb_callback: Any = None,
                 use_wandb: bool = False) -> None:
        self.samples_per_step = samples_per_step
        self.perf = PerfLogger(perf_interval_s)
        self.tb_callback = tb_callback
        self.use_wandb = use_wandb
        self.last_part_norms: dict[str, float] = {}
        self.dev_rows: list[tuple[str, str, float]] = []
        self.start_step = 0
        self._log_time = time.monotonic()
        self._log_step = 0
        self.last_perf: PerfRecord | None = None

    # -- helpers -------------------------------------------------------------------------
    @property
    def writer(self) -> Any:
        return getattr(self.tb_callback, "tb_writer", None) if self.tb_callback is not None else None

    def _wandb_log(self, values: dict[str, Any], step: int) -> None:
        if not self.use_wandb:
            return
        import wandb

        if wandb.run is not None:
            wandb.log({**values, "train/global_step": step})

    def _samples_seen(self, state: TrainerState) -> int:
        return (state.global_step - self.start_step) * self.samples_per_step

    def scaled_part_norms(self, grad_norm: float | None) -> dict[str, float]:
        """Part norms before clipping: clipping scales every gradient by one factor."""
        if not self.last_part_norms:
            return {}
        after = math.sqrt(sum(v * v for v in self.last_part_norms.values()))
        factor = grad_norm / after if grad_norm is not None and after > 0 and math.isfinite(grad_norm) else 1.0
        return {part: value * factor for part, value in self.last_part_norms.items()}

    # -- events --------------------------------------------------------------------------
    def on_train_begin(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any) -> None:
        self.start_step = state.global_step
        self._log_step = state.global_step
        self._log_time = time.monotonic()
        self.perf = PerfLogger(self.perf.interval_s)

    def on_pre_optimizer_step(self, args: TrainingArguments, state: TrainerState, control: TrainerControl,
                              **kwargs: Any) -> None:
        # Only on steps that will be logged: the norms cost a pass over every gradient.
        next_step = state.global_step + 1
        if next_step % max(args.logging_steps, 1) == 0 or (args.logging_first_step and state.global_step == 0):
            model = kwargs.get("model")
            if model is not None:
                self.last_part_norms = part_grad_norms(model)

    def on_step_end(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any) -> None:
        if not state.is_world_process_zero or not self.perf.due():
            return
        self._write_perf(self.perf.record(self._samples_seen(state)), state.global_step)

    def _write_perf(self, record: PerfRecord, step: int) -> None:
        self.last_perf = record
        if self.writer is not None:
            write_perf(self.writer, record, step)
        self._wandb_log({f"perf/{k}": v for k, v in record.as_dict().items()}, step)

    def on_log(self, args: TrainingArguments, state: TrainerState, control: TrainerControl,
               logs: dict[str, Any] | None = None, **kwargs: Any) -> None:
        if not state.is_world_process_zero or not logs:
            return
        if "loss" in logs:
            now = time.monotonic()
            rate = (state.global_step - self._log_step) * self.samples_per_step / max(now - self._log_time, 1e-9)
            self._log_time, self._log_step = now, state.global_step
            grad = logs.get("grad_norm")
            parts = " ".join(f"{p[:3]} {logs[f'grad_norm/{p}']:.2f}" for p in PARTS if f"grad_norm/{p}" in logs)
            distill = logs.get("distill_loss")
            log.info(
                "step %d/%d | epoch %.2f | loss %.4f%s | lr %.2e | grad %s%s | %.2f samples/s",
                state.global_step, state.max_steps, state.epoch or 0.0, logs["loss"],
                f" (distill {distill:.4f})" if isinstance(distill, (int, float)) else "", logs.get("learning_rate", 0.0),
                f"{grad:.3f}" if isinstance(grad, (int, float)) else "-", f" ({parts})" if parts else "", rate,
            )
        elif "eval_loss" in logs:
            wer = logs.get("eval_wer")
            log.info(
                "eval  step %d | epoch %.2f | dev loss %.4f%s", state.global_step, state.epoch or 0.0, logs["eval_loss"],
                f" | dev WER {wer:.2%}" if isinstance(wer, (int, float)) else "",
            )

    def on_evaluate(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any) -> None:
        if not state.is_world_process_zero or not self.dev_rows:
            return
        table = predictions_markdown(self.dev_rows)
        if self.writer is not None:
            self.writer.add_text("dev/predictions", table, state.global_step)
            self.writer.flush()
        if self.use_wandb:
            import wandb

            if wandb.run is not None:
                columns: list[str | int] = ["reference", "hypothesis", "wer"]
                self._wandb_log({"dev/predictions": wandb.Table(columns=columns, data=[list(r) for r in self.dev_rows])},
                                state.global_step)

    def on_train_end(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any) -> None:
        if state.is_world_process_zero:
            self._write_perf(self.perf.record(self._samples_seen(state)), state.global_step)
            if self.writer is not None:
                self.writer.flush()


class StopOnSignal(TrainerCallback):
    """Turn Ctrl-C / SIGTERM into "save a checkpoint after this step and stop".

    With several processes the request is shared (all-reduce of one flag per step), so every
    rank stops at the same step and the checkpoint is consistent.
    """

    def __init__(self) -> None:
        self.requested = False
        self.signal_name = ""
        self._previous: dict[int, Any] = {}

    def _handler(self, signum: int, frame: FrameType | None) -> None:
        if self.requested:  # second signal: the user really wants out
            self.restore()
            raise KeyboardInterrupt
        self.requested = True
        self.signal_name = signal.Signals(signum).name
        log.warning("%s received: saving a checkpoint after this step, then stopping (Ctrl-C again quits at once).",
                    self.signal_name)

    def install(self) -> None:
        """Install the handlers (main thread only; elsewhere signals keep their defaults)."""
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                self._previous[sig] = signal.signal(sig, self._handler)
            except ValueError:  # not the main thread
                return

    def restore(self) -> None:
        """Put the previous handlers back."""
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()

    def _shared_request(self) -> bool:
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            flag = torch.tensor([1.0 if self.requested else 0.0])
            if torch.distributed.get_backend() == "nccl":
                flag = flag.cuda()
            torch.distributed.all_reduce(flag)
            self.requested = bool(flag.item() > 0)
        return self.requested

    def on_train_begin(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any) -> None:
        self.install()

    def on_step_end(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any) -> None:
        if self._shared_request():
            control.should_save = True
            control.should_evaluate = False
            control.should_training_stop = True

    def on_epoch_end(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any) -> None:
        if self.requested:  # the checkpoint was just written at step end; no second one, no evaluation
            control.should_save = False
            control.should_evaluate = False

    def on_train_end(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any) -> None:
        self.restore()
