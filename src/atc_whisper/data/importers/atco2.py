"""ATCO2 corpus reader (the free ATCO2 1 h test set and the 4 h ELRA set share the layout).

Layout: a folder (``ATCO2-ASRdataset-v1_final/DATA`` or any folder above it) holding, per
recording, ``<name>.wav``, ``<name>.xml`` and usually ``<name>.info``::

    DATA/LKPR_RUZYNE_Tower_134_560MHz_20201025_090915.wav
    DATA/LKPR_RUZYNE_Tower_134_560MHz_20201025_090915.xml
    DATA/LKPR_RUZYNE_Tower_134_560MHz_20201025_090915.info

Each XML file holds ``<segment>`` elements, one per transmission::

    <segment>
      <start>1.25</start> <end>4.80</end>
      <speaker>A</speaker> <speaker_label>Ruzyne Tower</speaker_label>
      <text>[#callsign] CSA four alfa bravo [/#callsign] [#command] climb [/#command]
            [#value] flight level one two zero [/#value] [hes]</text>
    </segment>

The text carries named-entity tags (``[#callsign]..[/#callsign]``, ``[#command]``,
``[#value]``, ``[#unnamed]``), noise/hesitation marks (``[hes]``, ``[unk]``, ``[noise]``,
``[spk]``, ``[key]``, ``[xt]``), foreign speech (``[NE Czech] dobrý den [/NE]``, also spelt
``[/Ne]``, ``[\\NE]``, ``[#nonenglish]``...; see :func:`~.base.split_foreign`), foreign greetings
with a gloss (``dobry_den_(greet)``) and pronunciation notes (``04R(zero four right)``: what was
said is in the brackets). The reference keeps the English words only; the foreign spans go to
``params.non_english`` (or the segment is skipped, ``data.non_english = "skip"``), the tagged
spans to ``meaning.callsign`` and ``params.tags``, the raw text is stored unchanged. Segments
with no English left are skipped. The speaker role comes from ``speaker_label``: ATC unit names
(Tower, Approach, Radar, Ground, ...) are controllers, callsigns are pilots. The leakage group
is the recording.

The ``.info`` file (airport, channel, frequency, waypoints and callsigns nearby; read by
:mod:`.recording_info`) is stored per recording in the catalogue's ``recordings`` table;
airport, channel and frequency also come from the file name when the ``.info`` lacks them.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ...errors import DataError
from ..catalogue import Recording
from .base import CorpusItem, Skip, role_from_label, split_foreign
from .recording_info import facts_from_name, parse_recording_info, read_text_liberally

_TAG_SPAN = re.compile(r"\[#(\w+)\](.*?)\[/#\1\]", re.S)
_ENTITY_MARK = re.compile(r"\[/?#\w*\]")
_OTHER_MARK = re.compile(r"\[[^\]]*\]|<[^>]*>")
# "04R(zero four right)" or "Lufthansa(-hansa)": the bracket holds what was actually said.
_SPOKEN_AS = re.compile(r"(?<![\w(])[^\s()]*[^\s()_]\(([^)]*)\)")
# "dobry_den_(greet)": a non-English greeting with its gloss; not part of the reference.
_GLOSSED = re.compile(r"(\S*)_\(([^)]*)\)")


def clean_atco2_text(text: str) -> tuple[str, dict[str, Any]]:
    """Strip ATCO2 markup from a segment's text.

    Returns:
        (English words only, metadata) where metadata has ``tags`` (list of {"tag", "text"}),
        ``callsign`` (the first tagged callsign's words or None) and ``foreign`` (the non-English
        spans removed: ``{"language", "text"}`` dicts, empty for an all-English segment).
    """
    spaced = re.sub(r"\s+", " ", re.sub(r"(\[)", r" \1", re.sub(r"(\])", r"\1 ", text))).strip()
    spaced = re.sub(r"\[ *(/?) *(#?) *(\w+) *\]", r"[\1\2\3]", spaced)  # "[ #callsign ]" -> "[#callsign]"
    english, foreign = split_foreign(spaced)
    # "dobry_den_(greet)": a foreign greeting with its English gloss, spoken in the foreign language.
    foreign += [{"language": None, "text": m.group(1).replace("_", " "), "gloss": m.group(2)}
                for m in _GLOSSED.finditer(english)]
    meta: dict[str, Any] = {"foreign": foreign, "tags": [], "callsign": None}

    def words(fragment: str) -> str:
        fragment = _GLOSSED.sub(" ", fragment)
        fragment = _SPOKEN_AS.sub(lambda m: f" {m.group(1)} ", fragment)
        fragment = _ENTITY_MARK.sub(" ", fragment)
        fragment = _OTHER_MARK.sub(" ", fragment)
        return re.sub(r"\s+", " ", fragment).strip()

    for match in _TAG_SPAN.finditer(english):
        tag, inner = match.group(1), words(match.group(2))
        meta["tags"].append({"tag": tag, "text": inner})
        if tag == "callsign" and meta["callsign"] is None and inner:
            meta["callsign"] = inner
    return words(english), meta


def _child_text(segment: ET.Element, name: str) -> str:
    node = segment.find(name)
    return "" if node is None or node.text is None else node.text.strip()


def read_atco2(path: Path) -> Iterator[CorpusItem | Skip | Recording]:
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


def recording_context(stem: str, wav: Path, group: str) -> Recording | Skip | None:
    """The context of one recording: its ``.info`` file (when there is one) and its file name.

    Args:
        stem: The recording's name.
        wav: Its audio file.
        group: The leakage group of its segments (the importer prefixes the source, as for samples).

    Returns:
        The :class:`Recording`, a :class:`Skip` for an unreadable ``.info`` file, or None when
        there is nothing to know (no ``.info`` file and no ATCO2-style name).
    """
    info_path = wav.with_name(f"{stem}.info")
    raw = ""
    if info_path.is_file():
        try:
            raw = read_text_liberally(info_path)
        except OSError as exc:
            return Skip(str(info_path), f"unreadable .info file: {exc.strerror or exc}")
    elif not facts_from_name(stem):
        return None
    info = parse_recording_info(raw, name=stem)
    return Recording(
        source="atco2", recording=stem, group_id=group, audio_path=wav, airport=info.airport,
        airport_name=info.airport_name, channel=info.channel, frequency_mhz=info.frequency_mhz,
        callsigns=info.callsigns, waypoints=info.waypoints,
        info={"fields": info.fields, "warnings": info.warnings, "has_info_file": bool(raw)},
        raw_info=raw, info_path=info_path if raw else None,
    )


def _items(xml_files: list[Path]) -> Iterator[CorpusItem | Skip | Recording]:
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
        context = recording_context(stem, wav, stem)
        if context is not None:
            yield context
        for index, seg in enumerate(segments):
            where = f"{xml_path.name} segment {index + 1}"
            try:
                start, end = float(_child_text(seg, "start")), float(_child_text(seg, "end"))
            except ValueError:
                yield Skip(where, "segment has no valid <start>/<end> times")
                continue
            raw = _child_text(seg, "text")
            clean, meta = clean_atco2_text(raw)
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
                meaning=meaning, foreign=meta["foreign"],
                params={"tags": meta["tags"], "speaker": speaker, "speaker_label": label, "xml": str(xml_path),
                        **_segment_flags(seg)},
            )


def _segment_flags(segment: ET.Element) -> dict[str, Any]:
    """The annotators' per-segment flags (``<tags><non_english>1</non_english>...</tags>``) as ints."""
    flags: dict[str, Any] = {}
    tags = segment.find("tags")
    for child in tags if tags is not None else ():
        value = (child.text or "").strip()
        flags[child.tag] = int(value) if value.lstrip("-").isdigit() else value
    return {"flags": flags} if flags else {}
