"""eSpeak NG voices: formant speech, robotic but light, fast and with many English accents.

eSpeak NG synthesises a sentence in a few milliseconds and ships English accents (US, UK,
Scottish, RP, Caribbean, New York, Lancaster, West Midlands) that combine with voice
variants (male ``m1``-``m8``, female ``f1``-``f5``, Klatt formant voices). Each
accent x variant pair is one voice, e.g. ``"espeak:en-gb-scotland+f2"``: a wide spread of
speakers for free. It runs as a subprocess (``espeak-ng --stdout``), so nothing but the
Debian package is needed.
"""

from __future__ import annotations

import functools
import shutil
import struct
import subprocess
from typing import Any

import numpy as np

from ..errors import TTSError
from .io import SAMPLE_RATE, resample
from .tts import RateCurve, TTSEngine, Voice

#: English accents used for ATC speakers (espeak-ng language name -> description).
ACCENTS: dict[str, str] = {
    "en-us": "American English",
    "en-gb": "British English",
    "en-gb-x-rp": "British English, received pronunciation",
    "en-gb-scotland": "Scottish English",
    "en-gb-x-gbclan": "Lancashire English",
    "en-gb-x-gbcwmd": "West Midlands English",
    "en-029": "Caribbean English",
    "en-us-nyc": "New York English",
}

#: Voice variants that stay intelligible (the novelty ones - whisper, croak, robots - do not).
#: "" is the accent's own default voice.
VARIANTS: dict[str, str] = {
    "": "male (default)",
    **{f"m{i}": f"male {i}" for i in range(1, 9)},
    **{f"f{i}": f"female {i}" for i in range(1, 6)},
    "klatt": "Klatt formant, male",
    "klatt2": "Klatt formant 2",
    "klatt3": "Klatt formant 3",
    "Andy": "male (Andy)",
    "david": "male (David)",
    "john": "male (John)",
    "linda": "female (Linda)",
    "max": "male (Max)",
    "steph": "female (Steph)",
}

# Prosody. The rate is drawn so the clips' words per second follow real radio (median 3.2):
# eSpeak speaks 2.53 words/s of ATC phraseology at 175 words/min (its default), and faster
# nearly in proportion (words/s ~ 2.53 * (wpm / 175) ** 1.09), measured over whole clips by
# bench/speaking_rate.py. The words themselves spread the rate (log sd 0.12), hence the spread
# factor. Above ~300 words/min eSpeak slurs into noise, so the rate stops there.
RATE = RateCurve(wps_at_unit=2.53, exponent=1.09, spread=0.88, bounds=(130, 300), unit=175)  # words per minute
PITCH = (25, 75)  # eSpeak pitch 0-99, default 50
WORD_GAP_10MS = (0, 1)  # extra pause between words, in units of 10 ms


def run_espeak(args: list[str], text: str | None = None) -> subprocess.CompletedProcess[bytes]:
    exe = shutil.which("espeak-ng")
    if exe is None:
        raise TTSError("espeak-ng not found; install it with 'apt-get install espeak-ng' (Debian/Ubuntu).")
    return subprocess.run(
        [exe, *args], input=None if text is None else text.encode("utf-8"), capture_output=True, check=False, timeout=120
    )


def _parse_wav(data: bytes) -> tuple[np.ndarray, int]:
    """Decode espeak-ng's --stdout WAV (16-bit PCM, mono) whose size fields say 'streaming'."""
    if len(data) < 44 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise TTSError("espeak-ng returned no WAV audio; check the installation with 'espeak-ng --version'.")
    rate = struct.unpack("<I", data[24:28])[0]
    start = data.find(b"data", 12)
    if start < 0:
        raise TTSError("espeak-ng returned a WAV without a data chunk; check the installation.")
    pcm = data[start + 8:]
    pcm = pcm[: len(pcm) - (len(pcm) % 2)]
    return np.frombuffer(pcm, dtype="<i2").astype(np.float32) / 32768.0, int(rate)


@functools.cache
def _installed() -> tuple[frozenset[str], frozenset[str]]:
    """(languages, variants) espeak-ng reports as installed."""
    languages = run_espeak(["--voices=en"]).stdout.decode("utf-8", "replace").splitlines()[1:]
    variants = run_espeak(["--voices=variant"]).stdout.decode("utf-8", "replace").splitlines()[1:]
    langs = {line.split()[1] for line in languages if len(line.split()) > 4}
    var_files = {line.split()[4].removeprefix("!v/") for line in variants if len(line.split()) > 4}
    return frozenset(langs), frozenset(var_files)


class EspeakEngine(TTSEngine):
    """eSpeak NG through its command-line program.

    Parameters of :meth:`synthesize`: ``rate_wpm`` (words per minute), ``pitch`` (0-99),
    ``word_gap_10ms`` (extra pause between words, 10 ms units).
    """

    name = "espeak"

    def __init__(self) -> None:
        proc = run_espeak(["--version"])
        if proc.returncode != 0:
            raise TTSError(
                f"espeak-ng does not run ({proc.stderr.decode('utf-8', 'replace').strip()}); "
                "reinstall it with 'apt-get install --reinstall espeak-ng'."
            )
        self._voices = self._build_voices()

    def _build_voices(self) -> list[Voice]:
        langs, variants = _installed()
        voices = []
        for accent, accent_desc in ACCENTS.items():
            if accent not in langs:
                continue
            for variant, variant_desc in VARIANTS.items():
                if variant and variant not in variants:
                    continue
                name = f"{accent}+{variant}" if variant else accent
                voices.append(Voice(f"espeak:{name}", "espeak", name, f"{accent_desc}, {variant_desc}"))
        if not voices:
            raise TTSError("espeak-ng has no English voices installed; install 'espeak-ng-data' with apt-get.")
        return voices

    def voices(self) -> list[Voice]:
        return list(self._voices)

    def random_params(self, voice: str, rng: np.random.Generator) -> dict[str, Any]:
        self.voice(voice)
        return {
            "rate_wpm": round(RATE.draw(rng)),
            "pitch": int(rng.integers(PITCH[0], PITCH[1] + 1)),
            "word_gap_10ms": int(rng.integers(WORD_GAP_10MS[0], WORD_GAP_10MS[1] + 1)),
        }

    def synthesize(
        self, text: str, voice: str, *, rate_wpm: int = 175, pitch: int = 50, word_gap_10ms: int = 0, **unknown: Any
    ) -> np.ndarray:
        if unknown:
            raise TTSError(
                f"unknown eSpeak NG parameter(s) {', '.join(sorted(unknown))}; valid: rate_wpm, pitch, word_gap_10ms."
            )
        self.voice(voice)
        args = ["-v", voice, "-s", str(int(rate_wpm)), "-p", str(int(pitch)), "-g", str(int(word_gap_10ms)),
                "--stdin", "--stdout"]
        # Text goes through stdin, so a sentence starting with "-" is never read as an option.
        proc = run_espeak(args, text)
        if proc.returncode != 0:
            raise TTSError(
                f"espeak-ng failed for voice {voice}: {proc.stderr.decode('utf-8', 'replace').strip()}; "
                "check the voice name with 'espeak-ng --voices=en'."
            )
        audio, rate = _parse_wav(proc.stdout)
        return resample(audio, rate, SAMPLE_RATE)
