"""Realism benchmark: does the synthetic data look and sound like real ATC radio?

Prints, for the synthetic clips of a workspace, the table of ``shared/real-radio/README.md``
with the same definitions (:mod:`atc_whisper.audio.stats`), the real figures beside them, and
one distance per column to a real set:

* energy share by band <300 / 300-1k / 1-2k / 2-3.4k / >3.4k Hz - mean of the per-clip shares
  of the clip's power spectrum; distance: total variation (half the sum of the absolute share
  differences), percentage points;
* SNR dB - 95th over 10th percentile of the 20 ms frame energies within a clip, p10/50/90
  over clips; distance: difference of medians, dB;
* near-peak per 1000 samples - samples within 2 % of the clip's peak, mean over clips;
  distance: relative difference;
* RMS dBFS p10/50/90; distance: difference of medians, dB;
* duration s p10/50/90; distance: relative difference of medians;
* words/s p10/50/90 - words of the reference over the **clip's duration** (the table's
  synthetic rows only fit that reading: the radio variants, longer by their squelch padding,
  have a lower rate than their own clean clips; and the real segments' rate is words over the
  annotated segment); distance: relative difference of medians.

Rows: the radio variants (``augmented``), the same clips split by TTS engine, and the clean
(studio) clips they were made from - catalogued or cached in ``data/atc_dataset/synthetic/``.
Everyday rehearsal sentences (``phase = everyday``) and static clips (``phase = static``, no
speech) are left out. A random subset of at most
``--limit`` radio variants is measured (300, as in the README), and their clean sources.
The catalogue's clean share (clean clips among the synthetic samples) is printed too.

``--audio DIR`` also cuts the recordings of DIR into transmissions with the project's
segmenter (Silero VAD, ``[segment]`` settings) and measures those (no transcripts: no words/s),
e.g. the public-domain FAA recordings as a sanity check of the measures.

``--rechannel`` sends the same clean sources through the radio channel of the current code and
settings (the workspace's, plus ``--set``), seeded as ``prepare`` seeds the first variant, and
adds that row: a channel change measured in seconds, without synthesising anything. E.g.
``--rechannel --set channel.speed_min=1.3 --set channel.speed_max=1.48`` shows what the
durations would be at the real speaking rate (a simulation: speed perturbation also raises
the pitch).

Usage::

    .venv/bin/python bench/realism.py --workspace /tmp/ws                  # an existing workspace
    .venv/bin/python bench/realism.py --workspace /tmp/fresh --samples 300 # prepare it first
    .venv/bin/python bench/realism.py --workspace /tmp/ws --audio ../shared/real-radio/faa-public-domain
    .venv/bin/python bench/realism.py --samples 300 --set channel.clip_probability=0.5 --json out.json
    .venv/bin/python bench/realism.py --workspace /tmp/ws --rechannel --set channel.codec_probability=0.5

Without ``--workspace``, ``--samples`` prepares a new temporary workspace.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")

# Real radio, measured by the project's lead on recordings kept outside the repository, with
# the definitions above: shared/real-radio/README.md, "Measured: real ATC radio vs this
# project's synthetic clips". (bands, snr p10/50/90, near-peak, rms p10/50/90, duration p10/50/90,
# words/s p10/50/90)
REAL: dict[str, dict[str, Any]] = {
    "European receiver recordings": dict(
        n=400, bands=(0.11, 0.59, 0.18, 0.08, 0.04), snr_db=(12.9, 18.5, 28.8), near_peak_per_1000=0.21,
        rms_dbfs=(-19.1, -14.6, -10.7), duration_s=(1.7, 3.4, 6.5), words_per_s=(2.2, 3.2, 4.2)),
    "LiveATC (Tokyo approach)": dict(
        n=300, bands=(0.04, 0.67, 0.22, 0.07, 0.00), snr_db=(26.5, 31.1, 106.7), near_peak_per_1000=0.02,
        rms_dbfs=(-22.5, -20.2, -17.8), duration_s=(5.0, 8.8, 22.2), words_per_s=(2.6, 3.3, 4.2)),
}
REFERENCE_KEYS = {"european": "European receiver recordings", "liveatc": "LiveATC (Tokyo approach)"}
#: The issue's "done when": these columns within 15 % of the real (European) medians.
TARGET_COLUMNS = ("near_peak_per_1000", "duration_s", "words_per_s")
TARGET_TOLERANCE = 0.15


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workspace", type=Path, default=None, help="Workspace whose synthetic clips are measured.")
    parser.add_argument("--samples", type=int, default=None,
                        help="Prepare this many utterances first (data.samples), with the workspace's settings.")
    parser.add_argument("--limit", type=int, default=300, help="Measure at most this many radio variants (random).")
    parser.add_argument("--seed", type=int, default=0, help="Seed of the random subset.")
    parser.add_argument("--audio", type=Path, action="append", default=[],
                        help="Also measure the transmissions of the recordings in this folder (repeatable).")
    parser.add_argument("--reference", choices=sorted(REFERENCE_KEYS), default="european",
                        help="Real set the distances are measured against.")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE",
                        help="Setting for --samples and --rechannel (repeatable).")
    parser.add_argument("--rechannel", action="store_true",
                        help="Also measure the clean sources sent through the current channel and settings.")
    parser.add_argument("--json", type=Path, default=None, help="Also write the rows and distances here.")
    return parser.parse_args(argv)


def prepare(workspace: Path, samples: int, overrides: list[str]) -> None:
    from atc_whisper.config import CONFIG_FILENAME, load_settings
    from atc_whisper.data.prepare import prepare_dataset
    from atc_whisper.workspace import Workspace

    ws = Workspace.at(workspace)
    ws.create()
    settings = load_settings(workspace_config=workspace / CONFIG_FILENAME, overrides=[*overrides, f"data.samples={samples}"])
    report = prepare_dataset(ws, settings, progress=True)
    print(f"prepared {report.added_utterances} utterances ({report.added_samples} samples) in {report.seconds:.0f} s",
          file=sys.stderr)


def _measure(path: Path, words: int | None) -> Any:
    from atc_whisper.audio.io import load_audio
    from atc_whisper.audio.stats import clip_stats

    return clip_stats(load_audio(path), words)


def _clean_source(ws: Any, uid: str) -> Path:
    """The clean clip a radio variant was made from: catalogued, else in the clean-clip cache."""
    catalogued = ws.synthetic_dir / f"{uid}.wav"
    return catalogued if catalogued.exists() else ws.clean_cache_dir / f"{uid}.wav"


def atc_speech(catalogue: Any, **filters: Any) -> list[Any]:
    """The catalogue's synthetic ATC transmissions: without everyday rehearsal sentences and static clips."""
    from atc_whisper.data.prepare import EVERYDAY_PHASE, SOURCE
    from atc_whisper.data.static import STATIC_PHASE

    return [s for s in catalogue.samples(source=SOURCE, **filters) if s.phase not in (EVERYDAY_PHASE, STATIC_PHASE)]


