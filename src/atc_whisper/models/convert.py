"""Convert a CTranslate2 Whisper folder into a Hugging Face Whisper folder.

Fine-tuning needs the PyTorch model; offline, the weights exist only as CTranslate2
conversions (``model.bin`` + ``config.json`` + ``tokenizer.json``). This module rebuilds
``WhisperForConditionalGeneration`` (float32), its processor and generation config from
such a folder, sizing everything from the checkpoint's own shapes.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ModelError
from ..fsutil import atomic_dir
from ..log import get_logger
from .ct2_format import Ct2Checkpoint, WhisperDims, read_ct2_whisper

log = get_logger(__name__)

# Whisper's timestamp tokens: <|0.00|> ... <|30.00|> in 20 ms steps = 1501 tokens, placed right
# after <|notimestamps|>. CTranslate2's tokenizer.json omits them although the embedding has rows for them.
N_TIMESTAMP_TOKENS = 1501
TIMESTAMP_STEP_S = 0.02
SOURCE_MARKER = "atc_whisper_source.json"


def _linear(ckpt: Ct2Checkpoint, prefix: str, hf: str, sd: dict[str, np.ndarray], bias: bool = True) -> None:
    sd[f"{hf}.weight"] = ckpt.get(f"{prefix}/weight")
    if bias:
        sd[f"{hf}.bias"] = ckpt.get(f"{prefix}/bias")


def _norm(ckpt: Ct2Checkpoint, prefix: str, hf: str, sd: dict[str, np.ndarray]) -> None:
    sd[f"{hf}.weight"] = ckpt.get(f"{prefix}/gamma")
    sd[f"{hf}.bias"] = ckpt.get(f"{prefix}/beta")


def _split_rows(ckpt: Ct2Checkpoint, prefix: str, parts: int, d_model: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
    weight, bias = ckpt.get(f"{prefix}/weight"), ckpt.get(f"{prefix}/bias")
    if weight.shape != (parts * d_model, d_model) or bias.shape != (parts * d_model,):
        raise ModelError(
            f"{ckpt.path}: fused projection '{prefix}' has shape {tuple(weight.shape)}, expected {(parts * d_model, d_model)}."
        )
    return (
        [weight[i * d_model : (i + 1) * d_model] for i in range(parts)],
        [bias[i * d_model : (i + 1) * d_model] for i in range(parts)],
    )


def _attention(ckpt: Ct2Checkpoint, prefix: str, hf: str, d: int, sd: dict[str, np.ndarray]) -> None:
    """Self-attention: CTranslate2 fuses q, k, v into one projection; HF's k_proj has no bias."""
    (wq, wk, wv), (bq, _bk, bv) = _split_rows(ckpt, f"{prefix}/linear_0", 3, d)
    sd.update({f"{hf}.q_proj.weight": wq, f"{hf}.q_proj.bias": bq, f"{hf}.k_proj.weight": wk,
               f"{hf}.v_proj.weight": wv, f"{hf}.v_proj.bias": bv})
    _linear(ckpt, f"{prefix}/linear_1", f"{hf}.out_proj", sd)


def _cross_attention(ckpt: Ct2Checkpoint, prefix: str, hf: str, d: int, sd: dict[str, np.ndarray]) -> None:
    """Cross-attention: q separate (linear_0), k and v fused (linear_1), output linear_2."""
    _linear(ckpt, f"{prefix}/linear_0", f"{hf}.q_proj", sd)
    (wk, wv), (_bk, bv) = _split_rows(ckpt, f"{prefix}/linear_1", 2, d)
    sd.update({f"{hf}.k_proj.weight": wk, f"{hf}.v_proj.weight": wv, f"{hf}.v_proj.bias": bv})
    _linear(ckpt, f"{prefix}/linear_2", f"{hf}.out_proj", sd)


