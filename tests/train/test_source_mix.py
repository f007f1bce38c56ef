"""Mixing real and synthetic data: train.source_weights, the sampler that honours it, and a real run."""

from __future__ import annotations

import json
import tomllib
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from atc_whisper.audio.io import load_audio, write_wav
from atc_whisper.config import Settings, load_settings, render_toml, settings_from_dict
from atc_whisper.data.importers import import_corpus
from atc_whisper.errors import ConfigError
from atc_whisper.train.dataset import SourceMixSampler, TrainItem, share_counts, source_key, source_mix
from atc_whisper.train.setup import check_source_weights, preflight
from train_helpers import PHRASES, make_catalogue


def test_the_setting_is_a_validated_table_that_round_trips() -> None:
    settings = load_settings(overrides=['train.source_weights={ imported = 0.25, "generic:radio" = 1, synthetic = 0.75 }'])
    assert settings.train.source_weights == {"imported": 0.25, "generic:radio": 1.0, "synthetic": 0.75}
    text = render_toml(settings)
    assert 'source_weights = { imported = 0.25, "generic:radio" = 1.0, synthetic = 0.75 }' in text
    assert settings_from_dict(tomllib.loads(text)).train.source_weights == settings.train.source_weights
    assert Settings().train.source_weights == {}  # default: the natural mix
    for bad in ("0.5", "{ imported = -1 }", '{ imported = "half" }', "{ imported = 0, synthetic = 0 }"):
        with pytest.raises(ConfigError, match=r"train\.source_weights"):
            load_settings(overrides=[f"train.source_weights={bad}"])


def test_a_clip_belongs_to_the_most_specific_key() -> None:
    keys = ["imported", "generic:", "generic:radio", "synthetic"]
    assert source_key("generic:radio", keys) == "generic:radio"
    assert source_key("generic:other", keys) == "generic:"
    assert source_key("atco2", keys) == "imported"
    assert source_key("synthetic", keys) == "synthetic"
    assert source_key("synthetic", ["imported"]) is None
    assert share_counts({"a": 1, "b": 1, "c": 1}, 100) == {"a": 34, "b": 33, "c": 33}
    assert sum(share_counts({"a": 0.3, "b": 0.7}, 7).values()) == 7


def _items(n_real: int, n_synth: int) -> list[TrainItem]:
    real = [TrainItem(uid=f"r{i}", audio_path=Path(f"r{i}.wav"), text="roger " * (1 + i % 5), duration_s=1.0,
                      source="generic:radio") for i in range(n_real)]
    synth = [TrainItem(uid=f"s{i}", audio_path=Path(f"s{i}.wav"), text="climb " * (1 + i % 7), duration_s=1.0)
             for i in range(n_synth)]
    return real + synth


@pytest.mark.parametrize("grouped", [False, True])
def test_sampler_realises_the_shares_over_an_epoch(grouped: bool) -> None:
    items = _items(10, 90)
    groups, unmatched = source_mix(items, {"imported": 0.5, "synthetic": 0.5})
    assert not unmatched and len(groups["imported"]) == 10
    lengths = [float(len(i.text)) for i in items]
    sampler = SourceMixSampler(groups, {"imported": 0.5, "synthetic": 0.5}, batch_size=4, seed=3,
                               lengths=lengths if grouped else None)
    first = list(sampler)
    assert len(first) == len(sampler) == 100  # an epoch keeps the dataset's length
    real = sum(i < 10 for i in first)
    assert abs(real / len(first) - 0.5) <= 0.01  # the share, not the natural 10 %
    per_clip = Counter(i for i in first if i < 10)
    assert set(per_clip.values()) == {5}  # the small source is repeated evenly: every clip 5 times
    assert len({i for i in first if i >= 10}) == 50  # the large one subsampled without repeats
    assert sampler.drawn == {"imported": 50, "synthetic": 50}
    again = SourceMixSampler(groups, {"imported": 0.5, "synthetic": 0.5}, batch_size=4, seed=3,
                             lengths=lengths if grouped else None)
    assert list(again) == first  # same seed and epoch: the same batches (resume, data-parallel ranks)
    sampler.set_epoch(1)
    second = list(sampler)
    assert {i for i in second if i >= 10} != {i for i in first if i >= 10}  # a fresh subsample each epoch
    if grouped:  # neighbouring clips are of similar length, as with LengthGroupedSampler
        spread = np.mean([np.ptp([lengths[i] for i in first[k:k + 4]]) for k in range(0, 100, 4)])
        assert spread < np.ptp(lengths) / 2


