"""``atc-whisper transcribe``: audio files to transmissions (text, JSON, subtitles, TSV, a conversation view);
folders and manifests as resumable batches."""

from __future__ import annotations

import sys
import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import click

from ..errors import ConfigError
from .common import App, app_from_options, settings_options

#: The writers' formats (atc_whisper.transcribe.formats.FORMATS; not imported, to keep `--help` light).
_FORMATS = ("text", "jsonl", "json", "srt", "vtt", "tsv", "conversation")
_DOCUMENT_FORMATS = ("srt", "vtt", "tsv")  # one recording per document: one file per input
_SUFFIXES = {"srt": ".srt", "vtt": ".vtt", "tsv": ".tsv"}
_ENGINES = ("auto", "ct2", "hf")
#: Keep decoded audio between the input check and transcription up to this many samples
#: (1 h at 16 kHz, ~230 MB); beyond it files are decoded again when their turn comes.
_KEEP_SAMPLES = 3600 * 16_000  # SAMPLE_RATE, not imported here to keep `--help` light


def _check_inputs(files: tuple[Path, ...]) -> tuple[dict[Path, Any], float]:
    """Decode and check every file before any model is loaded: fail fast, naming the file."""
    from ..audio.io import SAMPLE_RATE, check_speech, load_audio

    kept: dict[Path, Any] = {}
    total_s, total_samples = 0.0, 0
    for path in files:
        audio = load_audio(path)
        check_speech(audio, path)
        total_s += len(audio) / SAMPLE_RATE
        total_samples += len(audio)
        if total_samples <= _KEEP_SAMPLES:
            kept[path] = audio
    return kept, total_s


def _check_output(output: Path | None, fmt: str, n_files: int) -> None:
    if fmt in _DOCUMENT_FORMATS and n_files > 1:
        name = fmt.upper()
        if output is None:
            raise ConfigError(f"{name} holds one recording: give --output DIR to write one {_SUFFIXES[fmt]} per file, "
                              "or use --format jsonl for several files.")
        if output.exists() and not output.is_dir():
            raise ConfigError(f"--output {output} must be a folder when several files are written as {name}.")
    elif output is not None and output.is_dir():
        raise ConfigError(f"--output {output} is a folder; give a file name, e.g. {output / 'transcript.txt'}.")


@click.command("transcribe")
@click.argument("inputs", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("-m", "--model", default=None,
              help="Hugging Face id, local Hugging Face or CTranslate2 Whisper folder "
                   "(default: the fine-tuned models/atc_whisper if present, else model.name).")
@click.option("--engine", type=click.Choice(_ENGINES), default=None,
              help="auto = CTranslate2 int8 when installed, else transformers (default: decode.engine).")
@click.option("-f", "--format", "fmt", type=click.Choice(_FORMATS), default=None,
              help="text lines, JSON lines, one JSON document, SRT or WebVTT subtitles, TSV (start and end in ms, "
                   "text), or conversation: one line per transmission with role, exchange, callsign and readback "
                   "check (default: text; json in batch mode).")
@click.option("-o", "--output", type=click.Path(path_type=Path), default=None,
              help="Write here instead of standard output (a folder for SRT/VTT/TSV with several files, and in "
                   "batch mode).")
@click.option("--segmentation", type=click.Choice(["vad", "window"]), default=None,
              help="vad: one segment per radio transmission, cut by the [segment] voice detector as `live` does; "
                   "window: fixed windows of up to 30 s, for audio that is not radio (default: decode.segmentation).")
@click.option("--callsigns", type=click.Path(path_type=Path), default=None,
              help="Known callsigns, one per line: used as a decoding prompt and to snap recognised "
                   "callsigns to the nearest known one (default: decode.callsigns_file, relative to the "
                   "workspace).")
@click.option("--context", type=click.Choice(["none", "recording"]), default=None,
              help="recording: bias each file with its own recording's callsigns nearby: the <name>.info file "
                   "beside it (ATCO2 style), else the context stored when its corpus was imported "
                   "(default: decode.context).")
@click.option("--context-file", type=click.Path(path_type=Path), default=None,
              help="An ATCO2-style .info file whose callsigns nearby bias every file (decode.context_file).")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default=None, help="Where the model runs.")
