"""Accuracy benchmark: prepare -> train -> evaluate at a real size, against the issue's targets.

What it measures, on the held-out synthetic test set (its voice, ``data.test_voices``, is never
heard in training), for each starting model (``--models tiny.en,base``: rows side by side):

* base vs fine-tuned normalised WER        target: fine-tuned <= 5 %
* base vs fine-tuned callsign accuracy     target: fine-tuned >= 95 %
* base vs fine-tuned command accuracy      target: fine-tuned >= 90 %
* WER on plain (non-ATC) English sentences spoken by the test voice, base vs fine-tuned:
  the catastrophic-forgetting check     target: fine-tuned no more than 5 points worse
* radio static (a receiver's noise with no transmission, ``RadioChannel.static`` with a seed no
  training clip uses): how many clips each model writes text for, and its mean no-speech
  probability (``--static``; no target: the base model's figure is the reference)

and the cost: wall time of every stage (prepare once; per model the encoder cache, the
training loop, the evaluation of both models, the plain-English check), training samples/s
and the peak resident memory of each model's run (each model runs in its own process, so the
figures do not mix). The figures are printed and written to ``<workspace>/bench_accuracy.json``
(one ``bench_accuracy_<model>.json`` per model beside it). The data is shared; each model gets
its own workspace under ``<workspace>/runs/<model>/`` (the data, encoder cache and converted
models are linked, not copied), so its evaluation reports and plots are kept apart.

Usage (real size: a few thousand samples; hours on a 2-core CPU, minutes on a GPU)::

    .venv/bin/python bench/accuracy.py --workspace /tmp/atc_bench --samples 3000 --epochs 3 --batch-size 8 --plain 62
    .venv/bin/python bench/accuracy.py --workspace /tmp/atc_bench --skip-prepare --models tiny.en,base --epochs 3
    .venv/bin/python bench/accuracy.py --samples 40 --epochs 1 --max-test 20 --plain 5 --models tiny.en,base  # smoke

Stages whose outputs exist are reused when the same workspace is passed again
(``--skip-prepare`` / ``--skip-train``), and ``--resume`` continues an interrupted training run
from its last checkpoint (each epoch saves one), so an interrupted run resumes cheaply.
Any other setting can be given with ``--set section.key=value`` (e.g. ``--set train.mode=full``).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
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
    parser.add_argument("--model", default=None, help="Pretrained model to start from (model.name); one model.")
    parser.add_argument("--models", default=None,
                        help="Comma-separated models to compare side by side, e.g. tiny.en,base (overrides --model).")
    parser.add_argument("--max-test", type=int, default=0, help="Evaluate at most N test samples (0 = all).")
    parser.add_argument("--plain", type=int, default=40, help="Plain English sentences for the forgetting check.")
    parser.add_argument("--static", type=int, default=40, help="Clips of radio static for the no-speech check.")
    parser.add_argument("--engine", choices=("auto", "ct2", "hf"), default=None, help="Inference engine.")
    parser.add_argument("--skip-prepare", action="store_true", help="Reuse the workspace's catalogue.")
    parser.add_argument("--skip-train", action="store_true", help="Reuse each model's fine-tuned model.")
    parser.add_argument("--resume", action="store_true",
                        help="Continue each model's interrupted training from its last checkpoint.")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE",
                        help="Any other setting (repeatable).")
    parser.add_argument("--one-model", default=None, help=argparse.SUPPRESS)  # internal: the per-model child run
    return parser.parse_args(argv)


def slug(model: str) -> str:
    """A folder-safe name for a model ("openai/whisper-base" -> "openai--whisper-base"): the
    models' own cache-folder rule."""
    from atc_whisper.models.resolve import safe_dir_name

    return safe_dir_name(model)


def load(args: argparse.Namespace, root: Path, model: str | None) -> tuple[Any, Any]:
    """The workspace at ``root`` and the bench's settings (``model`` as model.name when given)."""
    from atc_whisper.config import load_settings
    from atc_whisper.workspace import Workspace

    workspace = Workspace.at(root)
    options: dict[str, dict[str, Any]] = {"data": {"samples": args.samples}, "train": {"epochs": args.epochs},
                                          "evaluate": {"max_samples": args.max_test}}
    if args.batch_size:
        options["train"]["batch_size"] = args.batch_size
    if model:
        options["model"] = {"name": model}
    return workspace, load_settings(None, workspace.config_path, args.overrides, options)


