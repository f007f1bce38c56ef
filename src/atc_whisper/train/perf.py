"""Performance logging during training: time, throughput, CPU, memory (and GPU memory).

A record costs a few psutil calls (well under a millisecond), taken at most once every
``settings.train.perf_interval_s`` seconds, checked at the end of each optimiser step with
one ``time.monotonic()`` call - negligible next to a training step. Records go to the log
file and to TensorBoard under ``perf/*``.
"""

from __future__ import annotations

import resource
import sys
import time
from dataclasses import asdict, dataclass
from typing import Any

import psutil

from ..log import get_logger

log = get_logger(__name__)

MIB = 1024 * 1024


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, MiB (``ru_maxrss`` is KiB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / MIB if sys.platform == "darwin" else peak / 1024


@dataclass
class PerfRecord:
    """One performance sample.

    Attributes:
        elapsed_s: Seconds since the logger started.
        samples_per_s: Training samples per second since the previous record (all processes).
        cpu_percent: This process's CPU use since the previous record (100 = one full core).
        rss_mb: Resident memory of this process, MiB.
        peak_rss_mb: Peak resident memory of this process so far, MiB.
        system_memory_percent: Share of the machine's memory in use.
        gpu_memory_mb: GPU memory allocated by PyTorch, MiB (None without a GPU).
        gpu_peak_memory_mb: Peak GPU memory allocated by PyTorch, MiB (None without a GPU).
    """

    elapsed_s: float
    samples_per_s: float
    cpu_percent: float
    rss_mb: float
    peak_rss_mb: float
    system_memory_percent: float
    gpu_memory_mb: float | None = None
    gpu_peak_memory_mb: float | None = None

    def as_dict(self) -> dict[str, float]:
        """Plain dict of the fields that have a value."""
        return {k: v for k, v in asdict(self).items() if v is not None}


class PerfLogger:
    """Takes :class:`PerfRecord` samples at a fixed interval.

    Call :meth:`maybe_record` as often as convenient (each step); it returns a record only
    when the interval has passed.
    """

    def __init__(self, interval_s: float) -> None:
        self.interval_s = interval_s
        self.process = psutil.Process()
        self.process.cpu_percent(None)  # the first call only starts the measurement window
        self.start = time.monotonic()
        self._last_time = self.start
        self._last_samples = 0
        self._cuda = self._cuda_available()

    @staticmethod
    def _cuda_available() -> bool:
        torch = sys.modules.get("torch")
        return bool(torch is not None and torch.cuda.is_available())

    def due(self) -> bool:
        """Whether the interval has passed since the previous record."""
        return time.monotonic() - self._last_time >= self.interval_s

    def record(self, samples_seen: int) -> PerfRecord:
        """Take a record now; ``samples_seen`` counts training samples since the start."""
        now = time.monotonic()
        span_s = max(now - self._last_time, 1e-9)
        rate = (samples_seen - self._last_samples) / span_s
        self._last_time, self._last_samples = now, samples_seen
        memory = self.process.memory_info()
        record = PerfRecord(
            elapsed_s=round(now - self.start, 3),
            samples_per_s=round(rate, 3),
            cpu_percent=round(self.process.cpu_percent(None), 1),
            rss_mb=round(memory.rss / MIB, 1),
            peak_rss_mb=round(peak_rss_mb(), 1),
            system_memory_percent=round(psutil.virtual_memory().percent, 1),
        )
        if self._cuda:
            import torch

            record.gpu_memory_mb = round(torch.cuda.memory_allocated() / MIB, 1)
            record.gpu_peak_memory_mb = round(torch.cuda.max_memory_allocated() / MIB, 1)
        log.debug("perf %s", " ".join(f"{k}={v}" for k, v in record.as_dict().items()))
        return record

    def maybe_record(self, samples_seen: int) -> PerfRecord | None:
        """A record if the interval has passed, else None."""
        return self.record(samples_seen) if self.due() else None


def write_perf(writer: Any, record: PerfRecord, step: int) -> None:
    """Write a record to a TensorBoard ``SummaryWriter`` as ``perf/<field>`` scalars."""
    for key, value in record.as_dict().items():
        writer.add_scalar(f"perf/{key}", value, step)
