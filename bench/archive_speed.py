"""Archive transcription: this project against faster-whisper on one long multi-transmission recording.

The recording (unless ``--audio`` gives one) is a synthetic frequency: ``--exchanges`` generated
controller-pilot exchanges (:func:`atc_whisper.live.simulate.exchange_session`: eSpeak voices,
one per speaker, through the radio channel simulation), 2-6 s of receiver static between the
transmissions. It is built once and cached in ``--cache``. Every system gets the same 16 kHz
samples, the same CTranslate2 int8 model (the bundled tiny.en folder, or ``--model``) and
``--threads`` threads, and runs in its own fresh process, so that peak RSS is its own:

* ``atc``: :func:`atc_whisper.transcribe.files.transcribe_file` (segmentation into
  transmissions, batched bounded decoding, roles and readback checks), engine loaded by
  ``load_engine`` as the CLI loads it (defaults: short encoder passes and a 10 s decoder
  context); ``atc-full``: the same with Whisper's whole 30 s window for encoder and decoder
  (``decode.encoder_pad_s = 30``, ``decode.context_s = 30``: openai/whisper's computation), to
  see what the short passes save in time and cost in WER;
* ``fw-vad``: faster-whisper's ``WhisperModel.transcribe(vad_filter=True, beam_size=1)``;
* ``fw-batched``: faster-whisper's ``BatchedInferencePipeline.transcribe(batch_size=8)`` (its
  defaults otherwise: beam 5, no temperature fallback), and ``fw-batched-b1``, the same with
  ``beam_size=1`` (greedy, as this project decodes), for a like-for-like figure.

Printed per system: model load and transcription wall time (the best of ``--repeat`` runs,
the systems taking turns, so that a neighbour's load spike hits them alike), CPU seconds,
real-time factor, peak RSS,
segment count, WER of the concatenated transcript against the reference (``--reference``, or the
synthetic recording's own) with the project's ATC normaliser, and the segments that put text in a
stretch without speech (synthetic recordings: every planted transmission is known), then the
ratios against the targets: throughput >= 1.5x ``fw-batched``, WER no worse than ``fw-vad``, no text
in the gaps. The load average is printed before and after: the machine may be shared.

    python bench/archive_speed.py                                  # 24 exchanges (~7 min), all systems
    python bench/archive_speed.py --exchanges 8 --systems atc fw-batched
    python bench/archive_speed.py --audio tower.mp3 --reference tower.txt --model models/ct2/tiny
    python bench/archive_speed.py --json figures.json
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

SYSTEMS = ("atc", "atc-full", "fw-vad", "fw-batched", "fw-batched-b1")
#: Settings of the systems that are this project with something changed.
VARIANTS = {"atc-full": {"decode": {"encoder_pad_s": 30.0, "context_s": 30.0}}}
TARGET_SPEEDUP = 1.5  # throughput against fw-batched
#: A segment "in a gap" has text and lies this far or more from every planted transmission, s.
GAP_TOLERANCE_S = 0.3

#: Run in a fresh process: load the model, transcribe the samples, print JSON on the last line.
_CHILD = r"""
import json, resource, sys, time
import numpy as np
system, model_dir, audio_path, threads = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
extra = json.loads(sys.argv[5])
audio = np.load(audio_path)
t0 = time.perf_counter()
cpu_loaded = 0.0
if system.startswith("atc"):
    import tempfile
    from atc_whisper.config import Settings
    from atc_whisper.transcribe.engines import load_engine
    from atc_whisper.transcribe.files import transcribe_file
    from atc_whisper.workspace import Workspace
    base = {"model": {"threads": threads, "device": "cpu", "offline": True}, "decode": {"compute_type": "int8"}}
    for section, values in extra.items():
        base.setdefault(section, {}).update(values)
    settings = Settings().replace(**base)
    engine = load_engine(model_dir, settings, Workspace.at(tempfile.mkdtemp()), engine="ct2")
    loaded, cpu_loaded = time.perf_counter(), time.process_time()
    segments = [(s.start_s, s.end_s, s.text, s.role, bool(s.readback_mismatch))
                for s in transcribe_file("<bench>", engine, settings, audio=audio)]
else:
    from faster_whisper import BatchedInferencePipeline, WhisperModel
    model = WhisperModel(model_dir, device="cpu", compute_type="int8", cpu_threads=threads)
    loaded, cpu_loaded = time.perf_counter(), time.process_time()
    if system == "fw-vad":
        out, _ = model.transcribe(audio, language="en", vad_filter=True, beam_size=1)
    else:
        options = {"beam_size": 1} if system == "fw-batched-b1" else {}
        out, _ = BatchedInferencePipeline(model).transcribe(audio, language="en", batch_size=8, **options)
    segments = [(s.start, s.end, s.text.strip(), None, False) for s in out]
