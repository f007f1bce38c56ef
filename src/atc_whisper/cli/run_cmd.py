"""``atc-whisper run``: the whole pipeline with the embedded defaults."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from .common import app_from_options, enable_logging, settings_options

_STAGE_TITLES = {
    "init": "Workspace",
    "prepare": "Synthetic ATC data",
    "train": "Fine-tuning",
    "evaluate": "Evaluation (base vs fine-tuned)",
}


def _pct(value: Any) -> str:
    return "-" if value is None else f"{100 * float(value):.1f} %"


def _print_summary(summary: dict[str, Any], outcomes: list[Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(stderr=False, width=max(100, Console().width))
    stages = Table(title="Stages", show_edge=False)
    for col in ("stage", "status", "time"):
        stages.add_column(col)
    for outcome in outcomes:
        status = {"done": "[green]done[/]", "skipped": "[cyan]up to date[/]"}.get(outcome.status, outcome.status)
        stages.add_row(_STAGE_TITLES.get(outcome.name, outcome.name), status, f"{outcome.seconds:.1f} s")
    console.print(stages)

    examples = summary.get("examples") or []
    if examples:
        shown = Table(title="Example transcripts (test split)", show_edge=False, show_lines=True)
        shown.add_column("audio", overflow="fold")
        for col in ("reference", "base", "fine_tuned"):
            if col in examples[0]:
                shown.add_column(col.replace("_", "-"), overflow="fold")
        for example in examples:
            shown.add_row(*[example.get(k, "") for k in ("audio", "reference", "base", "fine_tuned") if k in example])
        console.print(shown)

    table = Table(title="ATC Whisper pipeline summary", show_edge=False)
    table.add_column("")
    table.add_column("value", overflow="fold")
    samples = summary.get("samples")
    if samples:
        table.add_row("samples (train / dev / test)", f"{samples['train']} / {samples['dev']} / {samples['test']}")
    if summary.get("training_seconds") is not None:
        table.add_row("training time", f"{float(summary['training_seconds']):.1f} s")
    evaluation = summary.get("evaluation") or {}
    models = evaluation.get("models", evaluation)
    for label in ("base", "fine_tuned"):
        metrics = models.get(label) if isinstance(models, dict) else None
        if isinstance(metrics, dict):
            table.add_row(f"{label.replace('_', '-')} WER (normalised)", _pct(metrics.get("wer")))
            table.add_row(f"{label.replace('_', '-')} callsign accuracy", _pct(metrics.get("callsign_acc")))
    table.add_row("fine-tuned model", summary["model_dir"])
    table.add_row("evaluation report", summary["evaluation_report"])
    table.add_row("per-sample results", summary["evaluation_results"])
    table.add_row("watch training", summary["tensorboard"])
    console.print(table)


@click.command("run")
@click.option("--force", is_flag=True, help="Redo every stage, even those whose outputs are up to date.")
@click.option("--stages", default="init,prepare,train,evaluate", show_default=True,
              help="Comma-separated stages to run, in pipeline order.")
@click.option("--samples", type=int, default=None, help="Synthetic utterances to generate (data.samples).")
@click.option("--epochs", type=float, default=None, help="Training epochs (train.epochs).")
@click.option("--batch-size", type=int, default=None, help="Training batch size (train.batch_size).")
@click.option("--model", "model_name", default=None, help="Pretrained model to start from (model.name).")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default=None, help="Where to run (model.device).")
@settings_options
def run_command(force: bool, stages: str, samples: int | None, epochs: float | None, batch_size: int | None,
                model_name: str | None, device: str | None, config_file: Path | None, workspace_dir: Path | None,
                overrides: tuple[str, ...]) -> None:
    """Run the whole pipeline: init -> prepare -> train -> evaluate.

    Stages whose inputs and settings are unchanged since their last run are skipped
    (use --force to redo them). Ends with a summary table and where the files are.
    """
    from ..pipeline import run_pipeline

    app = app_from_options(
        config_file, workspace_dir, overrides,
        {"data": {"samples": samples}, "train": {"epochs": epochs, "batch_size": batch_size},
         "model": {"name": model_name, "device": device}},
    )
    chosen = tuple(s.strip() for s in stages.split(",") if s.strip())
    if "init" in chosen:
        app.workspace.create(app.settings)
        enable_logging(app)

    def on_stage(stage: str, event: str) -> None:
        title = _STAGE_TITLES.get(stage, stage)
        if event == "start":
            click.secho(f"==> {title}", bold=True, err=True)
        elif event == "skipped":
            click.secho(f"==> {title}: up to date, skipped (use --force to redo)", fg="cyan", err=True)

    result = run_pipeline(app.workspace, app.settings, force=force, stages=chosen, on_stage=on_stage)
    _print_summary(result.summary, result.stages)


COMMANDS = [run_command]
