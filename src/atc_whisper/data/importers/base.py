"""The part every corpus importer shares: validate, cut, write, catalogue, skip with a reason.

A corpus-specific reader only turns its layout into :class:`CorpusItem` objects (one per
transcribed segment) or :class:`Skip` records. :func:`ingest` then does the rest for each
item, one at a time and never crashing halfway:

1. an item whose uid is already catalogued is counted as done (re-running resumes);
2. a segment with inline non-English speech is kept without those words, or skipped when
   ``data.non_english = "skip"``; the transcript is normalised to the ATC reference
   convention; empty ones are skipped;
3. the audio is decoded (16 kHz mono), the segment cut by its start/end times (an end up to
   ``data.end_tolerance_s`` past the end of the audio is clamped to it) and checked
   (not empty, not silent, within ``data.min_duration_s`` .. ``data.max_duration_s``);
4. the clip is written atomically under ``data/atc_dataset/imported/<corpus>/``;
5. a clip whose SHA-256 is already catalogued is a duplicate: its file is removed, it is skipped;
6. the row is inserted in one transaction, only after its file is complete.

At the end ``data/atc_dataset/metadata.csv`` is rewritten to include the new samples.

Anything skipped is recorded in the catalogue's ``skipped`` table with its reason. A reader may
also yield :class:`~atc_whisper.data.catalogue.Recording` records (per-recording context such as
ATCO2's ``.info`` files: airport, channel, frequency, callsigns nearby); they are stored in the
catalogue's ``recordings`` table, where ``evaluate --context recording`` finds them.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from ...config import Settings
from ...errors import AtcWhisperError
from ...fsutil import sha256_file
from ...log import get_logger
from ...workspace import Workspace
from ..catalogue import Catalogue, Recording, Sample, remove_partial_files
from ..splits import hash_split

log = get_logger(__name__)

#: Audio file extensions the importers look for in folders.
AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".mp3", ".m4a")

# Foreign-language markers, read liberally: ATCO2's [NE], [NE Czech], [NE-German], [ne czech],
# [#nonenglish], [#non_english], [#foreign]; closers [/NE], [/Ne], [\NE], [NE/], [/#nonenglish];
# ATCOSIM's <FL> ... </FL>.
_FOREIGN_TAG = re.compile(
    r"\[\s*(?P<close>[/\\])?\s*#?\s*(?P<name>NE|non[\s_-]*english|foreign)(?![A-Za-z])(?P<rest>[^\]]*)\]"
    r"|<\s*(?P<fl_close>/)?\s*FL\s*>",
    re.IGNORECASE,
)
_ANY_MARK = re.compile(r"\[[^\]]*\]|<[^>]*>")


def split_foreign(text: str) -> tuple[str, list[dict[str, Any]]]:
    """Separate inline foreign-language spans from the English words of a transcript.

    ``"[NE Czech] dobrý den [/NE] speedbird one"`` -> ``("speedbird one", [{"language": "Czech",
    "text": "dobrý den"}])``. Markers are matched case-insensitively in every spelling corpora use
    (see ``_FOREIGN_TAG``); an opening marker that is never closed runs to the end of the text,
    a closing marker with no opening one is dropped on its own. Other markup is left in place.

    Returns:
        (the text without the foreign spans, the spans as ``{"language", "text"}`` dicts; the
        language is None when the marker does not name it).
    """
    if "[" not in text and "<" not in text:
        return text, []
    kept: list[str] = []
    spans: list[dict[str, Any]] = []
    pos = 0
    open_at: int | None = None
    language: str | None = None

    def close(end: int) -> None:
        words = " ".join(_ANY_MARK.sub(" ", text[open_at:end]).split())
        spans.append({"language": language, "text": words})

    for match in _FOREIGN_TAG.finditer(text):
        rest = (match.group("rest") or "").strip()
        closing = bool(match.group("close") or match.group("fl_close") or rest.endswith("/"))
        if open_at is not None:
            close(match.start())
            open_at = None
            if closing:
                pos = match.end()
                continue
        elif closing:  # a closer with no opener: only the marker goes
            kept.append(text[pos:match.start()])
            pos = match.end()
            continue
        else:
            kept.append(text[pos:match.start()])
        open_at = match.end()
        language = rest.strip(" -:/") or None
    if open_at is not None:
        close(len(text))
    else:
        kept.append(text[pos:])
    return " ".join("".join(kept).split()), spans


def describe_foreign(spans: list[dict[str, Any]]) -> str:
    """A short human description of foreign spans: ``Czech: 'dobrý den'; 'ahoj'``."""
    parts = [(f"{s['language']}: " if s.get("language") else "") + repr(s.get("text", ""))[:40] for s in spans]
    return "; ".join(parts[:3]) + (f" (+{len(parts) - 3} more)" if len(parts) > 3 else "")


@dataclass
class CorpusItem:
    """One transcribed segment found in a corpus.

    Attributes:
        key: identity within the corpus (stable across runs: it makes the sample's uid).
        audio_path: the source audio file.
        text_raw: the transcript exactly as the corpus has it (tags and all).
        text_clean: the transcript with corpus markup removed, ready for ATC normalisation.
        start_s: segment start in the source file, seconds (None: from the beginning).
        end_s: segment end, seconds (None: to the end).
        speaker: speaker or channel label.
        role: "controller", "pilot" or None.
        group_id: leakage group (speaker or recording); defaults to the source file.
        meaning: structured facts the corpus annotates (e.g. the tagged callsign).
        params: other corpus metadata kept with the sample.
        foreign: inline non-English spans removed from ``text_clean`` (see :func:`split_foreign`);
            ``data.non_english`` decides whether the segment is kept without them or skipped.
    """

    key: str
    audio_path: Path
    text_raw: str
    text_clean: str
    start_s: float | None = None
    end_s: float | None = None
    speaker: str | None = None
    role: str | None = None
    group_id: str | None = None
    meaning: dict[str, Any] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)
    foreign: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Skip:
    """Something in a corpus that cannot be imported, and why."""

    item: str
    reason: str


@dataclass
class ImportReport:
    """What an import did.

    Attributes:
        source: the catalogue source name ("atco2", "generic:mycorpus" ...).
        path: what was imported.
        imported: samples added by this run.
        already: samples found already catalogued (an earlier, possibly interrupted, run).
        skipped: (item, reason) for everything left out.
        hours_added: audio hours added by this run.
        by_split: samples added per split.
        run_id: the catalogue run recording this import.
        recordings: recording context records (e.g. ATCO2 ``.info`` files) stored or updated.
        clamped: segments whose end lay slightly past the end of the audio and was clamped.
        foreign_stripped: segments kept with their inline non-English words removed.
    """

    source: str
    path: Path
    imported: int = 0
    already: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)
    hours_added: float = 0.0
    by_split: Counter[str] = field(default_factory=Counter)
    run_id: int | None = None
    recordings: int = 0
    clamped: int = 0
    foreign_stripped: int = 0

    def as_dict(self) -> dict[str, Any]:
        """JSON-able summary (stored as the import run's metrics)."""
        return {
            "source": self.source, "path": str(self.path), "imported": self.imported, "already": self.already,
            "skipped": len(self.skipped), "hours_added": round(self.hours_added, 4), "by_split": dict(self.by_split),
            "skip_reasons": dict(Counter(_reason_kind(r) for _, r in self.skipped)),
            "recordings": self.recordings, "clamped": self.clamped, "foreign_stripped": self.foreign_stripped,
        }


def _reason_kind(reason: str) -> str:
    # The reason's first clause, for a compact tally ("too long (31.2 s > 30 s)" -> "too long").
    return re.split(r"[(:;,]", reason, maxsplit=1)[0].strip()


def safe_name(text: str) -> str:
    """A file-system-safe version of ``text`` (keys become file names)."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._")
    return cleaned[:150] or "item"


def read_text_file(path: Path) -> str | Skip:
    """A transcript file's text, or a :class:`Skip` saying why it cannot be used."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        return Skip(str(path), f"transcript unreadable: {exc.strerror or exc}")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        return Skip(str(path), f"transcript is not UTF-8 text (byte {exc.start}); save it as UTF-8")
    return text.strip()


def transcript_for(audio: Path, txt: Path, missing: str) -> str | Skip:
    """The transcript of ``audio`` kept in ``txt``, or a :class:`Skip` of the audio saying why not.

    Args:
        audio: The audio file the transcript belongs to (what a skip names).
        txt: The transcript file.
        missing: How to describe a missing transcript file to the user.
    """
    if not txt.is_file():
        return Skip(str(audio), f"no transcript: {missing}")
    text = read_text_file(txt)
    return Skip(str(audio), text.reason) if isinstance(text, Skip) else text


class _AudioCache:
    """Keeps the last decoded source file: corpora cut many segments from one recording."""

    def __init__(self) -> None:
        self.path: Path | None = None
        self.audio: np.ndarray | None = None
        self.error: str | None = None

    def get(self, path: Path) -> np.ndarray:
        from ...audio.io import load_audio

        if path != self.path:
            self.path, self.audio, self.error = path, None, None
            try:
                self.audio = load_audio(path)
            except AtcWhisperError as exc:
                self.error = str(exc)
            except Exception as exc:
                self.error = f"cannot decode {path}: {type(exc).__name__}: {exc}"
        if self.error is not None:
            raise _ItemError(f"bad audio: {self.error}")
        assert self.audio is not None
        return self.audio


class _ItemError(Exception):
    """One item cannot be imported; the message is the reason recorded."""


def _cut(audio: np.ndarray, item: CorpusItem, sample_rate: int, end_tolerance_s: float) -> tuple[np.ndarray, float | None]:
    """The segment's samples, and the annotated end when it was clamped to the end of the audio (else None)."""
    total_s = audio.size / sample_rate
    if item.start_s is None and item.end_s is None:
        return audio, None
    start = item.start_s or 0.0
    end = item.end_s if item.end_s is not None else total_s
    if start < 0 or end <= start:
        raise _ItemError(f"bad segment times: start {start:.2f} s, end {end:.2f} s")
    if start >= total_s:
        raise _ItemError(f"segment {start:.2f}-{end:.2f} s lies beyond the audio's end ({total_s:.2f} s)")
    if end > total_s + end_tolerance_s:
        raise _ItemError(f"segment {start:.2f}-{end:.2f} s lies beyond the audio's end ({total_s:.2f} s): its end is "
                         f"{end - total_s:.2f} s past it, more than data.end_tolerance_s = {end_tolerance_s:g} s")
    clamped = end if end > total_s else None  # annotation rounding: keep the segment, cut at the end
    return audio[round(start * sample_rate): round(min(end, total_s) * sample_rate)], clamped


def ingest(
    items: Iterable[CorpusItem | Skip | Recording],
    *,
    source: str,
    kind: str,
    path: Path,
    workspace: Workspace,
    settings: Settings,
    split: str | None = None,
    progress: bool = True,
) -> ImportReport:
    """Import corpus items into the catalogue (see the module docstring for the steps).

    Args:
        items: what a corpus reader found.
        source: catalogue source name ("atco2", "atcosim", "generic:<name>").
        kind: the format name, recorded with the run.
        path: the corpus path, for the report and the run record.
        workspace: where clips and the catalogue live.
        settings: ``data`` limits and split fractions.
        split: put every sample in this split instead of hashing its group.
        progress: show a progress bar.

    Returns:
        The :class:`ImportReport`; interrupted imports can simply be run again.
    """
    from tqdm.auto import tqdm

    from ...audio.io import SAMPLE_RATE, check_speech, write_wav
    from ...phraseology import normalize_atc

    data = settings.data
    report = ImportReport(source=source, path=path)
    out_dir = workspace.imported_dir / safe_name(source.replace(":", "_"))
    cache = _AudioCache()
    seen: set[str] = set()
    remove_partial_files(out_dir)
    with Catalogue(workspace.db_path) as catalogue:
        existing = catalogue.uids(source)
        run_id = catalogue.start_run("import", {"format": kind, "path": str(path), "source": source, "split": split,
                                                "data": settings.to_dict()["data"]})
        report.run_id = run_id

        def skip(item: str, reason: str) -> None:
            report.skipped.append((item, reason))
            catalogue.record_skip(source, item, reason, run_id)
            log.debug("skipped %s: %s", item, reason)

        status = "failed"
        try:
            bar = tqdm(items, desc=f"import {source}", unit="seg", disable=not progress, leave=False)
            for entry in bar:
                if isinstance(entry, Skip):
                    skip(entry.item, entry.reason)
                    continue
                if isinstance(entry, Recording):
                    # keyed like the samples' leakage group: "<source>:<group>"
                    catalogue.upsert_recording(replace(entry, source=source, group_id=f"{source}:{entry.group_id}"))
                    report.recordings += 1
                    continue
                uid = f"{source}:{entry.key}"
                label = f"{entry.audio_path}" + (
                    f" [{entry.start_s:.2f}-{entry.end_s:.2f} s]" if entry.start_s is not None and entry.end_s is not None else ""
                )
                if uid in seen:
                    skip(label, "duplicate entry: the same audio and times appear twice in the corpus listing")
                    continue
                seen.add(uid)
                if uid in existing:
                    report.already += 1
                    continue
                try:
                    sample = _make_sample(entry, uid, source, out_dir, cache, catalogue, data, split,
                                          normalize_atc, check_speech, write_wav, SAMPLE_RATE)
                except _ItemError as exc:
                    skip(label, str(exc))
                    continue
                catalogue.add_samples([sample])
                catalogue.clear_skip(source, label)
                report.clamped += sample.params.get("end_clamped_from_s") is not None
                report.foreign_stripped += bool(sample.params.get("non_english"))
                report.imported += 1
                report.hours_added += sample.duration_s / 3600.0
                report.by_split[sample.split] += 1
            status = "completed"
        except KeyboardInterrupt:
            status = "interrupted"
            raise
        finally:
            catalogue.finish_run(run_id, status, report.as_dict())
        from ..prepare import write_metadata_csv

        write_metadata_csv(catalogue, workspace.metadata_csv)  # one row per sample, imported ones included
    log.info("import %s: %d added, %d already there, %d skipped", source, report.imported, report.already,
             len(report.skipped))
    return report


def _make_sample(entry: CorpusItem, uid: str, source: str, out_dir: Path, cache: _AudioCache, catalogue: Catalogue,
                 data: Any, split: str | None, normalize_atc: Any, check_speech: Any, write_wav: Any,
                 sample_rate: int) -> Sample:
    """Validate, cut and write one item; returns the sample to insert or raises _ItemError."""
    if entry.foreign:
        spans = describe_foreign(entry.foreign)
        if not entry.text_clean.strip():
            raise _ItemError(f"non-English segment ([NE] ... [/NE]: {spans}); nothing English left to transcribe")
        if data.non_english == "skip":
            raise _ItemError(f"contains non-English speech ({spans}); data.non_english = 'skip' leaves such "
                             "segments out (set it to 'strip' to keep the English words)")
    if not entry.text_clean.strip():
        raise _ItemError("empty transcript (nothing but noise or markup tags)")
    reference = normalize_atc(entry.text_clean)
    if not reference.strip():
        raise _ItemError(f"transcript {entry.text_raw[:60]!r} is empty after normalisation")
    if not entry.audio_path.exists():
        raise _ItemError(f"audio file missing: {entry.audio_path}")
    audio, clamped_from = _cut(cache.get(entry.audio_path), entry, sample_rate, data.end_tolerance_s)
    duration = audio.size / sample_rate
    if audio.size == 0:
        raise _ItemError("empty audio (no samples)")
    if duration > data.max_duration_s:
        raise _ItemError(f"too long ({duration:.1f} s > data.max_duration_s = {data.max_duration_s:g} s)")
    if duration < data.min_duration_s:
        raise _ItemError(f"too short ({duration:.2f} s < data.min_duration_s = {data.min_duration_s:g} s)")
    try:
        check_speech(audio, entry.audio_path)
    except AtcWhisperError as exc:
        raise _ItemError(f"silent audio: {exc}") from None
    stem = re.sub(r"\.(wav|flac|ogg|mp3|m4a)(?=$|@)", "", entry.key, flags=re.I)  # "a.wav" -> a.wav, not a.wav.wav
    target = out_dir / f"{safe_name(stem)}.wav"
    try:
        write_wav(target, audio, sample_rate)
    except OSError as exc:
        raise _ItemError(f"cannot write {target}: {exc.strerror or exc}") from None
    digest = sha256_file(target)
    twin = catalogue.uid_for_sha256(digest)
    if twin is not None:
        target.unlink(missing_ok=True)
        raise _ItemError(f"duplicate audio: same content (sha256) as already catalogued sample {twin}")
    group = entry.group_id or str(entry.audio_path)
    chosen = split or hash_split(f"{source}:{group}", data.dev_fraction, data.test_fraction)
    params = dict(entry.params)
    params.update({"source_file": str(entry.audio_path), "start_s": entry.start_s, "end_s": entry.end_s})
    if clamped_from is not None:  # the annotated end, past the end of the audio; end_s is where it was cut
        params.update({"end_clamped_from_s": clamped_from, "end_s": round((entry.start_s or 0.0) + duration, 4)})
    if entry.foreign:
        params["non_english"] = entry.foreign
    return Sample(
        uid=uid, audio_path=target, sha256=digest, duration_s=round(duration, 4), text_raw=entry.text_raw,
        text_norm=reference, split=chosen, source=source, role=entry.role, speaker=entry.speaker,
        params=params, meaning=entry.meaning, group_id=f"{source}:{group}", sample_rate=sample_rate,
    )


def role_from_label(label: str | None, *, strict: bool = False) -> str | None:
    """Speaker role from a corpus speaker label: ATC unit names mean controller.

    With ``strict`` only explicit words count (controller/atco/pilot, unit names); otherwise
    any other name is taken for an aircraft callsign, i.e. a pilot (ATCO2's convention).
    """
    if not label:
        return None
    low = label.lower()
    if low.startswith("unk") or low in ("?", "unknown"):
        return None
    if low in ("atco", "atc", "controller") or any(
        unit in low for unit in ("tower", "approach", "radar", "ground", "apron", "delivery", "control", "center",
                                 "centre", "departure", "director", "info")
    ):
        return "controller"
    if low in ("pilot", "pil", "aircraft"):
        return "pilot"
    # ATCO2 labels pilots with their callsign; anything else named is an aircraft.
    return None if strict else "pilot"