def model_workspace(root: Path, model: str) -> Path:
    """``<root>/runs/<model>``: its own models/ folder, the shared data and converted models linked in."""
    run = root / "runs" / slug(model)
    (run / "models").mkdir(parents=True, exist_ok=True)
    for link, target in ((run / "data", root / "data"), (run / "models" / "pretrained", root / "models" / "pretrained")):
        target.mkdir(parents=True, exist_ok=True)
        if not link.exists():
            link.symlink_to(target, target_is_directory=True)
    return run


def plain_english_wer(settings: Any, engines: dict[str, Any], n: int) -> dict[str, Any]:
    """WER of each model on ``n`` plain English sentences spoken by the held-out test voice."""
    from tqdm.auto import tqdm

    from atc_whisper.audio.tts import synthesize
    from atc_whisper.evaluate.metrics import score_corpus
    from atc_whisper.phraseology import PLAIN_SENTENCES, plain_sentences

    # Each distinct sentence once: the generator cycles through its list when asked for more.
    sentences = plain_sentences(min(n, len(PLAIN_SENTENCES)), seed=settings.data.seed + 1)
    voice = settings.data.test_voices[0] if settings.data.test_voices else "espeak:en-us"
    audios = [synthesize(text, voice) for text in tqdm(sentences, desc="synthesise plain English", leave=False)]
    out: dict[str, Any] = {"n": len(sentences), "voice": voice}
    for label, eng in engines.items():
        hyps = [t.text for t in eng.transcribe_batch(audios)]
        # Plain English is scored with case/punctuation normalisation only: the ATC normaliser
        # would rewrite numbers and spelling the way ATC references are written.
        scores = score_corpus(sentences, hyps, normalize="raw")
        out[label] = {"wer": scores["wer"], "median_utt_wer": scores["median_utt_wer"],
                      "examples": [{"reference": r, "hypothesis": h} for r, h in list(zip(sentences, hyps, strict=True))[:5]]}
    return out


#: Seed offset of the static check's clips: far from every seed ``prepare`` draws static clips with.
STATIC_SEED_OFFSET = 31_337


def static_check(settings: Any, engines: dict[str, Any], n: int, noise_dir: Path) -> dict[str, Any]:
    """Each model on ``n`` clips of radio static: clips given text, and the mean no-speech probability."""
    import numpy as np

    from atc_whisper.audio.channel import RadioChannel
    from atc_whisper.data.static import STATIC_SECONDS

    channel = RadioChannel(settings.channel, noise_dir)
    clips = []
    for k in range(n):
        rng = np.random.default_rng([settings.data.seed + STATIC_SEED_OFFSET, k])
        clips.append(channel.static(float(rng.uniform(*STATIC_SECONDS)), rng)[0])
    out: dict[str, Any] = {"n": n}
    for label, eng in engines.items():
        transcripts = eng.transcribe_batch(clips)
        texts = [t.text for t in transcripts]
        out[label] = {"with_text": sum(bool(t.strip()) for t in texts),
                      "mean_no_speech_prob": float(np.mean([t.no_speech_prob for t in transcripts])),
                      "examples": [t for t in texts if t.strip()][:5]}
    return out


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, MiB."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024


