"""Run models over a catalogue selection and score them in ATC terms.

Why this module exists: a user must see what fine-tuning bought them. :func:`run_evaluation`
runs the base and the fine-tuned model through the same transcription engine with the same
(bounded) decoding settings on the same samples, scores every transcript (WER, CER, callsign,
commands, confidence), aggregates per model and per group (split, source, speaker role, TTS
voice, SNR bucket), draws the accuracy-vs-coverage curve of each model's confidence, measures
callsign biasing with and without a callsign list - one list for every sample, or each
sample's own recording's callsigns nearby (``context = "recording"``, the ATCO2 ``.info`` files
stored at import), the way ATCO2 measures callsign boosting - and hands everything to
:mod:`.report` and :mod:`.plots` for the files.

Inputs are checked before any model is loaded: an empty selection or a missing fine-tuned
model fails at once with a message saying what to run.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..config import Settings
from ..errors import DataError, ModelError
from ..log import get_logger
from ..transcribe.annotate import callsigns_file as find_callsigns_file
from ..transcribe.annotate import load_callsign_list
from ..workspace import Workspace
from . import metrics

log = get_logger(__name__)

BASE, FINE_TUNED = "base", "fine_tuned"
GROUP_KEYS = ("split", "source", "role", "voice", "snr")
CLEAN = "clean"
#: Clips handed to the engine at once: the Hugging Face engine decodes them as one batch,
#: CTranslate2 one by one; either way the progress bar moves per batch.
BATCH_SIZE = 8


# -- inputs ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Selection:
    """Which catalogue samples to evaluate.

    Attributes:
        split: "train", "dev", "test" or "all".
        source: Only samples of this source (e.g. "synthetic" or an imported corpus name).
        max_samples: At most this many, spread evenly over the selection; 0 keeps all.
    """

    split: str = "test"
    source: str | None = None
    max_samples: int = 0

    def describe(self) -> str:
        """Human-readable form for messages, e.g. "split 'test', source 'atcosim'"."""
        text = f"split '{self.split}'"
        if self.source:
            text += f", source '{self.source}'"
        return text


def select_samples(workspace: Workspace, selection: Selection) -> list[Any]:
    """The catalogue samples of ``selection``, ordered by id.

    Raises:
        DataError: there is no catalogue, or nothing matches (the message says what to run).
    """
    if not workspace.db_path.exists():
        raise DataError(
            f"no dataset catalogue at {workspace.db_path}; run `atc-whisper prepare` (synthetic data) "
            "or `atc-whisper import` first."
        )
    from ..data.catalogue import Catalogue

    with Catalogue(workspace.db_path) as catalogue:
        everything = catalogue.samples()
        samples = catalogue.samples(selection.split, source=selection.source or None)
    if selection.source and not samples:
        sources = sorted({s.source for s in everything})
        if not any(s.source == selection.source or s.source.startswith(selection.source) for s in everything):
            raise DataError(
                f"no samples of source '{selection.source}' in {workspace.db_path}; "
                f"sources in the catalogue: {', '.join(sources) or 'none'}."
            )
    if not samples:
        counts = {split: sum(1 for s in everything if s.split == split) for split in ("train", "dev", "test")}
        raise DataError(
            f"nothing to evaluate: {selection.describe()} is empty in {workspace.db_path} "
            f"(train {counts['train']}, dev {counts['dev']}, test {counts['test']} samples). "
            "Run `atc-whisper prepare` with more samples (--set data.samples=N) or choose another --split."
        )
    if selection.max_samples and len(samples) > selection.max_samples:
        # Evenly spaced rather than the first N, so every voice and source stays represented.
        step = len(samples) / selection.max_samples
        samples = [samples[int(k * step)] for k in range(selection.max_samples)]
    return samples


def check_model(workspace: Workspace, model: str | Path, *, fine_tuned_default: bool = False) -> str | Path:
    """Check that ``model`` can be found, without loading it; return what to pass to the engine.

    Args:
        workspace: The workspace (its fine-tuned model folder is the default).
        model: A model folder, Hugging Face id or alias.
        fine_tuned_default: ``model`` is the workspace's fine-tuned folder, not a user's choice.

    Raises:
        ModelError: the fine-tuned model folder is missing (the message says to train or to
            pass --model), or ``model`` is a missing folder or not a Whisper model
            (:func:`~atc_whisper.models.resolve.locate_model`).
    """
    from ..models.resolve import is_ct2_whisper_dir, is_hf_whisper_dir, locate_model

    folder = Path(model).expanduser()
    if fine_tuned_default and not (is_hf_whisper_dir(folder) or is_ct2_whisper_dir(folder)):
        raise ModelError(
            f"no fine-tuned model in {model}; run `atc-whisper train` first, or pass --model "
            "with a model folder or Hugging Face id to evaluate."
        )
    return locate_model(model)


def recording_callsigns(workspace: Workspace, samples: Sequence[Any], *,
                        extra: Sequence[str] | None = None) -> list[list[str] | None]:
    """Each sample's own recording's callsigns nearby (then ``extra``), None where it has no context.

    Raises:
        DataError: no selected sample has a recording context (the message says how to get one).
    """
    from ..data.catalogue import Catalogue

    with Catalogue(workspace.db_path) as catalogue:
        by_group = catalogue.recordings_by_group()
    lists: list[list[str] | None] = []
    with_context = 0
    for sample in samples:
        recording = by_group.get(str(getattr(sample, "group_id", "") or ""))
        with_context += recording is not None
        names = recording.known_callsigns() if recording is not None else []
        lists.append(list(dict.fromkeys([*names, *(extra or ())])) or None)
    if not with_context:
        sources = sorted({str(s.source) for s in samples})
        raise DataError(
            f"--context recording: none of the {len(samples)} selected samples ({', '.join(sources)}) has a recording "
            f"context in {workspace.db_path}; import a corpus with per-recording .info files "
            "(atc-whisper import atco2 DATA_FOLDER) or evaluate without --context."
        )
    return lists


def json_safe(value: Any) -> Any:
    """``value`` with NaN/inf floats turned into None and paths into strings (strict JSON)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        return json_safe(value.item())
    return value


