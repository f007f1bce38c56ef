"""Writing an evaluation down: JSON report, per-sample CSV, catalogue rows, TensorBoard, plots.

Why this module exists: the numbers of :mod:`.evaluate` must outlive the process in the forms
people use - a JSON report for tools and the pipeline summary, a CSV to read transcripts side
by side in a spreadsheet, rows in the catalogue so runs can be compared later, TensorBoard
beside the training curves, and PNG plots. Every file is written atomically (a reader never
sees half a report); the catalogue rows go in one transaction.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..config import Settings
from ..fsutil import atomic_dir, atomic_path, atomic_write_text
from ..log import get_logger
from ..workspace import Workspace
from .evaluate import EvaluationResult, ModelRun, SampleScore, json_safe

log = get_logger(__name__)

#: Per-sample CSV columns shared by every sample; each model adds ``{label}_{field}`` columns.
SAMPLE_COLUMNS = ("id", "uid", "audio", "split", "source", "voice", "role", "snr_db", "duration_s", "reference")
MODEL_COLUMNS = (
    "hypothesis", "wer", "errors", "callsign_ref", "callsign_hyp", "callsign_correct", "callsign_miss", "commands_matched",
    "commands_ref", "commands_correct", "role_hyp", "avg_logprob", "no_speech_prob", "compression_ratio", "low_confidence",
    "latency_s",
)
BIASED_COLUMNS = ("hypothesis_biased", "wer_biased", "callsign_hyp_biased", "callsign_correct_biased")


def _fmt(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, float):
        return "" if not math.isfinite(value) else round(value, 4)
    return value


def model_fields(score: SampleScore) -> dict[str, Any]:
    """The per-sample fields of one model's transcript (CSV columns without the label prefix)."""
    fields: dict[str, Any] = {
        "hypothesis": score.hypothesis,
        "wer": score.wer,
        "errors": score.alignment.errors,
        "callsign_ref": score.atc.ref_callsign,
        "callsign_hyp": score.atc.hyp_callsign,
        "callsign_correct": score.atc.callsign_correct,
        "callsign_miss": score.atc.callsign_miss,
        "commands_matched": score.atc.commands_matched,
        "commands_ref": score.atc.ref_commands,
        "commands_correct": score.atc.commands_correct,
        "role_hyp": score.role_hyp if score.role else None,
        "avg_logprob": score.avg_logprob,
        "no_speech_prob": score.no_speech_prob,
        "compression_ratio": score.compression_ratio,
        "low_confidence": score.low_confidence,
        "latency_s": score.latency_s,
    }
    if score.atc_biased is not None and score.alignment_biased is not None:
        fields.update({
            "hypothesis_biased": score.hypothesis_biased,
            "wer_biased": score.alignment_biased.error_rate,
            "callsign_hyp_biased": score.atc_biased.hyp_callsign,
            "callsign_correct_biased": score.atc_biased.callsign_correct,
        })
    return fields


def sample_rows(result: EvaluationResult) -> list[dict[str, Any]]:
    """One dict per sample: its catalogue fields, then every model's fields prefixed by the label."""
    rows = []
    for k, sample in enumerate(result.samples):
        row: dict[str, Any] = {
            "id": sample.id,
            "uid": sample.uid,
            "audio": str(sample.audio_path),
            "split": sample.split,
            "source": sample.source,
            "voice": sample.voice,
            "role": sample.role,
            "snr_db": sample.snr_db,
            "duration_s": sample.duration_s,
            "reference": sample.text_norm,
        }
        for label, run in result.runs.items():
            row.update({f"{label}_{key}": value for key, value in model_fields(run.scores[k]).items()})
        rows.append(row)
    return rows


def csv_columns(runs: dict[str, ModelRun]) -> list[str]:
    """The CSV header for these model runs."""
    columns = list(SAMPLE_COLUMNS)
    for label, run in runs.items():
        columns += [f"{label}_{c}" for c in MODEL_COLUMNS]
        if run.scores and run.scores[0].atc_biased is not None:
            columns += [f"{label}_{c}" for c in BIASED_COLUMNS]
    return columns


