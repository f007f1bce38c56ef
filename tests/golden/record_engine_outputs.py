"""Record what both engines output on the golden clips (run to regenerate engine_outputs.json).

The clips (espeak-ng speech, one of them buried in noise so that it needs the temperature
fallback, one that makes Whisper loop) are stored as FLAC files beside this script, so the
comparison does not depend on the installed espeak-ng version. ``tests/transcribe/test_engines.py``
asserts that the engines still produce these outputs; regenerate only when a change of the
decoding results is intended, and say why in the commit message.

Usage (from the repository root)::

    PYTHONPATH=src python tests/golden/record_engine_outputs.py            # write engine_outputs.json
    PYTHONPATH=src python tests/golden/record_engine_outputs.py --clips    # re-synthesise the clips first
    PYTHONPATH=src python tests/golden/record_engine_outputs.py --engines ct2   # re-record one engine only
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

HERE = Path(__file__).resolve().parent
CLIPS_DIR = HERE / "clips"
OUTPUTS = HERE / "engine_outputs.json"
SENTENCE = "Speedbird one two three, climb flight level three five zero, then turn left heading two seven zero"
TEXTS = {
    "atc": SENTENCE,
    "tower": "Lufthansa four five six, contact tower one one eight decimal seven",
    "short": "Roger",
    "loop": " ".join(["climb"] * 16),
}
#: The noisy clip: "atc" with white noise at -5 dB SNR (seeded), which the engines decode at
#: higher temperatures.
NOISY_SNR_DB = -5.0
#: Known callsigns for the prompted runs; the long list is over Whisper's prompt budget
#: (half the 448-token context), so the prompt truncation is exercised too.
PROMPT = "Speedbird one two three, Lufthansa four five six."
LONG_PROMPT = ", ".join(f"Speedbird {a} {b} {c}" for a in ("one", "two", "three", "four", "five")
                        for b in ("six", "seven", "eight", "nine") for c in ("zero", "one", "two")) + "."
FIELDS = ("text", "avg_logprob", "no_speech_prob", "compression_ratio", "temperature", "reasons",
          "low_confidence", "duration_s")


def make_clips() -> None:
    """Synthesise the clips with espeak-ng and store them as 16-bit FLAC."""
    import soundfile as sf

    from atc_whisper.audio.tts import synthesize

    CLIPS_DIR.mkdir(parents=True, exist_ok=True)
    for name, text in TEXTS.items():
        audio = synthesize(text, "espeak:en-us")
        sf.write(CLIPS_DIR / f"{name}.flac", audio, 16_000, subtype="PCM_16")
    clean = load_clip("atc")
    rng = np.random.default_rng(7)
    power = float(np.sqrt(np.mean(clean**2)))
    noise = rng.standard_normal(len(clean)).astype(np.float32) * power * 10 ** (-NOISY_SNR_DB / 20)
    sf.write(CLIPS_DIR / "noisy.flac", np.clip(clean + noise, -1, 1), 16_000, subtype="PCM_16")


def load_clip(name: str) -> np.ndarray:
    """A stored clip as float32 (the 16-bit samples, exactly)."""
    import soundfile as sf

    audio, rate = sf.read(CLIPS_DIR / f"{name}.flac", dtype="float32")
    assert rate == 16_000
    return audio


def clip_names() -> list[str]:
    """Every golden clip, in a fixed order."""
    return [*TEXTS, "noisy"]


def record(result: Any) -> dict[str, Any]:
    """The fields of a Transcription the golden file keeps."""
    return {key: getattr(result, key) for key in FIELDS}


def run_engine(engine: Any) -> dict[str, Any]:
    """Every golden run of one engine: each clip alone, all clips as one batch, prompted runs."""
    clips = {name: load_clip(name) for name in clip_names()}
    out: dict[str, Any] = {"single": {}, "batch": {}, "prompt": {}, "long_prompt": {}}
    for name, audio in clips.items():
        out["single"][name] = record(engine.transcribe(audio))
    batch = engine.transcribe_batch(list(clips.values()))
    out["batch"] = {name: record(r) for name, r in zip(clips, batch, strict=True)}
    for name in ("atc", "noisy"):
        out["prompt"][name] = record(engine.transcribe(clips[name], prompt=PROMPT))
        out["long_prompt"][name] = record(engine.transcribe(clips[name], prompt=LONG_PROMPT))
    return out


def golden_settings() -> Any:
    """One thread, offline, CPU, default decoding over Whisper's whole window: the settings every
    golden run uses.

    The outputs were recorded with the whole 30 s window for encoder and decoder, openai/whisper's
    computation (``decode.encoder_pad_s = 30``, ``decode.context_s = 30``). The engines' default on a
    CPU, short encoder passes and a 10 s context, is another computation; its own tests are in
    ``tests/transcribe/test_transcribe.py``.

    CTranslate2 runs in float32 here: its int8 kernels differ between CPUs (without AVX-512 VNNI the
    8-bit products are summed in saturating 16-bit pairs), so an int8 transcript recorded on one
    machine is not the one another computes ("Speedbird 1 2 3" on an AVX-512 machine, "Speedbird 1, 2,
    3" on an AVX2 one, from the same code); float32 is the same computation everywhere, to rounding.
    """
    from atc_whisper.config import Settings

    return Settings().replace(model={"threads": 1, "offline": True, "device": "cpu"},
                              decode={"encoder_pad_s": 30.0, "context_s": 30.0, "compute_type": "float32"})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", action="store_true", help="re-synthesise the clips first")
    parser.add_argument("--workspace", type=Path, default=None)
    parser.add_argument("--engines", default="ct2,hf",
                        help="engines to record, comma-separated (the others keep their recorded outputs)")
    args = parser.parse_args(argv)
    if args.clips or not (CLIPS_DIR / "noisy.flac").exists():
        make_clips()

    from atc_whisper.models.resolve import resolve_model
    from atc_whisper.transcribe import load_engine
    from atc_whisper.workspace import Workspace

    workspace = Workspace.at(args.workspace or Path(tempfile.mkdtemp(prefix="golden-ws-")))
    workspace.create()
    settings = golden_settings()
    hf_dir = resolve_model("openai/whisper-tiny.en", workspace, offline=True).hf_dir
    outputs = json.loads(OUTPUTS.read_text(encoding="utf-8")) if OUTPUTS.exists() else {}
    for name in args.engines.split(","):
        outputs[name] = run_engine(load_engine(hf_dir, settings, workspace, engine=name))
    outputs = {name: outputs[name] for name in ("ct2", "hf") if name in outputs}
    OUTPUTS.write_text(json.dumps(outputs, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {OUTPUTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