def hf_state_dict(ckpt: Ct2Checkpoint, dims: WhisperDims) -> dict[str, np.ndarray]:
    """Map CTranslate2 variable names onto ``WhisperForConditionalGeneration`` parameter names."""
    d = dims.d_model
    sd: dict[str, np.ndarray] = {}
    for conv in ("conv1", "conv2"):
        _linear(ckpt, f"encoder/{conv}", f"model.encoder.{conv}", sd)
    sd["model.encoder.embed_positions.weight"] = ckpt.get("encoder/position_encodings/encodings")
    sd["model.decoder.embed_positions.weight"] = ckpt.get("decoder/position_encodings/encodings")
    sd["model.decoder.embed_tokens.weight"] = ckpt.get("decoder/embeddings/weight")
    for side in ("encoder", "decoder"):
        _norm(ckpt, f"{side}/layer_norm", f"model.{side}.layer_norm", sd)
        n_layers = dims.encoder_layers if side == "encoder" else dims.decoder_layers
        for i in range(n_layers):
            src, dst = f"{side}/layer_{i}", f"model.{side}.layers.{i}"
            _attention(ckpt, f"{src}/self_attention", f"{dst}.self_attn", d, sd)
            _norm(ckpt, f"{src}/self_attention/layer_norm", f"{dst}.self_attn_layer_norm", sd)
            if side == "decoder":
                _cross_attention(ckpt, f"{src}/attention", f"{dst}.encoder_attn", d, sd)
                _norm(ckpt, f"{src}/attention/layer_norm", f"{dst}.encoder_attn_layer_norm", sd)
            _linear(ckpt, f"{src}/ffn/linear_0", f"{dst}.fc1", sd)
            _linear(ckpt, f"{src}/ffn/linear_1", f"{dst}.fc2", sd)
            _norm(ckpt, f"{src}/ffn/layer_norm", f"{dst}.final_layer_norm", sd)
    return sd


def language_tokens(specials: dict[str, int]) -> dict[str, int]:
    """The language tokens (``<|en|>``, ``<|haw|>`` ...) among Whisper's special tokens.

    Every other special token (``<|transcribe|>``, ``<|notimestamps|>`` ...) has a longer name
    than the two- or three-letter language codes.
    """
    return {tok: i for tok, i in specials.items() if re.fullmatch(r"<\|[a-z]{2,3}\|>", tok)}


def _check_architecture(ckpt: Ct2Checkpoint) -> None:
    """Refuse variants of the Whisper spec that HF's Whisper cannot express."""
    expected = {"decoder/pre_norm": 1, "decoder/alibi": 0, "decoder/scale_embeddings": 0}
    for key, value in expected.items():
        if key in ckpt.scalars and int(ckpt.scalars[key]) != value:
            raise ModelError(f"{ckpt.path}: '{key}' = {ckpt.scalars[key]} is not a standard Whisper model (expected {value}).")


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelError(f"{path} is missing: a CTranslate2 Whisper folder needs it beside model.bin.") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelError(f"{path} cannot be read as JSON ({exc}); re-install or re-export the model.") from None
    if not isinstance(data, dict):
        raise ModelError(f"{path} is not a JSON object; re-install or re-export the model.")
    return data


def _tokenizer_with_timestamps(tokenizer_json: dict[str, Any], vocab_size: int, path: Path) -> tuple[dict[str, Any], dict[str, int]]:
    """Add the timestamp tokens CTranslate2's tokenizer.json leaves out; return it and the special ids."""
    added = tokenizer_json.get("added_tokens")
    if not isinstance(added, list) or not added:
        raise ModelError(f"{path} has no added (special) tokens; it is not a Whisper tokenizer.json.")
    specials = {a["content"]: int(a["id"]) for a in added if a.get("special")}
    for required in ("<|endoftext|>", "<|startoftranscript|>", "<|notimestamps|>"):
        if required not in specials:
            raise ModelError(f"{path} lacks the special token {required}; it is not a Whisper tokenizer.json.")
    last_id = max(int(a["id"]) for a in added)
    present = {a["content"] for a in added}
    if last_id == specials["<|notimestamps|>"] and "<|0.00|>" not in present:
        for i in range(N_TIMESTAMP_TOKENS):
            added.append({"id": last_id + 1 + i, "content": f"<|{i * TIMESTAMP_STEP_S:.2f}|>", "single_word": False,
                          "lstrip": False, "rstrip": False, "normalized": False, "special": False})
    total = max(int(a["id"]) for a in added) + 1
    if total != vocab_size:
        raise ModelError(
            f"{path} describes {total} tokens but the model's embedding has {vocab_size} rows; "
            "the tokenizer does not belong to this model."
        )
    return tokenizer_json, specials


