"""`atc-whisper serve` as a real subprocess on a loopback port: the OpenAI-compatible endpoint (httpx
and the real OpenAI client), the transcript API and corrections, and the safety rules (token,
limits, bad uploads, path traversal, misbehaving clients)."""

from __future__ import annotations

import io
import json
import re
import socket
import time
import wave
from pathlib import Path

import httpx
import numpy as np
import pytest

from atc_whisper.data.catalogue import Catalogue
from serve_helpers import ServerProcess
from workspace_helpers import ct2_workspace

TOKEN = "test-token-5b1f"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
# tiny.en hears this espeak clip as "Delta 234 climb flight level 350": a callsign and a command.
CLIP_TEXT = "delta two three four climb flight level three five zero"
MAX_UPLOAD_MB = 1.0
MAX_AUDIO_S = 20.0



@pytest.fixture(scope="module")
def server(tmp_path_factory, tiny_en, ct2_cache):
    """One server for the module: uploads only (no frequency), a token, small limits."""
    ws = ct2_workspace(tmp_path_factory.mktemp("serve") / "ws", ct2_cache)
    proc = ServerProcess(["-w", str(ws.root), "--model", str(tiny_en.hf_dir), "--engine", "ct2",
                          "--set", f"serve.max_upload_mb={MAX_UPLOAD_MB}", "--set", f"serve.max_audio_s={MAX_AUDIO_S}"],
                         env={"ATC_WHISPER_TOKEN": TOKEN})
    proc.workspace = ws  # type: ignore[attr-defined]
    yield proc
    code = proc.stop()
    assert code == 0, proc.output
    assert "Traceback" not in proc.output


@pytest.fixture(scope="module")
def client(server):
    with httpx.Client(base_url=server.url, headers=AUTH, timeout=120) as c:
        yield c


@pytest.fixture(scope="module")
def clip(synth_clip) -> Path:
    return synth_clip(CLIP_TEXT)


def _words(text: str) -> str:
    return re.sub(r"[^a-z0-9]", "", text.lower())


def _post(client, path: Path | bytes, name: str = "clip.wav", **form):  # type: ignore[no-untyped-def]
    data = path.read_bytes() if isinstance(path, Path) else path
    return client.post("/v1/audio/transcriptions", files={"file": (name, data, "audio/wav")},
                       data={"model": "whisper-1", **form})


def _assert_error(response, status: int, *needles: str) -> str:  # type: ignore[no-untyped-def]
    assert response.status_code == status, response.text
    body = response.json()
    message = body["error"]["message"]
    for needle in needles:
        assert needle in message, message
    assert "Traceback" not in response.text
    return message


# -- the OpenAI-compatible endpoint ------------------------------------------------------------


def test_every_response_format_with_an_ordinary_http_client(client, clip):
    from atc_whisper.transcribe.formats import parse_srt

    verbose = _post(client, clip, response_format="verbose_json")
    assert verbose.status_code == 200, verbose.text
    v = verbose.json()
    assert v["task"] == "transcribe" and v["language"] == "english" and 2.0 < v["duration"] < 6.0
    assert "climb" in v["text"].lower() and "350" in v["text"]
    # The ATC reading OpenAI's schema lacks: callsign, commands, confidence - overall and per segment.
    assert v["callsign"] == "delta two three four"
    assert {"type": "climb", "value": "FL350"}.items() <= v["commands"][0].items()
    assert set(v["confidence"]) == {"low_confidence", "reasons", "avg_logprob", "no_speech_prob"}
    segment = v["segments"][0]
    assert segment["callsign"] == "delta two three four" and 0 <= segment["start"] < segment["end"] <= v["duration"]
    assert {"id", "seek", "tokens", "temperature", "avg_logprob", "compression_ratio", "no_speech_prob"} <= set(segment)

    plain = _post(client, clip)  # response_format defaults to json
    assert plain.status_code == 200 and plain.json() == {"text": v["text"]}
    text = _post(client, clip, response_format="text")
    assert text.headers["content-type"].startswith("text/plain") and text.text.strip() == v["text"]
    srt = _post(client, clip, response_format="srt")
    cues = parse_srt(srt.text)
    assert len(cues) == 1 and cues[0][2].startswith(v["text"])
    vtt = _post(client, clip, response_format="vtt")
    assert vtt.headers["content-type"].startswith("text/vtt")
    assert vtt.text.startswith("WEBVTT\n\n00:") and " --> " in vtt.text and v["text"] in vtt.text


