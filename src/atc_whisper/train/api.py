"""The training entry point, importable without torch: checks first, heavy work after.

:func:`train_model` runs :func:`~atc_whisper.train.setup.preflight` (catalogue, splits, audio
files, model, device, checkpoint) before torch or transformers are imported, so a run that
cannot start fails in about a second.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..config import Settings
from ..workspace import Workspace


@dataclass
class TrainResult:
    """What a training run produced.

    Attributes:
        model_dir: The saved model folder (loadable by ``transformers.pipeline``).
        steps: Optimiser steps done (in total, including resumed ones).
        train_seconds: Wall time of the training loop in this call.
        samples_per_s: Training samples per second over this call.
        metrics: Final metrics: train_loss, dev_loss, dev_wer (best checkpoint), epochs, ...
        mode: The training mode used.
        logs_dir: TensorBoard log folder of the run.
        run_id: The catalogue run id (None on non-main processes).
        peak_rss_mb: Peak resident memory of this process, MiB.
    """

    model_dir: Path
    steps: int
    train_seconds: float
    samples_per_s: float
    metrics: dict[str, Any] = field(default_factory=dict)
    mode: str = ""
    logs_dir: Path | None = None
    run_id: int | None = None
    peak_rss_mb: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        data = asdict(self)
        data["model_dir"] = str(self.model_dir)
        data["logs_dir"] = str(self.logs_dir) if self.logs_dir else None
        return data



def train_model(workspace: Workspace, settings: Settings, *, model: str | None = None, resume: bool = False,
                progress: bool = True, output_dir: Path | None = None) -> TrainResult:
    """Fine-tune a Whisper model on the catalogue's train split, choosing the best by dev WER.

    Args:
        workspace: The workspace (catalogue, caches, model folder).
        settings: Resolved settings; ``[train]`` holds every hyperparameter.
        model: Model to start from (default ``settings.model.name``).
        resume: Continue from the last checkpoint in the output folder.
        progress: Show progress bars.
        output_dir: Model folder (default ``workspace.model_dir``); checkpoints and TensorBoard
            logs go to its ``checkpoints/`` and ``logs/``.

    Returns:
        A :class:`TrainResult`.

    Raises:
        DataError, ModelError, WorkspaceError, TrainingError: the run cannot start (checked
            before anything heavy is loaded).
        TrainingError: non-finite loss, out of memory (with advice).
        KeyboardInterrupt: stopped by Ctrl-C/SIGTERM after saving a checkpoint.
    """
    from .setup import preflight

    plan = preflight(workspace, settings, model=model, resume=resume, output_dir=output_dir)
    from .trainer import run_training

    return run_training(plan, workspace, settings, progress=progress)
