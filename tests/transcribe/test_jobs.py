"""Batch transcription of folders and manifests: inputs, job keys, resume, atomic outputs, bad files.

Real espeak-ng clips, the real tiny.en model (CTranslate2 int8), the real CLI as a subprocess.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from atc_whisper.config import Settings
from atc_whisper.errors import ConfigError
from atc_whisper.transcribe.inputs import collect_jobs, read_manifest, recording_start, time_from_name
from atc_whisper.transcribe.job_index import INDEX_NAME, STATE_DIR, JobIndex, remove_leftovers
from atc_whisper.transcribe.jobs import job_key, model_fingerprint, result_settings
from atc_whisper.workspace import Workspace
from workspace_helpers import ct2_workspace

AUDIO = [".wav", ".flac", ".mp3"]
TEXTS = [
    "Speedbird one two three, climb flight level three five zero",
    "Ryanair two alfa bravo, descend altitude four thousand feet",
    "Lufthansa four five six, contact tower one one eight decimal seven",
    "Easy seven eight nine, turn left heading two seven zero",
]


def _touch(path: Path, data: bytes = b"x") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


# -- inputs ------------------------------------------------------------------------------------


def test_folder_walk_mirrors_paths_skips_hidden_and_keeps_colliding_names_apart(tmp_path):
    root = tmp_path / "archive"
    for name in ("twr/0900.wav", "twr/0900.mp3", "app/sub/1000.FLAC", "notes.txt", ".hidden/x.wav", "twr/.y.wav"):
        _touch(root / name)
    out = root / "transcripts"
    _touch(out / "old.wav")  # inside the output folder: never an input
    jobs = collect_jobs([root], AUDIO, output_dir=out)
    assert [(j.path.relative_to(root).as_posix(), j.output) for j in jobs] == [
        ("app/sub/1000.FLAC", "app/sub/1000"),
        ("twr/0900.mp3", "twr/0900.mp3"),  # a.wav and a.mp3 would both be twr/0900.json
        ("twr/0900.wav", "twr/0900.wav"),
    ]
    assert [j.source for j in jobs] == ["archive/app/sub", "archive/twr", "archive/twr"]
    assert all(j.path.is_absolute() for j in jobs)

    # Two folders: mirrored below the folder they share; a file named twice is done once.
    _touch(tmp_path / "feb" / "a.wav")
    both = collect_jobs([root / "twr", tmp_path / "feb", tmp_path / "feb" / "a.wav"], AUDIO)
    assert [j.output for j in both] == ["archive/twr/0900.mp3", "archive/twr/0900.wav", "feb/a"]

    with pytest.raises(ConfigError, match="no audio files found"):
        collect_jobs([tmp_path / "feb"], [".ogg"])
    with pytest.raises(ConfigError, match="does not exist"):
        collect_jobs([tmp_path / "nowhere"], AUDIO)


def test_text_and_csv_manifests(tmp_path):
    data = tmp_path / "mnt" / "radio"
    a = _touch(data / "eddf" / "a.wav")
    b = _touch(data / "eddm" / "b.wav")
    lists = tmp_path / "lists"
    lists.mkdir()
    (lists / "files.txt").write_text(f"# tower and approach\n{a}\n\n../mnt/radio/eddm/b.wav\n", encoding="utf-8")
    jobs = collect_jobs([lists / "files.txt"], AUDIO)
    # Relative rows are relative to the manifest; outputs mirror below the folder the rows share.
    assert [(j.path, j.output) for j in jobs] == [(a, "eddf/a"), (b, "eddm/b")]

    (lists / "files.csv").write_text(
        "audio,started_at,source,notes\n"
        f"{a},2024-03-01T14:30:00Z,EDDF tower 119.9,x\n"
        "../mnt/radio/eddm/b.wav,,,\n"
        ",,,empty row\n", encoding="utf-8")
    jobs = collect_jobs([lists / "files.csv"], AUDIO)
    assert [(j.output, j.source, j.started_at) for j in jobs] == [
        ("eddf/a", "EDDF tower 119.9", "2024-03-01T14:30:00Z"), ("eddm/b", "radio/eddm", None)]
    start, origin = recording_start(jobs[0], 10.0)
    assert start == datetime(2024, 3, 1, 14, 30, tzinfo=UTC) and origin == "manifest"

    (lists / "bad.csv").write_text("path,source\na.wav,x\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="no 'audio' column"):
        read_manifest(lists / "bad.csv")
    (lists / "empty.txt").write_text("# nothing\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="lists no audio"):
        read_manifest(lists / "empty.txt")


def test_recording_time_from_file_names_and_mtime(tmp_path):
    utc = UTC
    assert time_from_name("KJFK-Twr-Mar-01-2024-1430Z.mp3") == datetime(2024, 3, 1, 14, 30, tzinfo=utc)
    assert time_from_name("eddf_20240301T143005Z.wav") == datetime(2024, 3, 1, 14, 30, 5, tzinfo=utc)
    assert time_from_name("2024-03-01_14-30-00 tower.flac") == datetime(2024, 3, 1, 14, 30, tzinfo=utc)
    assert time_from_name("tower-20241399-9999.wav") is None  # not a date
    assert time_from_name("recording_7.wav") is None
    clip = _touch(tmp_path / "take.wav")
    os.utime(clip, (1_700_000_100, 1_700_000_100))
    from atc_whisper.transcribe.inputs import FileJob

    start, origin = recording_start(FileJob(clip, "take", "x"), 100.0)
    assert origin == "file mtime" and start.timestamp() == pytest.approx(1_700_000_000)


# -- job keys, index ---------------------------------------------------------------------------


def test_job_key_follows_every_result_setting_and_nothing_else(tmp_path):
    settings = Settings()
    base = dict(model="m1", engine="ct2", fmt="json", callsigns=["speedbird one two three"])

    def digest(s: Settings = settings, **changes) -> str:
        return job_key("content", json.dumps(result_settings(s, **{**base, **changes}), sort_keys=True))

    reference = digest()
    assert digest(settings.replace(model={"threads": 7})) == reference  # speed knobs change nothing
    assert digest(settings.replace(live={"queue_size": 3})) == reference
    changed = [
        digest(settings.replace(decode={"beam_size": 3})),
        digest(settings.replace(decode={"temperatures": [0.0]})),
        digest(settings.replace(segment={"min_silence_ms": 300})),  # segmentation
        digest(settings.replace(segment={"vad": "energy"})),
        digest(settings.replace(decode={"segmentation": "window"})),
        digest(settings.replace(conversation={"exchange_window_s": 10.0})),  # roles, exchanges, readbacks
        digest(settings.replace(model={"device": "cuda"})),
        digest(model="m2"), digest(engine="hf"), digest(fmt="srt"), digest(callsigns=["easy one"]), digest(callsigns=None),
    ]
    assert reference not in changed and len(set(changed)) == len(changed)
    assert job_key("other content", "s") != job_key("content", "s")


def test_model_fingerprint_sees_changed_files_and_caches_hashes(tmp_path):
    model = tmp_path / "model"
    _touch(model / "config.json", b"{}")
    weights = _touch(model / "model.safetensors", b"a" * 1000)
    cache: dict = {}
    first = model_fingerprint([model], cache)
    assert set(cache) == {str(model / "config.json"), str(weights)}
    assert model_fingerprint([model], cache) == first
    weights.write_bytes(b"b" * 1000)  # same size, new content (and mtime)
    assert model_fingerprint([model], cache) != first
    assert model_fingerprint([model]) == model_fingerprint([model], cache)  # the cache never changes the answer


def test_index_survives_a_cut_line_and_locks_the_folder(tmp_path):
    index = JobIndex(tmp_path)
    index.record({"output": "a.json", "key": "k1"})
    index.record({"output": "b.json", "key": "k2"})
    index.record({"output": "a.json", "key": "k3"})  # the last entry of an output wins
    with pytest.raises(ConfigError, match="another transcription"):
        JobIndex(tmp_path)
    index.close()
    path = tmp_path / STATE_DIR / INDEX_NAME
    with path.open("a", encoding="utf-8") as handle:
        handle.write('{"output": "c.json", "ke')  # what a kill in mid-write leaves
    again = JobIndex(tmp_path)
    assert {k: v["key"] for k, v in again.entries.items()} == {"a.json": "k3", "b.json": "k2"}
    assert len(path.read_text(encoding="utf-8").splitlines()) == 2  # rewritten compactly
    again.close()

    _touch(tmp_path / "sub" / ".a.json.k2j4_x9q.tmp")
    _touch(tmp_path / "sub" / ".notes.tmp")  # not ours
    assert remove_leftovers(tmp_path) == 1 and (tmp_path / "sub" / ".notes.tmp").exists()


# -- through the real CLI ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def batch_ws(tmp_path_factory, ct2_cache) -> Workspace:
    """A workspace of its own (its own catalogue) with tiny.en exported to CTranslate2 once."""
    return ct2_workspace(tmp_path_factory.mktemp("batch") / "ws", ct2_cache)


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> list[Path]:
    """The TEXTS as recordings: half a second of silence, then the transmission (a recording does
    not start on its first word; tiny.en's short encoder pass mishears a first word at sample 0)."""
    from atc_whisper.audio.io import SAMPLE_RATE, write_wav
    from atc_whisper.audio.tts import synthesize

    folder = tmp_path_factory.mktemp("job_clips")
    lead_in = np.zeros(SAMPLE_RATE // 2, dtype=np.float32)
    return [write_wav(folder / f"clip{i}.wav", np.concatenate([lead_in, synthesize(text, "espeak:en-us")]))
            for i, text in enumerate(TEXTS)]


def _archive(folder: Path, clips: list[Path], names: list[str]) -> list[Path]:
    paths = []
    for clip, name in zip(clips, names, strict=False):
        target = folder / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(clip, target)
        paths.append(target)
    return paths


def _batch(run_cli, ws: Workspace, tiny_en, *args: str):
    return run_cli("transcribe", "-w", str(ws.root), "--model", str(tiny_en.hf_dir), "--set", "model.threads=1", *args)


def _mtimes(folder: Path) -> dict[str, int]:
    return {p.relative_to(folder).as_posix(): p.stat().st_mtime_ns for p in folder.rglob("*")
            if p.is_file() and STATE_DIR not in p.parts}


@pytest.mark.slow
def test_folder_run_survives_a_corrupt_file_and_reruns_only_what_changed(run_cli, batch_ws, tiny_en, clips, tmp_path):
    archive = tmp_path / "archive"
    _archive(archive, clips, ["tower/0900.wav", "tower/0915.wav", "approach/1000.wav"])
    (archive / "tower" / "broken.wav").write_bytes(b"RIFF\x00\x10\x00\x00WAVEfmt " + os.urandom(3000))
    out = tmp_path / "out"

    result = _batch(run_cli, batch_ws, tiny_en, str(archive), "--output", str(out))
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert "4 file(s): 3 transcribed, 0 already done, 1 failed." in result.stderr
    failed = result.stderr.split("Failed (1", 1)[1]
    assert str(archive / "tower" / "broken.wav") in failed
    assert "corrupt" in failed or "not an audio file" in failed, failed
    assert sorted(_mtimes(out)) == ["approach/1000.json", "tower/0900.json", "tower/0915.json"]
    first = json.loads((out / "tower" / "0900.json").read_text(encoding="utf-8"))
    assert first[0]["file"] == str(archive / "tower" / "0900.wav") and "climb" in first[0]["text"].lower()
    assert first[0]["callsign"] == "speedbird one two three"
    written = _mtimes(out)

    # Nothing changed: nothing is decoded, the model is not even loaded, no output is touched.
    started = time.perf_counter()
    again = _batch(run_cli, batch_ws, tiny_en, str(archive), "--output", str(out))
    rerun_s = time.perf_counter() - started
    assert again.returncode == 1  # the broken file is still broken, and still reported
    assert "4 file(s): 0 transcribed, 3 already done, 1 failed." in again.stderr
    assert "unchanged since the last run" in again.stderr and "0 engine(s), model load 0.0 s" in again.stderr
    assert _mtimes(out) == written
    assert rerun_s < 30, rerun_s

    # A setting that changes results redoes every file; one that does not (threads) redoes none.
    changed = _batch(run_cli, batch_ws, tiny_en, str(archive), "--output", str(out), "--set", "decode.beam_size=2")
    assert "3 transcribed, 0 already done, 1 failed." in changed.stderr, changed.stderr
    same = _batch(run_cli, batch_ws, tiny_en, str(archive), "--output", str(out), "--set", "decode.beam_size=2",
                  "--set", "model.threads=2")
    assert "0 transcribed, 3 already done" in same.stderr

    # A fixed file and a touched-but-identical file: only the fixed one is decoded.
    shutil.copy(clips[3], archive / "tower" / "broken.wav")
    os.utime(archive / "approach" / "1000.wav")
    fixed = _batch(run_cli, batch_ws, tiny_en, str(archive), "--output", str(out), "--set", "decode.beam_size=2")
    assert fixed.returncode == 0, fixed.stderr
    assert "4 file(s): 1 transcribed, 3 already done, 0 failed." in fixed.stderr
    assert (out / "tower" / "broken.json").exists()

    # Another format is another output next to the first, done once.
    srt = _batch(run_cli, batch_ws, tiny_en, str(archive), "--output", str(out), "--format", "srt",
                 "--set", "decode.beam_size=2")
    assert "4 transcribed" in srt.stderr and (out / "approach" / "1000.srt").read_text(encoding="utf-8").startswith("1\n")


def _complete_json(path: Path) -> list:
    return json.loads(path.read_text(encoding="utf-8"))  # raises on a half-written document


@pytest.mark.slow
def test_killed_run_leaves_only_complete_outputs_and_resumes(batch_ws, tiny_en, clips, tmp_path):
    archive = tmp_path / "archive"
    names = [f"f{i:02d}.wav" for i in range(8)]
    _archive(archive, clips * 2, names)
    out = tmp_path / "out"
    index = out / STATE_DIR / INDEX_NAME
    cmd = [sys.executable, "-m", "atc_whisper", "-q", "transcribe", str(archive), "-o", str(out), "-w", str(batch_ws.root),
           "--model", str(tiny_en.hf_dir), "--set", "model.threads=1"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=os.environ.copy())
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            if index.exists() and index.read_text(encoding="utf-8").count("\n") >= 2:
                break
            time.sleep(0.02)
        assert proc.poll() is None, "the run finished before it could be killed"
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(timeout=60)
        assert proc.stderr is not None
        proc.stderr.close()
    done_before = [p for p in out.glob("*.json")]
    assert 2 <= len(done_before) < len(names)
    for path in done_before:
        assert _complete_json(path)
    # A half-written transcript left by the kill (as a hidden temporary) is cleaned up.
    (out / ".f07.json.abcd_123.tmp").write_text('[{"text": "half', encoding="utf-8")

    result = subprocess.run(cmd, capture_output=True, text=True, env=os.environ.copy(), timeout=300)
    assert result.returncode == 0, result.stderr
    transcribed = int(result.stderr.split("file(s): ", 1)[1].split(" transcribed", 1)[0])
    assert transcribed == len(names) - len(done_before)
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith(".")) == [n[:-4] + ".json" for n in names]
    for name in names:
        assert _complete_json(out / (name[:-4] + ".json"))[0]["text"]
    assert not [p for p in out.rglob("*.tmp")]


@pytest.mark.slow
def test_manifest_with_catalogue_then_search(run_cli, batch_ws, tiny_en, clips, tmp_path):
    audio = _archive(tmp_path / "rec", clips, ["baw.wav", "ryr.wav"])
    manifest = tmp_path / "day.csv"
    manifest.write_text("audio,started_at,source\n"
                        f"rec/baw.wav,2024-03-01T14:30:00Z,EGLL tower {tmp_path.name}\n"
                        f"{audio[1]},2024-03-02T09:00:00Z,EGLL tower {tmp_path.name}\n", encoding="utf-8")
    out = tmp_path / "out"
    # First without the catalogue; adding it later reads the finished JSON back instead of decoding again.
    assert _batch(run_cli, batch_ws, tiny_en, str(manifest), "-o", str(out)).returncode == 0
    later = _batch(run_cli, batch_ws, tiny_en, str(manifest), "-o", str(out), "--catalogue")
    assert later.returncode == 0, later.stderr
    assert "0 transcribed, 0 already done, 2 added to the catalogue from earlier outputs" in later.stderr
    # A forced re-run replaces the files' rows rather than adding a second copy.
    forced = _batch(run_cli, batch_ws, tiny_en, str(manifest), "-o", str(out), "--catalogue", "--force")
    assert "2 transcribed" in forced.stderr and "2 row(s) stored in the catalogue" in forced.stderr

    result = run_cli("search", "-w", str(batch_ws.root), "--source", tmp_path.name, "--format", "jsonl")
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(rows) == 2
    baw = next(r for r in rows if r["callsign"] == "speedbird one two three")
    # The transmission starts after the clip's 0.5 s lead-in, less the segmenter's 0.2 s of padding;
    # its wall-clock start is the manifest's recording start plus that offset.
    assert 0.2 <= baw["offset_s"] <= 0.5
    started = datetime.fromisoformat(baw["started_at"].replace("Z", "+00:00"))
    assert (started - datetime(2024, 3, 1, 14, 30, tzinfo=UTC)).total_seconds() == pytest.approx(baw["offset_s"], abs=1e-3)
    assert baw["audio_path"] == str(audio[0]) and baw["time_source"] == "manifest"
    assert baw["output"] == "baw.json" and len(baw["file_key"]) == 32
    from atc_whisper.data.catalogue import Catalogue
    from atc_whisper.data.transcripts import search_transcripts

    with Catalogue(batch_ws.db_path, root=batch_ws.root) as catalogue:
        def search(**filters: str) -> list[Path]:
            return [r["audio_path"] for r in search_transcripts(catalogue, source=tmp_path.name, **filters).rows]

        assert search(callsign="BAW123") == search(callsign="speedbird one two three") == [audio[0]]
        assert search(since="2024-03-02") == [audio[1]] and search(until="2024-03-01") == [audio[0]]
        assert search(text="flight level three five zero") == [audio[0]]

    table = run_cli("search", "-w", str(batch_ws.root), "--source", tmp_path.name, "--callsign", "BAW123")
    assert table.returncode == 0 and "speedbird one two three" in table.stdout and "1 transcript(s)" in table.stderr


def test_batch_mode_needs_an_output_folder_and_old_mode_is_unchanged(run_cli, batch_ws, tiny_en, clips, tmp_path):
    archive = tmp_path / "archive"
    _archive(archive, clips, ["a.wav"])
    result = _batch(run_cli, batch_ws, tiny_en, str(archive))
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "--output DIR" in result.stderr and result.stderr.count("Error:") == 1
    as_file = tmp_path / "out.json"
    as_file.write_text("{}", encoding="utf-8")
    result = _batch(run_cli, batch_ws, tiny_en, str(archive), "-o", str(as_file))
    assert result.returncode == 1 and "is a file" in result.stderr

    # Plain audio files still go to standard output, as one stream.
    plain = _batch(run_cli, batch_ws, tiny_en, str(archive / "a.wav"))
    assert plain.returncode == 0 and plain.stdout.startswith("[00:00:00.") and not (archive / ".atc_whisper").exists()