def synthetic_rows(workspace: Path, limit: int, seed: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """Summaries of the workspace's radio variants (all, per engine) and of their clean sources."""
    import numpy as np
    from tqdm.auto import tqdm

    from atc_whisper.audio.stats import summarise
    from atc_whisper.data.catalogue import Catalogue
    from atc_whisper.data.prepare import SOURCE
    from atc_whisper.workspace import Workspace

    ws = Workspace.at(workspace)
    with Catalogue(ws.db_path) as catalogue:
        every = atc_speech(catalogue)
        everyday = catalogue.count(source=SOURCE) - len(every)
    radio = [s for s in every if s.augmented]
    clean_rows = [s for s in every if not s.augmented]
    info = {"samples": len(every) + everyday, "atc_samples": len(every), "radio": len(radio), "clean": len(clean_rows),
            "clean_share": len(clean_rows) / len(every) if every else 0.0}
    if not radio and not clean_rows:
        raise SystemExit(f"Error: {ws.db_path} holds no synthetic clips; run prepare (or pass --samples N).")
    rng = np.random.default_rng(seed)
    chosen = [radio[i] for i in sorted(rng.permutation(len(radio))[:limit])] if radio else []
    rows: dict[str, Any] = {}
    stats = [_measure(s.audio_path, len(s.text_norm.split())) for s in tqdm(chosen, desc="radio variants", leave=False)]
    if stats:
        rows["synthetic radio variant"] = summarise(stats)
        for engine in sorted({s.engine or "?" for s in chosen}):
            part = [st for st, s in zip(stats, chosen, strict=True) if (s.engine or "?") == engine]
            rows[f"… of which {engine}"] = summarise(part)
    # Clean sources: the parents of the measured variants (or the catalogued clean clips when
    # there are no variants), read from the catalogue or the clean-clip cache.
    if chosen:
        sources = [(_clean_source(ws, s.parent_uid), len(s.text_norm.split())) for s in chosen if s.parent_uid]
    else:
        picked = [clean_rows[i] for i in sorted(rng.permutation(len(clean_rows))[:limit])]
        sources = [(s.audio_path, len(s.text_norm.split())) for s in picked]
    present = [(p, w) for p, w in sources if p.exists()]
    if present:
        clean = [_measure(p, w) for p, w in tqdm(present, desc="clean clips", leave=False)]
        rows["synthetic clean (studio) clip"] = summarise(clean)
    info["clean_sources_missing"] = len(sources) - len(present)
    return rows, info


def rechannel_row(workspace: Path, limit: int, seed: int, overrides: list[str]) -> dict[str, Any]:
    """The clean sources of the measured variants through the current channel (no synthesis)."""
    import numpy as np
    from tqdm.auto import tqdm

    from atc_whisper.audio.channel import RadioChannel
    from atc_whisper.audio.io import load_audio
    from atc_whisper.audio.stats import clip_stats, summarise
    from atc_whisper.config import CONFIG_FILENAME, load_settings
    from atc_whisper.data.catalogue import Catalogue
    from atc_whisper.workspace import Workspace

    ws = Workspace.at(workspace)
    settings = load_settings(workspace_config=workspace / CONFIG_FILENAME, overrides=overrides)
    with Catalogue(ws.db_path) as catalogue:
        radio = atc_speech(catalogue, augmented=True)
    rng = np.random.default_rng(seed)
    chosen = [radio[i] for i in sorted(rng.permutation(len(radio))[:limit])]
    channel = RadioChannel(settings.channel, ws.noise_dir)
    stats = []
    for s in tqdm(chosen, desc="re-channelled", leave=False):
        source = _clean_source(ws, s.parent_uid or "")
        if not source.exists():
            continue
        index = int(s.params.get("index", 0))
        audio, _ = channel.apply(load_audio(source), np.random.default_rng([settings.data.seed, index, 1]),
                                 blocked=bool(s.meaning.get("blocked")))
        stats.append(clip_stats(audio, len(s.text_norm.split())))
    label = "re-channelled" + (f" ({', '.join(overrides)})" if overrides else "")
    return {label: summarise(stats)} if stats else {}


def audio_rows(folder: Path) -> dict[str, Any]:
    """Summary of the transmissions the project's segmenter finds in the recordings of ``folder``."""
    from tqdm.auto import tqdm

    from atc_whisper.audio.channel import NOISE_SUFFIXES
    from atc_whisper.audio.io import load_audio
    from atc_whisper.audio.segment import segment_array
    from atc_whisper.audio.stats import clip_stats, summarise
    from atc_whisper.audio.vad import load_vad
    from atc_whisper.config import Settings

    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in NOISE_SUFFIXES)
    if not files:
        raise SystemExit(f"Error: no audio files in {folder}; pass a folder of WAV/FLAC/OGG/MP3 recordings.")
    settings = Settings().segment
    stats = []
    vad = load_vad(settings.vad)
    for path in tqdm(files, desc=f"transmissions in {folder.name}", leave=False):
        vad.reset()
        stats += [clip_stats(t.audio) for t in segment_array(load_audio(path), settings, vad=vad)]
    if not stats:
        raise SystemExit(f"Error: the segmenter found no transmissions in {folder}.")
    return {f"{folder.name}: transmissions ({len(files)} files)": summarise(stats)}


