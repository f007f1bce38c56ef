"""Export a Hugging Face Whisper folder to CTranslate2, the fast CPU inference format.

faster-whisper (and ``ctranslate2.models.Whisper``) run int8 Whisper on a CPU in a fraction
of PyTorch's time. The export uses ctranslate2's own ``TransformersConverter`` and is cached:
it is redone only when the source folder's config or weights change.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

from ..errors import ModelError
from ..fsutil import atomic_dir
from ..log import get_logger
from ..workspace import Workspace
from .convert import ensure_preprocessor_config
from .resolve import is_hf_whisper_dir

log = get_logger(__name__)

# CTranslate2 weight types; "default" keeps the source's float32 weights (no quantisation).
QUANTIZATIONS = (
    "int8", "int8_float32", "int8_float16", "int8_bfloat16", "int16", "float16", "bfloat16", "float32", "default",
)
EXPORT_MARKER = "atc_whisper_export.json"
# Whisper's encoder sees 30 s windows = 1500 positions after the stride-2 convolution; faster-whisper
# always pads to that, so a model with a shortened position table would not run there.
WHISPER_SOURCE_POSITIONS = 1500
_WEIGHT_SUFFIXES = (".safetensors", ".bin")
# The files that define the exported model; a fine-tuned folder also holds reports and logs,
# whose changes must not trigger a re-export.
_KEY_FILES = (
    "config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json", "preprocessor_config.json",
    "processor_config.json", "special_tokens_map.json", "added_tokens.json",
)
_COPIED_FILES = ("tokenizer.json", "preprocessor_config.json")


def source_key(hf_dir: Path, quantization: str) -> str:
    """Cache key of an export: the source's model-defining JSON files, weight sizes/mtimes and the settings."""
    import ctranslate2

    digest = hashlib.sha256()
    digest.update(json.dumps([str(hf_dir.resolve()), quantization, ctranslate2.__version__]).encode())
    for path in sorted(hf_dir.iterdir()):
        if path.name in _KEY_FILES and path.is_file():
            digest.update(path.name.encode() + path.read_bytes())
        elif path.name.startswith(("model", "pytorch_model")) and path.name.endswith(_WEIGHT_SUFFIXES) and path.is_file():
            st = path.stat()
            digest.update(f"{path.name}:{st.st_size}:{st.st_mtime_ns}".encode())
    return digest.hexdigest()[:20]


def default_export_dir(hf_dir: Path, workspace: Workspace | None, quantization: str) -> Path:
    """``<workspace>/models/ct2/<name>-<quantization>``, or beside the source without a workspace."""
    name = f"{hf_dir.name}-{quantization}"
    if workspace is not None:
        return workspace.ct2_dir / name
    return hf_dir.parent / f"{hf_dir.name}-ct2-{quantization}"


def _check_source(hf_dir: Path) -> dict[str, object]:
    if not hf_dir.is_dir():
        raise ModelError(f"{hf_dir} does not exist; pass a Hugging Face Whisper folder to export.")
    if not is_hf_whisper_dir(hf_dir):
        raise ModelError(f"{hf_dir} is not a Hugging Face Whisper folder (config.json with model_type 'whisper').")
    config: dict[str, object] = json.loads((hf_dir / "config.json").read_text(encoding="utf-8"))
    if not any(p.name.startswith(("model", "pytorch_model")) and p.name.endswith(_WEIGHT_SUFFIXES) for p in hf_dir.iterdir()):
        raise ModelError(f"{hf_dir} has no weight file (model.safetensors); the model was not saved completely.")
    if not (hf_dir / "tokenizer.json").exists():
        raise ModelError(f"{hf_dir} has no tokenizer.json; save the processor with the model (processor.save_pretrained).")
    positions = config.get("max_source_positions", WHISPER_SOURCE_POSITIONS)
    if positions != WHISPER_SOURCE_POSITIONS:
        raise ModelError(
            f"{hf_dir} has an encoder for {positions} positions; CTranslate2/faster-whisper always feed 30 s windows "
            f"({WHISPER_SOURCE_POSITIONS} positions). Restore the full position table before exporting."
        )
    return config


