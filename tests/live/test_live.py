"""`atc-whisper live` end to end: real TTS sessions, the real tiny.en model (CTranslate2 int8),
real subprocesses, a real HTTP server on 127.0.0.1 that is killed and restarted mid-stream."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

from atc_whisper.live.simulate import synthetic_session
from atc_whisper.workspace import Workspace
from workspace_helpers import ct2_workspace

TEXTS = [
    "cleared to land runway two seven",
    "turn left heading two seven zero",
    "wind calm runway two seven cleared for takeoff",
]
# Words tiny.en gets right on these espeak transmissions (each must appear in its transcript).
KEY_WORDS = [("cleared", "land"), ("turn", "left"), ("cleared", "takeoff")]
GAPS_S = [4.0, 2.0]  # the long first gap is where the stream server is killed
MP3_KBPS = 32

# A stand-alone Icecast-like server: serves an MP3 from a given offset (seconds) at real-time
# pace after a 0.5 s burst, announces each connection on stdout, never closes on its own.
SERVER = r"""
import sys, time, http.server, socketserver
path, offset_s, port, kbps = sys.argv[1], float(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
data = open(path, "rb").read()
rate = kbps * 1000 // 8
class Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args): pass
    def do_GET(self):
        self.send_response(200); self.send_header("Content-Type", "audio/mpeg"); self.end_headers()
        print("connected", time.time(), flush=True)
        start = pos = int(offset_s * rate); t0 = time.monotonic(); piece = rate // 8
        while pos < len(data):
            self.wfile.write(data[pos:pos + piece]); self.wfile.flush(); pos += piece
            wait = t0 + (pos - start) / rate - 0.5 - time.monotonic()
            if wait > 0: time.sleep(wait)
        time.sleep(3600)
