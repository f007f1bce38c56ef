"""Festival voices: the Edinburgh synthesiser's diphone and HMM (HTS) speakers.

Festival (``apt-get install festival`` and voice packages) speaks with the voices of
recorded speakers concatenated as diphones or modelled by an HMM - yet another sound the
recogniser should hear. Debian 12 packages these English voices: ``festvox-kallpc16k``
(``kal_diphone``, US male), ``festvox-kdlpc16k`` (``ked_diphone``, US male) and
``festvox-us-slt-hts`` (``cmu_us_slt_arctic_hts``, US female, HTS); the 8 kHz copies of the
first two add nothing. Every call starts ``text2wave`` (about 0.6 s, most of it loading the
voice); the output is deterministic.

Prosody: ``duration_stretch`` (> 1 is slower: Festival's ``Duration_Stretch`` for diphone
voices, the HTS engine's speed ``-r`` = 1 / stretch for HTS voices), drawn so the words per
second match real radio, and for diphone voices ``f0_mean_hz`` (the intonation model's mean
pitch; the voices' own is 105 Hz). The text reaches Festival as text on stdin, never as
Scheme, so no sentence can run code.
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

INSTALL = "apt-get install festival festvox-kallpc16k festvox-kdlpc16k festvox-us-slt-hts"
#: English voices (name -> description). Festival lists other languages' voices too.
KNOWN_VOICES: dict[str, str] = {
    "kal_diphone": "American English, male (Kal, diphone)",
    "ked_diphone": "American English, male (Ked, diphone)",
    "rab_diphone": "British English, male (Rab, diphone)",
    "cmu_us_slt_arctic_hts": "American English, female (SLT, HMM)",
    "cmu_us_awb_arctic_hts": "Scottish English, male (AWB, HMM)",
    "cmu_us_bdl_arctic_hts": "American English, male (BDL, HMM)",
    "cmu_us_jmk_arctic_hts": "Canadian English, male (JMK, HMM)",
    "cmu_us_rms_arctic_hts": "American English, male (RMS, HMM)",
    "cmu_us_clb_arctic_hts": "American English, female (CLB, HMM)",
}

# Festival speaks 2.37 words/s of ATC phraseology at stretch 1 and words/s ~ 2.37 *
# stretch ** -0.99 (measured over whole clips by bench/speaking_rate.py; log sd 0.11 from the words).
STRETCH = RateCurve(wps_at_unit=2.37, exponent=-0.99, spread=0.9, bounds=(0.45, 1.5))
F0_MEAN_HZ = (90.0, 135.0)  # diphone voices only; their own mean is 105 Hz


def _exe(program: str = "text2wave") -> str:
    exe = shutil.which(program)
    if exe is None:
        raise TTSError(f"{program} (Festival) not found; install it with '{INSTALL}' (Debian/Ubuntu).")
    return exe


@functools.cache
def _listed() -> tuple[str, ...]:
    proc = subprocess.run([_exe("festival"), "--batch", "(print (voice.list))"], capture_output=True, check=False,
                          timeout=120)
    if proc.returncode != 0:
        raise TTSError(f"festival cannot list its voices ({proc.stderr.decode('utf-8', 'replace').strip()}); "
                       f"reinstall it with '{INSTALL}'.")
    return tuple(proc.stdout.decode("utf-8", "replace").replace("(", " ").replace(")", " ").split())


def _is_hts(voice: str) -> bool:
    return voice.endswith("_hts")


class FestivalEngine(TTSEngine):
    """Festival through ``text2wave``.

    Parameters of :meth:`synthesize`: ``duration_stretch`` (> 1 slower) and, for diphone
    voices, ``f0_mean_hz``.
    """

    name = "festival"

    def __init__(self) -> None:
        _exe()
        listed = _listed()
        self._voices = [Voice(f"festival:{v}", "festival", v, KNOWN_VOICES[v]) for v in listed if v in KNOWN_VOICES]
        if not self._voices:
            raise TTSError(f"Festival has no English voice installed (it lists {', '.join(listed) or 'none'}); "
                           f"install them with '{INSTALL}'.")

    def voices(self) -> list[Voice]:
        return list(self._voices)

    def random_params(self, voice: str, rng: np.random.Generator) -> dict[str, Any]:
        self.voice(voice)
        stretch = STRETCH.draw(rng)
        params: dict[str, Any] = {"duration_stretch": round(stretch, 3)}
        if not _is_hts(voice):
            params["f0_mean_hz"] = round(float(rng.uniform(*F0_MEAN_HZ)), 1)
        return params

    def synthesize(self, text: str, voice: str, *, duration_stretch: float = 1.0, f0_mean_hz: float | None = None,
                   **unknown: Any) -> np.ndarray:
        if unknown:
            raise TTSError(f"unknown Festival parameter(s) {', '.join(sorted(unknown))}; valid: duration_stretch, f0_mean_hz.")
        self.voice(voice)
        stretch = float(duration_stretch)
        if not 0.2 <= stretch <= 4.0:
            raise TTSError(f"Festival duration_stretch {duration_stretch} is outside 0.2-4.")
        evals = [f"(voice_{voice})"]
        if _is_hts(voice):
            if f0_mean_hz is not None:
                raise TTSError(f"Festival voice {voice} is an HMM voice; f0_mean_hz applies to diphone voices only.")
            evals.append(f'(set! hts_engine_params (append hts_engine_params (list (list "-r" {1.0 / stretch:.4f}))))')
        else:
            evals.append(f"(Parameter.set 'Duration_Stretch {stretch:.4f})")
            if f0_mean_hz is not None:
                if not 50.0 <= float(f0_mean_hz) <= 300.0:
                    raise TTSError(f"Festival f0_mean_hz {f0_mean_hz} is outside 50-300 Hz.")
                evals.append(f"(set! int_lr_params (list (list 'target_f0_mean {float(f0_mean_hz):.1f}) "
                             "(list 'target_f0_std 14) (list 'model_f0_mean 170) (list 'model_f0_std 34)))")
        with tempfile.TemporaryDirectory(prefix="atc-festival-") as tmp:
            wav = Path(tmp) / "out.wav"
            args = [_exe()]
            for expression in evals:
                args += ["-eval", expression]
            args += ["-o", str(wav)]
            proc = subprocess.run(args, input=text.encode("utf-8"), capture_output=True, check=False, timeout=300)
            if proc.returncode != 0 or not wav.is_file() or wav.stat().st_size <= 44:
                raise TTSError(f"text2wave failed for voice {voice}: "
                               f"{proc.stderr.decode('utf-8', 'replace').strip() or 'no audio'}; check the Festival voice packages.")
            audio = load_audio(wav)  # the one file decoder: mono, 16 kHz
        return to_peak(audio)
