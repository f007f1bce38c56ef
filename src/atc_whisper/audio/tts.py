"""Text-to-speech behind one small interface, so synthetic ATC data can draw on many voices.

Training data for an ATC recogniser must not sound like one speaker: controllers and pilots
differ in accent, pitch and pace. Each engine (eSpeak NG, Piper, Kokoro, Flite, Festival, or
one you register) offers voices named ``"engine:name"`` (``"espeak:en-gb-scotland+f2"``,
``"piper:joe"``, ``"kokoro:bf_emma"``, ``"flite:awb"``, ``"festival:kal_diphone"``) and a way
to draw random prosody (rate, pitch, ...) for a voice; the drawn parameters are recorded with
each sample so any clip can be re-made exactly (Piper samples its own noise, so its clips
repeat only in words, voice and pace).

Speaking rate: every engine draws its rate parameter so that the words per second of its
clips follow real ATC radio (:data:`RADIO_WORDS_PER_S`, :func:`draw_words_per_s`), each with
its own measured calibration (``bench/speaking_rate.py``).

Everything returned is 16 kHz mono float32, whatever the engine's native rate.

Example::

    from atc_whisper.audio.tts import synthesize
    audio = synthesize("speedbird one two three climb flight level three five zero", "espeak:en-us+m3")
"""

from __future__ import annotations

import abc
import math
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import TTSError
from .io import SAMPLE_RATE

DEFAULT_VOICE = "espeak:en-us"
#: Synthesised audio never peaks above this, so 16-bit writing cannot clip it.
MAX_PEAK = 0.99
#: The peak level the flite, Festival and Kokoro voices are brought to: their own levels differ
#: by about 10 dB from voice to voice.
ENGINE_PEAK = 0.9


def to_peak(audio: np.ndarray, peak: float = ENGINE_PEAK) -> np.ndarray:
    """``audio`` scaled so that its loudest sample is ``peak`` (digital silence as it is)."""
    loudest = float(np.max(np.abs(audio))) if audio.size else 0.0
    return audio * np.float32(peak / loudest) if loudest > 0 else audio

#: Speaking rate of real ATC radio, words per second (reference words over the segment's
#: duration): p10, median and p90 of 400 English segments of European tower/approach/radar
#: receiver recordings (issue 11's real-radio table; a Tokyo approach frequency measured
#: 2.6 / 3.3 / 4.2). The synthetic voices spoke 1.9 / 2.4 / 2.9 before they were calibrated.
RADIO_WORDS_PER_S = (2.2, 3.2, 4.2)
#: Drawn rates stay within this range: the real p90 is 4.2 and hardly anyone passes ~4.5.
WORDS_PER_S_RANGE = (1.6, 4.6)
_Z90 = 1.2816  # the standard normal's 90th percentile


def draw_words_per_s(rng: np.random.Generator, spread: float = 1.0) -> float:
    """A speaking rate for one transmission, drawn like real radio's (:data:`RADIO_WORDS_PER_S`).

    A split log-normal: its median is the real median and each side's width puts the real p10
    and p90 where they are (real radio is skewed: slow speakers are slower than fast ones are
    fast). Engines turn the rate into their own parameter (eSpeak words per minute, Piper
    length scale, Kokoro speed, Flite/Festival duration stretch).

    Args:
        rng: The sample's random generator.
        spread: Factor on the log-width (< 1 narrows it). The words themselves add spread to
            the rate of a clip (a string of digits is spoken faster than a long callsign), so
            an engine passes the share that leaves its clips with real radio's spread.
    """
    p10, p50, p90 = RADIO_WORDS_PER_S
    z = float(np.clip(rng.standard_normal(), -2.5, 2.5))
    width = math.log(p50 / p10 if z < 0 else p90 / p50) / _Z90
    return float(np.clip(p50 * math.exp(z * width * spread), *WORDS_PER_S_RANGE))



