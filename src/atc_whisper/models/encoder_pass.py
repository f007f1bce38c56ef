"""Whisper's encoder run over any number of mel frames, and split at a layer.

transformers' ``WhisperEncoder.forward`` insists on the stock 30 s window; a short encoder pass
(:mod:`~atc_whisper.transcribe.window`) encodes only a clip and its pad, as CTranslate2 does when
given fewer frames: the same convolutions, the first positions of the sinusoidal table, the same
layers. Splitting the pass at a layer lets training cache the frozen lower layers' output once per
clip and run only the top layers it tunes at every step (``train.encoder_layers``).

``upper(lower(features, n), n)`` is the whole encoder, for any ``n``; with ``n`` equal to the
number of layers the lower part is the whole encoder (final layer norm included) and the upper
part does nothing.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn


def layer_count(encoder: Any) -> int:
    """Transformer layers of a Whisper encoder (4 for tiny, 6 for base)."""
    return len(encoder.layers)


def lower(encoder: Any, features: torch.Tensor, layers: int) -> torch.Tensor:
    """``[batch, mels, frames]`` log-mel features -> the hidden states after the first ``layers``
    layers, ``[batch, frames / 2, d_model]`` (after the final layer norm when ``layers`` is all of them).

    Raises:
        ValueError: ``layers`` is out of range or the features are longer than the encoder's window.
    """
    total = layer_count(encoder)
    if not 0 <= layers <= total:
        raise ValueError(f"the encoder has {total} layers; cannot split it after layer {layers}")
    hidden = nn.functional.gelu(encoder.conv1(features))
    hidden = nn.functional.gelu(encoder.conv2(hidden)).permute(0, 2, 1)
    positions = hidden.shape[1]
    if positions > encoder.embed_positions.weight.shape[0]:
        raise ValueError(f"{features.shape[-1]} mel frames are more than the encoder's window "
                         f"({2 * encoder.embed_positions.weight.shape[0]} frames)")
    hidden = hidden + encoder.embed_positions.weight[:positions]
    hidden = nn.functional.dropout(hidden, p=encoder.dropout, training=encoder.training)
    for layer in encoder.layers[:layers]:
        hidden = layer(hidden, None)
    return encoder.layer_norm(hidden) if layers == total else hidden


def upper(encoder: Any, hidden: torch.Tensor, layers: int) -> torch.Tensor:
    """The rest of the encoder over :func:`lower`'s output: layers ``layers`` onwards and the final
    layer norm (nothing when ``layers`` is all of them)."""
    total = layer_count(encoder)
    if layers >= total:
        return hidden
    for layer in encoder.layers[layers:]:
        hidden = layer(hidden, None)
    return encoder.layer_norm(hidden)


def encode(encoder: Any, features: torch.Tensor) -> torch.Tensor:
    """The whole encoder over ``features`` of any length up to its window."""
    return lower(encoder, features, layer_count(encoder))