def convert_ct2_to_hf(ct2_dir: str | Path, out_dir: str | Path, *, source_info: dict[str, Any] | None = None) -> Path:
    """Build a Hugging Face Whisper folder (fp32 model, processor, generation config) from CTranslate2.

    Args:
        ct2_dir: Folder with ``model.bin``, ``config.json`` and ``tokenizer.json``.
        out_dir: Folder to create; written atomically (replaced only when complete).
        source_info: Extra facts recorded in ``atc_whisper_source.json`` (cache keys).

    Returns:
        ``out_dir``.

    Raises:
        ModelError: the folder is incomplete or the checkpoint cannot be mapped.
    """
    ct2_dir, out_dir = Path(ct2_dir), Path(out_dir)
    ckpt = read_ct2_whisper(ct2_dir / "model.bin")
    _check_architecture(ckpt)
    dims = ckpt.dims()
    ct2_config = _read_json(ct2_dir / "config.json")
    tok_json, specials = _tokenizer_with_timestamps(_read_json(ct2_dir / "tokenizer.json"), dims.vocab_size,
                                                    ct2_dir / "tokenizer.json")
    eot, sot, no_ts = specials["<|endoftext|>"], specials["<|startoftranscript|>"], specials["<|notimestamps|>"]
    english_only = "<|en|>" not in specials or dims.english_only

    # Heavy imports only once the input is known to be good, so a bad file fails fast.
    import torch
    from transformers import (
        GenerationConfig,
        WhisperConfig,
        WhisperFeatureExtractor,
        WhisperForConditionalGeneration,
        WhisperProcessor,
        WhisperTokenizer,
    )

    config = WhisperConfig(
        vocab_size=dims.vocab_size, num_mel_bins=dims.num_mel_bins, d_model=dims.d_model,
        encoder_layers=dims.encoder_layers, encoder_attention_heads=dims.encoder_heads,
        decoder_layers=dims.decoder_layers, decoder_attention_heads=dims.decoder_heads,
        encoder_ffn_dim=dims.encoder_ffn_dim, decoder_ffn_dim=dims.decoder_ffn_dim,
        max_source_positions=dims.max_source_positions, max_target_positions=dims.max_target_positions,
        pad_token_id=eot, bos_token_id=eot, eos_token_id=eot, decoder_start_token_id=sot,
        # Suppression lists live in the generation config only: copies in the model config make
        # generate() warn about conflicting sources.
        suppress_tokens=None, begin_suppress_tokens=None,
        activation_function="gelu", scale_embedding=False, tie_word_embeddings=True,
    )
    torch.manual_seed(0)  # construction initialises weights that are all overwritten below
    model = WhisperForConditionalGeneration(config).float().eval()
    state = {k: torch.from_numpy(np.ascontiguousarray(v, dtype=np.float32)) for k, v in hf_state_dict(ckpt, dims).items()}
    expected = model.state_dict()
    for key, tensor in state.items():
        if key not in expected:
            raise ModelError(f"{ckpt.path}: internal mapping produced unknown parameter {key}.")
        if tuple(expected[key].shape) != tuple(tensor.shape):
            raise ModelError(
                f"{ckpt.path}: '{key}' has shape {tuple(tensor.shape)} but a Whisper of these sizes needs "
                f"{tuple(expected[key].shape)}; the file is not a consistent Whisper checkpoint."
            )
    # k_proj carries no bias in HF; proj_out is tied to embed_tokens.
    unset = [k for k in expected if k not in state and k != "proj_out.weight"]
    if unset:
        raise ModelError(f"{ckpt.path}: no weights for {unset[:5]}{' ...' if len(unset) > 5 else ''}.")
    model.load_state_dict(state, strict=False)
    model.tie_weights()
    # Sinusoidal encoder positions are fixed in Whisper; keep them out of training.
    model.model.encoder.embed_positions.requires_grad_(False)

    settings: dict[str, Any] = {
        "decoder_start_token_id": sot, "bos_token_id": eot, "eos_token_id": eot, "pad_token_id": eot,
        "max_length": dims.max_target_positions, "suppress_tokens": list(ct2_config.get("suppress_ids", [])),
        "begin_suppress_tokens": list(ct2_config.get("suppress_ids_begin", [220, eot])),
        "no_timestamps_token_id": no_ts, "is_multilingual": not english_only, "return_timestamps": False,
        "prev_sot_token_id": specials.get("<|startofprev|>"), "max_initial_timestamp_index": 50,
    }
    if ct2_config.get("alignment_heads"):
        settings["alignment_heads"] = [list(map(int, pair)) for pair in ct2_config["alignment_heads"]]
    if not english_only:
        # Only here: any lang_to_id on an English-only model makes HF run language detection.
        settings.update(
            lang_to_id=language_tokens(specials),
            task_to_id={"transcribe": specials["<|transcribe|>"], "translate": specials["<|translate|>"]},
            language="en", task="transcribe",
        )
    gen = GenerationConfig(**settings)
    model.generation_config = gen

    with atomic_dir(out_dir) as tmp:
        tok_dir = tmp / ".tokenizer_src"
        tok_dir.mkdir()
        (tok_dir / "tokenizer.json").write_text(json.dumps(tok_json, ensure_ascii=False), encoding="utf-8")
        extra = [t for t in sorted(specials, key=specials.__getitem__) if t != "<|endoftext|>"]
        tokenizer = WhisperTokenizer.from_pretrained(tok_dir, extra_special_tokens=extra, pad_token="<|endoftext|>")
        feature_extractor = WhisperFeatureExtractor(feature_size=dims.num_mel_bins)
        processor = WhisperProcessor(feature_extractor=feature_extractor, tokenizer=tokenizer)
        model.save_pretrained(tmp)
        processor.save_pretrained(tmp)
        for leftover in tok_dir.iterdir():
            leftover.unlink()
        tok_dir.rmdir()
        ensure_preprocessor_config(tmp)
        info = {"converted_from": str(ct2_dir), "model_bin_dtypes": sorted(ckpt.source_dtypes),
                "english_only": english_only, **(source_info or {})}
        (tmp / SOURCE_MARKER).write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    log.info("Converted %s (%d layers, d_model %d, %s) to %s", ct2_dir, dims.encoder_layers, dims.d_model,
             "English-only" if english_only else "multilingual", out_dir)
    return out_dir


def ensure_preprocessor_config(hf_dir: Path) -> None:
    """Write ``preprocessor_config.json`` when transformers 5 only wrote ``processor_config.json``.

    faster-whisper and older transformers read the feature extractor (mel count) from
    ``preprocessor_config.json``; without it they assume 80 mel bins.
    """
    target = hf_dir / "preprocessor_config.json"
    if target.exists():
        return
    combined = hf_dir / "processor_config.json"
    if not combined.exists():
        return
    data = json.loads(combined.read_text(encoding="utf-8"))
    feature = data.get("feature_extractor", data)
    if isinstance(feature, dict) and "feature_size" in feature:
        target.write_text(json.dumps(feature, indent=2) + "\n", encoding="utf-8")
