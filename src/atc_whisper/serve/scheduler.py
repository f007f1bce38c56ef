"""One engine shared by live frequencies and HTTP uploads, live audio first.

A CPU has room for one Whisper decode at a time: two engines decoding at once on two cores
each take twice as long, so a burst of uploads would make every frequency's transcripts late.
Instead the server loads one engine and puts a :class:`DecodeScheduler` in front of it: one
thread runs the engine, callers queue clips with a priority and wait for their result.

* Live transmissions (:data:`LIVE`) always go before uploads (:data:`API`); within a
  priority, first come first served.
* A decode that has started is never interrupted (CTranslate2 cannot be), so a transmission
  waits at most for the one upload *clip* in progress. Uploads are decoded clip by clip (a
  lane's ``transcribe_batch`` queues each transmission of the file on its own), and live
  decoding gets the engine back between any two clips of a long upload.
* While a frequency has a transmission open (the live runner tells its lane,
  :meth:`Lane.speech_open`), no upload clip is started: the engine is then free when the
  transmission ends, and its transcript does not wait for an upload. A hold lasts at most
  :data:`MAX_HOLD_S`, so a frequency stuck open cannot starve uploads; uploads run in the gaps
  between transmissions.
* The live runner also decodes a transmission speculatively during its closing pause (see
  ``live.speculative``).

Each caller gets a :class:`Lane`: an object with the engine's ``transcribe`` /
``transcribe_batch`` / ``name`` / ``window_s``, so the live runner and file transcription
use it exactly as they would use the engine.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..log import get_logger
from ..transcribe.engines import Engine
from ..transcribe.types import Transcription

log = get_logger(__name__)

LIVE = 0  #: Priority of live transmissions (decoded first).
API = 1  #: Priority of uploaded audio.
PRIORITY_NAMES = {LIVE: "live", API: "api"}
#: Longest a live transmission holds uploads back, s (a little over ``segment.max_segment_s``).
MAX_HOLD_S = 30.0


@dataclass
class LaneStats:
    """Decoding done for one priority since the server started.

    Attributes:
        decodes: Engine calls made.
        busy_s: Seconds the engine spent on them.
        wait_s: Seconds they waited in the queue, summed.
        max_wait_s: Longest single wait.
    """

    decodes: int = 0
    busy_s: float = 0.0
    wait_s: float = 0.0
    max_wait_s: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {"decodes": self.decodes, "busy_s": round(self.busy_s, 3), "wait_s": round(self.wait_s, 3),
                "max_wait_s": round(self.max_wait_s, 3)}


@dataclass(order=True)
class _Job:
    priority: int
    seq: int
    queued: float = field(compare=False)
    call: Callable[[], Any] = field(compare=False)
    future: Future[Any] = field(compare=False)


class SchedulerClosed(RuntimeError):
    """The server is shutting down and takes no more uploads."""


class DecodeScheduler:
    """Runs every decode of one engine on one thread, highest priority first.

    Args:
        engine: The loaded engine (``load_engine``).
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.name = engine.name
        self.window_s = engine.window_s
        self.stats = {p: LaneStats() for p in PRIORITY_NAMES}
        self._heap: list[_Job] = []
        self._cond = threading.Condition()
        self._seq = itertools.count()
        self._closed = False
        self._holds: dict[object, float] = {}  # holder -> monotonic time its hold expires
        self._thread = threading.Thread(target=self._run, name="atc-serve-decoder", daemon=True)
        self._thread.start()

    def submit(self, priority: int, call: Callable[[], Any]) -> Future[Any]:
        """Queue ``call`` (which uses the engine) and return the future of its result.

        Raises:
            SchedulerClosed: after :meth:`close`.
        """
        future: Future[Any] = Future()
        with self._cond:
            if self._closed:
                raise SchedulerClosed("the server is shutting down")
            heapq.heappush(self._heap, _Job(priority, next(self._seq), time.monotonic(), call, future))
            self._cond.notify()
        return future

    def waiting(self, priority: int | None = None) -> int:
        """Jobs queued and not started (of one priority)."""
        with self._cond:
            return sum(1 for j in self._heap if priority is None or j.priority == priority)

    def hold(self, holder: object, held: bool, max_s: float = MAX_HOLD_S) -> None:
        """Hold uploads back while ``held`` (a live transmission of ``holder`` is open), at most ``max_s``.

        Holding again while held keeps the first expiry; releasing lets queued uploads start.
        """
        with self._cond:
            if held:
                self._holds.setdefault(holder, time.monotonic() + max_s)
            elif self._holds.pop(holder, None) is not None:
                self._cond.notify()

    def _held_until(self, now: float) -> float | None:
        """When the last active hold expires (None: no hold); expired holds are dropped."""
        for holder, expiry in list(self._holds.items()):
            if expiry <= now:
                del self._holds[holder]
        return max(self._holds.values()) if self._holds else None

    def lane(self, priority: int) -> Lane:
        """An engine-like view whose decodes are queued at ``priority``."""
        return Lane(self, priority)

    def _run(self) -> None:
        while True:
            with self._cond:
                while True:
                    if not self._heap:
                        if self._closed:
                            return
                        self._cond.wait()
                        continue
                    held = None if self._heap[0].priority == LIVE or self._closed else self._held_until(time.monotonic())
                    if held is None:
                        break
                    self._cond.wait(max(0.0, held - time.monotonic()))  # a release or a live job wakes it
                job = heapq.heappop(self._heap)
            if not job.future.set_running_or_notify_cancel():
                continue
            started = time.monotonic()
            try:
                result = job.call()
            except BaseException as exc:  # handed to the waiting caller, who raises it
                job.future.set_exception(exc)
            else:
                job.future.set_result(result)
            stats = self.stats[job.priority]
            stats.decodes += 1
            stats.busy_s += time.monotonic() - started
            wait = started - job.queued
            stats.wait_s += wait
            stats.max_wait_s = max(stats.max_wait_s, wait)

    def close(self, timeout_s: float = 60.0) -> None:
        """Finish what is queued, then stop the decoding thread (later submissions fail)."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._thread.join(timeout_s)
        if self._thread.is_alive():
            log.warning("the decoder thread did not finish its queue in %.0f s", timeout_s)


class Lane:
    """The engine as seen from one priority: same methods, decodes queued on the scheduler."""

    def __init__(self, scheduler: DecodeScheduler, priority: int) -> None:
        self.scheduler = scheduler
        self.priority = priority
        self.name = scheduler.name
        self.window_s = scheduler.window_s

    def transcribe(self, audio: np.ndarray, *, prompt: str | None = None) -> Transcription:
        """Queue one clip and wait for its transcript (see :class:`~atc_whisper.transcribe.engines.Engine`)."""
        engine = self.scheduler.engine
        return self.scheduler.submit(self.priority, lambda: engine.transcribe(audio, prompt=prompt)).result()

    def transcribe_batch(self, audios: list[np.ndarray], *, prompt: str | None = None) -> list[Transcription]:
        """Queue clips one by one, so a higher priority can step in between them."""
        return [self.transcribe(a, prompt=prompt) for a in audios]

    def speech_open(self, holder: object, is_open: bool) -> None:
        """A live source's transmission opened or closed: uploads wait while one is open (live lanes only)."""
        if self.priority == LIVE:
            self.scheduler.hold(holder, is_open)
