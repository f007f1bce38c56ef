"""A real small evaluation: espeak clips in a tmp catalogue, real tiny.en, every report file checked."""

from __future__ import annotations

import csv
import json

import jiwer
import numpy as np
import pytest

from atc_whisper.config import Settings
from atc_whisper.evaluate import run_evaluation
from atc_whisper.evaluate.evaluate import Selection, select_samples, snr_bucket, snr_bucket_order
from atc_whisper.evaluate.plots import COVERAGE_PNG, SNR_PNG, SOURCE_PNG, SUMMARY_PNG
from atc_whisper.evaluate.report import MODEL_COLUMNS, SAMPLE_COLUMNS
from atc_whisper.fsutil import sha256_file
from atc_whisper.phraseology.callsigns import CALLSIGN_MISS_KINDS
from atc_whisper.workspace import Workspace

# (reference, split, source, role, snr_db): the test split has 3 samples, one of them noisy.
CLIPS = [
    ("lufthansa one two three climb flight level three five zero", "test", "synthetic", "controller", None),
    ("speedbird four five six turn left heading two seven zero", "test", "synthetic", "controller", 15.0),
    ("descend flight level one two zero lufthansa one two three", "test", "synthetic", "pilot", None),
    ("klm four four contact tower one one eight decimal seven", "dev", "generic:demo", "controller", None),
]
CALLSIGNS = ["lufthansa one two three", "speedbird four five six", "klm four four"]


def _add_noise(path, snr_db: float, seed: int = 7) -> None:
    import soundfile as sf

    audio, rate = sf.read(path, dtype="float32")
    noise = np.random.default_rng(seed).standard_normal(len(audio)).astype(np.float32)
    noise *= np.sqrt(np.mean(audio**2) / (10 ** (snr_db / 10)) / np.mean(noise**2))
    sf.write(path, np.clip(audio + noise, -1, 1), rate, subtype="PCM_16")


def build_catalogue(ws: Workspace, synth_clip, clips=CLIPS) -> None:
    """Catalogue real espeak clips of ``clips`` in the workspace."""
    import shutil

    from atc_whisper.data.catalogue import Catalogue, Sample

    rows = []
    for k, (text, split, source, role, snr) in enumerate(clips):
        path = ws.synthetic_dir / f"clip{k}.wav"
        path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(synth_clip(text), path)
        if snr is not None:
            _add_noise(path, snr)
        import soundfile as sf

        rows.append(Sample(
            uid=f"u{k}", audio_path=path, sha256=sha256_file(path), duration_s=sf.info(path).duration,
            text_raw=text, text_norm=text, split=split, source=source, engine="espeak", voice="espeak:en-us",
            role=role, snr_db=snr,
        ))
    with Catalogue(ws.db_path) as catalogue:
        catalogue.add_samples(rows)


def deafened_copy(hf_dir, target):
    """tiny.en with its encoder's final layer norm zeroed: the decoder hears nothing. A "fine-tuned"
    model that must score worse than the base, so a swapped or duplicated model shows."""
    import torch

    from atc_whisper.models.load import load_hf

    model, processor = load_hf(hf_dir)
    with torch.no_grad():
        model.model.encoder.layer_norm.weight.zero_()
        model.model.encoder.layer_norm.bias.zero_()
    model.save_pretrained(target)
    processor.save_pretrained(target)
    return target


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory, synth_clip, tiny_en):
    """One real evaluation: tiny.en as base, a deafened tiny.en as "fine-tuned", with a callsign list."""
    ws = Workspace.at(tmp_path_factory.mktemp("eval") / "ws")
    ws.create()
    build_catalogue(ws, synth_clip)
    callsigns = ws.root / "callsigns.txt"
    callsigns.write_text("\n".join(CALLSIGNS) + "\n")
    settings = Settings()
    deaf = deafened_copy(tiny_en.hf_dir, tmp_path_factory.mktemp("deaf") / "model")
    result = run_evaluation(ws, settings, model=deaf, base=tiny_en.hf_dir, callsigns_file=callsigns, progress=False)
    return ws, settings, result


