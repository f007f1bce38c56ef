"""Training data: the SQLite catalogue, splits, synthetic preparation and corpus importers.

Everything that knows which audio clips exist, what was said in them and which split they
belong to lives here. Other parts of the toolkit read samples only through
:class:`~atc_whisper.data.catalogue.Catalogue`.
"""

from __future__ import annotations

from .catalogue import Catalogue, Recording, Sample

__all__ = ["Catalogue", "Recording", "Sample"]
