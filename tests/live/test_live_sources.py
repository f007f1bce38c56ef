"""Live sources in-process: PCM formats, file pacing, the device layer, the lag queue.

The device layer is the only place with a stand-in: a fake ``sounddevice`` module (query_devices,
default, InputStream calling back from its own thread), because test machines have no sound
card. Everything after it - resampling, segmentation, the real tiny.en model - is real.
"""

from __future__ import annotations

import io
import shutil
import subprocess
import threading
import time
from types import SimpleNamespace

import numpy as np
import pytest
import soxr

from atc_whisper.config import Settings
from atc_whisper.errors import LiveSourceError
from atc_whisper.live.outputs import JsonlSink
from atc_whisper.live.runner import LagQueue, LiveSession
from atc_whisper.live.simulate import synthetic_session
from atc_whisper.live.sources import DeviceSource, FileSource, PcmSource, list_input_devices

SR = 16_000
TEXTS = ["cleared to land runway two seven", "turn left heading two seven zero"]


@pytest.fixture(scope="module")
def session():
    return synthetic_session(TEXTS, gaps_s=2.0, noise_dbfs=-45.0, seed=11)


def collect(source) -> tuple[np.ndarray, list]:
    chunks = list(source.chunks())
    return np.concatenate([c.audio for c in chunks]), chunks


@pytest.mark.parametrize("fmt", ["s16le", "f32le", "u8", "s32le"])
def test_pcm_source_decodes_formats_channels_and_rates(session, fmt):
    audio24 = soxr.resample(session.audio, SR, 24_000).astype(np.float32)
    stereo = np.stack([audio24, audio24], axis=1).reshape(-1)  # interleaved L R
    raw = {
        "s16le": lambda x: (np.clip(x, -1, 1) * 32767).astype("<i2").tobytes(),
        "s32le": lambda x: (np.clip(x, -1, 1) * 2147483647).astype("<i4").tobytes(),
        "f32le": lambda x: x.astype("<f4").tobytes(),
        "u8": lambda x: (np.clip(x, -1, 1) * 127 + 128).astype("u1").tobytes(),
    }[fmt](stereo)
    source = PcmSource(io.BytesIO(raw), rate=24_000, fmt=fmt, channels=2)
    audio, chunks = collect(source)
    assert abs(len(audio) - len(session.audio)) <= 64
    assert all(len(c.audio) == 512 for c in chunks[:-1])
    assert [c.start_sample for c in chunks] == list(np.cumsum([0] + [len(c.audio) for c in chunks[:-1]]))
    n = min(len(audio), len(session.audio))
    correlation = np.corrcoef(audio[:n], session.audio[:n])[0, 1]
    assert correlation > (0.9 if fmt == "u8" else 0.99)


def test_pcm_source_rejects_unknown_format():
    with pytest.raises(LiveSourceError, match="s16le"):
        PcmSource(io.BytesIO(b""), fmt="s24be")


def test_file_source_realtime_paces_at_wall_clock_speed(session, tmp_path):
    path = session.write_wav(tmp_path / "s.wav")
    fast = FileSource(path)
    fast.open()
    started = time.monotonic()
    audio, _ = collect(fast)
    fast_s = time.monotonic() - started
    np.testing.assert_allclose(audio, session.audio, atol=1 / 32767 + 1e-6)
    clip = tmp_path / "short.wav"
    from atc_whisper.audio.io import write_wav

    write_wav(clip, session.audio[: 2 * SR])
    paced = FileSource(clip, realtime=True)
    paced.open()
    started = time.monotonic()
    collect(paced)
    assert time.monotonic() - started >= 1.9  # 2 s of audio cannot arrive faster than it is spoken
    assert fast_s < session.duration_s / 2


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs the ffmpeg program to encode test files")
@pytest.mark.parametrize(("name", "args"), [
    ("clip.mp3", ["-ar", "44100", "-ac", "2", "-codec:a", "libmp3lame", "-b:a", "64k"]),
    ("clip44k.wav", ["-ar", "44100", "-ac", "2"]),
    ("clip.m4a", ["-ar", "22050", "-ac", "2", "-codec:a", "aac", "-b:a", "64k"]),
])
def test_live_file_source_hears_exactly_what_transcribe_hears(session, tmp_path, name, args):
    """``live --file`` and ``transcribe`` decode, mix down and resample a file identically."""
    from atc_whisper.audio.io import load_audio

    wav = session.write_wav(tmp_path / "src.wav")
    target = tmp_path / name
    subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-i", str(wav), *args, str(target)],
                   check=True)
    source = FileSource(target)
    source.open()
    streamed, chunks = collect(source)
    whole = load_audio(target)
    assert len(chunks) > 10 and streamed.dtype == np.float32
    assert np.array_equal(streamed, whole)
    assert abs(len(whole) / SR - len(session.audio) / SR) < 0.1  # resampled back to 16 kHz