def write_results_csv(path: Path, result: EvaluationResult) -> Path:
    """Write the per-sample CSV atomically."""
    columns = csv_columns(result.runs)
    with atomic_path(path, suffix=".csv") as tmp, open(tmp, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        for row in sample_rows(result):
            writer.writerow({k: _fmt(row.get(k)) for k in columns})
    return path


def write_report_json(path: Path, report: dict[str, Any]) -> Path:
    """Write the report as strict JSON (NaN becomes null) atomically."""
    return atomic_write_text(path, json.dumps(json_safe(report), indent=2, sort_keys=False) + "\n")


def write_catalogue(workspace: Workspace, settings: Settings, result: EvaluationResult) -> int:
    """Record an ``evaluate`` run and its per-sample results in the catalogue; returns the run id."""
    from ..data.catalogue import Catalogue

    with Catalogue(workspace.db_path) as catalogue:
        run_id = catalogue.start_run("evaluate", json_safe({
            "settings": settings.to_dict(),
            "models": {label: run.model for label, run in result.runs.items()},
            "selection": result.report.get("selection", {}),
        }))
        try:
            rows = []
            for label, run in result.runs.items():
                for sample, score in zip(result.samples, run.scores, strict=True):
                    fields = model_fields(score)
                    rows.append({
                        "sample_id": sample.id,
                        "model": label,
                        "hypothesis": score.hypothesis,
                        "wer": score.wer,
                        "callsign_ok": score.atc.callsign_correct,
                        "commands_ok": score.atc.commands_correct,
                        "avg_logprob": score.avg_logprob if math.isfinite(score.avg_logprob) else None,
                        "no_speech_prob": score.no_speech_prob,
                        "compression_ratio": score.compression_ratio,
                        "low_confidence": score.low_confidence,
                        "latency_s": score.latency_s,
                        # everything else (biased transcript, parsed callsigns) goes to `extra`
                        **json_safe({k: v for k, v in fields.items() if k in (
                            "callsign_ref", "callsign_hyp", "commands_matched", "commands_ref", "errors", "role_hyp",
                            "hypothesis_biased", "wer_biased", "callsign_hyp_biased", "callsign_correct_biased",
                        )}),
                        "model_name": run.model,
                    })
            catalogue.add_results(run_id, rows)
        except BaseException:
            catalogue.finish_run(run_id, "failed")
            raise
        tuned = result.runs.get("fine_tuned")
        catalogue.finish_run(run_id, "completed", metrics=json_safe(result.summary),
                             model_path=tuned.model if tuned else None)
    return run_id


def _markdown_table(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> str:
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        cells = [str(_fmt(row.get(c))).replace("|", "/").replace("\n", " ") for c in columns]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_tensorboard(logdir: Path, result: EvaluationResult, *, max_text_rows: int = 50) -> Path:
    """Scalars (per model and group) and a transcript table as text, under ``logdir``.

    The event file is written in a temporary folder that replaces ``logdir`` when complete.
    """
    from torch.utils.tensorboard import SummaryWriter

    # The folder is replaced as a whole: TensorBoard shows the latest evaluation, not a pile
    # of step-0 points from every earlier one.
    with atomic_dir(logdir) as tmp:
        writer = SummaryWriter(log_dir=str(tmp))
        for label, summary in result.summary.items():
            for key, value in summary.items():
                if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
                    writer.add_scalar(f"evaluation/{label}/{key}", value, 0)
            for group, table in result.report["models"][label]["groups"].items():
                for value, figures in table.items():
                    wer = figures.get("wer")
                    if isinstance(wer, float) and math.isfinite(wer):
                        writer.add_scalar(f"evaluation_{group}/{label}/{value}/wer", wer, 0)
            for point in result.report["models"][label]["coverage"]:
                writer.add_scalar(f"evaluation_coverage/{label}/wer", point["wer"], round(point["coverage"] * 100))
        rows = sample_rows(result)[:max_text_rows]
        columns = ["reference", *[f"{label}_hypothesis" for label in result.runs], *[f"{label}_wer" for label in result.runs]]
        writer.add_text("evaluation/transcripts", _markdown_table(rows, columns), 0)
        writer.add_text("evaluation/summary", "```\n" + json.dumps(json_safe(result.summary), indent=2) + "\n```", 0)
        writer.close()
    return logdir


def write_all(workspace: Workspace, settings: Settings, result: EvaluationResult) -> EvaluationResult:
    """Write the plots, CSV, catalogue rows, TensorBoard logs and (last) the JSON report.

    The JSON report is written last, so its presence means every other output is complete
    (``atc-whisper run`` uses it to decide that evaluation is up to date).
    """
    from .plots import write_plots

    workspace.model_dir.mkdir(parents=True, exist_ok=True)
    result.plot_paths = write_plots(workspace.model_dir, result, settings)
    result.results_path = write_results_csv(workspace.evaluation_results, result)
    try:
        result.run_id = write_catalogue(workspace, settings, result)
    except Exception as exc:  # the reports on disk are still worth keeping
        log.warning("could not store evaluation results in the catalogue: %s", exc)
    try:
        result.tensorboard_dir = write_tensorboard(workspace.logs_dir / "evaluation", result)
    except ImportError as exc:
        log.warning("TensorBoard logging skipped (%s); install tensorboard to get it.", exc)
    result.report["files"] = {
        "report": str(workspace.evaluation_report),
        "results": str(result.results_path),
        "plots": [str(p) for p in result.plot_paths],
        "tensorboard": str(result.tensorboard_dir) if result.tensorboard_dir else None,
        "catalogue_run_id": result.run_id,
    }
    result.report_path = write_report_json(workspace.evaluation_report, result.report)
    log.info("evaluation report written to %s", result.report_path)
    return result
