"""Synthetic dataset preparation: phraseology -> TTS voice -> clean clip -> radio variants -> catalogue.

``prepare_dataset`` generates ``data.samples`` utterances with the seeded phraseology
generator, gives each a voice and prosody, synthesises it, writes the clean clip under
``data/atc_dataset/synthetic/`` and ``data.augmented_per_sample`` radio-channel variants under
``data/augmented/``, and records every clip in the catalogue. It then writes
``data/atc_dataset/metadata.csv`` and the aviation vocabulary file.

Splits and voices (see :mod:`atc_whisper.data.splits`): the reference text is the leakage
group; its split is fixed the first time it is catalogued (by its position in the generator's
sequence); test utterances are spoken by a held-out test voice with probability
``data.test_voice_share``, train/dev utterances never are.

Clean clips: every utterance is synthesised once; the clean clip is the source of its radio
variants and is kept (``data/cache/clean/``, with the voice and prosody it was made with) so
that more variants later come from the same speech. Only a share ``data.clean_share`` of the
utterances (drawn per utterance from the seed and its position) also catalogue their clean
clip as a training sample (``data/atc_dataset/synthetic/``): radio listeners never hear studio
speech. Blocked transmissions (``Utterance.blocked``) get the channel's blocking burst, and the
channel's second-station effect mixes in another generated transmission (eSpeak, cheap).

Rehearsal: a share ``data.plain_fraction`` of the generator's slots holds an everyday English
sentence (:mod:`atc_whisper.phraseology.everyday`, phase ``"everyday"``, no role or callsign)
instead of a transmission. Those go to the training split only, so fine-tuning keeps seeing
ordinary speech written the ordinary way and the test split stays pure ATC.

Resumable and additive: every sample's uid is derived from the seed, the utterance's
position and its text, and its row is inserted only after its files are complete (one
transaction per utterance). Re-running after Ctrl-C or ``kill -9`` re-makes files that have no
row and skips utterances that are complete; asking for more samples adds only the new ones.
Samples from earlier runs with other settings (another seed, more samples) are kept; only a
row whose (seed, position) slot now yields other words - a newer generator version - is
replaced, together with its files.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import io
import json
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..config import Settings
from ..errors import AtcWhisperError, DataError
from ..fsutil import atomic_write_text, sha256_file
from ..log import get_logger
from ..workspace import Workspace
from .catalogue import SPLITS, Catalogue, Sample, remove_partial_files
from .splits import group_splits

log = get_logger(__name__)

SOURCE = "synthetic"
METADATA_COLUMNS = (
    "file", "text", "reference", "split", "source", "engine", "voice", "role", "phase", "augmented", "parent_uid",
    "snr_db", "duration_s", "uid", "sha256",
)


@dataclass
class PrepareReport:
    """What :func:`prepare_dataset` did and what the catalogue now holds.

    Attributes:
        requested: utterances asked for (``data.samples``).
        added_utterances: utterances synthesised by this run.
        added_samples: catalogue rows added (clean + augmented).
        already_complete: utterances that were already fully catalogued.
        replaced_samples: rows removed because the generator now makes other words for their
            (seed, position) slot (a newer phraseology version).
        skipped: (item, reason) for utterances or variants left out.
        seconds: wall time of this run.
        totals: catalogue-wide counts: ``samples``, ``hours``, ``by_split``, ``by_role``,
            ``by_engine``, ``by_source``.
        metadata_csv: the metadata file written.
        vocabulary_path: the vocabulary file written.
        run_id: the catalogue run recording this preparation.
    """

    requested: int
    added_utterances: int = 0
    added_samples: int = 0
    already_complete: int = 0
    replaced_samples: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)
    seconds: float = 0.0
    totals: dict[str, Any] = field(default_factory=dict)
    metadata_csv: Path | None = None
    vocabulary_path: Path | None = None
    run_id: int | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON-able summary."""
        data = dataclasses.asdict(self)
        data["skipped"] = [list(s) for s in self.skipped]
        data["metadata_csv"] = str(self.metadata_csv) if self.metadata_csv else None
        data["vocabulary_path"] = str(self.vocabulary_path) if self.vocabulary_path else None
        return data