@click.option("--offline", is_flag=True, default=None, help="Never contact the Hugging Face Hub.")
@click.option("--catalogue/--no-catalogue", "catalogue", default=None,
              help="Batch mode: also store the transcripts in the workspace catalogue, for `atc-whisper search` "
                   "(default: batch.catalogue).")
@click.option("--ray", "ray_address", metavar="ADDRESS", default=None,
              help="Batch mode on a Ray cluster: local, auto, HOST:PORT or ray://HOST:PORT (needs the [ray] extra).")
@click.option("--force", is_flag=True, help="Batch mode: transcribe every file again, even those already done.")
@settings_options
def transcribe_command(inputs: tuple[Path, ...], model: str | None, engine: str | None, fmt: str | None,
                       output: Path | None, segmentation: str | None, callsigns: Path | None, context: str | None, context_file: Path | None,
                       device: str | None, offline: bool | None,
                       catalogue: bool | None, ray_address: str | None, force: bool,
                       config_file: Path | None, workspace_dir: Path | None, overrides: tuple[str, ...]) -> None:
    """Transcribe audio files, or whole folders and manifests as a resumable batch.

    INPUTS are audio files (wav, flac, ogg, mp3, m4a; any rate and channels), folders (walked
    recursively) or manifests (.txt: one path per line; .csv: an 'audio' column).

    Each file is cut into radio transmissions (the voice detector `live` uses; static between them
    is never decoded) and each transmission is one segment: start and end in the file, text,
    confidence, callsign, commands, speaker role (controller or pilot), exchange and, for a
    pilot's readback, whether it matches the instruction (READBACK MISMATCH says what differed).
    Doubtful transcripts are flagged LOW CONFIDENCE.

    Audio files only: the transcripts go to standard output or one --output file. All files are
    checked before the model loads: one bad file stops the command before any work is done.

    Batch mode (a folder or manifest among INPUTS, or --catalogue/--ray/--force): one
    transcript per file in --output DIR at the input's relative path, each written atomically;
    a bad file is reported at the end (exit code 1) while the others carry on; a re-run skips
    the files already done with the same content and settings.
    """
    app = app_from_options(config_file, workspace_dir, overrides,
                           {"model": {"device": device, "offline": offline},
                            "decode": {"engine": engine, "context": context, "segmentation": segmentation}})
    settings = app.settings
    from ..transcribe.annotate import known_callsigns
    from ..transcribe.context import context_file_path
    from ..transcribe.inputs import is_batch_input

    known = known_callsigns(settings, app.workspace, callsigns)
    context_file = context_file_path(settings, app.workspace, context_file)
    batch = any(is_batch_input(p) for p in inputs) or catalogue is not None or ray_address is not None or force
    if batch:
        _run_batch(app, inputs, output, fmt or "json", model, engine, known, context_file,
                   settings.batch.catalogue if catalogue is None else catalogue, ray_address, force)
        return
    fmt = fmt or "text"
    files = inputs
    _check_output(output, fmt, len(files))
    from ..transcribe.context import file_callsigns, has_own_context

    per_file = file_callsigns(files, context=settings.decode.context, context_file=context_file, callsigns=known,
                              workspace=app.workspace)
    if settings.decode.context == "recording" and context_file is None:
        for path, found in per_file.items():
            if not has_own_context(found):
                click.echo(f"note: no recording context for {path} (no {path.name.split('.')[0]}.info beside it, "
                           "not in the catalogue); it is transcribed without its callsigns nearby.", err=True)
    audios, total_s = _check_inputs(files)

    from ..models.resolve import default_model_name
    from ..transcribe import load_engine

    started = time.perf_counter()
    name = model or default_model_name(settings.model.name, app.workspace)
    loaded = load_engine(name, settings, app.workspace, engine=engine)
    load_s = time.perf_counter() - started
    lists = {path: (list(found.callsigns) or None) for path, found in per_file.items()}
    counts = _transcribe_all(files, audios, loaded, settings, fmt, output, lists, total_s, app)
    wall_s = time.perf_counter() - started - load_s
    rtf = wall_s / total_s if total_s else 0.0
    unit = "transmission(s)" if settings.decode.segmentation == "vad" else "window(s)"
    click.echo(
        f"Transcribed {len(files)} file(s), {total_s:.1f} s of audio, with {name} ({loaded.name}): "
        f"{counts.segments} {unit}, {counts.low_confidence} low-confidence, {counts.readbacks} readback(s) checked, "
        f"{counts.mismatches} mismatch(es); model load {load_s:.1f} s, "
        f"transcription {wall_s:.1f} s (real-time factor {rtf:.3f})"
        + (f"; written to {output}" if output else "") + ".",
        err=True,
    )


