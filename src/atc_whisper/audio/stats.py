"""Clip statistics that say how much a clip sounds like real ATC radio.

Synthetic training data is only as good as its likeness to what users feed in. These
measures are the ones of the real-radio table the project compares itself with (real
European receiver recordings and a LiveATC stream against the synthetic clips), so the
synthetic data can be measured the same way (``bench/realism.py``) and a change to the
generator, the voices or the radio channel is judged by how it moves them:

* **energy share by band** - the clip's power spectrum summed in five bands, below 300 Hz
  (hum, rumble), 300-1000, 1000-2000, 2000-3400 Hz (the voice band of AM radio) and above
  3400 Hz, as shares of the total;
* **frame-energy SNR** - the ratio of the 95th to the 10th percentile of the mean-square
  energies of consecutive 20 ms frames, in dB. Crude (it needs no speech/noise labels) but
  comparable: the loud frames are speech, the quiet ones are the noise floor between words;
* **near-peak samples** - samples whose magnitude is within 2 % of the clip's peak, per 1000
  samples. A clipped signal has flat tops, so many samples sit at the peak; an unclipped one
  has a handful;
* **RMS level** (dBFS), **duration** (s) and **speaking rate** (words of the reference per
  second of clip).

Per set of clips, :func:`summarise` gives the 10th/50th/90th percentiles of the per-clip
SNR, RMS, duration and speaking rate, the mean band shares and the mean near-peak rate, and
:func:`distance` compares two summaries column by column (see its docstring for the
definitions).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..errors import DataError
from .io import SAMPLE_RATE, rms_dbfs

#: Frequency bands of the energy shares, Hz: (low, high), high exclusive; the last is open.
BANDS_HZ: tuple[tuple[float, float], ...] = ((0.0, 300.0), (300.0, 1000.0), (1000.0, 2000.0), (2000.0, 3400.0),
                                             (3400.0, math.inf))
BAND_LABELS = ("<300", "300-1k", "1-2k", "2-3.4k", ">3.4k")
#: Frame length of the frame-energy SNR, seconds (320 samples at 16 kHz).
FRAME_S = 0.02
#: Percentiles of the frame energies whose ratio is the frame-energy SNR.
SNR_PERCENTILES = (10.0, 95.0)
#: A sample is "near the peak" when its magnitude is at least this share of the clip's peak.
NEAR_PEAK_SHARE = 0.98
#: Floor on frame mean-square energies (-120 dBFS), so digital silence gives a finite SNR.
ENERGY_FLOOR = 1e-12
#: Percentiles reported per distributional column.
PERCENTILES = (10.0, 50.0, 90.0)


def band_energy_shares(audio: np.ndarray, sample_rate: int = SAMPLE_RATE) -> tuple[float, ...]:
    """Share of the clip's energy in each of :data:`BANDS_HZ` (sums to 1; zeros for silence).

    The power spectrum of the whole clip (one real FFT, no window) is summed per band; the
    DC bin counts towards the lowest band.
    """
    x = np.asarray(audio, dtype=np.float64)
    power = np.abs(np.fft.rfft(x)) ** 2
    freqs = np.fft.rfftfreq(x.size, 1.0 / sample_rate)
    total = float(power.sum())
    if total <= 0.0:
        return tuple(0.0 for _ in BANDS_HZ)
    return tuple(float(power[(freqs >= low) & (freqs < high)].sum()) / total for low, high in BANDS_HZ)


def frame_energies(audio: np.ndarray, sample_rate: int = SAMPLE_RATE, frame_s: float = FRAME_S) -> np.ndarray:
    """Mean-square energy of each whole, non-overlapping frame of ``frame_s`` seconds."""
    frame = max(1, round(frame_s * sample_rate))
    x = np.asarray(audio, dtype=np.float64)
    n = x.size // frame
    if n == 0:
        return np.array([float(np.mean(x * x))]) if x.size else np.zeros(0)
    return np.mean(x[: n * frame].reshape(n, frame) ** 2, axis=1)


def frame_snr_db(audio: np.ndarray, sample_rate: int = SAMPLE_RATE) -> float:
    """Frame-energy SNR: 10 log10 of the 95th over the 10th percentile of 20 ms frame energies, dB.

    Frame energies are floored at :data:`ENERGY_FLOOR` (-120 dBFS), so a studio clip with
    digital silence between words gets a large finite figure rather than infinity.
    """
    energies = np.maximum(frame_energies(audio, sample_rate), ENERGY_FLOOR)
    if energies.size == 0:
        return 0.0
    low, high = np.percentile(energies, SNR_PERCENTILES)
    return float(10.0 * math.log10(high / low))


def near_peak_per_1000(audio: np.ndarray, share: float = NEAR_PEAK_SHARE) -> float:
    """Samples whose magnitude is at least ``share`` of the clip's peak, per 1000 samples."""
    x = np.abs(np.asarray(audio, dtype=np.float64))
    if x.size == 0:
        return 0.0
    peak = float(x.max())
    if peak <= 0.0:
        return 0.0
    return 1000.0 * float(np.count_nonzero(x >= share * peak)) / x.size


