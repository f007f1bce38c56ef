"""Flite voices: CMU's small synthesiser, with a Scottish speaker and voices unlike eSpeak's.

Flite (``apt-get install flite``) ships five English voices built from recordings of real
speakers: ``kal`` (US male diphone, 8 kHz), ``kal16`` (the same at 16 kHz), and the
statistical-parametric ``awb`` (Scottish male), ``rms`` (US male) and ``slt`` (US female).
They sound like neither eSpeak's formant speech nor the neural voices, which is the point:
another family of synthesis artefacts the recogniser must not key on. ``awb_time`` (a
talking clock that only says times) is left out. It runs as a subprocess, a few tens of
milliseconds per clip, and is deterministic.

Prosody: ``duration_stretch`` (> 1 is slower), drawn so the words per second match real radio,
and ``f0_shift`` (pitch factor; ``rms`` ignores it).
"""

from __future__ import annotations

import functools
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import TTSError
from .io import load_audio
from .tts import RateCurve, TTSEngine, Voice, to_peak

INSTALL = "apt-get install flite"
#: Voices that speak English words (name -> description); others flite lists are left out.
KNOWN_VOICES: dict[str, str] = {
    "kal": "American English, male (Kal, diphone, 8 kHz)",
    "kal16": "American English, male (Kal, diphone)",
    "awb": "Scottish English, male (AWB)",
    "rms": "American English, male (RMS)",
    "slt": "American English, female (SLT)",
}
EXCLUDED = frozenset({"awb_time"})  # limited domain: it only says the time

# Flite speaks 2.41 words/s of ATC phraseology at duration_stretch 1 and words/s ~ 2.41 *
# stretch ** -1.0 (measured over whole clips by bench/speaking_rate.py; log sd 0.11 from the words).
STRETCH = RateCurve(wps_at_unit=2.41, exponent=-1.0, spread=0.9, bounds=(0.45, 1.5))
F0_SHIFT = (0.85, 1.2)


def _exe() -> str:
    exe = shutil.which("flite")
    if exe is None:
        raise TTSError(f"flite not found; install it with '{INSTALL}' (Debian/Ubuntu).")
    return exe


@functools.cache
def _listed() -> tuple[str, ...]:
    proc = subprocess.run([_exe(), "-lv"], capture_output=True, check=False, timeout=60)
    if proc.returncode != 0:
        raise TTSError(f"flite -lv failed ({proc.stderr.decode('utf-8', 'replace').strip()}); reinstall it with '{INSTALL}'.")
    text = proc.stdout.decode("utf-8", "replace")
    return tuple(text.partition(":")[2].split())


class FliteEngine(TTSEngine):
    """Flite through its command-line program.

    Parameters of :meth:`synthesize`: ``duration_stretch`` (> 1 slower) and ``f0_shift``
    (pitch factor, 1 = the voice's own).
    """

    name = "flite"

    def __init__(self) -> None:
        listed = [v for v in _listed() if v not in EXCLUDED]
        self._voices = [Voice(f"flite:{v}", "flite", v, KNOWN_VOICES.get(v, "flite voice")) for v in listed
                        if v in KNOWN_VOICES]
        if not self._voices:
            raise TTSError(f"flite lists no English voice ({', '.join(listed) or 'none'}); reinstall it with '{INSTALL}'.")

    def voices(self) -> list[Voice]:
        return list(self._voices)

    def random_params(self, voice: str, rng: np.random.Generator) -> dict[str, Any]:
        self.voice(voice)
        stretch = STRETCH.draw(rng)
        return {"duration_stretch": round(stretch, 3), "f0_shift": round(float(rng.uniform(*F0_SHIFT)), 3)}

    def synthesize(self, text: str, voice: str, *, duration_stretch: float = 1.0, f0_shift: float = 1.0,
                   **unknown: Any) -> np.ndarray:
        if unknown:
            raise TTSError(f"unknown Flite parameter(s) {', '.join(sorted(unknown))}; valid: duration_stretch, f0_shift.")
        self.voice(voice)
        if not (0.2 <= float(duration_stretch) <= 4.0 and 0.5 <= float(f0_shift) <= 2.0):
            raise TTSError(f"Flite parameters out of range: duration_stretch {duration_stretch} (0.2-4), f0_shift {f0_shift} (0.5-2).")
        with tempfile.TemporaryDirectory(prefix="atc-flite-") as tmp:
            text_file, wav = Path(tmp) / "text.txt", Path(tmp) / "out.wav"
            # The text goes in a file, so nothing in it is ever read as an option.
            text_file.write_text(text, encoding="utf-8")
            args = [_exe(), "-voice", voice, "--setf", f"duration_stretch={float(duration_stretch):.4f}",
                    "--setf", f"f0_shift={float(f0_shift):.4f}", "-f", str(text_file), "-o", str(wav)]
            proc = subprocess.run(args, capture_output=True, check=False, timeout=120)
            if proc.returncode != 0 or not wav.is_file():
                raise TTSError(f"flite failed for voice {voice}: {proc.stderr.decode('utf-8', 'replace').strip() or 'no audio'}; "
                               "check it with 'flite -lv'.")
            audio = load_audio(wav)  # the one file decoder: mono, 16 kHz
        return to_peak(audio)
