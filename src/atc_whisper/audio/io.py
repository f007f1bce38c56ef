"""Reading and writing audio: every file becomes 16 kHz mono float32, or a clear AudioError.

Whisper hears 16 kHz mono, but ATC recordings arrive as anything: 8 kHz telephone-band WAV
from a scanner, 44.1 kHz stereo MP3 from a stream archive, AAC in an ``.m4a`` from a phone.
This module is the single gate between such files and the rest of the toolkit:

* :func:`iter_audio` decodes a file block by block with libsndfile (via ``soundfile``: WAV,
  FLAC, OGG, MP3), falling back to FFmpeg (via PyAV, else the ``ffmpeg`` program) for what
  libsndfile lacks (M4A/AAC, ...); it mixes channels down and resamples with soxr (high
  quality). :func:`load_audio` is the same blocks joined, and live mode's file source reads
  files through :func:`iter_audio` too, so ``live --file`` and ``transcribe`` hear the same
  samples. Network streams go through :func:`decode_container`, the same PyAV decoding and
  resampling, and every other live source through :class:`Resampler`.
* Every way a file can be unusable - missing, a folder, not audio, truncated, corrupt,
  empty - is turned into an :class:`~atc_whisper.errors.AudioError` naming the file and
  what to do, so the CLI can print one ``Error:`` line.
* :func:`check_speech` refuses silent audio (a dead channel or a muted recorder), which
  Whisper would otherwise "transcribe" into hallucinated text.
* :func:`write_wav` writes 16-bit PCM atomically, so a reader never sees half a file.
"""

from __future__ import annotations

import math
import os
import shutil
import struct
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
import soxr

from ..errors import AudioError
from ..fsutil import atomic_path

#: Whisper's input rate, Hz: every sample array in the toolkit is mono float32 at this rate
#: (the one definition; everything else imports it).
SAMPLE_RATE = 16_000
#: Frames read from a file per block by :func:`iter_audio` (about 1.5 s at 44.1 kHz).
DECODE_BLOCK_FRAMES = 65_536
PCM16_MAX = 32767

#: Peak and RMS levels (dBFS) below which audio counts as silence. -60 dBFS is about the
#: noise floor of a 10-bit recorder; real speech, even quiet, peaks far above it.
SILENCE_DBFS = -60.0

# First bytes of the containers we accept; a file that starts with one of these but cannot
# be decoded is "corrupt", anything else that cannot be decoded is "not audio".
_MAGIC: tuple[tuple[int, bytes], ...] = (
    (0, b"RIFF"), (0, b"RIFX"), (0, b"RF64"), (0, b"fLaC"), (0, b"OggS"), (0, b"ID3"),
    (0, b"FORM"), (0, b".snd"), (4, b"ftyp"), (0, b"\xff\xfb"), (0, b"\xff\xf3"), (0, b"\xff\xf2"),
    (0, b"\xff\xf1"), (0, b"\xff\xf9"), (0, b"caff"), (0, b"\x1a\x45\xdf\xa3"),
)

_FIX_FORMATS = "use WAV, FLAC, OGG, MP3 or M4A audio"


def _looks_like_audio(head: bytes) -> bool:
    return any(head[offset: offset + len(magic)] == magic for offset, magic in _MAGIC)


def _check_path(path: Path) -> None:
    if not path.exists():
        raise AudioError(f"audio file {path} does not exist; check the path and file name.")
    if path.is_dir():
        raise AudioError(f"audio file {path} is a directory; pass the audio files inside it instead.")
    if not os.access(path, os.R_OK):
        raise AudioError(f"audio file {path} cannot be read (permission denied); check its permissions.")
    if path.stat().st_size == 0:
        raise AudioError(f"audio file {path} is empty (0 bytes); re-record or re-export it.")


def _wav_truncation(path: Path) -> tuple[int, int] | None:
    """For a RIFF/WAVE file return (declared, present) data bytes when the data chunk is cut short.

    libsndfile silently reads what is there, which would hide a transfer that stopped half
    way. Streaming writers put 0 or 0xFFFFFFFF in the size field; those are not truncation.
    """
    size = path.stat().st_size
    with open(path, "rb") as handle:
        header = handle.read(12)
        if len(header) < 12 or header[:4] != b"RIFF" or header[8:12] != b"WAVE":
            return None
        offset = 12
        while offset + 8 <= size:
            handle.seek(offset)
            chunk = handle.read(8)
            if len(chunk) < 8:
                return None
            chunk_id, chunk_size = chunk[:4], struct.unpack("<I", chunk[4:])[0]
            if chunk_id == b"data":
                present = size - offset - 8
                if chunk_size in (0, 0xFFFFFFFF) or chunk_size <= present:
                    return None
                return chunk_size, present
            offset += 8 + chunk_size + (chunk_size & 1)  # chunks are word-aligned
    return None


