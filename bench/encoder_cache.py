"""Encoder-cache speed and fidelity: the whole 30 s window in PyTorch fp32 (the baseline) against
short passes and the other backends.

``decoder_cached`` training (the CPU default) runs the frozen encoder once per clip and trains
the decoder on the cached outputs (``train.encoder_cache_backend``); since the CPU engines decode
short encoder passes (``decode.encoder_pad_s``), the cache holds those too. This script measures,
on clips of a workspace:

1. **speed** - seconds per clip to fill a fresh cache (feature extraction, encoder, writing the
   ``.npz`` file; model loading excluded) for PyTorch fp32 over the whole window (the baseline,
   the cache before short passes) and, over short passes, PyTorch fp32 and bf16 (autocast) and
   CTranslate2 int8 and float32, with the ratio against the baseline: the median over clips of
   the wall time and of the process's CPU time (all threads), the backends taking turns clip by
   clip, so that other work on a shared machine hits all of them alike;
2. **fidelity** - how far each short-pass backend's outputs are from torch fp32's short pass: relative RMS error
   ``||a - b|| / ||b||``, largest absolute difference, mean cosine similarity per position;
3. with ``--train``, **what the decoder learns** - the same ``decoder_cached`` run (same data,
   seed, epochs) on each backend's cache (``--backends``): dev loss and dev WER. The
   dev WER is decoded by the trainer with the PyTorch model on the real audio, so a decoder
   that learnt on bf16 or int8 outputs is scored on fp32 ones; the script then decodes the dev split
   again with each trained model through both engines (HF fp32, and CTranslate2 int8, which
   ``transcribe``, ``evaluate`` and ``live`` use by default).

Usage::

    .venv/bin/python bench/encoder_cache.py --workspace /tmp/ws --clips 30
    .venv/bin/python bench/encoder_cache.py --workspace /tmp/ws --clips 30 --train --epochs 2 --batch-size 8
    .venv/bin/python bench/encoder_cache.py --workspace /tmp/ws --evaluate-only   # decode with the models left

The workspace needs a catalogue (``atc-whisper prepare``, or ``--samples N`` here).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

BACKENDS = ("torch-fp32", "torch-bf16", "ct2-int8", "ct2-fp32")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workspace", type=Path, required=True)
    parser.add_argument("--samples", type=int, default=None, help="Prepare this many utterances first.")
    parser.add_argument("--model", default="openai/whisper-tiny.en")
    parser.add_argument("--clips", type=int, default=30, help="Clips timed per backend.")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--train", action="store_true", help="Also train a decoder on each of --backends' caches.")
    parser.add_argument("--backends", nargs="+", default=["torch-fp32", "torch-bf16", "ct2-int8"], choices=BACKENDS,
                        help="Caches to train on with --train.")
    parser.add_argument("--epochs", type=float, default=2.0)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--evaluate-only", action="store_true",
                        help="Only decode the dev split with the models an earlier --train left.")
    return parser.parse_args(argv)


def speed_and_fidelity(args: argparse.Namespace) -> None:
    import numpy as np
    import torch

    from atc_whisper.data.catalogue import Catalogue
    from atc_whisper.models.export import export_ct2
    from atc_whisper.models.load import load_hf
    from atc_whisper.models.resolve import resolve_model
    from atc_whisper.train.dataset import items_from_samples
    from atc_whisper.train.encoder_states import CT2Encoder, EncoderCache, TorchEncoder
    from atc_whisper.workspace import Workspace

    torch.set_num_threads(args.threads)
    ws = Workspace.at(args.workspace)
    resolved = resolve_model(args.model, ws, offline=True)
    model, processor = load_hf(resolved.hf_dir, device="cpu")
    with Catalogue(ws.db_path, root=ws.root) as catalogue:
        items = items_from_samples(catalogue.samples("train", limit=args.clips))
    print(f"{len(items)} clips (mean {np.mean([i.duration_s for i in items]):.1f} s), {args.model}, "
          f"{args.threads} threads, {os.cpu_count()} CPUs visible (shared machine: wall times are indicative)")
    from atc_whisper.config import DecodeSettings
    from atc_whisper.train.encoder_states import load_states
    from atc_whisper.transcribe.window import ShortWindow

    short, whole = ShortWindow.of(DecodeSettings()), ShortWindow(30.0, 30.0)
    encoders: dict[str, Any] = {"torch-fp32 whole": (TorchEncoder(model, "fp32"), whole)}
    for backend in BACKENDS:
        engine, precision = backend.split("-")
        if engine == "torch":
            encoders[f"{backend} short"] = (TorchEncoder(model, precision), short)
        else:
            ct2_dir = export_ct2(resolved.hf_dir, ws, quantization="int8" if precision == "int8" else "default")
            encoders[f"{backend} short"] = (CT2Encoder(ct2_dir, "int8" if precision == "int8" else "float32",
                                                       threads=args.threads), short)
    labels = list(encoders)
    walls: dict[str, list[float]] = {label: [] for label in labels}
    cpus: dict[str, list[float]] = {label: [] for label in labels}
    outputs: dict[str, list[np.ndarray]] = {label: [] for label in labels}
    with tempfile.TemporaryDirectory() as tmp:
        caches = {label: EncoderCache(Path(tmp) / label.replace(" ", "-"), model, processor.feature_extractor, window,
                                      encoder=encoder) for label, (encoder, window) in encoders.items()}
        for encoder, _ in encoders.values():
            encoder(np.zeros((1, model.config.num_mel_bins, 3000), dtype=np.float32))  # warm-up
        # Round robin, one clip at a time, rotating the order: on a shared machine a burst of
        # someone else's work then hits every backend alike; medians ignore the bursts.
        for k, item in enumerate(items):
            for label in labels[k % len(labels):] + labels[: k % len(labels)]:
                start, cpu = time.perf_counter(), time.process_time()
                (path,) = caches[label].ensure([item])
                walls[label].append(time.perf_counter() - start)
                cpus[label].append(time.process_time() - cpu)
                outputs[label].append(load_states(path)[0])
    rows = [(label, float(np.median(walls[label])), float(np.median(cpus[label]))) for label in labels]
    base_label, base_s, base_cpu = rows[0]
    reference = outputs["torch-fp32 short"]
    print(f"\n{'backend':20} {'s/clip':>7} {'speed-up':>9} {'CPU s/clip':>11} {'CPU ratio':>10} {'rel. RMS err':>13} "
          f"{'max |diff|':>11} {'cosine':>8}")
    for label, seconds, cpu_seconds in rows:
        got = outputs[label]
        fidelity = "" if label == base_label else _fidelity(got, reference)
        print(f"{label:20} {seconds:7.3f} {base_s / seconds:8.2f}x {cpu_seconds:11.3f} {base_cpu / cpu_seconds:9.2f}x "
              f"{fidelity}")
    print(f"(median per clip, backends interleaved clip by clip; baseline: {base_label}; fidelity against torch-fp32 "
          "short; outputs stored as float16 in every case)")


def _fidelity(got: list[Any], base: list[Any]) -> str:
    """Relative RMS error, largest absolute difference and mean cosine per position, as table cells."""
    import numpy as np

    rel = float(np.sqrt(sum(np.sum((a - b) ** 2) for a, b in zip(got, base, strict=True))
                        / sum(np.sum(b**2) for b in base)))
    worst = max(float(np.max(np.abs(a - b))) for a, b in zip(got, base, strict=True))
    cos = float(np.mean([np.mean(np.sum(a * b, -1) / (np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1)))
                         for a, b in zip(got, base, strict=True)]))
    return f"{rel:13.4f} {worst:11.3f} {cos:8.5f}"


def train_both(args: argparse.Namespace) -> None:
    from atc_whisper.config import Settings
    from atc_whisper.train import train_model
    from atc_whisper.workspace import Workspace

    ws = Workspace.at(args.workspace)
    print(f"\ndecoder_cached training, {args.epochs:g} epochs, batch {args.batch_size}, same data and seed:")
    print(f"{'cache':16} {'cache+train s':>14} {'dev loss':>9} {'dev WER':>8}")
    for backend in args.backends:
        settings = Settings().replace(
            model={"name": args.model, "threads": args.threads, "device": "cpu"},
            train={"mode": "decoder_cached", "epochs": args.epochs, "batch_size": args.batch_size,
                   "encoder_cache_backend": backend, "report_to": ["none"], "eval_max_samples": 0,
                   "save_total_limit": 1, "logging_steps": 20},
        )
        start = time.perf_counter()
        result = train_model(ws, settings, progress=False, output_dir=ws.models_dir / f"bench_encoder_{backend}")
        seconds = time.perf_counter() - start
        m = result.metrics
        print(f"{backend:16} {seconds:14.0f} {m.get('dev_loss', float('nan')):9.4f} "
              f"{100 * m.get('dev_wer', float('nan')):7.1f}%")


def evaluate_both(args: argparse.Namespace) -> None:
    """Dev WER of the two trained decoders through both inference engines (HF fp32, CTranslate2 int8)."""
    from atc_whisper.audio.io import load_audio
    from atc_whisper.config import Settings
    from atc_whisper.data.catalogue import Catalogue
    from atc_whisper.evaluate.metrics import score_corpus
    from atc_whisper.transcribe import load_engine
    from atc_whisper.workspace import Workspace

    ws = Workspace.at(args.workspace)
    settings = Settings().replace(model={"threads": args.threads, "device": "cpu"})
    with Catalogue(ws.db_path, root=ws.root) as catalogue:
        dev = catalogue.samples("dev")
    audios = [load_audio(s.audio_path) for s in dev]
    print(f"\ndev WER ({len(dev)} clips) of each trained decoder, decoded by each engine:")
    print(f"{'trained on':16} {'hf fp32':>8} {'ct2 int8':>9}")
    for backend in BACKENDS:
        folder = ws.models_dir / f"bench_encoder_{backend}"
        if not (folder / "config.json").exists():
            continue
        wers = []
        for inference in ("hf", "ct2"):
            hyps = [t.text for t in load_engine(folder, settings, ws, engine=inference).transcribe_batch(audios)]
            wers.append(score_corpus([s.text_norm for s in dev], hyps)["wer"])
        print(f"{backend:16} {100 * wers[0]:7.1f}% {100 * wers[1]:8.1f}%")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.samples is not None:
        from atc_whisper.config import Settings
        from atc_whisper.data.prepare import prepare_dataset
        from atc_whisper.workspace import Workspace

        ws = Workspace.at(args.workspace)
        ws.create()
        prepare_dataset(ws, Settings().replace(data={"samples": args.samples}), progress=True)
    if not args.evaluate_only:
        speed_and_fidelity(args)
    if args.train:
        train_both(args)
    if args.train or args.evaluate_only:
        evaluate_both(args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