@dataclass(frozen=True)
class RateCurve:
    """How an engine's rate control sets its speaking rate, measured by ``bench/speaking_rate.py``.

    words/s = ``wps_at_unit`` * (control / ``unit``) ** ``exponent``; the exponent is negative for
    controls that slow the speech as they grow (duration stretch, length scale).

    Attributes:
        wps_at_unit: Words per second of ATC phraseology at the control's value ``unit``.
        exponent: Power of the control in the words/s law.
        spread: Share of real radio's log-width drawn (:func:`draw_words_per_s`): the words and
            the voices add their own spread.
        bounds: Control values the engine is kept within (it slurs or drags beyond them).
        unit: The control's reference value (1 for factors, 175 for eSpeak's words per minute).
    """

    wps_at_unit: float
    exponent: float
    spread: float
    bounds: tuple[float, float]
    unit: float = 1.0

    def draw(self, rng: np.random.Generator) -> float:
        """The control value for one transmission whose rate is drawn like real radio's."""
        wps = draw_words_per_s(rng, self.spread)
        return float(np.clip(self.unit * (wps / self.wps_at_unit) ** (1.0 / self.exponent), *self.bounds))

@dataclass(frozen=True)
class Voice:
    """One voice of one engine.

    Attributes:
        id: ``"engine:name"``, what :func:`synthesize` and the catalogue use.
        engine: Engine name (``"espeak"``, ``"piper"``, ``"kokoro"``, ``"flite"``, ``"festival"``).
        name: The voice's name within its engine (``"en-us+m3"``, ``"joe"``).
        description: Human-readable accent / gender note.
    """

    id: str
    engine: str
    name: str
    description: str = ""


class TTSEngine(abc.ABC):
    """A text-to-speech engine: lists voices, synthesises text, draws random prosody."""

    #: Registry name, also the prefix of voice ids.
    name: str = ""

    @abc.abstractmethod
    def voices(self) -> list[Voice]:
        """Every voice this engine offers, in a stable order."""

    @abc.abstractmethod
    def synthesize(self, text: str, voice: str, **params: Any) -> np.ndarray:
        """Speak ``text`` with the voice named ``voice`` (without the engine prefix).

        Returns:
            16 kHz mono float32 samples.
        """

    @abc.abstractmethod
    def random_params(self, voice: str, rng: np.random.Generator) -> dict[str, Any]:
        """Prosody parameters for :meth:`synthesize`, drawn at random (JSON-serialisable)."""

    def voice(self, name: str) -> Voice:
        """The :class:`Voice` called ``name``, or a TTSError listing some valid ones."""
        for v in self.voices():
            if v.name == name:
                return v
        known = [v.name for v in self.voices()]
        shown = ", ".join(known[:12]) + (f" ... ({len(known)} in all)" if len(known) > 12 else "")
        raise TTSError(
            f"voice '{name}' is not a voice of the {self.name} engine; valid voices: {shown}. "
            f"List them all with atc_whisper.audio.tts.list_voices(['{self.name}'])."
        )


_FACTORIES: dict[str, Callable[[], TTSEngine]] = {}
_INSTANCES: dict[str, TTSEngine] = {}
_LOCK = threading.Lock()


def register_engine(name: str, factory: Callable[[], TTSEngine]) -> None:
    """Make an engine available under ``name``.

    Args:
        name: Engine name, used as the voice-id prefix (``"name:voice"``).
        factory: Called once, on first use; raises :class:`TTSError` saying what to install
            when the engine's software is missing.
    """
    with _LOCK:
        _FACTORIES[name] = factory
        _INSTANCES.pop(name, None)


def engine_names() -> list[str]:
    """Names of every registered engine (installed or not)."""
    return list(_FACTORIES)


def get_engine(name: str) -> TTSEngine:
    """The engine registered as ``name``, created once and cached.

    Raises:
        TTSError: Unknown engine (the message lists the registered ones) or the engine's
            software is not installed (the message says what to install).
    """
    with _LOCK:
        if name in _INSTANCES:
            return _INSTANCES[name]
        factory = _FACTORIES.get(name)
        if factory is None:
            raise TTSError(f"unknown TTS engine '{name}'; registered engines: {', '.join(_FACTORIES)}.")
        engine = factory()
        _INSTANCES[name] = engine
        return engine


def split_voice_id(voice_id: str) -> tuple[str, str]:
    """``"espeak:en-us+m3"`` -> ``("espeak", "en-us+m3")``; a bare name means eSpeak NG."""
    engine, sep, name = voice_id.partition(":")
    if not sep:
        return "espeak", voice_id
    if not name:
        raise TTSError(f"voice id '{voice_id}' has no voice name; write it as engine:voice, e.g. {DEFAULT_VOICE}.")
    return engine, name


