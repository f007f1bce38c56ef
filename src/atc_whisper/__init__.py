"""ATC Whisper: fine-tune and run OpenAI Whisper for air-traffic-control radio speech.

``from atc_whisper import Recognizer`` is the one-line way in (see :class:`Recognizer`);
the heavy parts (torch, CTranslate2, transformers) are imported only when a model is loaded.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

__all__ = ["SAMPLE_RATE", "Recognizer", "__version__"]


def __getattr__(name: str) -> Any:
    # Lazy, so that `import atc_whisper` (and `atc-whisper --help`) stays light.
    if name == "SAMPLE_RATE":
        from .audio.io import SAMPLE_RATE

        return SAMPLE_RATE
    if name == "Recognizer":
        from .api import Recognizer

        return Recognizer
    raise AttributeError(f"module 'atc_whisper' has no attribute {name!r}")