# -- scoring ---------------------------------------------------------------------------------


def snr_bucket(snr_db: float | None, edges_db: Sequence[float]) -> str:
    """Label of the SNR bucket of a sample: "clean" (no noise added), "<0 dB", "0-10 dB", ">=30 dB"."""
    if snr_db is None or (isinstance(snr_db, float) and math.isnan(snr_db)):
        return CLEAN
    if not edges_db:
        return "all"
    if snr_db < edges_db[0]:
        return f"<{edges_db[0]:g} dB"
    for low, high in itertools.pairwise(edges_db):
        if low <= snr_db < high:
            return f"{low:g}-{high:g} dB"
    return f">={edges_db[-1]:g} dB"


def snr_bucket_order(edges_db: Sequence[float]) -> list[str]:
    """Every bucket label in increasing SNR order, "clean" last."""
    if not edges_db:
        return ["all", CLEAN]
    labels = [f"<{edges_db[0]:g} dB"]
    labels += [f"{low:g}-{high:g} dB" for low, high in itertools.pairwise(edges_db)]
    return [*labels, f">={edges_db[-1]:g} dB", CLEAN]


@dataclass
class SampleScore:
    """One model's transcript of one sample, scored.

    Attributes:
        hypothesis: The transcript.
        alignment: Word alignment against the reference (ATC-normalised).
        raw_alignment: Word alignment with case and punctuation normalisation only.
        char_errors: Character edits (normalised text).
        n_chars: Reference characters (normalised text).
        atc: Callsign and command correctness.
        avg_logprob: Confidence: mean token log-probability.
        no_speech_prob: Confidence: probability of no speech.
        compression_ratio: Confidence: zlib ratio (high means looping).
        low_confidence: The engine's flag.
        latency_s: Decoding seconds.
        hypothesis_biased: Transcript with callsign biasing (prompt + snap), when measured.
        atc_biased: Callsign/command correctness of ``hypothesis_biased``.
        alignment_biased: Word alignment of ``hypothesis_biased``.
        role: The sample's speaker role ("controller", "pilot") or None when the corpus has none.
        role_hyp: Speaker role read from the hypothesis (`phraseology.classify_role`), or "unknown".
    """

    hypothesis: str
    alignment: metrics.Alignment
    raw_alignment: metrics.Alignment
    char_errors: int
    n_chars: int
    atc: metrics.AtcScore
    avg_logprob: float
    no_speech_prob: float
    compression_ratio: float
    low_confidence: bool
    latency_s: float
    hypothesis_biased: str | None = None
    atc_biased: metrics.AtcScore | None = None
    alignment_biased: metrics.Alignment | None = None
    role: str | None = None
    role_hyp: str = "unknown"

    @property
    def wer(self) -> float:
        """This utterance's WER (normalised)."""
        return self.alignment.error_rate

    @property
    def confidence(self) -> float:
        """The scalar used to rank utterances for the coverage curve (average log-probability)."""
        return self.avg_logprob if math.isfinite(self.avg_logprob) else -math.inf


