"""``atc-whisper train``: fine-tune a Whisper model on the workspace's catalogue."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from .common import app_from_options, settings_options

_MODES = ("auto", "full", "frozen_encoder", "decoder_cached", "lora")


@click.command("train")
@click.option("--model", "model", default=None, help="Model to start from: Hugging Face id, HF folder or CTranslate2 folder.")
@click.option("--epochs", type=float, default=None, help="Training epochs (train.epochs).")
@click.option("--batch-size", type=int, default=None, help="Samples per device per step (train.batch_size).")
@click.option("--lr", "learning_rate", type=float, default=None, help="Peak learning rate (train.learning_rate).")
@click.option("--max-steps", type=int, default=None, help="Stop after N optimiser steps; 0 trains for --epochs.")
@click.option("--mode", type=click.Choice(_MODES), default=None,
              help="What to train; auto = decoder_cached on CPU, full on CUDA (train.mode).")
@click.option("--device", type=click.Choice(("auto", "cpu", "cuda")), default=None, help="Where to train (model.device).")
@click.option("--resume", is_flag=True, help="Continue from the last checkpoint (same data order and schedule).")
@click.option("--output", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Model folder (default: models/atc_whisper in the workspace).")
@click.option("--no-progress", is_flag=True, help="No progress bars (log lines only).")
@settings_options
def train_command(model: str | None, epochs: float | None, batch_size: int | None, learning_rate: float | None,
                  max_steps: int | None, mode: str | None, device: str | None, resume: bool, output: Path | None,
                  no_progress: bool, config_file: Path | None, workspace_dir: Path | None,
                  overrides: tuple[str, ...]) -> None:
    """Fine-tune Whisper on the catalogue's train split, keeping the best model by dev WER.

    Watch it learn with `tensorboard --logdir models/atc_whisper/logs`. Ctrl-C saves a
    checkpoint and stops; `--resume` continues from it.
    """
    options: dict[str, dict[str, Any]] = {
        "train": {"epochs": epochs, "batch_size": batch_size, "learning_rate": learning_rate,
                  "max_steps": max_steps, "mode": mode},
        "model": {"device": device, "name": model},
    }
    app = app_from_options(config_file, workspace_dir, overrides, options)
    from ..train import train_model

    result = train_model(app.workspace, app.settings, resume=resume, progress=not no_progress, output_dir=output)
    metrics = result.metrics
    if result.run_id is None:  # a non-main data-parallel process: rank 0 prints the summary
        return
    wer = metrics.get("dev_wer")
    click.echo("")
    click.echo(f"Training finished: {result.steps} steps in {result.train_seconds:.1f} s "
               f"({result.samples_per_s:.2f} samples/s, mode {result.mode}, peak RSS {result.peak_rss_mb:.0f} MiB).")
    click.echo(f"  train loss {metrics.get('train_loss', float('nan')):.4f}"
               + (f", dev loss {metrics['dev_loss']:.4f}" if "dev_loss" in metrics else "")
               + (f", dev WER {100 * wer:.1f} % (best, step {metrics.get('dev_step')})" if wer is not None else ""))
    mix = metrics.get("source_mix") or {}
    if mix:
        click.echo("  mix per epoch (train.source_weights): " + ", ".join(
            f"{key} {100 * m['share']:.0f} % ({m['per_epoch']} draws from {m['clips']} clips)" for key, m in mix.items()))
    click.echo(f"  model: {result.model_dir}")
    click.echo(f"  watch: tensorboard --logdir {result.model_dir / 'logs'}")


COMMANDS = [train_command]
