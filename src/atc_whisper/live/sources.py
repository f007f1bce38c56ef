"""Live audio sources: sound card, audio file, raw PCM on stdin, network stream.

Every source yields :class:`Chunk` objects - float32 mono 16 kHz samples numbered by their
position in the stream - so the segmenter and everything after it never know where the
audio came from. Sources open (and fail, with a :class:`LiveSourceError` that names the
fix) in :meth:`AudioSource.open`, before any model is loaded; :meth:`AudioSource.stop` may
be called from another thread (the Ctrl-C handler) and ends the chunk stream promptly.

* :class:`DeviceSource` - a PortAudio input device through ``sounddevice``.
* :class:`FileSource` - any audio file, decoded block by block by the same decoder as file
  transcription (:func:`atc_whisper.audio.io.iter_audio`), so both hear the same samples;
  ``realtime=True`` paces it at wall-clock speed, as if it were a receiver.
* :class:`PcmSource` - raw PCM (s16le, s32le, f32le, u8) from a pipe, e.g. ``rtl_fm``.
* :class:`StreamSource` - an HTTP/Icecast MP3/AAC stream (LiveATC style) through PyAV
  (:func:`atc_whisper.audio.io.decode_container`), reconnecting with exponential backoff when
  it drops or stalls.

Every resampling is soxr's, through :class:`atc_whisper.audio.io.Resampler`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from ..audio.io import SAMPLE_RATE, Resampler, decode_container, iter_audio
from ..audio.segment import Chunk
from ..errors import AudioError, LiveSourceError
from ..log import get_logger

CHUNK_SAMPLES = 512  # 32 ms: one Silero frame, so a chunk is scored as soon as it arrives
_PROVE_SAMPLES = SAMPLE_RATE // 2  # a new stream must decode 0.5 s of audio before it is trusted
PCM_FORMATS: dict[str, tuple[str, float, float]] = {
    # name: (numpy dtype, offset, scale) so that float = (raw - offset) / scale
    "s16le": ("<i2", 0.0, 32768.0),
    "s32le": ("<i4", 0.0, 2147483648.0),
    "f32le": ("<f4", 0.0, 1.0),
    "u8": ("u1", 128.0, 128.0),
}

log = get_logger(__name__)


class _Break:
    """Marker yielded by a source's block generator where the stream dropped."""


BREAK = _Break()


class AudioSource:
    """Base class: re-chunks a source's blocks into fixed-size, numbered :class:`Chunk` objects.

    Subclasses implement :meth:`_blocks` (float32 mono 16 kHz arrays of any length, or
    :data:`BREAK`) and may override :meth:`open` and :meth:`close`.
    """

    #: Whether the source delivers audio at the pace it is spoken (latency is meaningful).
    realtime: bool = True

    def __init__(self, description: str, chunk_samples: int = CHUNK_SAMPLES) -> None:
        self.description = description
        self.chunk_samples = chunk_samples
        self.position = 0
        self.breaks = 0
        self._stop = threading.Event()

    def open(self) -> None:
        """Check the source can deliver audio (raise :class:`LiveSourceError` otherwise)."""

    def close(self) -> None:
        """Release the device, file or connection. Safe to call twice."""

    def stop(self) -> None:
        """Ask :meth:`chunks` to end soon; callable from any thread or a signal handler."""
        self._stop.set()

    @property
    def stopped(self) -> bool:
        return self._stop.is_set()

    def _pace(self, end_sample: int) -> None:
        """Hook for sources replayed at wall-clock speed."""

    def _blocks(self) -> Iterator[np.ndarray | _Break]:
        """Yield float32 mono 16 kHz blocks, or :data:`BREAK` where the stream dropped."""
        raise NotImplementedError

    def chunks(self) -> Iterator[Chunk]:
        """The stream as chunks of ``chunk_samples`` (the last one may be shorter)."""
        pending: list[np.ndarray] = []
        buffered = 0
        broke = False

        def take(n: int) -> np.ndarray:
            nonlocal buffered
            joined = np.concatenate(pending) if len(pending) > 1 else pending[0]
            pending.clear()
            if n < len(joined):
                pending.append(joined[n:])
            buffered = len(joined) - n
            return joined[:n]

        for block in self._blocks():
            if isinstance(block, _Break):
                if buffered:  # received before the drop: still part of the stream
                    yield self._chunk(take(buffered), broke)
                    broke = False
                broke = True
                continue
            if len(block) == 0:
                continue
            pending.append(np.asarray(block, dtype=np.float32).reshape(-1))
            buffered += len(pending[-1])
            while buffered >= self.chunk_samples and not self.stopped:
                yield self._chunk(take(self.chunk_samples), broke)
                broke = False
            if self.stopped:  # promptly, even inside a long decoded block
                break
        if buffered:  # after a stop, what was decoded ahead of the last chunk is not delivered
            yield self._chunk(take(min(buffered, self.chunk_samples)), broke)

    def _chunk(self, audio: np.ndarray, discontinuity: bool) -> Chunk:
        self._pace(self.position + len(audio))
        chunk = Chunk(audio, self.position, time.time(), discontinuity)
        self.position += len(audio)
        return chunk

    def __enter__(self) -> AudioSource:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# -- PyAV decoding, shared by files and network streams ----------------------------------------


