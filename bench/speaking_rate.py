"""Speaking rate per TTS engine: words per second of the synthetic clips against real ATC radio.

Real radio (issue 11's table, 400 European receiver segments): 2.2 / 3.2 / 4.2 words/s
(p10 / median / p90), words of the reference over the segment's duration. This script
synthesises generated ATC utterances with each engine's voices and prints the same figures,
words of the reference over the clean clip's duration, for:

* ``--mode drawn`` (default): the prosody each engine draws (``random_voice_params``), i.e.
  what ``prepare`` makes; with the synthesis cost per clip;
* ``--mode calibrate``: the engine's rate parameter at two fixed values (the rest drawn), and
  the fit ``words/s = a * p**b`` and the log-spread the words alone cause, from which each
  engine's ``RateCurve`` (``atc_whisper.audio.tts``) is set.

Usage::

    .venv/bin/python bench/speaking_rate.py                          # 20 clips per engine
    .venv/bin/python bench/speaking_rate.py --engines kokoro --n 10 --mode calibrate
"""

from __future__ import annotations

import argparse
import math
import os

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")

REAL = (2.2, 3.2, 4.2)
#: engine -> (rate parameter, two values to calibrate at)
KNOBS: dict[str, tuple[str, tuple[float, float]]] = {
    "espeak": ("rate_wpm", (175.0, 260.0)),
    "piper": ("length_scale", (1.0, 0.7)),
    "kokoro": ("speed", (1.0, 1.5)),
    "flite": ("duration_stretch", (1.0, 0.7)),
    "festival": ("duration_stretch", (1.0, 0.7)),
}


def _clips(engine: str, n: int, seed: int, knob: float | None) -> tuple[np.ndarray, float]:
    """words/s of ``n`` clips and CPU seconds of synthesis per clip."""
    from atc_whisper.audio.io import duration_s
    from atc_whisper.audio.tts import list_voices, random_voice_params, synthesize
    from atc_whisper.data.prepare import cpu_seconds
    from atc_whisper.phraseology import generate_utterances

    voices = [v.id for v in list_voices([engine])]
    rng = np.random.default_rng(seed)
    synthesize("radio check", voices[0])  # warm-up: model loads are not synthesis cost
    rates, seconds = [], 0.0
    for u in generate_utterances(n, seed):
        voice = voices[int(rng.integers(len(voices)))]
        params = random_voice_params(voice, rng)
        if knob is not None:
            name = KNOBS[engine][0]
            params[name] = int(knob) if name == "rate_wpm" else knob
        cpu0 = cpu_seconds()
        audio = synthesize(u.text, voice, **params)
        seconds += cpu_seconds() - cpu0
        rates.append(len(u.reference.split()) / duration_s(audio))
    return np.asarray(rates), seconds / n


def _triple(values: np.ndarray) -> str:
    p10, p50, p90 = np.percentile(values, [10, 50, 90])
    return f"{p10:.2f} / {p50:.2f} / {p90:.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engines", nargs="+", default=list(KNOBS), choices=list(KNOBS))
    parser.add_argument("--n", type=int, default=20, help="clips per engine (and per calibration point)")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--mode", choices=("drawn", "calibrate"), default="drawn")
    args = parser.parse_args()

    print(f"speaking rate, words of the reference / clean clip duration, {args.n} clips per engine; "
          f"real radio p10/50/90: {REAL[0]} / {REAL[1]} / {REAL[2]} words/s")
    if args.mode == "drawn":
        print(f"{'engine':9} {'words/s p10 / p50 / p90':>24} {'median vs real':>15} {'CPU s/clip':>11}")
        for engine in args.engines:
            rates, cost = _clips(engine, args.n, args.seed, None)
            print(f"{engine:9} {_triple(rates):>24} {np.median(rates) / REAL[1] - 1:+15.0%} {cost:11.2f}")
        return
    print(f"{'engine':9} {'param':17} {'at p1':>7} {'p10 / p50 / p90':>20} {'at p2':>7} {'p10 / p50 / p90':>20} "
          f"{'a (p=1)':>8} {'b':>6} {'log sd':>7}")
    for engine in args.engines:
        name, (p1, p2) = KNOBS[engine]
        r1, _ = _clips(engine, args.n, args.seed, p1)
        r2, _ = _clips(engine, args.n, args.seed, p2)
        b = math.log(np.median(r2) / np.median(r1)) / math.log(p2 / p1)
        a = float(np.median(r1)) / (p1 ** b if name != "rate_wpm" else (p1 / 175.0) ** b)
        sd = float(np.std(np.log(r1)))
        print(f"{engine:9} {name:17} {p1:7g} {_triple(r1):>20} {p2:7g} {_triple(r2):>20} {a:8.2f} {b:6.2f} {sd:7.3f}")
    print("\nreal radio's log-spread: lower side ln(3.2/2.2)/1.28 = 0.29, upper ln(4.2/3.2)/1.28 = 0.21; "
          "an engine's RateCurve spread = sqrt(1 - (its log sd / 0.25)**2)")


if __name__ == "__main__":
    main()
