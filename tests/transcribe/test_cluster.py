"""Batch transcription on a real two-worker Ray cluster started by the test (``ray start --head``).

The cluster is kept on the loopback interface and stopped at the end, even on failure, by
killing the process group of the ``ray start`` it launched.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from atc_whisper.errors import ConfigError
from atc_whisper.transcribe.job_index import INDEX_NAME, STATE_DIR
from atc_whisper.workspace import Workspace
from workspace_helpers import ct2_workspace

TEXTS = [
    "Speedbird one two three, climb flight level three five zero",
    "Ryanair two alfa bravo, descend altitude four thousand feet",
    "Lufthansa four five six, contact tower one one eight decimal seven",
]


def test_missing_ray_names_the_extra(monkeypatch, run_cli, tmp_path):
    from atc_whisper.transcribe.cluster import require_ray

    monkeypatch.setitem(sys.modules, "ray", None)  # as if it were not installed
    with pytest.raises(ConfigError, match=r"atc-whisper\[ray\]"):
        require_ray()
    (tmp_path / "in").mkdir()
    code = ("import sys; sys.modules['ray'] = None; from atc_whisper.cli import main; "
            f"sys.exit(main(['transcribe', {str(tmp_path / 'in')!r}, '-o', {str(tmp_path / 'out')!r}, '--ray', 'auto']))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "atc-whisper[ray]" in result.stderr and result.stderr.count("Error:") == 1
    assert not (tmp_path / "out").exists()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def ray_cluster():
    """A real two-CPU Ray head on 127.0.0.1; yields (address, environment for its clients)."""
    pytest.importorskip("ray")
    # Unix socket paths must stay under ~107 characters: a short folder directly in /tmp.
    temp = Path(tempfile.mkdtemp(prefix="atcray", dir="/tmp"))
    port = _free_port()
    # Loopback only, no usage report, and a token of its own (the driver and workers get it from
    # the environment; nothing is written to ~/.ray).
    env = {**os.environ, "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_USAGE_STATS_ENABLED": "0",
           "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32)}
    env.pop("RAY_AUTH_TOKEN_PATH", None)
    log = (temp / "head.log").open("w", encoding="utf-8")
    ray_bin = Path(sys.executable).with_name("ray")
    proc = subprocess.Popen(
        [str(ray_bin), "start", "--head", "--block", "--num-cpus", "2", "--port", str(port),
         "--node-ip-address", "127.0.0.1", "--temp-dir", str(temp), "--include-dashboard", "false",
         "--disable-usage-stats"],
        stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 90
        while "Ray runtime started" not in (temp / "head.log").read_text(encoding="utf-8", errors="replace"):
            assert proc.poll() is None, (temp / "head.log").read_text(encoding="utf-8", errors="replace")
            assert time.monotonic() < deadline, "the Ray head did not start within 90 s"
            time.sleep(0.2)
        yield f"127.0.0.1:{port}", env
    finally:
        # The head, its daemons and the worker processes share the process group of `ray start`;
        # a throw-away cluster needs no graceful stop beyond a moment to flush its logs.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=2)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        log.close()
        shutil.rmtree(temp, ignore_errors=True)


@pytest.fixture(scope="module")
def cluster_ws(tmp_path_factory, ct2_cache) -> Workspace:
    return ct2_workspace(tmp_path_factory.mktemp("cluster") / "ws", ct2_cache)


def _rows(folder: Path) -> dict[str, list[dict]]:
    """Every JSON-lines output below ``folder``, without the per-run timing field."""
    out = {}
    for path in sorted(folder.rglob("*.jsonl")):
        if STATE_DIR in path.parts:
            continue
        rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
        out[path.relative_to(folder).as_posix()] = [{k: v for k, v in r.items() if k != "latency_s"} for r in rows]
    return out


@pytest.mark.slow
def test_ray_workers_write_what_the_local_path_writes(ray_cluster, run_cli, cluster_ws, tiny_en, synth_clip, tmp_path):
    address, env = ray_cluster
    archive = tmp_path / "archive"
    for name, text in zip(["tower/a.wav", "tower/b.wav", "approach/c.wav"], TEXTS, strict=True):
        (archive / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(synth_clip(text), archive / name)
    (archive / "tower" / "corrupt.wav").write_bytes(os.urandom(4000))
    common = ["-w", str(cluster_ws.root), "--model", str(tiny_en.hf_dir), "--set", "model.threads=1",
              "--format", "jsonl"]

    local = run_cli("transcribe", str(archive), "-o", str(tmp_path / "local"), *common, env=env)
    assert local.returncode == 1 and "3 transcribed, 0 already done, 1 failed" in local.stderr, local.stderr

    on_ray = run_cli("transcribe", str(archive), "-o", str(tmp_path / "ray"), "--ray", address, *common, env=env)
    assert on_ray.returncode == 1, on_ray.stderr
    assert "Traceback" not in on_ray.stderr
    assert "3 transcribed, 0 already done, 1 failed" in on_ray.stderr and "2 engine(s)" in on_ray.stderr
    assert str(archive / "tower" / "corrupt.wav") in on_ray.stderr.split("Failed (1", 1)[1]
    assert _rows(tmp_path / "ray") == _rows(tmp_path / "local")
    assert len(_rows(tmp_path / "ray")) == 3

    # Both workers took files, and neither was the driver.
    index = tmp_path / "ray" / STATE_DIR / INDEX_NAME
    workers = {json.loads(line).get("worker") for line in index.read_text(encoding="utf-8").splitlines()} - {None}
    assert len(workers) == 2

    # The resume rule is the local one: nothing left to do, and no engine is started for it.
    again = run_cli("transcribe", str(archive), "-o", str(tmp_path / "ray"), "--ray", address, *common, env=env)
    assert "0 transcribed, 3 already done, 1 failed" in again.stderr and "0 engine(s)" in again.stderr