def _triple(values: tuple[float, float, float] | None, fmt: str = "{:.1f}") -> str:
    if values is None:
        return "-"
    return " / ".join(fmt.format(v).replace("-", "−") for v in values)


def table(rows: dict[str, Any]) -> str:
    from atc_whisper.audio.stats import BAND_LABELS

    head = (f"| set | n | energy {' / '.join(BAND_LABELS)} Hz | SNR dB p10/50/90 | near-peak per 1000 samples "
            "| RMS dBFS p10/50/90 | duration s p10/50/90 | words/s p10/50/90 |")
    lines = [head, "|" + "---|" * 8]
    for name, s in rows.items():
        bands = " ".join(f"{100 * b:.0f}%" for b in s.bands)
        lines.append(f"| {name} | {s.n} | {bands} | {_triple(s.snr_db)} | {s.near_peak_per_1000:.2f} | "
                     f"{_triple(s.rms_dbfs)} | {_triple(s.duration_s)} | {_triple(s.words_per_s)} |")
    return "\n".join(lines)


def distance_table(rows: dict[str, Any], reference_name: str, reference: Any) -> tuple[str, dict[str, Any]]:
    from atc_whisper.audio.stats import distance

    lines = [f"Distance to {reference_name} (bands: total variation, points; SNR, RMS: Δ median dB; "
             "near-peak: relative Δ mean; duration, words/s: relative Δ median; * = within 15 %):",
             "| set | bands TV | SNR Δ dB | near-peak | RMS Δ dB | duration | words/s |", "|" + "---|" * 7]
    out: dict[str, Any] = {}
    for name, s in rows.items():
        d = distance(s, reference)
        out[name] = d

        def rel(key: str, d: dict[str, Any] = d) -> str:
            value = d[key]
            if value is None:
                return "-"
            mark = "*" if key in TARGET_COLUMNS and abs(value) <= TARGET_TOLERANCE else ""
            return f"{100 * value:+.0f} %{mark}"

        lines.append(f"| {name} | {d['bands']:.1f} | {d['snr_db']:+.1f} | {rel('near_peak_per_1000')} | "
                     f"{d['rms_dbfs']:+.1f} | {rel('duration_s')} | {rel('words_per_s')} |")
    return "\n".join(lines), out


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from atc_whisper.audio.stats import SetSummary

    workspace = args.workspace
    tmp = None
    if workspace is None:
        if args.samples is None:
            print("Error: pass --workspace DIR (an existing workspace) or --samples N (prepare a new one).", file=sys.stderr)
            return 1
        tmp = tempfile.TemporaryDirectory(prefix="atc_realism_")
        workspace = Path(tmp.name) / "ws"
    if args.samples is not None:
        prepare(workspace, args.samples, args.overrides)
    rows, info = synthetic_rows(workspace, args.limit, args.seed)
    if args.rechannel:
        rows.update(rechannel_row(workspace, args.limit, args.seed, args.overrides))
    for folder in args.audio:
        rows.update(audio_rows(folder))
    real = {name: SetSummary(**values) for name, values in REAL.items()}
    print(f"workspace {workspace}: {info['samples']} synthetic samples ({info['atc_samples']} ATC, the rest everyday "
          f"rehearsal or static), {info['radio']} radio variants, {info['clean']} clean clips catalogued "
          f"(clean share {100 * info['clean_share']:.1f} %)")
    if info.get("clean_sources_missing"):
        print(f"note: {info['clean_sources_missing']} clean source clips are neither catalogued nor cached")
    print()
    print(table({**real, **rows}))
    print()
    reference_name = REFERENCE_KEYS[args.reference]
    text, distances = distance_table(rows, reference_name, real[reference_name])
    print(text)
    print("\nReal figures: shared/real-radio/README.md (European receiver recordings, ATCO2-style segments; "
          "LiveATC Tokyo approach). Synthetic: this workspace.")
    if args.json:
        payload = {"workspace": str(workspace), "info": info, "reference": reference_name,
                   "rows": {k: v.__dict__ for k, v in rows.items()}, "real": REAL, "distances": distances}
        args.json.write_text(json.dumps(payload, indent=2, default=lambda o: None if isinstance(o, float) and
                                        not math.isfinite(o) else str(o)))
    if tmp is not None:
        tmp.cleanup()
    return 0


if __name__ == "__main__":
    from atc_whisper.errors import AtcWhisperError

    try:
        raise SystemExit(main())
    except AtcWhisperError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        raise SystemExit(1) from None
