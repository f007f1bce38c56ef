"""Transmission segmentation on real recordings: does the segmenter find the transmissions a person hears?

Runs :func:`atc_whisper.audio.segment.segment_array` (the one segmenter of ``transcribe`` and
``live``) over every audio file of a folder, once per ``[segment]`` variant, and prints the
segments found, their durations (p10 / median / p90), how many run 15 s or longer (on a real
frequency these are nearly always several transmissions run together: two speakers in one
segment, so one of them loses role, callsign and readback check), the audio kept as speech,
and the median gap between segments. Real transmissions last 1.7 / 3.4 / 6.5 s at p10 / median
/ p90 (400 annotated segments of European receiver recordings, issue 11's real-radio table),
printed beside them.

With ``--synthetic N`` it also checks the variants on the synthetic frequency recording of
``bench/archive_speed.py`` (N exchanges, built and cached the same way): there every
transmission is known, so a variant must find exactly that many.

    python bench/segmentation.py --audio ../shared/real-radio/faa-public-domain
    python bench/segmentation.py --audio recordings/ --variant min_silence_ms=400 --variant threshold=0.6,min_silence_ms=300
    python bench/segmentation.py --audio recordings/ --synthetic 12
"""

from __future__ import annotations

import argparse
import itertools
import sys
import tempfile
from pathlib import Path

import numpy as np

REAL_DURATION_S = (1.7, 3.4, 6.5)  # p10 / median / p90 of real European transmissions (issue 11)
LONG_S = 15.0
DEFAULT_VARIANTS = ["", "min_silence_ms=600", "min_silence_ms=300"]


def parse_variant(text: str) -> dict[str, object]:
    """``key=value,key=value`` -> the ``[segment]`` overrides (values read as numbers or strings)."""
    out: dict[str, object] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        key, sep, value = part.partition("=")
        if not sep:
            raise SystemExit(f"Error: variant part {part!r} is not key=value (e.g. min_silence_ms=400).")
        try:
            out[key.strip()] = float(value) if "." in value else int(value)
        except ValueError:
            out[key.strip()] = value.strip()
    return out


def measure(files: list[Path], overrides: dict[str, object]) -> dict[str, float]:
    """Segment every file with the default settings changed by ``overrides``."""
    from atc_whisper.audio.io import SAMPLE_RATE, load_audio
    from atc_whisper.audio.segment import segment_array
    from atc_whisper.audio.vad import load_vad
    from atc_whisper.config import Settings

    settings = Settings().replace(segment=overrides).segment
    vad = load_vad(settings.vad)
    durations: list[float] = []
    gaps: list[float] = []
    audio_s = 0.0
    for path in files:
        audio = load_audio(path)
        audio_s += len(audio) / SAMPLE_RATE
        vad.reset()
        found = segment_array(audio, settings, vad=vad)
        durations += [t.end_s - t.start_s for t in found]
        gaps += [b.start_s - a.end_s for a, b in itertools.pairwise(found)]
    d = np.asarray(durations) if durations else np.zeros(1)
    p10, p50, p90 = np.percentile(d, [10, 50, 90])
    return {"segments": len(durations), "p10": p10, "p50": p50, "p90": p90, "long": int((d >= LONG_S).sum()),
            "speech_share": float(d.sum() / audio_s) if audio_s else 0.0,
            "gap_p50": float(np.median(gaps)) if gaps else 0.0}


def synthetic_count(exchanges: int, overrides: dict[str, object], cache: Path) -> tuple[int, int]:
    """(planted, found) transmissions on bench/archive_speed.py's synthetic recording."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from archive_speed import build_recording  # type: ignore[import-not-found]
    from atc_whisper.audio.io import load_audio
    from atc_whisper.audio.segment import segment_array
    from atc_whisper.config import Settings

    path, _references, spans = build_recording(exchanges, 0, cache)
    found = segment_array(load_audio(path), Settings().replace(segment=overrides).segment)
    return len(spans), len(found)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--audio", type=Path, required=True, help="folder of recordings (searched recursively)")
    parser.add_argument("--variant", action="append", default=None, metavar="KEY=VALUE[,KEY=VALUE]",
                        help="[segment] overrides to compare (repeat; '' = the defaults)")
    parser.add_argument("--synthetic", type=int, default=0, metavar="N",
                        help="also count the transmissions found in the N-exchange synthetic recording")
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "atc_whisper_bench",
                        help="where the synthetic recording is cached (as bench/archive_speed.py)")
    args = parser.parse_args(argv)
    if not args.audio.is_dir():
        print(f"Error: {args.audio} is not a folder of recordings; pass --audio DIR.", file=sys.stderr)
        return 2
    from atc_whisper.audio.channel import NOISE_SUFFIXES  # the audio files bench/realism.py reads too

    files = sorted(p for p in args.audio.rglob("*") if p.suffix.lower() in NOISE_SUFFIXES)
    if not files:
        print(f"Error: no audio files ({', '.join(sorted(NOISE_SUFFIXES))}) in {args.audio}.", file=sys.stderr)
        return 2
    from atc_whisper.config import Settings

    variants = args.variant if args.variant is not None else DEFAULT_VARIANTS
    default_silence = Settings().segment.min_silence_ms
    print(f"{len(files)} recordings in {args.audio}; real transmissions last "
          f"{'/'.join(f'{v:.1f}' for v in REAL_DURATION_S)} s (p10/median/p90)")
    header = f"{'variant':32} {'segments':>8} {'dur p10/50/90 s':>16} {'>=15 s':>7} {'speech':>7} {'gap p50':>8}"
    if args.synthetic:
        header += f" {'synthetic found/planted':>24}"
    print(header)
    for text in variants:
        overrides = parse_variant(text)
        m = measure(files, overrides)
        label = text or f"(defaults: {default_silence} ms)"
        line = (f"{label:32} {m['segments']:>8} {m['p10']:>5.1f}/{m['p50']:.1f}/{m['p90']:<5.1f}"
                f" {m['long']:>7} {m['speech_share']:>6.0%} {m['gap_p50']:>7.2f}s")
        if args.synthetic:
            planted, found = synthetic_count(args.synthetic, overrides, args.cache)
            line += f" {found:>15}/{planted}{'' if found == planted else '  (!)'}"
        print(line, flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
