"""One call for a whole batch: folders/manifests in, one transcript per file out, locally or on Ray.

:func:`transcribe_batch` is what ``atc-whisper transcribe DIR --output OUT`` runs: it resolves
the model (without loading it: a re-run with nothing to do never loads it), plans the batch
(:func:`atc_whisper.transcribe.jobs.plan_batch`), and runs it on this machine or on a Ray
cluster (:mod:`atc_whisper.transcribe.cluster`) with the same per-file job.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..config import Settings
from ..workspace import Workspace
from .jobs import BatchSummary, Executor, LocalExecutor, find_jobs, plan_batch, run_batch


def transcribe_batch(
    inputs: Sequence[Path],
    output_dir: Path,
    settings: Settings,
    workspace: Workspace,
    *,
    model: str,
    engine: str | None = None,
    fmt: str = "json",
    callsigns: Sequence[str] | None = None,
    catalogue: bool = False,
    ray_address: str | None = None,
    force: bool = False,
    progress: bool = True,
    extra_settings: dict[str, Any] | None = None,
) -> BatchSummary:
    """Transcribe every audio file behind ``inputs`` into ``output_dir``, skipping finished ones.

    Args:
        inputs: Folders (walked recursively), manifests (``.txt``/``.csv``) and audio files.
        output_dir: One transcript per input file, at the input's relative path.
        settings: Resolved settings.
        workspace: Model caches and the catalogue.
        model: Model name or folder (resolved as ``--model`` is).
        engine: ``auto``, ``ct2`` or ``hf`` (None: ``decode.engine``).
        fmt: Output format (``text``, ``jsonl``, ``json``, ``srt``, ...).
        callsigns: Known callsigns (reference form) for prompting and snapping.
        catalogue: Also store the segments in the workspace catalogue's transcripts table.
        ray_address: Run on this Ray cluster (``local``, ``auto``, ``host:port``, ``ray://host:port``).
        force: Transcribe every file again.
        progress: Show a progress bar.
        extra_settings: Further options that change results (part of the job key).

    Returns:
        The summary (failed files are listed in it).

    Raises:
        ConfigError: Bad inputs or output folder, a locked folder, or Ray missing/unreachable.
        ModelError: The model cannot be resolved or loaded (on any worker).
    """
    from ..models.resolve import resolve_model
    from .engines import choose_engine, load_engine

    if ray_address is not None:
        from .cluster import require_ray

        require_ray()  # before any work: a missing extra is a setup error, not 10,000 failed files
    # Inputs first: a wrong folder or manifest is reported before any model is looked for.
    jobs = find_jobs(inputs, output_dir, settings)
    # A model folder is passed on as an absolute path: Ray workers do not share this working folder.
    if Path(model).expanduser().exists():
        model = str(Path(model).expanduser().resolve())
    resolved = resolve_model(model, workspace, offline=settings.model.offline)
    engine_name = choose_engine(engine, settings, resolved.hf_dir)
    plan = plan_batch(
        inputs, output_dir, settings, resolved_model=resolved, engine=engine_name, fmt=fmt, callsigns=callsigns,
        catalogue_path=workspace.db_path if catalogue else None, catalogue_root=workspace.root, force=force,
        extra_settings=extra_settings, jobs=jobs,
    )
    executor: Executor
    if ray_address is not None:
        from .cluster import RayExecutor

        executor = RayExecutor(ray_address, model=model, settings=settings, workspace_root=workspace.root,
                               engine=engine_name, expected_model=plan.model_fingerprint)
    else:
        executor = LocalExecutor(lambda: load_engine(model, settings, workspace, engine=engine_name), settings)
    try:
        return run_batch(plan, executor, progress=progress)
    finally:
        executor.close()
        plan.close()
