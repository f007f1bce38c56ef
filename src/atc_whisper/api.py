"""The one-line Python API: ``Recognizer(model).transcribe(file)``.

In the spirit of ``faster_whisper.WhisperModel(path).transcribe(file)``::

    from atc_whisper import Recognizer

    recognizer = Recognizer("models/atc_whisper")          # or "tiny.en", a CTranslate2 folder, a Hub id
    for segment in recognizer.transcribe("tower.wav"):
        print(segment.start_s, segment.role, segment.text, segment.callsign, segment.readback)

No settings object or workspace is needed: the defaults of ``config.py`` apply and converted
models are cached in the user's cache folder. Both can be passed, and then behave as on the
command line. The segments are the :class:`~atc_whisper.transcribe.types.FileSegment` objects
``atc-whisper transcribe`` prints, made by the same functions (engine loading, segmentation into
transmissions, batched decoding, callsign snapping and parsing, the conversation's roles and
readback checks), so the two give the same results.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .config import Settings, load_settings
from .workspace import Workspace, user_cache_dir

if TYPE_CHECKING:
    import numpy as np

    from .transcribe.engines import Engine
    from .transcribe.types import FileSegment

def cache_workspace() -> Workspace:
    """The workspace used without one: the user cache (:func:`atc_whisper.workspace.user_cache_dir`).
    Only its ``models/`` caches are written."""
    return Workspace.at(user_cache_dir())


class Recognizer:
    """A loaded ATC speech recogniser.

    Args:
        model: Hugging Face id, alias (``tiny.en``, ``base``), local Hugging Face folder (e.g.
            a fine-tuned ``models/atc_whisper``) or CTranslate2 folder; default
            ``settings.model.name``.
        settings: Settings to use; default: the workspace's ``atc_whisper.toml`` when a
            workspace is given, else the built-in defaults.
        workspace: A workspace (folder or :class:`~atc_whisper.workspace.Workspace`): its
            settings, its ``decode.callsigns_file`` and its model caches; default: the user
            cache (:func:`cache_workspace`).
        engine: ``auto`` (CTranslate2 when installed), ``ct2`` or ``hf``; default ``decode.engine``.
        callsigns: Known callsigns (a list, or a file with one per line): used as the decoding
            prompt and to snap recognised callsigns; default ``decode.callsigns_file``.

    Raises:
        ModelError: The model cannot be found or loaded.
        DataError: The callsign file is missing or empty.
    """

    def __init__(
        self,
        model: str | os.PathLike[str] | None = None,
        *,
        settings: Settings | None = None,
        workspace: str | os.PathLike[str] | Workspace | None = None,
        engine: str | None = None,
        callsigns: Sequence[str] | str | os.PathLike[str] | None = None,
    ) -> None:
        from .transcribe.annotate import known_callsigns
        from .transcribe.engines import load_engine

        if workspace is None:
            self.workspace = cache_workspace()
        else:
            self.workspace = workspace if isinstance(workspace, Workspace) else Workspace.at(workspace)
        if settings is None:
            settings = load_settings(workspace_config=self.workspace.config_path) if workspace is not None else Settings()
        self.settings = settings
        if callsigns is None or isinstance(callsigns, (str, os.PathLike)):
            self.callsigns = known_callsigns(settings, self.workspace, None if callsigns is None else Path(callsigns))
        else:
            self.callsigns = [c for c in callsigns if c.strip()] or None
        self.model_name = str(model) if model is not None else settings.model.name
        self.engine: Engine = load_engine(self.model_name, settings, self.workspace, engine=engine)

    def transcribe(self, audio: str | os.PathLike[str] | np.ndarray, *,
                   callsigns: Sequence[str] | None = None) -> Iterator[FileSegment]:
        """Transcribe a recording of any length, one segment per transmission, as it goes.

        The recording is cut into transmissions as ``atc-whisper transcribe`` cuts it
        (``decode.segmentation``: the ``[segment]`` voice detector, or fixed windows), decoded in
        batches and followed as a conversation (speaker role, exchange, readback check).

        Args:
            audio: An audio file (wav, flac, ogg, mp3, m4a; any rate and channels), or 16 kHz
                mono float32 samples.
            callsigns: Known callsigns for this recording only (default: the recogniser's).

        Yields:
            :class:`~atc_whisper.transcribe.types.FileSegment` objects: times in the file, text,
            confidence (``avg_logprob``, ``no_speech_prob``, ``compression_ratio``,
            ``low_confidence`` and ``reasons``), ``callsign``, ``commands``, ``role``,
            ``role_score``, ``exchange`` and ``readback``.

        Raises:
            AudioError: The file is missing, not audio, corrupt, empty or silent.
        """
        from .transcribe.files import transcribe_file

        known = list(callsigns) if callsigns is not None else self.callsigns
        if isinstance(audio, (str, os.PathLike)):
            yield from transcribe_file(os.fspath(audio), self.engine, self.settings, callsigns=known)
            return
        import numpy as np

        from .audio.io import check_speech

        samples = np.asarray(audio, dtype=np.float32)
        check_speech(samples)
        yield from transcribe_file("<array>", self.engine, self.settings, callsigns=known, audio=samples)

    def __repr__(self) -> str:
        return f"Recognizer({self.model_name!r}, engine={getattr(self.engine, 'name', '?')!r})"


def transcribe(audio: str | os.PathLike[str], model: str | os.PathLike[str] | None = None,
               **options: Any) -> list[FileSegment]:
    """``Recognizer(model, **options).transcribe(audio)`` as a list, for a one-off call."""
    return list(Recognizer(model, **options).transcribe(audio))