class _Skip(Exception):
    """This utterance or variant cannot be made; the message is the reason."""


def sample_uid(seed: int, index: int, text: str) -> str:
    """Uid of the clean clip of the ``index``-th utterance of generator seed ``seed``.

    The text digest makes the uid change whenever the generator produces different words
    for that position (a new generator version, other settings), so a stale row is never
    taken for the new utterance.
    """
    digest = hashlib.sha1(text.encode("utf-8")).hexdigest()[:8]
    return f"syn-s{seed}-{index:06d}-{digest}"


_UID_SLOT = re.compile(r"^syn-s(\d+)-(\d{6})-[0-9a-f]{8}")


def _stale_uids(existing: set[str], seed: int, index: int, clean_uid: str) -> list[str]:
    """Catalogued uids of the same generator slot (seed, index) but other words: made by an
    older generator version, superseded by ``clean_uid`` and its variants."""
    prefix = f"syn-s{seed}-{index:06d}-"
    return sorted(u for u in existing if u.startswith(prefix) and not u.startswith(clean_uid))


EVERYDAY_PHASE = "everyday"


@dataclasses.dataclass(frozen=True)
class EverydayUtterance:
    """A plain English sentence mixed into the synthetic data (``data.plain_fraction``)."""

    uid: str
    text: str
    reference: str
    role: None = None
    phase: str = EVERYDAY_PHASE
    callsign: str = ""
    commands: tuple[Any, ...] = ()

    @classmethod
    def make(cls, seed: int, index: int) -> EverydayUtterance:
        from ..phraseology.everyday import everyday_sentence

        text = everyday_sentence(seed, index)
        return cls(uid=f"s{seed}-{index:06d}", text=text, reference=text)


def catalogues_clean(seed: int, index: int, share: float) -> bool:
    """Whether the ``index``-th utterance catalogues its clean clip (``data.clean_share``).

    Drawn per utterance from (seed, index), so growing ``data.samples`` keeps earlier choices.
    """
    return share >= 1.0 or (share > 0.0 and np.random.default_rng([seed, index, 8_888]).random() < share)


#: Offset of the generator seed whose transmissions are the second stations of the channel.
INTERFERER_SEED_OFFSET = 7_919


def everyday_slots(n: int, seed: int, fraction: float) -> set[int]:
    """Generator slots (indices below ``n``) that hold an everyday sentence instead of ATC speech.

    Drawn per slot from (seed, index), so growing ``data.samples`` keeps earlier slots as they were.
    """
    if fraction <= 0.0:
        return set()
    return {i for i in range(n) if np.random.default_rng([seed, i, 7_777]).random() < fraction}


def group_of(reference: str) -> str:
    """Leakage group of a synthetic utterance: its reference text."""
    return "text:" + hashlib.sha1(reference.encode("utf-8")).hexdigest()[:16]


class VoicePlan:
    """Chooses a voice per utterance: held-out test voices only ever for test utterances.

    The engine is drawn first (uniformly among the engines that have voices), then a voice of
    that engine, so an engine with one voice (Piper) is not drowned by one with hundreds.
    """

    def __init__(self, engines: list[str], test_voices: list[str], test_voice_share: float) -> None:
        from ..audio.tts import list_voices

        voices = list_voices(engines)
        held = set(test_voices)
        self.test_voices = [v.id for v in voices if v.id in held]
        missing = sorted(held - set(self.test_voices))
        if missing:
            log.warning("held-out test voice(s) %s not among the enabled engines' voices (%s); not used",
                        ", ".join(missing), ", ".join(engines))
        self.by_engine: dict[str, list[str]] = {}
        for v in voices:
            if v.id not in held:
                self.by_engine.setdefault(v.engine, []).append(v.id)
        if not self.by_engine:
            raise DataError(
                f"no training voices left: engines {', '.join(engines)} offer only the held-out test voices "
                f"{', '.join(test_voices)}; enable another engine (data.engines) or shorten data.test_voices."
            )
        self.test_voice_share = test_voice_share

    def choose(self, split: str, rng: np.random.Generator) -> str:
        """A voice id for an utterance of ``split``."""
        if split == "test" and self.test_voices and rng.random() < self.test_voice_share:
            return str(self.test_voices[int(rng.integers(len(self.test_voices)))])
        engines = sorted(self.by_engine)
        pool = self.by_engine[engines[int(rng.integers(len(engines)))]]
        return str(pool[int(rng.integers(len(pool)))])


