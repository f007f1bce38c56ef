"""Short encoder passes: which frames a clip is encoded over and what completes the encoder output.

Whisper's encoder always takes a 30 s window, and for a radio transmission of a few seconds most
of it is padding: the encoder pass costs as much as a 30 s clip, several times the decoding. A
short pass encodes only the clip and ``decode.encoder_pad_s`` of silence after it (the log-mel of
those frames is exactly that of the padded window) and completes the encoder output with the
output of a window of silence at the clip's padding level, up to ``decode.context_s`` (the
decoder's cross-attention over all 1500 positions of a 30 s window costs more than generating a
short transmission's text). Without the completion (the output cut at the clip and its pad)
tiny.en drops words.

These are the rules every path shares, so that training sees exactly the encoder states that
inference gives the decoder: the CTranslate2 engine, the Hugging Face engine and the training
cache all take their frame counts, context lengths and padding levels from here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..audio.io import SAMPLE_RATE

#: Whisper's feature frames per second (hop of 160 samples at 16 kHz).
FRAMES_PER_SECOND = 100
#: Mel frames of Whisper's stock 30 s window (the only window length Whisper was trained on).
STOCK_ENCODER_FRAMES = 3000
#: Short encoder inputs are rounded up to this many mel frames (1 s), so a batch's clips share one
#: length and padding levels repeat.
FRAME_STEP = 100
#: Padding levels of the silence completion are rounded to this step (log-mel units, after
#: Whisper's scaling; a clip's level is its loudest frame minus 2): a handful of levels covers
#: real recordings, each costing one encoder pass over a silent context-long window the first time it is met.
LEVEL_STEP = 0.25
#: With a context shorter than the whole window, tiny.en's no-speech probability runs higher, by a
#: median of 1.03 in log-odds on 139 speech clips and 0.58 on 64 clips of radio static (10 s
#: context against the whole window, measured with base tiny.en): uncorrected, 25 of 278 speech
#: clips would pass ``decode.no_speech_threshold`` and be emptied, against 1 with the whole
#: window. The reported probability is shifted back by this much, so the threshold keeps its
#: openai/whisper meaning: then 1 of 278 speech clips and 60 of 64 static clips are judged silent
#: (whole window: 1 and 54).
NO_SPEECH_LOGIT_SHIFT = 1.0


@dataclass(frozen=True)
class ShortWindow:
    """The short-pass geometry of ``[decode]``: frames encoded per clip, context the decoder reads.

    Attributes:
        pad_s: Seconds of silence encoded after each clip (``decode.encoder_pad_s``); 30 or more
            encodes Whisper's whole window.
        context_s: Seconds of encoder output the decoder attends to (``decode.context_s``), never
            less than the clip and its pad.
    """

    pad_s: float
    context_s: float

    @classmethod
    def of(cls, decode: Any) -> ShortWindow:
        """The window of a ``DecodeSettings``."""
        return cls(float(decode.encoder_pad_s), float(decode.context_s))

    @property
    def whole(self) -> bool:
        """Whether every clip is encoded over Whisper's whole 30 s window."""
        return self.pad_s * FRAMES_PER_SECOND >= STOCK_ENCODER_FRAMES

    def encoder_frames(self, samples: int) -> int:
        """Mel frames encoded for a clip of ``samples`` samples at 16 kHz (its own length, so a
        clip's transcript does not depend on the clips batched with it)."""
        if self.whole:
            return STOCK_ENCODER_FRAMES
        needed = samples / (SAMPLE_RATE // FRAMES_PER_SECOND) + self.pad_s * FRAMES_PER_SECOND
        return int(min(STOCK_ENCODER_FRAMES, math.ceil(needed / FRAME_STEP) * FRAME_STEP))

    def context_frames(self, encoded_frames: int) -> int:
        """Mel frames' worth of encoder output the decoder attends to for a clip encoded over
        ``encoded_frames`` (the context, at least what was encoded, in ``FRAME_STEP`` s)."""
        if self.whole:
            return STOCK_ENCODER_FRAMES
        wanted = math.ceil(round(self.context_s * FRAMES_PER_SECOND) / FRAME_STEP) * FRAME_STEP
        return int(min(STOCK_ENCODER_FRAMES, max(encoded_frames, wanted)))


def padding_level(features: np.ndarray) -> float:
    """The log-mel value of a clip's silence padding: its last frame, which a pad of at least one
    frame leaves pure padding (Whisper clamps silence to the loudest frame minus 8, then scales)."""
    return float(np.asarray(features)[..., -1].min())


def level_key(level: float) -> float:
    """A padding level rounded to :data:`LEVEL_STEP`: the key of its cached silence completion."""
    return round(level / LEVEL_STEP) * LEVEL_STEP


def silence_features(level: float, frames: int, mels: int) -> np.ndarray:
    """``[1, mels, frames]`` log-mel features of a window of silence at ``level``."""
    return np.full((1, mels, frames), level_key(level), np.float32)


def shortened(positions: int) -> bool:
    """Whether a context of ``positions`` encoder positions is shorter than the whole window."""
    return positions < STOCK_ENCODER_FRAMES // 2


def whole_window_no_speech(probability: float) -> float:
    """A no-speech probability read with a shortened context, on the whole window's scale
    (:data:`NO_SPEECH_LOGIT_SHIFT`)."""
    p = min(max(float(probability), 1e-7), 1 - 1e-7)
    return 1.0 / (1.0 + math.exp(-(math.log(p / (1 - p)) - NO_SPEECH_LOGIT_SHIFT)))
