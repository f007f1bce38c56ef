"""Voice activity detection: one speech probability per 32 ms frame.

Live transcription cuts a continuous radio feed into transmissions before anything reaches
Whisper; this module supplies the per-frame evidence the segmenter
(:mod:`atc_whisper.audio.segment`) turns into segments. Two detectors share one small
interface (:class:`VoiceDetector`):

* :class:`SileroVAD` - the Silero VAD network, run with ``onnxruntime`` straight from the
  ONNX file shipped inside the ``silero-vad`` PyPI package (no torch, no hub download). It
  tells speech from radio static and hum far better than energy does. A stream is scored
  frame by frame; a recording already in memory (:meth:`SileroVAD.probabilities`) in blocks of
  frames through the package's "sequence" export of the same network, one ONNX call per
  ~16 s instead of one per frame: the same probabilities, bit for bit (a test checks it), at a
  third of the cost.
* :class:`EnergyVAD` - a band-limited energy detector with an adaptive noise floor; used
  when ``[segment] vad = "energy"`` or when Silero cannot be loaded.
"""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from ..errors import ConfigError
from ..log import get_logger
from .io import SAMPLE_RATE  # both detectors work at Whisper's rate

FRAME_SAMPLES = 512  # 32 ms at 16 kHz: the window Silero v5 was trained on
FRAME_S = FRAME_SAMPLES / SAMPLE_RATE
_SILERO_CONTEXT = 64  # Silero v5 prepends the last 64 samples of the previous frame (16 kHz)
#: The streaming export (one frame per call) and the sequence export (a block of frames per call).
SILERO_STREAM_FILE = "silero_vad.onnx"
SILERO_SEQUENCE_FILE = "silero_vad_16k_sequence.onnx"
#: Frames per call of the sequence export: ~16 s of audio, a few MB of input.
SEQUENCE_BLOCK_FRAMES = 512

log = get_logger(__name__)


class VoiceDetector(Protocol):
    """Anything that maps consecutive 512-sample frames to speech probabilities in [0, 1]."""

    name: str
    frame_samples: int

    def __call__(self, frame: np.ndarray) -> float:
        """Speech probability of the next frame (float32 mono, ``frame_samples`` long)."""
        ...

    def reset(self) -> None:
        """Forget the stream's history (after a discontinuity)."""
        ...

    def probabilities(self, audio: np.ndarray) -> np.ndarray:
        """Probabilities of every whole frame of a recording, from a fresh state (as if fed
        frame by frame after :meth:`reset`; the stream's own state is left as it was)."""
        ...


def silero_model_path(filename: str = SILERO_STREAM_FILE) -> Path:
    """An ONNX model bundled with the ``silero-vad`` package (default: the streaming export).

    The package itself is not imported: its ``__init__`` pulls in torch, which live mode
    does not otherwise need.

    Raises:
        ConfigError: when the package or its model file is missing.
    """
    spec = importlib.util.find_spec("silero_vad")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError("the Silero VAD needs the silero-vad package: pip install silero-vad (or set segment.vad = \"energy\").")
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / filename
    if not path.is_file():
        raise ConfigError(f"the silero-vad package has no model file at {path}; reinstall it with pip install --force-reinstall silero-vad.")
    return path