def _meaning(utterance: Any) -> dict[str, Any]:
    commands = []
    for c in getattr(utterance, "commands", ()) or ():
        if hasattr(c, "as_dict"):
            commands.append(c.as_dict())
        else:
            commands.append(dataclasses.asdict(c) if dataclasses.is_dataclass(c) and not isinstance(c, type) else str(c))
    meaning: dict[str, Any] = {"callsign": getattr(utterance, "callsign", None), "commands": commands}
    for key in ("kind", "blocked", "phraseology"):  # transmission kind, cut short, ICAO or FAA forms
        if hasattr(utterance, key):
            meaning[key] = getattr(utterance, key)
    return meaning


def _existing_group_splits(catalogue: Catalogue) -> dict[str, str]:
    rows = catalogue.connection.execute("SELECT group_id, MIN(split) FROM samples GROUP BY group_id").fetchall()
    return {r[0]: r[1] for r in rows}


def prepare_dataset(workspace: Workspace, settings: Settings, *, progress: bool = True) -> PrepareReport:
    """Generate, synthesise, augment and catalogue ``settings.data.samples`` utterances.

    Args:
        workspace: where clips, the catalogue, metadata.csv and the vocabulary go.
        settings: ``[data]`` (how many, seed, engines, voices, splits, duration limits) and
            ``[channel]`` (radio effects).
        progress: show a progress bar.

    Returns:
        A :class:`PrepareReport` with what was added, skipped and the catalogue's totals.

    Raises:
        DataError: no usable voice, or the catalogue cannot be opened.
        KeyboardInterrupt: passed on after the run is recorded as interrupted; finished
            utterances are kept and a re-run resumes.
    """
    from tqdm.auto import tqdm

    from ..phraseology import generate_utterances, write_vocabulary

    started = time.perf_counter()
    data = settings.data
    report = PrepareReport(requested=data.samples)
    utterances: list[Any] = list(generate_utterances(data.samples, data.seed, pilot_fraction=data.pilot_fraction,
                                                     short_fraction=data.short_fraction, us_fraction=data.us_fraction))
    everyday = everyday_slots(len(utterances), data.seed, data.plain_fraction)
    for index in everyday:
        utterances[index] = EverydayUtterance.make(data.seed, index)
    plan = VoicePlan(list(data.engines), list(data.test_voices), data.test_voice_share)
    channel = None
    interferer_voices: list[str] = []
    if data.augmented_per_sample > 0:
        from ..audio.channel import RadioChannel
        from ..audio.tts import list_voices

        channel = RadioChannel(settings.channel, workspace.noise_dir)
        if "espeak" in data.engines:  # second stations: cheap eSpeak voices, never a held-out test voice
            interferer_voices = [v.id for v in list_voices(["espeak"]) if v.id not in set(data.test_voices)]
    workspace.synthetic_dir.mkdir(parents=True, exist_ok=True)
    workspace.augmented_dir.mkdir(parents=True, exist_ok=True)
    workspace.clean_cache_dir.mkdir(parents=True, exist_ok=True)
    for folder in (workspace.synthetic_dir, workspace.augmented_dir, workspace.clean_cache_dir):
        remove_partial_files(folder)
        remove_partial_files(folder, ".json")

    with Catalogue(workspace.db_path) as catalogue:
        existing = catalogue.uids(SOURCE)
        known_groups = _existing_group_splits(catalogue)
        groups = [group_of(u.reference) for u in utterances]
        planned = group_splits(groups, data.dev_fraction, data.test_fraction)
        # Everyday sentences are rehearsal material: training only, never scored as ATC.
        planned = ["train" if i in everyday else p for i, p in enumerate(planned)]
        # A group already catalogued keeps its split (earlier runs, other seeds): no leakage.
        splits = [known_groups.get(g, s) for g, s in zip(groups, planned, strict=True)]
        run_id = catalogue.start_run("prepare", {"data": settings.to_dict()["data"],
                                                 "channel": settings.to_dict()["channel"]})
        report.run_id = run_id
        status = "failed"
        try:
            bar = tqdm(list(enumerate(utterances)), desc="prepare", unit="utt", disable=not progress)
            for index, utterance in bar:
                _prepare_one(index, utterance, groups[index], splits[index], workspace, settings, plan, channel,
                             catalogue, existing, report, run_id, interferer_voices)
                bar.set_postfix(added=report.added_samples, skipped=len(report.skipped), refresh=False)
            status = "completed"
        except KeyboardInterrupt:
            status = "interrupted"
            raise
        finally:
            report.seconds = time.perf_counter() - started
            catalogue.finish_run(run_id, status, {k: v for k, v in report.as_dict().items() if k != "skipped"}
                                 | {"skipped": len(report.skipped)})
        report.metadata_csv = write_metadata_csv(catalogue, workspace.metadata_csv)
        report.totals = catalogue_totals(catalogue)
    report.vocabulary_path = write_vocabulary(workspace.vocabulary_path)
    report.seconds = time.perf_counter() - started
    log.info(
        "prepare: %d utterances added (%d samples), %d already complete, %d skipped; catalogue: %d samples, %.2f h",
        report.added_utterances, report.added_samples, report.already_complete, len(report.skipped),
        report.totals.get("samples", 0), report.totals.get("hours", 0.0),
    )
    return report


