"""The live loop: capture -> segment -> queue -> recognise -> outputs, on separate threads.

Radio does not wait for the recogniser, so capture must never block on transcription:

* the **capture thread** reads the source and runs the segmenter (VAD is cheap, well under
  1 ms per 32 ms frame) and puts each finished :class:`Transmission` on a :class:`LagQueue`;
* the **recogniser thread** takes them in order, transcribes them with the engine, parses
  callsign and commands and hands one :class:`LiveRecord` to every sink (console view,
  JSON lines, catalogue, saved audio);
* the **calling thread** only waits, so Ctrl-C/SIGTERM are handled promptly: the source is
  stopped, the transmission in progress is flushed, the queue is finished, sinks are closed.

The queue is bounded in the sense that matters for a listener: past ``queue_size`` waiting
transmissions the recogniser is reported as falling behind ("N transmissions / X s behind"),
but nothing is ever dropped - the overflow is kept in order and transcribed later.
"""

from __future__ import annotations

import contextlib
import signal
import statistics
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

import numpy as np

from ..audio.io import SAMPLE_RATE
from ..audio.segment import Segmenter, Transmission
from ..config import Settings
from ..errors import AtcWhisperError
from ..log import get_logger
from ..phraseology.conversation import Conversation
from ..transcribe.annotate import Annotation, annotate
from .sources import AudioSource

log = get_logger(__name__)

_LAG_REPORT_INTERVAL_S = 10.0  # repeat the "behind" warning at most this often


class Recogniser(Protocol):
    """What the loop needs from an engine (:func:`atc_whisper.transcribe.load_engine`)."""

    def transcribe(self, audio: np.ndarray, *, prompt: str | None = None) -> Any:
        """Return a Transcription (text, avg_logprob, no_speech_prob, compression_ratio, low_confidence, latency_s)."""
        ...


