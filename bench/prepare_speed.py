"""Synthetic-data speed: synthesis cost per clip per TTS engine, the engine mix, and parallel workers.

For each engine (eSpeak NG, Piper, Kokoro, Flite, Festival) the same generated utterances are
synthesised with that engine's voices and its drawn prosody (the calibrated speaking rate),
then sent through one random radio channel each. Per engine it prints: the one-off load time,
seconds of synthesis per clip, seconds of radio augmentation per clip, audio seconds per wall
second, and the synthesis cost against the **baseline: the former default mix** (espeak and
piper, one half each).

Then, from those costs: the synthesis cost per utterance of the default mix
(``data.engines`` / ``data.engine_weights``, shares in :data:`atc_whisper.config.TTS_ENGINE_SHARES`)
against the baseline, the Kokoro share that fits a synthesis budget for a real-size run, and
the full ``prepare_dataset`` (catalogue, files, metadata.csv) on the default mix with 1 worker
and with ``--workers`` processes (the clips are the same either way).

Usage::

    .venv/bin/python bench/prepare_speed.py                           # 20 utterances per engine
    .venv/bin/python bench/prepare_speed.py --n 40 --engines espeak kokoro --prepare 0
    .venv/bin/python bench/prepare_speed.py --budget-min 35 --utterances 3000

Model loads (Piper's and Kokoro's ONNX sessions) happen in a warm-up call, timed apart.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")

ENGINES = ("espeak", "piper", "kokoro", "flite", "festival")
BASELINE = {"espeak": 0.5, "piper": 0.5}  # the former default: data.engines = [espeak, piper], equal shares


def bench_engine(engine: str, n: int, seed: int) -> dict[str, float]:
    """Synthesise and augment ``n`` utterances with one engine; return timings."""
    from atc_whisper.audio.channel import RadioChannel
    from atc_whisper.audio.tts import list_voices, random_voice_params, synthesize
    from atc_whisper.config import ChannelSettings
    from atc_whisper.data.prepare import cpu_seconds
    from atc_whisper.phraseology import generate_utterances

    utterances = generate_utterances(n, seed)
    voices = [v.id for v in list_voices([engine])]
    rng = np.random.default_rng(seed)
    channel = RadioChannel(ChannelSettings())
    t0 = time.perf_counter()
    synthesize("radio check", voices[0])  # warm-up: loads models, spawns nothing afterwards
    warmup_s = time.perf_counter() - t0
    synth_s = synth_cpu_s = aug_s = audio_s = 0.0
    for u in utterances:
        voice = voices[int(rng.integers(len(voices)))]
        params = random_voice_params(voice, rng)
        t0, cpu0 = time.perf_counter(), cpu_seconds()
        clean = synthesize(u.text, voice, **params)
        t1, cpu1 = time.perf_counter(), cpu_seconds()
        channel.apply(clean, rng)
        t2 = time.perf_counter()
        synth_s += t1 - t0
        synth_cpu_s += cpu1 - cpu0
        aug_s += t2 - t1
        audio_s += clean.size / 16_000
    return {"warmup_s": warmup_s, "synth_s_per_clip": synth_s / n, "cpu_s_per_clip": synth_cpu_s / n,
            "aug_s_per_clip": aug_s / n, "audio_s_per_cpu_s": audio_s / synth_cpu_s}


def bench_prepare(n: int, seed: int, workers: int) -> dict[str, float]:
    """Time the full prepare_dataset on ``n`` utterances (the default engine mix) in a temp workspace."""
    from atc_whisper.config import Settings
    from atc_whisper.data.prepare import prepare_dataset
    from atc_whisper.workspace import Workspace

    with tempfile.TemporaryDirectory() as tmp:
        ws = Workspace.at(Path(tmp) / "ws")
        ws.create()
        settings = Settings().replace(data={"samples": n, "seed": seed, "workers": workers})
        t0 = time.perf_counter()
        report = prepare_dataset(ws, settings, progress=False)
        seconds = time.perf_counter() - t0
    return {"seconds": seconds, "utterances": report.added_utterances, "samples": report.added_samples,
            "utt_per_s": report.added_utterances / seconds, "workers": report.workers}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20, help="utterances per engine")
    parser.add_argument("--engines", nargs="+", default=list(ENGINES), choices=ENGINES)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--prepare", type=int, default=20, help="utterances for the prepare_dataset runs (0: skip)")
    parser.add_argument("--workers", type=int, default=2, help="worker processes for the second prepare run")
    parser.add_argument("--utterances", type=int, default=3000, help="size of the real-size run to budget for")
    parser.add_argument("--budget-min", type=float, default=35.0, help="synthesis budget of that run, minutes")
    args = parser.parse_args()

    from atc_whisper.config import Settings, engine_shares

    print(f"prepare speed: {args.n} utterances per engine, 1 radio variant each, {os.cpu_count()} CPUs visible, "
          f"load average {os.getloadavg()[0]:.1f}")
    costs: dict[str, dict[str, float]] = {}
    for engine in args.engines:
        costs[engine] = bench_engine(engine, args.n, args.seed)
    # Cost = CPU seconds (engine subprocesses included): on a shared machine wall time measures
    # the neighbours too. Wall time is printed beside it.
    base = sum(share * costs[e]["cpu_s_per_clip"] for e, share in BASELINE.items() if e in costs)
    header = (f"{'engine':9} {'load s':>7} {'TTS CPU s/clip':>15} {'wall s/clip':>12} {'radio s/clip':>13} "
              f"{'audio s/CPU s':>14} {'TTS vs espeak+piper':>20}")
    print(header)
    print("-" * len(header))
    for engine, r in costs.items():
        ratio = f"{r['cpu_s_per_clip'] / base:19.2f}x" if base else f"{'-':>20}"
        print(f"{engine:9} {r['warmup_s']:7.2f} {r['cpu_s_per_clip']:15.3f} {r['synth_s_per_clip']:12.3f} "
              f"{r['aug_s_per_clip']:13.4f} {r['audio_s_per_cpu_s']:14.1f} {ratio}")

    defaults = Settings().data
    shares = engine_shares(defaults.engines, defaults.engine_weights)
    if base and all(e in costs for e in shares):
        mix = sum(share * costs[e]["cpu_s_per_clip"] for e, share in shares.items())
        radio = float(np.mean([c["aug_s_per_clip"] for c in costs.values()]))
        print(f"\nbaseline (espeak + piper, 1/2 each): {base:.3f} CPU s of TTS per utterance")
        print("default mix (" + ", ".join(f"{e} {s:.0%}" for e, s in shares.items()) + f"): {mix:.3f} CPU s of TTS "
              f"per utterance = {mix / base:.2f}x the baseline")
        cores = max(1, args.workers)
        budget_s = args.budget_min * 60 * cores
        rest = [e for e in shares if e != "kokoro"]
        rest_cost = sum(shares[e] * costs[e]["cpu_s_per_clip"] for e in rest) / max(1e-9, sum(shares[e] for e in rest))
        per_utt_budget = budget_s / args.utterances - radio
        kokoro = costs["kokoro"]["cpu_s_per_clip"]
        fits = (per_utt_budget - rest_cost) / (kokoro - rest_cost)
        print(f"{args.utterances} utterances in {args.budget_min:g} min on {cores} cores: at most "
              f"{max(0.0, min(1.0, fits)):.0%} of them can be Kokoro's ({kokoro:.2f} CPU s/clip; the other engines "
              f"{rest_cost:.3f} s, radio {radio:.3f} s per variant); the default mix needs "
              f"{args.utterances * (mix + radio) / cores / 60:.0f} min of TTS + radio on {cores} idle cores")

    if args.prepare > 0:
        print(f"\nprepare_dataset, {args.prepare} utterances, default engine mix (clean + 1 radio variant, catalogue + files):")
        for workers in (1, args.workers):
            p = bench_prepare(args.prepare, args.seed, workers)
            print(f"  {p['workers']} worker(s): {p['seconds']:.1f} s, {p['utt_per_s']:.2f} utterances/s, "
                  f"{p['samples']} samples; {args.utterances} utterances would take "
                  f"{args.utterances / p['utt_per_s'] / 60:.0f} min")


if __name__ == "__main__":
    main()