def _prepare_one(index: int, utterance: Any, group: str, split: str, workspace: Workspace, settings: Settings,
                 plan: VoicePlan, channel: Any, catalogue: Catalogue, existing: set[str], report: PrepareReport,
                 run_id: int, interferer_voices: list[str] | None = None) -> None:
    """Make whatever is missing of one utterance and catalogue it in one transaction."""
    from ..audio.io import load_audio, write_wav
    from ..audio.tts import random_voice_params as draw_params
    from ..audio.tts import split_voice_id, synthesize

    data = settings.data
    clean_uid = sample_uid(data.seed, index, utterance.text)
    aug_uids = [f"{clean_uid}-aug{k}" for k in range(data.augmented_per_sample)]
    keep_clean = data.augmented_per_sample == 0 or catalogues_clean(data.seed, index, data.clean_share)
    wanted = ([clean_uid] if keep_clean else []) + aug_uids
    missing = [u for u in wanted if u not in existing]
    stale = _stale_uids(existing, data.seed, index, clean_uid)
    if not missing:
        _replace(catalogue, stale, [], existing, report, index, workspace)
        report.already_complete += 1
        return
    # Every random draw of this utterance comes from generators seeded by (seed, index, stream),
    # so an utterance is the same whether it is made in the first run or after a resume.
    rng = np.random.default_rng([data.seed, index, 0])
    voice = plan.choose(split, rng)
    engine = split_voice_id(voice)[0]
    clean_path = workspace.synthetic_dir / f"{clean_uid}.wav"
    cache_path = workspace.clean_cache_dir / f"{clean_uid}.wav"
    try:
        tts_params = draw_params(voice, rng)
        recipe = {"text": utterance.text, "voice": voice, "tts": tts_params}
        synthesised = False
        if clean_uid in existing and clean_path.exists():
            clean = load_audio(clean_path)  # only variants are missing; reuse the catalogued clip
        elif _cached_recipe(cache_path) == json.loads(json.dumps(recipe)):
            clean = load_audio(cache_path)  # made before for the same words, voice and prosody
        else:
            clean, synthesised = synthesize(utterance.text, voice, **tts_params), True
        duration = clean.size / 16_000
        if duration < data.min_duration_s or duration > data.max_duration_s:
            raise _Skip(f"clean clip is {duration:.2f} s, outside data.min_duration_s..max_duration_s "
                        f"({data.min_duration_s:g}..{data.max_duration_s:g} s)")
        if keep_clean and clean_uid not in existing:
            write_wav(clean_path, clean)
        elif not keep_clean and synthesised:
            _cache_clean(cache_path, clean, recipe)
    except _Skip as exc:
        _skip(catalogue, report, clean_uid, str(exc), run_id)
        return
    except AtcWhisperError as exc:
        _skip(catalogue, report, clean_uid, f"synthesis failed with {voice}: {exc}", run_id)
        return

    base = dict(
        text_raw=utterance.text, text_norm=utterance.reference, split=split, source=SOURCE, engine=engine,
        voice=voice, role=getattr(utterance, "role", None), phase=getattr(utterance, "phase", None),
        meaning=_meaning(utterance), group_id=group,
    )
    rows: list[Sample] = []
    hashes: set[str] = set()

    def add(uid: str, path: Path, audio_s: float, **extra: Any) -> None:
        digest = sha256_file(path)
        twin = catalogue.uid_for_sha256(digest)
        if twin is not None or digest in hashes:
            _skip(catalogue, report, uid, f"duplicate audio: same content as {twin or 'another variant'}", run_id)
            return
        hashes.add(digest)
        rows.append(Sample(uid=uid, audio_path=path, sha256=digest, duration_s=round(audio_s, 4), **base, **extra))

    clean_params = {"tts": tts_params, "utterance_uid": getattr(utterance, "uid", None), "index": index}
    if keep_clean and clean_uid not in existing:
        add(clean_uid, clean_path, clean.size / 16_000, params=clean_params)
    blocked = bool(getattr(utterance, "blocked", False))
    for k, uid in enumerate(aug_uids):
        if uid in existing:
            continue
        assert channel is not None
        radio, channel_params = channel.apply(clean, np.random.default_rng([data.seed, index, k + 1]), blocked=blocked,
                                              interferer=_interferer(settings, voice, interferer_voices or []))
        seconds = radio.size / 16_000
        if seconds > data.max_duration_s:
            _skip(catalogue, report, uid, f"radio variant is {seconds:.1f} s > data.max_duration_s", run_id)
            continue
        path = workspace.augmented_dir / f"{uid}.wav"
        write_wav(path, radio)
        snr = channel_params.get("snr_db")
        add(uid, path, seconds, augmented=True, parent_uid=clean_uid, snr_db=None if snr is None else float(snr),
            params={**clean_params, "channel": channel_params})
    _replace(catalogue, stale, rows, existing, report, index, workspace)
    if keep_clean and clean_uid in existing:
        for path in (cache_path, cache_path.with_suffix(".json")):  # catalogued now: the cached copy is redundant
            path.unlink(missing_ok=True)


