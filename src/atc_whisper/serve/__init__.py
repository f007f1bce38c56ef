"""A live web view and a local HTTP API over the live runner, the engines and the catalogue.

``atc-whisper serve`` runs one process: the frequencies it listens to (each a live session of
:mod:`atc_whisper.live`), one engine shared by them and by uploads (:mod:`.scheduler`, live
audio first), the page (:mod:`.static`, plain HTML/JS/CSS shipped in the package) fed by
Server-Sent Events (:mod:`.hub`), the transcript search and correction API and an
OpenAI-compatible ``POST /v1/audio/transcriptions`` (:mod:`.app`, :mod:`.uploads`), behind
one guard for host, token and body size (:mod:`.guard`).

FastAPI, uvicorn and python-multipart are the ``serve`` extra; nothing here is imported by
the rest of the toolkit.
"""

from __future__ import annotations

from .frequencies import FrequencySpec, gather_specs, parse_source
from .server import ServeOptions, serve

__all__ = ["FrequencySpec", "ServeOptions", "gather_specs", "parse_source", "serve"]