def export_ct2(
    hf_dir: str | Path,
    workspace: Workspace | None = None,
    *,
    quantization: str = "int8",
    out_dir: str | Path | None = None,
    force: bool = False,
) -> Path:
    """Convert a Hugging Face Whisper folder to a CTranslate2 folder faster-whisper can load.

    Args:
        hf_dir: The Hugging Face Whisper folder (a fine-tuned model or a resolved pretrained one).
        workspace: Where the cache lives (``models/ct2/<name>-<quantization>``); without one the
            export goes beside ``hf_dir``.
        quantization: CTranslate2 weight type, e.g. ``int8`` (smallest, fastest on CPU), ``float16``, or
            ``default`` (keep float32). Any type runs with any compute type; this only sets what is stored.
        out_dir: Explicit output folder (overrides the cache location).
        force: Re-export even when the cached export is up to date.

    Returns:
        The CTranslate2 folder (``model.bin``, ``config.json``, ``vocabulary.json``,
        ``tokenizer.json``, ``preprocessor_config.json``).

    Raises:
        ModelError: the source is not an exportable Whisper folder, or the conversion failed.
    """
    hf_dir = Path(hf_dir).expanduser().resolve()
    if quantization not in QUANTIZATIONS:
        raise ModelError(f"quantization '{quantization}' is not supported; choose one of {', '.join(QUANTIZATIONS)}.")
    _check_source(hf_dir)
    target = Path(out_dir).expanduser().resolve() if out_dir is not None else default_export_dir(hf_dir, workspace, quantization)
    if target == hf_dir or hf_dir in target.parents:
        raise ModelError(f"the export folder {target} must not be inside the source model {hf_dir}.")
    key = source_key(hf_dir, quantization)
    marker = target / EXPORT_MARKER
    if not force and marker.exists() and (target / "model.bin").exists():
        try:
            if json.loads(marker.read_text(encoding="utf-8")).get("key") == key:
                log.debug("CTranslate2 export %s is up to date", target)
                return target
        except (OSError, ValueError):
            pass
    if target.exists() and not (target / EXPORT_MARKER).exists() and any(target.iterdir()):
        raise ModelError(
            f"{target} exists and was not written by 'atc-whisper export'; choose another --output or remove it."
        )
    try:
        from ctranslate2.converters import TransformersConverter
    except ImportError:
        raise ModelError("exporting to CTranslate2 needs the ctranslate2 package: pip install ctranslate2") from None

    log.info("Exporting %s to CTranslate2 (%s) at %s ...", hf_dir, quantization, target)
    with atomic_dir(target) as tmp:
        try:
            # force=True: the converter refuses an existing folder, and atomic_dir made an empty one.
            TransformersConverter(str(hf_dir)).convert(
                str(tmp), quantization=None if quantization == "default" else quantization, force=True
            )
        except Exception as exc:
            raise ModelError(f"CTranslate2 conversion of {hf_dir} failed: {type(exc).__name__}: {exc}") from None
        for name in _COPIED_FILES:
            if (hf_dir / name).exists():
                shutil.copyfile(hf_dir / name, tmp / name)
        if not (tmp / "preprocessor_config.json").exists():
            # transformers 5 saves only processor_config.json; faster-whisper reads the mel count from this file.
            if (hf_dir / "processor_config.json").exists():
                shutil.copyfile(hf_dir / "processor_config.json", tmp / "processor_config.json")
            ensure_preprocessor_config(tmp)
            (tmp / "processor_config.json").unlink(missing_ok=True)
        (tmp / EXPORT_MARKER).write_text(
            json.dumps({"key": key, "source": str(hf_dir), "quantization": quantization}, indent=2) + "\n",
            encoding="utf-8",
        )
    return target
