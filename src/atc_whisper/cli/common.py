"""Shared CLI plumbing: settings/workspace options, the app context, error reporting.

Command modules (``*_cmd.py`` in this package) stay thin: they declare options, build an
:class:`App` with :func:`app_from_options` and call library functions.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import click

from ..config import Settings, load_settings
from ..log import setup_logging
from ..workspace import Workspace

F = TypeVar("F", bound=Callable[..., Any])
#: Where ``--preset`` is kept for :func:`app_from_options` (click's meta is shared by nested contexts).
PRESET_KEY = "atc_whisper.preset"


@dataclass
class App:
    """What a command needs: resolved settings and the workspace."""

    settings: Settings
    workspace: Workspace
    debug: bool = False


def _remember_preset(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value:
        ctx.meta[PRESET_KEY] = value
    return value


#: Raw PCM sample formats a ``--stdin`` source reads (:class:`atc_whisper.live.sources.PcmSource`).
PCM_FORMATS = ("s16le", "s32le", "f32le", "u8")


def pcm_options(func: F) -> F:
    """Add ``--rate``, ``--format`` and ``--channels``: the layout of raw PCM on standard input
    (``live --stdin``, ``serve --stdin``)."""
    func = click.option("--channels", type=click.IntRange(1, 32), default=1, show_default=True,
                        help="With --stdin: interleaved channels (averaged to mono).")(func)
    func = click.option("--format", "fmt", type=click.Choice(PCM_FORMATS), default="s16le", show_default=True,
                        help="With --stdin: sample format.")(func)
    # 16000 = SAMPLE_RATE, written out so that `--help` does not import the audio stack.
    func = click.option("--rate", type=click.IntRange(4000, 384_000), default=16_000, show_default=True,
                        help="With --stdin: sample rate of the PCM, Hz.")(func)
    return func


def settings_options(func: F) -> F:
    """Add ``--config``, ``--workspace``, ``--preset`` and ``--set`` to a command."""
    func = click.option(
        "--preset", metavar="NAME", default=None, expose_value=False, callback=_remember_preset,
        help="Apply a shipped settings preset over the workspace config, e.g. 'prototype' (the prototype's "
             "10 samples, 1 epoch, batch 2).",
    )(func)
    func = click.option(
        "--set", "overrides", multiple=True, metavar="SECTION.KEY=VALUE",
        help="Override one setting, e.g. --set train.epochs=3 (repeatable).",
    )(func)
    func = click.option(
        "-w", "--workspace", "workspace_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
        help="Workspace folder (default: $ATC_WHISPER_WORKSPACE or the current folder).",
    )(func)
    func = click.option(
        "-c", "--config", "config_file", type=click.Path(dir_okay=True, path_type=Path), default=None,
        help="TOML config file; its values override the workspace's atc_whisper.toml.",
    )(func)
    return func


def app_from_options(
    config_file: Path | None,
    workspace_dir: Path | None,
    overrides: tuple[str, ...],
    options: dict[str, dict[str, Any]] | None = None,
    log_to_file: bool = True,
) -> App:
    """Resolve the workspace and settings, set up logging, and remember them for ``--profile``."""
    workspace = Workspace.at(workspace_dir)
    cleaned = {s: {k: v for k, v in d.items() if v is not None} for s, d in (options or {}).items()}
    ctx = click.get_current_context()
    settings = load_settings(config_file, workspace.config_path, overrides, {s: d for s, d in cleaned.items() if d},
                             preset=ctx.meta.get(PRESET_KEY))
    root = ctx.find_root()
    debug = bool(root.meta.get("atc_whisper.debug"))
    # Only an initialised workspace gets a log file: `transcribe x.wav` in any folder must not
    # leave atc_model_training.log behind.
    initialised = any(p.exists() for p in (workspace.config_path, workspace.dataset_dir, workspace.model_dir))
    app = App(settings=settings, workspace=workspace, debug=debug)
    enable_logging(app, to_file=log_to_file and initialised)
    root.meta["atc_whisper.workspace"] = workspace
    return app


def enable_logging(app: App, to_file: bool = True) -> None:
    """(Re)attach the console handler and, with ``to_file``, the workspace's log file."""
    root = click.get_current_context().find_root()
    level = "DEBUG" if app.debug else ("WARNING" if root.meta.get("atc_whisper.quiet") else "INFO")
    setup_logging(app.workspace.log_file if to_file else None, level=level)


def echo_error(message: str) -> None:
    """Print the one-line error the user sees."""
    click.secho(f"Error: {message}", fg="red", err=True)


def pass_app(func: F) -> F:
    """Decorator form: the command receives ``app`` built from the settings options."""

    @settings_options
    @functools.wraps(func)
    def wrapper(config_file: Path | None, workspace_dir: Path | None, overrides: tuple[str, ...], **kwargs: Any) -> Any:
        app = app_from_options(config_file, workspace_dir, overrides)
        return func(app, **kwargs)

    return wrapper  # type: ignore[return-value]
