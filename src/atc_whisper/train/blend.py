"""Blend the tuned weights with the pretrained ones (weight-space ensembling, as in WiSE-FT).

Fine-tuning on ATC phraseology alone teaches the decoder that every transmission is a
clearance: on ordinary speech a tuned model writes "golf four gatwick" where someone said
"don't forget". Averaging the tuned weights with the pretrained ones gives most of that
robustness back for a small part of the in-domain gain (Wortsman et al., "Robust fine-tuning
of zero-shot models", 2022). Two shares, because the parts forget differently:

* ``train.base_blend_embeddings`` for the token embeddings, which Whisper ties to its output
  layer: there a tuned model learns to prefer ATC words in every context;
* ``train.base_blend`` for every other weight.

``w = (1 - share) * w_tuned + share * w_pretrained``; 0 (the default) keeps the tuned weights.
Measured on the held-out synthetic test set and the plain-English forgetting check (README):
it gives ordinary speech back but costs callsign accuracy, so it is a choice, not a default.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import ConfigError, ModelError
from ..log import get_logger

log = get_logger(__name__)


def is_embedding(name: str) -> bool:
    """Whether a parameter is the token embedding / the output layer tied to it."""
    return "embed_tokens" in name or name.startswith("proj_out")


def blend_with_base(model: Any, base: Any, *, share: float, embedding_share: float) -> dict[str, int]:
    """Move ``model``'s weights towards ``base``'s, in place.

    Args:
        model: The tuned Whisper model (a torch module).
        base: The pretrained model it was tuned from (same architecture).
        share: Share of the pretrained weights for every parameter but the embeddings, 0-1.
        embedding_share: Share for the token embeddings (and the output layer tied to them), 0-1.

    Returns:
        How many parameter tensors were blended, by kind (``embeddings``, ``other``).

    Raises:
        ConfigError: A share outside 0-1.
        ModelError: The two models' parameters differ in names or shapes.
    """
    import torch

    for label, value in (("share", share), ("embedding_share", embedding_share)):
        if not 0.0 <= value <= 1.0:
            setting = "train.base_blend" if label == "share" else "train.base_blend_embeddings"
            raise ConfigError(f"{label} must be within 0-1, got {value}; set {setting} to a share between 0 and 1.")
    counts = {"embeddings": 0, "other": 0}
    if share == 0.0 and embedding_share == 0.0:
        return counts
    base_params = dict(base.named_parameters())
    with torch.no_grad():
        for name, param in model.named_parameters():
            if not param.is_floating_point():
                continue
            other = base_params.get(name)
            if other is None or other.shape != param.shape:
                raise ModelError(f"cannot blend {name}: the pretrained model has "
                                 f"{'no such weight' if other is None else tuple(other.shape)}; blend only with the "
                                 "model training started from, or set train.base_blend = 0 and "
                                 "train.base_blend_embeddings = 0.")
            embedding = is_embedding(name)
            s = embedding_share if embedding else share
            if s > 0.0:
                # w + s (w_base - w): a weight training did not move (the encoder of a
                # decoder-only run) stays bit-for-bit the pretrained one.
                param.add_(other.to(param.device, param.dtype) - param, alpha=s)
                counts["embeddings" if embedding else "other"] += 1
    return counts


def blend_saved(model: Any, base_dir: Path, *, share: float, embedding_share: float,
                base: Any = None) -> dict[str, int]:
    """:func:`blend_with_base` with the pretrained model ``base``, or loaded from its Hugging Face folder.

    ``base`` is only read; training passes its distillation teacher, which is that model.
    """
    from ..models.load import load_hf

    if share == 0.0 and embedding_share == 0.0:
        return {"embeddings": 0, "other": 0}
    if base is None:
        base, _ = load_hf(base_dir, device="cpu")
    counts = blend_with_base(model, base, share=share, embedding_share=embedding_share)
    log.info("Blended %.0f %% of the pretrained weights back (%.0f %% for the token embeddings).",
             100 * share, 100 * embedding_share)
    return counts
