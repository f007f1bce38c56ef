"""``atc-whisper init``: create a workspace."""

from __future__ import annotations

from pathlib import Path

import click

from ..workspace import Workspace
from .common import app_from_options, enable_logging, settings_options


@click.command("init")
@click.argument("directory", required=False, type=click.Path(file_okay=False, path_type=Path))
@click.option("--force", is_flag=True, help="Rewrite atc_whisper.toml even if it exists (your edits are lost).")
@settings_options
def init_command(directory: Path | None, force: bool, config_file: Path | None, workspace_dir: Path | None,
                 overrides: tuple[str, ...]) -> None:
    """Create the workspace layout and a commented config file in DIRECTORY (default: workspace)."""
    workspace = Workspace.at(directory or workspace_dir)
    app = app_from_options(config_file, workspace.root, overrides, log_to_file=False)
    created = workspace.create(app.settings, overwrite_config=force)
    enable_logging(app)  # now log into the new workspace
    for path in created:
        click.echo(f"created {path}")
    click.echo(f"Workspace ready at {workspace.root} (settings: {workspace.config_path.name}).")


COMMANDS = [init_command]