@dataclass
class LiveRecord:
    """What is reported for one transmission (one JSON line, one catalogue row).

    Attributes:
        index: Order of the transmission in this session, from 0.
        started_at: Wall-clock start, ISO 8601 UTC with milliseconds.
        wall_start: Wall-clock start, Unix seconds.
        stream_start_s: Position of the first sample in the stream, seconds.
        stream_end_s: Position just after the last sample, seconds.
        duration_s: Audio length (speech plus padding), seconds.
        text: The transcript.
        avg_logprob: Mean token log-probability.
        no_speech_prob: Whisper's no-speech probability.
        compression_ratio: zlib ratio of the text (high means looping output).
        low_confidence: Whether the transcript is flagged; ``reasons`` says why.
        reasons: low_logprob, no_speech, repetition, length_bound.
        callsign: Parsed callsign (ATC reference words) or None.
        commands: Parsed commands, each a dict.
        latency_s: From the moment the transmission's last sample was received to the
            transcript being ready: VAD close delay + queue wait + decoding.
        decode_s: Time the engine spent decoding.
        wait_s: Time the transmission waited in the queue for the recogniser.
        behind: Transmissions still waiting when this one was finished.
        end_reason: silence, max_length, flush or break (see :class:`Transmission`).
        source: Description of the source.
        audio_path: Saved WAV (with ``--save-audio``), else None.
        snapped_from: The callsign as heard, when it was snapped to a known one.
        role: Speaker role read from the words: controller, pilot or unknown.
        role_score: Confidence in the role, 0.5-1.
        exchange: Id of the exchange (one callsign's instruction and replies), or None.
        readback: For a pilot's readback, ``{"status": "ok"|"mismatch", "instruction": index,
            "differences": [{"item", "expected", "heard", "kind"}]}``; else None
            (see :mod:`atc_whisper.phraseology.conversation`).
        session: Id of the live session it was heard in (:func:`session_id`, also the prefix
            of its saved audio's file names). ``index``, ``exchange`` and the readback's
            ``instruction`` count within one session, so (source, session, exchange) names an
            exchange across restarts of the same frequency.
    """

    index: int
    started_at: str
    wall_start: float
    stream_start_s: float
    stream_end_s: float
    duration_s: float
    text: str
    avg_logprob: float
    no_speech_prob: float
    compression_ratio: float
    low_confidence: bool
    reasons: list[str]
    callsign: str | None
    commands: list[dict[str, Any]]
    latency_s: float
    decode_s: float
    wait_s: float
    behind: int
    end_reason: str
    source: str
    audio_path: str | None = None
    snapped_from: str | None = None
    role: str = "unknown"
    role_score: float = 0.5
    exchange: int | None = None
    readback: dict[str, Any] | None = None
    session: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready dict, floats rounded to milliseconds (4 places for log-probs)."""
        data = asdict(self)
        for key, value in data.items():
            if isinstance(value, float) and key != "wall_start":
                data[key] = round(value, 4 if key in ("avg_logprob", "no_speech_prob", "compression_ratio") else 3)
        return data


class Sink(Protocol):
    """An output of the live loop; called from the recogniser thread only."""

    def write(self, record: LiveRecord, transmission: Transmission) -> None:
        """Take one finished transmission."""
        ...

    def close(self) -> None:
        """Flush and release files or connections."""
        ...


@dataclass
class LiveSummary:
    """Totals of a live session, printed at the end."""

    transmissions: int = 0
    audio_s: float = 0.0  # stream audio consumed
    speech_s: float = 0.0  # audio inside transmissions
    low_confidence: int = 0
    ignored_bursts: int = 0
    breaks: int = 0
    latencies_s: list[float] = field(default_factory=list)
    decode_s: list[float] = field(default_factory=list)
    max_behind: int = 0
    max_wait_s: float = 0.0
    speculative_hits: int = 0  # transcripts decoded early, during the pause, and used
    speculative_wasted: int = 0  # early decodes thrown away because speech resumed
    wasted_decode_s: float = 0.0
    wall_s: float = 0.0
    interrupted: bool = False
    untranscribed: int = 0
    readbacks: int = 0  # pilot readbacks checked against their instruction
    readback_mismatches: int = 0
    unanswered: int = 0  # instructions whose readback was never heard
    error: str | None = None

    @property
    def mean_latency_s(self) -> float:
        return statistics.fmean(self.latencies_s) if self.latencies_s else 0.0

    @property
    def p95_latency_s(self) -> float:
        return _percentile(self.latencies_s, 95)

    @property
    def p50_latency_s(self) -> float:
        return _percentile(self.latencies_s, 50)

    @property
    def real_time_factor(self) -> float:
        """Decoding time (wasted early decodes included) over stream audio time (below 1: keeps up)."""
        return (sum(self.decode_s) + self.wasted_decode_s) / self.audio_s if self.audio_s else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "transmissions": self.transmissions, "audio_s": round(self.audio_s, 3), "speech_s": round(self.speech_s, 3),
            "low_confidence": self.low_confidence, "ignored_bursts": self.ignored_bursts, "breaks": self.breaks,
            "mean_latency_s": round(self.mean_latency_s, 3), "p50_latency_s": round(self.p50_latency_s, 3),
            "p95_latency_s": round(self.p95_latency_s, 3), "max_behind": self.max_behind,
            "max_wait_s": round(self.max_wait_s, 3), "real_time_factor": round(self.real_time_factor, 4),
            "speculative_hits": self.speculative_hits, "speculative_wasted": self.speculative_wasted,
            "wall_s": round(self.wall_s, 3), "interrupted": self.interrupted, "untranscribed": self.untranscribed,
            "readbacks": self.readbacks, "readback_mismatches": self.readback_mismatches, "unanswered": self.unanswered,
            "error": self.error,
        }


def _percentile(values: Sequence[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q)) if len(values) else 0.0


class LagQueue:
    """FIFO between capture and recogniser that never blocks the producer and never drops.

    Up to ``maxsize`` items it is an ordinary queue; beyond that items go on in order to an
    overflow list, and :attr:`behind` / :meth:`pending_audio_s` let the loop report the lag.
    """

    def __init__(self, maxsize: int) -> None:
        self.maxsize = maxsize
        self._items: deque[Transmission] = deque()
        self._cond = threading.Condition()
        self._closed = False
        self.max_depth = 0

    def put(self, item: Transmission) -> None:
        """Append without blocking."""
        with self._cond:
            self._items.append(item)
            self.max_depth = max(self.max_depth, len(self._items))
            self._cond.notify()

    def get(self) -> Transmission | None:
        """Next item, waiting for one; ``None`` once closed and empty."""
        with self._cond:
            while not self._items and not self._closed:
                self._cond.wait()
            return self._items.popleft() if self._items else None

    def close(self) -> None:
        """No more items will come; :meth:`get` returns ``None`` when the rest is taken."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def drain(self) -> list[Transmission]:
        """Remove everything waiting and return the confirmed transmissions among it (used when
        the user insists on quitting)."""
        with self._cond:
            items = [t for t in self._items if not t.tentative]
            self._items.clear()
            return items

    def empty(self) -> bool:
        """Nothing waiting."""
        with self._cond:
            return not self._items

    @property
    def behind(self) -> int:
        """Confirmed transmissions waiting (early, tentative ones are not counted)."""
        with self._cond:
            return sum(1 for t in self._items if not t.tentative)

    @property
    def overflowing(self) -> bool:
        """More waiting than ``queue_size``: the recogniser cannot keep up."""
        return self.behind > self.maxsize

    def pending_audio_s(self) -> float:
        """Audio seconds waiting."""
        with self._cond:
            return sum(t.duration_s for t in self._items if not t.tentative)


