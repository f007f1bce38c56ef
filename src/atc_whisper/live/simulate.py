"""Synthetic radio sessions: TTS transmissions separated by silence, over light static.

Live mode cannot be tested or benchmarked against a real frequency, so tests,
``bench/live_latency.py`` and curious users build a session whose transmissions are known:
each text is spoken by a real TTS voice, optionally passed through the radio channel
simulation, placed after a gap of silence, and the whole session gets a constant noise
floor (receiver hiss). :class:`SyntheticSession` keeps where every transmission was planted.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

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
    voice: str = "espeak:en-us",
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
        voice: TTS voice id (see ``atc_whisper.audio.tts.list_voices``).
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
        speech = np.asarray(synthesize(text, voice), dtype=np.float32)
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
