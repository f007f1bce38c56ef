"""Readback-mismatch flag and speaker role on generated exchanges, clean and with recognition errors.

Generated exchanges (controller instruction, pilot readback; a share of readbacks wrong on
purpose: a changed level, heading, frequency, squawk, runway ... or a required item left out)
are put on one frequency in speaking order - readbacks sometimes overtaken by the next
aircraft's instruction, some exchanges opened by a pilot's call - and fed one by one to the
conversation tracker, as ``live`` does. Figures (see ``atc_whisper.evaluate.readbacks``):

* precision / recall / F1 of the ``readback_mismatch`` flag against the planted errors;
* checked: readbacks matched to their instruction; exchange: readbacks in their instruction's exchange;
* role accuracy (unknown counts as wrong) and coverage (share not unknown);
* the same precision / recall for a naive check (flag whenever the parsed commands differ),
  the baseline, and the ratio of F1 against it.

Rows: the references themselves, then simulated recognition errors at each ``--wer``
(words dropped, digits and letters confused, words inserted); with ``--asr N``, a last row
where N exchanges are spoken by eSpeak and transcribed by a real model (``--model``, default
the bundled tiny.en through CTranslate2 int8), its WER printed. Target: precision and recall
>= 0.9 on the references.

    python bench/readback.py                       # 2000 exchanges; WER 0, 3, 10, 20 %
    python bench/readback.py --exchanges 300 --wer 0 0.05
    python bench/readback.py --wer 0 --asr 40 --model models/atc_whisper   # a fine-tuned model on real speech
"""

from __future__ import annotations

import argparse
import math
import sys
import time


def main(argv: list[str] | None = None) -> int:
    from atc_whisper.evaluate.readbacks import TARGET_PRECISION, TARGET_RECALL, measure_readbacks

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--exchanges", type=int, default=2000, help="exchanges per row")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--error-rate", type=float, default=0.3, help="share of wrong readbacks")
    parser.add_argument("--interleave", type=float, default=0.3, help="chance a readback is overtaken")
    parser.add_argument("--wer", type=float, nargs="+", default=[0.0, 0.03, 0.10, 0.20],
                        help="simulated word error rates (0: references)")
    parser.add_argument("--asr", type=int, default=0, metavar="N",
                        help="also run N exchanges through eSpeak and a real recogniser")
    parser.add_argument("--model", default="openai/whisper-tiny.en", help="model for --asr")
    parser.add_argument("--workspace", default=None, help="workspace for --asr model caches (default: a temp folder)")
    args = parser.parse_args(argv)

    rows: list[tuple[str, int, dict]] = [(f"{wer:>5.0%}", args.exchanges, {"word_error_rate": wer}) for wer in args.wer]
    if args.asr:
        recognise, wer_of = _recogniser(args.model, args.workspace)
        rows.append(("  asr", args.asr, {"recognise": recognise}))
    header = (f"{'WER':>5} {'wrong':>6} {'prec':>6} {'recall':>6} {'F1':>6} {'checked':>7} {'exch':>6} "
              f"{'role':>6} {'cover':>6} | {'naive P':>7} {'naive R':>7} {'F1/naive':>8}  {'s':>5}")
    print(f"{args.exchanges} exchanges per row, error rate {args.error_rate}, interleave {args.interleave}, "
          f"seed {args.seed}")
    print(header)
    reference_ok = True
    for label, n, options in rows:
        started = time.perf_counter()
        f = measure_readbacks(n, args.seed, error_rate=args.error_rate, interleave=args.interleave, **options)
        naive_f1 = (2 * f.naive_precision * f.naive_recall / (f.naive_precision + f.naive_recall)
                    if f.naive_precision + f.naive_recall else math.nan)
        print(f"{label} {f.wrong:>6} {f.precision:>6.3f} {f.recall:>6.3f} {f.f1:>6.3f} {f.checked:>7.3f} "
              f"{f.exchange_accuracy:>6.3f} {f.role_accuracy:>6.3f} {f.role_coverage:>6.3f} | "
              f"{f.naive_precision:>7.3f} {f.naive_recall:>7.3f} {f.f1 / naive_f1:>8.2f}  "
              f"{time.perf_counter() - started:>5.1f}")
        if options.get("word_error_rate") == 0.0:
            reference_ok = f.precision >= TARGET_PRECISION and f.recall >= TARGET_RECALL
    if args.asr:
        print(f"asr row: {args.model} on eSpeak speech, WER {wer_of():.1%} (normalised) over the transmissions")
    if 0.0 in args.wer:
        verdict = "met" if reference_ok else "NOT met"
        print(f"target on references: precision >= {TARGET_PRECISION} and recall >= {TARGET_RECALL}: {verdict}")
    return 0 if reference_ok else 1


def _recogniser(model: str, workspace_dir: str | None):  # type: ignore[no-untyped-def]
    """(text -> transcript of its eSpeak speech, running WER) for the --asr row."""
    import os
    import tempfile
    from pathlib import Path

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from atc_whisper.audio.tts import synthesize
    from atc_whisper.config import Settings
    from atc_whisper.evaluate.metrics import align
    from atc_whisper.phraseology import normalize_atc
    from atc_whisper.transcribe import load_engine
    from atc_whisper.workspace import Workspace

    workspace = Workspace.at(Path(workspace_dir or tempfile.mkdtemp(prefix="atc_readback_bench_")))
    workspace.create()
    engine = load_engine(model, Settings(), workspace, engine="ct2")
    errors = [0, 0]

    def recognise(text: str) -> str:
        hypothesis = engine.transcribe(synthesize(text, "espeak:en-us")).text
        alignment = align(normalize_atc(text).split(), normalize_atc(hypothesis).split())
        errors[0] += alignment.errors
        errors[1] += alignment.n_ref
        return hypothesis

    return recognise, lambda: errors[0] / max(errors[1], 1)


if __name__ == "__main__":
    sys.exit(main())
