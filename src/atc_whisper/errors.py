"""Typed exceptions whose messages name the fix.

The library raises these; the CLI turns any of them into one ``Error: ...`` line and exit
code 1 (a ``--debug`` flag shows the traceback). Messages should say what was wrong, where,
and what to do about it.
"""

from __future__ import annotations


class AtcWhisperError(Exception):
    """Base class of every error the user can fix."""


class ConfigError(AtcWhisperError):
    """A setting is missing, malformed or out of range."""


class WorkspaceError(AtcWhisperError):
    """The workspace folder cannot be created or read."""


class AudioError(AtcWhisperError):
    """An audio file is missing, unreadable, empty, silent or too long."""


class ModelError(AtcWhisperError):
    """A model cannot be resolved, loaded, converted or exported."""


class DataError(AtcWhisperError):
    """Training or evaluation data is missing or inconsistent (catalogue, manifests, corpora)."""


class TrainingError(AtcWhisperError):
    """A training run cannot start or had to stop (non-finite loss, out of memory)."""


class TTSError(AtcWhisperError):
    """A text-to-speech engine is missing or failed."""


class LiveSourceError(AtcWhisperError):
    """A live audio source (device, stream, stdin) cannot be opened or decoded."""
