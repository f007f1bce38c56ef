"""``atc-whisper config``: show the resolved settings."""

from __future__ import annotations

import click

from ..config import render_toml
from .common import App, pass_app


@click.command("config")
@pass_app
def config_command(app: App) -> None:
    """Print the settings in force (defaults, config files and --set overrides merged) as TOML."""
    click.echo(render_toml(app.settings, f"# resolved settings for workspace {app.workspace.root}"))


COMMANDS = [config_command]