def test_the_real_openai_client_works_against_it(server, clip):
    import openai

    api = openai.OpenAI(base_url=f"{server.url}/v1", api_key=TOKEN, max_retries=0, timeout=120)
    with clip.open("rb") as fh:
        result = api.audio.transcriptions.create(model="whisper-1", file=fh, response_format="verbose_json",
                                                 language="en", prompt="Delta 234.")
    assert "climb" in result.text.lower()
    extra = result.model_extra or {}
    assert extra["callsign"] == "delta two three four" and extra["commands"][0]["type"] == "climb"
    with clip.open("rb") as fh:
        text = api.audio.transcriptions.create(model="whisper-1", file=fh, response_format="text")
    assert "climb" in str(text).lower()
    with clip.open("rb") as fh:
        plain = api.audio.transcriptions.create(model="whisper-1", file=fh)
    assert plain.text.strip() == result.text.strip() or "climb" in plain.text.lower()
    wrong = openai.OpenAI(base_url=f"{server.url}/v1", api_key="not-the-token", max_retries=0)
    with pytest.raises(openai.AuthenticationError) as excinfo, clip.open("rb") as fh:
        wrong.audio.transcriptions.create(model="whisper-1", file=fh)
    assert "token" in str(excinfo.value)
    assert api.models.list().data[0].id  # /v1/models answers


def test_openapi_schema_documents_the_api(client):
    schema = client.get("/openapi.json").json()
    paths = schema["paths"]
    assert {"/v1/audio/transcriptions", "/api/transmissions", "/api/transmissions/{transmission_id}/audio",
            "/api/transmissions/{transmission_id}", "/api/health", "/api/events"} <= set(paths)
    assert "patch" in paths["/api/transmissions/{transmission_id}"]
    form = schema["components"]["schemas"]
    upload = next(v for k, v in form.items() if k.startswith("Body_transcriptions"))
    assert {"file", "model", "prompt", "response_format", "language"} <= set(upload["properties"])
    assert client.get("/docs").status_code == 404  # Swagger UI would load from a CDN: off


# -- bad uploads and limits ---------------------------------------------------------------------


def _wav_bytes(seconds: float, level: float = 0.01) -> bytes:
    samples = (np.random.default_rng(0).normal(0, level, int(seconds * 16_000)) * 32767).astype("<i2")
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16_000)
        w.writeframes(samples.tobytes())
    return buffer.getvalue()