class Resampler:
    """Mono float32 blocks at ``from_rate`` resampled to ``to_rate`` one block at a time (soxr HQ).

    The blocks joined are exactly what :func:`resample` gives for the whole signal (soxr's
    stream and one-shot resamplers agree sample for sample), so a file read as a stream and
    read whole give the same samples.
    """

    def __init__(self, from_rate: int, to_rate: int = SAMPLE_RATE) -> None:
        self.from_rate, self.to_rate = int(from_rate), int(to_rate)
        self._stream = (soxr.ResampleStream(self.from_rate, self.to_rate, 1, dtype="float32", quality="HQ")
                        if self.from_rate != self.to_rate else None)

    def __call__(self, block: np.ndarray, *, last: bool = False) -> np.ndarray:
        """The resampled block (``last=True`` flushes what the filter still holds)."""
        block = np.ascontiguousarray(block, dtype=np.float32).reshape(-1)
        if self._stream is None:
            return block
        return np.asarray(self._stream.resample_chunk(block, last=last), dtype=np.float32)


def decode_container(container: Any, sample_rate: int = SAMPLE_RATE) -> Iterator[np.ndarray]:
    """Decode the first audio stream of an open PyAV container to mono float32 blocks.

    FFmpeg only decodes: frames keep their rate and layout (planar float), are mixed down
    as :func:`to_mono` does and resampled by :class:`Resampler`, as libsndfile's are.

    Raises:
        AudioError: The container has no audio stream.
    """
    import av

    stream = next((s for s in container.streams if s.type == "audio"), None)
    if stream is None:
        raise AudioError("it has no audio stream")
    planar = av.AudioResampler(format="fltp")
    resampler: Resampler | None = None

    def convert(frames: list[Any]) -> Iterator[np.ndarray]:
        nonlocal resampler
        for frame in frames:
            if resampler is None or frame.sample_rate != resampler.from_rate:
                if resampler is not None:
                    yield resampler(np.zeros(0, dtype=np.float32), last=True)
                resampler = Resampler(frame.sample_rate, sample_rate)
            yield resampler(to_mono(frame.to_ndarray().T))

    for packet in container.demux(stream):
        for frame in packet.decode():
            yield from convert(planar.resample(frame))
    yield from convert(planar.resample(None))
    if resampler is not None:
        yield resampler(np.zeros(0, dtype=np.float32), last=True)


def _soundfile_blocks(path: Path) -> tuple[int, Iterator[np.ndarray]]:
    """The sample rate and the (samples, channels) float32 blocks of ``path`` via libsndfile.

    The first block is read before returning, so a file libsndfile cannot decode fails here.
    An MP3 cut short still decodes up to the cut; its Xing/Info header (or, for CBR, the
    bitrate) still tells the full length, so the shortfall is reported once decoding ends.
    """
    handle = sf.SoundFile(str(path))
    try:
        declared, rate = int(handle.frames), int(handle.samplerate)
        first = handle.read(DECODE_BLOCK_FRAMES, dtype="float32", always_2d=True)
    except BaseException:
        handle.close()
        raise

    def blocks() -> Iterator[np.ndarray]:
        with handle:
            decoded = len(first)
            yield first
            while len(block := handle.read(DECODE_BLOCK_FRAMES, dtype="float32", always_2d=True)):
                decoded += len(block)
                yield block
        # The margins keep VBR length estimates from tripping it.
        missing = declared - decoded
        if rate > 0 and missing > 0.1 * declared and missing / rate > 0.5:
            raise AudioError(
                f"audio file {path} is truncated: its header announces {declared / rate:.2f} s but only "
                f"{decoded / rate:.2f} s can be decoded; re-download or re-export it."
            )

    return rate, blocks()


def _pyav_blocks(path: Path, sample_rate: int) -> Iterator[np.ndarray]:
    import av

    with av.open(str(path)) as container:
        yield from decode_container(container, sample_rate)


