"""The whole pipeline in one call: init -> prepare -> train -> evaluate.

Each stage records a fingerprint of what it was run on (its settings and the fingerprints of
its inputs) in ``.atc_whisper/pipeline.json`` in the workspace. A stage whose fingerprint is
unchanged and whose outputs still exist is skipped, so re-running ``atc-whisper run`` after an
interruption, or after changing only evaluation settings, redoes only what is needed.
``force=True`` redoes every stage.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .config import Settings
from .fsutil import atomic_write_text
from .log import get_logger
from .workspace import Workspace

log = get_logger(__name__)

STAGES = ("init", "prepare", "train", "evaluate")


@dataclass
class StageOutcome:
    """What happened to one stage."""

    name: str
    status: str  # "done", "skipped" (up to date) or "failed"
    seconds: float = 0.0
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass
class PipelineResult:
    """The outcome of :func:`run_pipeline`."""

    stages: list[StageOutcome]
    summary: dict[str, Any]


def _digest(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


class PipelineState:
    """Fingerprints of completed stages, stored atomically in the workspace."""

    def __init__(self, workspace: Workspace) -> None:
        self.path = workspace.root / ".atc_whisper" / "pipeline.json"
        try:
            self.data: dict[str, Any] = json.loads(self.path.read_text()) if self.path.exists() else {}
        except (OSError, json.JSONDecodeError):
            self.data = {}  # an unreadable state file only costs a re-run of the stages

    def fingerprint(self, stage: str) -> str | None:
        return self.data.get(stage, {}).get("fingerprint")

    def record(self, stage: str, fingerprint: str, detail: dict[str, Any]) -> None:
        self.data[stage] = {"fingerprint": fingerprint, "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S"), "detail": detail}
        atomic_write_text(self.path, json.dumps(self.data, indent=2, default=str))

    def forget(self, stage: str) -> None:
        if self.data.pop(stage, None) is not None:
            atomic_write_text(self.path, json.dumps(self.data, indent=2, default=str))


def _split_fingerprint(workspace: Workspace, split: str) -> str:
    """A digest of the catalogue's samples in one split (ids and file hashes)."""
    if not workspace.db_path.exists():
        return "no-catalogue"
    from .data.catalogue import Catalogue

    with Catalogue(workspace.db_path) as catalogue:
        rows = catalogue.samples(split=split)
        return _digest(sorted((str(s.id), str(getattr(s, "sha256", s.audio_path)), s.text_norm) for s in rows))