class _Scorer:
    """Scores hypotheses against one sample's reference, parsing the reference once.

    Args:
        reference: The reference transcript.
        role: The sample's speaker role ("controller"/"pilot"), when known, for role accuracy.
        tagged_callsign: The callsign a corpus annotates (ATCO2 ``[#callsign]``), used when the
            parser cannot read one in the reference (an airline it does not know): the
            hypothesis then has the callsign right when the tagged words appear in it.
    """

    def __init__(self, reference: str, role: str | None = None, tagged_callsign: str | None = None) -> None:
        from ..phraseology import classify_role, normalize_atc, parse_atc, raw_normalize

        self.classify_role = classify_role
        self.role = role if role in ("controller", "pilot") else None

        self.normalize_atc = normalize_atc
        self.raw_normalize = raw_normalize
        self.parse_atc = parse_atc
        self.ref_norm = normalize_atc(reference)
        self.ref_words = self.ref_norm.split()
        self.ref_raw_words = raw_normalize(reference).split()
        self.ref_parsed = parse_atc(self.ref_norm)
        tagged = normalize_atc(tagged_callsign) if tagged_callsign and not self.ref_parsed.callsign else ""
        self.tagged_callsign = tagged or None

    def words(self, hyp: str) -> tuple[str, metrics.Alignment]:
        hyp_norm = self.normalize_atc(hyp)
        return hyp_norm, metrics.align(self.ref_words, hyp_norm.split())

    def atc(self, hyp_norm: str, hyp_parsed: Any = None) -> metrics.AtcScore:
        parsed = hyp_parsed if hyp_parsed is not None else self.parse_atc(hyp_norm)
        score = metrics.score_atc_pair(self.ref_norm, hyp_norm, ref_parsed=self.ref_parsed, hyp_parsed=parsed)
        if self.tagged_callsign is None:
            return score
        found = f" {self.tagged_callsign} " in f" {hyp_norm} "
        return dataclasses.replace(score, ref_callsign=self.tagged_callsign, callsign_correct=found,
                                   hyp_callsign=self.tagged_callsign if found else score.hyp_callsign)

    def score(self, transcription: Any) -> SampleScore:
        hyp = transcription.text
        hyp_norm, alignment = self.words(hyp)
        ref_chars, hyp_chars = " ".join(self.ref_words), " ".join(hyp_norm.split())
        return SampleScore(
            hypothesis=hyp,
            alignment=alignment,
            raw_alignment=metrics.align(self.ref_raw_words, self.raw_normalize(hyp).split()),
            char_errors=metrics.edit_distance(ref_chars, hyp_chars),
            n_chars=len(ref_chars),
            atc=self.atc(hyp_norm),
            avg_logprob=float(transcription.avg_logprob),
            no_speech_prob=float(transcription.no_speech_prob),
            compression_ratio=float(transcription.compression_ratio),
            low_confidence=bool(transcription.low_confidence),
            latency_s=float(transcription.latency_s),
            role=self.role,
            role_hyp=self.classify_role(hyp).role if self.role else "unknown",
        )


def aggregate(scores: Sequence[SampleScore]) -> dict[str, Any]:
    """Corpus text, ATC and confidence figures of a set of scored transcripts."""
    result = metrics.summarize_alignments([s.alignment for s in scores])
    result["raw_wer"] = metrics.summarize_alignments([s.raw_alignment for s in scores])["wer"]
    result["cer"] = sum(s.char_errors for s in scores) / max(sum(s.n_chars for s in scores), 1)
    result.update(metrics.summarize_atc([s.atc for s in scores]))
    n = len(scores)
    logprobs = [s.avg_logprob for s in scores if math.isfinite(s.avg_logprob)]
    result["confidence"] = {
        "mean_avg_logprob": sum(logprobs) / len(logprobs) if logprobs else math.nan,
        "mean_no_speech_prob": sum(s.no_speech_prob for s in scores) / n if n else math.nan,
        "mean_compression_ratio": sum(s.compression_ratio for s in scores) / n if n else math.nan,
        "low_confidence_share": sum(1 for s in scores if s.low_confidence) / n if n else math.nan,
    }
    result.update(role_figures([(s.role, s.role_hyp) for s in scores]))
    return result