done = time.perf_counter()
peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"load_s": loaded - t0, "wall_s": done - loaded, "peak_rss_mb": peak_kb / 1024,
                  "cpu_s": time.process_time() - cpu_loaded, "segments": segments}))
"""


def build_recording(exchanges: int, seed: int, cache: Path) -> tuple[Path, list[str], list[tuple[float, float]]]:
    """The synthetic recording (cached): WAV path, references in order, planted speech spans."""
    cache.mkdir(parents=True, exist_ok=True)
    stem = cache / f"archive_x{exchanges}_s{seed}"
    wav, meta = stem.with_suffix(".wav"), stem.with_suffix(".json")
    if wav.exists() and meta.exists():
        data = json.loads(meta.read_text(encoding="utf-8"))
        return wav, data["references"], [tuple(s) for s in data["spans_s"]]
    from atc_whisper.live.simulate import exchange_session

    started = time.perf_counter()
    made = exchange_session(exchanges, seed=seed, error_rate=0.3, interleave=0.0, opening_rate=0.0)
    made.session.write_wav(wav)
    spans = [list(s) for s in made.session.spans_s]
    meta.write_text(json.dumps({"references": made.references, "spans_s": spans,
                                "roles": [t.utterance.role for t in made.turns],
                                "wrong_readbacks": [e.readback.reference for e in made.exchanges if e.wrong]},
                               indent=1), encoding="utf-8")
    print(f"built {wav} ({made.session.duration_s:.0f} s, {len(spans)} transmissions) in "
          f"{time.perf_counter() - started:.0f} s", file=sys.stderr)
    return wav, made.references, [tuple(s) for s in spans]


def default_model(workspace: Path) -> Path:
    """The bundled tiny.en CTranslate2 folder."""
    from atc_whisper.models.resolve import resolve_ct2
    from atc_whisper.workspace import Workspace

    ws = Workspace.at(workspace)
    ws.create()
    folder = resolve_ct2("tiny.en", ws, offline=True)
    assert folder is not None
    return folder


def run_system(system: str, model: Path, samples: Path, threads: int, extra: dict[str, Any]) -> dict[str, Any]:
    """One system in a fresh process (its peak RSS is its own)."""
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    proc = subprocess.run([sys.executable, "-c", _CHILD, system, str(model), str(samples), str(threads),
                           json.dumps(extra)], capture_output=True, text=True, env=env, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"{system} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def settings_of(system: str, extra: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The ``--set`` settings for this project's systems (with a variant's own on top); none for faster-whisper."""
    if not system.startswith("atc"):
        return {}
    merged = {section: dict(values) for section, values in extra.items()}
    for section, values in VARIANTS.get(system, {}).items():
        merged.setdefault(section, {}).update(values)
    return merged


