"""Training speed: the plain Hugging Face recipe against this project's default, same data and epochs.

(a) plain   - stock ``Seq2SeqTrainer``, full fine-tuning, 30 s padded input, the Hugging Face
              blog's recipe ("Fine-Tune Whisper For Multilingual ASR with Transformers"):
              lr 1e-5, linear schedule with warm-up (the blog's 500 of 5000 steps = 10 %),
              gradient checkpointing, its padding collator (labels from ``tokenizer(text)``,
              leading start token stripped).
(b) project - ``atc_whisper.train.train_model`` with the default mode for the CPU
              (``decoder_cached``: encoder outputs computed once and cached, decoder trained)
              and ``--lr`` (default 1e-4, the decoder-only rate of the first experiment);
              evaluation (``train.dev_evaluation = false``) and checkpoints during training are
              switched off, as in (a).

Each variant runs in its own subprocess (so peak RSS is its own), on the same catalogue, for
the same epochs and batch size; then its final model transcribes the dev split with the same
bounded decoder, scored with the same normalised WER. Prints samples/s (wall and per CPU
second - the machine may be shared, which inflates wall time unevenly), peak RSS, dev WER
and the speed ratio. (b)'s time includes caching the encoder outputs.

    python bench/train_speed.py --samples 40 --epochs 2          # small, a few minutes
    python bench/train_speed.py --samples 600 --epochs 4         # closer to a real run
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


def _settings(args: argparse.Namespace, **train: Any) -> Any:
    from atc_whisper.config import Settings

    return Settings().replace(
        model={"name": args.model, "threads": args.threads, "device": "cpu"},
        data={"samples": args.samples, "seed": 7, "augmented_per_sample": 1, "clean_share": 0.0,
              "dev_fraction": args.dev_fraction, "test_fraction": 0.05},
        train={"epochs": float(args.epochs), "batch_size": args.batch_size, "logging_steps": 5,
               "report_to": ["none"], **train},
    )


def prepare(args: argparse.Namespace) -> None:
    from atc_whisper.data.catalogue import Catalogue
    from atc_whisper.data.prepare import prepare_dataset
    from atc_whisper.workspace import Workspace

    ws = Workspace.at(args.workspace)
    ws.create()
    if ws.db_path.exists():
        with Catalogue(ws.db_path, root=ws.root) as catalogue:
            if catalogue.count("train") > 0:
                return
    prepare_dataset(ws, _settings(args), progress=True)


def dev_wer(model: Any, processor: Any, ws: Any, settings: Any) -> float:
    from atc_whisper.audio.io import load_audio
    from atc_whisper.data.catalogue import Catalogue
    from atc_whisper.evaluate.metrics import wer
    from atc_whisper.transcribe.hf_engine import generate_bounded

    with Catalogue(ws.db_path, root=ws.root) as catalogue:
        dev = catalogue.samples("dev")
    model.eval()
    hyps = generate_bounded(model, processor, [load_audio(s.audio_path) for s in dev], settings.decode)
    return float(wer([s.text_norm for s in dev], [h.text for h in hyps]))


def run_plain(args: argparse.Namespace) -> dict[str, Any]:
    """The stock recipe: the blog's collator, full fine-tuning, 30 s padded features."""
    import torch
    from transformers import Seq2SeqTrainer, Seq2SeqTrainingArguments

    from atc_whisper.audio.io import load_audio
    from atc_whisper.data.catalogue import Catalogue
    from atc_whisper.models.load import load_hf
    from atc_whisper.models.resolve import resolve_model
    from atc_whisper.train.perf import peak_rss_mb
    from atc_whisper.workspace import Workspace

    ws = Workspace.at(args.workspace)
    settings = _settings(args)
    torch.set_num_threads(args.threads)
    model, processor = load_hf(resolve_model(args.model, ws, offline=True).hf_dir)
    with Catalogue(ws.db_path, root=ws.root) as catalogue:
        train = catalogue.samples("train")

    class Blog(torch.utils.data.Dataset):  # type: ignore[type-arg]
        def __len__(self) -> int:
            return len(train)

        def __getitem__(self, i: int) -> dict[str, Any]:
            audio = load_audio(train[i].audio_path)
            feats = processor.feature_extractor(audio, sampling_rate=16000).input_features[0]
            return {"input_features": feats, "labels": processor.tokenizer(train[i].text_norm).input_ids}

    def collate(features: list[dict[str, Any]]) -> dict[str, Any]:
        batch = processor.feature_extractor.pad([{"input_features": f["input_features"]} for f in features],
                                                return_tensors="pt")
        labels_batch = processor.tokenizer.pad([{"input_ids": f["labels"]} for f in features], return_tensors="pt")
        labels = labels_batch["input_ids"].masked_fill(labels_batch.attention_mask.ne(1), -100)
        if (labels[:, 0] == model.config.decoder_start_token_id).all().cpu().item():
            labels = labels[:, 1:]
        batch["labels"] = labels
        return dict(batch)

    steps = max(1, int(args.epochs * -(-len(train) // args.batch_size)))
    targs = Seq2SeqTrainingArguments(
        output_dir=tempfile.mkdtemp(prefix="plain-"), per_device_train_batch_size=args.batch_size,
        num_train_epochs=args.epochs, learning_rate=1e-5, warmup_steps=max(1, steps // 10),
        gradient_checkpointing=True, use_cpu=True, report_to=[], save_strategy="no", eval_strategy="no",
        logging_steps=5, remove_unused_columns=False, disable_tqdm=True, seed=42,
    )
    model.config.use_cache = False
    trainer = Seq2SeqTrainer(model=model, args=targs, train_dataset=Blog(), data_collator=collate,
                             processing_class=processor)
    wall, cpu = time.monotonic(), time.process_time()
    trainer.train()
    wall, cpu = time.monotonic() - wall, time.process_time() - cpu
    model.config.use_cache = True
    seen = trainer.state.global_step * args.batch_size
    return {"variant": "plain", "samples_seen": min(seen, int(len(train) * args.epochs)), "wall_s": wall, "cpu_s": cpu,
            "steps": trainer.state.global_step, "peak_rss_mb": peak_rss_mb(), "dev_wer": dev_wer(model, processor, ws, settings)}


def run_project(args: argparse.Namespace) -> dict[str, Any]:
    """This project's default (decoder_cached on CPU), encoder caching included in the time."""
    import shutil

    from atc_whisper.models.load import load_hf
    from atc_whisper.train import train_model
    from atc_whisper.train.perf import peak_rss_mb
    from atc_whisper.workspace import Workspace

    ws = Workspace.at(args.workspace)
    shutil.rmtree(ws.cache_dir / "encoder", ignore_errors=True)  # time the one-off caching pass too
    # No evaluation or checkpoints during training, as in (a): both are scored once at the end.
    settings = _settings(args, learning_rate=args.lr, eval_steps=10**9, save_steps=10**9, dev_evaluation=False)
    out = Path(tempfile.mkdtemp(prefix="project-"))
    wall, cpu = time.monotonic(), time.process_time()
    result = train_model(ws, settings, progress=False, output_dir=out)
    wall, cpu = time.monotonic() - wall, time.process_time() - cpu
    model, processor = load_hf(out)
    from atc_whisper.data.catalogue import Catalogue

    with Catalogue(ws.db_path, root=ws.root) as catalogue:
        n_clips = catalogue.count("train")
    n_train = min(result.steps * args.batch_size, int(n_clips * args.epochs))
    return {"variant": "project", "samples_seen": n_train, "wall_s": wall, "cpu_s": cpu, "loop_s": result.train_seconds,
            "steps": result.steps, "mode": result.mode, "peak_rss_mb": peak_rss_mb(),
            "dev_wer": dev_wer(model, processor, ws, settings)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=40, help="synthetic utterances to prepare")
    parser.add_argument("--epochs", type=float, default=2)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--lr", type=float, default=1e-4, help="learning rate of (b)")
    parser.add_argument("--dev-fraction", type=float, default=0.2)
    parser.add_argument("--model", default="openai/whisper-tiny.en")
    parser.add_argument("--workspace", default=str(Path(tempfile.gettempdir()) / "atc-train-speed"))
    parser.add_argument("--variant", choices=("plain", "project"), help=argparse.SUPPRESS)
    args = parser.parse_args()

    from atc_whisper.log import setup_logging

    setup_logging(None, "WARNING")
    if args.variant:
        result = run_plain(args) if args.variant == "plain" else run_project(args)
        print("RESULT " + json.dumps(result))
        return
    prepare(args)
    results = {}
    for variant in ("plain", "project"):
        print(f"running ({'a' if variant == 'plain' else 'b'}) {variant} ...", flush=True)
        proc = subprocess.run([sys.executable, __file__, *sys.argv[1:], "--variant", variant],
                              capture_output=True, text=True)
        line = next((x for x in proc.stdout.splitlines() if x.startswith("RESULT ")), None)
        if line is None:
            sys.exit(f"{variant} failed:\n{proc.stderr[-3000:]}")
        results[variant] = json.loads(line[len("RESULT "):])
    print(f"\n{args.samples} prepared utterances, {args.epochs} epochs, batch {args.batch_size}, "
          f"{args.threads} threads, model {args.model}")
    print(f"{'variant':<10}{'samples/s':>11}{'samples/CPU-s':>15}{'wall s':>9}{'peak RSS MiB':>14}{'dev WER':>9}")
    for name, r in results.items():
        print(f"{name:<10}{r['samples_seen'] / r['wall_s']:>11.3f}{r['samples_seen'] / r['cpu_s']:>15.3f}"
              f"{r['wall_s']:>9.1f}{r['peak_rss_mb']:>14.0f}{100 * r['dev_wer']:>8.1f}%")
    plain, project = results["plain"], results["project"]
    print(f"speed ratio (project / plain): {plain['wall_s'] / project['wall_s']:.2f}x wall, "
          f"{plain['cpu_s'] / project['cpu_s']:.2f}x CPU time (caching included)")
    print(f"dev WER: plain {100 * plain['dev_wer']:.1f}%, project {100 * project['dev_wer']:.1f}% "
          f"({'no worse' if project['dev_wer'] <= plain['dev_wer'] else 'worse'})")


if __name__ == "__main__":
    main()
