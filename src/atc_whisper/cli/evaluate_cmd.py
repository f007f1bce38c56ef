"""``atc-whisper evaluate``: base vs fine-tuned in ATC terms, with reports and plots."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import click

from .common import app_from_options, settings_options

_ROWS = (
    ("n", "samples", "int"),
    ("wer", "WER (normalised)", "pct"),
    ("raw_wer", "WER (raw: case/punctuation only)", "pct"),
    ("cer", "CER", "pct"),
    ("ser", "sentence error rate", "pct"),
    ("median_utt_wer", "median utterance WER", "pct"),
    ("hits", "correct words", "int"),
    ("insertion_rate", "insertions per reference word", "pct"),
    ("callsign_acc", "callsign accuracy", "pct"),
    ("callsign_acc_biased", "callsign accuracy, biased (--callsigns / --context)", "pct"),
    ("command_acc", "command accuracy (type + value)", "pct"),
    ("role_acc", "speaker role accuracy", "pct"),
    ("low_confidence_share", "flagged low-confidence", "pct"),
    ("rtf", "real-time factor (decode s / audio s)", "num"),
)


def _cell(value: Any, kind: str) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    if kind == "pct":
        return f"{100 * value:.1f} %"
    if kind == "int":
        return str(int(value))
    return f"{value:.3f}"


def print_summary(result: Any) -> None:
    """Print the base vs fine-tuned table and where the files are."""
    from rich.console import Console
    from rich.table import Table

    console = Console()
    labels = list(result.summary)
    table = Table(title="Evaluation", show_edge=False)
    table.add_column("")
    for label in labels:
        table.add_column(label.replace("_", "-"), justify="right")
    for key, title, kind in _ROWS:
        if not any(key in result.summary[label] for label in labels):
            continue
        table.add_row(title, *[_cell(result.summary[label].get(key), kind) for label in labels])
    console.print(table)
    _print_callsign_misses(console, result)
    _print_by_source(console, result)
    context = result.report.get("context")
    if context:
        covered = context.get("reference_callsign_in_list")
        console.print(
            f"recording context: {context['samples_with_list']} of {context['n_samples']} samples have a callsign "
            f"list (mean {context['mean_list_size']:.1f} callsigns); the reference callsign is in its list for "
            f"{_cell(covered, 'pct')} of {context['samples_with_callsign_and_list']} samples with a callsign"
        )
        for label in labels:
            subset = (result.report["models"][label].get("biasing") or {}).get("samples_with_list")
            if subset:
                console.print(f"  {label.replace('_', '-')}: callsign accuracy on those samples "
                              f"{_cell(subset['callsign_acc'], 'pct')} without, "
                              f"{_cell(subset['callsign_acc_biased'], 'pct')} with their recording's callsigns")
    for label in labels:
        console.print(f"{label.replace('_', '-')}: {result.summary[label]['model']}")
    paths = result.paths
    if paths["report"]:
        console.print(f"report:  {paths['report']}")
        console.print(f"results: {paths['results']}")
        for plot in paths["plots"]:
            console.print(f"plot:    {plot}")
        if paths["tensorboard"]:
            console.print(f"TensorBoard: tensorboard --logdir {paths['tensorboard']}")


def _print_callsign_misses(console: Any, result: Any) -> None:
    """One line per model: how its misheard callsigns went wrong (nothing heard, airline, number ...)."""
    for label in result.summary:
        misses = result.summary[label].get("callsign_misses") or {}
        if sum(misses.values()):
            parts = ", ".join(f"{kind.replace('_', ' ')} {n}" for kind, n in misses.items() if n)
            console.print(f"callsign misses, {label.replace('_', '-')}: {parts}")


def _print_by_source(console: Any, result: Any) -> None:
    """WER, callsign and command accuracy per source (real and synthetic side by side), when there are several."""
    from rich.table import Table

    labels = [label for label in result.summary if result.summary[label].get("by_source")]
    if not labels:
        return
    biased = any("callsign_acc_biased" in f for label in labels for f in result.summary[label]["by_source"].values())
    table = Table(title="Per source", show_edge=False)
    table.add_column("source", no_wrap=True)
    if len(labels) > 1:
        table.add_column("model", no_wrap=True)
    for title in ("samples", "WER", "callsign", *(("callsign biased",) if biased else ()), "command"):
        table.add_column(title, justify="right")
    for source in result.summary[labels[0]]["by_source"]:
        for label in labels:
            figures = result.summary[label]["by_source"].get(source, {})
            cells = [source] + ([label.replace("_", "-")] if len(labels) > 1 else [])
            cells += [_cell(figures.get("n_utterances"), "int"), _cell(figures.get("wer"), "pct"),
                      _cell(figures.get("callsign_acc"), "pct")]
            if biased:
                cells.append(_cell(figures.get("callsign_acc_biased"), "pct"))
            cells.append(_cell(figures.get("command_acc"), "pct"))
            table.add_row(*cells)
    console.print(table)


@click.command("evaluate")
@click.option("--model", "model", default=None,
              help="Model to evaluate as fine-tuned (folder or Hugging Face id); default: the workspace's models/atc_whisper.")
@click.option("--base", "base", default=None, help="Base model to compare with; default: model.name.")
@click.option("--no-base", is_flag=True, help="Skip the base model (no before/after comparison).")
@click.option("--split", type=click.Choice(["train", "dev", "test", "all"]), default=None,
              help="Catalogue split to evaluate (evaluate.split, default test).")
@click.option("--source", default=None,
              help="Only samples of this source, e.g. synthetic or an imported corpus (a prefix ending in ':' matches a family).")
@click.option("--max-samples", type=click.IntRange(min=0), default=None,
              help="Evaluate at most N samples, spread over the selection (evaluate.max_samples; 0 = all).")
@click.option("--callsigns", "callsigns", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Known callsigns, one per line: also measure callsign accuracy with biasing (prompt + snapping).")
@click.option("--context", type=click.Choice(["none", "recording"]), default=None,
              help="recording: also decode each sample biased with its own recording's callsigns nearby (the "
                   "ATCO2 .info files stored at import) and report callsign accuracy with and without "
                   "(decode.context).")
@click.option("--engine", type=click.Choice(["auto", "ct2", "hf"]), default=None,
              help="Inference engine (decode.engine).")
@settings_options
def evaluate_command(model: str | None, base: str | None, no_base: bool, split: str | None, source: str | None,
                     max_samples: int | None, callsigns: Path | None, context: str | None, engine: str | None,
                     config_file: Path | None, workspace_dir: Path | None, overrides: tuple[str, ...]) -> None:
    """Evaluate the fine-tuned model against the base model on the test split.

    Reports WER (ATC-normalised and raw), CER, sentence error rate, callsign and command
    accuracy, per source / speaker role / voice / SNR bucket, with confidence and an
    accuracy-vs-coverage curve. With --callsigns or --context recording, callsign accuracy
    with and without callsign biasing. Writes models/atc_whisper/evaluation_report.json,
    evaluation_results.csv, PNG plots, catalogue results and TensorBoard logs.
    """
    from ..evaluate.evaluate import run_evaluation

    app = app_from_options(config_file, workspace_dir, overrides)
    quiet = bool(click.get_current_context().find_root().meta.get("atc_whisper.quiet"))
    result = run_evaluation(
        app.workspace, app.settings, model=model, base=base, compare_base=False if no_base else None,
        split=split, source=source, max_samples=max_samples,
        callsigns_file=callsigns, context=context, engine=engine, progress=not quiet,
    )
    print_summary(result)


COMMANDS = [evaluate_command]
