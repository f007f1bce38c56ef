"""The frequencies a server listens to: each one a live source run by the live runner.

Every frequency is a :class:`~atc_whisper.live.runner.LiveSession` on its own thread - the
same capture -> segment -> queue -> recognise loop as ``atc-whisper live``, not a copy - whose
recogniser decodes through the server's shared engine at live priority. Its sinks are the
live mode's (saved audio, the JSON-lines file, the catalogue) plus :class:`PublishSink`, which
hands each stored transmission to the page.

Sources are given as ``NAME=SPEC`` (``--source``), or by kind (``--url``, ``--file``,
``--device``, ``--stdin``) and then named after what they are. SPEC is a URL
(``http://…``, ``https://…``, ``icecast://…``), ``file:PATH``, ``device:NAME|INDEX``,
``stdin`` or a path to an audio file.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..audio.io import SAMPLE_RATE
from ..config import Settings
from ..errors import AtcWhisperError, LiveSourceError
from ..log import get_logger
from ..workspace import Workspace
from .hub import Hub

log = get_logger(__name__)

KINDS = ("url", "file", "device", "stdin")
_URL = re.compile(r"^[a-z][a-z0-9+.-]*://", re.IGNORECASE)


@dataclass(frozen=True)
class FrequencySpec:
    """One source to listen to.

    Attributes:
        name: What the page calls it ("LKPR Radar"); stored as the transcripts' ``source``.
        kind: url, file, device or stdin.
        target: The URL, file path or device (empty for stdin).
    """

    name: str
    kind: str
    target: str = ""


def parse_source(text: str) -> FrequencySpec:
    """Read one ``--source NAME=SPEC``.

    Raises:
        LiveSourceError: no name, or a SPEC that is none of the accepted forms.
    """
    name, sep, spec = text.partition("=")
    name, spec = name.strip(), spec.strip()
    if not sep or not name or not spec:
        raise LiveSourceError(
            f"--source {text!r} must be NAME=SPEC, e.g. --source \"LKPR Radar=http://example.net/feed.mp3\" "
            "(SPEC: a URL, file:PATH, device:NAME, stdin or an audio file)."
        )
    if _URL.match(spec):
        return FrequencySpec(name, "url", spec)
    if spec.lower() in ("stdin", "-"):
        return FrequencySpec(name, "stdin")
    if spec.lower().startswith("device:"):
        return FrequencySpec(name, "device", spec[len("device:"):].strip())
    if spec.lower().startswith("file:"):
        return FrequencySpec(name, "file", spec[len("file:"):].strip())
    if Path(spec).expanduser().is_file():
        return FrequencySpec(name, "file", spec)
    raise LiveSourceError(
        f"--source {text!r}: {spec!r} is not a URL, file:PATH, device:NAME, stdin or an existing audio file."
    )


def default_name(kind: str, target: str) -> str:
    """A frequency name for an unnamed source: the stream's or file's name, the device, "stdin"."""
    if kind == "url":
        tail = target.rstrip("/").rsplit("/", 1)[-1]
        return Path(tail).stem or target
    if kind == "file":
        return Path(target).stem or target
    if kind == "device":
        return f"device {target}" if target else "default input"
    return "stdin"


def gather_specs(sources: Sequence[str] = (), *, urls: Sequence[str] = (), files: Sequence[str] = (),
                 devices: Sequence[str] = (), stdin: bool = False) -> list[FrequencySpec]:
    """Every source of the command line, each with a unique name (a repeated one gets " 2", " 3" …).

    Raises:
        LiveSourceError: a malformed ``--source``, or standard input named twice.
    """
    specs = [parse_source(s) for s in sources]
    specs += [FrequencySpec(default_name("url", u), "url", u) for u in urls]
    specs += [FrequencySpec(default_name("file", f), "file", f) for f in files]
    specs += [FrequencySpec(default_name("device", d), "device", d) for d in devices]
    if stdin:
        specs.append(FrequencySpec("stdin", "stdin"))
    if sum(s.kind == "stdin" for s in specs) > 1:
        raise LiveSourceError("standard input can feed one frequency only; use --stdin (or stdin in --source) once.")
    seen: dict[str, int] = {}
    unique = []
    for spec in specs:
        count = seen.get(spec.name.lower(), 0) + 1
        seen[spec.name.lower()] = count
        unique.append(spec if count == 1 else FrequencySpec(f"{spec.name} {count}", spec.kind, spec.target))
    return unique


def slug(name: str) -> str:
    """A file-name-safe form of a frequency name ("LKPR Radar" -> "lkpr-radar")."""
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "frequency"


class _Shared:
    """A sink used by several frequencies: writes are serialised, closing is left to the owner."""

    def __init__(self, sink: Any, lock: threading.Lock) -> None:
        self.sink = sink
        self.lock = lock

    def write(self, record: Any, transmission: Any) -> None:
        with self.lock:
            self.sink.write(record, transmission)

    def close(self) -> None:
        """Nothing: :class:`Frequencies` closes the shared sink once every frequency has stopped."""


class PublishSink:
    """Stores a transmission (JSON lines, catalogue) and then tells the page about it.

    One object serves every frequency; the lock keeps the catalogue id of a record paired
    with the record.
    """

    def __init__(self, workspace: Workspace, hub: Hub, *, jsonl: Path | None, catalogue: bool = True) -> None:
        from ..live.outputs import CatalogueSink, JsonlSink

        self.hub = hub
        self.lock = threading.Lock()
        self.jsonl = JsonlSink(jsonl) if jsonl is not None else None
        self.catalogue = CatalogueSink(workspace.db_path, root=workspace.root) if catalogue else None

    def write(self, record: Any, transmission: Any) -> None:
        from .views import transmission_json

        with self.lock:
            if self.jsonl is not None:
                self.jsonl.write(record, transmission)
            if self.catalogue is None:
                self.hub.publish("transmission", transmission_json({**record.as_dict(), "id": None}))
                return
            self.catalogue.write(record, transmission)
            row = self.catalogue.catalogue.transcript(self.catalogue.ids[-1])
        if row is not None:
            self.hub.publish("transmission", transmission_json(row))

    def close(self) -> None:
        """Flush and close the files and the catalogue (once, after every frequency stopped)."""
        if self.jsonl is not None:
            self.jsonl.close()
        if self.catalogue is not None:
            self.catalogue.close()


class Frequency:
    """One named source and its live session, run on a thread."""

    def __init__(self, spec: FrequencySpec, source: Any) -> None:
        self.spec = spec
        self.source = source
        self.described = source.description
        self.session: Any = None
        self.thread: threading.Thread | None = None
        self.state = "opened"
        self.message = ""
        self.summary: Any = None

    def status(self) -> dict[str, Any]:
        """What the page and /api/health show about this frequency."""
        data = {"name": self.spec.name, "kind": self.spec.kind, "source": self.described, "state": self.state,
                "message": self.message}
        if self.session is not None:
            s = self.session.summary
            data.update(transmissions=s.transmissions, p95_latency_s=round(s.p95_latency_s, 3),
                        behind=self.session.queue.behind)
        return data


class Frequencies:
    """Opens, runs and stops every frequency of a server.

    Args:
        specs: The sources.
        settings: Resolved settings (``[live]`` for segmentation; ``serve.save_audio``).
        workspace: Where audio, the JSON-lines file and the catalogue live.
        hub: Where the page hears about new transmissions and frequency states.
        realtime: Replay file sources at real-time pace.
        rate, fmt, channels: The PCM layout of a stdin source.
    """

    def __init__(self, specs: Sequence[FrequencySpec], settings: Settings, workspace: Workspace, hub: Hub, *,
                 realtime: bool = False, rate: int = SAMPLE_RATE, fmt: str = "s16le", channels: int = 1,
                 jsonl: Path | None = None, catalogue: bool = True) -> None:
        self.specs = list(specs)
        self.settings = settings
        self.workspace = workspace
        self.hub = hub
        self.realtime = realtime
        self.pcm = {"rate": rate, "fmt": fmt, "channels": channels}
        self.jsonl = jsonl
        self.use_catalogue = catalogue
        self.items: list[Frequency] = []
        self.sink: PublishSink | None = None

    def open(self) -> None:
        """Open every source (before any model is loaded, so a bad URL fails at once).

        Raises:
            LiveSourceError: a source cannot be opened; the ones already open are closed.
        """
        from ..live import open_source

        try:
            for spec in self.specs:
                kwargs: dict[str, Any] = {}
                if spec.kind == "url":
                    kwargs["url"] = spec.target
                elif spec.kind == "file":
                    kwargs.update(file=spec.target, realtime=self.realtime)
                elif spec.kind == "device":
                    kwargs["device"] = spec.target or None
                else:
                    kwargs.update(stdin=True, **self.pcm)
                try:
                    source = open_source(self.settings, **kwargs)
                except LiveSourceError as exc:
                    raise LiveSourceError(f"frequency {spec.name!r}: {exc}") from None
                self.items.append(Frequency(spec, source))
                # The live runner reports a transmission's source by this description, so the
                # catalogue and the page file it under the frequency's name.
                source.description = spec.name
        except BaseException:
            for item in self.items:
                item.source.close()
            raise

    def start(self, recogniser: Any, *, callsigns: Sequence[str] | None = None) -> None:
        """Start a live session per frequency, decoding with ``recogniser`` (a scheduler lane).

        ``callsigns`` (known callsigns) are each session's decoding prompt and snap its
        recognised callsigns, as in ``atc-whisper live`` (:class:`~atc_whisper.live.runner.LiveSession`).
        """
        from ..live.outputs import AudioSink
        from ..live.runner import LiveSession, live_decode_settings, session_id

        settings = live_decode_settings(self.settings)
        self.sink = PublishSink(self.workspace, self.hub, jsonl=self.jsonl, catalogue=self.use_catalogue)
        shared = _Shared(self.sink, threading.Lock())
        started = session_id()
        for item in self.items:
            # One id per frequency and run: its records' ``session`` (the page groups exchanges by
            # it) and its saved audio's file prefix.
            name = f"{started}_{slug(item.spec.name)}"
            sinks: list[Any] = []
            if self.settings.serve.save_audio:
                sinks.append(AudioSink(self.workspace.live_dir / "audio", session=name))
            sinks.append(shared)
            item.session = LiveSession(item.source, recogniser, settings, sinks, callsigns=callsigns, session=name)
            item.thread = threading.Thread(target=self._run, args=(item,), name=f"atc-serve-{slug(item.spec.name)}",
                                           daemon=True)
            item.state = "listening"
            self.hub.publish("status", item.status())
            item.thread.start()

    def _run(self, item: Frequency) -> None:
        try:
            item.summary = item.session.run(handle_signals=False)
            item.state = "stopped" if item.summary.interrupted else "ended"
        except AtcWhisperError as exc:
            item.state, item.message = "error", str(exc)
            log.error("frequency %r stopped: %s", item.spec.name, exc)
        except Exception as exc:  # one broken frequency must not take the server down
            item.state, item.message = "error", f"{type(exc).__name__}: {exc}"
            log.exception("frequency %r failed", item.spec.name)
        finally:
            item.source.close()
            self.hub.publish("status", item.status())

    def status(self) -> list[dict[str, Any]]:
        """The state of every frequency."""
        return [item.status() for item in self.items]

    def stop(self, *, abort: bool = False) -> None:
        """Ask every source to stop; the transmission in progress is still transcribed unless ``abort``."""
        for item in self.items:
            if item.session is None:
                continue
            if abort:
                item.session.abort()
            else:
                item.session.stop()

    def join(self, timeout_s: float = 120.0) -> None:
        """Wait for every session to finish its queue, then close the shared outputs."""
        for item in self.items:
            if item.thread is not None:
                item.thread.join(timeout_s)
                if item.thread.is_alive():
                    log.warning("frequency %r did not finish in %.0f s", item.spec.name, timeout_s)
        for item in self.items:
            if item.thread is None:
                item.source.close()
        if self.sink is not None:
            self.sink.close()
            self.sink = None
