"""Fine-tuning Whisper on ATC speech: trainer setup, monitoring, performance logging.

The entry point is :func:`train_model` (``atc-whisper train`` and ``atc-whisper run`` call
it). Importing this package is cheap; torch and transformers load only once a run has
passed its checks.
"""

from __future__ import annotations

from .api import TrainResult, train_model

__all__ = ["TrainResult", "train_model"]