def _run_batch(app: App, inputs: tuple[Path, ...], output: Path | None, fmt: str, model: str | None,
               engine: str | None, known: list[str] | None, context_file: Path | None, catalogue: bool,
               ray_address: str | None, force: bool) -> None:
    """Batch mode: the library does the work; print its summary and exit 1 when a file failed."""
    from ..models.resolve import default_model_name
    from ..transcribe.batch import summary_lines, transcribe_batch

    if output is None:
        raise ConfigError("a batch (folder, manifest, --catalogue, --ray or --force) writes one transcript per file: "
                          "give --output DIR.")
    ctx = click.get_current_context()
    summary = transcribe_batch(
        list(inputs), output, app.settings, app.workspace,
        model=model or default_model_name(app.settings.model.name, app.workspace), engine=engine, fmt=fmt,
        callsigns=known, context_file=context_file, catalogue=catalogue,
        ray_address=ray_address, force=force,
        progress=not ctx.find_root().meta.get("atc_whisper.quiet"),
    )
    for line in summary_lines(summary):
        click.echo(line, err=True)
    if summary.failed:
        ctx.exit(1)


@dataclass
class _Counts:
    segments: int = 0
    low_confidence: int = 0
    readbacks: int = 0
    mismatches: int = 0


def _transcribe_all(files: tuple[Path, ...], audios: dict[Path, Any], engine: Any, settings: Any, fmt: str,
                    output: Path | None, known: dict[Path, list[str] | None], total_s: float,
                    app: Any) -> _Counts:
    from tqdm import tqdm

    from ..audio.io import SAMPLE_RATE, load_audio
    from ..fsutil import atomic_path
    from ..transcribe.files import transcribe_file
    from ..transcribe.formats import TranscriptWriter

    root = click.get_current_context().find_root()
    quiet = bool(root.meta.get("atc_whisper.quiet"))
    per_file = fmt in _DOCUMENT_FORMATS and len(files) > 1
    counts = _Counts()
    with ExitStack() as stack:
        bar = stack.enter_context(tqdm(total=round(total_s, 1), unit="s", desc="audio", file=sys.stderr,
                                       disable=quiet or total_s <= 30.0, leave=False,
                                       bar_format="{l_bar}{bar}| {n:.0f}/{total:.0f} s [{elapsed}<{remaining}]"))
        writer: TranscriptWriter | None = None
        if not per_file:
            out: TextIO
            if output is None:
                out = sys.stdout
            else:
                tmp = stack.enter_context(atomic_path(output))
                out = stack.enter_context(tmp.open("w", encoding="utf-8"))
            writer = TranscriptWriter(out, fmt, show_file=len(files) > 1)
        for path in files:
            with ExitStack() as file_stack:
                file_writer = writer
                if file_writer is None:  # one document per input file, each written atomically
                    assert output is not None
                    tmp_doc = file_stack.enter_context(atomic_path(output / f"{path.stem}{_SUFFIXES[fmt]}"))
                    file_writer = TranscriptWriter(file_stack.enter_context(tmp_doc.open("w", encoding="utf-8")), fmt)
                audio = audios.get(path)
                if audio is None:
                    audio = load_audio(path)
                done_s = 0.0
                for segment in transcribe_file(path, engine, settings, callsigns=known.get(path), audio=audio):
                    file_writer.write(segment)
                    counts.segments += 1
                    counts.low_confidence += int(segment.low_confidence)
                    counts.readbacks += int(segment.readback is not None)
                    counts.mismatches += int(segment.readback_mismatch)
                    bar.update(max(0.0, segment.end_s - done_s))
                    done_s = max(done_s, segment.end_s)
                bar.update(max(0.0, len(audio) / SAMPLE_RATE - done_s))  # the rest of the file: no speech
                if writer is None:
                    file_writer.close()
        if writer is not None:
            writer.close()
    return counts


COMMANDS = [transcribe_command]
