"""Speed of speech synthesis (per engine) and of the radio channel, per ~4 s ATC clip."""

from __future__ import annotations

import statistics
import time

import numpy as np

from atc_whisper.audio.channel import RadioChannel
from atc_whisper.audio.io import SAMPLE_RATE
from atc_whisper.audio.tts import list_voices, random_voice_params, synthesize

TEXTS = [
    "speedbird one two three, climb flight level three five zero",
    "lufthansa four five six, turn left heading two seven zero",
    "ryanair eight one, contact london one two seven decimal eight two",
    "delta two two, cleared to land runway two seven left, wind two five zero degrees one two knots",
    "skywest four one, descend altitude four thousand feet, QNH one zero one three",
    "easy seven niner, hold short runway zero niner, traffic on final",
]


def main() -> None:
    rng = np.random.default_rng(0)
    for engine in ("espeak", "piper"):
        voices = list_voices([engine])
        synthesize(TEXTS[0], voices[0].id)  # warm-up (Piper loads its model once)
        times, audio_s = [], []
        for _i in range(3):
            for text in TEXTS:
                voice = voices[int(rng.integers(len(voices)))].id
                params = random_voice_params(voice, rng)
                t0 = time.perf_counter()
                audio = synthesize(text, voice, **params)
                times.append(time.perf_counter() - t0)
                audio_s.append(audio.size / SAMPLE_RATE)
        print(f"{engine:7s} synthesis: median {1000 * statistics.median(times):7.1f} ms/clip, "
              f"mean clip {statistics.mean(audio_s):.2f} s, real-time factor {sum(times) / sum(audio_s):.4f}, "
              f"{len(times) / sum(times):.1f} clips/s")
    clip = synthesize(TEXTS[0], "espeak:en-us")
    clip = clip[: 4 * SAMPLE_RATE] if clip.size >= 4 * SAMPLE_RATE else np.pad(clip, (0, 4 * SAMPLE_RATE - clip.size))
    channel = RadioChannel()
    times = []
    for seed in range(200):
        t0 = time.perf_counter()
        channel.apply(clip, np.random.default_rng(seed))
        times.append(time.perf_counter() - t0)
    times.sort()
    print(f"channel on a 4.00 s clip: median {1000 * statistics.median(times):.1f} ms, "
          f"p90 {1000 * times[int(0.9 * len(times))]:.1f} ms (200 random draws)")


if __name__ == "__main__":
    main()