class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True; allow_reuse_address = True
server = Server(("127.0.0.1", port), Handler)
print("ready", flush=True)
server.serve_forever()
"""


@pytest.fixture(scope="module")
def session(tmp_path_factory):
    """The radio session as a WAV, an MP3 and raw s16le bytes (built once)."""
    import av

    folder = tmp_path_factory.mktemp("live_session")
    s = synthetic_session(TEXTS, gaps_s=GAPS_S, noise_dbfs=-45.0, seed=7)
    s.write_wav(folder / "session.wav")
    out = av.open(str(folder / "session.mp3"), "w", format="mp3")
    stream = out.add_stream("libmp3lame", rate=16_000)
    stream.layout = "mono"
    stream.bit_rate = MP3_KBPS * 1000
    pcm = (np.clip(s.audio, -1, 1) * 32767).astype(np.int16)
    for i in range(0, len(pcm), 1152):
        frame = av.AudioFrame.from_ndarray(pcm[None, i:i + 1152], format="s16", layout="mono")
        frame.sample_rate = 16_000
        for packet in stream.encode(frame):
            out.mux(packet)
    for packet in stream.encode(None):
        out.mux(packet)
    out.close()
    (folder / "server.py").write_text(SERVER)
    s.folder = folder  # type: ignore[attr-defined]
    return s



@pytest.fixture
def live_ws(tmp_path, ct2_cache) -> Workspace:
    return ct2_workspace(tmp_path / "ws", ct2_cache)


def live_args(ws: Workspace, tiny_en, *extra: str) -> list[str]:
    return ["live", "-w", str(ws.root), "--model", str(tiny_en.hf_dir), "--engine", "ct2", *extra]


def popen_live(args: list[str], **kwargs) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "atc_whisper", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **kwargs)


def read_jsonl(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def assert_transcripts(records: list[dict], session, expected: list[int]) -> None:
    """One record per expected transmission, in order, each over its planted span, key words right."""
    assert len(records) == len(expected), [r["text"] for r in records]
    assert [r["index"] for r in records] == list(range(len(expected)))
    for record, i in zip(records, expected, strict=True):
        letters = re.sub(r"[^a-z]", "", record["text"].lower())  # "take off" and "takeoff" alike
        for word in KEY_WORDS[i]:
            assert word in letters, (i, record["text"])
        assert record["duration_s"] > 0.5 and isinstance(record["low_confidence"], bool)
        assert record["latency_s"] >= 0 and record["decode_s"] > 0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_file_source_one_transcript_per_transmission(session, live_ws, tiny_en, run_cli):
    from atc_whisper.data.catalogue import Catalogue
    from atc_whisper.data.importers.generic import read_generic

    # queue_size 1: the file is segmented far faster than it is transcribed, so the recogniser
    # falls behind; the lag must be reported and nothing dropped.
    result = run_cli(*live_args(live_ws, tiny_en, "--file", str(session.folder / "session.wav"), "--save-audio",
                                "--set", "live.queue_size=1"))
    assert result.returncode == 0, result.stderr
    records = read_jsonl(live_ws.live_dir / "transcripts.jsonl")
    assert_transcripts(records, session, [0, 1, 2])
    for record, (start, end) in zip(records, session.spans_s, strict=True):
        assert record["stream_start_s"] <= start + 0.1 and record["stream_end_s"] >= end - 0.25
    assert "behind" in result.stderr and max(r["behind"] for r in records) >= 1
    assert "3 transmissions" in result.stdout
    # Catalogue rows and saved audio, listed in a manifest the generic importer reads back.
    with Catalogue(live_ws.db_path) as catalogue:
        rows = catalogue.transcripts()
    assert [r["text"] for r in rows] == [r["text"] for r in records]
    assert all(Path(r["audio_path"]).is_file() for r in rows)
    items = list(read_generic(live_ws.live_dir / "audio" / "manifest.csv"))
    assert [item.text_raw for item in items] == [r["text"] for r in records]
    assert all(item.audio_path.is_file() for item in items)


# Two interleaved exchanges: the first readback is right, the second reads back FL340 for FL350.
EXCHANGE_TEXTS = [
    "Delta seven eight nine, climb flight level two four zero.",
    "Delta three one two, climb flight level three five zero.",
    "Climbing flight level two four zero, Delta seven eight nine.",
    "Climbing flight level three four zero, Delta three one two.",
]


def test_readback_mismatch_is_flagged_as_it_happens(live_ws, tiny_en, run_cli, tmp_path):
    from atc_whisper.data.catalogue import Catalogue

    session = synthetic_session(EXCHANGE_TEXTS, gaps_s=1.5, noise_dbfs=-60.0, seed=7)
    wav = session.write_wav(tmp_path / "exchanges.wav")
    jsonl = tmp_path / "out.jsonl"
    result = run_cli(*live_args(live_ws, tiny_en, "--file", str(wav), "--jsonl", str(jsonl)))
    assert result.returncode == 0, result.stderr
    records = read_jsonl(jsonl)
    assert len(records) == 4, [r["text"] for r in records]
    assert [r["role"] for r in records] == ["controller", "controller", "pilot", "pilot"]
    assert all(0.5 <= r["role_score"] <= 1.0 for r in records)
    assert len({r["session"] for r in records}) == 1 and records[0]["session"]  # exchange ids count within it
    first, second = records[0]["exchange"], records[1]["exchange"]
    assert first is not None and second is not None and first != second
    assert [r["exchange"] for r in records[2:]] == [first, second]
    assert records[0]["readback"] is None and records[1]["readback"] is None
    assert records[2]["readback"] == {"status": "ok", "instruction": records[0]["index"], "differences": []}
    wrong = records[3]["readback"]
    assert wrong["status"] == "mismatch" and wrong["instruction"] == records[1]["index"]
    assert [(d["item"], d["expected"], d["kind"]) for d in wrong["differences"]] == [("level", "FL350", "changed")]
    assert wrong["differences"][0]["heard"] != "FL350"
    # shown as it happens, and counted at the end
    assert "READBACK MISMATCH: level FL350 read back as" in result.stdout
    assert "readback ok" in result.stdout and "2 readbacks checked, 1 mismatches" in result.stdout
    with Catalogue(live_ws.db_path) as catalogue:  # the catalogue row carries the same fields
        rows = catalogue.transcripts()[-4:]
    assert [(r["role"], r["exchange"], r["readback"]) for r in rows] == [
        (r["role"], r["exchange"], r["readback"]) for r in records]


def test_stdin_pcm_source(session, live_ws, tiny_en, run_cli, tmp_path):
    jsonl = tmp_path / "out.jsonl"
    result = run_cli(*live_args(live_ws, tiny_en, "--stdin", "--rate", "16000", "--format", "s16le",
                                "--no-catalogue", "--jsonl", str(jsonl)), input=session.pcm16())
    assert result.returncode == 0, result.stderr
    assert_transcripts(read_jsonl(jsonl), session, [0, 1, 2])


def test_ctrl_c_flushes_the_transmission_in_progress(session, live_ws, tiny_en, tmp_path):
    jsonl = tmp_path / "out.jsonl"
    proc = popen_live(live_args(live_ws, tiny_en, "--file", str(session.folder / "session.wav"), "--realtime",
                                "--jsonl", str(jsonl)))
    try:
        line = proc.stdout.readline()
        assert "Listening" in line, line + proc.stderr.read()
        listening = time.monotonic()
        start, end = session.spans_s[1]
        # Interrupt two thirds into the second transmission: "turn left" has been said.
        time.sleep(max(0.0, listening + start + (end - start) * 0.75 - time.monotonic()))
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 130, err
    records = read_jsonl(jsonl)
    assert len(records) == 2, [r["text"] for r in records]
    assert records[0]["end_reason"] == "silence"
    assert records[1]["end_reason"] == "flush"
    assert records[1]["stream_end_s"] < end
    assert "turn" in records[1]["text"].lower()  # the part spoken before Ctrl-C was transcribed
    assert "2 transmissions" in out and "(stopped)" in out
    assert "Traceback" not in err


@pytest.mark.slow
def test_http_stream_reconnects_without_duplicates(session, live_ws, tiny_en, tmp_path):
    port = free_port()
    url = f"http://127.0.0.1:{port}/feed.mp3"
    server_cmd = [sys.executable, str(session.folder / "server.py"), str(session.folder / "session.mp3")]
    server = subprocess.Popen([*server_cmd, "0", str(port), str(MP3_KBPS)], stdout=subprocess.PIPE, text=True)
    assert server.stdout.readline().startswith("ready")
    jsonl = tmp_path / "out.jsonl"
    proc = popen_live(live_args(live_ws, tiny_en, "--url", url, "--jsonl", str(jsonl), "--set", "live.stream_timeout_s=3"))
    restarted = None
    try:
        connected = server.stdout.readline()
        assert connected.startswith("connected"), proc.stderr.read() if proc.poll() is not None else connected
        t0 = time.monotonic()
        first_end = session.spans_s[0][1]
        # Kill the server 1 s after the first transmission ends (the 0.5 s burst ahead means
        # 1.5 s of the 4 s gap has been sent), then restart it: a live stream resumes at
        # "now", 1.5 s of silence later, so the audio sent during the outage is never heard.
        time.sleep(max(0.0, t0 + first_end + 1.0 - time.monotonic()))
        server.kill()
        server.wait()
        restarted = subprocess.Popen([*server_cmd, f"{first_end + 2.5:.3f}", str(port), str(MP3_KBPS)],
                                     stdout=subprocess.PIPE, text=True)
        assert restarted.stdout.readline().startswith("ready")
        deadline = time.monotonic() + 60
        while len(read_jsonl(jsonl)) < 3 and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.2)
        time.sleep(1.0)  # a duplicate, if any, would arrive now
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
        server.kill()
        if restarted is not None:
            restarted.kill()
    assert proc.returncode == 130, err
    records = read_jsonl(jsonl)
    assert_transcripts(records, session, [0, 1, 2])
    assert "dropped" in err and "reconnected" in err
    assert "stream dropped 1 time(s)" in out


def test_bad_device_is_a_clear_error(live_ws, run_cli):
    result = run_cli("live", "-w", str(live_ws.root), "--device", "nosuchdevice")
    assert result.returncode == 1
    assert result.stderr.startswith("Error: ")
    assert "nosuchdevice" in result.stderr
    assert "Traceback" not in result.stderr


def test_unreachable_url_fails_fast(live_ws, run_cli):
    port = free_port()  # nothing listens there any more
    started = time.monotonic()
    result = run_cli("live", "-w", str(live_ws.root), "--url", f"http://127.0.0.1:{port}/feed.mp3", timeout=60)
    assert result.returncode == 1
    assert "Error: cannot connect to stream" in result.stderr
    assert f"127.0.0.1:{port}" in result.stderr
    assert time.monotonic() - started < 30  # bounded retries; no model is loaded first


def test_undecodable_stream_is_a_clear_error(live_ws, run_cli):
    page = b"<html><body>" + b"<p>This is a web page, not an audio stream.</p>" * 400 + b"</body></html>"

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(page)))
            self.end_headers()
            self.wfile.write(page)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/"
        result = run_cli("live", "-w", str(live_ws.root), "--url", url, timeout=60)
    finally:
        server.shutdown()
    assert result.returncode == 1, result.stdout
    assert result.stderr.startswith("Error: ")
    assert "not decodable audio" in result.stderr or "cannot be used" in result.stderr
    assert "Traceback" not in result.stderr


def test_list_devices_without_portaudio_names_the_library(live_ws, run_cli):
    result = run_cli("live", "-w", str(live_ws.root), "--list-devices")
    try:
        import sounddevice  # noqa: F401
    except OSError:
        assert result.returncode == 1 and "libportaudio2" in result.stderr
    else:  # PortAudio present: the list is printed
        assert result.returncode in (0, 1)


def test_only_one_source_at_a_time(live_ws, run_cli, session):
    result = run_cli("live", "-w", str(live_ws.root), "--stdin", "--file", str(session.folder / "session.wav"))
    assert result.returncode == 1 and "choose one source" in result.stderr


os.environ.setdefault("HF_HUB_OFFLINE", "1")
