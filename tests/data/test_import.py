"""Corpus importers on small fixtures written in each corpus's real layout (eSpeak clips as audio).

Every bad input of the issue is covered: corrupt, empty, silent and over-long audio, a
missing audio file, empty and non-UTF-8 transcripts, duplicate files, segments past the end.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import soxr

from atc_whisper.audio.io import load_audio, write_wav
from atc_whisper.config import Settings
from atc_whisper.data.catalogue import Catalogue
from atc_whisper.data.importers import import_corpus
from atc_whisper.data.importers.atcosim import clean_atcosim_text
from atc_whisper.errors import DataError
from atc_whisper.phraseology.normalize import normalize_atc

SR = 16_000
TEXTS = [
    "speedbird one two three climb flight level three five zero",
    "lufthansa four alfa bravo contact tower one one eight decimal seven",
    "ryanair niner two cleared to land runway two seven left",
]


@pytest.fixture(scope="module")
def clips(synth_clip) -> list[np.ndarray]:
    return [load_audio(synth_clip(t)) for t in TEXTS]


def silence(seconds: float) -> np.ndarray:
    return np.zeros(int(seconds * SR), dtype=np.float32)


def reasons(workspace, source: str) -> list[str]:
    with Catalogue(workspace.db_path) as cat:
        return [s["reason"] for s in cat.skipped(source)]


def test_generic_manifest_imports_cuts_and_skips_every_bad_input(workspace, clips, tmp_path: Path):
    root = tmp_path / "corpus"
    write_wav(root / "clips" / "a.wav", clips[0])
    write_wav(root / "clips" / "b.wav", clips[1])
    write_wav(root / "clips" / "e.wav", clips[2] * 0.5)
    write_wav(root / "clips" / "f.wav", clips[1] * 0.5)
    shutil.copy(root / "clips" / "a.wav", root / "dup.wav")
    session = np.concatenate([clips[0], silence(1.0), clips[2], silence(0.5)])
    write_wav(root / "long" / "session.wav", session)
    start = (clips[0].size + SR) / SR
    end = start + clips[2].size / SR
    write_wav(root / "toolong.wav", np.tile(clips[0], int(31 * SR / clips[0].size) + 1))
    write_wav(root / "silent.wav", silence(2.0))
    sf.write(root / "empty.wav", np.zeros(0, dtype=np.int16), SR, subtype="PCM_16")
    (root / "corrupt.wav").write_bytes(b"RIFF\x24\x00\x00\x00WAVEfmt " + bytes(range(200)))
    lines = [
        b"audio,text,start,end,speaker",
        f"clips/a.wav,{TEXTS[0]},,,BAW123".encode(),
        f"clips/b.wav,{TEXTS[1]},,,DLH4AB".encode(),
        f"long/session.wav,Ryanair 92 cleared to land runway 27L,{start:.3f},{end:.3f},RYR92".encode(),
        f"dup.wav,{TEXTS[0]},,,BAW123".encode(),
        f"missing.wav,{TEXTS[0]},,,".encode(),
        b"clips/e.wav,   ,,,",
        b"clips/f.wav,caf\xe9 \xff climb,,,",
        f"toolong.wav,{TEXTS[0]},,,".encode(),
        f"silent.wav,{TEXTS[0]},,,".encode(),
        f"empty.wav,{TEXTS[0]},,,".encode(),
        f"corrupt.wav,{TEXTS[0]},,,".encode(),
        f"long/session.wav,{TEXTS[0]},50,52,".encode(),
    ]
    manifest = root / "manifest.csv"
    manifest.write_bytes(b"\n".join(lines) + b"\n")

    report = import_corpus("generic", manifest, workspace, Settings(), progress=False)
    assert report.source == "generic:manifest"
    assert report.imported == 3 and report.already == 0
    kinds = sorted(reason for _, reason in report.skipped)
    expected = ["audio file missing", "beyond the audio's end", "duplicate audio", "no audio samples", "empty transcript",
                "not UTF-8", "silent audio", "too long", "is corrupt"]
    for fragment in expected:
        assert sum(fragment in k for k in kinds) == 1, (fragment, kinds)
    assert len(kinds) == len(expected)
    assert sorted(reasons(workspace, "generic:manifest")) == kinds  # recorded in the catalogue

    with Catalogue(workspace.db_path) as cat:
        samples = {s.speaker: s for s in cat.samples()}
    seg = samples["RYR92"]
    assert seg.text_raw == "Ryanair 92 cleared to land runway 27L"
    assert seg.text_norm == normalize_atc(seg.text_raw) and "two seven left" in seg.text_norm
    assert abs(seg.duration_s - clips[2].size / SR) < 0.01
    assert seg.audio_path.is_file() and workspace.imported_dir in seg.audio_path.parents
    assert abs(load_audio(seg.audio_path).size - clips[2].size) < 20
    assert samples["BAW123"].group_id == "generic:manifest:BAW123"

    metadata = workspace.metadata_csv.read_text(encoding="utf-8")
    assert metadata.count("\n") == 4 and "two seven left" in metadata  # header + one row per sample

    again = import_corpus("generic", manifest, workspace, Settings(), progress=False)
    assert (again.imported, again.already, len(again.skipped)) == (0, 3, 9)
    with Catalogue(workspace.db_path) as cat:
        assert cat.count() == 3 and len({s.sha256 for s in cat.samples()}) == 3
        assert [r["status"] for r in cat.runs("import")] == ["completed", "completed"]


def test_generic_folder_with_txt_twins(workspace, clips, tmp_path: Path):
    root = tmp_path / "live_corrected"
    write_wav(root / "2026" / "x.wav", clips[0])
    (root / "2026" / "x.txt").write_text("Speedbird 123, climb FL350\n", encoding="utf-8")
    write_wav(root / "y.wav", clips[1])
    write_wav(root / "z.wav", clips[2])
    (root / "z.txt").write_bytes("cleared to land, caf\u00e9".encode("latin-1"))
    report = import_corpus("generic", root, workspace, Settings(), name="live", progress=False)
    assert report.source == "generic:live" and report.imported == 1
    assert sorted(r for _, r in report.skipped)[0].startswith("no transcript")
    assert any("not UTF-8" in r for _, r in report.skipped)
    with Catalogue(workspace.db_path) as cat:
        (s,) = cat.samples(source="generic:")
    assert s.text_norm == normalize_atc("Speedbird 123, climb FL350")
    assert "flight level three five zero" in s.text_norm


ATCO2_XML = """<?xml version='1.0' encoding='utf-8'?>
<data>
  <segment>
    <start>{s1:.2f}</start><end>{e1:.2f}</end>
    <speaker>A</speaker><speaker_label>Ruzyne Tower</speaker_label>
    <text>[#callsign] Speedbird one two three [/#callsign] [#command] climb [/#command] [#value] flight level three five zero [/#value]</text>
  </segment>
  <segment>
    <start>{s2:.2f}</start><end>{e2:.2f}</end>
    <speaker>B</speaker><speaker_label>DLH4AB</speaker_label>
    <text>[#callsign]Lufthansa four alfa bravo[/#callsign] [hes] [#command]contact tower[/#command] [#value]one one eight decimal seven[/#value]</text>
  </segment>
  <segment>
    <start>0.00</start><end>0.40</end>
    <speaker>B</speaker><speaker_label>DLH4AB</speaker_label>
    <text>[NE Czech] dobry den [/NE]</text>
  </segment>
  <segment>
    <start>100.00</start><end>103.00</end>
    <speaker>A</speaker><speaker_label>Ruzyne Tower</speaker_label>
    <text>[#callsign] CSA one [/#callsign]</text>
  </segment>
</data>
"""


def test_atco2_layout_tags_to_metadata(workspace, clips, tmp_path: Path):
    data = tmp_path / "ATCO2-ASRdataset-v1_final" / "DATA"
    stem = "LKPR_RUZYNE_Tower_134_560MHz_20201025_090915"
    recording = np.concatenate([silence(0.5), clips[0], silence(1.0), clips[1], silence(0.5)])
    write_wav(data / f"{stem}.wav", recording)
    s1, e1 = 0.5, 0.5 + clips[0].size / SR
    s2 = e1 + 1.0
    e2 = s2 + clips[1].size / SR
    (data / f"{stem}.xml").write_text(ATCO2_XML.format(s1=s1, e1=e1, s2=s2, e2=e2), encoding="utf-8")
    (data / f"{stem}.info").write_text("freq 134.560\n")
    (data / "LKTB_BRNO_Tower_20201026_092727.xml").write_text(ATCO2_XML.format(s1=0, e1=1, s2=1, e2=2))
    (data / "broken_20201026_000000.xml").write_text("<data><segment><start>1</start>", encoding="utf-8")

    report = import_corpus("atco2", data.parent, workspace, Settings(), progress=False)
    assert report.source == "atco2" and report.imported == 2
    found = sorted(r for _, r in report.skipped)
    assert len(found) == 4
    for fragment in ("audio file missing", "beyond the audio's end", "non-English", "unreadable XML"):
        assert any(fragment in r for r in found), (fragment, found)
    with Catalogue(workspace.db_path) as cat:
        tower, pilot = cat.samples(source="atco2")
    assert tower.role == "controller" and pilot.role == "pilot"
    assert tower.meaning["callsign"] == "Speedbird one two three"
    assert [t["tag"] for t in tower.params["tags"]] == ["callsign", "command", "value"]
    assert "[#callsign]" in tower.text_raw and "[" not in tower.text_norm and "#" not in tower.text_norm
    assert tower.text_norm == normalize_atc("Speedbird one two three climb flight level three five zero")
    assert pilot.text_norm == normalize_atc(TEXTS[1]) and "hes" not in pilot.text_norm.split()
    assert abs(tower.duration_s - clips[0].size / SR) < 0.02 and abs(pilot.duration_s - clips[1].size / SR) < 0.02
    assert tower.split == pilot.split and tower.group_id == pilot.group_id == f"atco2:{stem}"


def _write_32k(path: Path, audio: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, soxr.resample(audio, SR, 32_000), 32_000, subtype="PCM_16")


def test_atcosim_fulldata_csv_and_folder_layouts(workspace, clips, tmp_path: Path):
    root = tmp_path / "atcosim"
    wav = root / "WAVdata"
    _write_32k(wav / "gf1" / "gf1_01" / "gf1_01_001.wav", clips[0])
    _write_32k(wav / "gf1" / "gf1_01" / "gf1_01_002.wav", clips[1])
    _write_32k(wav / "sm1" / "sm1_01" / "sm1_01_001.wav", clips[2])
    _write_32k(wav / "sm1" / "sm1_01" / "sm1_01_002.wav", clips[2] * 0.3)
    header = "directory,subdirectory,filename,speaker_id,session_id,utterance_id,transcription,recording_corrupt,recording_id,length_sec"
    rows = [
        "gf1,gf1_01,gf1_01_001,gf1,gf1_01,1,speedbird one two three [HNOISE] climb flight level three five zero,0,1,3.1",
        "gf1,gf1_01,gf1_01_002,gf1,gf1_01,2,<OT> lufthansa </OT> four alfa bravo contact tower one one eight decimal seven =sev,0,2,3.0",
        "sm1,sm1_01,sm1_01_001,sm1,sm1_01,1,ryanair nine two cleared to land runway two seven left,1,3,3.0",
        "sm1,sm1_01,sm1_01_002,sm1,sm1_01,2,[EMPTY],0,4,1.0",
        "gf1,gf1_01,gf1_01_003,gf1,gf1_01,3,hello,0,5,1.0",
    ]
    (root / "TXTdata").mkdir(parents=True)
    (root / "TXTdata" / "fulldata.csv").write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")

    report = import_corpus("atcosim", root.parent, workspace, Settings(), progress=False)  # the parent works too
    assert report.imported == 2
    found = sorted(r for _, r in report.skipped)
    assert len(found) == 3
    for fragment in ("marked corrupt", "empty transcript", "audio file missing"):
        assert any(fragment in r for r in found), (fragment, found)
    with Catalogue(workspace.db_path) as cat:
        a, b = cat.samples(source="atcosim")
    assert a.text_norm == normalize_atc(TEXTS[0]) and "hnoise" not in a.text_norm
    assert b.text_norm == normalize_atc(TEXTS[1]) and "sev" not in b.text_norm.split()
    assert a.role == b.role == "controller" and a.speaker == b.speaker == "gf1"
    assert a.split == b.split and a.group_id == "atcosim:gf1"
    assert abs(a.duration_s - clips[0].size / SR) < 0.02  # resampled from 32 kHz

    # Without fulldata.csv the per-utterance TXTdata files are read.
    (root / "TXTdata" / "fulldata.csv").unlink()
    txt = root / "TXTdata" / "sm1" / "sm1_01" / "sm1_01_001.txt"
    txt.parent.mkdir(parents=True)
    txt.write_text("ryanair nine two cleared to land runway two seven left\n", encoding="utf-8")
    again = import_corpus("atcosim", root, workspace, Settings(), progress=False)
    assert again.imported == 1 and sum("no transcript" in r for _, r in again.skipped) == 3
    assert clean_atcosim_text("<FL> guten tag </FL> ~k ~l ~m @speedbird [FRAGMENT] roger=") == "k l m speedbird"


def test_unknown_or_missing_corpus_is_a_clear_error(workspace, tmp_path: Path):
    with pytest.raises(DataError, match="valid formats"):
        import_corpus("kaldi", tmp_path, workspace, Settings())
    with pytest.raises(DataError, match="does not exist"):
        import_corpus("generic", tmp_path / "nope.csv", workspace, Settings())
    (tmp_path / "bad.csv").write_text("file_path,words\nx.wav,hello\n")
    with pytest.raises(DataError, match=r"no audio or text column.*accepted names"):
        import_corpus("generic", tmp_path / "bad.csv", workspace, Settings())
    with pytest.raises(DataError, match="WAVdata"):
        import_corpus("atcosim", tmp_path, workspace, Settings())


def test_import_stats_and_check_through_the_cli(run_cli, workspace, clips, tmp_path: Path):
    root = tmp_path / "mini"
    write_wav(root / "a.wav", clips[0])
    write_wav(root / "b.wav", clips[1])
    (root / "list.tsv").write_text(f"audio\ttext\trole\na.wav\t{TEXTS[0]}\tatco\nb.wav\t{TEXTS[1]}\tpilot\n"
                                   "gone.wav\tclimb\t\n", encoding="utf-8")
    ws = str(workspace.root)
    result = run_cli("import", "generic", str(root / "list.tsv"), "-w", ws, "--split", "test", "--no-progress")
    assert result.returncode == 0, result.stderr
    assert "2 samples imported" in result.stdout and "audio file missing" in result.stdout

    with Catalogue(workspace.db_path) as cat:
        assert [(s.role, s.split) for s in cat.samples()] == [("controller", "test"), ("pilot", "test")]
    stats = run_cli("data", "stats", "-w", ws)
    assert stats.returncode == 0, stats.stderr
    assert "generic:list" in stats.stdout and "test 2" in stats.stdout

    check = run_cli("data", "check", "-w", ws, "--no-progress")
    assert check.returncode == 0, check.stderr
    assert "2 samples checked" in check.stdout

    with Catalogue(workspace.db_path) as cat:
        victim = cat.samples()[0].audio_path
    data = bytearray(victim.read_bytes())
    data[-100] ^= 0xFF  # one flipped byte in the audio
    victim.write_bytes(bytes(data))
    bad = run_cli("data", "check", "-w", ws, "--no-progress")
    assert bad.returncode == 1
    assert "modified" in bad.stderr and victim.name in bad.stderr

    pruned = run_cli("data", "check", "-w", ws, "--no-progress", "--prune")
    assert pruned.returncode == 0 and "pruned 1 sample row" in pruned.stdout
    with Catalogue(workspace.db_path) as cat:
        assert cat.count() == 1
    back = run_cli("import", "generic", str(root / "list.tsv"), "-w", ws, "--split", "test", "--no-progress")
    assert back.returncode == 0 and "1 samples imported" in back.stdout and "1 already" in back.stdout
    assert run_cli("data", "check", "-w", ws, "--no-progress").returncode == 0

    missing = run_cli("import", "atco2", str(tmp_path / "nothing"), "-w", ws)
    assert missing.returncode == 1 and missing.stderr.startswith("Error:") and "Traceback" not in missing.stderr


# -- real-corpus cases (issue 11): inline foreign speech, ends past the audio, .info context ---

REAL_XML = """<?xml version='1.0' encoding='utf-8'?>
<data>
  <segment><start>{s[0]:.2f}</start><end>{e[0]:.2f}</end><speaker>A</speaker><speaker_label>Ruzyne Tower</speaker_label>
    <text>[#callsign] Speedbird one two three [/#callsign] [NE Czech] dobrý den [/NE] [#command] climb [/#command] [#value] flight level three five zero [/#value]</text>
    <tags><non_english>1</non_english><correct_transcript>1</correct_transcript></tags></segment>
  <segment><start>{s[1]:.2f}</start><end>{e[1]:.2f}</end><speaker>B</speaker><speaker_label>DLH4AB</speaker_label>
    <text>[#callsign] Lufthansa four alfa bravo [/#callsign] [NE German] tschüss [\\NE] contact tower one one eight decimal seven</text></segment>
  <segment><start>{s[2]:.2f}</start><end>{e[2]:.2f}</end><speaker>C</speaker><speaker_label>RYR92</speaker_label>
    <text>[#callsign] Ryanair niner two [/#callsign] cleared to land runway two seven left děkuji</text></segment>
  <segment><start>{s[3]:.2f}</start><end>{e[3]:.2f}</end><speaker>A</speaker><speaker_label>Ruzyne Tower</speaker_label>
    <text>[#nonenglish] nashledanou [/Ne]</text></segment>
  <segment><start>{s[4]:.2f}</start><end>{e[4]:.2f}</end><speaker>A</speaker><speaker_label>Ruzyne Tower</speaker_label>
    <text>[#callsign] CSA one [/#callsign] report final</text></segment>
</data>
"""
REAL_INFO = """airport: LKPR (Prague Ruzyne)
channel: Tower
frequency: 134.560 MHz
waypoints nearby: BAVOX, GOLOP RAPET
callsigns nearby:
BAW123 : Speedbird One Two Three
DLH4AB : Lufthansa Four Alfa Bravo
RYR92 : Ryanair Nine Two
CSA4AB
"""
REAL_STEM = "LKPR_RUZYNE_Tower_134_560MHz_20201025_090915"


def write_real_atco2(folder: Path, clips: list[np.ndarray]) -> dict[str, float]:
    """An ATCO2 recording in the corpus layout with the three real-corpus cases; returns its timing."""
    recording = np.concatenate([silence(0.3), clips[0], silence(0.5), clips[1], silence(0.5), clips[2]])
    write_wav(folder / f"{REAL_STEM}.wav", recording)
    total = recording.size / SR
    s0 = 0.3
    s1 = s0 + clips[0].size / SR + 0.5
    s2 = s1 + clips[1].size / SR + 0.5
    starts = [s0, s1, s2, s0, s1]
    ends = [s0 + clips[0].size / SR, s1 + clips[1].size / SR,
            total + 0.08,   # annotation rounding: 0.08 s past the end -> clamped, kept
            s0 + 0.8,       # wholly foreign -> skipped
            total + 2.0]    # 2 s past the end: really outside -> skipped
    (folder / f"{REAL_STEM}.xml").write_text(REAL_XML.format(s=starts, e=ends), encoding="utf-8")
    (folder / f"{REAL_STEM}.info").write_text(REAL_INFO, encoding="utf-8")
    return {"total_s": total, "start_2": s2}


def test_atco2_foreign_spans_end_rounding_and_info(workspace, clips, tmp_path: Path):
    data = tmp_path / "DATA"
    timing = write_real_atco2(data, clips)
    report = import_corpus("atco2", data, workspace, Settings(), progress=False)
    assert (report.imported, report.clamped, report.foreign_stripped, report.recordings) == (3, 1, 2, 1)
    found = [r for _, r in report.skipped]
    assert len(found) == 2, found
    assert any("non-English segment" in r and "nashledanou" in r for r in found)
    assert any("beyond the audio's end" in r and "data.end_tolerance_s" in r for r in found)
    assert sorted(found) == sorted(reasons(workspace, "atco2"))  # stored with their reasons

    with Catalogue(workspace.db_path) as cat:
        tower, pilot, ryanair = cat.samples(source="atco2")
        (rec,) = cat.recordings("atco2")
    # Foreign words never reach the English reference; they are kept beside it.
    assert tower.text_norm == "speedbird one two three climb flight level three five zero"
    assert tower.params["non_english"] == [{"language": "Czech", "text": "dobrý den"}]
    assert tower.params["flags"] == {"non_english": 1, "correct_transcript": 1}
    assert pilot.text_norm == "lufthansa four alfa bravo contact tower one one eight decimal seven"
    assert pilot.params["non_english"][0]["language"] == "German"
    assert "dobrý den" in tower.text_raw  # the raw text is kept as it was
    # An unmarked word with diacritics is transliterated whole, never cut to a fragment.
    assert ryanair.text_norm.endswith("two seven left dekuji") and "non_english" not in ryanair.params
    # The end 0.08 s past the audio is clamped to it; the clip is the rest of the recording.
    assert ryanair.params["end_clamped_from_s"] == pytest.approx(timing["total_s"] + 0.08, abs=0.01)
    assert ryanair.params["end_s"] == pytest.approx(timing["total_s"], abs=0.01)
    assert ryanair.duration_s == pytest.approx(clips[2].size / SR, abs=0.02)
    # The .info file, per recording, keyed like the segments' leakage group.
    assert rec.group_id == tower.group_id == ryanair.group_id == f"atco2:{REAL_STEM}"
    assert (rec.airport, rec.airport_name, rec.channel, rec.frequency_mhz) == ("LKPR", "Prague Ruzyne", "Tower", 134.56)
    assert rec.waypoints == ["BAVOX", "GOLOP", "RAPET"]
    # A bare code is read as a callsign (an airline the reader does not know is spelled out).
    assert rec.known_callsigns() == ["speedbird one two three", "lufthansa four alfa bravo", "ryanair nine two",
                                     "charlie sierra alfa four alfa bravo"]
    assert rec.raw_info == REAL_INFO and rec.audio_path == data / f"{REAL_STEM}.wav"

    # Re-running changes nothing, and updates the stored context in place.
    (data / f"{REAL_STEM}.info").write_text(REAL_INFO.replace("Tower", "Radar"), encoding="utf-8")
    again = import_corpus("atco2", data, workspace, Settings(), progress=False)
    assert (again.imported, again.already) == (0, 3)
    with Catalogue(workspace.db_path) as cat:
        (rec,) = cat.recordings("atco2")
    assert rec.channel == "Radar"


def test_atco2_non_english_skip_setting(workspace, clips, tmp_path: Path):
    data = tmp_path / "DATA"
    write_real_atco2(data, clips)
    settings = Settings().replace(data={"non_english": "skip", "end_tolerance_s": 0.05})
    report = import_corpus("atco2", data, workspace, settings, progress=False)
    assert report.imported == 0  # two with inline foreign speech, the clamped one now too far out
    stored = reasons(workspace, "atco2")
    assert sum("data.non_english = 'skip'" in r and ("Czech" in r or "German" in r) for r in stored) == 2
    assert sum("beyond the audio's end" in r for r in stored) == 2
    assert len(stored) == 5


def test_generic_and_atcosim_foreign_markup(workspace, clips, tmp_path: Path):
    root = tmp_path / "mine"
    write_wav(root / "a.wav", clips[0])
    write_wav(root / "b.wav", clips[1])
    (root / "list.csv").write_text(
        "audio,text\n"
        f"a.wav,\"{TEXTS[0]} [NE Czech] na shledanou [/NE]\"\n"
        f"b.wav,\"<FL> servus </FL> {TEXTS[1]}\"\n", encoding="utf-8")
    report = import_corpus("generic", root / "list.csv", workspace, Settings(), progress=False)
    assert report.imported == 2 and report.foreign_stripped == 2
    with Catalogue(workspace.db_path) as cat:
        a, b = cat.samples(source="generic:list")
    assert a.text_norm == TEXTS[0] and b.text_norm == normalize_atc(TEXTS[1])
    assert b.params["non_english"] == [{"language": None, "text": "servus"}]