def _cached_recipe(cache_path: Path) -> Any:
    """The recipe (text, voice, TTS settings) a cached clean clip was made with, or None."""
    sidecar = cache_path.with_suffix(".json")
    if not (cache_path.exists() and sidecar.exists()):
        return None
    try:
        return json.loads(sidecar.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _cache_clean(cache_path: Path, clean: np.ndarray, recipe: dict[str, Any]) -> None:
    """Keep an uncatalogued clean clip (then its recipe, which marks it complete)."""
    from ..audio.io import write_wav

    write_wav(cache_path, clean)
    atomic_write_text(cache_path.with_suffix(".json"), json.dumps(recipe, sort_keys=True))


def _interferer(settings: Settings, voice: str, voices: list[str]) -> Any:
    """The channel's second station: another generated transmission, spoken by an eSpeak voice.

    Made only when the channel draws the effect, from the channel's own random generator, so a
    variant is reproducible; the other transmission comes from a separate generator seed.
    """
    from ..audio.tts import random_voice_params, synthesize
    from ..phraseology.generator import generate_utterance

    data = settings.data

    def make(rng: np.random.Generator) -> tuple[np.ndarray, dict[str, Any]]:
        other = generate_utterance(data.seed + INTERFERER_SEED_OFFSET, int(rng.integers(0, 1_000_000)),
                                   pilot_fraction=data.pilot_fraction, short_fraction=data.short_fraction,
                                   us_fraction=data.us_fraction)
        speaker = voices[int(rng.integers(len(voices)))] if voices else voice
        return synthesize(other.text, speaker, **random_voice_params(speaker, rng)), {"text": other.reference,
                                                                                      "voice": speaker}

    return make


def _replace(catalogue: Catalogue, stale: list[str], rows: list[Sample], existing: set[str], report: PrepareReport,
             index: int, workspace: Workspace | None = None) -> None:
    """Insert an utterance's rows and drop its stale predecessors in one transaction, then their files."""
    if workspace is not None:  # cached clean clips of the superseded words
        for uid in stale:
            for path in (workspace.clean_cache_dir / f"{uid}.wav", workspace.clean_cache_dir / f"{uid}.json"):
                path.unlink(missing_ok=True)
    if not stale and not rows:
        return
    stale_files = [s.audio_path for u in stale if (s := catalogue.sample(u)) is not None]
    with catalogue.transaction():  # the utterance's rows appear (and stale ones go) together
        if stale:
            catalogue.delete_samples(stale)
        if rows:
            catalogue.add_samples(rows)
    for path in stale_files:
        path.unlink(missing_ok=True)
    if stale:
        existing.difference_update(stale)
        report.replaced_samples += len(stale)
        log.info("replaced %d sample(s) of utterance %d made by an older generator version", len(stale), index)
    if rows:
        existing.update(r.uid for r in rows)
        report.added_samples += len(rows)
        report.added_utterances += 1


def _skip(catalogue: Catalogue, report: PrepareReport, item: str, reason: str, run_id: int) -> None:
    report.skipped.append((item, reason))
    catalogue.record_skip(SOURCE, item, reason, run_id)
    log.debug("skipped %s: %s", item, reason)


def catalogue_totals(catalogue: Catalogue) -> dict[str, Any]:
    """Counts and hours of the whole catalogue, by split, role, engine and source."""
    conn = catalogue.connection

    def by(column: str) -> dict[str, int]:
        sql = f"SELECT COALESCE({column}, 'unknown'), COUNT(*) FROM samples GROUP BY 1 ORDER BY 1"
        return {str(k): int(n) for k, n in conn.execute(sql)}

    n, seconds = conn.execute("SELECT COUNT(*), COALESCE(SUM(duration_s), 0) FROM samples").fetchone()
    by_split = by("split")
    return {
        "samples": int(n), "hours": float(seconds) / 3600.0,
        "by_split": {s: by_split.get(s, 0) for s in SPLITS}, "by_role": by("role"), "by_engine": by("engine"),
        "by_source": by("source"), "augmented": int(conn.execute("SELECT COUNT(*) FROM samples WHERE augmented").fetchone()[0]),
    }


def write_metadata_csv(catalogue: Catalogue, path: Path) -> Path:
    """Write one row per catalogued sample to ``path`` atomically (the prototype's metadata.csv).

    ``file`` is the audio path relative to the workspace root; ``text`` is what was spoken
    (TTS input or raw corpus transcript), ``reference`` the normalised transcript.
    """
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(METADATA_COLUMNS)
    for s in catalogue.samples():
        writer.writerow([
            catalogue.relative_path(s.audio_path), s.text_raw, s.text_norm, s.split, s.source, s.engine or "",
            s.voice or "", s.role or "", s.phase or "", int(s.augmented), s.parent_uid or "",
            "" if s.snr_db is None else f"{s.snr_db:.2f}", f"{s.duration_s:.3f}", s.uid, s.sha256,
        ])
    atomic_write_text(path, buffer.getvalue())
    return path
