"""``atc-whisper live``: transcribe a radio frequency as it is heard."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from ..errors import LiveSourceError
from .common import App, app_from_options, pcm_options, settings_options

if TYPE_CHECKING:
    from ..live.runner import LiveSummary, Sink
    from ..live.sources import AudioSource


@click.group("live", invoke_without_command=True)
@click.option("--device", default=None, metavar="NAME|INDEX", help="Input device (default: the system's default input).")
@click.option("--list-devices", is_flag=True, help="List input devices and exit.")
@click.option("--file", "file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Transcribe an audio file as if it were live.")
@click.option("--realtime", is_flag=True, help="With --file: replay at real-time pace instead of as fast as possible.")
@click.option("--stdin", "stdin", is_flag=True, help="Read raw PCM from standard input (e.g. piped from rtl_fm).")
@pcm_options
@click.option("--url", default=None, help="Network stream (HTTP/Icecast MP3/AAC, e.g. a LiveATC feed).")
@click.option("--model", default=None,
              help="Model: HF id, HF folder or CTranslate2 folder (default: the workspace's fine-tuned model, else model.name).")
@click.option("--engine", type=click.Choice(["auto", "ct2", "hf"]), default=None,
              help="Inference engine (default: decode.engine; auto prefers CTranslate2 int8).")
@click.option("--vad", type=click.Choice(["silero", "energy"]), default=None, help="Voice activity detector (segment.vad).")
@click.option("--threshold", type=float, default=None, help="VAD speech threshold 0-1 (segment.threshold).")
@click.option("--jsonl", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="JSON-lines file to append to (default: data/live/transcripts.jsonl in the workspace).")
@click.option("--save-audio/--no-save-audio", default=None,
              help="Save each transmission as WAV plus an importable manifest.csv (live.save_audio).")
@click.option("--no-catalogue", is_flag=True, help="Do not store transcripts in the catalogue database.")
@click.option("--duration", type=click.FloatRange(min=0.0, min_open=True), default=None,
              help="Stop after this many seconds of audio.")
@click.option("--callsigns", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Known callsigns, one per line: used as a decoding prompt and to snap recognised callsigns "
                   "to the nearest known one (default: decode.callsigns_file, relative to the workspace).")
@settings_options
@click.pass_context
def live_command(ctx: click.Context, device: str | None, list_devices: bool, file: Path | None, realtime: bool, stdin: bool, rate: int,
                 fmt: str, channels: int, url: str | None, model: str | None, engine: str | None, vad: str | None,
                 threshold: float | None, jsonl: Path | None, save_audio: bool | None, no_catalogue: bool,
                 duration: float | None, callsigns: Path | None, config_file: Path | None,
                 workspace_dir: Path | None, overrides: tuple[str, ...]) -> None:
    """Transcribe live radio: microphone/receiver, audio file, raw PCM on stdin or a network stream.

    Audio is cut into transmissions by voice activity detection; each one is transcribed,
    parsed (callsign, commands) and shown on one line, appended to a JSON-lines file and
    stored in the catalogue. Ctrl-C stops after transcribing the transmission in progress.

    \b
    Examples:
      atc-whisper live                                   # default microphone
      atc-whisper live --file tower.mp3 --realtime
      rtl_fm -f 118.1M -M am -s 24k - | atc-whisper live --stdin --rate 24000
      atc-whisper live --url http://example.net/feed.mp3 --save-audio
      atc-whisper live export-corrections                # corrections made in `serve` -> manifest
    """
    if ctx.invoked_subcommand is not None:
        return
    from ..live import open_source
    from ..live.sources import list_input_devices
    from ..transcribe.annotate import known_callsigns

    app = app_from_options(config_file, workspace_dir, overrides,
                           {"segment": {"vad": vad, "threshold": threshold}, "live": {"save_audio": save_audio}})
    if list_devices:
        devices = list_input_devices()
        for d in devices:
            mark = "*" if d["default"] else " "
            click.echo(f"{mark} [{d['index']}] {d['name']}  ({d['channels']} ch, {d['default_rate']:.0f} Hz)")
        if not devices:
            raise LiveSourceError("no audio input devices found.")
        return
    if realtime and not file:
        raise click.UsageError("--realtime only applies to --file.")
    known = known_callsigns(app.settings, app.workspace, callsigns)  # a bad list fails before the source opens
    source = open_source(app.settings, device=device, file=str(file) if file else None, realtime=realtime,
                         stdin=stdin, rate=rate, fmt=fmt, channels=channels, url=url)
    try:
        summary, interrupted = _run(app, source, model, engine, jsonl, no_catalogue, duration, known)
    finally:
        source.close()
    del summary
    if interrupted:
        # 128 + SIGINT, the shell's convention for "stopped by Ctrl-C"; SystemExit because
        # click's Context.exit code is not propagated by the entry point in this mode.
        raise SystemExit(130)


def _run(app: App, source: AudioSource, model: str | None, engine_name: str | None, jsonl: Path | None,
         no_catalogue: bool, duration: float | None, known: list[str] | None) -> tuple[LiveSummary, bool]:
    """Load the engine, wire the sinks and run the session; the summary is printed even on error."""
    from ..live.outputs import AudioSink, CatalogueSink, JsonlSink
    from ..live.runner import LiveSession, live_decode_settings, session_id
    from ..live.view import ConsoleView
    from ..models.resolve import default_model_name
    from ..transcribe import load_engine

    settings, workspace = live_decode_settings(app.settings), app.workspace
    model_name = model or default_model_name(settings.model.name, workspace)
    engine = load_engine(model_name, settings, workspace, engine=engine_name)
    jsonl_path = jsonl or workspace.live_dir / "transcripts.jsonl"
    view = ConsoleView()
    sinks: list[Sink] = []
    session_name = session_id()  # the records' session and the saved audio's file prefix
    if settings.live.save_audio:
        sinks.append(AudioSink(workspace.live_dir / "audio", session=session_name))
    sinks += [view, JsonlSink(jsonl_path)]
    if not no_catalogue:
        sinks.append(CatalogueSink(workspace.db_path, root=workspace.root))
    view.header(source.description, str(model_name), getattr(engine, "name", "?"), settings.segment.vad)
    session = LiveSession(source, engine, settings, sinks, max_audio_s=duration, callsigns=known,
                          session=session_name)
    try:
        summary = session.run()
    finally:
        view.summary(session.summary, str(jsonl_path))
    return summary, summary.interrupted


from .corrections_cmd import export_corrections_command  # noqa: E402  (a subcommand of live)

live_command.add_command(export_corrections_command)

COMMANDS = [live_command]