def test_summary_has_both_models_and_core_figures(evaluated):
    _, _, result = evaluated
    assert set(result.summary) == {"base", "fine_tuned"}
    for figures in result.summary.values():
        assert figures["n"] == 3  # the test split only
        for key in ("wer", "raw_wer", "cer", "ser", "median_utt_wer", "callsign_acc", "command_acc",
                    "callsign_acc_biased", "wer_biased", "rtf"):
            assert key in figures
        assert 0.0 <= figures["cer"] and 0.0 <= figures["wer"]
        assert isinstance(figures["callsign_acc"], float)  # every test reference names a callsign
    base, deaf = result.summary["base"], result.summary["fine_tuned"]
    # The deafened model hears nothing: the labels and figures must show it, not the base's.
    assert deaf["wer"] > base["wer"] + 0.3 and deaf["command_acc"] < base["command_acc"]
    assert deaf["callsign_acc"] == 0.0
    # Prompted with the callsign list, a model that hears nothing may still say one of the listed
    # callsigns (its encoder output carries no information, so the no-speech probability, read
    # over the CPU's 10 s context, is not always above the threshold): a lucky guess, never the
    # base's hearing.
    assert deaf["callsign_acc_biased"] < base["callsign_acc_biased"]
    # Callsign biasing (prompt + snap to the list) finds callsigns plain decoding spells wrongly.
    assert base["callsign_acc_biased"] > base["callsign_acc"] and base["callsign_acc_biased"] >= 2 / 3
    assert base["wer_biased"] < base["wer"]


def test_report_json_schema(evaluated):
    ws, settings, _ = evaluated
    # Strict JSON: NaN is not allowed anywhere.
    report = json.loads(ws.evaluation_report.read_text(), parse_constant=lambda c: pytest.fail(f"non-JSON {c}"))
    for key in ("summary", "comparison", "models", "selection", "config", "timings", "callsigns", "files",
                "metric_definitions"):
        assert key in report
    assert report["config"] == json.loads(json.dumps(settings.to_dict()))
    assert report["selection"]["n_samples"] == 3 and report["selection"]["split"] == "test"
    assert report["comparison"]["wer_change"] == pytest.approx(
        report["summary"]["fine_tuned"]["wer"] - report["summary"]["base"]["wer"])
    assert report["comparison"]["wer_change"] > 0
    tuned = report["models"]["fine_tuned"]
    assert set(tuned["groups"]) == {"split", "source", "role", "voice", "snr"}
    assert set(tuned["groups"]["role"]) == {"controller", "pilot"}
    assert tuned["groups"]["role"]["controller"]["n_utterances"] == 2
    assert list(tuned["groups"]["snr"]) == ["10-20 dB", "clean"]
    assert tuned["groups"]["snr"]["clean"]["n_utterances"] == 2
    shares = settings.evaluate.coverage_shares
    assert [p["share"] for p in tuned["coverage"]] == shares
    kept = [p["n_kept"] for p in tuned["coverage"]]
    assert kept == sorted(kept) and kept[-1] == 3
    assert tuned["coverage"][-1]["wer"] == pytest.approx(report["summary"]["fine_tuned"]["wer"])
    assert tuned["configured_threshold"]["threshold"] == settings.decode.confidence_threshold
    assert {t["threshold"] for t in tuned["thresholds"]} >= set(settings.evaluate.confidence_thresholds)
    for t in tuned["thresholds"]:
        assert t["kept"]["n"] + t["flagged"]["n"] == 3
    assert tuned["timings"]["decode_s"] > 0 and tuned["timings"]["audio_s"] > 0
    assert report["models"]["base"]["biasing"]["callsign_acc"] == pytest.approx(
        report["summary"]["base"]["callsign_acc_biased"])
    assert tuned["biasing"]["callsign_acc"] < report["models"]["base"]["biasing"]["callsign_acc"]
    assert report["callsigns"]["n_known"] == len(CALLSIGNS)


