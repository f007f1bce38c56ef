"""Fanning a batch out over a Ray cluster: one engine per worker process, the same file jobs.

A year of archives is too much for one machine, and nobody should write their own job runner
for it. ``atc-whisper transcribe ARCHIVE/ -o OUT/ --ray ADDRESS`` starts
``batch.ray_workers`` Ray actors; each loads the model once and then runs
:func:`atc_whisper.transcribe.jobs.run_file_job` - the very function the local path runs - on
the files the driver sends it, writing each transcript straight to the (shared) output folder.
The driver decides what is still to do, keeps every worker busy, and alone writes the index
and the catalogue, so the resume rule and the outputs are those of a local run.

Every worker hashes the model it loaded; a worker whose model differs from the driver's
(another version copied to that node) stops the run before any file is sent, because its
transcripts would be filed under the wrong job key.

Ray is optional: ``pip install 'atc-whisper[ray]'``.
"""

from __future__ import annotations

import importlib.util
import logging
import math
import os
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..config import Settings
from ..errors import ConfigError, ModelError
from ..log import get_logger
from .jobs import FileResult, FileTask, model_dirs, model_fingerprint, run_file_job, worker_name

log = get_logger(__name__)

#: Ray version this toolkit is tested with (the ``ray`` extra pins it).
RAY_VERSION = "2.60.0"
#: Tasks queued on each worker, so it starts the next file while the driver records the last.
TASKS_PER_WORKER = 2
#: Ray's switch for multi-node clusters; "0" makes it bind to and advertise 127.0.0.1 only.
_LOOPBACK_ONLY_ENV = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"
#: Restarts of a worker process that died (out of memory, killed node) before it is given up.
WORKER_RESTARTS = 3


def require_ray() -> None:
    """Check that Ray is installed (without importing it), or raise a ConfigError that names the extra."""
    try:
        found = importlib.util.find_spec("ray") is not None
    except (ImportError, ValueError):  # ValueError: a module entry without a spec (blocked import)
        found = False
    if not found:
        raise ConfigError(
            f"--ray needs the Ray package: pip install 'atc-whisper[ray]' (ray=={RAY_VERSION}), on the machine you "
            "run this command on and on every node of the cluster."
        )


def connect(address: str, *, num_cpus: int | None = None) -> Any:
    """Connect to (or, for ``local``, start) a Ray cluster.

    Args:
        address: ``local`` (start a private cluster on this machine for this run), ``auto``
            (the cluster this machine belongs to, e.g. after ``ray start``), ``host:port``
            (the head node's GCS address) or ``ray://host:port`` (Ray Client).
        num_cpus: CPUs of the private cluster (``local`` only; None: all).

    Returns:
        The ``ray`` module, initialised.

    Raises:
        ConfigError: Ray is missing or the cluster cannot be reached.
    """
    address = address.strip()
    if not address:
        raise ConfigError("--ray needs an address: local, auto, HOST:PORT or ray://HOST:PORT.")
    require_ray()
    if address == "local":
        # A private cluster for one run never has other nodes: keep it on the loopback interface
        # instead of opening its ports on the network (Ray reads this when it is imported), and
        # give it a token of its own rather than Ray's default of writing one to ~/.ray.
        os.environ.setdefault(_LOOPBACK_ONLY_ENV, "0")
        os.environ.setdefault("RAY_AUTH_MODE", "token")
        if not os.environ.get("RAY_AUTH_TOKEN") and not os.environ.get("RAY_AUTH_TOKEN_PATH"):
            os.environ["RAY_AUTH_TOKEN"] = secrets.token_hex(32)
    import ray
    options: dict[str, Any] = {"include_dashboard": False, "logging_level": logging.WARNING, "log_to_driver": True}
    try:
        if address == "local":
            os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # a private cluster reports nothing anywhere
            ray.init(num_cpus=num_cpus, _node_ip_address="127.0.0.1", **options)
        else:
            ray.init(address=address, **{k: v for k, v in options.items() if k != "include_dashboard"})
    except (ConnectionError, RuntimeError, ValueError, TimeoutError) as exc:  # what ray.init raises when unreachable
        raise ConfigError(
            f"cannot connect to the Ray cluster at {address!r} ({type(exc).__name__}: {exc}). Start one with "
            "'ray start --head' and pass its address (HOST:6379), 'auto' on a cluster node, or 'local'."
        ) from None
    return ray


class _Worker:
    """The Ray actor: one engine, loaded once, running file tasks."""

    def __init__(self, model: str, settings: Settings, workspace_root: str, engine: str | None) -> None:
        from ..models.resolve import resolve_model
        from ..workspace import Workspace
        from .engines import load_engine

        workspace = Workspace.at(workspace_root)
        started = time.perf_counter()
        self.settings = settings
        self.engine = load_engine(model, settings, workspace, engine=engine)
        self.load_s = time.perf_counter() - started
        self.model = model_fingerprint(model_dirs(resolve_model(model, workspace, offline=settings.model.offline)))

    def identity(self) -> dict[str, Any]:
        """Where this worker runs, its model's fingerprint and how long loading took."""
        return {"worker": worker_name(), "model": self.model, "load_s": self.load_s,
                "engine": getattr(self.engine, "name", "?")}

    def run(self, task: FileTask) -> FileResult:
        """Run one file job (:func:`run_file_job`)."""
        return run_file_job(task, self.engine, self.settings)