def run_one(args: argparse.Namespace, root: Path) -> int:
    """Train and evaluate one model in its own workspace; write ``bench_accuracy_<model>.json``."""
    from atc_whisper.log import setup_logging

    model = args.one_model
    workspace, settings = load(args, model_workspace(root, model), model)
    workspace.create(settings, overwrite_config=True)
    setup_logging(workspace.log_file, level="WARNING")
    timings: dict[str, float] = {}
    train: dict[str, Any] = {}
    if not args.skip_train:
        from atc_whisper.train import train_model

        t0 = time.perf_counter()
        result = train_model(workspace, settings, progress=True, resume=args.resume)
        timings["train_total_s"] = time.perf_counter() - t0
        timings["encoder_cache_s"] = float(result.metrics.get("encoder_cache_s", 0.0))
        timings["train_loop_s"] = result.train_seconds
        train = {"steps": result.steps, "samples_per_s": result.samples_per_s, "peak_rss_mb": result.peak_rss_mb,
                 "mode": result.mode, "metrics": result.metrics, "resumed": args.resume}
    from atc_whisper.evaluate import run_evaluation

    t0 = time.perf_counter()
    evaluation = run_evaluation(workspace, settings, engine=args.engine, progress=True)
    timings["evaluate_s"] = time.perf_counter() - t0
    plain: dict[str, Any] = {}
    static: dict[str, Any] = {}
    if args.plain > 0 or args.static > 0:
        from atc_whisper.transcribe import load_engine

        engines = {label: load_engine(model, settings, workspace, engine=args.engine)
                   for label, model in (("base", settings.model.name), ("fine_tuned", workspace.model_dir))}
        if args.plain > 0:
            t0 = time.perf_counter()
            plain = plain_english_wer(settings, engines, args.plain)
            timings["plain_s"] = time.perf_counter() - t0
        if args.static > 0:
            t0 = time.perf_counter()
            static = static_check(settings, engines, args.static, workspace.noise_dir)
            timings["static_s"] = time.perf_counter() - t0
    base, tuned = evaluation.summary.get("base", {}), evaluation.summary["fine_tuned"]
    plain_increase = (plain["fine_tuned"]["wer"] - plain["base"]["wer"]) if plain else None
    met = {
        "wer": tuned["wer"] is not None and tuned["wer"] <= TARGETS["wer"],
        "callsign_acc": tuned["callsign_acc"] is not None and tuned["callsign_acc"] >= TARGETS["callsign_acc"],
        "command_acc": tuned["command_acc"] is not None and tuned["command_acc"] >= TARGETS["command_acc"],
        "plain_wer_increase": plain_increase is not None and plain_increase <= TARGETS["plain_wer_increase"],
    }
    out = {"model": model, "workspace": str(workspace.root), "summary": evaluation.summary, "base": base,
           "fine_tuned": tuned, "plain_english": plain, "static": static, "met": met, "timings_s": timings, "train": train,
           "peak_rss_mb": peak_rss_mb(), "report": str(evaluation.report_path)}
    (root / f"bench_accuracy_{slug(model)}.json").write_text(json.dumps(out, indent=2, default=str) + "\n")
    return 0


def child_argv(args: argparse.Namespace, root: Path, model: str) -> list[str]:
    """The command line of the per-model child process."""
    argv = [sys.executable, str(Path(__file__).resolve()), "--workspace", str(root), "--samples", str(args.samples),
            "--epochs", str(args.epochs), "--max-test", str(args.max_test), "--plain", str(args.plain),
            "--static", str(args.static),
            "--one-model", model]
    if args.batch_size:
        argv += ["--batch-size", str(args.batch_size)]
    if args.engine:
        argv += ["--engine", args.engine]
    if args.skip_train:
        argv.append("--skip-train")
    if args.resume:
        argv.append("--resume")
    for override in args.overrides:
        argv += ["--set", override]
    return argv


def pct(value: Any) -> str:
    return "-" if value is None or (isinstance(value, float) and not math.isfinite(value)) else f"{100 * value:.1f} %"


def static_cell(row: dict[str, Any]) -> str:
    """``base -> tuned`` clips of static given text, of n."""
    static = row.get("static") or {}
    if not static:
        return "-"
    return f"{static['base']['with_text']} -> {static['fine_tuned']['with_text']} of {static['n']}"


