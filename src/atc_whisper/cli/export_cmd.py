"""``atc-whisper export``: write a CTranslate2 copy of a Whisper model for fast inference."""

from __future__ import annotations

import time
from pathlib import Path

import click

from ..models.export import QUANTIZATIONS
from .common import app_from_options, settings_options


@click.command("export")
@click.argument("model", required=False)
@click.option("--format", "fmt", type=click.Choice(["ct2"]), default="ct2", show_default=True,
              help="Output format: ct2 = CTranslate2, loadable by faster-whisper.")
@click.option("--quantization", type=click.Choice(QUANTIZATIONS), default="int8", show_default=True,
              help="Weight type of the export; int8 is smallest and fastest on CPU.")
@click.option("-o", "--output", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Output folder (default: models/ct2/<model>-<quantization> in the workspace).")
@click.option("--offline", is_flag=True, default=None, help="Never contact the Hugging Face Hub.")
@click.option("--force", is_flag=True, help="Re-export even if an up-to-date export exists.")
@settings_options
def export_command(model: str | None, fmt: str, quantization: str, output: Path | None, offline: bool | None,
                   force: bool, config_file: Path | None, workspace_dir: Path | None,
                   overrides: tuple[str, ...]) -> None:
    """Export MODEL to CTranslate2 so faster-whisper can run it.

    MODEL is anything --model accepts: a Hugging Face id, a local Hugging Face or CTranslate2
    Whisper folder (default: the fine-tuned models/atc_whisper if present, else model.name).
    """
    app = app_from_options(config_file, workspace_dir, overrides, {"model": {"offline": offline}})
    from ..models.export import export_ct2
    from ..models.resolve import default_model_name, resolve_model

    name = model or default_model_name(app.settings.model.name, app.workspace)
    started = time.perf_counter()
    resolved = resolve_model(name, app.workspace, offline=app.settings.model.offline)
    out = export_ct2(resolved.hf_dir, app.workspace, quantization=quantization, out_dir=output, force=force)
    size_mb = sum(p.stat().st_size for p in out.iterdir() if p.is_file()) / 1e6
    click.echo(f"Exported {resolved.name} ({fmt}, {quantization}, {size_mb:.0f} MB) in "
               f"{time.perf_counter() - started:.1f} s to {out}")


COMMANDS = [export_command]
