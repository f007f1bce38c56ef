"""A simulated VHF AM radio link, to turn clean synthetic speech into something that sounds like ATC.

Whisper trained on clean speech stumbles on radio audio; fine-tuning on clean TTS would
only teach it the phraseology. This module degrades clean clips the way an ATC frequency
does, with every parameter drawn at random within :class:`~atc_whisper.config.ChannelSettings`
and returned, so each augmented sample's recipe is stored and reproducible.

The chain, in order (transmitter -> channel -> receiver):

1. **Speed perturbation** - resampling changes tempo and pitch together, like Kaldi's speed
   perturbation (factor ``speed`` in ``[speed_min, speed_max]``; duration becomes 1/speed).
2. **AGC / compression** of the microphone audio (threshold and ratio drawn).
3. **Clipping** of the transmitter (hard clip at a drawn fraction of the peak).
4. **Band-pass** - a Butterworth band whose edges vary (low 150-500 Hz, high 2600-3800 Hz by
   default) and whose order varies, so the model does not learn one exact filter.
5. **Carrier fade** (``fade_probability``): the received carrier swells and fades slowly
   (0.3-3 Hz, 3-12 dB deep); the receiver's AGC raises the noise as the carrier fades.
6. **Noise** at a signal-to-noise ratio drawn from ``[snr_db_min, snr_db_max]``: a noise
   recording from ``noise_dir`` (looped/cropped at a random offset) when there is one; else,
   with ``bundled_noise_probability``, a real receiver recording from the noise library that
   ships with the package (``atc_whisper/audio/noise/``: the background between transmissions
   of public-domain FAA facility recordings, see its PROVENANCE.md); else white or pink hiss.
   Optionally static crackle; mains hum (50/60 Hz with harmonics) and low-frequency rumble -
   receiver recordings keep a lot of energy below 300 Hz (about 25 % in real captures against
   2 % in clean band-passed speech), which only hum and rumble reproduce; a **heterodyne
   whistle** (``heterodyne_probability``: the beat of two carriers a few hundred Hz to 3 kHz
   apart, drifting slowly); and a **second station** (``overlap_probability``): another,
   quieter transmission mixed in, as when two aircraft transmit at once - the reference stays
   the main transmission. All of it counts as noise: the recorded ``snr_db`` is measured on the
   mixed signals (speech energy over the speech span / noise energy over the same span).
7. **Blocked transmission** (an utterance the generator marks ``blocked``, cut short by
   another station): the speech stops abruptly and a burst of heterodyne squeal and garble
   follows, where the other station keyed over it.
8. **Squelch** - a click as the squelch opens, noise before the speech (the key-up delay) and
   a louder noise tail when the carrier drops; the voice's own leading and trailing silence is
   first cut to :data:`SQUELCH_SPEECH_MARGIN_S`, so the padding is not counted twice.
9. **Gain** - a random level (-3 to +9 dB), then peak-limited so nothing overflows on writing.
10. **Receiver clipping** (``receiver_clip_probability``): the receiver or recorder clips the
    loudest 0.01-0.2 % of the samples (flat tops; sometimes only the negative half-waves, as
    an over-modulated AM carrier does). Clipping before the band filter (step 3) does not
    survive as flat tops; real receiver recordings show them (the real-radio table: 0.21
    near-peak samples per 1000 in European receiver recordings).
11. **Codec** (``codec_probability``): a low-bitrate MP3 (16-32 kbit/s) or Opus (8-16 kbit/s)
    round trip, as audio streamed from a receiver over the internet reaches most listeners.

Everything is vectorised numpy/scipy: a 5 s clip takes about 30 ms on average with every
effect at its default chance (15 ms before the receiver effects; a codec pass alone is about
0.05 s).
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import soxr
from scipy import signal
from scipy.fft import next_fast_len

from ..config import ChannelSettings
from ..errors import AudioError
from .io import SAMPLE_RATE, load_audio, to_mono

#: Audio file types picked up from the noise folder.
NOISE_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3", ".m4a")
#: Output peak never exceeds this (headroom below full scale for the PCM16 writer).
MAX_PEAK = 0.98
#: Random output level, dB (applied before the peak limit). Receiver recordings are loud (the
#: real-radio table: median RMS -14.6 dBFS); with -12..+3 dB the synthetic median was -25 dBFS,
#: with -3..+9 dB it is -19 dBFS (most clips then reach the peak limit, as recordings do).
GAIN_DB = (-3.0, 9.0)
#: Bandpass design order N (the band filter has order 2N): gentle to steep receivers.
FILTER_ORDERS = (2, 3, 4)
#: Share of the samples the receiver clips, drawn log-uniformly (0.01-0.2 %).
RECEIVER_CLIP_SHARE = (1e-4, 2e-3)
#: Codec passes: (codec, lowest and highest bitrate in kbit/s).
CODEC_BITRATES_KBPS = {"mp3": (16.0, 32.0), "opus": (8.0, 16.0)}
#: Share of the broadband noise power taken by a library recording (the rest is hiss).
LIBRARY_SHARE = (0.4, 0.9)
#: Level of a receiver's noise with no transmission (``RadioChannel.static``), RMS dBFS drawn
#: uniformly: from a quiet open squelch to the loud static that a voice detector mistakes for speech
#: (the transmissions themselves: median -14.6 dBFS in the real-radio table).
STATIC_RMS_DBFS = (-45.0, -15.0)
#: Folder of the bundled noise library (package data).
NOISE_LIBRARY = "noise"
_EPS = 1e-12

#: What the channel asks for when it mixes in a second station: given the channel's random
#: generator, returns another transmission's clean speech (16 kHz) and what to record about it.
Interferer = Callable[[np.random.Generator], tuple[np.ndarray, dict[str, Any]]]


def bundled_noise_files() -> list[Path]:
    """The noise recordings shipped with the package (real receiver background, public domain)."""
    folder = resources.files("atc_whisper.audio").joinpath(NOISE_LIBRARY)
    try:
        return sorted(Path(str(p)) for p in folder.iterdir() if p.name.endswith(".flac"))
    except (FileNotFoundError, NotADirectoryError):
        return []


@dataclass
class ChannelOutput:
    """The channel's result with its parts, for inspection and tests.

    Attributes:
        audio: The radio signal (speech + noise + squelch, gain applied, then receiver clipping
            and a codec pass when drawn), float32.
        speech: The speech component alone, aligned with ``audio`` and with the same gain.
        noise: Everything added to the speech (noise, hum, crackle, whistle, a second station,
            clicks), same gain. ``audio == speech + noise`` unless the receiver clipped or a
            codec pass ran (``params["receiver_clip"]``, ``params["codec"]``).
        params: Every drawn parameter and the measured SNR (JSON-serialisable).
    """

    audio: np.ndarray
    speech: np.ndarray
    noise: np.ndarray
    params: dict[str, Any]


#: Silence kept around the speech of a squelched transmission before its lead and tail are added, s.
SQUELCH_SPEECH_MARGIN_S = 0.03


def _power(x: np.ndarray) -> float:
    return float(np.mean(np.square(x, dtype=np.float64))) if x.size else 0.0


def _unit_power(x: np.ndarray, span: slice) -> np.ndarray:
    p = _power(x[span])
    return x / math.sqrt(p) if p > _EPS else x


def _pink(n: int, rng: np.random.Generator) -> np.ndarray:
    """Pink (1/f) noise by shaping white noise in the frequency domain."""
    size = next_fast_len(n, real=True)  # a prime length would make the FFT crawl
    spectrum = np.fft.rfft(rng.standard_normal(size))
    freqs = np.arange(spectrum.size, dtype=np.float64)
    freqs[0] = 1.0
    return np.fft.irfft(spectrum / np.sqrt(freqs), size)[:n]


def _crackle(n: int, rate_hz: float, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
    """Static crackle: Poisson-timed impulses of random size, each a few-ms decaying burst."""
    impulses = np.zeros(n)
    count = rng.poisson(rate_hz * n / sample_rate)
    if count:
        where = rng.integers(0, n, size=count)
        impulses[where] = rng.standard_normal(count) * rng.pareto(2.5, size=count)
    decay = math.exp(-1.0 / (0.002 * sample_rate))  # 2 ms time constant
    burst = signal.lfilter([1.0], [1.0, -decay], impulses)
    return burst * rng.standard_normal(n)  # noisy bursts, not clean exponentials


def _fade_envelope(n: int, rate_hz: float, depth_db: float, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
    """Slow carrier fading: a gain between 0 and ``-depth_db`` dB that wanders at about ``rate_hz``
    (smoothed random walk: low-passed noise mapped through a raised cosine)."""
    steps = max(4, int(n / sample_rate * rate_hz * 4) + 4)
    control = np.interp(np.linspace(0, steps - 1, n), np.arange(steps), rng.uniform(0.0, 1.0, steps))
    fade_db = -depth_db * (0.5 - 0.5 * np.cos(np.pi * control))
    return np.asarray(10 ** (fade_db / 20), dtype=np.float64)


def _whistle(n: int, freq_hz: float, drift_hz: float, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
    """A heterodyne: a sine whose frequency drifts by up to ``drift_hz`` over the clip."""
    t = np.arange(n) / sample_rate
    drift = drift_hz * np.sin(2 * np.pi * rng.uniform(0.05, 0.5) * t + rng.uniform(0, 2 * np.pi))
    phase = 2 * np.pi * np.cumsum(freq_hz + drift) / sample_rate
    return np.sin(phase + rng.uniform(0, 2 * np.pi))


def _speech_bounds(x: np.ndarray, sample_rate: int, below_peak_db: float = 40.0) -> tuple[int, int]:
    """Start of the first and end of the last 20 ms frame within ``below_peak_db`` of the loudest one."""
    frame = int(0.02 * sample_rate)
    n = x.size // frame
    if n == 0:
        return 0, x.size
    energy = np.mean(x[: n * frame].reshape(n, frame) ** 2, axis=1)
    loud = np.flatnonzero(energy >= energy.max() * 10 ** (-below_peak_db / 10))
    return int(loud[0]) * frame, min(x.size, (int(loud[-1]) + 1) * frame)


def _speech_end(x: np.ndarray, sample_rate: int, below_peak_db: float = 40.0) -> int:
    """Index just after the last 20 ms frame within ``below_peak_db`` of the loudest one."""
    return _speech_bounds(x, sample_rate, below_peak_db)[1]


def _hum(n: int, base_hz: float, harmonics: int, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
    """Mains hum: a fundamental and decaying harmonics with random phases (rectifier buzz)."""
    # The waveform repeats every sample_rate/gcd samples (320 at 50 Hz, 800 at 60 Hz for 16 kHz):
    # compute one period and tile it instead of n sines per harmonic.
    period = sample_rate // math.gcd(sample_rate, round(base_hz)) if float(base_hz).is_integer() else n
    t = np.arange(min(period, n)) / sample_rate
    cycle = np.zeros(t.size)
    for k in range(1, harmonics + 1):
        amplitude = rng.uniform(0.3, 1.0) / k
        cycle += amplitude * np.sin(2 * np.pi * base_hz * k * t + rng.uniform(0, 2 * np.pi))
    return np.resize(cycle, n)


class RadioChannel:
    """Randomised VHF radio channel.

    Args:
        settings: Ranges and probabilities of every effect (``[channel]`` in the config).
        noise_dir: Folder of noise recordings (e.g. ``data/noise_samples``); its audio
            files, looped and cropped at a random offset, replace the generated hiss.
        sample_rate: Rate of the audio passed to :meth:`apply`, Hz.

    Raises:
        AudioError: ``noise_dir`` is given but is not a folder.
    """

    def __init__(self, settings: ChannelSettings | None = None, noise_dir: str | os.PathLike[str] | None = None,
                 sample_rate: int = SAMPLE_RATE) -> None:
        self.settings = settings or ChannelSettings()
        self.sample_rate = int(sample_rate)
        self.noise_files: list[Path] = []
        if noise_dir is not None:
            folder = Path(noise_dir)
            if folder.exists() and not folder.is_dir():
                raise AudioError(f"noise folder {folder} is a file; pass the folder that holds the noise recordings.")
            if folder.is_dir():
                self.noise_files = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in NOISE_SUFFIXES)
        # The bundled library stands in for recordings of your own (which always win).
        self.library_files: list[Path] = [] if self.noise_files else bundled_noise_files()
        self._noise_cache: dict[Path, np.ndarray] = {}

    # -- public ----------------------------------------------------------------------------
    def apply(self, audio: np.ndarray, rng: np.random.Generator, *, blocked: bool = False,
              interferer: Interferer | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        """Send ``audio`` over a random radio channel.

        Args:
            audio: Clean speech at ``sample_rate`` (mono; a (samples, channels) array is mixed down).
            rng: Source of every random draw; the same seed gives the same output.
            blocked: The transmission was cut short by another station keying over it (the
                generator's ``Utterance.blocked``): end it with the blocking burst.
            interferer: Supplies another transmission's clean speech for the second-station
                effect (called only when that effect is drawn); without it the effect is off.

        Returns:
            ``(radio_audio, params)``: float32 audio (longer than the input when squelch
            padding is added, shorter/longer after speed perturbation) and the drawn
            parameters, including the measured ``snr_db``.
        """
        out = self.simulate(audio, rng, blocked=blocked, interferer=interferer)
        return out.audio, out.params

    def simulate(self, audio: np.ndarray, rng: np.random.Generator, *, blocked: bool = False,
                 interferer: Interferer | None = None) -> ChannelOutput:
        """Like :meth:`apply` but also return the speech and noise components."""
        s, sr = self.settings, self.sample_rate
        x = to_mono(np.asarray(audio)).astype(np.float64)
        if x.size == 0 or not np.any(x):
            raise AudioError("the radio channel got empty or silent audio; synthesise or load the speech first.")
        params: dict[str, Any] = {}
        # Effects added later draw from their own child generators (spawning does not advance
        # ``rng``), so each one's chance can change without reshuffling any other draw.
        fx = dict(zip(("fade", "library", "heterodyne", "overlap", "blocked", "receiver_clip", "codec"),
                      rng.spawn(7), strict=True))

        # 1. Speed perturbation: read the samples as if recorded at sr*speed, bring back to sr.
        speed = float(rng.uniform(s.speed_min, s.speed_max))
        from_rate = round(sr * speed)
        if from_rate != sr:
            x = soxr.resample(x, from_rate, sr, quality="MQ")
        params["speed"] = from_rate / sr

        # 2. AGC / compression of the microphone audio.
        params["agc"] = bool(rng.random() < s.agc_probability)
        if params["agc"]:
            threshold_db, ratio = float(rng.uniform(-30.0, -10.0)), float(rng.uniform(2.0, 8.0))
            x = self._compress(x, threshold_db, ratio)
            params.update(agc_threshold_db=round(threshold_db, 2), agc_ratio=round(ratio, 2))

        # 3. Transmitter clipping at a fraction of the peak.
        params["clipped"] = bool(rng.random() < s.clip_probability)
        peak = float(np.max(np.abs(x)))
        if params["clipped"] and peak > 0:
            level = float(rng.uniform(0.3, 0.8)) * peak
            params.update(clip_level=round(level / peak, 3), clip_fraction=round(float(np.mean(np.abs(x) > level)), 4))
            x = np.clip(x, -level, level)

        # 4. Band-pass of the transmitter/receiver audio chain. It comes after the clipper, as
        # in a real transmitter: clipping voiced speech regenerates energy at the fundamental
        # (intermodulation of its harmonics), which the band filter removes again.
        low = float(rng.uniform(s.low_cut_hz_min, s.low_cut_hz_max))
        high = min(float(rng.uniform(s.high_cut_hz_min, s.high_cut_hz_max)), 0.95 * sr / 2)
        order = int(rng.choice(FILTER_ORDERS))
        band = self._band(low, high, order)
        x = signal.sosfilt(band, x)
        params.update(band_low_hz=round(low, 1), band_high_hz=round(high, 1), filter_order=2 * order)

        # 8. (first part) Squelch padding, laid out before the noise so the noise covers it:
        # noise before the speech opens, a tail after the carrier drops.
        params["squelch"] = bool(rng.random() < s.squelch_probability)
        lead = int(rng.uniform(0.05, 0.3) * sr) if params["squelch"] else 0
        tail = int(rng.uniform(0.08, 0.4) * sr) if params["squelch"] else 0
        if params["squelch"]:
            # The lead is the talker's key-up delay and the tail follows the carrier's drop, so
            # the TTS engine's own leading and trailing silence (0.1-0.3 s, engine-specific)
            # would count them twice: it is cut down to a short margin first. Padding on top of
            # it made the radio variants 7 % slower in words/s than their clean clips.
            start, end = _speech_bounds(x, sr)
            margin = int(SQUELCH_SPEECH_MARGIN_S * sr)
            x = x[max(0, start - margin): min(x.size, end + margin)]
        # 7. (first part) A blocked transmission stops abruptly (the synthesised clip's closing
        # silence is dropped) and the blocking burst follows it.
        params["blocked"] = bool(blocked)
        block = 0
        if blocked:
            x = x[: _speech_end(x, sr)]
            block = int(fx["blocked"].uniform(0.3, 1.0) * sr)
        n = lead + x.size + block + tail
        span = slice(lead, lead + x.size)
        speech = np.zeros(n)
        speech[span] = x

        # 5. Carrier fade: the speech swells and fades; the AGC brings the noise up as it fades.
        params["fade"] = bool(fx["fade"].random() < s.fade_probability)
        agc_noise = None
        if params["fade"]:
            rate_hz, depth_db = float(fx["fade"].uniform(0.3, 3.0)), float(fx["fade"].uniform(3.0, 12.0))
            envelope = _fade_envelope(n, rate_hz, depth_db, sr, fx["fade"])
            speech *= envelope
            agc_noise = _unit_power(1.0 / np.sqrt(envelope), span)
            params.update(fade_rate_hz=round(rate_hz, 3), fade_depth_db=round(depth_db, 2))

        # 6. Noise at the drawn SNR, measured over the speech span.
        noise = self._noise(n, span, band, rng, params, fx["library"])
        noise = self._heterodyne(noise, span, fx["heterodyne"], params)
        noise = self._second_station(noise, span, band, fx["overlap"], interferer, params)
        if agc_noise is not None:
            noise *= agc_noise
        snr_target = float(rng.uniform(s.snr_db_min, s.snr_db_max))
        speech_energy = _power(speech[span])
        noise *= math.sqrt(speech_energy / (10 ** (snr_target / 10)) / max(_power(noise[span]), _EPS))
        params["snr_db_target"] = round(snr_target, 3)

        # 7. (second part) The blocking burst: squeal of two carriers and the other station's garble.
        if blocked:
            self._blocking(noise, speech_energy, lead + x.size, block, band, fx["blocked"], interferer, params)

        # 8. (second part) Squelch click at the opening and a louder noise burst as it closes.
        if params["squelch"]:
            self._squelch(noise, speech, lead, tail, rng, params)

        # 9. Random output level, then a peak limit so the PCM16 writer never clips.
        gain_db = float(rng.uniform(*GAIN_DB))
        gain = 10 ** (gain_db / 20)
        mixed = speech + noise
        peak = float(np.max(np.abs(mixed))) * gain
        if peak > MAX_PEAK:
            gain *= MAX_PEAK / peak
        speech, noise = speech * gain, noise * gain
        out = speech + noise
        # 10-11. The receiver's non-linear stages: clipping, then a codec pass.
        out = self._receiver_clip(out, fx["receiver_clip"], params)
        out = self._codec(out, fx["codec"], params)
        params.update(
            gain_db=round(20 * math.log10(gain), 3),
            snr_db=round(10 * math.log10(speech_energy / max(_power((noise / gain)[span]), _EPS)), 3),
            speech_start_s=round(lead / sr, 4),
            speech_end_s=round((lead + x.size) / sr, 4),
            duration_s=round(n / sr, 4),
        )
        return ChannelOutput(out.astype(np.float32), speech.astype(np.float32), noise.astype(np.float32), params)

    def static(self, seconds: float, rng: np.random.Generator) -> tuple[np.ndarray, dict[str, Any]]:
        """A receiver with no transmission on the frequency: its noise alone, for ``seconds``.

        What a voice detector lets through now and then (open squelch, hiss, hum, crackle, a
        whistle, the squelch's click and tail), with the band, noise, level, receiver clipping and
        codec drawn as for a transmission. A model trained only on speech says "roger" over it;
        ``prepare`` mixes such clips into training with the no-speech target (``data.static_fraction``).

        Returns:
            ``(audio, params)``: float32 audio of ``seconds`` and the drawn parameters.
        """
        s, sr = self.settings, self.sample_rate
        n = max(1, int(seconds * sr))
        params: dict[str, Any] = {"static": True}
        fx = dict(zip(("library", "heterodyne", "receiver_clip", "codec"), rng.spawn(4), strict=True))
        low = float(rng.uniform(s.low_cut_hz_min, s.low_cut_hz_max))
        high = min(float(rng.uniform(s.high_cut_hz_min, s.high_cut_hz_max)), 0.95 * sr / 2)
        order = int(rng.choice(FILTER_ORDERS))
        band = self._band(low, high, order)
        params.update(band_low_hz=round(low, 1), band_high_hz=round(high, 1), filter_order=2 * order)
        everything = slice(0, n)
        noise = self._noise(n, everything, band, rng, params, fx["library"])
        noise = self._heterodyne(noise, everything, fx["heterodyne"], params)
        params["squelch"] = bool(rng.random() < s.squelch_probability)
        if params["squelch"]:  # the click as it opens and the louder tail as it closes
            tail = min(n // 2, int(rng.uniform(0.08, 0.4) * sr))
            lead = min(n // 2, int(rng.uniform(0.05, 0.3) * sr))
            # The click is sized against the loudest speech a transmission would bring: twice the noise peak.
            self._squelch(noise, 2 * np.abs(noise).max(keepdims=True), lead, tail, rng, params)
        level_db = float(rng.uniform(*STATIC_RMS_DBFS))
        out = noise * (10 ** (level_db / 20) / math.sqrt(max(_power(noise), _EPS)))
        peak = float(np.max(np.abs(out)))
        if peak > MAX_PEAK:
            out *= MAX_PEAK / peak
        out = self._receiver_clip(out, fx["receiver_clip"], params)
        out = self._codec(out, fx["codec"], params)
        params.update(rms_dbfs=round(10 * math.log10(max(_power(out), _EPS)), 2), duration_s=round(n / sr, 4))
        return out.astype(np.float32), params

    # -- parts -----------------------------------------------------------------------------
    def _band(self, low_hz: float, high_hz: float, order: int) -> np.ndarray:
        if low_hz <= 0:
            return signal.butter(order, high_hz, btype="lowpass", fs=self.sample_rate, output="sos")
        return signal.butter(order, [low_hz, high_hz], btype="bandpass", fs=self.sample_rate, output="sos")

    def _compress(self, x: np.ndarray, threshold_db: float, ratio: float) -> np.ndarray:
        """Feed-forward compressor on a 20 ms RMS envelope, threshold relative to the loudest part."""
        from scipy.ndimage import uniform_filter1d

        sr = self.sample_rate
        envelope = np.sqrt(uniform_filter1d(x * x, size=max(1, int(0.02 * sr))) + _EPS)
        level_db = 20 * np.log10(envelope / max(float(envelope.max()), _EPS))
        gain_db = np.where(level_db > threshold_db, (threshold_db - level_db) * (1 - 1 / ratio), 0.0)
        gain_db = uniform_filter1d(gain_db, size=max(1, int(0.01 * sr)))  # 10 ms smoothing: no zipper noise
        y = x * 10 ** (gain_db / 20)
        # Make-up gain restores the original peak, raising the quiet parts as an AGC does.
        return y * (float(np.max(np.abs(x))) / max(float(np.max(np.abs(y))), _EPS))

    def _heterodyne(self, noise: np.ndarray, span: slice, rng: np.random.Generator,
                    params: dict[str, Any]) -> np.ndarray:
        """Mix a drifting heterodyne whistle into the (unit-power) noise as a share of its power."""
        params["heterodyne"] = bool(rng.random() < self.settings.heterodyne_probability)
        if not params["heterodyne"]:
            return noise
        freq_hz, drift_hz = float(rng.uniform(300.0, 3000.0)), float(rng.uniform(0.0, 30.0))
        share = float(rng.uniform(0.2, 0.7))
        whistle = _whistle(noise.size, freq_hz, drift_hz, self.sample_rate, rng)
        params.update(heterodyne_hz=round(freq_hz, 1), heterodyne_drift_hz=round(drift_hz, 2),
                      heterodyne_share=round(share, 3))
        return math.sqrt(1 - share) * noise + math.sqrt(share) * _unit_power(whistle, span)

    def _second_station(self, noise: np.ndarray, span: slice, band: np.ndarray, rng: np.random.Generator,
                        interferer: Interferer | None, params: dict[str, Any]) -> np.ndarray:
        """Mix in another transmission, quieter than the main one (it is part of the noise budget)."""
        params["overlap"] = bool(rng.random() < self.settings.overlap_probability) and interferer is not None
        if not params["overlap"]:
            return noise
        assert interferer is not None
        other, info = interferer(rng)
        other = signal.sosfilt(band, to_mono(np.asarray(other)).astype(np.float64))
        n, start, length = noise.size, span.start or 0, (span.stop or 0) - (span.start or 0)
        # It starts anywhere from half its length before the main speech to near the main speech's end.
        offset = int(rng.integers(start - other.size // 2, start + max(1, int(0.8 * length))))
        placed = np.zeros(n)
        lo, hi = max(0, offset), min(n, offset + other.size)
        if hi - lo < int(0.2 * self.sample_rate) or _power(other) <= _EPS:
            params["overlap"] = False
            return noise
        placed[lo:hi] = other[lo - offset: hi - offset]
        if _power(placed[span]) <= _EPS:
            params["overlap"] = False
            return noise
        share = float(rng.uniform(0.3, 0.8))
        params.update(overlap_share=round(share, 3), overlap_offset_s=round(offset / self.sample_rate, 5),
                      **{f"overlap_{k}": v for k, v in info.items()})
        return math.sqrt(1 - share) * noise + math.sqrt(share) * _unit_power(placed, span)

    def _blocking(self, noise: np.ndarray, speech_energy: float, start: int, length: int, band: np.ndarray,
                  rng: np.random.Generator, interferer: Interferer | None, params: dict[str, Any]) -> None:
        """Add, in place, the burst where another station keyed over the transmission."""
        sr = self.sample_rate
        freq_hz = float(rng.uniform(300.0, 2500.0))
        burst = _whistle(length, freq_hz, float(rng.uniform(5.0, 60.0)), sr, rng)
        garble = None
        if interferer is not None:
            other, info = interferer(rng)
            other = to_mono(np.asarray(other)).astype(np.float64)
            if other.size > length and _power(other) > _EPS:
                begin = int(rng.integers(0, other.size - length))
                garble = other[begin:begin + length]
                params.update(**{f"blocked_by_{k}": v for k, v in info.items()})
        mix = 0.5 * burst / math.sqrt(max(_power(burst), _EPS))
        if garble is not None:
            mix = mix + garble / math.sqrt(max(_power(garble), _EPS))
        mix = signal.sosfilt(band, mix)
        level_db = float(rng.uniform(-6.0, 0.0))  # about as loud as the transmission it blocks
        mix *= math.sqrt(speech_energy * 10 ** (level_db / 10) / max(_power(mix), _EPS))
        ramp = min(length, int(0.01 * sr))
        mix[:ramp] *= np.linspace(0.0, 1.0, ramp)
        noise[start:start + length] += mix
        params.update(blocked_s=round(length / sr, 3), blocked_hz=round(freq_hz, 1), blocked_level_db=round(level_db, 2))

    def _receiver_clip(self, out: np.ndarray, rng: np.random.Generator, params: dict[str, Any]) -> np.ndarray:
        """Clip the loudest samples flat, as an overdriven receiver or recorder does."""
        params["receiver_clip"] = bool(rng.random() < self.settings.receiver_clip_probability)
        if not params["receiver_clip"]:
            return out
        low, high = RECEIVER_CLIP_SHARE
        share = float(math.exp(rng.uniform(math.log(low), math.log(high))))
        negative_only = bool(rng.random() < 0.3)  # an over-modulated AM carrier flattens one half-wave
        magnitude = -out if negative_only else np.abs(out)
        level = float(np.quantile(magnitude, 1.0 - share))
        if level <= 0:
            params["receiver_clip"] = False
            return out
        clipped = np.maximum(out, -level) if negative_only else np.clip(out, -level, level)
        params.update(receiver_clip_share=round(share, 6), receiver_clip_negative_only=negative_only,
                      receiver_clip_fraction=round(float(np.mean(clipped != out)), 6))
        # Bring the flattened peak back to where the signal's peak was (the receiver's output level).
        peak = float(np.max(np.abs(out)))
        return np.asarray(clipped * (peak / max(float(np.max(np.abs(clipped))), _EPS)))

    def _codec(self, out: np.ndarray, rng: np.random.Generator, params: dict[str, Any]) -> np.ndarray:
        """A low-bitrate MP3 or Opus round trip (streamed radio)."""
        params["codec"] = None
        if not rng.random() < self.settings.codec_probability:
            return out
        from .codec import codec_roundtrip

        codec = str(rng.choice(sorted(CODEC_BITRATES_KBPS)))
        low, high = CODEC_BITRATES_KBPS[codec]
        bitrate = float(round(rng.uniform(low, high)))
        coded = codec_roundtrip(out.astype(np.float32), codec, bitrate, self.sample_rate).astype(np.float64)
        peak = float(np.max(np.abs(coded)))
        if peak > MAX_PEAK:  # the codec can overshoot the limited peak
            coded *= MAX_PEAK / peak
        params.update(codec=codec, codec_bitrate_kbps=bitrate)
        return coded

    def _file_noise(self, n: int, rng: np.random.Generator, params: dict[str, Any],
                    files: list[Path] | None = None, source: str = "file") -> np.ndarray:
        files = files or self.noise_files
        path = files[int(rng.integers(len(files)))]
        if path not in self._noise_cache:
            clip = load_audio(path, self.sample_rate).astype(np.float64)
            if not np.any(clip):
                raise AudioError(f"noise file {path} is silent; remove it from the noise folder or replace it.")
            self._noise_cache[path] = clip
        clip = self._noise_cache[path]
        offset = int(rng.integers(clip.size))
        params.update(noise_source=source, noise_file=path.name, noise_offset_s=round(offset / self.sample_rate, 3))
        return np.resize(np.roll(clip, -offset), n)  # loop a short recording, crop a long one

    def _noise(self, n: int, span: slice, band: np.ndarray, rng: np.random.Generator,
               params: dict[str, Any], library_rng: np.random.Generator | None = None) -> np.ndarray:
        """Receiver noise: broadband hiss (file, bundled library or generated), crackle, hum + rumble."""
        s, sr = self.settings, self.sample_rate
        if self.noise_files:
            broadband = self._file_noise(n, rng, params)
        else:
            colour = "pink" if rng.random() < 0.5 else "white"
            broadband = _pink(n, rng) if colour == "pink" else rng.standard_normal(n)
            params["noise_source"] = colour
            library_rng = library_rng or rng
            # The hiss is drawn either way, so the draws after it do not depend on this choice.
            if self.library_files and library_rng.random() < s.bundled_noise_probability:
                # The library's stretches are the background between transmissions of facility
                # recordings, often gated or bursty; a receiver always adds some steady hiss, which
                # keeps the quiet frames from falling silent (frame-energy SNR as in real captures).
                recorded = self._file_noise(n, library_rng, params, self.library_files, "library")
                share = float(library_rng.uniform(*LIBRARY_SHARE))
                broadband = math.sqrt(share) * _unit_power(recorded, span) + math.sqrt(1 - share) * _unit_power(
                    broadband, span)
                params["noise_library_share"] = round(share, 3)
        parts = [_unit_power(broadband, span)]

        params["crackle"] = bool(rng.random() < s.crackle_probability)
        if params["crackle"]:
            rate_hz, share = float(rng.uniform(2.0, 30.0)), float(rng.uniform(0.1, 0.5))
            parts[0] = parts[0] * math.sqrt(1 - share)
            parts.append(math.sqrt(share) * _unit_power(_crackle(n, rate_hz, sr, rng), span))
            params.update(crackle_rate_hz=round(rate_hz, 2), crackle_share=round(share, 3))
        # Hiss and crackle pass the receiver's audio filter; hum and rumble enter after it.
        noise = signal.sosfilt(band, np.sum(parts, axis=0))
        noise = _unit_power(noise, span)

        params["hum"] = bool(rng.random() < s.hum_probability)
        if params["hum"]:
            base_hz = float(rng.choice([50.0, 60.0]))
            harmonics = int(rng.integers(1, 6))
            rumble_hz = float(rng.uniform(60.0, 200.0))
            share = float(rng.uniform(0.3, 0.9))  # of the noise power: hum dominates weak-signal captures
            rumble = signal.sosfilt(signal.butter(2, rumble_hz, btype="lowpass", fs=sr, output="sos"), rng.standard_normal(n))
            rumble_mix = float(rng.uniform(0.2, 0.8))
            low = (math.sqrt(1 - rumble_mix) * _unit_power(_hum(n, base_hz, harmonics, sr, rng), span)
                   + math.sqrt(rumble_mix) * _unit_power(rumble, span))
            noise = math.sqrt(1 - share) * noise + math.sqrt(share) * _unit_power(low, span)
            params.update(hum_hz=base_hz, hum_harmonics=harmonics, hum_share=round(share, 3),
                          rumble_hz=round(rumble_hz, 1), rumble_mix=round(rumble_mix, 3))
        return noise

    def _squelch(self, noise: np.ndarray, speech: np.ndarray, lead: int, tail: int, rng: np.random.Generator,
                 params: dict[str, Any]) -> None:
        """Add the opening click and raise the closing tail, in place (outside the speech span)."""
        sr = self.sample_rate
        peak = float(np.max(np.abs(speech)))
        click_len = int(rng.uniform(0.002, 0.01) * sr)
        click_level = float(rng.uniform(0.2, 0.8))
        start = int(rng.integers(0, max(1, lead // 3)))
        decay = np.exp(-np.arange(click_len) / max(1.0, click_len / 4))
        click = rng.standard_normal(click_len) * decay
        click *= click_level * peak / max(float(np.max(np.abs(click))), _EPS)
        noise[start:start + click_len] += click[: max(0, min(click_len, noise.size - start))]
        tail_db = float(rng.uniform(3.0, 12.0))
        tail_start = noise.size - tail
        noise[tail_start:] *= 10 ** (tail_db / 20)
        noise[:start] = 0.0  # before the squelch opens the receiver is muted
        params.update(squelch_lead_s=round(lead / sr, 3), squelch_tail_s=round(tail / sr, 3),
                      squelch_click_ms=round(1000 * click_len / sr, 2), squelch_click_level=round(click_level, 3),
                      squelch_tail_db=round(tail_db, 2))
