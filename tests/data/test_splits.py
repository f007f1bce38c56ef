"""Splits: deterministic, by group, stable when data grows, held-out voices only in test."""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path

import numpy as np

from atc_whisper.data.catalogue import Catalogue, Sample
from atc_whisper.data.prepare import VoicePlan
from atc_whisper.data.splits import check_leakage, group_splits, hash_split, position_split


def test_position_split_gives_exact_test_share_and_spread_dev():
    for n in (10, 37, 200):
        counts = Counter(position_split(i, 0.1, 0.1) for i in range(n))
        assert counts["test"] == math.floor(n * 0.1)
        assert abs(counts["dev"] - n * 0.1) <= 1
    first10 = [position_split(i, 0.1, 0.1) for i in range(10)]
    assert first10.count("train") == 8  # the prototype default of 10 samples still has a dev and a test sample
    assert Counter(position_split(i, 0.0, 0.0) for i in range(50)) == {"train": 50}


def test_group_splits_keep_groups_together_and_are_prefix_stable():
    rng = np.random.default_rng(0)
    groups = [f"g{int(rng.integers(40))}" for _ in range(300)]  # many repeated groups
    splits = group_splits(groups, 0.15, 0.15)
    by_group: dict[str, set[str]] = {}
    for g, s in zip(groups, splits, strict=True):
        by_group.setdefault(g, set()).add(s)
    assert all(len(s) == 1 for s in by_group.values())
    assert group_splits(groups[:50], 0.15, 0.15) == splits[:50]  # asking for more never moves earlier items
    assert group_splits(groups, 0.15, 0.15) == splits


def test_hash_split_is_deterministic_and_close_to_fractions():
    ids = [f"speaker-{i}" for i in range(4000)]
    splits = [hash_split(i, 0.1, 0.2) for i in ids]
    assert splits == [hash_split(i, 0.1, 0.2) for i in ids]
    counts = Counter(splits)
    assert abs(counts["test"] / 4000 - 0.2) < 0.03 and abs(counts["dev"] / 4000 - 0.1) < 0.03
    assert [hash_split(i, 0.1, 0.2, salt="other") for i in ids] != splits


def test_held_out_voice_only_for_test():
    plan = VoicePlan(["espeak"], ["espeak:en-us+m3"], test_voice_share=0.5)
    rng = np.random.default_rng(7)
    train_voices = {plan.choose("train", rng) for _ in range(400)} | {plan.choose("dev", rng) for _ in range(100)}
    test_voices = Counter(plan.choose("test", rng) for _ in range(400))
    assert "espeak:en-us+m3" not in train_voices and len(train_voices) > 20
    assert 120 < test_voices["espeak:en-us+m3"] < 280  # about half of the test utterances
    assert len(test_voices) > 10  # the rest use training voices


def _row(root: Path, uid: str, split: str, **kw) -> Sample:
    return Sample(uid=uid, audio_path=root / f"{uid}.wav", sha256=uid, duration_s=1.0, text_raw="x", text_norm="x",
                  split=split, source="synthetic", **kw)


def test_leakage_check_finds_each_kind_of_leak(tmp_path: Path):
    with Catalogue(tmp_path / "c.db", root=tmp_path) as cat:
        cat.add_samples([
            _row(tmp_path, "a", "train", group_id="text:1"),
            _row(tmp_path, "a-aug0", "train", group_id="text:1", parent_uid="a", augmented=True),
            _row(tmp_path, "b", "test", group_id="text:2", voice="espeak:en-us+m3"),
        ])
        assert check_leakage(cat, ["espeak:en-us+m3"]) == []
        cat.add_samples([
            _row(tmp_path, "c", "dev", group_id="text:1"),                       # group 1 now in train and dev
            _row(tmp_path, "b-aug0", "train", group_id="text:9", parent_uid="b"),  # variant away from its parent
            _row(tmp_path, "d", "train", group_id="text:3", voice="espeak:en-us+m3"),  # held-out voice in train
        ])
        problems = check_leakage(cat, ["espeak:en-us+m3"])
    assert len(problems) == 3
    assert any("text:1" in p and "several splits" in p for p in problems)
    assert any("b-aug0" in p and "parent b" in p for p in problems)
    assert any("en-us+m3" in p and "train" in p for p in problems)
