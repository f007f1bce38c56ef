"""Synthetic radio sessions: TTS transmissions separated by silence, over light static.

Live mode and archive transcription cannot be tested or benchmarked against a real frequency
whose truth is known, so tests, ``bench/live_latency.py``, ``bench/archive_speed.py`` and
curious users build a session whose transmissions are known: each text is spoken by a real TTS
voice (one per speaker), optionally passed through the radio channel simulation, placed after
a gap of silence, and the whole session gets a constant noise floor (receiver hiss).
:class:`SyntheticSession` keeps where every transmission was planted. :func:`exchange_session`
speaks generated controller-pilot exchanges (:mod:`atc_whisper.phraseology.exchanges`, some
readbacks wrong on purpose) in frequency order: a recording whose roles, exchanges and
readback errors are known too.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..audio.io import SAMPLE_RATE
from ..errors import ConfigError


@dataclass
class SyntheticSession:
    """A generated session.

    Attributes:
        audio: float32 mono 16 kHz samples of the whole session.
        texts: What each transmission says.
        spans_s: (start, end) of each transmission's speech in the session, seconds.
    """

    audio: np.ndarray = field(repr=False)
    texts: list[str]
    spans_s: list[tuple[float, float]]

    @property
    def duration_s(self) -> float:
        return len(self.audio) / SAMPLE_RATE

    def pcm16(self) -> bytes:
        """The session as raw s16le bytes (what an SDR pipe delivers)."""
        return (np.clip(self.audio, -1.0, 1.0) * 32767).astype("<i2").tobytes()

    def write_wav(self, path: str | Path) -> Path:
        """Save the session as a 16 kHz WAV."""
        from ..audio.io import write_wav

        return write_wav(path, self.audio)


def synthetic_session(
    texts: Sequence[str],
    *,
    gaps_s: float | Sequence[float] = 2.0,
    lead_s: float = 1.0,
    tail_s: float = 1.5,
    noise_dbfs: float = -45.0,
    peak: float = 0.5,
    voice: str | Sequence[str] = "espeak:en-us",
    radio: bool = False,
    seed: int = 0,
) -> SyntheticSession:
    """Speak ``texts`` one after the other with silence between, over constant static.

    Args:
        texts: One string per transmission.
        gaps_s: Silence after each transmission but the last (one value or one per gap), seconds.
        lead_s: Static before the first transmission, seconds.
        tail_s: Static after the last transmission, seconds.
        noise_dbfs: RMS level of the white static, dB full scale.
        peak: Peak amplitude each transmission is normalised to.
        voice: TTS voice id (see ``atc_whisper.audio.tts.list_voices``), or one per transmission.
        radio: Also pass each transmission through the VHF radio channel simulation.
        seed: Seed for the static and the channel.

    Returns:
        The session with the planted spans.
    """
    from ..audio.tts import synthesize

    rng = np.random.default_rng(seed)
    gaps = [float(gaps_s)] * max(len(texts) - 1, 0) if isinstance(gaps_s, (int, float)) else [float(g) for g in gaps_s]
    if len(gaps) != max(len(texts) - 1, 0):
        raise ConfigError(f"need {len(texts) - 1} gaps for {len(texts)} transmissions, got {len(gaps)}; give one gap "
                          "between each two transmissions, or a single number for all.")
    voices = [voice] * len(texts) if isinstance(voice, str) else list(voice)
    if len(voices) != len(texts):
        raise ConfigError(f"need one voice per transmission ({len(texts)}), got {len(voices)}; give a single voice "
                          "or a list as long as the texts.")
    channel = None
    if radio:
        from ..audio.channel import RadioChannel
        from ..config import ChannelSettings

        # A light channel (band, hum, squelch at a high SNR): the feed tests segmentation, not
        # robustness, so the receiver's distortions and interference stay off.
        channel = RadioChannel(ChannelSettings(snr_db_min=30.0, snr_db_max=40.0, bundled_noise_probability=0.0,
                                               receiver_clip_probability=0.0, heterodyne_probability=0.0,
                                               fade_probability=0.0, overlap_probability=0.0, codec_probability=0.0))
    parts = [np.zeros(int(lead_s * SAMPLE_RATE), dtype=np.float32)]
    spans = []
    position = len(parts[0])
    for i, text in enumerate(texts):
        speech = np.asarray(synthesize(text, voices[i]), dtype=np.float32)
        if channel is not None:
            speech, _ = channel.apply(speech, rng)
            speech = np.asarray(speech, dtype=np.float32)
        speech = speech / max(float(np.max(np.abs(speech))), 1e-6) * peak
        spans.append((position / SAMPLE_RATE, (position + len(speech)) / SAMPLE_RATE))
        parts.append(speech)
        position += len(speech)
        silence = np.zeros(int((gaps[i] if i < len(gaps) else tail_s) * SAMPLE_RATE), dtype=np.float32)
        parts.append(silence)
        position += len(silence)
    audio = np.concatenate(parts)
    noise_rms = 10 ** (noise_dbfs / 20)
    audio = (audio + rng.normal(0.0, noise_rms, len(audio))).astype(np.float32)
    return SyntheticSession(audio=audio, texts=list(texts), spans_s=spans)


#: Voices of :func:`exchange_session`: one controller, and pilots drawn per aircraft (eSpeak: fast).
CONTROLLER_VOICE = "espeak:en-gb"
PILOT_VOICES = ("espeak:en-us", "espeak:en-gb-scotland", "espeak:en-us+m3", "espeak:en-gb+f3")


@dataclass
class ExchangeSession:
    """A synthetic frequency recording of generated exchanges, with everything about it known.

    Attributes:
        session: The audio and where each transmission was planted.
        turns: The transmissions in speaking order (``turn.utterance``: text, reference, role,
            callsign; ``turn.exchange``: index into ``exchanges``).
        exchanges: The exchanges (``exchange.error``: the readback error planted, or None).
    """

    session: SyntheticSession
    turns: list[Any]
    exchanges: list[Any]

    @property
    def references(self) -> list[str]:
        """Reference transcript of each transmission, in order."""
        return [t.utterance.reference for t in self.turns]


def exchange_session(
    n_exchanges: int,
    *,
    seed: int = 0,
    error_rate: float = 0.3,
    gap_range_s: tuple[float, float] = (2.0, 6.0),
    interleave: float = 0.0,
    opening_rate: float = 0.0,
    noise_dbfs: float = -40.0,
    radio: bool = True,
    controller_voice: str = CONTROLLER_VOICE,
    pilot_voices: Sequence[str] = PILOT_VOICES,
    phases: Sequence[str] | None = None,
) -> ExchangeSession:
    """Speak ``n_exchanges`` generated exchanges on one frequency, with silence and static between.

    Args:
        n_exchanges: Exchanges to generate (:func:`~atc_whisper.phraseology.exchanges.generate_exchanges`).
        seed: Seed of the exchanges, their order, the gaps, the static and the channel.
        error_rate: Share of readbacks made wrong (a value changed or a required item left out).
        gap_range_s: Each gap between transmissions is drawn from this range, seconds.
        interleave: Chance that a readback comes after the next exchange's instruction.
        opening_rate: Share of exchanges that open with a pilot's call.
        noise_dbfs: Level of the receiver static under the whole recording, dB full scale.
        radio: Pass each transmission through the VHF radio channel simulation.
        controller_voice: The controller's TTS voice.
        pilot_voices: Pilots' voices, one drawn per exchange.
        phases: Flight phases the exchanges come from (default: all but emergency).

    Returns:
        The recording and its truth.
    """
    import random

    from ..phraseology.exchanges import frequency_order, generate_exchanges

    exchanges = generate_exchanges(n_exchanges, seed, error_rate=error_rate, opening_rate=opening_rate, phases=phases)
    turns = frequency_order(exchanges, seed, interleave=interleave)
    rng = random.Random(f"session:{seed}")
    pilot_of = [rng.choice(list(pilot_voices)) for _ in exchanges]
    voices = [controller_voice if t.utterance.role == "controller" else pilot_of[t.exchange] for t in turns]
    gaps = [rng.uniform(*gap_range_s) for _ in turns[1:]]
    session = synthetic_session([t.utterance.text for t in turns], gaps_s=gaps, noise_dbfs=noise_dbfs, voice=voices,
                                radio=radio, seed=seed)
    return ExchangeSession(session, list(turns), list(exchanges))