def _model_fingerprint(model_dir: Path) -> str:
    """A digest of a saved model folder's weight files (name, size, mtime)."""
    # Only the model itself: evaluation reports and logs in the same folder must not count.
    names = {"config.json", "generation_config.json", "model.safetensors", "pytorch_model.bin"}
    files = sorted(p for p in model_dir.glob("*") if p.name in names or p.name.startswith("model-0"))
    return _digest([(p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in files])


def _has_model(model_dir: Path) -> bool:
    return (model_dir / "config.json").exists() and any(model_dir.glob("*.safetensors"))


def _stage_fingerprints(workspace: Workspace, settings: Settings) -> dict[str, Callable[[], str]]:
    s = settings.to_dict()
    return {
        "init": lambda: _digest([str(workspace.root)]),
        # The worker count changes how fast the clips are made, never which clips.
        "prepare": lambda: _digest([{k: v for k, v in s["data"].items() if k != "workers"}, s["channel"]]),
        "train": lambda: _digest([s["train"], s["model"]["name"], _split_fingerprint(workspace, "train"),
                                  _split_fingerprint(workspace, "dev")]),
        "evaluate": lambda: _digest([s["decode"], s["evaluate"], s["model"]["name"],
                                     _model_fingerprint(workspace.model_dir) if workspace.model_dir.exists() else "",
                                     _split_fingerprint(workspace, settings.evaluate.split)]),
    }


def _outputs_exist(stage: str, workspace: Workspace) -> bool:
    if stage == "init":
        return workspace.config_path.exists() and all(p.is_dir() for p in workspace.layout())
    if stage == "prepare":
        return workspace.db_path.exists() and workspace.metadata_csv.exists()
    if stage == "train":
        return _has_model(workspace.model_dir)
    if stage == "evaluate":
        return workspace.evaluation_report.exists() and workspace.evaluation_results.exists()
    raise ValueError(stage)  # a programming error: STAGES names every stage handled here


def _run_stage(stage: str, workspace: Workspace, settings: Settings, progress: bool) -> dict[str, Any]:
    """Run one stage through the library; return a small JSON-able detail dict."""
    if stage == "init":
        created = workspace.create(settings)
        return {"created": [str(p) for p in created]}
    if stage == "prepare":
        from .data.prepare import prepare_dataset

        report = prepare_dataset(workspace, settings, progress=progress)
        return _as_detail(report)
    if stage == "train":
        from .train import train_model

        result = train_model(workspace, settings, progress=progress)
        return _as_detail(result)
    if stage == "evaluate":
        from .evaluate import run_evaluation

        evaluation = run_evaluation(workspace, settings, progress=progress)
        return {"summary": evaluation.summary}
    raise ValueError(stage)  # a programming error: STAGES names every stage handled here


def _as_detail(obj: Any) -> dict[str, Any]:
    if hasattr(obj, "__dataclass_fields__"):
        return json.loads(json.dumps(asdict(obj), default=str))
    if isinstance(obj, dict):
        return json.loads(json.dumps(obj, default=str))
    return {"result": str(obj)}


def run_pipeline(
    workspace: Workspace,
    settings: Settings,
    *,
    force: bool = False,
    stages: tuple[str, ...] = STAGES,
    progress: bool = True,
    on_stage: Callable[[str, str], None] | None = None,
) -> PipelineResult:
    """Run the pipeline stages in order, skipping those that are up to date.

    Args:
        workspace: the workspace to work in (created by the init stage).
        settings: resolved settings.
        force: redo every stage even when it is up to date.
        stages: which stages to consider, in pipeline order.
        progress: show progress bars inside stages.
        on_stage: called with (stage, "start" | "skipped" | "done") for a progress display.

    Returns:
        The outcome of every stage and a summary (samples, training time, WER, callsign accuracy, paths).
    """
    unknown = [s for s in stages if s not in STAGES]
    if unknown:
        from .errors import ConfigError

        raise ConfigError(f"unknown pipeline stage(s) {', '.join(unknown)}; valid stages: {', '.join(STAGES)}.")
    if "init" in stages:
        workspace.create(settings)
    state = PipelineState(workspace)
    fingerprints = _stage_fingerprints(workspace, settings)
    outcomes: list[StageOutcome] = []
    for stage in STAGES:
        if stage not in stages:
            continue
        fingerprint = fingerprints[stage]()
        if not force and state.fingerprint(stage) == fingerprint and _outputs_exist(stage, workspace):
            log.debug("stage %s: up to date, skipped", stage)
            outcomes.append(StageOutcome(stage, "skipped", 0.0, state.data.get(stage, {}).get("detail", {})))
            if on_stage:
                on_stage(stage, "skipped")
            continue
        if on_stage:
            on_stage(stage, "start")
        state.forget(stage)
        started = time.perf_counter()
        detail = _run_stage(stage, workspace, settings, progress)
        seconds = time.perf_counter() - started
        # Inputs of later stages may have changed by running this one: fingerprint after the run.
        state.record(stage, fingerprints[stage](), {**detail, "seconds": round(seconds, 2)})
        outcomes.append(StageOutcome(stage, "done", seconds, detail))
        log.debug("stage %s: done in %.1f s", stage, seconds)
        if on_stage:
            on_stage(stage, "done")
    return PipelineResult(outcomes, _summary(workspace, state))


def _examples(results_csv: Path, limit: int = 3) -> list[dict[str, str]]:
    """A few transcripts from the evaluation (reference vs each model), for the summary."""
    if not results_csv.exists():
        return []
    import csv

    with results_csv.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    examples = []
    for row in rows[:limit]:
        example = {"audio": Path(row.get("audio", "")).name, "reference": row.get("reference", "")}
        for label in ("base", "fine_tuned"):
            if f"{label}_hypothesis" in row:
                example[label] = row[f"{label}_hypothesis"]
        examples.append(example)
    return examples


def _summary(workspace: Workspace, state: PipelineState) -> dict[str, Any]:
    summary: dict[str, Any] = {"workspace": str(workspace.root)}
    if workspace.db_path.exists():
        from .data.catalogue import Catalogue

        with Catalogue(workspace.db_path) as catalogue:
            summary["samples"] = {split: len(catalogue.samples(split=split)) for split in ("train", "dev", "test")}
    train = state.data.get("train", {}).get("detail", {})
    if train:
        summary["training_seconds"] = train.get("train_seconds", train.get("seconds"))
    if workspace.evaluation_report.exists():
        try:
            report = json.loads(workspace.evaluation_report.read_text())
            summary["evaluation"] = report.get("summary", {})
        except (OSError, json.JSONDecodeError):
            pass
    summary["examples"] = _examples(workspace.evaluation_results)
    summary["model_dir"] = str(workspace.model_dir)
    summary["evaluation_report"] = str(workspace.evaluation_report)
    summary["evaluation_results"] = str(workspace.evaluation_results)
    summary["tensorboard"] = f"tensorboard --logdir {workspace.logs_dir}"
    return summary