def gap_texts(segments: list[list[Any]], spans: list[tuple[float, float]]) -> list[str]:
    """Texts of the segments that lie in a stretch without any planted speech."""
    found = []
    for start, end, text, *_ in segments:
        if not str(text).strip():
            continue
        near = any(start < s_end + GAP_TOLERANCE_S and end > s_start - GAP_TOLERANCE_S for s_start, s_end in spans)
        if not near:
            found.append(f"{start:.1f}-{end:.1f} s: {text}")
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--audio", type=Path, help="any audio file (default: a synthetic frequency recording)")
    parser.add_argument("--reference", type=Path,
                        help="reference transcript of --audio (text; one transmission per line or all on one)")
    parser.add_argument("--exchanges", type=int, default=24, help="exchanges in the synthetic recording (~17 s each)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--model", type=Path, help="CTranslate2 Whisper folder (default: the bundled tiny.en)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--systems", nargs="+", choices=SYSTEMS, default=list(SYSTEMS))
    parser.add_argument("--repeat", type=int, default=1, help="runs per system, taking turns; the fastest counts")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE",
                        help="settings for this project's run (e.g. decode.batch_size=16)")
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "atc_whisper_bench",
                        help="where the synthetic recording and model caches are kept")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)

    from atc_whisper.audio.io import SAMPLE_RATE, load_audio
    from atc_whisper.config import parse_override
    from atc_whisper.evaluate.metrics import wer

    load_before = os.getloadavg()
    spans: list[tuple[float, float]] | None = None
    if args.audio is not None:
        audio_path = args.audio
        references = (args.reference.read_text(encoding="utf-8").split("\n") if args.reference else None)
    else:
        audio_path, references, spans = build_recording(args.exchanges, args.seed, args.cache)
    audio = load_audio(audio_path)
    duration_s = len(audio) / SAMPLE_RATE
    model = args.model or default_model(args.cache / "ws")
    extra: dict[str, dict[str, Any]] = {}
    for text in args.overrides:
        section, key, value = parse_override(text)
        extra.setdefault(section, {})[key] = value

    import numpy as np

    samples = args.cache / "samples.npy"
    np.save(samples, audio)
    print(f"{audio_path}: {duration_s:.1f} s ({duration_s / 60:.1f} min)"
          + (f", {len(spans)} planted transmissions" if spans else "")
          + f"; model {model}; {args.threads} threads; load average {load_before[0]:.2f}")
    results: dict[str, dict[str, Any]] = {}
    reference_text = " ".join(r for r in (references or []) if r.strip())
    for round_ in range(args.repeat):
        for system in args.systems:
            result = run_system(system, model, samples, args.threads, settings_of(system, extra))
            print(f"  {system:<14} run {round_ + 1}: {result['wall_s']:.1f} s", file=sys.stderr)
            best = results.get(system)
            result["walls_s"] = [*(best["walls_s"] if best else []), result["wall_s"]]
            if best is not None and best["wall_s"] <= result["wall_s"]:
                best["walls_s"] = result["walls_s"]
                continue
            hypothesis = " ".join(str(s[2]) for s in result["segments"] if str(s[2]).strip())
            result["rtf"] = result["wall_s"] / duration_s
            result["wer"] = wer([reference_text], [hypothesis]) if references else None
            result["gap_texts"] = gap_texts(result["segments"], spans) if spans else None
            results[system] = result
    load_after = os.getloadavg()

    print(f"\n{'system':<14} {'load s':>7} {'wall s':>8} {'CPU s':>7} {'RTF':>7} {'x real':>7} {'peak MB':>8} "
          f"{'segments':>8} {'WER':>7} {'gap text':>8}")
    for system, r in results.items():
        wer_text = f"{r['wer']:.1%}" if r["wer"] is not None else "-"
        gaps = str(len(r["gap_texts"])) if r["gap_texts"] is not None else "-"
        print(f"{system:<14} {r['load_s']:>7.1f} {r['wall_s']:>8.1f} {r['cpu_s']:>7.1f} {r['rtf']:>7.3f} "
              f"{1 / r['rtf']:>7.1f} {r['peak_rss_mb']:>8.0f} {len(r['segments']):>8} {wer_text:>7} {gaps:>8}")
    if args.repeat > 1:
        for system, r in results.items():
            print(f"  {system} wall times: {', '.join(f'{w:.1f}' for w in r['walls_s'])} s")
    for system, r in results.items():
        for line in (r["gap_texts"] or [])[:10]:
            print(f"  text in a gap ({system}): {line}")
    ok = True
    if "atc" in results:
        atc = results["atc"]
        if "fw-batched" in results:
            speedup = results["fw-batched"]["wall_s"] / atc["wall_s"]
            met = speedup >= TARGET_SPEEDUP
            ok &= met
            print(f"\nthroughput vs fw-batched: {speedup:.2f}x wall, {results['fw-batched']['cpu_s'] / atc['cpu_s']:.2f}x "
                  f"CPU (target >= {TARGET_SPEEDUP}x: {'met' if met else 'NOT met'})")
        if "fw-batched-b1" in results:
            print(f"throughput vs fw-batched with beam 1: {results['fw-batched-b1']['wall_s'] / atc['wall_s']:.2f}x")
        if "atc-full" in results:
            full = results["atc-full"]
            print(f"short encoder passes and context (atc) vs the whole 30 s window (atc-full): "
                  f"{full['wall_s'] / atc['wall_s']:.2f}x faster"
                  + (f", WER {atc['wer']:.1%} vs {full['wer']:.1%}" if atc["wer"] is not None else ""))
        if "fw-vad" in results:
            print(f"throughput vs fw-vad: {results['fw-vad']['wall_s'] / atc['wall_s']:.2f}x")
            if atc["wer"] is not None and results["fw-vad"]["wer"] is not None:
                met = atc["wer"] <= results["fw-vad"]["wer"]
                ok &= met
                print(f"WER {atc['wer']:.1%} vs fw-vad {results['fw-vad']['wer']:.1%} "
                      f"(target: no worse: {'met' if met else 'NOT met'})")
        if atc["gap_texts"] is not None:
            met = not atc["gap_texts"]
            ok &= met
            print(f"text in silent gaps: {len(atc['gap_texts'])} segment(s) (target 0: {'met' if met else 'NOT met'})")
        print(f"peak RSS: {atc['peak_rss_mb']:.0f} MB"
              + "".join(f", {s} {r['peak_rss_mb']:.0f} MB" for s, r in results.items() if s != "atc"))
    print(f"load average before {load_before[0]:.2f}, after {load_after[0]:.2f} (1-minute); {os.cpu_count()} CPUs")
    if args.json:
        args.json.write_text(json.dumps({"audio": str(audio_path), "duration_s": duration_s, "threads": args.threads,
                                         "load_average": [load_before[0], load_after[0]], "settings": extra,
                                         "results": results}, indent=1), encoding="utf-8")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