def _import_av() -> Any:
    try:
        import av
    except ImportError:
        raise LiveSourceError("decoding files and network streams needs PyAV: pip install av") from None
    return av


def _decode(container: Any) -> Iterator[np.ndarray]:
    """The container's audio as float32 mono 16 kHz blocks (:func:`decode_container`)."""
    try:
        yield from decode_container(container)
    except AudioError as exc:
        raise LiveSourceError(str(exc)) from None


class FileSource(AudioSource):
    """An audio file, decoded incrementally; paced at real time when ``realtime`` is true.

    Args:
        path: Any file :func:`~atc_whisper.audio.io.load_audio` reads (wav, flac, mp3, ogg, m4a ...).
        realtime: Deliver samples no faster than they would be spoken (a replayed
            recording behaves like a receiver); otherwise as fast as decoding allows.
    """

    def __init__(self, path: str | Path, *, realtime: bool = False, chunk_samples: int = CHUNK_SAMPLES) -> None:
        super().__init__(f"file {path}", chunk_samples)
        self.path = Path(path)
        self.realtime = realtime
        self._t0: float | None = None
        self._blocks_iter: Iterator[np.ndarray] | None = None

    def open(self) -> None:
        """Start decoding: a missing, unreadable or undecodable file fails here, naming it."""
        if not self.path.exists():
            raise LiveSourceError(f"audio file {self.path} does not exist; check the path.")
        if self.path.is_dir():
            raise LiveSourceError(f"{self.path} is a folder; give an audio file.")
        blocks = iter_audio(self.path)
        try:
            first = next(blocks, None)
        except AudioError as exc:
            raise LiveSourceError(str(exc)) from None
        self._blocks_iter = _chain([] if first is None else [first], blocks)

    def close(self) -> None:
        self._blocks_iter = None

    def _pace(self, end_sample: int) -> None:
        if not self.realtime:
            return
        if self._t0 is None:
            self._t0 = time.monotonic()
        wait = self._t0 + end_sample / SAMPLE_RATE - time.monotonic()
        if wait > 0:
            self._stop.wait(wait)

    def _blocks(self) -> Iterator[np.ndarray | _Break]:
        if self._blocks_iter is None:
            self.open()
        assert self._blocks_iter is not None
        try:
            yield from self._blocks_iter
        except AudioError as exc:
            raise LiveSourceError(f"decoding {self.path} failed at {self.position / SAMPLE_RATE:.1f} s: {exc}") from None


