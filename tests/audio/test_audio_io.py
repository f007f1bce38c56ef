"""Reading audio in every supported format/rate/layout, and every bad input, on real TTS speech."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import soxr

from atc_whisper.audio.io import (
    SAMPLE_RATE,
    check_speech,
    duration_s,
    file_duration_s,
    load_audio,
    write_wav,
)
from atc_whisper.errors import AudioError

TEXT = "tower, speedbird one two three, ready for departure runway two seven left"


@pytest.fixture(scope="module")
def speech(tmp_path_factory: pytest.TempPathFactory) -> np.ndarray:
    from atc_whisper.audio.tts import synthesize

    return synthesize(TEXT, "espeak:en-gb")


def _ffmpeg(src: Path, dst: Path, *extra: str) -> Path:
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-i", str(src), *extra, str(dst)], check=True)
    return dst


def _corr(a: np.ndarray, b: np.ndarray) -> float:
    n = min(a.size, b.size)
    return float(np.corrcoef(a[:n], b[:n])[0, 1])


def test_write_wav_roundtrip_is_pcm16_and_clip_safe(tmp_path: Path, speech: np.ndarray) -> None:
    loud = speech * 4.0  # far beyond full scale
    loud[10] = np.nan
    path = write_wav(tmp_path / "sub" / "loud.wav", loud)
    info = sf.info(str(path))
    assert (info.samplerate, info.channels, info.subtype) == (SAMPLE_RATE, 1, "PCM_16")
    back = load_audio(path)
    assert back.dtype == np.float32 and back.ndim == 1 and back.size == speech.size
    assert np.max(np.abs(back)) <= 1.0 and back[10] == 0.0
    # Saturated, not wrapped around: every over-range sample keeps its sign at full scale.
    over = np.abs(loud) > 1.0
    assert np.all(np.sign(back[over]) == np.sign(loud[over])) and np.all(np.abs(back[over]) > 0.999)
    assert not list(tmp_path.glob("sub/.*")), "temporary file left behind"


@pytest.mark.parametrize(
    ("name", "rate", "channels"),
    [("a.wav", 8_000, 1), ("b.wav", 44_100, 2), ("c.flac", 22_050, 1), ("d.ogg", 48_000, 2)],
)
def test_lossless_and_ogg_at_any_rate_and_layout(tmp_path: Path, speech: np.ndarray, name: str, rate: int,
                                                 channels: int) -> None:
    native = soxr.resample(speech, SAMPLE_RATE, rate)
    data = np.stack([native, 0.5 * native], axis=1) if channels == 2 else native
    path = tmp_path / name
    sf.write(str(path), data, rate)
    audio = load_audio(path)
    assert audio.dtype == np.float32 and audio.ndim == 1
    assert abs(duration_s(audio) - duration_s(speech)) < 0.02
    assert abs(file_duration_s(path) - duration_s(speech)) < 0.02
    # Same speech: 8 kHz keeps only the telephone band, so compare against the band-limited clean.
    reference = soxr.resample(soxr.resample(speech, SAMPLE_RATE, min(rate, SAMPLE_RATE)), min(rate, SAMPLE_RATE), SAMPLE_RATE)
    assert _corr(audio, reference) > (0.9 if name.endswith(".ogg") else 0.99)
    if channels == 2:  # mixed down: mean of full and half level
        assert np.isclose(np.std(audio), 0.75 * np.std(reference), rtol=0.05)


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs the ffmpeg program to encode test files")
@pytest.mark.parametrize("suffix", [".mp3", ".m4a"])
def test_lossy_compressed_formats(tmp_path: Path, speech: np.ndarray, suffix: str) -> None:
    wav = write_wav(tmp_path / "src.wav", speech)
    path = _ffmpeg(wav, tmp_path / f"clip{suffix}", "-ar", "44100", "-b:a", "96k")
    audio = load_audio(path)
    assert audio.dtype == np.float32 and audio.ndim == 1
    # Codec priming/padding adds at most a few frames.
    assert abs(duration_s(audio) - duration_s(speech)) < 0.1
    level_db = 20 * np.log10(np.std(audio) / np.std(speech))
    assert abs(level_db) < 1.5


def test_m4a_falls_back_to_ffmpeg_program_without_pyav(tmp_path: Path, speech: np.ndarray,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    if shutil.which("ffmpeg") is None:
        pytest.skip("needs the ffmpeg program")
    path = _ffmpeg(write_wav(tmp_path / "src.wav", speech), tmp_path / "clip.m4a")
    with_av = load_audio(path)
    monkeypatch.setitem(sys.modules, "av", None)  # "import av" now raises ImportError
    without_av = load_audio(path)
    assert abs(without_av.size - with_av.size) < 0.05 * SAMPLE_RATE
    assert _corr(with_av, without_av) > 0.95


def _expect(path: Path, pattern: str) -> str:
    with pytest.raises(AudioError, match=pattern) as info:
        load_audio(path)
    assert str(path) in str(info.value)
    return str(info.value)


def test_bad_inputs_name_the_file_and_the_fix(tmp_path: Path, speech: np.ndarray) -> None:
    _expect(tmp_path / "nope.wav", "does not exist")
    (tmp_path / "folder.wav").mkdir()
    _expect(tmp_path / "folder.wav", "is a directory")
    text = tmp_path / "notes.wav"
    text.write_text("climb flight level three five zero\n" * 20)
    assert "WAV, FLAC, OGG, MP3 or M4A" in _expect(text, "not an audio file")
    noise = tmp_path / "random.mp3"
    noise.write_bytes(np.random.default_rng(0).integers(0, 256, 20_000, dtype=np.uint8).tobytes())
    _expect(noise, "not an audio file|corrupt")
    empty = tmp_path / "empty.flac"
    empty.write_bytes(b"")
    _expect(empty, "empty")
    no_samples = tmp_path / "no_samples.wav"
    sf.write(str(no_samples), np.zeros(0, dtype=np.float32), SAMPLE_RATE)
    _expect(no_samples, "no audio samples")


def test_truncated_and_corrupt_files(tmp_path: Path, speech: np.ndarray) -> None:
    good = write_wav(tmp_path / "good.wav", speech)
    cut = tmp_path / "cut.wav"
    cut.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    assert "re-download" in _expect(cut, "truncated")
    flac = tmp_path / "good.flac"
    sf.write(str(flac), speech, SAMPLE_RATE)
    broken = tmp_path / "broken.flac"
    raw = bytearray(flac.read_bytes())
    raw[4:200] = bytes(196)  # wipe the STREAMINFO block: the magic says FLAC, nothing decodes
    broken.write_bytes(bytes(raw))
    _expect(broken, "corrupt")
    if shutil.which("ffmpeg"):
        # An MP3 cut mid-download still decodes up to the cut; its Info header gives it away.
        mp3 = _ffmpeg(good, tmp_path / "full.mp3")
        half = tmp_path / "half.mp3"
        half.write_bytes(mp3.read_bytes()[: mp3.stat().st_size // 2])
        _expect(half, "truncated: its header announces")


def test_check_speech_refuses_silence_only(tmp_path: Path, speech: np.ndarray) -> None:
    check_speech(speech, "speech.wav")  # real speech passes
    quiet = speech * 10 ** (-40 / 20)  # quiet, but speech: passes
    check_speech(quiet, "quiet.wav")
    silent = write_wav(tmp_path / "silent.wav", np.zeros(SAMPLE_RATE, dtype=np.float32))
    audio = load_audio(silent)  # loading succeeds; it is the content that is unusable
    with pytest.raises(AudioError, match=r"silent\.wav is silent \(peak -inf dBFS.*check the recording level"):
        check_speech(audio, silent)
    hiss = np.random.default_rng(0).normal(0, 1e-5, SAMPLE_RATE).astype(np.float32)
    with pytest.raises(AudioError, match="is silent"):
        check_speech(hiss, "hiss.wav")
