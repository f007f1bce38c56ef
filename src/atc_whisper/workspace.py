"""The workspace: one folder holding data, models, logs and the config of a project.

Layout (created by ``atc-whisper init``)::

    atc_whisper.toml              every setting, commented
    atc_model_training.log        log of every command
    data/atc_dataset/             synthetic + imported audio, metadata.csv, atc_dataset.db
    data/noise_samples/           your own noise recordings for the radio channel (optional)
    data/augmented/               radio-channel variants of the clean clips
    models/atc_whisper/           the fine-tuned model, logs/ for TensorBoard, evaluation reports
    models/pretrained/            pretrained models converted to Hugging Face format (cache)
    models/ct2/                   CTranslate2 exports (cache)
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from .config import CONFIG_FILENAME, Settings, render_toml
from .errors import WorkspaceError
from .fsutil import atomic_write_text

WORKSPACE_ENV = "ATC_WHISPER_WORKSPACE"
#: Overrides the user cache folder (:func:`user_cache_dir`).
CACHE_ENV = "ATC_WHISPER_CACHE"


def user_cache_dir() -> Path:
    """The per-user cache, for what belongs to no workspace: ``$ATC_WHISPER_CACHE``, else
    ``$XDG_CACHE_HOME/atc_whisper``, else ``~/.cache/atc_whisper`` (not created here).

    It holds the models the Python API converts when no workspace is given and the Kokoro
    TTS model joined from its PyPI parts.
    """
    explicit = os.environ.get(CACHE_ENV)
    if explicit:
        return Path(explicit).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "atc_whisper"


@dataclass(frozen=True)
class Workspace:
    """Paths of one workspace; nothing is created until :meth:`create` is called."""

    root: Path

    @classmethod
    def at(cls, root: str | os.PathLike[str] | None = None) -> Workspace:
        """The workspace at ``root``, else ``$ATC_WHISPER_WORKSPACE``, else the current folder."""
        chosen = root if root is not None else os.environ.get(WORKSPACE_ENV) or "."
        path = Path(chosen).expanduser()
        if path.exists() and not path.is_dir():
            raise WorkspaceError(f"workspace {path} is a file, not a folder; pass a folder with --workspace.")
        return cls(path.resolve())

    def setting_path(self, value: str | os.PathLike[str]) -> Path | None:
        """A file named in a setting (``decode.callsigns_file``, ``decode.context_file``).

        A relative path is relative to the workspace root, the folder of the
        ``atc_whisper.toml`` it is written in (not the current folder); an absolute one is
        taken as is. Returns None for an empty setting.
        """
        text = str(value).strip()
        if not text:
            return None
        path = Path(text).expanduser()
        return path if path.is_absolute() else self.root / path

    # -- files -------------------------------------------------------------------------
    @property
    def config_path(self) -> Path:
        return self.root / CONFIG_FILENAME

    @property
    def log_file(self) -> Path:
        return self.root / "atc_model_training.log"

    @property
    def profile_path(self) -> Path:
        return self.root / "profile.out"

    # -- data --------------------------------------------------------------------------
    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def dataset_dir(self) -> Path:
        return self.data_dir / "atc_dataset"

    @property
    def synthetic_dir(self) -> Path:
        return self.dataset_dir / "synthetic"

    @property
    def imported_dir(self) -> Path:
        return self.dataset_dir / "imported"

    @property
    def db_path(self) -> Path:
        return self.dataset_dir / "atc_dataset.db"

    @property
    def metadata_csv(self) -> Path:
        return self.dataset_dir / "metadata.csv"

    @property
    def vocabulary_path(self) -> Path:
        return self.dataset_dir / "aviation_vocabulary.txt"

    @property
    def noise_dir(self) -> Path:
        return self.data_dir / "noise_samples"

    @property
    def augmented_dir(self) -> Path:
        return self.data_dir / "augmented"

    @property
    def cache_dir(self) -> Path:
        """Derived data that can be rebuilt (encoder-output caches, feature caches)."""
        return self.data_dir / "cache"

    @property
    def clean_cache_dir(self) -> Path:
        """Clean TTS clips that are not catalogued themselves, kept as the source of their radio variants."""
        return self.cache_dir / "clean"

    @property
    def live_dir(self) -> Path:
        return self.data_dir / "live"

    # -- models ------------------------------------------------------------------------
    @property
    def models_dir(self) -> Path:
        return self.root / "models"

    @property
    def model_dir(self) -> Path:
        """Where the fine-tuned model is saved."""
        return self.models_dir / "atc_whisper"

    @property
    def logs_dir(self) -> Path:
        """TensorBoard logs: ``tensorboard --logdir models/atc_whisper/logs``."""
        return self.model_dir / "logs"

    @property
    def checkpoints_dir(self) -> Path:
        return self.model_dir / "checkpoints"

    @property
    def evaluation_report(self) -> Path:
        return self.model_dir / "evaluation_report.json"

    @property
    def evaluation_results(self) -> Path:
        return self.model_dir / "evaluation_results.csv"

    @property
    def pretrained_dir(self) -> Path:
        """Pretrained models converted to Hugging Face format, one folder per model."""
        return self.models_dir / "pretrained"

    @property
    def ct2_dir(self) -> Path:
        """CTranslate2 exports of Hugging Face folders, one folder per source and compute type."""
        return self.models_dir / "ct2"

    def layout(self) -> list[Path]:
        """The folders ``init`` creates."""
        return [
            self.dataset_dir,
            self.noise_dir,
            self.augmented_dir,
            self.model_dir,
            self.logs_dir,
        ]

    def create(self, settings: Settings | None = None, overwrite_config: bool = False) -> list[Path]:
        """Create the folder layout and a commented config file; return what was newly created.

        An existing config file is kept unless ``overwrite_config`` is true, so re-running
        ``init`` never loses a user's edits.
        """
        created: list[Path] = []
        try:
            for folder in [self.root, *self.layout()]:
                if not folder.exists():
                    folder.mkdir(parents=True, exist_ok=True)
                    created.append(folder)
            if overwrite_config or not self.config_path.exists():
                header = (
                    "# ATC Whisper settings for this workspace.\n"
                    "# Every key is shown with its default; edit, or override any with --set section.key=value.\n"
                    "# Commands read this file automatically when run in (or pointed at) this workspace."
                )
                atomic_write_text(self.config_path, render_toml(settings or Settings(), header))
                created.append(self.config_path)
        except PermissionError as exc:
            raise WorkspaceError(f"cannot create the workspace at {self.root}: permission denied ({exc.filename}).") from None
        except OSError as exc:
            raise WorkspaceError(f"cannot create the workspace at {self.root}: {exc.strerror} ({exc.filename}).") from None
        return created