def test_uneven_shares_and_zero_weight() -> None:
    items = _items(30, 70)
    weights = {"generic:radio": 0.2, "synthetic": 0.8}
    groups, _ = source_mix(items, weights)
    drawn = list(SourceMixSampler(groups, weights, batch_size=8, seed=0))
    assert sum(i < 30 for i in drawn) == 20
    groups, _ = source_mix(items, {"imported": 0.0, "synthetic": 1.0})
    assert all(i >= 30 for i in SourceMixSampler(groups, {"imported": 0.0, "synthetic": 1.0}, batch_size=8, seed=0))
    with pytest.raises(ConfigError, match=r"no source with training clips has a positive share .*train\.source_weights"):
        SourceMixSampler(groups, {"imported": 0.0, "synthetic": 0.0}, batch_size=8, seed=0)


def test_check_names_uncovered_sources_and_idle_keys() -> None:
    with pytest.raises(ConfigError, match=r"no share to the training source\(s\) atco2"):
        check_source_weights({"synthetic": 1.0}, ["synthetic", "atco2"])
    with pytest.raises(ConfigError, match="only to sources without training clips"):
        check_source_weights({"atcosim": 1.0, "synthetic": 0.0}, ["synthetic"])
    notes = check_source_weights({"atcosim": 0.5, "synthetic": 0.5}, ["synthetic"])
    assert len(notes) == 1 and "'atcosim' matches no training clip" in notes[0]
    assert check_source_weights({}, ["synthetic", "atco2"]) == []


@pytest.fixture(scope="module")
def mixed_workspace(tmp_path_factory, synth_clip):
    """Synthetic clips in the catalogue plus a 'real' corpus (eSpeak clips with hiss) imported as generic."""
    ws = make_catalogue(tmp_path_factory.mktemp("mix") / "ws", synth_clip, n_train=6, n_dev=1)
    radio = ws.root.parent / "my_radio"
    rng = np.random.default_rng(5)
    lines = ["audio,text,speaker"]
    for k, text in enumerate(PHRASES[5:7]):
        audio = load_audio(synth_clip(text, "espeak:en-gb-scotland"))
        write_wav(radio / f"tx{k}.wav", np.clip(audio + 0.01 * rng.standard_normal(audio.size), -1, 1))
        lines.append(f"tx{k}.wav,{text},ctl{k}")
    (radio / "manifest.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    report = import_corpus("generic", radio / "manifest.csv", ws, Settings(), name="radio", split="train",
                           progress=False)
    assert report.imported == 2
    return ws


def test_preflight_rejects_a_mix_that_forgets_a_source(mixed_workspace) -> None:
    settings = Settings().replace(train={"source_weights": {"synthetic": 1.0}})
    with pytest.raises(ConfigError, match="generic:radio"):
        preflight(mixed_workspace, settings)


@pytest.mark.slow  # ~25 s: encoder cache of 9 clips and a few decoder steps of tiny.en
def test_a_real_run_trains_on_both_sources_in_the_set_shares(mixed_workspace, tiny_en) -> None:
    from atc_whisper.train import train_model

    settings = Settings().replace(
        model={"name": str(tiny_en.hf_dir), "threads": 2},
        train={"mode": "decoder_cached", "epochs": 1.0, "batch_size": 2, "report_to": ["none"], "logging_steps": 1,
               "source_weights": {"imported": 0.5, "synthetic": 0.5}, "dev_evaluation": False},
    )
    result = train_model(mixed_workspace, settings, progress=False)
    mix = result.metrics["source_mix"]
    # 8 clips per epoch: 4 draws from the 2 real clips (each twice), 4 of the 6 synthetic ones.
    assert mix["imported"] == {"clips": 2, "per_epoch": 4, "share": 0.5, "drawn": 4}
    assert mix["synthetic"] == {"clips": 6, "per_epoch": 4, "share": 0.5, "drawn": 4}
    assert result.steps == 4
    summary = json.loads((mixed_workspace.model_dir / "training_summary.json").read_text())
    assert summary["metrics"]["source_mix"]["imported"]["drawn"] == 4
    card = (mixed_workspace.model_dir / "README.md").read_text()
    assert "| imported | 50.0 % | 2 | 4 |" in card and "generic:radio 2" in card
