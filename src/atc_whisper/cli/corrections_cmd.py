"""``atc-whisper live export-corrections``: corrected live transcripts -> an importable manifest."""

from __future__ import annotations

from pathlib import Path

import click

from .common import app_from_options, settings_options


@click.command("export-corrections")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Manifest to write (default: data/live/corrections.csv in the workspace).")
@settings_options
def export_corrections_command(output: Path | None, config_file: Path | None, workspace_dir: Path | None,
                               overrides: tuple[str, ...]) -> None:
    """Write every corrected live transcript (with saved audio) to a generic-importer manifest.

    Corrections are made in the web view (`atc-whisper serve`) or with PATCH
    /api/transmissions/ID; the machine text is kept beside each. The manifest lists the
    corrected text with the audio, so `atc-whisper import generic MANIFEST` and `train`
    learn from them. The file is rewritten whole each time.
    """
    from ..data.catalogue import Catalogue
    from ..data.corrections import CORRECTIONS_NAME, export_corrections

    app = app_from_options(config_file, workspace_dir, overrides)
    path = output or app.workspace.live_dir / CORRECTIONS_NAME
    with Catalogue(app.workspace.db_path, root=app.workspace.root) as catalogue:
        report = export_corrections(catalogue, path)
    click.echo(f"{report.rows} corrected transmissions written to {report.path}"
               + (f" ({len(report.without_audio)} corrected without saved audio left out)" if report.without_audio else "")
               + ".")
    if report.rows:
        click.echo(f"Import them for training with: {report.import_command}")


COMMANDS: list[click.Command] = []  # registered under `live` by live_cmd