def _failed(task: FileTask, reason: str) -> FileResult:
    return FileResult(task=task, ok=False, error=f"{task.job.path}: {reason}")


class RayExecutor:
    """Runs file tasks on Ray actors (see the module docstring); an :class:`~atc_whisper.transcribe.jobs.Executor`.

    Args:
        address: The cluster (see :func:`connect`).
        model: The model as the driver names it; every node must resolve it to the same files.
        settings: Resolved settings (``[batch]`` sizes the workers).
        workspace_root: Workspace each worker resolves and caches models in (shared storage, or
            the same path on every node).
        engine: ``ct2`` or ``hf``.
        expected_model: The driver's model fingerprint; workers must match it.
    """

    def __init__(self, address: str, *, model: str, settings: Settings, workspace_root: Path, engine: str,
                 expected_model: str) -> None:
        self.address = address
        self.model = model
        self.settings = settings
        self.workspace_root = workspace_root
        self.engine = engine
        self.expected_model = expected_model
        self.workers = 0
        self.load_s = 0.0
        self._ray: Any = None
        self._actors: list[Any] = []

    def _worker_settings(self) -> Settings:
        # threads = 0 means "every core" to an engine; a worker owns only the CPUs Ray gave it.
        if self.settings.model.threads == 0:
            threads = max(1, int(self.settings.batch.ray_cpus_per_worker))
            return self.settings.replace(model={"threads": threads})
        return self.settings

    def _start(self) -> None:
        batch = self.settings.batch
        local_cpus = None
        if self.address == "local" and batch.ray_workers:
            local_cpus = math.ceil(batch.ray_workers * batch.ray_cpus_per_worker)
        started = time.perf_counter()
        ray = self._ray = connect(self.address, num_cpus=local_cpus)
        count = batch.ray_workers
        if not count:
            cpus = float(ray.cluster_resources().get("CPU", 1.0))
            count = max(1, int(cpus // batch.ray_cpus_per_worker))
        actor_class = ray.remote(num_cpus=batch.ray_cpus_per_worker, num_gpus=batch.ray_gpus_per_worker,
                                 max_restarts=WORKER_RESTARTS)(_Worker)
        settings = self._worker_settings()
        self._actors = [actor_class.remote(self.model, settings, str(self.workspace_root), self.engine)
                        for _ in range(count)]
        log.info("Starting %d engine(s) on the Ray cluster at %s ...", count, self.address)
        try:
            identities = ray.get([a.identity.remote() for a in self._actors])
        except ray.exceptions.RayError as exc:
            raise ModelError(f"a Ray worker could not load the model {self.model}: {_cause(exc)}. Every node needs "
                             "atc-whisper and the model (same folder path, or a shared workspace).") from None
        for identity in identities:
            if identity["model"] != self.expected_model:
                raise ModelError(
                    f"the model on Ray worker {identity['worker']} differs from this machine's {self.model} "
                    f"(fingerprint {identity['model'][:12]} vs {self.expected_model[:12]}); copy the same model to every node."
                )
        self.workers = len(self._actors)
        self.load_s = time.perf_counter() - started
        log.info("%d engine(s) ready in %.1f s: %s", self.workers, self.load_s,
                 ", ".join(sorted({i["worker"].split(":")[0] for i in identities})))

    def run(self, tasks: Iterator[FileTask]) -> Iterator[FileResult]:
        """See :class:`~atc_whisper.transcribe.jobs.Executor`: keeps every worker busy until ``tasks`` runs out."""
        first = next(tasks, None)
        if first is None:
            return  # nothing to do: no cluster needed
        if self._ray is None:
            self._start()
        ray = self._ray
        queue: list[FileTask] = [first]
        in_flight: dict[Any, tuple[Any, FileTask]] = {}
        load = {id(a): 0 for a in self._actors}
        exhausted = False
        while True:
            while not exhausted:
                actor = min(self._actors, key=lambda a: load[id(a)])
                if load[id(actor)] >= TASKS_PER_WORKER:
                    break
                task = queue.pop() if queue else next(tasks, None)
                if task is None:
                    exhausted = True
                    break
                in_flight[actor.run.remote(task)] = (actor, task)
                load[id(actor)] += 1
            if not in_flight:
                return
            ready, _ = ray.wait(list(in_flight), num_returns=1)
            actor, task = in_flight.pop(ready[0])
            load[id(actor)] -= 1
            try:
                yield ray.get(ready[0])
            except ray.exceptions.RayActorError as exc:
                yield _failed(task, f"the Ray worker died while transcribing it ({_cause(exc)}); it is retried by the "
                                    "next run")
            except ray.exceptions.RayError as exc:
                yield _failed(task, f"Ray could not run it ({_cause(exc)})")

    def close(self) -> None:
        """Stop the workers and disconnect (a ``local`` cluster is shut down)."""
        if self._ray is not None:
            for actor in self._actors:
                try:
                    self._ray.kill(actor)
                except Exception as exc:  # an already dead actor: nothing left to stop
                    log.debug("Stopping a Ray worker: %s", exc)
            self._actors = []
            self._ray.shutdown()
            self._ray = None


def _cause(exc: BaseException) -> str:
    """The first line of what went wrong inside Ray, without its traceback."""
    text = str(getattr(exc, "cause", None) or exc).strip()
    lines = [line for line in text.splitlines() if line.strip()]
    errors = [line for line in lines if "Error:" in line]
    return (errors[-1] if errors else lines[0] if lines else type(exc).__name__).strip()
