"""Synthetic data preparation with real TTS: files, rows, metadata.csv, splits, growth, kill-and-resume."""

from __future__ import annotations

import csv
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from atc_whisper.audio.tts import voice_parents
from atc_whisper.config import Settings
from atc_whisper.data.catalogue import Catalogue, Sample
from atc_whisper.data.prepare import prepare_dataset
from atc_whisper.data.splits import check_leakage
from atc_whisper.fsutil import sha256_file
from atc_whisper.phraseology import generate_utterances

HELD_OUT = "espeak:en-us+m3"


def _settings(**data) -> Settings:
    # Every clean clip catalogued (clean_share 1): these tests count rows per utterance.
    base = {"engines": ["espeak", "piper"], "dev_fraction": 0.2, "test_fraction": 0.3, "test_voice_share": 1.0,
            "test_voices": [HELD_OUT], "clean_share": 1.0}
    base.update(data)
    return Settings().replace(data=base)


def _wav_files(workspace) -> set[Path]:
    return {p.resolve() for d in (workspace.synthetic_dir, workspace.augmented_dir) for p in d.glob("*.wav")}


def test_prepare_real_tts_then_grow(workspace):
    # Equal engine shares, so that both engines speak some of these few utterances.
    report = prepare_dataset(workspace, _settings(samples=4, engine_weights=[1, 1]), progress=False)
    assert (report.added_utterances, report.added_samples, report.skipped) == (4, 8, [])
    with Catalogue(workspace.db_path) as cat:
        first = {s.uid: s for s in cat.samples()}

    grown = prepare_dataset(workspace, _settings(samples=6, engine_weights=[1, 1]), progress=False)
    assert (grown.added_utterances, grown.already_complete, grown.added_samples) == (2, 4, 4)

    utterances = generate_utterances(6, 42, pilot_fraction=0.4)
    with Catalogue(workspace.db_path) as cat:
        samples = cat.samples()
        assert check_leakage(cat, [HELD_OUT]) == []
        assert [r["status"] for r in cat.runs("prepare")] == ["completed", "completed"]
    assert len(samples) == 12
    for uid, old in first.items():  # growing kept the first rows untouched
        now = next(s for s in samples if s.uid == uid)
        assert (now.id, now.sha256, now.split) == (old.id, old.sha256, old.split)
    assert _wav_files(workspace) == {s.audio_path.resolve() for s in samples}  # no orphan files
    by_uid = {s.uid: s for s in samples}
    clean = [s for s in samples if not s.augmented]
    assert [c.text_norm for c in clean] == [u.reference for u in utterances]
    assert [c.text_raw for c in clean] == [u.text for u in utterances]
    for c in clean:
        assert c.audio_path.parent == workspace.synthetic_dir and sha256_file(c.audio_path) == c.sha256
        assert 1.0 < c.duration_s < 30.0 and c.params["tts"] and c.engine in ("espeak", "piper")
        assert c.meaning["callsign"] and c.role in ("controller", "pilot") and c.phase
    for a in (s for s in samples if s.augmented):
        parent = by_uid[a.parent_uid]
        assert a.audio_path.parent == workspace.augmented_dir
        assert (a.split, a.group_id, a.voice, a.text_norm) == (parent.split, parent.group_id, parent.voice, parent.text_norm)
        assert a.snr_db is not None and a.params["channel"]["snr_db"] == a.snr_db
    tests = [s for s in samples if s.split == "test"]
    assert tests and all(s.voice == HELD_OUT for s in tests)
    assert all(s.voice != HELD_OUT for s in samples if s.split != "test")
    assert {s.engine for s in samples} == {"espeak", "piper"}

    with open(workspace.metadata_csv, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 12 and {r["uid"] for r in rows} == set(by_uid)
    row = next(r for r in rows if r["uid"] == clean[0].uid)
    assert (workspace.root / row["file"]).resolve() == clean[0].audio_path.resolve()
    assert (row["reference"], row["split"], row["voice"]) == (clean[0].text_norm, clean[0].split, clean[0].voice)
    vocabulary = workspace.vocabulary_path.read_text(encoding="utf-8")
    assert "speedbird" in vocabulary.lower() and "niner" in vocabulary.lower()


def test_prepare_skips_too_long_clips_with_reason(workspace):
    report = prepare_dataset(workspace, _settings(samples=3, engines=["espeak"], max_duration_s=2.0,
                                                  min_duration_s=0.1, augmented_per_sample=0), progress=False)
    assert report.skipped and all("outside data.min_duration_s..max_duration_s" in r for _, r in report.skipped)
    with Catalogue(workspace.db_path) as cat:
        assert {s["item"] for s in cat.skipped("synthetic")} == {item for item, _ in report.skipped}
        assert all(s.duration_s <= 2.0 for s in cat.samples())


def test_rows_of_an_older_generator_version_are_replaced(workspace, capsys):
    old_uid = "syn-s42-000001-00000000"  # slot (seed 42, position 1) with words the generator no longer makes
    with Catalogue(workspace.db_path) as cat:
        for uid, folder in ((old_uid, workspace.synthetic_dir), (f"{old_uid}-aug0", workspace.augmented_dir)):
            path = folder / f"{uid}.wav"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(uid.encode())
            cat.add_sample(Sample(uid=uid, audio_path=path, sha256=uid, duration_s=1.0, text_raw="old words",
                                  text_norm="old words", split="train", source="synthetic"))
        cat.add_sample(Sample(uid="syn-s7-000001-00000000", audio_path=workspace.synthetic_dir / "other-seed.wav",
                              sha256="x", duration_s=1.0, text_raw="w", text_norm="w", split="train", source="synthetic"))
    report = prepare_dataset(workspace, _settings(samples=2, engines=["espeak"]), progress=False)
    assert report.replaced_samples == 2 and report.added_samples == 4
    with Catalogue(workspace.db_path) as cat:
        uids = cat.uids()
    assert old_uid not in uids and f"{old_uid}-aug0" not in uids
    assert "syn-s7-000001-00000000" in uids  # another seed's samples are kept
    assert not (workspace.synthetic_dir / f"{old_uid}.wav").exists()
    # The summary counts them (one log line per utterance flooded the console after a generator change).
    from atc_whisper.cli.prepare_cmd import print_prepare_summary

    print_prepare_summary(report)
    out = capsys.readouterr().out
    assert re.search(r"samples replaced \(an older generator's words\)\s*\W\s*2\s", out), out


def _count_rows(db: Path) -> int:
    if not db.exists():
        return 0
    try:
        conn = sqlite3.connect(db, timeout=5)
        try:
            return int(conn.execute("SELECT COUNT(*) FROM samples").fetchone()[0])
        finally:
            conn.close()
    except sqlite3.OperationalError:
        return 0  # schema not created yet


def _interrupt_when(args: tuple[str, ...], db: Path, rows: int, sig: int) -> int:
    """Start `atc-whisper ARGS`, send ``sig`` once the catalogue holds ``rows`` samples; return its exit code."""
    # Ctrl-C as a terminal delivers it: the child starts with SIGINT's default action even when the
    # test run itself ignores SIGINT (a shell starts background jobs so, e.g. `make test &`), which
    # the child would inherit and then finish as if never interrupted.
    proc = subprocess.Popen([sys.executable, "-m", "atc_whisper", *args], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, env={**os.environ},
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline and proc.poll() is None and _count_rows(db) < rows:
            time.sleep(0.05)
        assert proc.poll() is None, "prepare finished before it could be interrupted; raise n"
        proc.send_signal(sig)
    finally:
        code = proc.wait(timeout=60)
    return code


@pytest.mark.slow  # three real CLI processes and 30 utterances: 15-25 s on 2 busy cores
def test_ctrl_c_and_kill_minus_nine_then_resume(workspace, run_cli):
    n = 30
    ws = str(workspace.root)
    args = ("prepare", "--samples", str(n), "-w", ws, "--no-progress", "--set", "data.engines=espeak",
            "--set", "data.clean_share=1.0")

    assert _interrupt_when(args, workspace.db_path, 6, signal.SIGINT) == 130  # Ctrl-C
    with Catalogue(workspace.db_path) as cat:
        after_ctrl_c = cat.count()
        assert cat.runs("prepare")[0]["status"] == "interrupted"
    _interrupt_when(args, workspace.db_path, after_ctrl_c + 8, signal.SIGKILL)  # kill -9
    with Catalogue(workspace.db_path) as cat:
        at_kill = cat.count()
        assert after_ctrl_c + 8 <= at_kill < 2 * n
        assert cat.runs("prepare")[1]["status"] == "running"  # killed: it never reached its end

    resumed = run_cli(*args)
    assert resumed.returncode == 0, resumed.stderr
    with Catalogue(workspace.db_path) as cat:
        samples = cat.samples()
        assert cat.runs("prepare")[-1]["status"] == "completed"
        assert cat.verify_files() == []
        assert check_leakage(cat, [HELD_OUT]) == []
        skipped = cat.skipped()
    assert skipped == []
    from atc_whisper.data.prepare import everyday_slots
    from atc_whisper.data.static import STATIC_PHASE, static_count
    from atc_whisper.phraseology.everyday import everyday_sentence

    static = [s for s in samples if s.phase == STATIC_PHASE]  # added once the utterances are done
    assert len(static) == static_count(n, Settings().data.static_fraction) > 0 and {s.text_norm for s in static} == {""}
    total = 2 * n + len(static)
    assert len(samples) == total and len({s.uid for s in samples}) == total and len({s.sha256 for s in samples}) == total
    samples = [s for s in samples if s.phase != STATIC_PHASE]

    everyday = everyday_slots(n, 42, Settings().data.plain_fraction)  # rehearsal sentences in some slots
    expected = {everyday_sentence(42, i) if i in everyday else u.reference
                for i, u in enumerate(generate_utterances(n, 42, pilot_fraction=0.4))}
    assert {s.text_norm for s in samples} == expected
    assert _wav_files(workspace) == {s.audio_path.resolve() for s in samples + static}  # no orphan or half-written file
    assert not [p for d in (workspace.synthetic_dir, workspace.augmented_dir) for p in d.iterdir() if p.name.startswith(".")]


def test_everyday_sentences_are_mixed_into_training_only(workspace):
    from atc_whisper.data.prepare import EVERYDAY_PHASE, everyday_slots
    from atc_whisper.phraseology.everyday import everyday_sentence

    settings = _settings(samples=8, engines=["espeak"], augmented_per_sample=0, plain_fraction=0.5,
                         dev_fraction=0.3, test_fraction=0.3)
    slots = everyday_slots(8, 42, 0.5)
    assert 0 < len(slots) < 8
    prepare_dataset(workspace, settings, progress=False)
    utterances = generate_utterances(8, 42, pilot_fraction=0.4)
    with Catalogue(workspace.db_path) as cat:
        samples = sorted(cat.samples(), key=lambda s: s.uid)
    assert len(samples) == 8
    for index, sample in enumerate(samples):
        if index in slots:
            sentence = everyday_sentence(42, index)
            assert (sample.text_raw, sample.text_norm) == (sentence, sentence)  # written as people write
            assert (sample.split, sample.phase, sample.role) == ("train", EVERYDAY_PHASE, None)
            assert not sample.meaning["callsign"] and sample.meaning["commands"] == []
        else:
            assert sample.text_norm == utterances[index].reference and sample.phase != EVERYDAY_PHASE
    assert {s.split for i, s in enumerate(samples) if i not in slots} - {"train"}  # ATC still reaches dev/test
    # Off means off: the same slots hold ATC transmissions again.
    assert everyday_slots(8, 42, 0.0) == set()


def test_static_clips_join_training_only_and_grow_with_the_data(workspace):
    from atc_whisper.data.static import STATIC_PHASE, static_uid

    settings = _settings(samples=8, engines=["espeak"], augmented_per_sample=1, static_fraction=0.25, clean_share=0.0)
    report = prepare_dataset(workspace, settings, progress=False)
    assert report.static_clips == 2 and report.added_samples == 8 + 2
    with Catalogue(workspace.db_path) as cat:
        static = sorted((s for s in cat.samples() if s.phase == STATIC_PHASE), key=lambda s: s.uid)
    assert [s.uid for s in static] == [static_uid(42, 0), static_uid(42, 1)]
    for sample in static:
        assert (sample.split, sample.text_norm, sample.text_raw, sample.voice) == ("train", "", "", None)
        assert sample.audio_path.is_file() and sha256_file(sample.audio_path) == sample.sha256
        assert sample.params["channel"]["static"] is True and 0.5 <= sample.duration_s <= 6.0
    again = prepare_dataset(workspace, settings.replace(data={"samples": 12}), progress=False)
    assert again.static_clips == 1  # round(12 x 0.25) = 3: only the new one is made
    with Catalogue(workspace.db_path) as cat:
        kept = {s.uid: s.sha256 for s in cat.samples() if s.phase == STATIC_PHASE}
    assert {u: kept[u] for u in (s.uid for s in static)} == {s.uid: s.sha256 for s in static}
    assert len(kept) == 3


def test_clean_share_catalogues_a_few_clean_clips_and_caches_the_rest(workspace):
    from atc_whisper.data.prepare import catalogues_clean

    n = 16
    settings = _settings(samples=n, engines=["espeak"], clean_share=0.25, augmented_per_sample=1, test_voice_share=0.0,
                         workers=1)
    chosen = {i for i in range(n) if catalogues_clean(42, i, 0.25)}
    assert 0 < len(chosen) < n
    first = prepare_dataset(workspace, settings, progress=False)
    assert first.added_samples == n + len(chosen) and first.synthesis["espeak"]["clips"] == n
    with Catalogue(workspace.db_path) as cat:
        samples = cat.samples()
    clean = [s for s in samples if not s.augmented]
    radio = [s for s in samples if s.augmented]
    assert len(radio) == n  # every utterance still has its radio variant
    assert sorted(int(s.uid.split("-")[2]) for s in clean) == sorted(chosen)
    assert _wav_files(workspace) == {s.audio_path.resolve() for s in samples}  # synthetic/ holds only catalogued clips
    cached = sorted(workspace.clean_cache_dir.glob("*.wav"))  # kept as the variants' source, not catalogued
    assert {p.stem for p in cached} == {s.parent_uid for s in radio} - {s.uid for s in clean}
    for s in radio:  # the meaning says what kind of transmission it is
        assert s.meaning["kind"] and s.meaning["phraseology"] in ("icao", "faa") and "blocked" in s.meaning

    # More variants later come from the kept clean clips: nothing is synthesised again.
    more = prepare_dataset(workspace, settings.replace(data={"augmented_per_sample": 3}), progress=False)
    assert more.added_samples == 2 * n and more.synthesis == {}
    with Catalogue(workspace.db_path) as cat:
        samples = cat.samples()
        assert cat.verify_files() == []
    for uid in {s.parent_uid for s in samples if s.augmented}:  # every variant of an utterance: one voice, one prosody
        variants = [s for s in samples if s.parent_uid == uid]
        assert len(variants) == 3
        assert len({(s.voice, json.dumps(s.params["tts"], sort_keys=True)) for s in variants}) == 1

    # Every clean clip wanted now: the cached ones move into the dataset folder, still not synthesised.
    everything = prepare_dataset(workspace, settings.replace(data={"augmented_per_sample": 3, "clean_share": 1.0}),
                                 progress=False)
    assert everything.added_samples == n - len(chosen) and everything.synthesis == {}
    assert not list(workspace.clean_cache_dir.glob("*.wav"))
    with Catalogue(workspace.db_path) as cat:
        samples = cat.samples()
        assert cat.verify_files() == [] and len([s for s in samples if not s.augmented]) == n
    assert _wav_files(workspace) == {s.audio_path.resolve() for s in samples}


def test_without_radio_variants_every_clean_clip_is_catalogued(workspace):
    prepare_dataset(workspace, _settings(samples=4, engines=["espeak"], clean_share=0.0, augmented_per_sample=0),
                    progress=False)
    with Catalogue(workspace.db_path) as cat:
        assert cat.count() == 4 and not cat.samples(augmented=True)


def test_blocked_transmissions_get_the_blocking_burst(workspace):
    seed, index = next((s, i) for s in range(200) for i, u in enumerate(generate_utterances(8, s)) if u.blocked)
    settings = _settings(samples=index + 1, seed=seed, engines=["espeak"], clean_share=0.0, test_voice_share=0.0,
                         plain_fraction=0.0)
    prepare_dataset(workspace, settings, progress=False)
    utterance = generate_utterances(index + 1, seed)[index]
    with Catalogue(workspace.db_path) as cat:
        variant = next(s for s in cat.samples(augmented=True) if s.text_norm == utterance.reference)
    assert variant.meaning["blocked"] is True and variant.params["channel"]["blocked"] is True
    assert variant.params["channel"]["blocked_s"] >= 0.3


def _catalogue_rows(workspace) -> list[tuple]:
    """Every row as the data it holds (paths relative to the workspace)."""
    with Catalogue(workspace.db_path) as cat:
        return sorted((s.uid, s.sha256, s.duration_s, s.voice, s.engine, s.split, s.text_norm,
                       json.dumps(s.params, sort_keys=True), cat.relative_path(s.audio_path)) for s in cat.samples())


def test_two_workers_make_the_same_catalogue_as_one(tmp_path):
    from atc_whisper.workspace import Workspace

    # Every radio effect on, the second station (another transmission synthesised inside the
    # worker) and a blocked transmission included: the workers must draw them all alike.
    seed = next(s for s in range(200) if any(u.blocked for u in generate_utterances(6, s)))
    settings = _settings(samples=6, seed=seed, engines=["espeak", "flite"], test_fraction=0.2).replace(channel={
        "overlap_probability": 1.0, "heterodyne_probability": 1.0, "fade_probability": 1.0,
        "receiver_clip_probability": 1.0, "codec_probability": 1.0, "bundled_noise_probability": 1.0})
    made = {}
    for workers in (1, 2):
        ws = Workspace.at(tmp_path / f"w{workers}")
        ws.create()
        report = prepare_dataset(ws, settings.replace(data={"workers": workers}), progress=False)
        assert report.workers == workers and report.added_utterances == 6
        assert sum(c["clips"] for c in report.synthesis.values()) == 6 and all(c["seconds"] > 0 for c in report.synthesis.values())
        made[workers] = _catalogue_rows(ws)
    assert made[1] == made[2]  # same voices, prosody, channel, files and hashes
    assert {row[4] for row in made[1]} == {"espeak", "flite"}
    channels = [json.loads(row[7])["channel"] for row in made[1] if "channel" in json.loads(row[7])]
    assert any(c["overlap"] and c.get("overlap_text") for c in channels)  # a second station spoke
    assert any(c["blocked"] for c in channels)


def test_voices_are_spread_and_the_summary_counts_them(workspace):
    from atc_whisper.data.prepare import VoicePlan, voice_summary

    # The default engines and shares: no voice speaks more than ~6 % of the training utterances
    # (before, Piper's single voice spoke half of them).
    defaults = Settings().data
    plan = VoicePlan(defaults.engines, defaults.test_voices, 0.5, defaults.engine_weights, defaults.kokoro_blend_share)
    rng = np.random.default_rng(3)
    drawn = Counter(plan.choose("train", rng) for _ in range(3000))
    plain = Counter()
    for voice, n in drawn.items():
        plain[voice_parents(voice)[0]] += n
    assert max(plain.values()) / 3000 < 0.07
    assert max(plan.expected_shares().values()) <= 0.05 + 1e-9
    engines = Counter(v.partition(":")[0] for v in drawn.elements())
    assert abs(engines["kokoro"] / 3000 - 0.25) < 0.03 and abs(engines["espeak"] / 3000 - 0.4) < 0.03
    blends = [v for v in drawn if v.startswith("kokoro:") and "+" in v]
    assert abs(sum(drawn[v] for v in blends) / engines["kokoro"] - 0.5) < 0.06
    assert all(p[8] == q[8] for v in blends for p, q in [voice_parents(v)])  # same gender: kokoro:af_* + kokoro:af_*
    assert not any(set(voice_parents(v)) & set(defaults.test_voices) for v in drawn)  # held out, also from blends

    report = prepare_dataset(workspace, _settings(samples=14, engines=["espeak", "piper", "flite"], augmented_per_sample=0),
                             progress=False)
    by_voice = report.totals["by_voice"]
    assert sum(by_voice.values()) == 14 and max(by_voice.values()) <= 4
    rows = {r["engine"]: r for r in voice_summary(by_voice)}
    assert sum(r["utterances"] for r in rows.values()) == 14 and rows["espeak"]["voices"] >= 3


def test_a_missing_engine_is_named_with_its_install_step(workspace, monkeypatch):
    from atc_whisper.audio import tts
    from atc_whisper.errors import TTSError

    def missing() -> tts.TTSEngine:
        raise TTSError("festival not found; install it with 'apt-get install festival'.")

    monkeypatch.setattr(tts, "_FACTORIES", dict(tts._FACTORIES))
    monkeypatch.setattr(tts, "_INSTANCES", {k: v for k, v in tts._INSTANCES.items() if k != "festival"})
    tts.register_engine("festival", missing)
    with pytest.raises(TTSError, match=r"data.engines includes 'festival'.*apt-get install festival.*data.engines=\['espeak'\]"):
        prepare_dataset(workspace, _settings(samples=1, engines=["espeak", "festival"]), progress=False)
