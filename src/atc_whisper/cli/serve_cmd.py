"""``atc-whisper serve``: the live web view and the local HTTP API."""

from __future__ import annotations

from pathlib import Path

import click

from .common import app_from_options, settings_options

_PCM_FORMATS = ("s16le", "s32le", "f32le", "u8")


@click.command("serve")
@click.option("--source", "sources", multiple=True, metavar="NAME=SPEC",
              help="A frequency to listen to, named: SPEC is a URL, file:PATH, device:NAME|INDEX, stdin or an audio "
                   "file (repeatable), e.g. --source \"LKPR Radar=http://example.net/feed.mp3\".")
@click.option("--url", "urls", multiple=True, help="A network stream to listen to, named after it (repeatable).")
@click.option("--file", "files", multiple=True, type=click.Path(dir_okay=False, path_type=Path),
              help="An audio file to transcribe as if live (repeatable).")
@click.option("--realtime", is_flag=True, help="Replay --file sources at real-time pace.")
@click.option("--device", "devices", multiple=True, metavar="NAME|INDEX", help="An input device to listen to (repeatable).")
@click.option("--stdin", "stdin", is_flag=True, help="Listen to raw PCM on standard input.")
@click.option("--rate", type=click.IntRange(4000, 384_000), default=16_000, show_default=True,
              help="With --stdin: sample rate of the PCM, Hz.")
@click.option("--format", "fmt", type=click.Choice(_PCM_FORMATS), default="s16le", show_default=True,
              help="With --stdin: sample format.")
@click.option("--channels", type=click.IntRange(1, 32), default=1, show_default=True,
              help="With --stdin: interleaved channels (averaged to mono).")
@click.option("--host", default=None,
              help="Address to listen on (default: serve.host, 127.0.0.1). Anything else is reachable from other "
                   "machines: it must be given here and prints a warning.")
@click.option("--port", type=click.IntRange(0, 65535), default=None,
              help="TCP port (default: serve.port, 8765; 0 picks a free one and prints it).")
@click.option("--token", envvar="ATC_WHISPER_TOKEN", default=None, show_envvar=True,
              help="Require this token on every request (Authorization: Bearer TOKEN, or open the page as /?token=TOKEN).")
@click.option("--model", default=None,
              help="Model: HF id, HF folder or CTranslate2 folder (default: the workspace's fine-tuned model, else model.name).")
@click.option("--engine", type=click.Choice(["auto", "ct2", "hf"]), default=None,
              help="Inference engine (default: decode.engine; auto prefers CTranslate2 int8).")
@click.option("--save-audio/--no-save-audio", default=None,
              help="Save each transmission's audio for the page's play button and for corrections (serve.save_audio).")
@click.option("--jsonl", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="JSON-lines file of the live transcripts (default: data/live/transcripts.jsonl in the workspace).")
@settings_options
def serve_command(sources: tuple[str, ...], urls: tuple[str, ...], files: tuple[Path, ...], realtime: bool,
                  devices: tuple[str, ...], stdin: bool, rate: int, fmt: str, channels: int, host: str | None,
                  port: int | None, token: str | None, model: str | None, engine: str | None,
                  save_audio: bool | None, jsonl: Path | None, config_file: Path | None,
                  workspace_dir: Path | None, overrides: tuple[str, ...]) -> None:
    """Serve the live web view and the HTTP API, listening to any number of frequencies.

    Open the printed address in a browser: one column per frequency, transmissions as they
    are decoded, callsigns and commands, low-confidence marks, a play button, search over
    past transcripts, and corrections made in place and exported for training. Other programs
    can POST audio to /v1/audio/transcriptions as to OpenAI's endpoint.

    \b
    Examples:
      atc-whisper serve --source "LKPR Radar=http://example.net/lkpr.mp3" --source "Tower=device:2"
      atc-whisper serve --file session.wav --realtime
      atc-whisper serve                                  # uploads and search only
      atc-whisper serve --host 0.0.0.0 --token s3cret    # reachable from the network
    """
    from ..serve import ServeOptions, gather_specs, serve

    app = app_from_options(config_file, workspace_dir, overrides, {"serve": {"save_audio": save_audio}})
    specs = gather_specs(sources, urls=urls, files=[str(f) for f in files], devices=devices, stdin=stdin)
    if realtime and not any(s.kind == "file" for s in specs):
        raise click.UsageError("--realtime only applies to file sources (--file or --source NAME=file:PATH).")
    options = ServeOptions(host=host, port=port, allow_remote=host is not None, token=token or None, model=model,
                           engine=engine, specs=specs, realtime=realtime, rate=rate, fmt=fmt, channels=channels,
                           jsonl=jsonl)
    summary = serve(app.settings, app.workspace, options, announce=lambda line: click.echo(line, err=line.startswith("Warning")))
    per = ", ".join(f"{name}: {n}" for name, n in summary["frequencies"].items())
    click.echo(f"Stopped. {summary['transmissions']} transmissions transcribed and stored" + (f" ({per})." if per else "."))
    for name, message in summary["errors"].items():
        click.echo(f"Error: frequency {name!r} stopped: {message}", err=True)


COMMANDS = [serve_command]