@dataclass(frozen=True)
class ClipStats:
    """The realism measures of one clip.

    Attributes:
        bands: Energy shares per band of :data:`BANDS_HZ`.
        snr_db: Frame-energy SNR, dB.
        near_peak_per_1000: Near-peak samples per 1000 samples.
        rms_dbfs: RMS level, dB relative to full scale.
        duration_s: Clip length, seconds.
        words_per_s: Reference words over the clip's duration (None without a transcript).
    """

    bands: tuple[float, ...]
    snr_db: float
    near_peak_per_1000: float
    rms_dbfs: float
    duration_s: float
    words_per_s: float | None = None


def clip_stats(audio: np.ndarray, words: int | None = None, sample_rate: int = SAMPLE_RATE) -> ClipStats:
    """Measure one clip.

    Args:
        audio: Mono samples in full-scale units (±1).
        words: Words of the clip's reference transcript; the speaking rate is words over the
            clip's whole duration, as the real-radio table measures it on annotated segments.
        sample_rate: Rate of ``audio``, Hz.
    """
    x = np.asarray(audio, dtype=np.float64).reshape(-1)
    duration = x.size / sample_rate
    return ClipStats(
        bands=band_energy_shares(x, sample_rate),
        snr_db=frame_snr_db(x, sample_rate),
        near_peak_per_1000=near_peak_per_1000(x),
        rms_dbfs=rms_dbfs(x) if np.any(x) else -120.0,
        duration_s=duration,
        words_per_s=None if words is None or duration <= 0 else words / duration,
    )


@dataclass(frozen=True)
class SetSummary:
    """A set of clips in the real-radio table's terms.

    Attributes:
        n: Clips measured.
        bands: Mean energy share per band (each clip weighs the same).
        snr_db: Frame-energy SNR percentiles (p10, p50, p90), dB.
        near_peak_per_1000: Mean over clips of the near-peak samples per 1000 samples.
        rms_dbfs: RMS level percentiles, dBFS.
        duration_s: Duration percentiles, seconds.
        words_per_s: Speaking-rate percentiles (None when no clip has a transcript).
    """

    n: int
    bands: tuple[float, ...]
    snr_db: tuple[float, float, float]
    near_peak_per_1000: float
    rms_dbfs: tuple[float, float, float]
    duration_s: tuple[float, float, float]
    words_per_s: tuple[float, float, float] | None = None


def _percentiles(values: Sequence[float]) -> tuple[float, float, float]:
    low, mid, high = np.percentile(np.asarray(values, dtype=np.float64), PERCENTILES)
    return float(low), float(mid), float(high)


def summarise(stats: Sequence[ClipStats]) -> SetSummary:
    """Summarise per-clip measures as one row of the realism table.

    Raises:
        DataError: for an empty set.
    """
    if not stats:
        raise DataError("no clips to summarise: the set is empty; measure at least one clip first.")
    rates = [s.words_per_s for s in stats if s.words_per_s is not None]
    return SetSummary(
        n=len(stats),
        bands=tuple(float(v) for v in np.mean(np.array([s.bands for s in stats]), axis=0)),
        snr_db=_percentiles([s.snr_db for s in stats]),
        near_peak_per_1000=float(np.mean([s.near_peak_per_1000 for s in stats])),
        rms_dbfs=_percentiles([s.rms_dbfs for s in stats]),
        duration_s=_percentiles([s.duration_s for s in stats]),
        words_per_s=_percentiles(rates) if rates else None,
    )


#: Columns of :func:`distance`, in table order, with the unit of their distance.
DISTANCE_COLUMNS: tuple[tuple[str, str], ...] = (
    ("bands", "TV %"), ("snr_db", "dB"), ("near_peak_per_1000", "rel"), ("rms_dbfs", "dB"),
    ("duration_s", "rel"), ("words_per_s", "rel"),
)


def _relative(value: float, reference: float) -> float:
    return (value - reference) / reference if reference else math.inf


def distance(summary: SetSummary, reference: SetSummary) -> dict[str, float | None]:
    """One distance per column between a set and a reference set (usually real radio).

    * ``bands``: total-variation distance between the two mean band-share distributions,
      half the sum of absolute share differences, in percentage points (0 = same balance,
      100 = disjoint);
    * ``snr_db`` and ``rms_dbfs``: difference of the medians in dB (positive: the set is
      cleaner / louder than the reference). A relative difference means nothing on a
      logarithmic scale whose zero is arbitrary;
    * ``near_peak_per_1000``, ``duration_s``, ``words_per_s``: relative difference of the
      medians (of the means for near-peak), ``(set - reference) / reference``; +0.15 is 15 %
      above the reference. ``words_per_s`` is None when either side has no transcripts.
    """
    out: dict[str, float | None] = {
        "bands": 50.0 * float(np.sum(np.abs(np.subtract(summary.bands, reference.bands)))),
        "snr_db": summary.snr_db[1] - reference.snr_db[1],
        "near_peak_per_1000": _relative(summary.near_peak_per_1000, reference.near_peak_per_1000),
        "rms_dbfs": summary.rms_dbfs[1] - reference.rms_dbfs[1],
        "duration_s": _relative(summary.duration_s[1], reference.duration_s[1]),
        "words_per_s": None,
    }
    if summary.words_per_s is not None and reference.words_per_s is not None:
        out["words_per_s"] = _relative(summary.words_per_s[1], reference.words_per_s[1])
    return out
