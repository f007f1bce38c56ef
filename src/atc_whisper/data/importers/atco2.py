"""ATCO2 corpus reader (the free ATCO2 1 h test set and the 4 h ELRA set share the layout).

Layout: a folder (``ATCO2-ASRdataset-v1_final/DATA`` or any folder above it) holding, per
recording, ``<name>.wav`` and ``<name>.xml`` (an ``<name>.info`` beside them is ignored)::

    DATA/LKPR_RUZYNE_Tower_134_560MHz_20201025_090915.wav
    DATA/LKPR_RUZYNE_Tower_134_560MHz_20201025_090915.xml

Each XML file holds ``<segment>`` elements, one per transmission::

    <segment>
      <start>1.25</start> <end>4.80</end>
      <speaker>A</speaker> <speaker_label>Ruzyne Tower</speaker_label>
      <text>[#callsign] CSA four alfa bravo [/#callsign] [#command] climb [/#command]
            [#value] flight level one two zero [/#value] [hes]</text>
    </segment>

The text carries named-entity tags (``[#callsign]..[/#callsign]``, ``[#command]``,
``[#value]``, ``[#unnamed]``), noise/hesitation marks (``[hes]``, ``[unk]``, ``[noise]``,
``[spk]``, ``[key]``, ``[xt]``), foreign speech (``[NE Dutch] .. [/NE]``) and pronunciation
notes (``04R(zero four right)``: what was said is in the brackets). The reference keeps the
words only; the tagged spans are kept as metadata (``meaning.callsign``, ``params.tags``), the
raw text is stored unchanged. Segments wholly in a foreign language are skipped.
The speaker role comes from ``speaker_label``: ATC unit names (Tower, Approach, Radar,
Ground, ...) are controllers, callsigns are pilots. The leakage group is the recording.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ...errors import DataError
from .base import CorpusItem, Skip, role_from_label

_TAG_SPAN = re.compile(r"\[#(\w+)\](.*?)\[/#\1\]", re.S)
_FOREIGN_WHOLE = re.compile(r"^\s*\[NE\b[^\]]*\].*\[/NE\]\s*$", re.S | re.I)
_FOREIGN_MARK = re.compile(r"\[/?NE\b[^\]]*\]", re.I)
_ENTITY_MARK = re.compile(r"\[/?#\w*\]")
_OTHER_MARK = re.compile(r"\[[^\]]*\]|<[^>]*>")
# "04R(zero four right)" or "Lufthansa(-hansa)": the bracket holds what was actually said.
_SPOKEN_AS = re.compile(r"(?<![\w(])[^\s()]*[^\s()_]\(([^)]*)\)")
# "dobry_den_(greet)": a non-English greeting with its gloss; not part of the reference.
_GLOSSED = re.compile(r"\S*_\([^)]*\)")


def clean_atco2_text(text: str) -> tuple[str, dict[str, Any]]:
    """Strip ATCO2 markup from a segment's text.

    Returns:
        (words only, metadata) where metadata has ``tags`` (list of {"tag", "text"}),
        ``callsign`` (the first tagged callsign's words or None) and ``foreign`` (True when the
        whole segment is non-English).
    """
    spaced = re.sub(r"\s+", " ", re.sub(r"(\[)", r" \1", re.sub(r"(\])", r"\1 ", text))).strip()
    spaced = re.sub(r"\[ *(/?) *(#?) *(\w+) *\]", r"[\1\2\3]", spaced)  # "[ #callsign ]" -> "[#callsign]"
    meta: dict[str, Any] = {"foreign": bool(_FOREIGN_WHOLE.match(spaced)), "tags": [], "callsign": None}

    def words(fragment: str) -> str:
        fragment = _GLOSSED.sub(" ", fragment)
        fragment = _SPOKEN_AS.sub(lambda m: f" {m.group(1)} ", fragment)
        fragment = _FOREIGN_MARK.sub(" ", fragment)
        fragment = _ENTITY_MARK.sub(" ", fragment)
        fragment = _OTHER_MARK.sub(" ", fragment)
        return re.sub(r"\s+", " ", fragment).strip()

    for match in _TAG_SPAN.finditer(spaced):
        tag, inner = match.group(1), words(match.group(2))
        meta["tags"].append({"tag": tag, "text": inner})
        if tag == "callsign" and meta["callsign"] is None and inner:
            meta["callsign"] = inner
    return words(spaced), meta


def _child_text(segment: ET.Element, name: str) -> str:
    node = segment.find(name)
    return "" if node is None or node.text is None else node.text.strip()


def read_atco2(path: Path) -> Iterator[CorpusItem | Skip]:
    """Items of an ATCO2 folder (see the module docstring for the layout).

    Raises:
        DataError: the folder does not exist or holds no ATCO2 XML files.
    """
    path = Path(path)
    if not path.is_dir():
        raise DataError(f"ATCO2 corpus folder {path} does not exist; pass the folder holding the .wav and .xml files.")
    xml_files = sorted(p for p in path.rglob("*.xml") if p.is_file())
    if not xml_files:
        raise DataError(f"no ATCO2 .xml transcripts found under {path}; expected <recording>.wav + <recording>.xml pairs.")
    return _items(xml_files)


def _items(xml_files: list[Path]) -> Iterator[CorpusItem | Skip]:
    for xml_path in xml_files:
        stem = xml_path.name.split(".")[0]
        wav = xml_path.with_name(f"{stem}.wav")
        try:
            root = ET.fromstring(xml_path.read_bytes())
        except (ET.ParseError, OSError, UnicodeDecodeError, ValueError) as exc:
            yield Skip(str(xml_path), f"unreadable XML transcript: {exc}")
            continue
        segments = list(root.iter("segment"))
        if not segments:
            yield Skip(str(xml_path), "no <segment> elements in the XML file")
            continue
        if not wav.is_file():
            yield Skip(str(xml_path), f"audio file missing: {wav.name} (all {len(segments)} segments)")
            continue
        for index, seg in enumerate(segments):
            where = f"{xml_path.name} segment {index + 1}"
            try:
                start, end = float(_child_text(seg, "start")), float(_child_text(seg, "end"))
            except ValueError:
                yield Skip(where, "segment has no valid <start>/<end> times")
                continue
            raw = _child_text(seg, "text")
            clean, meta = clean_atco2_text(raw)
            if meta["foreign"]:
                yield Skip(where, "non-English segment ([NE] ... [/NE])")
                continue
            speaker = _child_text(seg, "speaker") or None
            label = _child_text(seg, "speaker_label") or None
            meaning: dict[str, Any] = {}
            if meta["callsign"]:
                meaning["callsign"] = meta["callsign"]
            yield CorpusItem(
                key=f"{stem}:{round(start * 100):07d}-{round(end * 100):07d}",
                audio_path=wav, text_raw=raw, text_clean=clean, start_s=start, end_s=end,
                speaker=label or speaker, group_id=stem,
                role=role_from_label(label) if label else role_from_label(speaker, strict=True),
                meaning=meaning, params={"tags": meta["tags"], "speaker": speaker, "speaker_label": label,
                                         "xml": str(xml_path)},
            )