def print_rows(rows: dict[str, dict[str, Any]], prepare_s: float | None) -> None:
    """One table of accuracy (base -> fine-tuned) and one of cost, a row per model."""
    def pair(row: dict[str, Any], key: str) -> str:
        return f"{pct(row['base'].get(key))} -> {pct(row['fine_tuned'].get(key))}"

    def flag(row: dict[str, Any], key: str) -> str:
        return "" if row["met"].get(key) else " (NO)"

    ok = {name: row for name, row in rows.items() if "error" not in row}
    print()
    print("accuracy, base -> fine-tuned (target met unless marked NO)")
    print(f"{'model':24s} {'n':>5s} {'test WER':>22s} {'callsign acc.':>22s} {'command acc.':>22s} "
          f"{'plain-English WER':>22s} {'static with text':>18s}")
    for name, row in ok.items():
        plain = row["plain_english"]
        plain_cell = f"{pct(plain['base']['wer'])} -> {pct(plain['fine_tuned']['wer'])}" if plain else "-"
        print(f"{name:24s} {row['fine_tuned']['n']:5d} {pair(row, 'wer') + flag(row, 'wer'):>22s} "
              f"{pair(row, 'callsign_acc') + flag(row, 'callsign_acc'):>22s} "
              f"{pair(row, 'command_acc') + flag(row, 'command_acc'):>22s} "
              f"{plain_cell + (flag(row, 'plain_wer_increase') if plain else ''):>22s} {static_cell(row):>18s}")
    print()
    print("cost" + (f" (prepare, shared: {prepare_s:.0f} s)" if prepare_s is not None else ""))
    print(f"{'model':24s} {'encoder cache':>14s} {'train loop':>11s} {'evaluate':>9s} {'plain':>7s} {'static':>7s} "
          f"{'samples/s':>10s} {'peak RSS':>10s}")
    for name, row in ok.items():
        t, train = row["timings_s"], row["train"]
        cells = [f"{t.get('encoder_cache_s', 0):.0f} s", f"{t.get('train_loop_s', 0):.0f} s", f"{t['evaluate_s']:.0f} s",
                 f"{t.get('plain_s', 0):.0f} s", f"{t.get('static_s', 0):.0f} s", f"{train.get('samples_per_s', 0):.2f}",
                 f"{row['peak_rss_mb']:.0f} MB"]
        print(f"{name:24s} {cells[0]:>14s} {cells[1]:>11s} {cells[2]:>9s} {cells[3]:>7s} {cells[4]:>7s} {cells[5]:>10s} "
              f"{cells[6]:>10s}")
    for name, row in rows.items():
        if "error" in row:
            print(f"{name}: FAILED ({row['error']})")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    root = (args.workspace or Path(tempfile.mkdtemp(prefix="atc_bench_"))).expanduser().resolve()
    if args.one_model:
        return run_one(args, root)
    from atc_whisper.log import setup_logging

    workspace, settings = load(args, root, args.model)
    workspace.create(settings, overwrite_config=True)
    setup_logging(workspace.log_file, level="WARNING")
    models = [m.strip() for m in args.models.split(",") if m.strip()] if args.models else [settings.model.name]
    print(f"workspace: {workspace.root}")
    print(f"samples {args.samples}, epochs {args.epochs}, models {', '.join(models)}, "
          f"held-out test voice(s) {', '.join(settings.data.test_voices)}")
    started = time.perf_counter()
    prepare_s = None
    if not args.skip_prepare:
        from atc_whisper.data.prepare import prepare_dataset

        t0 = time.perf_counter()
        prepare_dataset(workspace, settings, progress=True)
        prepare_s = time.perf_counter() - t0
    rows: dict[str, dict[str, Any]] = {}
    for model in models:
        print(f"\n== {model} ==", flush=True)
        t0 = time.perf_counter()
        proc = subprocess.run(child_argv(args, root, model), check=False)
        result_file = root / f"bench_accuracy_{slug(model)}.json"
        if proc.returncode != 0 or not result_file.exists():
            rows[model] = {"error": f"exit code {proc.returncode}; see the output above"}
            continue
        rows[model] = json.loads(result_file.read_text())
        rows[model]["timings_s"]["model_total_s"] = time.perf_counter() - t0
    print_rows(rows, prepare_s)
    total_s = time.perf_counter() - started
    print(f"wall time: {total_s:.0f} s in all" + (f" (prepare {prepare_s:.0f} s)" if prepare_s is not None else ""))
    out = {"args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}, "targets": TARGETS,
           "prepare_s": prepare_s, "total_s": total_s, "models": rows}
    (root / "bench_accuracy.json").write_text(json.dumps(out, indent=2, default=str) + "\n")
    print(f"figures: {root / 'bench_accuracy.json'}")
    return 0 if all("error" not in row for row in rows.values()) else 1


if __name__ == "__main__":
    from atc_whisper.errors import AtcWhisperError

    try:
        sys.exit(main())
    except AtcWhisperError as exc:  # e.g. --resume with no checkpoint: one line, no traceback
        print(f"Error: {exc}", file=sys.stderr)
        raise SystemExit(1) from None
