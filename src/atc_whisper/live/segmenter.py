"""Moved to :mod:`atc_whisper.audio.segment` (file and live transcription share it); kept as an alias."""

from ..audio.segment import Chunk, Segmenter, Transmission, segment_array

__all__ = ["Chunk", "Segmenter", "Transmission", "segment_array"]