class SileroVAD:
    """Silero VAD v5 through onnxruntime, one 512-sample frame at a time.

    The recurrent state and the 64-sample context carry over between calls, so frames must
    be given in stream order; call :meth:`reset` after a gap in the stream.
    """

    name = "silero"
    frame_samples = FRAME_SAMPLES

    def __init__(self, model_path: Path | None = None) -> None:
        try:
            import onnxruntime  # noqa: F401
        except ImportError:
            raise ConfigError("the Silero VAD needs onnxruntime: pip install onnxruntime (or set segment.vad = \"energy\").") from None
        self._session = _session(model_path or silero_model_path())
        self._sequence: Any = None  # the sequence export, loaded at the first recording (False: none)
        self._sr = np.array(SAMPLE_RATE, dtype=np.int64)
        self.reset()

    def reset(self) -> None:
        """Clear the recurrent state and context."""
        self._state = np.zeros((2, 1, 128), dtype=np.float32)
        self._context = np.zeros((1, _SILERO_CONTEXT), dtype=np.float32)

    def __call__(self, frame: np.ndarray) -> float:
        """Speech probability of one 512-sample frame."""
        x = np.concatenate([self._context, frame.reshape(1, -1).astype(np.float32, copy=False)], axis=1)
        out, self._state = self._session.run(None, {"input": x, "state": self._state, "sr": self._sr})
        self._context = x[:, -_SILERO_CONTEXT:]
        return float(out[0, 0])

    def probabilities(self, audio: np.ndarray) -> np.ndarray:
        """Probabilities of every whole frame of ``audio`` from a fresh state, in blocks of frames.

        Each frame is given the last 64 samples of the one before (zeros for the first), as the
        streaming model keeps them, and the recurrent state runs through the block inside ONNX
        Runtime. Falls back to the frame loop when the package has no sequence export.
        """
        samples = np.asarray(audio, dtype=np.float32).reshape(-1)
        n = len(samples) // FRAME_SAMPLES
        if n == 0:
            return np.zeros(0, dtype=np.float32)
        session = self._sequence_session()
        if session is None:
            saved = (self._state, self._context)
            self.reset()
            try:
                return np.array([self(samples[i * FRAME_SAMPLES:(i + 1) * FRAME_SAMPLES]) for i in range(n)],
                                dtype=np.float32)
            finally:
                self._state, self._context = saved
        frames = samples[: n * FRAME_SAMPLES].reshape(n, FRAME_SAMPLES)
        context = np.zeros((n, _SILERO_CONTEXT), dtype=np.float32)
        context[1:] = frames[:-1, -_SILERO_CONTEXT:]
        rows = np.concatenate([context, frames], axis=1)
        hidden = np.zeros((1, 1, 128), dtype=np.float32)
        cell = np.zeros((1, 1, 128), dtype=np.float32)
        out = []
        for first in range(0, n, SEQUENCE_BLOCK_FRAMES):
            probs, hidden, cell = session.run(
                ["speech_probs", "hn", "cn"], {"input": rows[first:first + SEQUENCE_BLOCK_FRAMES], "h": hidden, "c": cell})
            out.append(np.asarray(probs, dtype=np.float32).reshape(-1))
        return np.concatenate(out)

    def _sequence_session(self) -> Any:
        if self._sequence is None:
            try:
                self._sequence = _session(silero_model_path(SILERO_SEQUENCE_FILE))
            except ConfigError:
                self._sequence = False
        return self._sequence or None


def _session(path: Path) -> Any:
    import onnxruntime

    options = onnxruntime.SessionOptions()
    # One thread each: a 32 ms frame takes well under a millisecond, and the CPU is
    # better left to the recogniser running beside it.
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    return onnxruntime.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])