def voice_parents(voice_id: str) -> list[str]:
    """The plain voices a voice id is made of: each voice of a Kokoro blend, else the voice itself.

    ``"kokoro:af_bella@0.7+bm_george@0.3"`` -> ``["kokoro:af_bella", "kokoro:bm_george"]``. Pure
    syntax: no engine is loaded (the leakage check uses it on catalogued ids).
    """
    engine, name = split_voice_id(voice_id)
    if engine != "kokoro" or ("+" not in name and "@" not in name):
        return [voice_id]
    return [f"{engine}:{part.partition('@')[0]}" for part in name.split("+")]


def list_voices(engines: list[str] | tuple[str, ...] | None = None) -> list[Voice]:
    """Every voice of the given engines (default: all registered), engine by engine.

    Raises:
        TTSError: An engine is unknown or not installed.
    """
    voices: list[Voice] = []
    for name in engines if engines is not None else engine_names():
        voices.extend(get_engine(name).voices())
    return voices


def random_voice_params(voice: str | Voice, rng: np.random.Generator) -> dict[str, Any]:
    """Random prosody for ``voice`` (an id or a :class:`Voice`), to pass to :func:`synthesize`.

    The dict is JSON-serialisable; store it with the sample to reproduce the clip.
    """
    voice_id = voice.id if isinstance(voice, Voice) else voice
    engine, name = split_voice_id(voice_id)
    return get_engine(engine).random_params(name, rng)


def synthesize(text: str, voice: str = DEFAULT_VOICE, **params: Any) -> np.ndarray:
    """Speak ``text`` and return 16 kHz mono float32 audio.

    Args:
        text: What to say (plain text; numbers as the speaker should say them).
        voice: Voice id ``"engine:name"``, e.g. ``"espeak:en-gb+f2"``, ``"piper:joe"`` or the
            Kokoro blend ``"kokoro:af_bella@0.7+bm_george@0.3"``.
        **params: Engine prosody parameters, e.g. from :func:`random_voice_params`.

    Raises:
        TTSError: Empty text, unknown engine or voice, engine not installed, or the engine
            failed or produced silence.
    """
    if not text or not text.strip():
        raise TTSError(f"nothing to synthesise: the text is empty (voice {voice}).")
    engine_name, name = split_voice_id(voice)
    engine = get_engine(engine_name)
    audio = np.asarray(engine.synthesize(text, name, **params), dtype=np.float32)
    if audio.size == 0 or not np.any(audio):
        raise TTSError(f"voice {voice} produced no audio for {text[:60]!r}; try another voice.")
    peak = float(np.max(np.abs(audio)))
    if peak > MAX_PEAK:
        # Resampling a full-scale clip overshoots a little (Gibbs ripple); scale, never clip.
        audio = audio * np.float32(MAX_PEAK / peak)
    return audio


def _espeak_factory() -> TTSEngine:
    from .tts_espeak import EspeakEngine

    return EspeakEngine()


def _piper_factory() -> TTSEngine:
    from .tts_piper import PiperEngine

    return PiperEngine()


def _kokoro_factory() -> TTSEngine:
    from .tts_kokoro import KokoroEngine

    return KokoroEngine()


def _flite_factory() -> TTSEngine:
    from .tts_flite import FliteEngine

    return FliteEngine()


def _festival_factory() -> TTSEngine:
    from .tts_festival import FestivalEngine

    return FestivalEngine()


register_engine("espeak", _espeak_factory)
register_engine("piper", _piper_factory)
register_engine("kokoro", _kokoro_factory)
register_engine("flite", _flite_factory)
register_engine("festival", _festival_factory)

__all__ = [
    "DEFAULT_VOICE",
    "RADIO_WORDS_PER_S",
    "SAMPLE_RATE",
    "TTSEngine",
    "Voice",
    "draw_words_per_s",
    "engine_names",
    "get_engine",
    "list_voices",
    "random_voice_params",
    "register_engine",
    "split_voice_id",
    "synthesize",
    "voice_parents",
]