def test_bad_uploads_are_400_naming_the_problem(client, clip):
    _assert_error(_post(client, b"this is a text file, not audio\n" * 20, "notes.wav"), 400,
                  "the upload 'notes.wav' is not an audio file")
    _assert_error(_post(client, b"", "empty.wav"), 400, "empty")
    truncated = clip.read_bytes()[: len(clip.read_bytes()) // 2]
    _assert_error(_post(client, truncated, "cut.wav"), 400, "the upload 'cut.wav'", "truncated")
    _assert_error(client.post("/v1/audio/transcriptions", data={"model": "whisper-1"}), 400, "file")
    _assert_error(_post(client, clip, response_format="docx"), 400, "response_format 'docx'", "verbose_json")
    _assert_error(_post(client, clip, language="de"), 400, "language 'de'")
    _assert_error(_post(client, clip, temperature="hot"), 400, "temperature")
    # Nothing above was decoded by the engine, and the server still transcribes.
    assert "climb" in _post(client, clip).json()["text"].lower()


def test_oversize_and_overlong_uploads_are_413(client):
    big = _wav_bytes(40.0)  # 1.28 MB > 1 MB
    _assert_error(_post(client, big, "big.wav"), 413, "1.0 MB", "serve.max_upload_mb")

    def chunks():  # no Content-Length: cut off once past the limit
        yield b'--xyz\r\nContent-Disposition: form-data; name="file"; filename="endless.wav"\r\n\r\n'
        for _ in range(17):  # 1.11 MB
            yield b"\0" * 65536

    chunked = client.post("/v1/audio/transcriptions", content=chunks(),
                          headers={"Content-Type": "multipart/form-data; boundary=xyz"})
    _assert_error(chunked, 413, "serve.max_upload_mb")
    _assert_error(_post(client, _wav_bytes(25.0), "long.wav"), 413, "lasts 25.0 s", "serve.max_audio_s")
    _assert_error(client.patch("/api/transmissions/1", content=b"x" * 100_000,
                               headers={"Content-Type": "application/json"}), 413, "request body")


# -- token ---------------------------------------------------------------------------------------


def test_every_request_needs_the_token(server):
    with httpx.Client(base_url=server.url, timeout=30) as anon:
        for method, path in [("GET", "/"), ("GET", "/api/health"), ("GET", "/static/app.js"),
                             ("GET", "/openapi.json"), ("POST", "/v1/audio/transcriptions"),
                             ("GET", "/api/transmissions"), ("GET", "/api/events")]:
            response = anon.request(method, path)
            _assert_error(response, 401, "token")
            assert response.headers["www-authenticate"] == "Bearer"
        _assert_error(anon.get("/api/health", headers={"Authorization": "Bearer nope"}), 401, "wrong token")
        assert anon.get("/api/health", headers={"X-API-Key": TOKEN}).status_code == 200
        # Opening the page with ?token= sets a cookie the page's own requests then carry.
        page = anon.get(f"/?token={TOKEN}")
        assert page.status_code == 200 and "<title>" in page.text
        assert "HttpOnly" in page.headers["set-cookie"] and "SameSite=Strict" in page.headers["set-cookie"]
        assert anon.get("/api/health").status_code == 200  # the cookie jar now has it


def test_requests_for_other_host_names_are_refused(server):
    # DNS rebinding: a page on another site reaching the loopback server under its own name.
    response = httpx.get(f"{server.url}/api/health", headers={**AUTH, "Host": "evil.example:8765"})
    _assert_error(response, 421, "127.0.0.1 or localhost")


# -- transcripts API, corrections, audio and traversal ---------------------------------------------


def _add_rows(ws, rows):  # type: ignore[no-untyped-def]
    with Catalogue(ws.db_path, root=ws.root) as catalogue:
        return catalogue.add_transcripts(rows)


def test_search_correct_export_import(server, client, clip, run_cli):
    ws = server.workspace
    audio_dir = ws.live_dir / "audio"
    audio_dir.mkdir(parents=True, exist_ok=True)
    saved = audio_dir / "s_00000.wav"
    saved.write_bytes(clip.read_bytes())
    ids = _add_rows(ws, [
        {"started_at": "2026-11-24T21:05:00.000Z", "duration_s": 3.5, "source": "Tower", "text": "delta two three four climb",
         "callsign": "delta two three four", "commands": [{"type": "climb", "value": "FL350"}], "audio_path": str(saved),
         "low_confidence": True, "reasons": ["low_logprob"]},
        {"started_at": "2026-11-24T21:06:00.000Z", "duration_s": 2.0, "source": "Approach", "text": "speedbird one two three",
         "callsign": "speedbird one two three", "low_confidence": False},
        {"started_at": "2026-11-24T22:00:00.000Z", "duration_s": 2.0, "source": "Tower", "text": "roger",
         "low_confidence": False},
    ])
    page = client.get("/api/transmissions", params={"limit": 2}).json()
    assert page["total"] >= 3 and len(page["items"]) == 2 and page["items"][0]["id"] == ids[2]  # newest first
    found = client.get("/api/transmissions", params={"q": "climb delta"}).json()
    assert [t["id"] for t in found["items"]] == [ids[0]]
    item = found["items"][0]
    assert item["frequency"] == "Tower" and item["reasons"] == ["low_logprob"] and item["low_confidence"] is True
    assert item["audio_url"] == f"/api/transmissions/{ids[0]}/audio" and "audio_path" not in item
    # A row stored without the conversation's fields (an older row, a file transcript) has them as null.
    assert [item[k] for k in ("role", "role_score", "exchange", "readback", "session")] == [None] * 5
    assert [t["id"] for t in client.get("/api/transmissions", params={"callsign": "speedbird"}).json()["items"]] == [ids[1]]
    window = {"since": "2026-11-24T21:00", "until": "2026-11-24T21:30", "frequency": "Tower"}
    assert [t["id"] for t in client.get("/api/transmissions", params=window).json()["items"]] == [ids[0]]
    _assert_error(client.get("/api/transmissions", params={"limit": 0}), 400, "limit")
    # The API runs the catalogue's one search (data/transcripts.py): designators, written forms, times people type.
    def found_ids(**params: str) -> list[int]:
        response = client.get("/api/transmissions", params=params)
        assert response.status_code == 200, response.text
        return [t["id"] for t in response.json()["items"]]

    assert found_ids(callsign="DAL234") == found_ids(q="DAL234 climb") == [ids[0]]
    assert found_ids(callsign="BAW", since="2026-11-24", until="2026-11-24") == [ids[1]]
    assert found_ids(frequency="Tow") == []  # a frequency is matched exactly
    assert ids[0] in found_ids(role="unknown", readback="none") and found_ids(role="pilot", q="climb delta") == []
    assert "text_norm" not in client.get("/api/transmissions", params={"limit": 1}).json()["items"][0]
    bad = client.get("/api/transmissions", params={"since": "last tuesday"})
    assert "not understood" in _assert_error(bad, 400, "since") and bad.json()["error"]["param"] == "since"
    _assert_error(client.get("/api/transmissions", params={"callsign": "!!"}), 400, "callsign")
    _assert_error(client.get("/api/transmissions", params={"readback": "maybe"}), 400, "readback")

    # Correct in place: the machine text stays beside the correction.
    _assert_error(client.patch(f"/api/transmissions/{ids[0]}", json={"txt": "x"}), 400, "text")
    _assert_error(client.patch("/api/transmissions/999999", json={"text": "x"}), 404, "999999")
    fixed = client.patch(f"/api/transmissions/{ids[0]}", json={"text": "  delta two three four climb flight level three five zero "})
    assert fixed.status_code == 200, fixed.text
    assert fixed.json()["text_corrected"] == CLIP_TEXT and fixed.json()["text"] == "delta two three four climb"
    with Catalogue(ws.db_path) as catalogue:
        row = catalogue.transcript(ids[0])
    assert row["text_corrected"] == CLIP_TEXT and row["text"] == "delta two three four climb" and row["corrected_at"]
    assert client.get("/api/transmissions", params={"q": "flight level", "corrected": True}).json()["total"] == 1
    client.patch(f"/api/transmissions/{ids[1]}", json={"text": "speedbird one two three roger"})  # no audio saved

    # Export: refused as a cross-site form post, written as JSON; then the generic importer reads it.
    _assert_error(client.post("/api/corrections/export", data={"a": "b"}), 415, "application/json")
    exported = client.post("/api/corrections/export", json={}).json()
    assert exported["rows"] == 1 and exported["without_audio"] == 1
    manifest = Path(exported["path"])
    assert manifest == ws.live_dir / "corrections.csv"
    lines = manifest.read_text().splitlines()
    assert lines[0].startswith("audio,text,role,machine_text") and lines[1].startswith(f"audio/s_00000.wav,{CLIP_TEXT},")
    cli = run_cli("live", "export-corrections", "-w", str(ws.root), "-o", str(ws.live_dir / "again.csv"))
    assert cli.returncode == 0, cli.stderr
    assert "1 corrected transmissions written" in cli.stdout and "1 corrected without saved audio" in cli.stdout
    assert (ws.live_dir / "again.csv").read_text() == manifest.read_text()
    imported = run_cli("import", "generic", str(manifest), "-w", str(ws.root), "--no-progress")
    assert imported.returncode == 0, imported.stderr
    assert "generic:corrections: 1 samples imported" in imported.stdout
    with Catalogue(ws.db_path) as catalogue:
        sample = catalogue.samples(source="generic:corrections")[0]
    assert sample.text_norm == CLIP_TEXT

    # Undo: null (or the machine text) removes the correction.
    undone = client.patch(f"/api/transmissions/{ids[0]}", json={"text": None}).json()
    assert undone["text_corrected"] is None and undone["corrected_at"] is None


def test_audio_is_served_only_from_the_live_folder(server, client, clip):
    ws = server.workspace
    inside = ws.live_dir / "audio" / "inside.wav"
    inside.parent.mkdir(parents=True, exist_ok=True)
    inside.write_bytes(clip.read_bytes())
    secret = ws.config_path  # a real file outside data/live
    rows = [{"started_at": 1.0, "duration_s": 1.0, "source": "Tower", "text": "x", "audio_path": p}
            for p in (str(inside), str(secret), "/etc/passwd")]
    good, absolute, system = _add_rows(ws, rows)
    with Catalogue(ws.db_path) as catalogue:  # a stored relative path that climbs out of the live folder
        catalogue.connection.execute("UPDATE transcripts SET audio_path = ? WHERE id = ?",
                                     ("data/live/../../atc_whisper.toml", system))
    played = client.get(f"/api/transmissions/{good}/audio")
    assert played.status_code == 200 and played.headers["content-type"] == "audio/wav"
    assert played.content == clip.read_bytes()
    for bad in (absolute, system):
        _assert_error(client.get(f"/api/transmissions/{bad}/audio"), 403, "outside the workspace's live folder")
    secret_text = secret.read_text()
    for attempt in ("/api/transmissions/..%2F..%2Fatc_whisper.toml/audio", "/api/transmissions/%2Fetc%2Fpasswd/audio",
                    "/static/..%2F..%2F..%2Fconfig.py", "/static/%2Fetc%2Fpasswd", "/static/../app.py",
                    f"/api/transmissions/{good}/audio/..%2F..%2F..%2F..%2Fatc_whisper.toml"):
        response = client.get(attempt)
        assert response.status_code in (400, 404), (attempt, response.status_code)
        assert "root:" not in response.text and secret_text[:40] not in response.text
    _assert_error(client.get("/api/transmissions/123456/audio"), 404, "123456")


def test_keeps_serving_while_clients_misbehave(server, client, clip):
    host, port = "127.0.0.1", server.port
    stalled = []
    # 1. garbage instead of HTTP
    with socket.create_connection((host, port), timeout=10) as sock:
        sock.sendall(b"\x16\x03\x01\x02\x00garbage not http\r\n\r\n")
        reply = sock.recv(1000)
        assert reply == b"" or reply.startswith(b"HTTP/1.1 400"), reply
    # 2. an upload that announces 500 kB, sends 10 kB and stalls (held open while we work)
    head = (f"POST /v1/audio/transcriptions HTTP/1.1\r\nHost: {host}:{port}\r\nAuthorization: Bearer {TOKEN}\r\n"
            "Content-Type: multipart/form-data; boundary=b\r\nContent-Length: 500000\r\n\r\n").encode()
    for _ in range(3):
        s = socket.create_connection((host, port), timeout=10)
        s.sendall(head + b"--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.wav\"\r\n\r\n" + b"\0" * 10_000)
        stalled.append(s)
    # 3. an upload cut off mid-body, and 4. an event stream opened and never read
    with socket.create_connection((host, port), timeout=10) as s:
        s.sendall(head + b"--b\r\n" + b"\0" * 5_000)
    reader = socket.create_connection((host, port), timeout=10)
    reader.sendall(f"GET /api/events HTTP/1.1\r\nHost: {host}:{port}\r\nAuthorization: Bearer {TOKEN}\r\n\r\n".encode())
    stalled.append(reader)
    try:
        started = time.monotonic()
        assert client.get("/api/health").json()["status"] == "ok"
        assert "climb" in _post(client, clip).json()["text"].lower()
        assert time.monotonic() - started < 60
    finally:
        for s in stalled:
            s.close()
    assert client.get("/api/health").status_code == 200


def test_health_reports_the_decoder(client):
    health = client.get("/api/health").json()
    assert health["status"] == "ok" and health["engine"] == "ct2" and health["frequencies"] == []
    assert health["decoder"]["api"]["decodes"] >= 1 and health["decoder"]["live"]["decodes"] == 0
    assert json.dumps(health)  # plain JSON


def test_non_loopback_host_needs_the_flag_and_warns(tmp_path, run_cli):
    refused = run_cli("serve", "-w", str(tmp_path / "ws"), "--set", "serve.host=0.0.0.0", "--port", "0")
    assert refused.returncode == 1 and "pass --host 0.0.0.0" in refused.stderr and "Traceback" not in refused.stderr
    # Asked for with --host: a warning at once (here the model then fails to load, ending the run).
    warned = run_cli("serve", "-w", str(tmp_path / "ws"), "--host", "0.0.0.0", "--port", "0",
                     "--model", str(tmp_path / "no-such-model"))
    assert "Warning: listening on 0.0.0.0, reachable from other machines WITHOUT a token" in warned.stderr
    assert warned.returncode == 1 and "Error:" in warned.stderr and "Traceback" not in warned.stderr
    bad = run_cli("serve", "-w", str(tmp_path / "ws"), "--source", "no-equals-sign")
    assert bad.returncode == 1 and "NAME=SPEC" in bad.stderr


def test_frequencies_and_uploads_use_the_callsign_list(tmp_path, run_cli, synth_clip, tiny_en, ct2_cache):
    """serve finds the list by the rule transcribe and live follow (decode.callsigns_file relative to
    the workspace; --callsigns as given), and every frequency prompts and snaps with it as live does."""
    ws = ct2_workspace(tmp_path / "ws", ct2_cache)
    missing = run_cli("serve", "-w", str(ws.root), "--port", "0", "--set", "decode.callsigns_file=known.txt",
                      cwd=tmp_path)
    assert missing.returncode == 1 and "Traceback" not in missing.stderr
    assert f"Error: callsigns file {ws.root / 'known.txt'} does not exist" in missing.stderr
    (ws.root / "known.txt").write_text("speedbird one two three\n")
    clip = synth_clip("Speedbird one two three, climb flight level three five zero")
    jsonl = tmp_path / "live.jsonl"
    server = ServerProcess(["-w", str(ws.root), "--model", str(tiny_en.hf_dir), "--engine", "ct2", "--file", str(clip),
                            "--no-save-audio", "--jsonl", str(jsonl), "--set", "decode.callsigns_file=known.txt"])
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not (jsonl.exists() and jsonl.read_text().strip()):
        time.sleep(0.5)
    assert server.stop() == 0, server.output
    records = [json.loads(line) for line in jsonl.read_text().splitlines()]
    assert records and records[0]["callsign"] == "speedbird one two three", records
    assert "speedbird one two three" in records[0]["text"].lower()  # the list's prompt spells the digits out


def test_source_specs_are_named_and_parsed(tmp_path):
    from atc_whisper.errors import LiveSourceError
    from atc_whisper.serve import gather_specs, parse_source

    wav = tmp_path / "tower.wav"
    wav.write_bytes(b"RIFF")
    assert parse_source("LKPR Radar=http://example.net/feed.mp3").kind == "url"
    assert parse_source(f"Tower={wav}").kind == "file"
    assert parse_source("Desk=device:2") == parse_source("Desk = device: 2")
    assert parse_source("SDR=stdin").kind == "stdin"
    specs = gather_specs(["Tower=file:" + str(wav)], files=[str(wav)], urls=["http://h/x/lkpr_app.mp3"], stdin=True)
    assert [s.name for s in specs] == ["Tower", "lkpr_app", "tower 2", "stdin"]
    with pytest.raises(LiveSourceError, match="once"):
        gather_specs(["A=stdin"], stdin=True)
    with pytest.raises(LiveSourceError, match="not a URL"):
        parse_source("X=/no/such/file.wav")


def test_ctrl_c_transcribes_the_transmission_in_progress(tmp_path, tiny_en, ct2_cache):
    from atc_whisper.live.simulate import synthetic_session

    ws = ct2_workspace(tmp_path / "ws", ct2_cache)
    texts = ["cleared to land runway two seven", "turn left heading two seven zero"]
    session = synthetic_session(texts, gaps_s=2.0, lead_s=0.5, seed=3)
    wav = session.write_wav(tmp_path / "s.wav")
    server = ServerProcess(["-w", str(ws.root), "--model", str(tiny_en.hf_dir), "--engine", "ct2",
                            "--file", str(wav), "--realtime", "--no-save-audio"])
    t0 = time.monotonic()  # the file starts playing as the address is printed
    start, end = session.spans_s[1]
    time.sleep(max(0.0, t0 + start + (end - start) * 0.75 - time.monotonic()))
    code = server.stop()
    assert code == 0, server.output
    assert "Stopped. 2 transmissions transcribed and stored (s: 2)." in server.output
    with Catalogue(ws.db_path) as catalogue:
        rows = catalogue.transcripts()
    assert len(rows) == 2 and rows[1]["end_reason"] == "flush" and "turn" in rows[1]["text"].lower()
    assert rows[0]["audio_path"] is None  # --no-save-audio
    assert len((ws.live_dir / "transcripts.jsonl").read_text().splitlines()) == 2
    assert "Traceback" not in server.output


# -- the pieces on their own ----------------------------------------------------------------------


def test_live_decodes_go_before_queued_uploads():
    import threading

    from atc_whisper.serve.scheduler import API, LIVE, DecodeScheduler

    class Engine:  # the scheduler only needs name/window_s and calls it runs
        name, window_s = "test", 30.0

    scheduler = DecodeScheduler(Engine())  # type: ignore[arg-type]
    order: list[str] = []
    gate = threading.Event()
    first = scheduler.submit(API, lambda: (gate.wait(10), order.append("api-running")))
    time.sleep(0.05)  # the decoder thread is now inside the first upload window
    later = [scheduler.submit(API, lambda i=i: order.append(f"api-{i}")) for i in range(3)]
    live = scheduler.submit(LIVE, lambda: order.append("live"))
    assert scheduler.waiting(API) == 3 and scheduler.waiting(LIVE) == 1
    gate.set()
    for future in (first, live, *later):
        future.result(10)
    # The window in progress is never interrupted; the live job then jumps the queue.
    assert order == ["api-running", "live", "api-0", "api-1", "api-2"]
    assert scheduler.stats[LIVE].decodes == 1 and scheduler.stats[API].decodes == 4
    failing = scheduler.submit(LIVE, lambda: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        failing.result(10)  # the caller gets the error, the decoder thread carries on
    assert scheduler.submit(API, lambda: 42).result(10) == 42
    scheduler.close()
    from atc_whisper.serve.scheduler import SchedulerClosed

    with pytest.raises(SchedulerClosed):
        scheduler.submit(API, lambda: None)


def test_an_open_live_transmission_holds_uploads_back():
    """While a frequency has a transmission open, no upload starts (the engine is free when it ends);
    live decodes still run, a release lets the uploads go, and a hold that is never released expires."""
    from atc_whisper.serve.scheduler import API, LIVE, DecodeScheduler

    class Engine:
        name, window_s = "test", 30.0

    scheduler = DecodeScheduler(Engine())  # type: ignore[arg-type]
    lane = scheduler.lane(LIVE)
    order: list[str] = []
    frequency = object()
    lane.speech_open(frequency, True)
    upload = scheduler.submit(API, lambda: order.append("api"))
    time.sleep(0.3)
    assert order == [] and scheduler.waiting(API) == 1  # held back while the transmission is open
    scheduler.submit(LIVE, lambda: order.append("live")).result(10)
    assert order == ["live"]  # live decodes are not held
    lane.speech_open(frequency, True)  # still open: nothing changes
    lane.speech_open(frequency, False)
    upload.result(10)
    assert order == ["live", "api"]
    scheduler.lane(API).speech_open(frequency, True)  # an upload lane cannot hold anything
    assert scheduler.submit(API, lambda: order.append("api-2")).result(10) is None and order[-1] == "api-2"
    scheduler.hold(frequency, True, max_s=0.4)  # never released: expires
    started = time.monotonic()
    scheduler.submit(API, lambda: order.append("api-3")).result(10)
    assert 0.3 <= time.monotonic() - started < 5 and order[-1] == "api-3"
    scheduler.close()


def test_a_page_that_stops_reading_is_dropped_not_waited_for():
    import asyncio

    from atc_whisper.serve.hub import SUBSCRIBER_QUEUE, Hub

    async def first_events(hub: Hub, after: int, n: int) -> list[int]:
        seqs = []
        async for event in hub.subscribe(after):
            seqs.append(event.seq)
            if len(seqs) == n:
                break
        return seqs

    async def scenario() -> tuple[int, list[int], list[int], list[int]]:
        hub = Hub(history=10)
        hub.attach(asyncio.get_running_loop())
        stalled = hub.subscribe()
        first = asyncio.ensure_future(stalled.__anext__())  # subscribes, then never reads again
        seen: list[int] = []

        async def read() -> None:
            async for event in hub.subscribe():
                seen.append(event.seq)

        task = asyncio.ensure_future(read())
        await asyncio.sleep(0)
        for i in range(SUBSCRIBER_QUEUE + 20):
            hub.publish("transmission", {"n": i})
            if i % 50 == 0:
                await asyncio.sleep(0)  # the reading page keeps up
        await asyncio.sleep(0.05)
        dropped = hub.dropped
        # A reconnecting page (Last-Event-ID) gets what it missed from the history.
        replay = await first_events(hub, SUBSCRIBER_QUEUE + 17, 3)
        hub.close()
        await asyncio.wait_for(task, 5)
        first.cancel()
        after_close = [e.seq async for e in hub.subscribe()]
        return dropped, seen, replay, after_close

    dropped, seen, replay, after_close = asyncio.run(scenario())
    assert dropped == 1  # the stalled page, and only it
    assert seen == list(range(1, SUBSCRIBER_QUEUE + 21))  # the reading page got every event, in order
    assert replay == [SUBSCRIBER_QUEUE + 18, SUBSCRIBER_QUEUE + 19, SUBSCRIBER_QUEUE + 20]
    assert after_close == []  # close() ends every stream, and new ones at once
