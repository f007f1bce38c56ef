"""Encoder-cache speed and fidelity: PyTorch fp32 (the baseline) against the CTranslate2 encoder.

``decoder_cached`` training (the CPU default) runs the frozen encoder once per clip and trains
the decoder on the cached outputs. This script measures, on clips of a workspace:

1. **speed** - seconds per clip to fill a fresh cache (feature extraction, encoder, writing the
   ``.npy`` file; model loading excluded) for ``torch`` fp32 and CTranslate2 ``int8``,
   ``int8_float32`` and ``float32``, and the ratio against torch;
2. **fidelity** - how far each backend's outputs are from torch fp32's: relative RMS error
   ``||a - b|| / ||b||``, largest absolute difference, mean cosine similarity per position;
3. with ``--train``, **what the decoder learns** - the same ``decoder_cached`` run (same data,
   seed, epochs) on a torch cache and on a CTranslate2 int8 cache: dev loss and dev WER. The
   dev WER is decoded by the trainer with the PyTorch model on the real audio, so a decoder
   that learnt on int8 outputs is scored on fp32 ones (the harder way round; ``transcribe``
   and ``live`` run CTranslate2 int8 by default).

Usage::

    .venv/bin/python bench/encoder_cache.py --workspace /tmp/ws --clips 30
    .venv/bin/python bench/encoder_cache.py --workspace /tmp/ws --clips 30 --train --epochs 2 --batch-size 8

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

BACKENDS = (("torch", "float32"), ("ct2", "int8"), ("ct2", "int8_float32"), ("ct2", "float32"))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workspace", type=Path, required=True)
    parser.add_argument("--samples", type=int, default=None, help="Prepare this many utterances first.")
    parser.add_argument("--model", default="openai/whisper-tiny.en")
    parser.add_argument("--clips", type=int, default=30, help="Clips timed per backend.")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--train", action="store_true", help="Also train on a torch and a ct2-int8 cache.")
    parser.add_argument("--epochs", type=float, default=2.0)
    parser.add_argument("--batch-size", type=int, default=8)
    return parser.parse_args(argv)


def speed_and_fidelity(args: argparse.Namespace) -> None:
    import numpy as np
    import torch

    from atc_whisper.data.catalogue import Catalogue
    from atc_whisper.models.export import export_ct2
    from atc_whisper.models.load import load_hf
    from atc_whisper.models.resolve import resolve_model
    from atc_whisper.train.dataset import CT2Encoder, EncoderCache, TorchEncoder, items_from_samples
    from atc_whisper.workspace import Workspace

    torch.set_num_threads(args.threads)
    ws = Workspace.at(args.workspace)
    resolved = resolve_model(args.model, ws, offline=True)
    model, processor = load_hf(resolved.hf_dir, device="cpu")
    with Catalogue(ws.db_path, root=ws.root) as catalogue:
        items = items_from_samples(catalogue.samples("train", limit=args.clips))
    print(f"{len(items)} clips (mean {np.mean([i.duration_s for i in items]):.1f} s), {args.model}, "
          f"{args.threads} threads, {os.cpu_count()} CPUs visible (shared machine: wall times are indicative)")
    outputs: dict[str, list[np.ndarray]] = {}
    rows = []
    for engine, compute in BACKENDS:
        if engine == "torch":
            encoder: Any = TorchEncoder(model)
        else:
            ct2_dir = export_ct2(resolved.hf_dir, ws, quantization="int8" if compute == "int8" else "default")
            encoder = CT2Encoder(ct2_dir, compute, threads=args.threads)
        with tempfile.TemporaryDirectory() as tmp:
            cache = EncoderCache(Path(tmp), model, processor.feature_extractor, encoder=encoder)
            encoder(np.zeros((1, model.config.num_mel_bins, 3000), dtype=np.float32))  # warm-up
            start = time.perf_counter()
            paths = cache.ensure(items)
            seconds = (time.perf_counter() - start) / len(items)
            label = f"{engine} {compute}"
            outputs[label] = [np.load(p).astype(np.float32) for p in paths]
        rows.append((label, seconds))
    base_label, base_s = rows[0]
    base = outputs[base_label]
    print(f"\n{'backend':20} {'s/clip':>7} {'speed-up':>9} {'rel. RMS err':>13} {'max |diff|':>11} {'cosine':>8}")
    for label, seconds in rows:
        got = outputs[label]
        rel = float(np.sqrt(sum(np.sum((a - b) ** 2) for a, b in zip(got, base, strict=True))
                            / sum(np.sum(b**2) for b in base)))
        worst = max(float(np.max(np.abs(a - b))) for a, b in zip(got, base, strict=True))
        cos = float(np.mean([np.mean(np.sum(a * b, -1) / (np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1)))
                             for a, b in zip(got, base, strict=True)]))
        print(f"{label:20} {seconds:7.3f} {base_s / seconds:8.2f}x {rel:13.4f} {worst:11.3f} {cos:8.5f}")
    print(f"(baseline: {base_label}; outputs stored as float16 in every case, so ~1e-3 relative error is the floor)")


def train_both(args: argparse.Namespace) -> None:
    from atc_whisper.config import Settings
    from atc_whisper.train import train_model
    from atc_whisper.workspace import Workspace

    ws = Workspace.at(args.workspace)
    print(f"\ndecoder_cached training, {args.epochs:g} epochs, batch {args.batch_size}, same data and seed:")
    print(f"{'cache':16} {'cache+train s':>14} {'dev loss':>9} {'dev WER':>8}")
    for engine, compute in (("torch", "float32"), ("ct2", "int8")):
        settings = Settings().replace(
            model={"name": args.model, "threads": args.threads, "device": "cpu"},
            train={"mode": "decoder_cached", "epochs": args.epochs, "batch_size": args.batch_size,
                   "encoder_engine": engine, "encoder_compute_type": compute if engine == "ct2" else "int8",
                   "report_to": ["none"], "eval_max_samples": 0, "save_total_limit": 1, "logging_steps": 20},
        )
        start = time.perf_counter()
        result = train_model(ws, settings, progress=False, output_dir=ws.models_dir / f"bench_encoder_{engine}")
        seconds = time.perf_counter() - start
        m = result.metrics
        print(f"{engine + ' ' + compute:16} {seconds:14.0f} {m.get('dev_loss', float('nan')):9.4f} "
              f"{100 * m.get('dev_wer', float('nan')):7.1f}%")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.samples is not None:
        from atc_whisper.config import Settings
        from atc_whisper.data.prepare import prepare_dataset
        from atc_whisper.workspace import Workspace

        ws = Workspace.at(args.workspace)
        ws.create()
        prepare_dataset(ws, Settings().replace(data={"samples": args.samples}), progress=True)
    speed_and_fidelity(args)
    if args.train:
        train_both(args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