def role_figures(pairs: Sequence[tuple[str | None, str]]) -> dict[str, Any]:
    """Speaker-role accuracy over ``(true role, guessed role)`` pairs with a true role.

    Returns:
        ``n_role`` (pairs with a known role), ``role_acc`` (guess right; "unknown" counts as
        wrong) and ``role_coverage`` (share guessed, not "unknown"); NaN without known roles.
    """
    known = [(truth, guess) for truth, guess in pairs if truth in ("controller", "pilot")]
    n = len(known)
    return {
        "n_role": n,
        "role_acc": sum(truth == guess for truth, guess in known) / n if n else math.nan,
        "role_coverage": sum(guess != "unknown" for _, guess in known) / n if n else math.nan,
    }


def _group_values(sample: Any, edges_db: Sequence[float]) -> dict[str, str]:
    return {
        "split": str(sample.split),
        "source": str(sample.source or "unknown"),
        "role": str(getattr(sample, "role", None) or "unknown"),
        "voice": str(getattr(sample, "voice", None) or "unknown"),
        "snr": snr_bucket(getattr(sample, "snr_db", None), edges_db),
    }


# -- results ---------------------------------------------------------------------------------


@dataclass
class ModelRun:
    """One model's pass over the selection.

    Attributes:
        label: "base" or "fine_tuned".
        model: What was evaluated (Hugging Face id or folder).
        scores: One :class:`SampleScore` per sample, in sample order.
        load_s: Seconds to load the engine.
        decode_s: Wall-clock seconds decoding (unbiased pass only).
        audio_s: Seconds of audio decoded.
        engine: The engine that ran ("ct2" or "hf").
    """

    label: str
    model: str
    scores: list[SampleScore]
    load_s: float
    decode_s: float
    audio_s: float
    engine: str = ""

    @property
    def rtf(self) -> float:
        """Real-time factor: decoding seconds per second of audio (below 1 is faster than real time)."""
        return self.decode_s / self.audio_s if self.audio_s else math.nan


@dataclass
class EvaluationResult:
    """Everything an evaluation measured, and where it was written.

    Attributes:
        summary: Per model label: n, wer, raw_wer, cer, ser, median_utt_wer, callsign_acc, callsign_misses,
            command_acc (and callsign_acc_biased / wer_biased with a callsign list).
        report: The full report (what ``evaluation_report.json`` holds).
        samples: The evaluated catalogue samples.
        runs: Per model label, its :class:`ModelRun`.
        report_path: ``evaluation_report.json`` (None until written).
        results_path: ``evaluation_results.csv`` (None until written).
        plot_paths: PNG plots written.
        tensorboard_dir: TensorBoard folder written.
        run_id: The catalogue's evaluate run id.
    """

    summary: dict[str, dict[str, Any]]
    report: dict[str, Any]
    samples: list[Any]
    runs: dict[str, ModelRun]
    report_path: Path | None = None
    results_path: Path | None = None
    plot_paths: list[Path] = field(default_factory=list)
    tensorboard_dir: Path | None = None
    run_id: int | None = None

    @property
    def paths(self) -> dict[str, Any]:
        """The files written, by kind."""
        return {
            "report": self.report_path,
            "results": self.results_path,
            "plots": list(self.plot_paths),
            "tensorboard": self.tensorboard_dir,
        }


# -- running models ---------------------------------------------------------------------------