def session_id(wall: float | None = None) -> str:
    """A sortable id for one live session, e.g. ``20261124T210500Z``."""
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(time.time() if wall is None else wall))


def _iso(wall: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(wall)) + f".{int(wall % 1 * 1000):03d}Z"


class LiveSession:
    """One live run: a source, a segmenter, an engine and sinks, wired on threads.

    Args:
        source: Where audio comes from (opened by the caller or lazily by the capture thread).
        engine: Anything with ``transcribe(audio) -> Transcription``.
        settings: Resolved settings (``[segment]`` for segmentation, ``[live]`` for speculation and the queue).
        sinks: Outputs, each receiving every record in order.
        segmenter: Override the segmenter (default: from ``settings.segment`` and its VAD).
        max_audio_s: Stop after this much stream audio (None: until the source ends).
        clock: Wall clock (Unix seconds).
        callsigns: Known callsigns: the decoding prompt, and recognised callsigns are snapped
            to them (:func:`atc_whisper.transcribe.annotate.annotate`, as file transcription does).
        session: The id every record carries as ``session`` (default: :func:`session_id` of
            now); give the saved audio's prefix so the two match.
    """

    def __init__(self, source: AudioSource, engine: Recogniser, settings: Settings, sinks: Sequence[Sink] = (),
                 *, segmenter: Segmenter | None = None, max_audio_s: float | None = None,
                 clock: Callable[[], float] = time.time, callsigns: Sequence[str] | None = None,
                 session: str | None = None) -> None:
        from ..audio.vad import load_vad
        from ..transcribe.annotate import callsign_prompt

        self.source = source
        self.engine = engine
        self.settings = settings
        self.sinks = list(sinks)
        self.segmenter = segmenter or Segmenter(load_vad(settings.segment.vad), settings.segment, clock=clock,
                                                 speculative=settings.live.speculative)
        self.conversation = Conversation.from_settings(settings)
        self.max_audio_s = max_audio_s
        self.clock = clock
        self.callsigns = list(callsigns) if callsigns else None
        self.session_id = session or session_id(clock())
        self._prompt = callsign_prompt(self.callsigns) if self.callsigns else None
        self.queue = LagQueue(settings.live.queue_size)
        self.summary = LiveSummary()
        self._seg_lock = threading.Lock()
        self._capture_done = threading.Event()
        self._abandon_capture = False
        self._errors: list[BaseException] = []
        self._last_lag_report = 0.0
        self._abort = threading.Event()
        self._signals = 0
        self._early: tuple[tuple[int, int, int], Any] | None = None  # (key, transcript) of a tentative

    # -- control ----------------------------------------------------------------------------
    def stop(self) -> None:
        """End the session: stop the source; the transmission in progress is still transcribed."""
        self.summary.interrupted = True
        self.source.stop()

    def abort(self) -> None:
        """Stop without transcribing what is still queued (a second Ctrl-C)."""
        self.stop()
        self._abort.set()

    def _on_signal(self, signum: int, frame: Any) -> None:
        self._signals += 1
        if self._signals == 1:
            log.warning("stopping: finishing the transmission in progress and the queue (Ctrl-C again to quit now)")
            self.stop()
        else:
            self.abort()

    @contextlib.contextmanager
    def _signal_handlers(self, enabled: bool) -> Iterator[None]:
        if not enabled or threading.current_thread() is not threading.main_thread():
            yield
            return
        previous = {sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    # -- threads ------------------------------------------------------------------------------
    def _capture(self) -> None:
        limit = None if self.max_audio_s is None else int(self.max_audio_s * SAMPLE_RATE)
        speech_open = getattr(self.engine, "speech_open", None)
        try:
            for chunk in self.source.chunks():
                with self._seg_lock:
                    if self._abandon_capture:
                        return
                    done = self.segmenter.feed(chunk)
                    tentative = self.segmenter.take_tentative()
                    open_now = self.segmenter.in_speech
                if speech_open is not None:
                    speech_open(self, open_now)  # a shared engine (serve) keeps itself free for it
                for t in done:
                    self._enqueue(t)
                if tentative is not None:
                    self.queue.put(tentative)
                if limit is not None and self.source.position >= limit:
                    break
        except BaseException as exc:  # re-raised by run() in the calling thread
            self._errors.append(exc)
        finally:
            with self._seg_lock:
                if not self._abandon_capture:
                    for t in self.segmenter.flush():
                        self._enqueue(t)
                    self._abandon_capture = True
            if speech_open is not None:
                speech_open(self, False)
            self._capture_done.set()

    def _enqueue(self, transmission: Transmission) -> None:
        self.queue.put(transmission)
        if self.queue.overflowing:
            now = time.monotonic()
            if now - self._last_lag_report >= _LAG_REPORT_INTERVAL_S:
                self._last_lag_report = now
                log.warning(
                    "recogniser is %d transmissions / %.1f s of audio behind (queue_size %d); nothing is dropped, "
                    "they will be transcribed late. A smaller model or --engine ct2 keeps up better.",
                    self.queue.behind, self.queue.pending_audio_s(), self.queue.maxsize,
                )

    def _recognise(self) -> None:
        try:
            while True:
                transmission = self.queue.get()
                if transmission is None:
                    return
                if self._abort.is_set():
                    self.summary.untranscribed += int(not transmission.tentative) + len(self.queue.drain())
                    continue
                if transmission.tentative:
                    self._speculate(transmission)
                else:
                    self._handle(transmission)
        except BaseException as exc:  # re-raised by run()
            self._errors.append(exc)
            self.source.stop()
            self.summary.untranscribed += len(self.queue.drain())

    def _speculate(self, t: Transmission) -> None:
        """Decode a tentative transmission early, unless something newer is already waiting
        (its confirmation, or a later tentative: decoding this one would only delay that)."""
        if not self.queue.empty():
            return
        if self._early is not None:  # superseded before it was used: speech resumed
            self._waste(self._early[1])
        self._early = (t.key, self.engine.transcribe(t.audio, prompt=self._prompt))

    def _waste(self, result: Any) -> None:
        self.summary.speculative_wasted += 1
        self.summary.wasted_decode_s += float(result.latency_s)

    def _handle(self, t: Transmission) -> None:
        began = self.clock()
        early, self._early = self._early, None
        if early is not None and early[0] == t.key:
            result = early[1]
            self.summary.speculative_hits += 1
        else:
            if early is not None:
                self._waste(early[1])
            result = self.engine.transcribe(t.audio, prompt=self._prompt)
        ready = self.clock()
        facts = annotate(result.text, self.callsigns)
        turn = self._converse(facts, t)
        record = LiveRecord(
            index=t.index, started_at=_iso(t.wall_start), wall_start=t.wall_start,
            stream_start_s=t.start_s, stream_end_s=t.end_s, duration_s=t.duration_s, text=facts.text,
            avg_logprob=float(result.avg_logprob), no_speech_prob=float(result.no_speech_prob),
            compression_ratio=float(result.compression_ratio), low_confidence=bool(result.low_confidence),
            reasons=list(getattr(result, "reasons", []) or []), callsign=facts.callsign, commands=facts.commands,
            latency_s=max(0.0, ready - t.end_captured_wall), decode_s=float(result.latency_s),
            wait_s=max(0.0, began - t.closed_wall), behind=self.queue.behind, end_reason=t.reason,
            source=self.source.description, snapped_from=facts.snapped_from, session=self.session_id, **turn,
        )
        s = self.summary
        s.transmissions += 1
        s.speech_s += t.duration_s
        s.low_confidence += int(record.low_confidence)
        s.latencies_s.append(record.latency_s)
        s.decode_s.append(record.decode_s)
        s.max_behind = max(s.max_behind, record.behind)
        s.max_wait_s = max(s.max_wait_s, record.wait_s)
        for sink in self.sinks:
            sink.write(record, t)

    def _converse(self, facts: Annotation, t: Transmission) -> dict[str, Any]:
        """Role, exchange and readback check of the transmission (phraseology.conversation), on
        the annotate step's text and parse: a callsign snapped to the known list joins its exchange."""
        try:
            entry = self.conversation.add(facts.text, start_s=t.start_s, end_s=t.end_s, index=t.index,
                                          parsed=facts.parsed)
        except Exception as exc:  # a bug here must not stop a live session; the transcript still goes out
            log.warning("conversation tracking failed on %r: %s", facts.text, exc)
            return {}
        self.summary.readbacks += int(entry.readback is not None)
        self.summary.readback_mismatches += int(entry.readback_mismatch)
        return entry.as_dict()

    # -- main -----------------------------------------------------------------------------------
    def run(self, *, handle_signals: bool = True, capture_grace_s: float = 3.0) -> LiveSummary:
        """Run until the source ends or :meth:`stop` is called; return the summary.

        Args:
            handle_signals: Install SIGINT/SIGTERM handlers (main thread only) that stop the
                session cleanly; a second signal abandons the queue.
            capture_grace_s: After a stop, how long the capture thread may take to notice
                (a read blocked on a silent pipe) before the in-progress transmission is
                flushed without it.

        Raises:
            AtcWhisperError: a source or engine error, after outputs were closed.
        """
        started = time.monotonic()
        capture = threading.Thread(target=self._capture, name="atc-live-capture", daemon=True)
        recogniser = threading.Thread(target=self._recognise, name="atc-live-recogniser", daemon=True)
        with self._signal_handlers(handle_signals):
            recogniser.start()
            capture.start()
            try:
                # Waiting in short slices keeps the main thread responsive to signals.
                while not self._capture_done.wait(0.1):
                    if self.source.stopped and not self._abandon_capture:
                        deadline = time.monotonic() + capture_grace_s
                        while not self._capture_done.wait(0.1) and time.monotonic() < deadline:
                            pass
                        if not self._capture_done.is_set():
                            with self._seg_lock:
                                if not self._abandon_capture:
                                    log.warning("the source did not stop in %.0f s; flushing without it", capture_grace_s)
                                    for t in self.segmenter.flush():
                                        self.queue.put(t)
                                    self._abandon_capture = True
                            break
                self.queue.close()
                while recogniser.is_alive():
                    recogniser.join(0.1)
            finally:
                self.queue.close()
                self.source.close()
                self._close_sinks()
        s = self.summary
        if self._early is not None:  # the stream ended during a pause that was not confirmed
            self._waste(self._early[1])
            self._early = None
        s.unanswered = len(self.conversation.finish())
        s.audio_s = self.source.position / SAMPLE_RATE
        s.ignored_bursts = self.segmenter.ignored_bursts
        s.breaks = self.source.breaks
        s.wall_s = time.monotonic() - started
        if self._errors:
            exc = self._errors[0]
            s.error = str(exc)
            if isinstance(exc, (AtcWhisperError, KeyboardInterrupt)):
                raise exc
            raise AtcWhisperError(f"live transcription stopped: {type(exc).__name__}: {exc}") from exc
        return s

    def _close_sinks(self) -> None:
        for sink in self.sinks:
            try:
                sink.close()
            except Exception as exc:  # close every sink even if one fails
                log.error("closing %s failed: %s", type(sink).__name__, exc)


def live_decode_settings(settings: Settings) -> Settings:
    """The settings a live recogniser decodes with: ``[decode]`` adjusted for latency.

    Retrying merely unlikely output at higher temperatures tripled the decode time of radio
    transmissions while rarely changing the text, so live decoding retries only runaway output
    unless ``live.fallback_on_low_logprob`` asks for the full rule. Unlikely text is still flagged.
    """
    return settings.replace(decode={"fallback_on_low_logprob": settings.live.fallback_on_low_logprob})