def test_results_csv_rows_columns_and_confidence(evaluated):
    ws, _, result = evaluated
    with open(ws.evaluation_results, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 3
    header = rows[0].keys()
    for column in SAMPLE_COLUMNS:
        assert column in header
    for label in ("base", "fine_tuned"):
        for column in MODEL_COLUMNS:
            assert f"{label}_{column}" in header
        assert f"{label}_hypothesis_biased" in header and f"{label}_callsign_correct_biased" in header
    from atc_whisper.phraseology import normalize_atc

    assert [r["reference"] for r in rows] == [c[0] for c in CLIPS if c[1] == "test"]
    for row in rows:
        assert row["base_hypothesis"].strip()  # tiny.en hears something in clean espeak speech
        assert float(row["base_avg_logprob"]) <= 0.0
        assert 0.0 <= float(row["base_no_speech_prob"]) <= 1.0
        assert float(row["base_compression_ratio"]) > 0.0
        assert row["base_low_confidence"] in ("0", "1")
        # The per-sample WER agrees with an independent implementation on the normalised texts.
        ref, hyp = normalize_atc(row["reference"]), normalize_atc(row["base_hypothesis"])
        expected = jiwer.wer(ref, hyp) if hyp else 1.0
        assert float(row["base_wer"]) == pytest.approx(expected, abs=1e-3)
        assert row["base_callsign_ref"]  # every test reference names a callsign
        for label in ("base", "fine_tuned"):  # a miss, and only a miss, says how it went wrong
            right = row[f"{label}_callsign_correct"] == "1"
            assert (row[f"{label}_callsign_miss"] == "") == right, row
    for label in ("base", "fine_tuned"):  # the summary is the mean of the rows
        misses = [r[f"{label}_callsign_miss"] for r in rows if r[f"{label}_callsign_miss"]]
        assert result.summary[label]["callsign_misses"] == {k: misses.count(k) for k in CALLSIGN_MISS_KINDS}
        correct = [float(r[f"{label}_callsign_correct_biased"]) for r in rows]
        assert sum(correct) / len(correct) == pytest.approx(result.summary[label]["callsign_acc_biased"])
    assert result.results_path == ws.evaluation_results


def test_catalogue_gets_one_run_and_per_sample_results(evaluated):
    ws, _, result = evaluated
    from atc_whisper.data.catalogue import Catalogue

    with Catalogue(ws.db_path) as catalogue:
        runs = catalogue.runs(kind="evaluate")
        assert [r["id"] for r in runs] == [result.run_id]
        assert runs[0]["status"] == "completed"
        assert runs[0]["metrics"]["fine_tuned"]["n"] == 3
        stored = catalogue.results(result.run_id)
        test_ids = {s.id for s in catalogue.samples("test")}
    assert len(stored) == 6
    assert {r["model"] for r in stored} == {"base", "fine_tuned"}
    assert {r["sample_id"] for r in stored} == test_ids
    assert all(r["avg_logprob"] is not None and "hypothesis_biased" in r for r in stored)


def test_plots_are_valid_pngs_and_tensorboard_has_events(evaluated):
    ws, _, result = evaluated
    import matplotlib.image as mpimg

    names = {p.name for p in result.plot_paths}
    assert names == {SUMMARY_PNG, SNR_PNG, SOURCE_PNG, COVERAGE_PNG}
    for path in result.plot_paths:
        assert path.parent == ws.model_dir
        image = mpimg.imread(path)
        assert image.shape[0] > 200 and image.shape[1] > 300
        assert image.std() > 0.01  # not a blank canvas
    assert result.tensorboard_dir is not None
    assert any(p.name.startswith("events.out.tfevents") for p in result.tensorboard_dir.iterdir())
    assert not list(ws.logs_dir.glob(".evaluation.*"))  # no temporary folder left behind


def test_snr_buckets():
    edges = [0.0, 10.0, 20.0, 30.0]
    assert snr_bucket(None, edges) == "clean"
    assert snr_bucket(-3.0, edges) == "<0 dB"
    assert snr_bucket(10.0, edges) == "10-20 dB"
    assert snr_bucket(45.0, edges) == ">=30 dB"
    assert snr_bucket_order(edges) == ["<0 dB", "0-10 dB", "10-20 dB", "20-30 dB", ">=30 dB", "clean"]
    assert snr_bucket(5.0, []) == "all"


def test_selection_filters_and_spreads(evaluated):
    ws, _, _ = evaluated
    everything = select_samples(ws, Selection(split="all"))
    assert len(everything) == 4
    spread = select_samples(ws, Selection(split="all", max_samples=2))
    assert [s.uid for s in spread] == [everything[0].uid, everything[2].uid]  # evenly spaced, not the first two
    family = select_samples(ws, Selection(split="all", source="generic:"))
    assert [s.source for s in family] == ["generic:demo"]


def test_role_accuracy_from_hypotheses(evaluated):
    ws, _, result = evaluated
    with open(ws.evaluation_results, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    for label in ("base", "fine_tuned"):
        right = sum(r[f"{label}_role_hyp"] == r["role"] for r in rows)
        assert result.summary[label]["role_acc"] == pytest.approx(right / len(rows))
        assert {r[f"{label}_role_hyp"] for r in rows} <= {"controller", "pilot", "unknown"}
        groups = result.report["models"][label]["groups"]["role"]
        assert set(groups["pilot"]) >= {"role_acc"}
    # the classifier is right on every reference: what is lost comes from recognition errors
    assert result.report["roles"] == {"reference_n_role": 3, "reference_role_acc": 1.0, "reference_role_coverage": 1.0}
    assert "role_acc" in result.report["metric_definitions"]
