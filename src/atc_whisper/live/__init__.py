"""Live transcription of ATC radio: sources -> VAD segmentation -> recogniser -> outputs.

The pieces, each usable alone:

* :mod:`.sources` - sound card, file, raw PCM pipe, network stream, all as numbered chunks;
* :mod:`atc_whisper.audio.segment` - VAD segmentation into :class:`Transmission` objects (shared with file transcription);
* :mod:`.runner` - the threaded loop (:class:`LiveSession`) with a never-dropping lag queue;
* :mod:`.outputs` and :mod:`.view` - JSON lines, catalogue, saved audio, console.

:func:`open_source` picks the source from command-line style arguments.
"""

from __future__ import annotations

from ..audio.io import SAMPLE_RATE
from ..audio.segment import Segmenter, Transmission
from ..config import Settings
from ..errors import LiveSourceError
from .runner import LagQueue, LiveRecord, LiveSession, LiveSummary
from .sources import (
    AudioSource,
    Chunk,
    DeviceSource,
    FileSource,
    PcmSource,
    StreamSource,
    list_input_devices,
)


def open_source(
    settings: Settings,
    *,
    device: str | None = None,
    file: str | None = None,
    realtime: bool = False,
    stdin: bool = False,
    rate: int = SAMPLE_RATE,
    fmt: str = "s16le",
    channels: int = 1,
    url: str | None = None,
) -> AudioSource:
    """Build the one source the arguments ask for (the default input device when none) and open it.

    Raises:
        LiveSourceError: several sources named, or the source cannot be opened.
    """
    chosen = [name for name, on in (("--file", file), ("--stdin", stdin), ("--url", url), ("--device", device)) if on]
    if len(chosen) > 1:
        raise LiveSourceError(f"choose one source, not {' and '.join(chosen)}.")
    source: AudioSource
    if file:
        source = FileSource(file, realtime=realtime)
    elif stdin:
        source = PcmSource(rate=rate, fmt=fmt, channels=channels)
    elif url:
        live = settings.live
        source = StreamSource(url, reconnect_max_s=live.reconnect_max_s, reconnect_attempts=live.reconnect_attempts,
                              read_timeout_s=live.stream_timeout_s)
    else:
        source = DeviceSource(device)
    source.open()
    return source


__all__ = [
    "AudioSource", "Chunk", "DeviceSource", "FileSource", "LagQueue", "LiveRecord", "LiveSession", "LiveSummary",
    "PcmSource", "Segmenter", "StreamSource", "Transmission", "list_input_devices", "open_source",
]
