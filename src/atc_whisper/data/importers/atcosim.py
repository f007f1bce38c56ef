"""ATCOSIM corpus reader (Air Traffic Control Simulation Speech corpus, TU Graz / Eurocontrol).

Layout (the extracted ISO)::

    atcosim/WAVdata/<speaker>/<session>/<utterance>.wav   e.g. WAVdata/gf1/gf1_01/gf1_01_001.wav
    atcosim/TXTdata/<speaker>/<session>/<utterance>.txt   one transcription per utterance
    atcosim/TXTdata/fulldata.csv                          every utterance in one table

``fulldata.csv`` (comma separated, header row) is used when present; the columns read are
``directory``, ``subdirectory``, ``filename`` (the WAV is
``WAVdata/<directory>/<subdirectory>/<filename>.wav``), ``speaker_id``, ``transcription``
and ``recording_corrupt`` (rows marked corrupt are skipped). Without it the reader walks
``WAVdata`` and takes each clip's text from the matching file under ``TXTdata``.

Transcription conventions handled: ``[EMPTY]`` (nothing said), ``[HNOISE]`` (noise),
``[FRAGMENT]``/``[NONSENSE]``/``[UNKNOWN]`` (unintelligible), ``<OT>..</OT>`` (off-talk, kept),
``<FL>..</FL>`` (foreign language: removed, or the utterance skipped with ``data.non_english = "skip"``), ``=word``/``word=`` (cut-off word, dropped),
``@``/``~`` prefixes (removed). ATCOSIM has controllers only; the leakage group is the speaker,
so no speaker is ever in two splits.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ...errors import DataError
from .base import CorpusItem, Skip, split_foreign, transcript_for

_OFF_TALK = re.compile(r"</?OT>", re.I)
_FOREIGN = re.compile(r"<FL>.*?</FL>", re.I | re.S)
_MARKS = re.compile(r"\[(EMPTY|HNOISE|FRAGMENT|NONSENSE|UNKNOWN)\]", re.I)
_CUT_WORD = re.compile(r"(?<!\S)(=\S+|\S+=)(?!\S)")


def clean_atcosim_text(text: str) -> str:
    """Remove ATCOSIM markup, keeping the spoken words in order (lower case)."""
    text = _FOREIGN.sub(" ", text)
    text = _OFF_TALK.sub(" ", text)
    text = _MARKS.sub(" ", text)
    text = re.sub(r"<[^>]*>", " ", text)
    text = _CUT_WORD.sub(" ", text)
    words = [w.lstrip("@~") for w in text.split()]
    return " ".join(w for w in words if w).lower()


def read_atcosim(path: Path) -> Iterator[CorpusItem | Skip]:
    """Items of an ATCOSIM folder (see the module docstring for the layout).

    Raises:
        DataError: the folder lacks WAVdata/ or its transcriptions.
    """
    root = Path(path)
    if (root / "atcosim" / "WAVdata").is_dir() and not (root / "WAVdata").is_dir():
        root = root / "atcosim"
    wav_dir, txt_dir = root / "WAVdata", root / "TXTdata"
    if not wav_dir.is_dir():
        raise DataError(f"{root} is not an ATCOSIM folder: WAVdata/ is missing (expected WAVdata/<speaker>/<session>/*.wav).")
    full = txt_dir / "fulldata.csv"
    if full.is_file():
        return _from_fulldata(full, wav_dir)
    if not txt_dir.is_dir():
        raise DataError(f"{root} has no TXTdata/ folder with transcriptions (TXTdata/fulldata.csv or per-utterance .txt).")
    wavs = sorted(wav_dir.rglob("*.wav"))
    if not wavs:
        raise DataError(f"no .wav files under {wav_dir}.")
    return _from_folders(wavs, wav_dir, txt_dir)


def _item(wav: Path, utterance: str, speaker: str, raw: str, extra: dict[str, Any]) -> CorpusItem:
    english, foreign = split_foreign(raw)  # <FL> ... </FL>: data.non_english strips or skips them
    return CorpusItem(
        key=utterance, audio_path=wav, text_raw=raw, text_clean=clean_atcosim_text(english), speaker=speaker,
        role="controller", group_id=speaker, params=extra, foreign=foreign,
    )


def _from_fulldata(full: Path, wav_dir: Path) -> Iterator[CorpusItem | Skip]:
    raw = full.read_bytes().decode("utf-8-sig", errors="surrogateescape")
    reader = csv.DictReader(io.StringIO(raw, newline=""))
    needed = {"directory", "subdirectory", "filename", "speaker_id", "transcription"}
    missing = needed - set(reader.fieldnames or [])
    if missing:
        raise DataError(f"{full} lacks the column(s) {', '.join(sorted(missing))}; is this ATCOSIM's TXTdata/fulldata.csv?")
    return _fulldata_rows(reader, full, wav_dir)


def _fulldata_rows(reader: csv.DictReader[str], full: Path, wav_dir: Path) -> Iterator[CorpusItem | Skip]:
    for line_no, row in enumerate(reader, start=2):
        name = (row.get("filename") or "").strip()
        where = f"{full.name} line {line_no} ({name or 'no filename'})"
        if not name:
            yield Skip(where, "row has no filename")
            continue
        if (row.get("recording_corrupt") or "0").strip().lower() not in ("0", "false", "no", ""):
            yield Skip(where, "recording marked corrupt in fulldata.csv")
            continue
        text = row.get("transcription") or ""
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            yield Skip(where, "transcript is not UTF-8 text")
            continue
        wav = wav_dir / (row.get("directory") or "").strip() / (row.get("subdirectory") or "").strip() / f"{name}.wav"
        if not wav.is_file():
            yield Skip(where, f"audio file missing: {wav}")
            continue
        speaker = (row.get("speaker_id") or "").strip() or wav.parent.parent.name
        yield _item(wav, name, speaker, text.strip(), {"session": (row.get("subdirectory") or "").strip(),
                                                       "length_sec": row.get("length_sec")})


def _from_folders(wavs: list[Path], wav_dir: Path, txt_dir: Path) -> Iterator[CorpusItem | Skip]:
    for wav in wavs:
        rel = wav.relative_to(wav_dir)
        txt = (txt_dir / rel).with_suffix(".txt")
        text = transcript_for(wav, txt, f"{txt} is missing")
        if isinstance(text, Skip):
            yield text
            continue
        speaker = rel.parts[0] if len(rel.parts) > 1 else wav.stem.split("_")[0]
        yield _item(wav, wav.stem, speaker, text, {"session": rel.parts[1] if len(rel.parts) > 2 else None,
                                                  "transcript_file": str(txt)})