class PcmSource(AudioSource):
    """Raw interleaved PCM from a binary stream (stdin by default), resampled to 16 kHz.

    This is what SDR tools write: ``rtl_fm -f 118.1M -M am -s 24k - | atc-whisper live
    --stdin --rate 24000 --format s16le``.

    Args:
        stream: Binary file object to read; ``None`` reads standard input.
        rate: Sample rate of the input, Hz.
        fmt: Sample format: s16le, s32le, f32le or u8.
        channels: Interleaved channels; they are averaged to mono.
    """

    def __init__(self, stream: BinaryIO | None = None, *, rate: int = SAMPLE_RATE, fmt: str = "s16le",
                 channels: int = 1, chunk_samples: int = CHUNK_SAMPLES) -> None:
        super().__init__(f"stdin ({fmt}, {rate} Hz, {channels} ch)", chunk_samples)
        if fmt not in PCM_FORMATS:
            raise LiveSourceError(f"unknown PCM format {fmt!r}; valid: {', '.join(PCM_FORMATS)}.")
        if rate < 4000 or rate > 384_000:
            raise LiveSourceError(f"input sample rate {rate} Hz is out of range (4000-384000); pass the rate the tool writes with --rate.")
        if channels < 1 or channels > 32:
            raise LiveSourceError(f"--channels {channels} is out of range (1-32).")
        self.stream = stream
        self.rate = rate
        self.fmt = fmt
        self.channels = channels

    def _blocks(self) -> Iterator[np.ndarray | _Break]:
        import sys

        stream = self.stream if self.stream is not None else sys.stdin.buffer
        dtype, offset, scale = PCM_FORMATS[self.fmt]
        frame_bytes = np.dtype(dtype).itemsize * self.channels
        # Read about 32 ms at a time: small enough to keep latency low, large enough to be cheap.
        want = max(frame_bytes, int(self.rate * 0.032) * frame_bytes)
        resample = Resampler(self.rate)
        rest = b""
        read = getattr(stream, "read1", stream.read)
        while not self.stopped:
            data = read(want)
            if not data:
                break
            data = rest + data
            usable = len(data) - len(data) % frame_bytes
            rest = data[usable:]
            if not usable:
                continue
            raw = np.frombuffer(data[:usable], dtype=dtype).astype(np.float32)
            audio = ((raw - offset) / scale).reshape(-1, self.channels).mean(axis=1, dtype=np.float32)
            yield resample(audio)
        yield resample(np.zeros(0, dtype=np.float32), last=True)


class StreamSource(AudioSource):
    """A network audio stream (HTTP/Icecast MP3 or AAC, as LiveATC serves), via PyAV.

    At start, an unreachable URL or an undecodable stream raises :class:`LiveSourceError`
    after ``startup_attempts`` tries. Once audio has flowed, a drop (connection closed,
    error) or a stall (no data for ``read_timeout_s``) yields :data:`BREAK` - the segmenter
    flushes the transmission that was cut - and the source reconnects with exponential
    backoff (0.5 s, 1 s, 2 s ... up to ``reconnect_max_s``). A live stream restarts at "now"
    on reconnection, so audio received before the drop is never delivered twice; audio sent
    while disconnected is lost and counted in :attr:`breaks`.

    Args:
        url: http(s)://, icecast:// or anything else FFmpeg opens.
        reconnect_max_s: Longest wait between reconnection attempts.
        reconnect_attempts: Give up (raise) after this many failed attempts in a row; 0 never gives up.
        read_timeout_s: Seconds without data after which the stream counts as stalled.
        startup_attempts: Connection attempts before an error is raised at start.
    """

    def __init__(self, url: str, *, reconnect_max_s: float = 30.0, reconnect_attempts: int = 0,
                 read_timeout_s: float = 10.0, startup_attempts: int = 2, chunk_samples: int = CHUNK_SAMPLES) -> None:
        super().__init__(f"stream {url}", chunk_samples)
        self.url = url
        self.reconnect_max_s = reconnect_max_s
        self.reconnect_attempts = reconnect_attempts
        self.read_timeout_s = read_timeout_s
        self.startup_attempts = max(1, startup_attempts)
        self._container: Any = None
        self._first: list[np.ndarray] = []
        self.reconnects = 0

    def _connect(self) -> tuple[Any, list[np.ndarray], Iterator[np.ndarray]]:
        """Open the URL and decode until the first audio arrives (proves the stream decodes)."""
        av = _import_av()
        container = av.open(
            self.url, timeout=(self.read_timeout_s, self.read_timeout_s),
            # Probe little: FFmpeg's default reads ~1.5 s of a live MP3 before the first frame.
            container_options={"probesize": "32768", "analyzeduration": "500000"},
        )
        first: list[np.ndarray] = []
        try:
            blocks = _decode(container)
            # Decode a little before trusting the stream: FFmpeg's probe can take a web page
            # for AMR or MP3, and only the decoder then notices it is not audio.
            for block in blocks:
                first.append(block)
                if sum(len(b) for b in first) >= _PROVE_SAMPLES:
                    break
        except BaseException:
            container.close()
            raise
        if not first:
            container.close()
            raise LiveSourceError("it ended before any audio arrived")
        return container, first, blocks

    def open(self) -> None:
        av = _import_av()
        delay = 0.5
        for attempt in range(1, self.startup_attempts + 1):
            try:
                self._container, self._first, self._iter = self._connect()
                return
            except (av.error.InvalidDataError, av.error.DecoderNotFoundError, av.error.DemuxerNotFoundError) as exc:
                raise LiveSourceError(
                    f"stream {self.url} is not decodable audio ({exc}); check that the URL is an MP3/AAC/Ogg stream, not a web page."
                ) from None
            except LiveSourceError as exc:
                raise LiveSourceError(f"stream {self.url} cannot be used: {exc}.") from None
            except (av.error.FFmpegError, OSError) as exc:
                if attempt == self.startup_attempts:
                    raise LiveSourceError(
                        f"cannot connect to stream {self.url} ({exc}) after {attempt} attempts; "
                        "check the URL and your network."
                    ) from None
                log.warning("stream %s: connection failed (%s); retrying in %.1f s", self.url, exc, delay)
                if self._stop.wait(delay):
                    raise LiveSourceError(f"stopped while connecting to {self.url}.") from None
                delay *= 2

    def close(self) -> None:
        if self._container is not None:
            try:
                self._container.close()
            finally:
                self._container = None

    def _blocks(self) -> Iterator[np.ndarray | _Break]:
        av = _import_av()
        if self._container is None:
            self.open()
        blocks: Iterator[np.ndarray] = iter(self._iter)
        yield from self._first
        self._first = []
        while not self.stopped:
            try:
                for block in blocks:
                    yield block
                    if self.stopped:
                        return
                log.warning("stream %s ended; reconnecting", self.url)
            except (av.error.FFmpegError, OSError, LiveSourceError) as exc:
                log.warning("stream %s dropped (%s); reconnecting", self.url, exc)
            self.close()
            if self.stopped:
                return
            yield BREAK
            self.breaks += 1
            blocks = self._reconnect(av)

    def _reconnect(self, av: Any) -> Iterator[np.ndarray]:
        delay = 0.5
        failures = 0
        while True:
            if self._stop.wait(delay):
                return iter(())
            try:
                self._container, first, rest = self._connect()
                self.reconnects += 1
                log.info("stream %s: reconnected after %d failed attempt(s)", self.url, failures)
                return _chain(first, rest)
            except (av.error.FFmpegError, OSError, LiveSourceError) as exc:
                failures += 1
                if self.reconnect_attempts and failures >= self.reconnect_attempts:
                    raise LiveSourceError(
                        f"stream {self.url} lost: {failures} reconnection attempts failed (last: {exc})."
                    ) from None
                delay = min(delay * 2, self.reconnect_max_s)
                log.warning("stream %s: reconnection failed (%s); next try in %.1f s", self.url, exc, delay)