class EnergyVAD:
    """Speech probability from in-band energy above an adaptive noise floor.

    The frame's energy in the radio voice band (300-3400 Hz, so mains hum and rumble do not
    count) is compared with a running noise floor that falls quickly and rises slowly
    (time constant ``floor_rise_s``), so steady static is learnt as background while a
    transmission is not. The level above the floor maps to a probability with a logistic
    curve centred on ``snr_db`` (probability 0.5 there); frames quieter than
    ``min_level_dbfs`` are never speech (squelched receivers output digital silence).
    """

    name = "energy"
    frame_samples = FRAME_SAMPLES

    def __init__(self, snr_db: float = 9.0, floor_rise_s: float = 15.0, min_level_dbfs: float = -60.0) -> None:
        self.snr_db = snr_db
        self.min_level_dbfs = min_level_dbfs
        self._rise = 1.0 - math.exp(-FRAME_S / floor_rise_s)
        freqs = np.fft.rfftfreq(FRAME_SAMPLES, 1.0 / SAMPLE_RATE)
        self._band = (freqs >= 300.0) & (freqs <= 3400.0)
        self._window = np.hanning(FRAME_SAMPLES).astype(np.float32)
        # Parseval with a Hann window: scales the band power back to a mean-square level.
        self._norm = 2.0 / float(np.sum(self._window**2) * FRAME_SAMPLES)
        self.reset()

    def reset(self) -> None:
        """Forget the learnt noise floor."""
        self._floor_db: float | None = None

    def level_dbfs(self, frame: np.ndarray) -> float:
        """In-band level of one frame, dB relative to full scale."""
        spectrum = np.fft.rfft(frame.astype(np.float32, copy=False) * self._window)
        power = float(np.sum(np.abs(spectrum[self._band]) ** 2)) * self._norm
        return 10.0 * math.log10(power + 1e-12)

    def probabilities(self, audio: np.ndarray) -> np.ndarray:
        """Probabilities of every whole frame of ``audio`` from a fresh noise floor."""
        saved = self._floor_db
        self.reset()
        try:
            n = len(audio) // FRAME_SAMPLES
            return np.array([self(audio[i * FRAME_SAMPLES:(i + 1) * FRAME_SAMPLES]) for i in range(n)], dtype=np.float32)
        finally:
            self._floor_db = saved

    def __call__(self, frame: np.ndarray) -> float:
        """Speech probability of one 512-sample frame."""
        level = self.level_dbfs(frame)
        if self._floor_db is None:
            self._floor_db = level
        elif level < self._floor_db:
            self._floor_db += 0.5 * (level - self._floor_db)  # fall fast: a quieter frame is background
        else:
            self._floor_db += self._rise * (level - self._floor_db)
        if level < self.min_level_dbfs:
            return 0.0
        floor = max(self._floor_db, self.min_level_dbfs - 10.0)
        return 1.0 / (1.0 + math.exp(-(level - floor - self.snr_db) / 2.0))


def load_vad(name: str) -> VoiceDetector:
    """The detector called ``name`` ("silero" or "energy").

    Silero falls back to the energy detector, with a warning, when onnxruntime or the
    silero-vad package is missing, so live mode still runs.

    Raises:
        ConfigError: for an unknown name.
    """
    if name == "energy":
        return EnergyVAD()
    if name == "silero":
        try:
            return SileroVAD()
        except ConfigError as exc:
            log.warning("Silero VAD unavailable (%s); using the energy VAD instead.", exc)
            return EnergyVAD()
    raise ConfigError(f"unknown VAD {name!r}; valid: silero, energy (setting segment.vad).")


def speech_probabilities(audio: np.ndarray, vad: VoiceDetector) -> np.ndarray:
    """Probabilities for every whole frame of ``audio`` (the tail shorter than a frame is dropped)."""
    return vad.probabilities(audio)


class Replay:
    """A :class:`VoiceDetector` that hands out probabilities computed beforehand, in order.

    :func:`atc_whisper.audio.segment.segment_array` scores a whole recording at once
    (:meth:`SileroVAD.probabilities`) and lets the streaming segmenter consume the result, so a
    file is cut by the same state machine, on the same numbers, as its live replay.
    """

    def __init__(self, probabilities: np.ndarray, name: str) -> None:
        self.name = name
        self.frame_samples = FRAME_SAMPLES
        self._probs = np.asarray(probabilities, dtype=np.float32)
        self._next = 0

    def __call__(self, frame: np.ndarray) -> float:
        """The next probability."""
        value = float(self._probs[self._next])
        self._next += 1
        return value

    def reset(self) -> None:
        """Nothing to forget (a recording in memory has no breaks)."""

    def probabilities(self, audio: np.ndarray) -> np.ndarray:
        """The probabilities held (for a recording of the same length)."""
        return self._probs[: len(audio) // FRAME_SAMPLES]