def _ffmpeg_blocks(path: Path, sample_rate: int) -> Iterator[np.ndarray]:
    """The last resort without PyAV: the ``ffmpeg`` program mixes down and resamples itself."""
    exe = shutil.which("ffmpeg")
    if exe is None:
        raise AudioError(
            f"audio file {path} needs FFmpeg to decode; install PyAV (pip install av) or ffmpeg (apt-get install ffmpeg)."
        )
    cmd = [exe, "-nostdin", "-v", "error", "-i", str(path), "-f", "f32le", "-ac", "1", "-ar", str(sample_rate), "-"]
    proc = subprocess.run(cmd, capture_output=True, check=False)
    if proc.returncode != 0:
        # internal: the caller catches this and reports every decoder's complaint as one AudioError
        raise ValueError(proc.stderr.decode("utf-8", "replace").strip().splitlines()[-1:] or "ffmpeg failed")
    yield np.frombuffer(proc.stdout, dtype=np.float32)


def _mono_blocks(path: Path, sample_rate: int) -> Iterator[np.ndarray]:
    """Decoded, mixed-down, resampled blocks of ``path``; the decoder is chosen before anything is yielded."""
    errors: list[str] = []
    try:
        rate, native = _soundfile_blocks(path)
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as exc:
        errors.append(f"libsndfile: {exc}")
    else:
        resampler = Resampler(rate, sample_rate)
        try:
            for block in native:
                yield resampler(to_mono(block))
        except (sf.LibsndfileError, RuntimeError) as exc:
            raise AudioError(f"audio file {path} is corrupt: decoding failed part way ({exc}); "
                             "re-download or re-export it.") from None
        yield resampler(np.zeros(0, dtype=np.float32), last=True)
        return
    try:
        import av  # noqa: F401  # lazy: only files libsndfile cannot read need FFmpeg
    except ImportError:
        try:
            yield from _ffmpeg_blocks(path, sample_rate)
            return
        except ValueError as exc:
            errors.append(f"ffmpeg: {exc}")
    else:
        blocks = _pyav_blocks(path, sample_rate)
        try:
            head = next(blocks, None)  # a file FFmpeg cannot open or decode fails here
        except Exception as exc:  # PyAV raises a zoo of FFmpeg error classes
            errors.append(f"ffmpeg: {exc}")
        else:
            if head is not None:
                yield head
                yield from blocks
                return
            errors.append("ffmpeg: no audio decoded")
    with open(path, "rb") as handle:
        head_bytes = handle.read(16)
    if _looks_like_audio(head_bytes):
        raise AudioError(
            f"audio file {path} is corrupt or truncated and cannot be decoded ({'; '.join(errors)}); "
            "re-download or re-export it."
        )
    raise AudioError(f"{path} is not an audio file (unrecognised format); {_FIX_FORMATS}.")


def to_mono(audio: np.ndarray) -> np.ndarray:
    """Mix a (samples, channels) array down to one channel; 1-D input is returned as is."""
    if audio.ndim == 1:
        return audio
    if audio.shape[1] == 1:
        return audio[:, 0]
    return audio.mean(axis=1, dtype=np.float32)