def _run_model(
    label: str,
    model: str | Path,
    samples: Sequence[Any],
    scorers: Sequence[_Scorer],
    settings: Settings,
    workspace: Workspace,
    *,
    engine: str | None,
    known: Sequence[Sequence[str] | None] | None,
    progress: bool,
) -> ModelRun:
    """One model over the samples; with ``known`` (callsigns per sample, None where a sample has
    none) also a biased pass: prompt + snapping with that sample's list."""
    from tqdm.auto import tqdm

    from ..audio.io import load_audio
    from ..transcribe.annotate import Annotation, annotate, callsign_prompt
    from ..transcribe.engines import load_engine

    started = time.perf_counter()
    eng = load_engine(model, settings, workspace, engine=engine)
    load_s = time.perf_counter() - started
    cap = settings.evaluate.prompt_callsigns
    scores: list[SampleScore] = []
    decode_s = 0.0
    bar = tqdm(total=len(samples), desc=f"evaluate {label}", unit="clip", disable=not progress, leave=False)
    try:
        for first in range(0, len(samples), BATCH_SIZE):
            # Audio is read batch by batch: thousands of clips need not sit in memory at once.
            batch = [load_audio(s.audio_path) for s in samples[first: first + BATCH_SIZE]]
            t0 = time.perf_counter()
            transcriptions = eng.transcribe_batch(batch)
            decode_s += time.perf_counter() - t0
            lists = list(known[first: first + len(batch)]) if known is not None else [None] * len(batch)
            biased: list[Any] = [None] * len(batch)
            if known is not None:
                # Clips that share a callsign list (one recording's segments) share a prompt and a batch.
                by_prompt: dict[tuple[str, ...], list[int]] = {}
                for k, names in enumerate(lists):
                    by_prompt.setdefault(tuple(names or ()), []).append(k)
                for names, members in by_prompt.items():
                    if not names:  # no list for these clips: the biased transcript is the plain one
                        for k in members:
                            biased[k] = transcriptions[k]
                        continue
                    # The same prompt `transcribe --callsigns` uses, capped: it shares the decoder's 448 positions.
                    prompt = callsign_prompt(list(names)[:cap])
                    for k, one in zip(members, eng.transcribe_batch([batch[k] for k in members], prompt=prompt),
                                      strict=True):
                        biased[k] = one
            for k, (transcription, biased_one) in enumerate(zip(transcriptions, biased, strict=True)):
                scorer = scorers[first + k]
                score = scorer.score(transcription)
                if biased_one is not None:
                    # The one parse-and-snap step of `transcribe --callsigns`: what a user would get.
                    names = list(lists[k] or ())
                    facts = annotate(biased_one.text, names) if names else Annotation(biased_one.text)
                    hyp_norm, alignment = scorer.words(facts.text)
                    score.hypothesis_biased = facts.text
                    score.alignment_biased = alignment
                    score.atc_biased = scorer.atc(hyp_norm, facts.parsed)
                scores.append(score)
            bar.update(len(batch))
    finally:
        bar.close()
    audio_s = sum(float(s.duration_s) for s in samples)
    return ModelRun(label, str(model), scores, load_s, decode_s, audio_s, engine=eng.name)


def evaluate_models(
    workspace: Workspace,
    settings: Settings,
    *,
    models: Sequence[tuple[str, str | Path]],
    samples: Sequence[Any],
    callsigns: Sequence[str] | None = None,
    sample_callsigns: Sequence[Sequence[str] | None] | None = None,
    engine: str | None = None,
    progress: bool = True,
) -> EvaluationResult:
    """Run each model on the same samples with the same decoding settings and score them.

    Nothing is written; :func:`run_evaluation` adds the files.

    Args:
        workspace: The workspace (model caches).
        settings: Decoding and evaluation settings (``[decode]``, ``[evaluate]``).
        models: ``(label, model)`` pairs, e.g. ``[("base", "openai/whisper-tiny.en"),
            ("fine_tuned", workspace.model_dir)]``.
        samples: Catalogue samples (see :func:`select_samples`).
        callsigns: Known callsigns; when given, each model is also run with callsign biasing
            (decoder prompt + snapping) and callsign accuracy is reported both ways.
        sample_callsigns: Known callsigns per sample instead (e.g. each sample's recording's
            callsigns nearby; None for a sample without a list, which is then not biased).
        engine: "ct2", "hf" or None for ``decode.engine``.
        progress: Show a progress bar per model.

    Returns:
        An :class:`EvaluationResult` with summary and report (paths unset).
    """
    if not samples:
        raise DataError("nothing to evaluate: the sample list is empty.")
    if sample_callsigns is not None and len(sample_callsigns) != len(samples):
        # a programming error: run_evaluation builds one list per sample
        raise ValueError("sample_callsigns needs one entry per sample")
    started = time.perf_counter()
    scorers = [_Scorer(s.text_norm, role=getattr(s, "role", None),
                       tagged_callsign=(getattr(s, "meaning", None) or {}).get("callsign")) for s in samples]
    known: list[Sequence[str] | None] | None = None
    if sample_callsigns is not None:
        known = list(sample_callsigns)
    elif callsigns:
        known = [list(callsigns)] * len(samples)
    runs: dict[str, ModelRun] = {}
    for label, model in models:
        log.info("evaluating %s (%s) on %d samples", label, model, len(samples))
        runs[label] = _run_model(
            label, model, samples, scorers, settings, workspace,
            engine=engine, known=known, progress=progress,
        )
    report = build_report(runs, samples, settings, callsigns=callsigns, sample_callsigns=sample_callsigns,
                          scorers=scorers)
    report["timings"]["total_s"] = time.perf_counter() - started
    # Strict-JSON values (NaN -> None), so the summary can go into any JSON file as it is.
    report["summary"] = json_safe(report["summary"])
    return EvaluationResult(summary=report["summary"], report=report, samples=list(samples), runs=runs)


# -- the report's content --------------------------------------------------------------------