def _chain(first: list[np.ndarray], rest: Iterator[np.ndarray]) -> Iterator[np.ndarray]:
    yield from first
    yield from rest


# -- sound devices ------------------------------------------------------------------------------


def import_sounddevice() -> Any:
    """The ``sounddevice`` module, or a :class:`LiveSourceError` saying how to get PortAudio."""
    try:
        import sounddevice
    except ImportError:
        raise LiveSourceError("microphone input needs the sounddevice package: pip install sounddevice") from None
    except OSError:
        raise LiveSourceError(
            "microphone input needs the PortAudio library, which was not found: install libportaudio2 "
            "(Debian/Ubuntu: sudo apt install libportaudio2; macOS: brew install portaudio), "
            "or use --file, --stdin or --url instead."
        ) from None
    return sounddevice


def list_input_devices(backend: Any = None) -> list[dict[str, Any]]:
    """Input-capable devices: ``index``, ``name``, ``channels``, ``default_rate``, ``default``."""
    sd = backend if backend is not None else import_sounddevice()
    try:
        devices = list(sd.query_devices())
        default_in = sd.default.device[0] if isinstance(sd.default.device, (list, tuple)) else sd.default.device
    except Exception as exc:  # PortAudio raises its own types
        raise LiveSourceError(f"cannot list audio devices: {exc}") from None
    return [
        {"index": i, "name": d["name"], "channels": int(d["max_input_channels"]),
         "default_rate": float(d["default_samplerate"]), "default": i == default_in}
        for i, d in enumerate(devices) if int(d["max_input_channels"]) > 0
    ]


def _describe(devices: list[dict[str, Any]]) -> str:
    if not devices:
        return "there are no input devices"
    return "input devices: " + "; ".join(f"[{d['index']}] {d['name']}" for d in devices)


