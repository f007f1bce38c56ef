"""Synthetic dataset preparation: phraseology -> TTS voice -> clean clip -> radio variants -> catalogue.

``prepare_dataset`` generates ``data.samples`` utterances with the seeded phraseology
generator, gives each a voice and prosody, synthesises it, writes the clean clip (see "Clean
clips" below) and ``data.augmented_per_sample`` radio-channel variants under
``data/augmented/``, and records every clip in the catalogue. It then writes
``data/atc_dataset/metadata.csv`` and the aviation vocabulary file.

Splits and voices (see :mod:`atc_whisper.data.splits`): the reference text is the leakage
group; its split is fixed the first time it is catalogued (by its position in the generator's
sequence); test utterances are spoken by a held-out test voice with probability
``data.test_voice_share``, train/dev utterances never are.

Voices (:class:`VoicePlan`): the engine of an utterance is drawn by its share
(``data.engine_weights``, default :data:`~atc_whisper.config.TTS_ENGINE_SHARES`), then one of
its training voices uniformly, so no voice dominates; a share ``data.kokoro_blend_share`` of
the Kokoro utterances is spoken by a blend of two Kokoro training voices of the same gender.

Workers: the clips are made by ``data.workers`` processes (0 = one per core) while this
process plans (voice and prosody per utterance, drawn from generators seeded by the seed and
the utterance's position) and catalogues the results in generation order. Every random draw
is fixed by (seed, index), so the catalogue is the same whatever the number of workers (the
audio too, for the deterministic engines: all but Piper), radio effects included: the second
station's other transmission is drawn from the variant's own generator inside the worker.

Clean clips: every utterance is synthesised once; the clean clip is the source of its radio
variants and stays on disk so that more variants later come from the same speech, with the
voice and prosody its rows record. Only a share ``data.clean_share`` of the utterances (drawn
per utterance from the seed and its position; all of them without radio variants) catalogue
their clean clip as a training sample, in ``data/atc_dataset/synthetic/``: radio listeners never
hear studio speech. The others are kept in ``data/cache/clean/``, outside the dataset folder,
which then holds exactly the catalogued clips; a clip moves between the two when
``data.clean_share`` changes. Blocked transmissions (``Utterance.blocked``) get the channel's
blocking burst, and the channel's second-station effect mixes in another generated
transmission (eSpeak, cheap).

Static: ``data.static_fraction`` clips per utterance of a receiver's noise alone, training only,
taught as no speech (:mod:`atc_whisper.data.static`).

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

import collections
import csv
import dataclasses
import hashlib
import io
import itertools
import multiprocessing
import os
import re
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..config import Settings, engine_shares
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
        workers: synthesis processes used (1: made in this process).
        synthesis: per engine, ``clips`` synthesised by this run, the wall ``seconds`` and the
            ``cpu_seconds`` (engine subprocesses included) that took inside the workers: the cost
            per clip, whatever the number of workers.
        static_clips: static (no-speech) clips added by this run (``data.static_fraction``).
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
    workers: int = 1
    synthesis: dict[str, dict[str, float]] = field(default_factory=dict)
    static_clips: int = 0

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


def everyday_slots(n: int, seed: int, fraction: float) -> set[int]:
    """Generator slots (indices below ``n``) that hold an everyday sentence instead of ATC speech.

    Drawn per slot from (seed, index), so growing ``data.samples`` keeps earlier slots as they were.
    """
    if fraction <= 0.0:
        return set()
    return {i for i in range(n) if np.random.default_rng([seed, i, 7_777]).random() < fraction}


def catalogues_clean(seed: int, index: int, share: float) -> bool:
    """Whether the ``index``-th utterance catalogues its clean clip (``data.clean_share``).

    Drawn per utterance from (seed, index), so growing ``data.samples`` keeps earlier choices.
    """
    return share >= 1.0 or (share > 0.0 and np.random.default_rng([seed, index, 8_888]).random() < share)


#: Offset of the generator seed whose transmissions are the second stations of the channel.
INTERFERER_SEED_OFFSET = 7_919


def group_of(reference: str) -> str:
    """Leakage group of a synthetic utterance: its reference text."""
    return "text:" + hashlib.sha1(reference.encode("utf-8")).hexdigest()[:16]


#: A Kokoro blend gives its second voice a weight drawn from this range (steps of 0.05).
BLEND_WEIGHT = (0.2, 0.5)


class VoicePlan:
    """Chooses a voice per utterance: held-out test voices only ever for test utterances.

    The engine is drawn first, by its share (``data.engine_weights``, else the built-in
    :data:`~atc_whisper.config.TTS_ENGINE_SHARES`), then a training voice of that engine
    uniformly: an engine with one voice (Piper) cannot drown the others, nor one with hundreds
    (eSpeak) take every utterance. With ``blend_share``, a Kokoro utterance is spoken by a blend
    of two Kokoro training voices of the same gender (the held-out voices are never blended in).
    """

    def __init__(self, engines: list[str], test_voices: list[str], test_voice_share: float,
                 engine_weights: list[float] | None = None, blend_share: float = 0.0) -> None:
        from ..audio.tts import get_engine
        from ..errors import TTSError

        voices = []
        for engine in engines:
            try:
                voices.extend(get_engine(engine).voices())
            except TTSError as exc:
                raise TTSError(f"data.engines includes '{engine}', which is not usable: {exc} "
                               f"Or leave it out: --set \"data.engines={[e for e in engines if e != engine]}\".") from None
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
        shares = engine_shares(list(engines), list(engine_weights or []))
        usable = {e: shares[e] for e in engines if e in self.by_engine and shares[e] > 0}
        if not usable:
            raise DataError(f"every engine with training voices has weight 0 in data.engine_weights "
                            f"({', '.join(f'{e}={shares[e]:g}' for e in engines)}); give one a share.")
        total = sum(usable.values())
        self.engines = list(usable)
        self.shares = [usable[e] / total for e in self.engines]
        self.test_voice_share = test_voice_share
        self.blend_share = blend_share if len(self.by_engine.get("kokoro", [])) > 1 else 0.0

    def choose(self, split: str, rng: np.random.Generator) -> str:
        """A voice id for an utterance of ``split``."""
        if split == "test" and self.test_voices and rng.random() < self.test_voice_share:
            return str(self.test_voices[int(rng.integers(len(self.test_voices)))])
        engine = self.engines[min(int(np.searchsorted(np.cumsum(self.shares), rng.random(), side="right")),
                                  len(self.engines) - 1)]
        pool = self.by_engine[engine]
        voice = str(pool[int(rng.integers(len(pool)))])
        if engine == "kokoro" and self.blend_share > 0 and rng.random() < self.blend_share:
            voice = self._blend(voice, rng)
        return voice

    def _blend(self, first: str, rng: np.random.Generator) -> str:
        """``first`` blended with another Kokoro training voice of the same gender (2nd letter f/m)."""
        name = first.partition(":")[2]
        partners = [v for v in self.by_engine["kokoro"] if v != first and v.partition(":")[2][1:2] == name[1:2]]
        if not partners:
            return first
        second = partners[int(rng.integers(len(partners)))].partition(":")[2]
        steps = round((BLEND_WEIGHT[1] - BLEND_WEIGHT[0]) / 0.05)
        weight = round(BLEND_WEIGHT[0] + 0.05 * int(rng.integers(steps + 1)), 2)
        return f"kokoro:{name}@{1 - weight:g}+{second}@{weight:g}"

    def expected_shares(self) -> dict[str, float]:
        """Expected share of the training utterances per plain voice (blends counted as their first voice)."""
        return {v: share / len(self.by_engine[e]) for e, share in zip(self.engines, self.shares, strict=True)
                for v in self.by_engine[e]}


def _meaning(utterance: Any) -> dict[str, Any]:
    commands = [c.as_dict() for c in getattr(utterance, "commands", ()) or ()]
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
        settings: ``[data]`` (how many, seed, engines and their shares, voices, splits,
            duration limits, workers) and ``[channel]`` (radio effects).
        progress: show a progress bar.

    Returns:
        A :class:`PrepareReport` with what was added, skipped, the synthesis cost per engine
        and the catalogue's totals.

    Raises:
        DataError: no usable voice, or the catalogue cannot be opened.
        TTSError: an engine of ``data.engines`` is not installed (the message says how to install it).
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
    plan = VoicePlan(list(data.engines), list(data.test_voices), data.test_voice_share, list(data.engine_weights),
                     data.kokoro_blend_share)
    interferer_voices: list[str] = []
    if data.augmented_per_sample > 0 and "espeak" in data.engines:
        from ..audio.tts import list_voices

        # Second stations: cheap eSpeak voices, never a held-out test voice; listed once here so
        # that every worker draws from the same list.
        interferer_voices = [v.id for v in list_voices(["espeak"]) if v.id not in set(data.test_voices)]
    for folder in (workspace.synthetic_dir, workspace.augmented_dir, workspace.clean_cache_dir):
        folder.mkdir(parents=True, exist_ok=True)
        remove_partial_files(folder)

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
            jobs = []
            for index, utterance in enumerate(utterances):
                job = _plan_one(index, utterance, splits[index], workspace, settings, plan, catalogue, existing)
                if job is None:
                    _replace(catalogue, _stale_uids(existing, data.seed, index, sample_uid(data.seed, index, utterance.text)),
                             [], existing, report, index, workspace)
                    report.already_complete += 1
                else:
                    jobs.append(job)
            report.workers = worker_count(data.workers, len(jobs))
            bar = tqdm(total=len(utterances), initial=report.already_complete, desc="prepare", unit="utt",
                       disable=not progress)
            made_all = _make_all(jobs, settings, workspace, report.workers, interferer_voices)
            for job, made in zip(jobs, made_all, strict=True):
                _commit(job, made, utterances[job.index], groups[job.index], splits[job.index], settings, workspace,
                        catalogue, existing, report, run_id)
                bar.update(1)
                bar.set_postfix(added=report.added_samples, skipped=len(report.skipped), refresh=False)
            bar.close()
            from .static import add_static_clips

            report.static_clips, _ = add_static_clips(workspace, settings, catalogue, SOURCE)
            report.added_samples += report.static_clips
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
        "prepare: %d utterances added (%d samples), %d already complete, %d skipped, %d worker(s); "
        "catalogue: %d samples, %.2f h",
        report.added_utterances, report.added_samples, report.already_complete, len(report.skipped), report.workers,
        report.totals.get("samples", 0), report.totals.get("hours", 0.0),
    )
    return report


def cpu_seconds() -> float:
    """CPU time of this process and its finished subprocesses (the TTS programs), seconds.

    Wall time on a shared machine measures the neighbours too; CPU time is the cost.
    """
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


#: With ``data.workers = 0`` (automatic), runs of fewer utterances are made in this process:
#: starting a worker (Python, NumPy, each engine's model) costs seconds, more than they save.
MIN_JOBS_FOR_WORKERS = 16


def worker_count(workers: int, jobs: int) -> int:
    """Synthesis processes for ``jobs`` utterances: ``data.workers``, or for 0 one per usable core
    (1 below :data:`MIN_JOBS_FOR_WORKERS` jobs); never more than the jobs."""
    if workers <= 0:
        if jobs < MIN_JOBS_FOR_WORKERS:
            return 1
        try:
            workers = len(os.sched_getaffinity(0))
        except AttributeError:  # not on Linux
            workers = os.cpu_count() or 1
    return max(1, min(workers, jobs))


@dataclass(frozen=True)
class _Job:
    """The missing clips of one utterance, planned here and made by a worker.

    Attributes:
        clean_path: where the clean clip belongs: ``data/atc_dataset/synthetic/`` when it is
            (or is now to be) catalogued, else the clean-clip cache ``data/cache/clean/``.
        reuse_from: the clean clip already on disk (in either place, made with the voice and
            prosody its rows record): loaded instead of synthesised, and moved to
            ``clean_path`` if it lies elsewhere. None: synthesise it.
        write_clean: write the synthesised clean clip (false when its row exists already).
        catalogue_clean: the clean clip gets a row of its own (``data.clean_share``, not catalogued yet).
        blocked: the transmission was cut short (``Utterance.blocked``): its variants end in the
            channel's blocking burst.
        variants: (k, uid) of each radio variant to make.
    """

    index: int
    text: str
    voice: str
    tts_params: dict[str, Any]
    clean_uid: str
    clean_path: Path
    reuse_from: Path | None
    write_clean: bool
    catalogue_clean: bool
    blocked: bool
    variants: tuple[tuple[int, str], ...]


@dataclass
class _Clip:
    uid: str
    path: Path
    seconds: float
    sha256: str
    channel: dict[str, Any] | None = None  # None: the clean clip


@dataclass
class _Made:
    """What a worker made of a :class:`_Job`."""

    clips: list[_Clip] = field(default_factory=list)
    skips: list[tuple[str, str]] = field(default_factory=list)  # (uid, reason) of variants left out
    failed: str | None = None  # the whole utterance is skipped, for this reason
    synthesis_s: float | None = None  # None: the clean clip was reused
    synthesis_cpu_s: float = 0.0  # CPU time of that synthesis, engine subprocesses included


def _plan_one(index: int, utterance: Any, split: str, workspace: Workspace, settings: Settings, plan: VoicePlan,
              catalogue: Catalogue, existing: set[str]) -> _Job | None:
    """What is missing of one utterance, with its voice and prosody; None when it is complete."""
    from ..audio.tts import random_voice_params

    data = settings.data
    clean_uid = sample_uid(data.seed, index, utterance.text)
    aug_uids = [f"{clean_uid}-aug{k}" for k in range(data.augmented_per_sample)]
    keep_clean = data.augmented_per_sample == 0 or catalogues_clean(data.seed, index, data.clean_share)
    wanted = ([clean_uid] if keep_clean else []) + aug_uids
    if all(u in existing for u in wanted):
        return None
    # Every random draw of this utterance comes from generators seeded by (seed, index, stream),
    # so an utterance is the same whether it is made in the first run, after a resume or by any worker.
    rng = np.random.default_rng([data.seed, index, 0])
    voice = plan.choose(split, rng)
    tts_params = random_voice_params(voice, rng)
    # An utterance with rows keeps the voice and prosody they record (the enabled engines may
    # have changed since), and its clean clip is reused when it is on disk.
    known = next((row for u in [clean_uid, *aug_uids] if u in existing and (row := catalogue.sample(u))), None)
    if known is not None and known.voice:
        voice, tts_params = known.voice, dict(known.params.get("tts") or {})
    catalogue_clean = keep_clean and clean_uid not in existing
    catalogued, cached = _clean_paths(workspace, clean_uid)
    clean_path = catalogued if catalogue_clean or clean_uid in existing else cached
    on_disk = next((p for p in (clean_path, catalogued, cached) if p.exists()), None)
    reuse_from = on_disk if known is not None else None  # without rows, nothing says how it was made
    return _Job(index=index, text=utterance.text, voice=voice, tts_params=tts_params, clean_uid=clean_uid,
                clean_path=clean_path, reuse_from=reuse_from,
                write_clean=reuse_from is None and clean_uid not in existing, catalogue_clean=catalogue_clean,
                blocked=bool(getattr(utterance, "blocked", False)),
                variants=tuple((k, u) for k, u in enumerate(aug_uids) if u not in existing))


def _clean_paths(workspace: Workspace, clean_uid: str) -> tuple[Path, Path]:
    """The two places of a clean clip: catalogued (the dataset folder) and cached (uncatalogued)."""
    return workspace.synthetic_dir / f"{clean_uid}.wav", workspace.clean_cache_dir / f"{clean_uid}.wav"


class _Maker:
    """Makes the clips of planned utterances: TTS, duration check, radio variants, files, hashes."""

    def __init__(self, settings: Settings, workspace: Workspace, parent_pid: int | None = None,
                 interferer_voices: list[str] | None = None) -> None:
        self.settings = settings
        self.workspace = workspace
        self.parent_pid = parent_pid  # a worker's: it stops when that process is gone
        self.interferer_voices = list(interferer_voices or [])
        self.channel: Any = None
        if settings.data.augmented_per_sample > 0:
            from ..audio.channel import RadioChannel

            self.channel = RadioChannel(settings.channel, workspace.noise_dir)

    def make(self, job: _Job) -> _Made:
        from ..audio.io import duration_s, load_audio, write_wav
        from ..audio.tts import synthesize

        data = self.settings.data
        made = _Made()
        clean_path = job.clean_path
        try:
            if job.reuse_from is not None:
                clean = load_audio(job.reuse_from)
            else:
                t0, cpu0 = time.perf_counter(), cpu_seconds()
                clean = synthesize(job.text, job.voice, **job.tts_params)
                made.synthesis_s = time.perf_counter() - t0
                made.synthesis_cpu_s = cpu_seconds() - cpu0
        except AtcWhisperError as exc:
            made.failed = f"synthesis failed with {job.voice}: {exc}"
            return made
        duration = duration_s(clean)
        if duration < data.min_duration_s or duration > data.max_duration_s:
            made.failed = (f"clean clip is {duration:.2f} s, outside data.min_duration_s..max_duration_s "
                           f"({data.min_duration_s:g}..{data.max_duration_s:g} s)")
            return made
        if job.write_clean:
            self._check_parent()
            write_wav(clean_path, clean)  # also the cache the variants are made from
        elif job.reuse_from is not None and job.reuse_from != clean_path:
            self._check_parent()
            os.replace(job.reuse_from, clean_path)  # data.clean_share changed: catalogued now, or no longer
        if job.catalogue_clean:
            made.clips.append(_Clip(job.clean_uid, clean_path, duration, sha256_file(clean_path)))
        for k, uid in job.variants:
            radio, channel_params = self.channel.apply(clean, np.random.default_rng([data.seed, job.index, k + 1]),
                                                       blocked=job.blocked, interferer=self._interferer(job.voice))
            seconds = duration_s(radio)
            if seconds > data.max_duration_s:
                made.skips.append((uid, f"radio variant is {seconds:.1f} s > data.max_duration_s"))
                continue
            path = self.workspace.augmented_dir / f"{uid}.wav"
            self._check_parent()
            write_wav(path, radio)
            made.clips.append(_Clip(uid, path, seconds, sha256_file(path), channel_params))
        return made

    def _interferer(self, voice: str) -> Any:
        """The channel's second station: another generated transmission, spoken by an eSpeak voice.

        Made only when the channel draws the effect, from the variant's own random generator, so
        a variant is the same in any worker; the other transmission comes from a separate
        generator seed (:data:`INTERFERER_SEED_OFFSET`).
        """
        from ..audio.tts import random_voice_params, synthesize
        from ..phraseology.generator import generate_utterance

        data = self.settings.data
        voices = self.interferer_voices

        def make(rng: np.random.Generator) -> tuple[np.ndarray, dict[str, Any]]:
            other = generate_utterance(data.seed + INTERFERER_SEED_OFFSET, int(rng.integers(0, 1_000_000)),
                                       pilot_fraction=data.pilot_fraction, short_fraction=data.short_fraction,
                                       us_fraction=data.us_fraction)
            speaker = voices[int(rng.integers(len(voices)))] if voices else voice
            return synthesize(other.text, speaker, **random_voice_params(speaker, rng)), {"text": other.reference,
                                                                                          "voice": speaker}

        return make

    def _check_parent(self) -> None:
        """A worker whose prepare process was killed (``kill -9``) writes nothing more: the re-run
        makes those clips, and a late write could replace one it already catalogued."""
        if self.parent_pid is not None and os.getppid() != self.parent_pid:
            os._exit(1)


_WORKER: _Maker | None = None


def _init_worker(settings: Settings, workspace: Workspace, parent_pid: int, interferer_voices: list[str]) -> None:
    global _WORKER
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the main process's to handle
    _WORKER = _Maker(settings, workspace, parent_pid, interferer_voices)


def _make_in_worker(job: _Job) -> _Made:
    assert _WORKER is not None
    return _WORKER.make(job)


def _make_all(jobs: list[_Job], settings: Settings, workspace: Workspace, workers: int,
              interferer_voices: list[str] | None = None) -> Iterator[_Made]:
    """The made clips of ``jobs``, in their order, from ``workers`` processes (1: this one)."""
    voices = list(interferer_voices or [])
    if workers <= 1 or len(jobs) <= 1:
        maker = _Maker(settings, workspace, interferer_voices=voices)
        for job in jobs:
            yield maker.make(job)
        return
    # spawn: workers start clean (no inherited ONNX thread pools), the same on every platform.
    context = multiprocessing.get_context("spawn")
    with context.Pool(workers, initializer=_init_worker, initargs=(settings, workspace, os.getpid(), voices)) as pool:
        # At most two jobs per worker are queued, so an interrupted run leaves little half-done
        # work behind; results come back in generation order.
        queue = iter(jobs)
        pending = collections.deque(pool.apply_async(_make_in_worker, (first,)) for first in itertools.islice(queue, 2 * workers))
        while pending:
            made = pending.popleft().get()
            following = next(queue, None)
            if following is not None:
                pending.append(pool.apply_async(_make_in_worker, (following,)))
            yield made


def _commit(job: _Job, made: _Made, utterance: Any, group: str, split: str, settings: Settings, workspace: Workspace,
            catalogue: Catalogue, existing: set[str], report: PrepareReport, run_id: int) -> None:
    """Catalogue what a worker made of one utterance, in one transaction (in generation order)."""
    from ..audio.tts import split_voice_id

    data = settings.data
    engine = split_voice_id(job.voice)[0]
    if made.synthesis_s is not None:
        cost = report.synthesis.setdefault(engine, {"clips": 0, "seconds": 0.0, "cpu_seconds": 0.0})
        cost["clips"] += 1
        cost["seconds"] += made.synthesis_s
        cost["cpu_seconds"] += made.synthesis_cpu_s
    if made.failed is not None:
        _skip(catalogue, report, job.clean_uid, made.failed, run_id)
        return
    base = dict(
        text_raw=utterance.text, text_norm=utterance.reference, split=split, source=SOURCE, engine=engine,
        voice=job.voice, role=getattr(utterance, "role", None), phase=getattr(utterance, "phase", None),
        meaning=_meaning(utterance), group_id=group,
    )
    clean_params = {"tts": job.tts_params, "utterance_uid": getattr(utterance, "uid", None), "index": job.index}
    rows: list[Sample] = []
    hashes: set[str] = set()
    for clip in made.clips:
        twin = catalogue.uid_for_sha256(clip.sha256)
        if twin is not None or clip.sha256 in hashes:
            _skip(catalogue, report, clip.uid, f"duplicate audio: same content as {twin or 'another variant'}", run_id)
            if clip.channel is not None:
                clip.path.unlink(missing_ok=True)
            continue
        hashes.add(clip.sha256)
        if clip.channel is None:
            rows.append(Sample(uid=clip.uid, audio_path=clip.path, sha256=clip.sha256, duration_s=round(clip.seconds, 4),
                               **base, params=clean_params))
        else:
            snr = clip.channel.get("snr_db")
            rows.append(Sample(uid=clip.uid, audio_path=clip.path, sha256=clip.sha256, duration_s=round(clip.seconds, 4),
                               **base, augmented=True, parent_uid=job.clean_uid,
                               snr_db=None if snr is None else float(snr),
                               params={**clean_params, "channel": clip.channel}))
    for uid, reason in made.skips:
        _skip(catalogue, report, uid, reason, run_id)
    _replace(catalogue, _stale_uids(existing, data.seed, job.index, job.clean_uid), rows, existing, report, job.index,
             workspace)


def _replace(catalogue: Catalogue, stale: list[str], rows: list[Sample], existing: set[str], report: PrepareReport,
             index: int, workspace: Workspace) -> None:
    """Insert an utterance's rows and drop its stale predecessors in one transaction, then their files
    (the cached clean clips of the superseded words too)."""
    if not stale and not rows:
        return
    stale_files = [s.audio_path for u in stale if (s := catalogue.sample(u)) is not None]
    stale_files += [p for uid in sorted({u.partition("-aug")[0] for u in stale}) for p in _clean_paths(workspace, uid)]
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
        # one line per utterance would flood the console after a generator change: the count is in the summary
        log.debug("replaced %d sample(s) of utterance %d made by an older generator version", len(stale), index)
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
    # Utterances (a clean clip and its radio variants count once) per synthetic voice.
    by_voice = {str(v): int(k) for v, k in conn.execute(
        "SELECT voice, COUNT(DISTINCT COALESCE(parent_uid, uid)) FROM samples WHERE source = ? AND voice IS NOT NULL "
        "GROUP BY voice ORDER BY 2 DESC, 1", (SOURCE,))}
    return {
        "samples": int(n), "hours": float(seconds) / 3600.0,
        "by_split": {s: by_split.get(s, 0) for s in SPLITS}, "by_role": by("role"), "by_engine": by("engine"),
        "by_source": by("source"), "augmented": int(conn.execute("SELECT COUNT(*) FROM samples WHERE augmented").fetchone()[0]),
        "by_voice": by_voice,
    }


def voice_summary(by_voice: dict[str, int]) -> list[dict[str, Any]]:
    """Per engine: utterances, distinct voices, blends, and the most used voice with its share of all utterances."""
    total = sum(by_voice.values()) or 1
    engines: dict[str, dict[str, Any]] = {}
    for voice, n in by_voice.items():
        engine = voice.partition(":")[0]
        row = engines.setdefault(engine, {"engine": engine, "utterances": 0, "voices": 0, "blends": 0,
                                          "top_voice": voice, "top_share": n / total})
        row["utterances"] += n
        row["voices"] += 1
        row["blends"] += int("+" in voice and engine == "kokoro")
        if n / total > row["top_share"]:
            row["top_voice"], row["top_share"] = voice, n / total
    return sorted(engines.values(), key=lambda r: -r["utterances"])


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