def test_streamed_resampling_equals_resampling_the_whole_signal(session):
    from atc_whisper.audio.io import Resampler, resample

    native = soxr.resample(session.audio, SR, 44_100).astype(np.float32)
    resampler = Resampler(44_100)
    blocks = [resampler(native[i:i + 1000]) for i in range(0, len(native), 1000)]
    blocks.append(resampler(np.zeros(0, dtype=np.float32), last=True))
    assert np.array_equal(np.concatenate(blocks), resample(native, 44_100))


def test_file_source_errors_name_the_file(tmp_path):
    with pytest.raises(LiveSourceError, match="does not exist"):
        FileSource(tmp_path / "missing.wav").open()
    with pytest.raises(LiveSourceError, match="folder"):
        FileSource(tmp_path).open()
    text = tmp_path / "notes.wav"
    text.write_text("these are not samples\n" * 50)
    with pytest.raises(LiveSourceError, match=r"notes\.wav"):
        source = FileSource(text)
        source.open()
        collect(source)


def test_file_source_stop_ends_the_stream_promptly(session, tmp_path):
    source = FileSource(session.write_wav(tmp_path / "s.wav"), realtime=True)
    source.open()
    threading.Timer(0.5, source.stop).start()
    started = time.monotonic()
    audio, _ = collect(source)
    assert time.monotonic() - started < 2.0
    assert 0.3 * SR < len(audio) < 1.5 * SR


# -- device layer (fake PortAudio) -------------------------------------------------------------


def fake_sounddevice(audio: np.ndarray, device_rate: int = 48_000):
    """A stand-in for the sounddevice module whose input device plays ``audio`` at ``device_rate``."""
    played = soxr.resample(audio, SR, device_rate).astype(np.float32)
    opened = []

    class InputStream:
        def __init__(self, *, device, channels, samplerate, dtype, blocksize, callback):
            if samplerate != device_rate:
                raise RuntimeError(f"Invalid sample rate {samplerate} [PaErrorCode -9997]")
            self.device, self.blocksize, self.callback = device, blocksize, callback
            self.active = False
            opened.append(self)

        def start(self):
            self.active = True
            threading.Thread(target=self._run, daemon=True).start()

        def _run(self):
            for i in range(0, len(played), self.blocksize):
                block = played[i:i + self.blocksize]
                self.callback(block.reshape(-1, 1), len(block), None, None)
            self.active = False

        def stop(self):
            self.active = False

        def close(self):
            pass

    devices = [
        {"name": "HDMI output", "max_input_channels": 0, "default_samplerate": 48000.0},
        {"name": "USB Audio Receiver (hw:1,0)", "max_input_channels": 1, "default_samplerate": 48000.0},
        {"name": "Built-in Microphone", "max_input_channels": 2, "default_samplerate": 48000.0},
    ]
    return SimpleNamespace(query_devices=lambda: devices, default=SimpleNamespace(device=(2, 0)),
                           InputStream=InputStream, opened=opened)


def test_unknown_device_lists_the_input_devices(session):
    backend = fake_sounddevice(session.audio)
    with pytest.raises(LiveSourceError) as info:
        DeviceSource("nosuchdevice", backend=backend).open()
    message = str(info.value)
    assert "'nosuchdevice'" in message and "[1] USB Audio Receiver" in message and "[2] Built-in Microphone" in message
    assert "HDMI" not in message  # not an input
    with pytest.raises(LiveSourceError, match="is not an input device"):
        DeviceSource("0", backend=backend).open()
    devices = list_input_devices(backend)
    assert [d["index"] for d in devices] == [1, 2] and devices[1]["default"]


def test_device_source_through_the_whole_live_loop(session, tiny_en, session_workspace, tmp_path):
    from atc_whisper.transcribe import load_engine

    backend = fake_sounddevice(session.audio, device_rate=48_000)
    source = DeviceSource("usb audio", backend=backend)  # a unique part of the name
    source.open()
    assert backend.opened[0].device == 1
    settings = Settings()
    engine = load_engine(tiny_en.hf_dir, settings, session_workspace, engine="ct2")
    jsonl = tmp_path / "t.jsonl"
    summary = LiveSession(source, engine, settings, [JsonlSink(jsonl)]).run(handle_signals=False)
    import json

    records = [json.loads(line) for line in jsonl.read_text().splitlines()]
    assert summary.transmissions == len(records) == 2
    assert "land" in records[0]["text"].lower() and "left" in records[1]["text"].lower()
    for record, (start, _end) in zip(records, session.spans_s, strict=True):
        assert start - 0.3 <= record["stream_start_s"] <= start + 0.1  # 48 kHz resampled sample-accurately
        assert record["source"].startswith("device [1] USB Audio Receiver")
    assert summary.audio_s == pytest.approx(session.duration_s, abs=0.05)


# -- lag queue ----------------------------------------------------------------------------------


