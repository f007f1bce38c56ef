"""Accuracy benchmark: prepare -> train -> evaluate at a real size, against the issue's targets.

What it measures, on the held-out synthetic test set (its voice, ``data.test_voices``, is never
heard in training):

* base vs fine-tuned normalised WER        target: fine-tuned <= 5 %
* base vs fine-tuned callsign accuracy     target: fine-tuned >= 95 %
* base vs fine-tuned command accuracy      target: fine-tuned >= 90 %
* WER on plain (non-ATC) English sentences spoken by the test voice, base vs fine-tuned:
  the catastrophic-forgetting check     target: fine-tuned no more than 5 points worse

and the wall time of every stage. The figures are printed and written to
``<workspace>/bench_accuracy.json``; the evaluation's own reports and plots land in the
workspace's ``models/atc_whisper/`` as usual.

Usage (real size: a few thousand samples; hours on a 2-core CPU, minutes on a GPU)::

    .venv/bin/python bench/accuracy.py --workspace /tmp/atc_bench --samples 3000 --epochs 4
    .venv/bin/python bench/accuracy.py --samples 40 --epochs 1 --max-test 20 --plain 5   # smoke size

Stages whose outputs exist are reused when the same workspace is passed again
(``--skip-prepare`` / ``--skip-train``), so an interrupted run resumes cheaply.
Any other setting can be given with ``--set section.key=value`` (e.g. ``--set train.mode=full``).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

TARGETS = {"wer": 0.05, "callsign_acc": 0.95, "command_acc": 0.90, "plain_wer_increase": 0.05}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workspace", type=Path, default=None, help="Workspace folder (default: a new temp folder).")
    parser.add_argument("--samples", type=int, default=3000, help="Synthetic utterances to generate (data.samples).")
    parser.add_argument("--epochs", type=float, default=4.0, help="Training epochs (train.epochs).")
    parser.add_argument("--batch-size", type=int, default=None, help="Training batch size (train.batch_size).")
    parser.add_argument("--model", default=None, help="Pretrained model to start from (model.name).")
    parser.add_argument("--max-test", type=int, default=0, help="Evaluate at most N test samples (0 = all).")
    parser.add_argument("--plain", type=int, default=40, help="Plain English sentences for the forgetting check.")
    parser.add_argument("--engine", choices=("auto", "ct2", "hf"), default=None, help="Inference engine.")
    parser.add_argument("--skip-prepare", action="store_true", help="Reuse the workspace's catalogue.")
    parser.add_argument("--skip-train", action="store_true", help="Reuse the workspace's fine-tuned model.")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE",
                        help="Any other setting (repeatable).")
    return parser.parse_args(argv)


def plain_english_wer(workspace: Any, settings: Any, models: dict[str, Any], n: int, engine: str | None) -> dict[str, Any]:
    """WER of each model on ``n`` plain English sentences spoken by the held-out test voice."""
    from tqdm.auto import tqdm

    from atc_whisper.audio.tts import synthesize
    from atc_whisper.evaluate.metrics import score_corpus
    from atc_whisper.phraseology import PLAIN_SENTENCES, plain_sentences
    from atc_whisper.transcribe import load_engine

    # Each distinct sentence once: the generator cycles through its list when asked for more.
    sentences = plain_sentences(min(n, len(PLAIN_SENTENCES)), seed=settings.data.seed + 1)
    voice = settings.data.test_voices[0] if settings.data.test_voices else "espeak:en-us"
    audios = [synthesize(text, voice) for text in tqdm(sentences, desc="synthesise plain English", leave=False)]
    out: dict[str, Any] = {"n": len(sentences), "voice": voice}
    for label, model in models.items():
        eng = load_engine(model, settings, workspace, engine=engine)
        hyps = [t.text for t in eng.transcribe_batch(audios)]
        # Plain English is scored with case/punctuation normalisation only: the ATC normaliser
        # would rewrite numbers and spelling the way ATC references are written.
        scores = score_corpus(sentences, hyps, normalize="raw")
        out[label] = {"wer": scores["wer"], "median_utt_wer": scores["median_utt_wer"],
                      "examples": [{"reference": r, "hypothesis": h} for r, h in list(zip(sentences, hyps, strict=True))[:5]]}
    return out


def pct(value: Any) -> str:
    return "-" if value is None or (isinstance(value, float) and not math.isfinite(value)) else f"{100 * value:6.1f} %"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from atc_whisper.config import load_settings
    from atc_whisper.log import setup_logging
    from atc_whisper.workspace import Workspace

    root = args.workspace or Path(tempfile.mkdtemp(prefix="atc_bench_"))
    workspace = Workspace.at(root)
    options: dict[str, dict[str, Any]] = {"data": {"samples": args.samples}, "train": {"epochs": args.epochs},
                                          "evaluate": {"max_samples": args.max_test}}
    if args.batch_size:
        options["train"]["batch_size"] = args.batch_size
    if args.model:
        options["model"] = {"name": args.model}
    settings = load_settings(None, workspace.config_path, args.overrides, options)
    workspace.create(settings, overwrite_config=True)
    setup_logging(workspace.log_file, level="WARNING")
    print(f"workspace: {workspace.root}")
    print(f"samples {args.samples}, epochs {args.epochs}, model {settings.model.name}, "
          f"held-out test voice(s) {', '.join(settings.data.test_voices)}")

    timings: dict[str, float] = {}
    started = time.perf_counter()
    if not args.skip_prepare:
        from atc_whisper.data.prepare import prepare_dataset

        t0 = time.perf_counter()
        prepare_dataset(workspace, settings, progress=True)
        timings["prepare_s"] = time.perf_counter() - t0
    if not args.skip_train:
        from atc_whisper.train import train_model

        t0 = time.perf_counter()
        train_model(workspace, settings, progress=True)
        timings["train_s"] = time.perf_counter() - t0

    from atc_whisper.evaluate import run_evaluation

    t0 = time.perf_counter()
    result = run_evaluation(workspace, settings, engine=args.engine, progress=True)
    timings["evaluate_s"] = time.perf_counter() - t0
    plain: dict[str, Any] = {}
    if args.plain > 0:
        t0 = time.perf_counter()
        plain = plain_english_wer(workspace, settings, {"base": settings.model.name, "fine_tuned": workspace.model_dir},
                                  args.plain, args.engine)
        timings["plain_s"] = time.perf_counter() - t0
    timings["total_s"] = time.perf_counter() - started

    base, tuned = result.summary.get("base", {}), result.summary["fine_tuned"]
    plain_increase = (plain["fine_tuned"]["wer"] - plain["base"]["wer"]) if plain else None
    checks = {
        "wer": tuned["wer"] is not None and tuned["wer"] <= TARGETS["wer"],
        "callsign_acc": tuned["callsign_acc"] is not None and tuned["callsign_acc"] >= TARGETS["callsign_acc"],
        "command_acc": tuned["command_acc"] is not None and tuned["command_acc"] >= TARGETS["command_acc"],
        "plain_wer_increase": plain_increase is not None and plain_increase <= TARGETS["plain_wer_increase"],
    }
    print()
    print(f"held-out synthetic test set: {tuned['n']} samples")
    print(f"{'metric':34s} {'base':>9s} {'fine-tuned':>11s}   target        met")
    rows = [("normalised WER", "wer", "<= 5 %"), ("raw WER", "raw_wer", ""), ("median utterance WER", "median_utt_wer", ""),
            ("callsign accuracy", "callsign_acc", ">= 95 %"), ("command accuracy", "command_acc", ">= 90 %")]
    for title, key, target in rows:
        met = ("yes" if checks[key] else "NO") if key in checks else ""
        print(f"{title:34s} {pct(base.get(key)):>9s} {pct(tuned.get(key)):>11s}   {target:12s}  {met}")
    if plain:
        met = "yes" if checks["plain_wer_increase"] else "NO"
        print(f"{'plain English WER (' + str(plain['n']) + ' sentences)':34s} {pct(plain['base']['wer']):>9s} "
              f"{pct(plain['fine_tuned']['wer']):>11s}   {'<= base + 5':12s}  {met}")
    print("wall time: " + ", ".join(f"{k[:-2]} {v:.0f} s" for k, v in timings.items()))
    out = {"args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
           "summary": result.summary, "plain_english": plain, "targets": TARGETS, "met": checks, "timings_s": timings,
           "report": str(result.report_path)}
    (workspace.root / "bench_accuracy.json").write_text(json.dumps(out, indent=2, default=str) + "\n")
    print(f"figures: {workspace.root / 'bench_accuracy.json'}; report: {result.report_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
