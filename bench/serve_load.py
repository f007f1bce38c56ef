"""Load on `atc-whisper serve`: concurrent upload clients while a live frequency runs.

The real server runs as a subprocess on a free loopback port, listening to a synthetic radio
session (espeak transmissions over static) replayed at real-time pace. It runs twice:

1. **unloaded** - the live frequency alone: the baseline live latency;
2. **loaded** - the same session while N client threads POST clips to
   ``/v1/audio/transcriptions`` back to back for as long as the session plays.

Figures: upload requests/s, p50/p95 request latency, errors (any non-200 or transport error);
live transmissions transcribed in each run (a lost one is a transmission of the unloaded run
missing from the loaded run), live p50/p95 latency (end of transmission to transcript ready,
from the JSON-lines file), how many loaded transmissions took longer than 1.5x the unloaded p95,
and the ratio loaded p95 / unloaded p95.

Target (issue 13), 4 concurrent clients on the reference 2-core machine with tiny.en:
0 errors, 0 lost transmissions, live p95 within 1.5x of unloaded. The server gives live audio
priority over uploads on its one engine (``serve/scheduler.py``).

    python bench/serve_load.py                       # 4 clients, 6 transmissions (~30 s per run)
    python bench/serve_load.py --clients 8 --transmissions 10
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

_URL = re.compile(r"on (http://127\.0\.0\.1:\d+)/")
CLIP_TEXTS = [
    "delta two three four climb flight level three five zero",
    "american one two three contact tower one one eight decimal seven",
    "november one two three alpha bravo cleared to land runway two seven",
    "speedbird four five six turn left heading two seven zero",
]


def percentile(values: list[float], q: float) -> float:
    import numpy as np

    return float(np.percentile(values, q)) if values else 0.0


def start_server(workspace: Path, model: str, wav: Path, threads: int, jsonl: Path) -> tuple[subprocess.Popen, str]:
    cmd = [sys.executable, "-m", "atc_whisper", "-q", "serve", "-w", str(workspace), "--port", "0", "--model", model,
           "--engine", "ct2", "--realtime", "--source", f"Radio=file:{wav}", "--jsonl", str(jsonl),
           "--set", f"model.threads={threads}", "--set", "model.offline=true"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    for line in proc.stdout:
        match = _URL.search(line)
        if match:
            threading.Thread(target=proc.stdout.read, daemon=True).start()  # keep the pipe drained
            return proc, match.group(1)
    raise SystemExit(f"server did not start: {proc.stderr.read() if proc.stderr else ''}")


def frequency_state(client, url: str) -> str:  # type: ignore[no-untyped-def]
    health = client.get(f"{url}/api/health").json()
    return health["frequencies"][0]["state"] if health["frequencies"] else "?"


def run(workspace: Path, model: str, wav: Path, clips: list[bytes], clients: int, threads: int, label: str) -> dict:
    import httpx

    jsonl = workspace / f"{label}.jsonl"
    jsonl.unlink(missing_ok=True)
    proc, url = start_server(workspace, model, wav, threads, jsonl)
    stop = threading.Event()
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()

    def client_loop(n: int) -> None:
        with httpx.Client(timeout=120) as http:
            i = n
            while not stop.is_set():
                clip = clips[i % len(clips)]
                i += 1
                started = time.perf_counter()
                try:
                    r = http.post(f"{url}/v1/audio/transcriptions", files={"file": ("clip.wav", clip, "audio/wav")},
                                  data={"model": "whisper-1"})
                    ok = r.status_code == 200 and "text" in r.json()
                    problem = None if ok else f"HTTP {r.status_code}: {r.text[:120]}"
                except httpx.HTTPError as exc:
                    problem = f"{type(exc).__name__}: {exc}"
                with lock:
                    if problem is None:
                        latencies.append(time.perf_counter() - started)
                    else:
                        errors.append(problem)

    workers = [threading.Thread(target=client_loop, args=(n,), daemon=True) for n in range(clients)]
    began = time.perf_counter()
    for w in workers:
        w.start()
    with httpx.Client(timeout=30) as probe:
        while frequency_state(probe, url) in ("opened", "listening"):
            time.sleep(0.5)
        health = probe.get(f"{url}/api/health").json()
    stop.set()
    for w in workers:
        w.join(180)
    elapsed = time.perf_counter() - began
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(120)
    finally:
        if proc.poll() is None:
            proc.kill()
    records = [json.loads(line) for line in jsonl.read_text().splitlines() if line.strip()]
    live = [r["latency_s"] for r in records]
    return {
        "label": label, "clients": clients, "elapsed_s": elapsed, "requests": len(latencies), "errors": errors,
        "rps": len(latencies) / elapsed if elapsed else 0.0,
        "p50_s": percentile(latencies, 50), "p95_s": percentile(latencies, 95),
        "live": live, "live_starts": [round(r["stream_start_s"], 1) for r in records],
        "live_p50_s": percentile(live, 50), "live_p95_s": percentile(live, 95),
        "live_wait_max_s": health["decoder"]["live"]["max_wait_s"],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=4, help="concurrent upload clients in the loaded run")
    parser.add_argument("--transmissions", type=int, default=6, help="transmissions in the live session")
    parser.add_argument("--model", default="openai/whisper-tiny.en")
    parser.add_argument("--threads", type=int, default=2, help="CPU threads of the server's engine")
    parser.add_argument("--workspace", type=Path, default=None, help="reuse a workspace's model caches")
    parser.add_argument("--seed", type=int, default=5)
    args = parser.parse_args(argv)

    import numpy as np

    from atc_whisper.audio.io import write_wav
    from atc_whisper.audio.tts import synthesize
    from atc_whisper.live.simulate import synthetic_session
    from atc_whisper.log import setup_logging
    from atc_whisper.phraseology import generate_utterances
    from atc_whisper.workspace import Workspace

    setup_logging(None, level="WARNING")
    root = args.workspace or Path(tempfile.mkdtemp(prefix="serve_bench_")) / "ws"
    workspace = Workspace.at(root)
    workspace.create()
    texts = [u.text for u in generate_utterances(args.transmissions, args.seed)]
    gaps = list(np.random.default_rng(args.seed).uniform(1.5, 3.0, max(args.transmissions - 1, 0)))
    session = synthetic_session(texts, gaps_s=gaps, noise_dbfs=-45.0, seed=args.seed)
    wav = session.write_wav(workspace.live_dir / "bench_session.wav")
    clips = []
    for i, text in enumerate(CLIP_TEXTS):
        path = write_wav(workspace.live_dir / f"bench_clip{i}.wav", synthesize(text, "espeak:en-us"))
        clips.append(path.read_bytes())
    print(f"live session: {len(texts)} transmissions, {session.duration_s:.1f} s at real-time pace; upload clips: "
          f"{len(clips)} espeak utterances of {min(len(c) for c in clips) / 32000:.1f}-{max(len(c) for c in clips) / 32000:.1f} s; "
          f"model {args.model}, {args.threads} engine threads, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}")
    unloaded = run(root, args.model, wav, clips, 0, args.threads, "unloaded")
    loaded = run(root, args.model, wav, clips, args.clients, args.threads, "loaded")
    print(f"{'run':9} {'clients':>7} {'req':>5} {'req/s':>6} {'p50 s':>6} {'p95 s':>6} {'errors':>6} "
          f"{'live tx':>7} {'live p50 s':>10} {'live p95 s':>10} {'max live wait s':>15}")
    for r in (unloaded, loaded):
        print(f"{r['label']:9} {r['clients']:>7} {r['requests']:>5} {r['rps']:>6.2f} {r['p50_s']:>6.2f} {r['p95_s']:>6.2f} "
              f"{len(r['errors']):>6} {len(r['live']):>7} {r['live_p50_s']:>10.2f} {r['live_p95_s']:>10.2f} "
              f"{r['live_wait_max_s']:>15.2f}")
    lost = [s for s in unloaded["live_starts"] if not any(abs(s - t) < 0.5 for t in loaded["live_starts"])]
    bound = 1.5 * unloaded["live_p95_s"]
    delayed = sum(1 for v in loaded["live"] if v > bound)
    ratio = loaded["live_p95_s"] / unloaded["live_p95_s"] if unloaded["live_p95_s"] else float("inf")
    print(f"lost live transmissions: {len(lost)} of {len(unloaded['live'])} (planted {len(texts)}); "
          f"delayed beyond 1.5x the unloaded p95 ({bound:.2f} s): {delayed}")
    print(f"live p95 loaded / unloaded: {ratio:.2f}x (target <= 1.5x); upload errors: {len(loaded['errors'])}")
    for problem in loaded["errors"][:5]:
        print(f"  error: {problem}")
    met = not loaded["errors"] and not lost and ratio <= 1.5
    print(f"target {'met' if met else 'NOT met'}; load average now {os.getloadavg()[0]:.2f} "
          "(other processes on a shared machine inflate both runs)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