def _model_summary(agg: dict[str, Any], run: ModelRun, biased: dict[str, Any] | None) -> dict[str, Any]:
    summary = {
        "model": run.model,
        "n": agg["n_utterances"],
        "wer": agg["wer"],
        "raw_wer": agg["raw_wer"],
        "cer": agg["cer"],
        "ser": agg["ser"],
        "hits": agg["hits"],
        "n_ref_words": agg["n_ref_words"],
        "insertion_rate": agg["insertion_rate"],
        "median_utt_wer": agg["median_utt_wer"],
        "callsign_acc": agg["callsign_acc"],
        "callsign_misses": agg["callsign_misses"],
        "command_acc": agg["command_acc"],
        "utterance_command_acc": agg["utterance_command_acc"],
        "role_acc": agg["role_acc"],
        "mean_avg_logprob": agg["confidence"]["mean_avg_logprob"],
        "low_confidence_share": agg["confidence"]["low_confidence_share"],
        "decode_s": run.decode_s,
        "rtf": run.rtf,
    }
    if biased is not None:
        summary["callsign_acc_biased"] = biased["callsign_acc"]
        summary["command_acc_biased"] = biased["command_acc"]
        summary["wer_biased"] = biased["wer"]
    return summary


def _biased_aggregate(scores: Sequence[SampleScore]) -> dict[str, Any] | None:
    if not scores or scores[0].atc_biased is None:
        return None
    words = metrics.summarize_alignments([s.alignment_biased for s in scores if s.alignment_biased is not None])
    atc = metrics.summarize_atc([s.atc_biased for s in scores if s.atc_biased is not None])
    return {"wer": words["wer"], "median_utt_wer": words["median_utt_wer"], **atc}


def context_stats(sample_callsigns: Sequence[Sequence[str] | None], scorers: Sequence[_Scorer]) -> dict[str, Any]:
    """How much the per-sample callsign lists can help: how many samples have one, how long the
    lists are, and how often the reference callsign is in its sample's list (the ceiling of
    what biasing can reach; ATCO2 reports the same coverage)."""
    with_list = [names for names in sample_callsigns if names]
    covered = [(scorer.tagged_callsign or scorer.ref_parsed.callsign) in names
               for names, scorer in zip(sample_callsigns, scorers, strict=True)
               if names and (scorer.tagged_callsign or scorer.ref_parsed.callsign)]
    return {
        "n_samples": len(sample_callsigns),
        "samples_with_list": len(with_list),
        "mean_list_size": sum(len(n) for n in with_list) / len(with_list) if with_list else 0.0,
        "samples_with_callsign_and_list": len(covered),
        "reference_callsign_in_list": sum(covered) / len(covered) if covered else math.nan,
    }


_GROUP_FIGURES = ("n_utterances", "wer", "raw_wer", "cer", "ser", "median_utt_wer", "insertion_rate",
                  "callsign_acc", "command_acc", "utterance_command_acc", "role_acc")


