"""Load a Hugging Face Whisper folder for inference or training, with decoding set up right.

Folders come from several places (the bundled conversion, the Hub, a fine-tuning run) and
their generation configs differ; English-only checkpoints must decode with the prompt
``<|startoftranscript|><|notimestamps|>`` and multilingual ones with English transcription
forced, never language detection (ATC radio here is English).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ModelError
from ..log import get_logger
from .convert import language_tokens

if TYPE_CHECKING:
    from transformers import WhisperForConditionalGeneration, WhisperProcessor

log = get_logger(__name__)


#: Runtimes whose GPU visibility :func:`resolve_device` can check.
RUNTIMES = ("torch", "ctranslate2")


def _cuda_devices(runtime: str) -> int:
    if runtime == "ctranslate2":
        import ctranslate2

        return int(ctranslate2.get_cuda_device_count())
    import torch

    return int(torch.cuda.device_count()) if torch.cuda.is_available() else 0


def resolve_device(device: str = "cpu", *, runtime: str = "torch") -> str:
    """The one device rule: ``auto`` -> ``cuda`` when ``runtime`` sees a GPU, else ``cpu``.

    Args:
        device: ``auto``, ``cpu``, ``cuda`` or ``cuda:N`` (``model.device``, ``--device``).
        runtime: Who will run the model: ``torch`` (training, the Hugging Face engine) or
            ``ctranslate2`` (the CTranslate2 engine); each sees GPUs through its own build.

    Returns:
        ``cpu`` or the CUDA device.

    Raises:
        ModelError: A CUDA device was asked for but the runtime sees none, or the name is unknown.
    """
    if device != "auto" and device != "cpu" and not device.startswith("cuda"):
        raise ModelError(f"unknown device '{device}'; use auto, cpu or cuda.")
    if device == "cpu":
        return device
    label = "CTranslate2" if runtime == "ctranslate2" else "PyTorch"
    has_gpu = _cuda_devices(runtime) > 0
    if device == "auto":
        return "cuda" if has_gpu else "cpu"
    if not has_gpu:
        raise ModelError(f"device '{device}' was requested but {label} sees no CUDA GPU; use --device cpu (or auto).")
    return device


def configure_generation(model: Any, processor: Any) -> None:
    """Fix the generation config: English-only prompt, or English transcription for multilingual.

    Args:
        model: A ``WhisperForConditionalGeneration``.
        processor: Its ``WhisperProcessor`` (token ids are looked up in its tokenizer).
    """
    gen = model.generation_config
    tok = processor.tokenizer

    def token_id(text: str) -> int | None:
        value = tok.convert_tokens_to_ids(text)
        # Unknown tokens map to the unk id (<|endoftext|> in Whisper): check the round trip instead.
        return value if isinstance(value, int) and tok.convert_ids_to_tokens(value) == text else None

    sot, eot, no_ts = token_id("<|startoftranscript|>"), token_id("<|endoftext|>"), token_id("<|notimestamps|>")
    if sot is None or eot is None or no_ts is None:
        raise ModelError("the model's tokenizer lacks Whisper's special tokens; it is not a Whisper tokenizer.")
    english_only = token_id("<|en|>") is None or model.config.vocab_size == 51864 or not getattr(gen, "is_multilingual", True)
    gen.decoder_start_token_id = sot
    gen.eos_token_id = eot
    gen.pad_token_id = eot
    gen.no_timestamps_token_id = no_ts
    gen.return_timestamps = False
    gen.forced_decoder_ids = None  # superseded by language/task; old Hub configs force language detection
    model.config.forced_decoder_ids = None
    if english_only:
        # Any lang_to_id makes HF detect the language first; the .en prompt is [sot, notimestamps].
        gen.is_multilingual = False
        for attr in ("lang_to_id", "task_to_id", "language", "task"):
            if hasattr(gen, attr):
                delattr(gen, attr)
    else:
        gen.is_multilingual = True
        if not getattr(gen, "lang_to_id", None):
            gen.lang_to_id = language_tokens(dict(zip(tok.all_special_tokens, tok.all_special_ids, strict=True)))
        if not getattr(gen, "task_to_id", None):
            gen.task_to_id = {"transcribe": token_id("<|transcribe|>"), "translate": token_id("<|translate|>")}
        gen.language = "en"
        gen.task = "transcribe"


def prompt_ids(model: Any) -> list[int]:
    """The decoder prompt the configured model starts from (e.g. ``[50257, 50362]`` for tiny.en)."""
    gen = model.generation_config
    ids = [gen.decoder_start_token_id]
    if getattr(gen, "is_multilingual", False):
        ids += [gen.lang_to_id[f"<|{gen.language}|>"], gen.task_to_id[gen.task]]
    return [*ids, gen.no_timestamps_token_id]


def load_hf(hf_dir: str | Path, device: str = "cpu") -> tuple[WhisperForConditionalGeneration, WhisperProcessor]:
    """Load a Hugging Face Whisper folder in float32, eval mode, with generation configured.

    Args:
        hf_dir: Folder with the model, processor and generation config (e.g. ``ResolvedModel.hf_dir``).
        device: ``cpu``, ``cuda`` (or ``cuda:N``) or ``auto``.

    Returns:
        ``(model, processor)``. The encoder's sinusoidal position table is frozen.

    Raises:
        ModelError: the folder is missing or not a loadable Whisper model.
    """
    import torch
    from transformers import WhisperForConditionalGeneration, WhisperProcessor

    hf_dir = Path(hf_dir)
    if not (hf_dir / "config.json").is_file():
        raise ModelError(f"{hf_dir} is not a Hugging Face model folder (no config.json); resolve the model first.")
    target = resolve_device(device)
    try:
        model = WhisperForConditionalGeneration.from_pretrained(hf_dir, dtype=torch.float32)
        processor = WhisperProcessor.from_pretrained(hf_dir)
    except (OSError, ValueError, KeyError, RuntimeError) as exc:
        raise ModelError(f"cannot load the Whisper model in {hf_dir}: {exc}".rstrip(".") + ". Re-create the folder.") from None
    # from_pretrained leaves the sinusoidal table trainable; Whisper never trains it.
    model.model.encoder.embed_positions.requires_grad_(False)
    configure_generation(model, processor)
    model.to(torch.device(target))  # type: ignore[arg-type]  # transformers wraps .to() with a self-typed decorator
    model.eval()
    log.debug("Loaded %s on %s (prompt %s)", hf_dir, target, prompt_ids(model))
    return model, processor
