"""Synthetic-data speed: samples per second for TTS synthesis + radio augmentation, per engine.

For each engine (eSpeak NG, Piper) the same generated utterances are synthesised with that
engine's voices and random prosody, then sent through one random radio channel each. The
script prints, per engine: seconds per utterance for synthesis and for augmentation, audio
seconds produced per wall second, and samples (clean + radio variant) per second. It then
times the full ``prepare_dataset`` (catalogue, files, metadata.csv) on a mix of both engines
as a whole-pipeline figure.

Usage::

    .venv/bin/python bench/prepare_speed.py                 # 20 utterances per engine
    .venv/bin/python bench/prepare_speed.py --n 50 --threads 2

The first Piper call loads its ONNX voice (a few seconds); that load is timed separately and
excluded from the per-utterance figures.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def bench_engine(engine: str, n: int, seed: int) -> dict[str, float]:
    """Synthesise and augment ``n`` utterances with one engine; return timings."""
    from atc_whisper.audio.channel import RadioChannel
    from atc_whisper.audio.tts import list_voices, random_voice_params, synthesize
    from atc_whisper.config import ChannelSettings
    from atc_whisper.phraseology import generate_utterances

    utterances = generate_utterances(n, seed)
    voices = [v.id for v in list_voices([engine])]
    rng = np.random.default_rng(seed)
    channel = RadioChannel(ChannelSettings())
    t0 = time.perf_counter()
    synthesize("radio check", voices[0])  # warm-up: loads models, spawns nothing afterwards
    warmup_s = time.perf_counter() - t0
    synth_s = aug_s = audio_s = 0.0
    for u in utterances:
        voice = voices[int(rng.integers(len(voices)))]
        params = random_voice_params(voice, rng)
        t0 = time.perf_counter()
        clean = synthesize(u.text, voice, **params)
        t1 = time.perf_counter()
        radio, _ = channel.apply(clean, rng)
        t2 = time.perf_counter()
        synth_s += t1 - t0
        aug_s += t2 - t1
        audio_s += (clean.size + radio.size) / 16_000
    total = synth_s + aug_s
    return {
        "warmup_s": warmup_s, "synth_s_per_utt": synth_s / n, "aug_s_per_utt": aug_s / n,
        "utt_per_s": n / total, "samples_per_s": 2 * n / total, "audio_s_per_s": audio_s / total,
    }


def bench_prepare(n: int, seed: int) -> dict[str, float]:
    """Time the full prepare_dataset on ``n`` utterances (both engines) in a temp workspace."""
    from atc_whisper.config import Settings
    from atc_whisper.data.prepare import prepare_dataset
    from atc_whisper.workspace import Workspace

    with tempfile.TemporaryDirectory() as tmp:
        ws = Workspace.at(Path(tmp) / "ws")
        ws.create()
        settings = Settings().replace(data={"samples": n, "seed": seed, "engines": ["espeak", "piper"]})
        t0 = time.perf_counter()
        report = prepare_dataset(ws, settings, progress=False)
        seconds = time.perf_counter() - t0
        again0 = time.perf_counter()
        prepare_dataset(ws, settings, progress=False)  # everything present: the resume check alone
        again_s = time.perf_counter() - again0
    return {"seconds": seconds, "samples": report.added_samples, "samples_per_s": report.added_samples / seconds,
            "hours": report.totals["hours"], "rerun_s": again_s}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20, help="utterances per engine")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--threads", type=int, default=2, help="torch/onnx threads (Piper)")
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))

    print(f"prepare speed: {args.n} utterances per engine, 1 radio variant each, {os.cpu_count()} CPUs visible")
    header = f"{'engine':8} {'load s':>7} {'TTS s/utt':>10} {'radio s/utt':>12} {'utt/s':>7} {'samples/s':>10} {'audio s/s':>10}"
    print(header)
    print("-" * len(header))
    for engine in ("espeak", "piper"):
        r = bench_engine(engine, args.n, args.seed)
        print(f"{engine:8} {r['warmup_s']:7.2f} {r['synth_s_per_utt']:10.3f} {r['aug_s_per_utt']:12.4f} "
              f"{r['utt_per_s']:7.2f} {r['samples_per_s']:10.2f} {r['audio_s_per_s']:10.1f}")
    p = bench_prepare(args.n, args.seed)
    print(f"\nprepare_dataset, {args.n} utterances (both engines, clean + 1 radio variant, catalogue + files): "
          f"{p['seconds']:.1f} s, {p['samples']} samples, {p['samples_per_s']:.2f} samples/s, "
          f"{p['hours'] * 3600:.0f} s of audio; re-run with nothing to do: {p['rerun_s']:.2f} s")


if __name__ == "__main__":
    main()