def build_report(
    runs: dict[str, ModelRun], samples: Sequence[Any], settings: Settings, *, callsigns: Sequence[str] | None = None,
    sample_callsigns: Sequence[Sequence[str] | None] | None = None, scorers: Sequence[_Scorer] | None = None,
) -> dict[str, Any]:
    """The report dict: summary, per-model scores, groups, coverage, thresholds, timings, config."""
    edges = settings.evaluate.snr_buckets_db
    groups_of = [_group_values(s, edges) for s in samples]
    models: dict[str, Any] = {}
    summary: dict[str, Any] = {}
    for label, run in runs.items():
        agg = aggregate(run.scores)
        biased = _biased_aggregate(run.scores)
        if biased is not None and sample_callsigns is not None:
            # ATCO2-style figure: only the samples that had a list, with and without it.
            subset = [sc for sc, names in zip(run.scores, sample_callsigns, strict=True) if names]
            sub_biased = _biased_aggregate(subset)
            biased["samples_with_list"] = {
                "n": len(subset),
                "callsign_acc": metrics.summarize_atc([sc.atc for sc in subset])["callsign_acc"] if subset else math.nan,
                "callsign_acc_biased": sub_biased["callsign_acc"] if sub_biased else math.nan,
                "wer": metrics.summarize_alignments([sc.alignment for sc in subset])["wer"] if subset else math.nan,
                "wer_biased": sub_biased["wer"] if sub_biased else math.nan,
            }
        groups: dict[str, dict[str, Any]] = {}
        for key in GROUP_KEYS:
            values = sorted({g[key] for g in groups_of})
            if key == "snr":
                order = snr_bucket_order(edges)
                values = [v for v in order if v in values]
            table = {}
            for value in values:
                members = [sc for sc, g in zip(run.scores, groups_of, strict=True) if g[key] == value]
                group = aggregate(members)
                table[value] = {k: group[k] for k in _GROUP_FIGURES}
                group_biased = _biased_aggregate(members)
                if group_biased is not None:
                    table[value]["callsign_acc_biased"] = group_biased["callsign_acc"]
                    table[value]["wer_biased"] = group_biased["wer"]
            groups[key] = table
        conf = [s.confidence for s in run.scores]
        errs = [s.alignment.errors for s in run.scores]
        nref = [s.alignment.n_ref for s in run.scores]
        call = [s.atc.callsign_correct for s in run.scores]
        thresholds = sorted({*settings.evaluate.confidence_thresholds, settings.decode.confidence_threshold},
                            reverse=True)
        models[label] = {
            "model": run.model,
            "engine": run.engine,
            "scores": {k: v for k, v in agg.items() if k != "confidence"},
            "confidence": agg["confidence"],
            "groups": groups,
            "coverage": metrics.coverage_curve(conf, errs, nref, call, settings.evaluate.coverage_shares),
            "thresholds": [metrics.threshold_split(conf, errs, nref, call, t) for t in thresholds],
            "configured_threshold": metrics.threshold_split(conf, errs, nref, call, settings.decode.confidence_threshold),
            "biasing": biased,
            "timings": {
                "load_s": run.load_s,
                "decode_s": run.decode_s,
                "audio_s": run.audio_s,
                "rtf": run.rtf,
                "decode_s_per_clip": run.decode_s / len(run.scores) if run.scores else math.nan,
            },
        }
        summary[label] = _model_summary(agg, run, biased)
        if len(groups["source"]) > 1:  # real and synthetic side by side: the figures per source
            summary[label]["by_source"] = {
                source: {k: figures[k] for k in ("n_utterances", "wer", "callsign_acc", "command_acc",
                                                 "callsign_acc_biased") if k in figures}
                for source, figures in groups["source"].items()
            }
    comparison: dict[str, Any] = {}
    if BASE in summary and FINE_TUNED in summary:
        for key in ("wer", "raw_wer", "cer", "median_utt_wer", "callsign_acc", "command_acc"):
            comparison[f"{key}_change"] = summary[FINE_TUNED][key] - summary[BASE][key]
    return {
        "schema_version": 1,
        "summary": summary,
        "roles": _reference_roles(samples),
        "comparison": comparison,
        "models": models,
        "selection": {
            "n_samples": len(samples),
            "splits": sorted({str(s.split) for s in samples}),
            "sources": sorted({str(s.source) for s in samples}),
            "audio_s": sum(float(s.duration_s) for s in samples),
        },
        "callsigns": {"n_known": len(callsigns), "prompt_callsigns": settings.evaluate.prompt_callsigns}
        if callsigns else None,
        "context": {"kind": "recording", "prompt_callsigns": settings.evaluate.prompt_callsigns,
                    **context_stats(sample_callsigns, scorers)}
        if sample_callsigns is not None and scorers is not None else None,
        "metric_definitions": METRIC_DEFINITIONS,
        "config": settings.to_dict(),
        "timings": {label: models[label]["timings"] for label in models},
    }


def _reference_roles(samples: Sequence[Any]) -> dict[str, Any]:
    """Role accuracy of the classifier on the reference transcripts: what it can do with perfect
    recognition, beside each model's ``role_acc`` on its hypotheses."""
    from ..phraseology import classify_role

    pairs = [(getattr(s, "role", None), classify_role(s.text_norm).role) for s in samples
             if getattr(s, "role", None) in ("controller", "pilot")]
    return {"reference_" + k: v for k, v in role_figures(pairs).items()}


METRIC_DEFINITIONS = {
    "wer": "word error rate on ATC-normalised text: (substitutions + deletions + insertions) / reference words",
    "raw_wer": "word error rate with only case and punctuation normalised",
    "cer": "character error rate on ATC-normalised text",
    "ser": "sentence error rate: share of utterances with any word error",
    "hits": "correct words",
    "insertion_rate": "inserted words per reference word (high when a model loops)",
    "median_utt_wer": "median of per-utterance WER (an empty reference counts as one word)",
    "callsign_acc": "share of utterances whose reference has a callsign where the parsed callsign is exactly right",
    "callsign_misses": "the utterances whose callsign is wrong, by what went wrong: none_heard (no callsign parsed), "
                       "airline (telephony wrong, flight number right), number (airline right), airline_and_number, "
                       "registration",
    "command_acc": "share of reference commands recognised with type and value both right",
    "utterance_command_acc": "share of utterances with commands where every command is right and none is extra",
    "coverage": "keep the most confident share of utterances (by average log-probability): WER and callsign accuracy of the kept ones",
    "role_acc": "share of samples with a known speaker role (synthetic data, corpora that label speakers) whose role "
                "read from the hypothesis (controller/pilot, 'unknown' counts as wrong) is right",
    "callsign_acc_biased": "callsign accuracy with the callsign list (or, with --context recording, each sample's "
                           "own recording's callsigns nearby) as decoder prompt and snapping of the recognised callsign",
    "callsign_acc (tagged)": "for imported segments whose callsign the parser cannot read but the corpus tags "
                             "([#callsign] ... [/#callsign]), the callsign is right when its words appear in the hypothesis",
    "reference_callsign_in_list": "share of samples (with a reference callsign and a list) whose callsign is in their "
                                  "list: the ceiling of callsign biasing",
}


