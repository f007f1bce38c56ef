"""``atc-whisper prepare``: synthesise and augment ATC utterances into the catalogue."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import click

from .common import app_from_options, settings_options


def print_prepare_summary(report: Any) -> None:
    """The end-of-run summary: what was added, the catalogue by split/role/engine, skips."""
    from rich.console import Console
    from rich.table import Table

    console = Console()
    totals = report.totals
    head = Table(title="Prepared data", show_edge=False)
    head.add_column("")
    head.add_column("value", justify="right")
    head.add_row("utterances requested", str(report.requested))
    head.add_row("utterances added / already complete", f"{report.added_utterances} / {report.already_complete}")
    head.add_row("samples added (clean + radio)", str(report.added_samples))
    if report.replaced_samples:
        head.add_row("samples replaced (an older generator's words)", str(report.replaced_samples))
    head.add_row("catalogue samples (radio variants)", f"{totals.get('samples', 0)} ({totals.get('augmented', 0)})")
    head.add_row("catalogue hours", f"{totals.get('hours', 0.0):.3f}")
    head.add_row("time", f"{report.seconds:.1f} s")
    console.print(head)
    breakdown = Table(title="Catalogue by", show_edge=False)
    for title in ("split", "n", "role", "n ", "engine", "n  "):
        breakdown.add_column(title, justify="right" if title.startswith("n") else "left")
    columns = [list(totals.get(k, {}).items()) for k in ("by_split", "by_role", "by_engine")]
    for i in range(max((len(c) for c in columns), default=0)):
        cells: list[str] = []
        for col in columns:
            cells += [col[i][0], str(col[i][1])] if i < len(col) else ["", ""]
        breakdown.add_row(*cells)
    console.print(breakdown)
    from ..data.prepare import voice_summary

    voices = voice_summary(totals.get("by_voice", {}))
    if voices:
        table = Table(title="Voices (utterances; CPU s: TTS CPU seconds per clip in this run)", show_edge=False)
        for title in ("engine", "utt", "voices", "blends", "top voice", "share", "CPU s"):
            if title == "top voice":  # the long one gives way when the terminal is narrow
                table.add_column(title, overflow="ellipsis", no_wrap=True, max_width=22)
            else:
                table.add_column(title, justify="left" if title == "engine" else "right", no_wrap=True,
                                 min_width=max(len(title), 8 if title == "engine" else 5))
        for row in voices:
            cost = report.synthesis.get(row["engine"])
            per_clip = f"{cost['cpu_seconds'] / cost['clips']:.2f}" if cost and cost["clips"] else "-"
            table.add_row(row["engine"], str(row["utterances"]), str(row["voices"]), str(row["blends"]),
                          row["top_voice"], f"{row['top_share']:.1%}", per_clip)
        console.print(table)
        if report.workers > 1:
            console.print(f"synthesis: {report.workers} worker processes")
    if report.skipped:
        reasons = Counter(reason.split(":")[0] for _, reason in report.skipped)
        console.print(f"[yellow]skipped {len(report.skipped)}:[/] " + "; ".join(f"{r} ({n})" for r, n in reasons.items()))
        for item, reason in report.skipped[:10]:
            console.print(f"  {item}: {reason}")
    console.print(f"metadata:   {report.metadata_csv}")
    console.print(f"vocabulary: {report.vocabulary_path}")


@click.command("prepare")
@click.option("-n", "--samples", type=int, default=None, help="Synthetic utterances to generate [default: data.samples = 10].")
@click.option("--seed", type=int, default=None, help="Generator seed [default: data.seed].")
@click.option("--augmented-per-sample", type=int, default=None,
              help="Radio-channel variants per clean clip [default: data.augmented_per_sample].")
@click.option("--workers", type=int, default=None,
              help="Synthesis processes; 0 = one per core [default: data.workers = 0].")
@click.option("--no-progress", is_flag=True, help="No progress bar.")
@settings_options
def prepare_command(samples: int | None, seed: int | None, augmented_per_sample: int | None, workers: int | None,
                    no_progress: bool, config_file: Path | None, workspace_dir: Path | None,
                    overrides: tuple[str, ...]) -> None:
    """Generate ATC utterances, synthesise them with TTS voices, add radio-channel variants
    and record everything in the catalogue (data/atc_dataset/atc_dataset.db + metadata.csv).

    Interrupted runs resume where they stopped; asking for more samples adds only the new ones.
    """
    from ..data.prepare import prepare_dataset

    app = app_from_options(config_file, workspace_dir, overrides, {
        "data": {"samples": samples, "seed": seed, "augmented_per_sample": augmented_per_sample, "workers": workers},
    })
    report = prepare_dataset(app.workspace, app.settings, progress=not no_progress)
    print_prepare_summary(report)


COMMANDS = [prepare_command]
