"""Segmentation of radio audio into transmissions, streaming or over a whole recording.

Whisper transcribes whole utterances; a radio frequency is a stream of short transmissions
separated by silence or squelched static. :class:`Segmenter` consumes audio chunks as they
arrive, asks a voice detector (:mod:`atc_whisper.audio.vad`) for one speech probability per
32 ms frame, and emits a :class:`Transmission` as soon as one is over. Live transcription
feeds it a source's chunks; :func:`segment_array` feeds it a recording already in memory,
through the same code, so a file and its live replay are cut the same way:

* speech starts at the first frame whose probability reaches ``threshold``;
* it ends once ``min_silence_ms`` of frames stay below ``threshold - 0.15`` (the hysteresis
  keeps one weak syllable from closing a transmission);
* ``speech_pad_ms`` of audio is kept before and after (a ring buffer holds the pre-roll);
* bursts shorter than ``min_speech_ms`` (squelch clicks, key-ups) are dropped;
* a transmission reaching ``max_segment_s`` is cut at its quietest moment in the last third
  (the 96 ms of lowest energy: a breath between words rather than the middle of one) and
  continues in the next one.

The settings are ``[segment]`` (:class:`~atc_whisper.config.SegmentSettings`), shared by
``live`` and ``transcribe``.

Speculation (``live.speculative``): once a pause has lasted ``speech_pad_ms`` the padded
segment that would be emitted if the pause turns out to be the end is already complete, so
:meth:`Segmenter.take_tentative` offers it then, ``min_silence_ms - speech_pad_ms`` before the
pause is confirmed. The recogniser may decode it early; when the transmission is confirmed
with the same samples the early transcript is used, and when speech resumes it is discarded.

Positions are stream samples counted by the source, so segment times are sample-accurate
whatever the wall clock did. A chunk flagged ``discontinuity`` (a network stream that
dropped and reconnected) first flushes the transmission in progress, as it was cut.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from ..config import SegmentSettings
from .io import SAMPLE_RATE
from .vad import FRAME_SAMPLES, VoiceDetector

_HYSTERESIS = 0.15  # Silero's recommended gap between the start and the end threshold
#: Part of a transmission (from its end) searched for the quietest cut when it reaches max_segment_s.
CUT_SEARCH_FRACTION = 1 / 3
#: Frames averaged when looking for the quietest cut: 3 x 32 ms, longer than a stop consonant's closure.
_CUT_SMOOTH_FRAMES = 3


@dataclass
class Chunk:
    """A block of audio from a source.

    Attributes:
        audio: float32 mono samples at 16 kHz.
        start_sample: Stream position of the first sample (samples received so far).
        captured_wall: Wall-clock time (Unix seconds) at which the last sample was received.
        discontinuity: The stream broke before this chunk (a network stream reconnected);
            ``audio`` may be empty for a chunk that only signals the break.
    """

    audio: np.ndarray
    start_sample: int
    captured_wall: float
    discontinuity: bool = False


@dataclass
class Transmission:
    """One transmission cut from the stream.

    Attributes:
        index: 0-based order of the transmission in this session.
        start_s: Stream time of the first sample (padding included), seconds.
        end_s: Stream time just after the last sample, seconds.
        wall_start: Wall-clock time (Unix seconds) at which the first sample was received.
        audio: The samples, float32 mono 16 kHz.
        end_captured_wall: Wall-clock time at which the last sample was received.
        closed_wall: Wall-clock time at which the segmenter closed it.
        reason: Why it ended: "silence", "max_length", "flush" (end of input / interrupt)
            or "break" (the stream dropped).
        speech_s: Duration of detected speech, without padding, seconds.
        tentative: Offered early by :meth:`Segmenter.take_tentative`, not yet confirmed.
        start_sample: Stream sample of the first sample (the key that matches a tentative
            transmission with the confirmed one).
    """

    index: int
    start_s: float
    end_s: float
    wall_start: float
    audio: np.ndarray = field(repr=False)
    end_captured_wall: float
    closed_wall: float
    reason: str
    speech_s: float
    tentative: bool = False
    start_sample: int = 0

    @property
    def key(self) -> tuple[int, int, int]:
        """(index, first sample, sample count): equal for a tentative and its confirmation."""
        return (self.index, self.start_sample, len(self.audio))

    @property
    def duration_s(self) -> float:
        """Length of the audio, seconds."""
        return len(self.audio) / SAMPLE_RATE


@dataclass
class _Frame:
    start: int  # stream sample of the first sample
    audio: np.ndarray
    wall: float  # when the frame's last sample was received

    @property
    def end(self) -> int:
        return self.start + len(self.audio)


class Segmenter:
    """Turns a chunk stream into :class:`Transmission` objects (see the module docstring).

    Args:
        vad: The voice detector (its frames must be 512 samples at 16 kHz).
        settings: The ``[segment]`` settings (threshold, min_silence_ms, speech_pad_ms,
            min_speech_ms, max_segment_s).
        clock: Returns "now" as Unix seconds; stamps ``closed_wall`` (tests may pin it).
        speculative: Offer tentative transmissions (``live.speculative``; see the module docstring).
    """

    def __init__(self, vad: VoiceDetector, settings: SegmentSettings, clock: object = None,
                 *, speculative: bool = False) -> None:
        import time

        self.vad = vad
        self.frame = vad.frame_samples
        self.threshold = settings.threshold
        self.neg_threshold = max(settings.threshold - _HYSTERESIS, 0.01)
        ms = SAMPLE_RATE // 1000
        self.min_silence = settings.min_silence_ms * ms
        self.pad = settings.speech_pad_ms * ms
        self.min_speech = settings.min_speech_ms * ms
        self.max_segment = int(settings.max_segment_s * SAMPLE_RATE)
        self._clock = clock if callable(clock) else time.time
        self._frames: deque[_Frame] = deque()
        self._partial = np.zeros(0, dtype=np.float32)
        self._partial_start = 0
        self._partial_wall = 0.0
        self.position = 0  # stream sample after the last frame seen
        self._triggered = False
        self._speech_start = 0
        self._silence_start: int | None = None
        self._prev_end = 0  # segments never overlap: a pre-roll stops at the previous end
        # Closed transmissions waiting for their post-padding audio: (start, speech start,
        # speech end, end, reason) in stream samples.
        self._waiting: list[tuple[int, int, int, int, str]] = []
        self.index = 0
        self.ignored_bursts = 0  # bursts shorter than min_speech_ms
        self.speech_frames = 0
        self.speculative = speculative
        self._tentative: Transmission | None = None
        self._offered_for: int | None = None  # the silence start a tentative was offered for

    # -- public ---------------------------------------------------------------------------
    def feed(self, chunk: Chunk) -> list[Transmission]:
        """Process one chunk; return the transmissions it completed (usually none)."""
        out: list[Transmission] = []
        if chunk.discontinuity:
            out += self.flush(reason="break")
            self.vad.reset()
            self._frames.clear()
            self._partial = np.zeros(0, dtype=np.float32)
        if len(chunk.audio) == 0:
            return out
        if len(self._partial) == 0:
            self._partial_start = chunk.start_sample
        self._partial = np.concatenate([self._partial, chunk.audio.astype(np.float32, copy=False)])
        self._partial_wall = chunk.captured_wall
        n_whole = len(self._partial) // self.frame
        for i in range(n_whole):
            frame = self._partial[i * self.frame:(i + 1) * self.frame]
            out += self._process(_Frame(self._partial_start + i * self.frame, frame, chunk.captured_wall))
        if n_whole:
            self._partial = self._partial[n_whole * self.frame:].copy()
            self._partial_start += n_whole * self.frame
        return out

    def flush(self, reason: str = "flush") -> list[Transmission]:
        """End of input (or a break): close the transmission in progress and any waiting one."""
        if len(self._partial):
            # The last, incomplete frame still belongs to the transmission; it is kept as
            # audio but not scored (the detector needs whole frames).
            self._frames.append(_Frame(self._partial_start, self._partial, self._partial_wall))
            self.position = self._frames[-1].end
            self._partial = np.zeros(0, dtype=np.float32)
        if self._triggered:
            speech_end = self._silence_start if self._silence_start is not None else self.position
            self._close(speech_end, reason)
        out = [self._emit(*w) for w in self._waiting]
        self._waiting.clear()
        return [t for t in out if t is not None]

    def take_tentative(self) -> Transmission | None:
        """The transmission as it would be if the current pause ends it (once per pause), or None.

        Only offered while ``speculative`` is on, once the pause has lasted ``speech_pad_ms``
        (its padded audio is complete) and before it is confirmed or broken by speech.
        """
        tentative, self._tentative = self._tentative, None
        if (tentative is None or not self._triggered or self._silence_start is None
                or self._offered_for != self._silence_start or tentative.index != self.index):
            return None
        return tentative

    @property
    def in_speech(self) -> bool:
        """Whether a transmission is in progress."""
        return self._triggered

    # -- internals ----------------------------------------------------------------------
    def _process(self, frame: _Frame) -> list[Transmission]:
        self._frames.append(frame)
        self.position = frame.end
        prob = self.vad(frame.audio) if len(frame.audio) == self.frame else 0.0
        if prob >= self.threshold:
            self.speech_frames += 1
            self._silence_start = None
            self._tentative = None
            if not self._triggered:
                self._triggered = True
                self._speech_start = frame.start
        elif self._triggered and prob < self.neg_threshold:
            if self._silence_start is None:
                self._silence_start = frame.start
            if frame.end - self._silence_start >= self.min_silence:
                self._close(self._silence_start, "silence")
            elif (self.speculative and self._offered_for != self._silence_start
                  and frame.end - self._silence_start >= self.pad
                  and self._silence_start - self._speech_start >= self.min_speech):
                self._offered_for = self._silence_start
                end = self._silence_start + self.pad
                self._tentative = self._build(self._segment_start(self._speech_start), self._speech_start,
                                              self._silence_start, end, "silence", self.index, tentative=True)
        if self._triggered and frame.end - self._segment_start(self._speech_start) >= self.max_segment:
            if self._silence_start is not None:
                self._close(self._silence_start, "silence")
            else:
                # Cut at the quietest moment of the last third; the speech goes on in the next
                # transmission from there, without pre-roll.
                start = self._segment_start(self._speech_start)
                cut = self._quietest_cut(start, frame.end)
                self._waiting.append((start, self._speech_start, cut, cut, "max_length"))
                self._prev_end = cut
                self._speech_start = cut
        out = []
        while self._waiting and self._waiting[0][3] <= self.position:
            emitted = self._emit(*self._waiting.pop(0))
            if emitted is not None:
                out.append(emitted)
        self._trim()
        return out

    def _close(self, speech_end: int, reason: str) -> None:
        self._triggered = False
        self._silence_start = None
        if speech_end - self._speech_start < self.min_speech:
            self.ignored_bursts += 1
            return
        end = speech_end + self.pad
        self._waiting.append((self._segment_start(self._speech_start), self._speech_start, speech_end, end, reason))
        self._prev_end = end

    def _quietest_cut(self, start: int, end: int) -> int:
        """Stream sample at the middle of the quietest stretch of the last third of ``start..end``."""
        search_from = start + int((end - start) * (1 - CUT_SEARCH_FRACTION))
        frames = [f for f in self._frames if f.start >= search_from and f.end <= end and len(f.audio)]
        if not frames:
            return end
        energy = np.array([float(np.mean(np.square(f.audio, dtype=np.float64))) for f in frames])
        if len(energy) >= _CUT_SMOOTH_FRAMES:
            energy = np.convolve(energy, np.ones(_CUT_SMOOTH_FRAMES) / _CUT_SMOOTH_FRAMES, mode="same")
        # The latest of equally quiet frames keeps the transmission long (fewer cuts).
        quietest = frames[len(energy) - 1 - int(np.argmin(energy[::-1]))]
        return quietest.start + len(quietest.audio) // 2

    def _segment_start(self, speech_start: int) -> int:
        """Pre-roll of ``speech_pad_ms``, never into the previous transmission or before the kept audio."""
        floor = self._frames[0].start if self._frames else speech_start
        return max(speech_start - self.pad, self._prev_end, floor)

    def _emit(self, start: int, speech_start: int, speech_end: int, end: int, reason: str) -> Transmission | None:
        transmission = self._build(start, speech_start, speech_end, end, reason, self.index)
        if transmission is not None:
            self.index += 1
        return transmission

    def _build(self, start: int, speech_start: int, speech_end: int, end: int, reason: str, index: int,
               *, tentative: bool = False) -> Transmission | None:
        end = min(end, self.position)
        if end <= start:
            return None
        parts = []
        wall_start = end_wall = None
        for f in self._frames:
            if f.end <= start or f.start >= end:
                continue
            parts.append(f.audio[max(start - f.start, 0):min(end, f.end) - f.start])
            if wall_start is None:
                # Frames arrive whole: the first sample was received (frame length - offset) earlier.
                wall_start = f.wall - (f.end - start) / SAMPLE_RATE
            end_wall = f.wall
        audio = np.concatenate(parts) if parts else np.zeros(0, dtype=np.float32)
        now = self._clock()
        return Transmission(
            index=index,
            start_s=start / SAMPLE_RATE,
            end_s=(start + len(audio)) / SAMPLE_RATE,
            wall_start=wall_start if wall_start is not None else now,
            audio=audio,
            end_captured_wall=end_wall if end_wall is not None else now,
            closed_wall=now,
            reason=reason,
            speech_s=(min(speech_end, end) - speech_start) / SAMPLE_RATE,
            tentative=tentative,
            start_sample=start,
        )

    def _trim(self) -> None:
        """Drop retained frames that no transmission can still need."""
        if self._waiting:
            keep_from = self._waiting[0][0]
        elif self._triggered:
            keep_from = self._segment_start(self._speech_start)
        else:
            keep_from = self.position - self.pad
        while self._frames and self._frames[0].end <= keep_from:
            self._frames.popleft()


def segment_array(
    audio: np.ndarray,
    settings: SegmentSettings,
    *,
    vad: VoiceDetector | None = None,
    chunk_samples: int = FRAME_SAMPLES,
    start_wall: float = 0.0,
    clock: Callable[[], float] | None = None,
) -> list[Transmission]:
    """Cut a whole recording into transmissions by feeding it to a :class:`Segmenter`.

    Args:
        audio: float32 mono 16 kHz samples.
        settings: The ``[segment]`` settings (detector, thresholds, padding, maximum length).
        vad: The voice detector (default: ``settings.vad``, loaded fresh); it scores the whole
            recording from a fresh state (:meth:`~atc_whisper.audio.vad.VoiceDetector.probabilities`).
        chunk_samples: Samples per fed chunk; the result does not depend on it.
        start_wall: Wall-clock time of the first sample: chunks are stamped as if received
            at ``start_wall`` + their stream position (0: stream seconds).
        clock: Stamps ``closed_wall`` (default: the stream time of the last sample fed, so the
            result depends on the audio only).

    Returns:
        The transmissions in order; speculation is off (nothing is offered early).
    """
    from .vad import Replay, load_vad

    samples = np.asarray(audio, dtype=np.float32).reshape(-1)
    detector = vad or load_vad(settings.vad)
    # The whole recording is scored at once (Silero: a block of frames per ONNX call), then the
    # streaming state machine consumes those numbers frame by frame, exactly as live would.
    replay = Replay(detector.probabilities(samples), detector.name)
    fed = [start_wall]
    segmenter = Segmenter(replay, settings, clock=clock or (lambda: fed[0]), speculative=False)
    out: list[Transmission] = []
    for start in range(0, len(samples), chunk_samples):
        block = samples[start:start + chunk_samples]
        fed[0] = start_wall + (start + len(block)) / SAMPLE_RATE
        out += segmenter.feed(Chunk(block, start, fed[0]))
    return out + segmenter.flush()
