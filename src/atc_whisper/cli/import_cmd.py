"""``atc-whisper import``: bring a real ATC corpus into the catalogue."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import click

from .common import app_from_options, settings_options

_FORMATS = ("generic", "atco2", "atcosim")


@click.command("import")
@click.argument("fmt", metavar="FORMAT", type=click.Choice(_FORMATS))
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--name", default=None, help="Catalogue name of a generic corpus (source generic:NAME) [default: file/folder name].")
@click.option("--split", type=click.Choice(("train", "dev", "test")), default=None,
              help="Put every sample in this split (e.g. test for an evaluation set) instead of splitting by speaker/recording.")
@click.option("--no-progress", is_flag=True, help="No progress bar.")
@settings_options
def import_command(fmt: str, path: Path, name: str | None, split: str | None, no_progress: bool,
                   config_file: Path | None, workspace_dir: Path | None, overrides: tuple[str, ...]) -> None:
    """Import the corpus at PATH in FORMAT (generic, atco2 or atcosim).

    generic: a CSV/TSV manifest (columns audio,text[,start,end,speaker,role]) or a folder of
    audio files each with a same-name .txt transcript. atco2: folder of <rec>.wav + <rec>.xml
    (+ <rec>.info: airport, channel, callsigns nearby, stored per recording).
    atcosim: the corpus folder with WAVdata/ and TXTdata/. Bad items are skipped with a reason;
    re-running resumes.
    """
    from ..data.importers import import_corpus

    app = app_from_options(config_file, workspace_dir, overrides)
    report = import_corpus(fmt, path, app.workspace, app.settings, name=name, split=split, progress=not no_progress)
    click.echo(f"{report.source}: {report.imported} samples imported ({report.hours_added:.3f} h), "
               f"{report.already} already in the catalogue, {len(report.skipped)} skipped.")
    if report.by_split:
        click.echo("by split: " + ", ".join(f"{s} {n}" for s, n in sorted(report.by_split.items())))
    notes = []
    if report.clamped:
        notes.append(f"{report.clamped} segment end(s) past the end of the audio clamped to it "
                     f"(within data.end_tolerance_s = {app.settings.data.end_tolerance_s:g} s)")
    if report.foreign_stripped:
        notes.append(f"{report.foreign_stripped} segment(s) kept without their non-English words (data.non_english = strip)")
    if report.recordings:
        notes.append(f"{report.recordings} recording context(s) stored (airport, channel, callsigns nearby; "
                     "use evaluate --context recording)")
    for note in notes:
        click.echo(f"note: {note}")
    if report.skipped:
        tally = Counter(reason.split(":")[0].split("(")[0].strip() for _, reason in report.skipped)
        click.echo("skipped: " + "; ".join(f"{r} ({n})" for r, n in tally.most_common()))
        for item, reason in report.skipped[:20]:
            click.echo(f"  {item}: {reason}")
        if len(report.skipped) > 20:
            click.echo(f"  ... {len(report.skipped) - 20} more (see the catalogue's skipped table)")


COMMANDS = [import_command]
