"""Per-recording callsign context: ATCO2 .info files -> catalogue -> evaluate/transcribe --context recording.

The corpus is written in the ATCO2 layout with real eSpeak speech; the model is the real tiny.en.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from atc_whisper.audio.io import load_audio, write_wav
from atc_whisper.config import Settings
from atc_whisper.data.catalogue import Catalogue
from atc_whisper.data.importers import import_corpus
from atc_whisper.errors import DataError
from atc_whisper.evaluate.evaluate import Selection, recording_callsigns, select_samples
from atc_whisper.transcribe.context import file_callsigns
from atc_whisper.workspace import Workspace

SR = 16_000
A = "LKPR_RUZYNE_Tower_134_560MHz_20201025_090915"
B = "LKTB_BRNO_Tower_119_605MHz_20201026_092727"
SEGMENTS = {
    A: [("Ruzyne Tower", "[#callsign] Speedbird one two three [/#callsign] climb flight level three five zero"),
        ("DLH4AB", "[#callsign] Lufthansa four alfa bravo [/#callsign] contact tower one one eight decimal seven")],
    B: [("RYR92", "[#callsign] Ryanair niner two [/#callsign] cleared to land runway two seven left")],
}
INFO = {
    A: "airport: LKPR (Prague Ruzyne)\nchannel: Tower\nfrequency: 134.560\ncallsigns nearby:\n"
       "BAW123 : Speedbird One Two Three\nDLH4AB : Lufthansa Four Alfa Bravo\nCSA7 : CSA Seven\n",
    # B's list lacks its own aircraft: biasing cannot help there (coverage 2 of 3 overall).
    B: "airport: LKTB (Brno Turany)\nchannel: Tower\ncallsigns nearby:\nEZY12 : Easy One Two\n",
}


def _plain(text: str) -> str:
    import re

    return re.sub(r"\[[^\]]*\]", " ", text)


@pytest.fixture(scope="module")
def atco2_corpus(tmp_path_factory, synth_clip) -> Path:
    """Two ATCO2 recordings (wav + xml + info) of eSpeak speech."""
    data = tmp_path_factory.mktemp("atco2") / "DATA"
    for stem, segments in SEGMENTS.items():
        parts, xml = [np.zeros(int(0.3 * SR), np.float32)], ["<data>"]
        t = 0.3
        for label, text in segments:
            clip = load_audio(synth_clip(" ".join(_plain(text).split())))
            xml.append(f"<segment><start>{t:.2f}</start><end>{t + clip.size / SR:.2f}</end><speaker>A</speaker>"
                       f"<speaker_label>{label}</speaker_label><text>{text}</text></segment>")
            parts += [clip, np.zeros(int(0.5 * SR), np.float32)]
            t += clip.size / SR + 0.5
        write_wav(data / f"{stem}.wav", np.concatenate(parts))
        (data / f"{stem}.xml").write_text("\n".join([*xml, "</data>"]), encoding="utf-8")
        (data / f"{stem}.info").write_text(INFO[stem], encoding="utf-8")
    return data


@pytest.fixture(scope="module")
def imported(tmp_path_factory, atco2_corpus, synth_clip) -> Workspace:
    """A workspace with the corpus imported as a test set, plus one generic clip without context."""
    ws = Workspace.at(tmp_path_factory.mktemp("ctx") / "ws")
    ws.create()
    report = import_corpus("atco2", atco2_corpus, ws, Settings(), split="test", progress=False)
    assert (report.imported, report.recordings) == (3, 2)
    other = ws.root.parent / "other"
    write_wav(other / "x.wav", load_audio(synth_clip("klm four four contact tower one one eight decimal seven")))
    (other / "x.txt").write_text("klm four four contact tower one one eight decimal seven\n", encoding="utf-8")
    assert import_corpus("generic", other, ws, Settings(), split="test", progress=False).imported == 1
    return ws


def test_each_sample_gets_its_own_recordings_callsigns(imported):
    samples = select_samples(imported, Selection(split="test"))
    lists = recording_callsigns(imported, samples)
    by_text = {s.text_norm.split()[0]: names for s, names in zip(samples, lists, strict=True)}
    assert by_text["speedbird"] == by_text["lufthansa"] == ["speedbird one two three", "lufthansa four alfa bravo",
                                                            "csa seven"]
    assert by_text["ryanair"] == ["easy one two"]
    assert by_text["klm"] is None  # no recording context: not biased
    # A global list is added after each recording's own callsigns (and is all a context-less sample gets).
    extra = recording_callsigns(imported, samples, extra=["klm four four"])
    assert extra[samples.index(next(s for s in samples if s.text_norm.startswith("ryanair")))] == ["easy one two",
                                                                                                   "klm four four"]
    assert extra[[s.text_norm.split()[0] for s in samples].index("klm")] == ["klm four four"]
    generic_only = [s for s in samples if s.source.startswith("generic")]
    with pytest.raises(DataError, match=r"none of the 1 selected samples .* has a recording context"):
        recording_callsigns(imported, generic_only)


def test_transcribe_file_contexts(imported, atco2_corpus, tmp_path):
    copy = tmp_path / "elsewhere" / f"{A}.wav"  # the recording without its .info: found in the catalogue
    copy.parent.mkdir()
    shutil.copy(atco2_corpus / f"{A}.wav", copy)
    lone = tmp_path / "lone.wav"
    shutil.copy(atco2_corpus / f"{B}.wav", lone)
    beside = atco2_corpus / f"{B}.wav"
    found = file_callsigns([beside, copy, lone], context="recording", callsigns=["klm four four"], workspace=imported)
    assert found[beside].callsigns == ("easy one two", "klm four four") and found[beside].origin.startswith(".info")
    assert found[copy].callsigns[:2] == ("speedbird one two three", "lufthansa four alfa bravo")
    assert found[copy].origin == f"catalogue (atco2 recording {A})"
    assert found[lone].callsigns == ("klm four four",) and found[lone].origin == "callsign list"
    shared = file_callsigns([lone, copy], context="none", context_file=atco2_corpus / f"{A}.info")
    assert shared[lone].callsigns == shared[copy].callsigns == ("speedbird one two three", "lufthansa four alfa bravo",
                                                                 "csa seven")
    assert file_callsigns([lone], context="none")[lone].callsigns == ()
    with pytest.raises(DataError, match="does not exist"):
        file_callsigns([lone], context_file=tmp_path / "missing.info")


@pytest.mark.slow  # ~30 s: two real tiny.en runs through the entry point
def test_evaluate_and_transcribe_with_recording_context_cli(run_cli, imported, atco2_corpus, tiny_en):
    ws = str(imported.root)
    greedy = ("--set", "decode.temperatures=[0.0]")  # one decode per clip: the test is about the lists
    proc = run_cli("evaluate", "-w", ws, "--split", "test", "--model", str(tiny_en.hf_dir), "--no-base",
                   "--engine", "hf", "--context", "recording", *greedy)
    assert proc.returncode == 0, proc.stderr
    assert "recording context: 3 of 4 samples have a callsign list" in " ".join(proc.stdout.split())
    assert "Per source" in proc.stdout and "atco2" in proc.stdout and "generic:other" in proc.stdout
    report = json.loads(imported.evaluation_report.read_text())
    context = report["context"]
    assert (context["samples_with_list"], context["samples_with_callsign_and_list"]) == (3, 3)
    assert context["reference_callsign_in_list"] == pytest.approx(2 / 3)
    summary = report["summary"]["fine_tuned"]
    assert 0.0 <= summary["callsign_acc"] <= 1.0 and 0.0 <= summary["callsign_acc_biased"] <= 1.0
    assert set(summary["by_source"]) == {"atco2", "generic:other"}
    assert report["models"]["fine_tuned"]["biasing"]["samples_with_list"]["n"] == 3
    with Catalogue(imported.db_path) as cat:
        stored = cat.results(cat.runs("evaluate")[-1]["id"])
    assert len(stored) == 4 and all("hypothesis_biased" in r for r in stored)
    klm = next(r for r in stored if r["callsign_ref"] == "klm four four")
    assert klm["hypothesis_biased"] == klm["hypothesis"]  # no list: decoded once, unbiased

    lone = imported.root.parent / "lone.wav"
    shutil.copy(atco2_corpus / f"{B}.wav", lone)
    out = run_cli("transcribe", str(atco2_corpus / f"{A}.wav"), str(lone), "-w", ws, "--model", str(tiny_en.hf_dir),
                  "--engine", "hf", "--context", "recording", "--format", "jsonl", *greedy)
    assert out.returncode == 0, out.stderr
    assert f"no recording context for {lone}" in out.stderr and A not in out.stderr.split("Transcribed")[0]
    rows = [json.loads(line) for line in out.stdout.splitlines()]
    assert {Path(r["file"]).name for r in rows} == {f"{A}.wav", "lone.wav"}


def test_data_stats_counts_recording_contexts(run_cli, imported):
    proc = run_cli("data", "stats", "-w", str(imported.root))
    assert proc.returncode == 0, proc.stderr
    assert "2 recording context(s) (2 with callsigns nearby, mean 2.0)" in " ".join(proc.stdout.split())


@pytest.mark.slow  # ~25 s: two batch runs of the real tiny.en over three recordings
def test_batch_biases_each_file_with_its_own_recording_context(imported, atco2_corpus, tiny_en, tmp_path):
    """A batch with context = "recording" gives each file its own list (an .info beside it, else the
    catalogue), keys each file on that list, and says which files had none."""
    from atc_whisper.transcribe.batch import summary_lines, transcribe_batch

    archive = tmp_path / "archive"
    archive.mkdir()
    for name in (f"{A}.wav", f"{A}.info", f"{B}.wav"):  # B without its .info: found in the catalogue
        shutil.copy(atco2_corpus / name, archive / name)
    shutil.copy(atco2_corpus / f"{B}.wav", archive / "lone.wav")  # no context anywhere
    settings = Settings().replace(model={"threads": 1}, decode={"temperatures": [0.0], "context": "recording"})

    def run() -> object:
        return transcribe_batch([archive], tmp_path / "out", settings, imported, model=str(tiny_en.hf_dir),
                                engine="hf", progress=False)

    first = run()
    assert (first.done, first.failed, first.without_context) == (3, [], 1)
    assert any("1 file(s) had no recording context" in line for line in summary_lines(first))
    a = json.loads((tmp_path / "out" / f"{A}.json").read_text())
    assert {s["callsign"] for s in a} & {"speedbird one two three", "lufthansa four alfa bravo"}
    # A's context changes: only A is transcribed again (its key holds its list); B and lone are kept.
    (archive / f"{A}.info").write_text(INFO[A].replace("CSA7 : CSA Seven\n", ""), encoding="utf-8")
    second = run()
    assert (second.done, second.skipped, second.without_context) == (1, 2, 1)