def resample(audio: np.ndarray, from_rate: int, to_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Resample mono float audio with soxr (high quality); returns float32."""
    audio = np.asarray(audio, dtype=np.float32)
    if from_rate == to_rate or audio.size == 0:
        return audio
    return soxr.resample(audio, from_rate, to_rate, quality="HQ").astype(np.float32, copy=False)


def iter_audio(path: str | os.PathLike[str], sample_rate: int = SAMPLE_RATE) -> Iterator[np.ndarray]:
    """Read an audio file block by block as mono float32 at ``sample_rate`` (see :func:`load_audio`).

    The blocks joined are :func:`load_audio`'s samples exactly; live mode reads files this
    way, without holding a long recording in memory.

    Raises:
        AudioError: As :func:`load_audio`; a file that is bad from its start fails before the
            first block, one corrupt later on when decoding reaches it.
    """
    path = Path(path)
    _check_path(path)
    cut = _wav_truncation(path)
    if cut is not None:
        declared, present = cut
        raise AudioError(
            f"audio file {path} is truncated: its header declares {declared} bytes of audio but only "
            f"{max(present, 0)} are there; re-download or re-export it."
        )
    for block in _mono_blocks(path, sample_rate):
        if not np.all(np.isfinite(block)):
            raise AudioError(f"audio file {path} contains invalid (NaN/inf) samples; re-export it as 16-bit PCM.")
        if len(block):
            yield block


def load_audio(path: str | os.PathLike[str], sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Read an audio file as mono float32 at ``sample_rate``.

    Args:
        path: A WAV, FLAC, OGG, MP3 or M4A file (anything libsndfile or FFmpeg decodes),
            at any sample rate and with any number of channels.
        sample_rate: The rate of the returned samples, Hz.

    Returns:
        1-D float32 array in [-1, 1].

    Raises:
        AudioError: The file is missing, a folder, not audio, truncated, corrupt or holds
            no samples; the message names the file and what to do.
    """
    blocks = list(iter_audio(path, sample_rate))
    if not blocks:
        raise AudioError(f"audio file {path} holds no audio samples (empty recording); re-record or re-export it.")
    return np.concatenate(blocks) if len(blocks) > 1 else blocks[0]


def peak_dbfs(audio: np.ndarray) -> float:
    """Peak level in dB relative to full scale (-inf for digital silence)."""
    peak = float(np.max(np.abs(audio))) if audio.size else 0.0
    return 20.0 * math.log10(peak) if peak > 0 else -math.inf


def rms_dbfs(audio: np.ndarray) -> float:
    """Root-mean-square level in dB relative to full scale (-inf for digital silence)."""
    if audio.size == 0:
        return -math.inf
    rms = float(np.sqrt(np.mean(np.square(audio, dtype=np.float64))))
    return 20.0 * math.log10(rms) if rms > 0 else -math.inf


def check_speech(
    audio: np.ndarray,
    path: str | os.PathLike[str] | None = None,
    *,
    min_rms_dbfs: float = SILENCE_DBFS,
    frame_s: float = 0.03,
    sample_rate: int = SAMPLE_RATE,
) -> None:
    """Raise :class:`AudioError` when ``audio`` is silent, i.e. holds nothing to transcribe.

    The loudest 30 ms frame must reach ``min_rms_dbfs``: a whole-file RMS would call a long
    recording with one short transmission silent.

    Args:
        audio: Mono samples.
        path: The file the audio came from, for the message.
        min_rms_dbfs: Level of the loudest frame below which the audio counts as silent.
        frame_s: Frame length for the level measurement, seconds.
        sample_rate: Rate of ``audio``, Hz.

    Raises:
        AudioError: The audio is empty or silent.
    """
    name = str(path) if path is not None else "the audio"
    if audio.size == 0:
        raise AudioError(f"{name} holds no audio samples; re-record or re-export it.")
    frame = max(1, int(frame_s * sample_rate))
    n_frames = max(1, audio.size // frame)
    frames = audio[: n_frames * frame].reshape(n_frames, -1) if audio.size >= frame else audio.reshape(1, -1)
    loudest = float(np.sqrt(np.max(np.mean(np.square(frames, dtype=np.float64), axis=1))))
    loudest_db = 20.0 * math.log10(loudest) if loudest > 0 else -math.inf
    if loudest_db < min_rms_dbfs:
        raise AudioError(
            f"{name} is silent (peak {peak_dbfs(audio):.1f} dBFS, loudest {frame_s * 1000:.0f} ms at "
            f"{loudest_db:.1f} dBFS, below {min_rms_dbfs:.0f} dBFS); check the recording level or the file."
        )


def write_wav(path: str | os.PathLike[str], audio: np.ndarray, sample_rate: int = SAMPLE_RATE) -> Path:
    """Write mono audio as a 16-bit PCM WAV file, atomically.

    Samples are clipped to [-1, 1] (and NaN set to 0) before conversion, so a loud input
    saturates instead of wrapping around.

    Args:
        path: Target file; its folder is created when missing.
        audio: 1-D float samples in [-1, 1] (or (samples, channels)).
        sample_rate: Sample rate to record in the header, Hz.

    Returns:
        The path written.
    """
    data = np.nan_to_num(np.asarray(audio, dtype=np.float32), nan=0.0, posinf=1.0, neginf=-1.0)
    pcm = np.round(np.clip(data, -1.0, 1.0) * PCM16_MAX).astype(np.int16)
    with atomic_path(path, suffix=".wav") as tmp:
        sf.write(str(tmp), pcm, int(sample_rate), subtype="PCM_16", format="WAV")
    return Path(path)


def duration_s(audio: np.ndarray, sample_rate: int = SAMPLE_RATE) -> float:
    """Length of ``audio`` in seconds."""
    return float(len(audio)) / float(sample_rate)


def file_duration_s(path: str | os.PathLike[str]) -> float:
    """Duration of an audio file in seconds from its header when possible, else by decoding it."""
    path = Path(path)
    _check_path(path)
    try:
        info = sf.info(str(path))
        if info.frames > 0 and info.samplerate > 0:
            return float(info.frames) / float(info.samplerate)
    except (sf.LibsndfileError, RuntimeError):
        pass
    return duration_s(load_audio(path))