def find_input_device(device: str | int | None, devices: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Find ``device`` (index, exact name or unique part of a name) among ``devices``.

    Returns:
        The device, or ``None`` for the system default input.

    Raises:
        LiveSourceError: no such device, or the name matches several (both list the devices).
    """
    if not devices:
        wanted = f"audio input device {device!r} not found: " if device not in (None, "") else ""
        raise LiveSourceError(f"{wanted}no audio input device found on this machine; plug in a microphone or "
                              "receiver, or use --file, --stdin or --url.")
    if device is None or device == "":
        return None
    text = str(device).strip()
    if text.isdigit():
        found = [d for d in devices if d["index"] == int(text)]
    else:
        found = [d for d in devices if d["name"] == text] or [d for d in devices if text.lower() in d["name"].lower()]
    if len(found) == 1:
        return found[0]
    what = "matches several devices" if found else "is not an input device"
    raise LiveSourceError(f"audio device {text!r} {what}; {_describe(found or devices)}. Pass --device NAME or INDEX (see --list-devices).")


class DeviceSource(AudioSource):
    """A PortAudio input device (microphone, receiver on a sound card) through ``sounddevice``.

    PortAudio calls back from its own thread; the callback only copies the block into a
    queue, so capture never waits on anything else. Devices that cannot record at 16 kHz
    are opened at their own rate and resampled.

    Args:
        device: Index, exact name or unique part of a name; ``None`` is the system default.
        backend: The ``sounddevice`` module (default) or an object with the same
            ``query_devices``, ``default`` and ``InputStream`` (used by tests without audio hardware).
    """

    def __init__(self, device: str | int | None = None, *, backend: Any = None, chunk_samples: int = CHUNK_SAMPLES) -> None:
        super().__init__(f"device {device if device is not None else '(default)'}", chunk_samples)
        self.device = device
        self._backend = backend
        self._stream: Any = None
        self._rate = SAMPLE_RATE
        self.overflows = 0
        import queue

        self._queue: queue.Queue[np.ndarray] = queue.Queue()

    def open(self) -> None:
        try:
            sd = self._backend if self._backend is not None else import_sounddevice()
        except LiveSourceError as exc:
            name = f"audio device {self.device!r}" if self.device is not None else "the default audio input"
            raise LiveSourceError(f"cannot open {name}: {exc}") from None
        self._backend = sd
        chosen = find_input_device(self.device, list_input_devices(sd))
        index = None if chosen is None else chosen["index"]
        if chosen is not None:
            self.description = f"device [{index}] {chosen['name']}"
        errors = []
        rates = [SAMPLE_RATE] + ([int(chosen["default_rate"])] if chosen and int(chosen["default_rate"]) != SAMPLE_RATE else [])
        for rate in rates:
            try:
                self._stream = sd.InputStream(
                    device=index, channels=1, samplerate=rate, dtype="float32",
                    blocksize=int(rate * CHUNK_SAMPLES / SAMPLE_RATE), callback=self._callback,
                )
                self._rate = rate
                break
            except Exception as exc:  # PortAudioError and friends
                errors.append(f"{rate} Hz: {exc}")
        if self._stream is None:
            raise LiveSourceError(f"cannot open {self.description} for recording ({'; '.join(errors)}).")
        self._stream.start()

    def _callback(self, indata: np.ndarray, frames: int, time_info: Any, status: Any) -> None:
        if status:
            self.overflows += 1  # PortAudio lost samples (input overflow): the system was too busy
        self._queue.put(np.array(indata[:, 0] if indata.ndim == 2 else indata, dtype=np.float32))

    def close(self) -> None:
        if self._stream is not None:
            try:
                self._stream.stop()
                self._stream.close()
            finally:
                self._stream = None
        if self.overflows:
            log.warning("%s: %d input overflow(s); some audio was lost by the sound system.", self.description, self.overflows)

    def _blocks(self) -> Iterator[np.ndarray | _Break]:
        import queue

        if self._stream is None:
            self.open()
        resample = Resampler(self._rate)
        while not self.stopped:
            try:
                block = self._queue.get(timeout=0.1)
            except queue.Empty:
                if self._stream is not None and not getattr(self._stream, "active", True):
                    break  # the device went away or the stream finished
                continue
            yield resample(block)