def test_lag_queue_never_drops_and_keeps_order(session):
    from atc_whisper.audio.segment import Transmission

    queue = LagQueue(maxsize=2)
    items = [Transmission(i, i, i + 1, 0.0, np.zeros(SR, np.float32), 0.0, 0.0, "silence", 1.0) for i in range(7)]
    for item in items[:3]:
        queue.put(item)
    assert queue.overflowing and queue.behind == 3 and queue.pending_audio_s() == pytest.approx(3.0)
    got = []
    consumer = threading.Thread(target=lambda: got.extend(iter(queue.get, None)))
    consumer.start()
    for item in items[3:]:
        queue.put(item)
    queue.close()
    consumer.join(5)
    assert [t.index for t in got] == list(range(7))
    assert queue.max_depth >= 3


def test_sigterm_flushes_and_stops_the_session(session, tiny_en, session_workspace, tmp_path):
    """SIGTERM (a service manager stopping us) behaves like Ctrl-C: flush, finish, close."""
    import json
    import os
    import signal

    from atc_whisper.transcribe import load_engine

    settings = Settings()
    engine = load_engine(tiny_en.hf_dir, settings, session_workspace, engine="ct2")
    source = FileSource(session.write_wav(tmp_path / "s.wav"), realtime=True)
    source.open()
    end = session.spans_s[0][1]
    # Terminate near the end of the first transmission, before its closing silence.
    threading.Timer(end - 0.3, os.kill, (os.getpid(), signal.SIGTERM)).start()
    jsonl = tmp_path / "t.jsonl"
    live = LiveSession(source, engine, settings, [JsonlSink(jsonl)])
    summary = live.run()
    records = [json.loads(line) for line in jsonl.read_text().splitlines()]
    assert summary.interrupted and summary.transmissions == len(records) == 1
    assert records[0]["end_reason"] == "flush" and "land" in records[0]["text"].lower()
    assert summary.audio_s < end + 0.5
    assert signal.getsignal(signal.SIGTERM) is not live._on_signal  # handlers restored


def test_live_decoding_retries_only_runaway_output_unless_asked():
    from atc_whisper.config import Settings
    from atc_whisper.live.runner import live_decode_settings

    assert Settings().decode.fallback_on_low_logprob is True  # files and evaluation: the full rule
    assert live_decode_settings(Settings()).decode.fallback_on_low_logprob is False
    asked = Settings().replace(live={"fallback_on_low_logprob": True})
    assert live_decode_settings(asked).decode.fallback_on_low_logprob is True


class CountingEngine:
    """The real engine, counting what it is asked to decode."""

    def __init__(self, engine) -> None:
        self.engine = engine
        self.calls: list[int] = []

    def transcribe(self, audio, *, prompt=None):
        self.calls.append(len(audio))
        return self.engine.transcribe(audio, prompt=prompt)


@pytest.mark.parametrize("speculative", [True, False])
def test_closing_pause_is_decoded_early_and_used_once(tiny_en, session_workspace, tmp_path, speculative):
    """With speculation the transcript is ready when the pause is confirmed; a breath inside a
    transmission costs one discarded decode and never a transcript of its own."""
    import json

    from atc_whisper.transcribe import load_engine

    texts = ["turn left heading two seven zero", "and descend flight level one two zero", "contact tower"]
    paused = synthetic_session(texts, gaps_s=[0.15, 2.0], noise_dbfs=-45.0, seed=5)
    settings = Settings().replace(live={"speculative": speculative})
    engine = CountingEngine(load_engine(tiny_en.hf_dir, settings, session_workspace, engine="ct2"))
    source = FileSource(paused.write_wav(tmp_path / "s.wav"), realtime=True)
    source.open()
    jsonl = tmp_path / "t.jsonl"
    summary = LiveSession(source, engine, settings, [JsonlSink(jsonl)]).run(handle_signals=False)
    records = [json.loads(line) for line in jsonl.read_text().splitlines()]
    assert summary.transmissions == len(records) == 2
    assert "left" in records[0]["text"].lower() and "level" in records[0]["text"].lower()  # both halves
    assert "tower" in records[1]["text"].lower()
    # Each transmission's transcript came from exactly one decode of its final audio.
    assert len(engine.calls) == summary.transmissions + summary.speculative_wasted
    if speculative:
        assert summary.speculative_hits == 2 and summary.speculative_wasted >= 1
        # Ready before the pause was confirmed: latency below the VAD close delay plus decoding.
        close_delay = (settings.segment.min_silence_ms - settings.segment.speech_pad_ms) / 1000
        assert all(r["latency_s"] < close_delay + r["decode_s"] for r in records)
    else:
        assert summary.speculative_hits == summary.speculative_wasted == 0
        close_delay = (settings.segment.min_silence_ms - settings.segment.speech_pad_ms) / 1000
        assert all(r["latency_s"] >= close_delay - 0.05 for r in records)