# -- the whole evaluation -------------------------------------------------------------------


def run_evaluation(
    workspace: Workspace,
    settings: Settings,
    *,
    model: str | Path | None = None,
    base: str | Path | None = None,
    compare_base: bool | None = None,
    split: str | None = None,
    source: str | None = None,
    max_samples: int | None = None,
    callsigns_file: str | Path | None = None,
    context: str | None = None,
    engine: str | None = None,
    progress: bool = True,
    write: bool = True,
) -> EvaluationResult:
    """Evaluate the fine-tuned model (and the base model) and write every report.

    Inputs are checked before any model is loaded.

    Args:
        workspace: The workspace (catalogue, model folder, report paths).
        settings: All settings; ``[evaluate]`` gives the defaults of the options below.
        model: The model to evaluate as "fine_tuned"; default: the workspace's fine-tuned model.
        base: The base model; default ``model.name``.
        compare_base: Also evaluate the base model; default ``evaluate.compare_base``.
        split: Catalogue split ("train", "dev", "test", "all"); default ``evaluate.split``.
        source: Only samples of this source (e.g. an imported corpus).
        max_samples: At most this many samples; default ``evaluate.max_samples`` (0: all).
        callsigns_file: Known callsigns, one per line: also measure callsign biasing; default
            ``decode.callsigns_file``, relative to the workspace (empty: not measured); the rule
            of :func:`~atc_whisper.transcribe.annotate.callsigns_file`.
        context: "recording": bias each sample with its own recording's callsigns nearby (the
            ATCO2 ``.info`` contexts stored at import; a callsigns file is added to every list),
            and report callsign accuracy with and without; "none": off. Default ``decode.context``.
        engine: "ct2", "hf" or None for ``decode.engine``.
        progress: Show progress bars.
        write: Write the JSON/CSV reports, catalogue results, TensorBoard logs and plots.

    Returns:
        The :class:`EvaluationResult`, with the written paths.

    Raises:
        DataError: no catalogue, empty selection, bad callsigns file, ``context = "recording"``
            while no selected sample has a recording context.
        ModelError: the fine-tuned model is missing.
    """
    selection = Selection(
        split=split or settings.evaluate.split,
        source=source,
        max_samples=settings.evaluate.max_samples if max_samples is None else max_samples,
    )
    if selection.split not in ("train", "dev", "test", "all"):
        raise DataError(f"unknown split '{selection.split}'; choose train, dev, test or all.")
    samples = select_samples(workspace, selection)
    tuned = check_model(workspace, model if model is not None else workspace.model_dir, fine_tuned_default=model is None)
    models: list[tuple[str, str | Path]] = []
    if settings.evaluate.compare_base if compare_base is None else compare_base:
        models.append((BASE, check_model(workspace, base if base is not None else settings.model.name)))
    models.append((FINE_TUNED, tuned))
    callsigns_path = find_callsigns_file(settings, workspace, callsigns_file)
    known = load_callsign_list(callsigns_path) if callsigns_path else None
    from ..transcribe.context import CONTEXTS

    context = context or settings.decode.context
    if context not in CONTEXTS:
        raise DataError(f"unknown context {context!r}; choose {' or '.join(CONTEXTS)}.")
    per_sample = recording_callsigns(workspace, samples, extra=known) if context == "recording" else None
    result = evaluate_models(
        workspace, settings, models=models, samples=samples, callsigns=known, sample_callsigns=per_sample,
        engine=engine, progress=progress,
    )
    result.report["selection"].update({"split": selection.split, "source": selection.source,
                                       "max_samples": selection.max_samples})
    if known:
        result.report["callsigns"]["file"] = str(callsigns_path)
    if write:
        from .report import write_all

        write_all(workspace, settings, result)
    return result
