"""Speech to text: engines (CTranslate2, transformers), bounded decoding, file transcription.

``load_engine(model, settings, workspace)`` gives an engine whose ``transcribe(audio)``
returns a :class:`Transcription` with confidence; ``hf_engine.generate_bounded`` is the
batched Hugging Face path shared with training and evaluation.
"""

from .engines import CT2Engine, Engine, HFEngine, load_engine
from .types import FileSegment, Segment, Transcription

__all__ = ["CT2Engine", "Engine", "FileSegment", "HFEngine", "Segment", "Transcription", "load_engine"]
