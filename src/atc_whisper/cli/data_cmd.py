"""``atc-whisper data stats|check``: what the catalogue holds, and whether it is intact."""

from __future__ import annotations

from pathlib import Path

import click

from .common import App, app_from_options, pass_app, settings_options


@click.group("data")
def data_group() -> None:
    """Inspect and verify the dataset catalogue."""


def _open(app: App):  # type: ignore[no-untyped-def]
    from ..data.catalogue import Catalogue
    from ..errors import DataError

    if not app.workspace.db_path.exists():
        raise DataError(f"no catalogue at {app.workspace.db_path}; run 'atc-whisper prepare' or 'atc-whisper import' first.")
    return Catalogue(app.workspace.db_path)


@data_group.command("stats")
@pass_app
def stats_command(app: App) -> None:
    """Counts and hours per source, split and speaker role."""
    from rich.console import Console
    from rich.table import Table

    with _open(app) as catalogue:
        rows = catalogue.stats()
        skipped = len(catalogue.skipped())
        recordings = catalogue.recordings()
    table = Table(title=f"Catalogue {app.workspace.db_path}", show_edge=False)
    for col in ("source", "split", "role", "kind", "samples", "hours"):
        table.add_column(col, justify="right" if col in ("samples", "hours") else "left")
    n_total, h_total = 0, 0.0
    for r in rows:
        table.add_row(r["source"], r["split"], r["role"], "radio" if r["augmented"] else "clean/real",
                      str(r["n"]), f"{r['hours']:.3f}")
        n_total += r["n"]
        h_total += r["hours"]
    table.add_row("total", "", "", "", str(n_total), f"{h_total:.3f}", style="bold")
    Console().print(table)
    by_split: dict[str, tuple[int, float]] = {}
    for r in rows:
        n, h = by_split.get(r["split"], (0, 0.0))
        by_split[r["split"]] = (n + r["n"], h + r["hours"])
    click.echo("splits: " + ", ".join(f"{s} {n} ({h:.3f} h)" for s, (n, h) in sorted(by_split.items())))
    if skipped:
        click.echo(f"{skipped} item(s) were skipped by prepare/import (reasons in the catalogue's skipped table).")
    if recordings:
        with_list = [r for r in recordings if r.callsigns]
        mean = sum(len(r.callsigns) for r in with_list) / len(with_list) if with_list else 0.0
        click.echo(f"{len(recordings)} recording context(s) ({len(with_list)} with callsigns nearby, mean {mean:.1f}): "
                   "evaluate --context recording biases each sample with its recording's callsigns.")


@data_group.command("check")
@click.option("--prune", is_flag=True,
              help="Remove the rows of missing or modified files, so that re-running prepare/import re-makes them.")
@click.option("--no-progress", is_flag=True, help="No progress bar.")
@settings_options
def check_command(prune: bool, no_progress: bool, config_file: Path | None, workspace_dir: Path | None,
                  overrides: tuple[str, ...]) -> None:
    """Verify every sample's file exists and matches its sha256, and that no split leaks.

    Exits with status 1 when any problem is found (after --prune, only when leaks remain).
    """
    from ..data.splits import check_leakage
    from ..errors import DataError

    app = app_from_options(config_file, workspace_dir, overrides)
    with _open(app) as catalogue:
        n = catalogue.count()
        bad_files = catalogue.verify_files(progress=not no_progress)
        if prune and bad_files:
            removed = catalogue.delete_samples(uid for uid, _ in bad_files)
            click.echo(f"pruned {removed} sample row(s) whose file was missing or modified; "
                       "run 'atc-whisper prepare' / 'import' again to re-make them.")
        leaks = check_leakage(catalogue, list(app.settings.data.test_voices))
    file_problems = [] if prune else [f"sample {uid}: {problem}" for uid, problem in bad_files]
    for line in file_problems + leaks:
        click.secho(f"problem: {line}", fg="red", err=True)
    if file_problems or leaks:
        raise DataError(
            f"{n} samples checked: {len(file_problems)} file problem(s), {len(leaks)} split leak(s) (listed above). "
            "Restore the files, or run 'atc-whisper data check --prune' and then prepare/import again to re-make them."
        )
    click.echo(f"{n} samples checked: all files present and unmodified, no split leakage.")


COMMANDS = [data_group]
