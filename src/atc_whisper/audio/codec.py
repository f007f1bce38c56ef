"""Low-bitrate codec round trips: radio as heard through an internet stream.

Much of the ATC audio people listen to (and record) reaches them as a low-bitrate MP3 or Opus
stream from a receiver somewhere else; the codec smears transients, cuts the highs and adds
its own artefacts (pre-echo, "swirl"). :func:`codec_roundtrip` encodes a clip and decodes it
again in memory with PyAV (FFmpeg's libmp3lame and libopus), and returns audio of the same
length, aligned sample for sample with the input (the codec's delay is measured and removed),
so a radio channel can apply it as one more stage. Codecs are deterministic: the same input
and settings give the same output.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import AudioError
from .io import SAMPLE_RATE

#: Codecs :func:`codec_roundtrip` knows: name -> (FFmpeg encoder, sample format it takes, FFmpeg decoder).
CODECS: dict[str, tuple[str, str, str]] = {"mp3": ("libmp3lame", "fltp", "mp3"), "opus": ("libopus", "flt", "opus")}
#: Longest codec delay searched for when aligning the output, samples (MP3's is ~1105 at 16 kHz).
MAX_DELAY = 4096


def _encode_decode(audio: np.ndarray, encoder: str, sample_format: str, decoder: str, bitrate_kbps: float,
                   sample_rate: int) -> np.ndarray:
    import av

    enc: Any = av.CodecContext.create(encoder, "w")
    enc.sample_rate = sample_rate
    enc.layout = "mono"
    enc.format = sample_format
    enc.bit_rate = int(bitrate_kbps * 1000)
    enc.open()
    frame_size = enc.frame_size or 1024
    padded = np.concatenate([audio, np.zeros(MAX_DELAY + frame_size, dtype=np.float32)])
    packets = []
    for start in range(0, padded.size - frame_size + 1, frame_size):
        frame = av.AudioFrame.from_ndarray(padded[None, start:start + frame_size], format=sample_format, layout="mono")
        frame.sample_rate = sample_rate
        frame.pts = start
        packets += enc.encode(frame)
    packets += enc.encode(None)
    dec: Any = av.CodecContext.create(decoder, "r")
    dec.sample_rate = sample_rate
    dec.layout = "mono"
    dec.open()
    pieces = []
    for packet in [*packets, None]:
        for frame in dec.decode(packet):
            samples = frame.to_ndarray().reshape(-1)
            if np.issubdtype(samples.dtype, np.integer):  # s16/s32 decoders: scale to ±1
                samples = samples / float(np.iinfo(samples.dtype).max + 1)
            pieces.append((samples, frame.sample_rate))
    if not pieces:
        raise AudioError(f"the {encoder} codec returned no audio; check the PyAV/FFmpeg installation.")
    rate = pieces[0][1]
    out = np.concatenate([p for p, _ in pieces]).astype(np.float32)
    if rate != sample_rate:
        from .io import resample

        out = resample(out, rate, sample_rate)
    return out


def _delay(reference: np.ndarray, decoded: np.ndarray) -> int:
    """Lag (0..MAX_DELAY) at which ``decoded`` best matches ``reference`` (FFT cross-correlation)."""
    n = min(reference.size, 4 * SAMPLE_RATE)
    ref = reference[:n].astype(np.float64)
    dec = decoded[: n + MAX_DELAY].astype(np.float64)
    size = 1 << int(np.ceil(np.log2(ref.size + dec.size)))
    corr = np.fft.irfft(np.fft.rfft(dec, size) * np.conj(np.fft.rfft(ref, size)), size)[: MAX_DELAY + 1]
    return int(np.argmax(corr))


def codec_roundtrip(audio: np.ndarray, codec: str, bitrate_kbps: float, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Encode ``audio`` with a lossy codec and decode it again, aligned and of the same length.

    Args:
        audio: Mono float samples (±1 full scale).
        codec: "mp3" or "opus" (see :data:`CODECS`).
        bitrate_kbps: Target bitrate, kbit/s (streams of ATC radio use 16-32 kbit/s MP3).
        sample_rate: Rate of ``audio``, Hz (MP3 and Opus both accept 16 kHz).

    Returns:
        float32 audio, ``audio.size`` samples.

    Raises:
        AudioError: unknown codec, or PyAV missing.
    """
    if codec not in CODECS:
        raise AudioError(f"unknown codec {codec!r}; valid codecs: {', '.join(CODECS)}.")
    try:
        import av  # noqa: F401
    except ImportError:
        raise AudioError("codec passes need PyAV: pip install av.") from None
    x = np.asarray(audio, dtype=np.float32).reshape(-1)
    if x.size == 0:
        return x.copy()
    encoder, sample_format, decoder = CODECS[codec]
    decoded = _encode_decode(x, encoder, sample_format, decoder, bitrate_kbps, sample_rate)
    lag = _delay(x, decoded)
    out = decoded[lag:lag + x.size]
    if out.size < x.size:
        out = np.concatenate([out, np.zeros(x.size - out.size, dtype=np.float32)])
    return out.astype(np.float32)
