"""``serve()``: open the sources, load the engine once, listen, and stop without losing a transmission.

Start-up checks everything a user can get wrong before the model loads: the address (a
non-loopback host must be asked for explicitly), the port (bound here, so "address in use" is
one clear error), and every source (a dead URL fails at once).

Shutdown (Ctrl-C or SIGTERM) runs in this order:

1. every source is stopped; each live session transcribes the transmission in progress and
   its queue, decoding through the still-running engine;
2. the pages' event streams are ended, so the HTTP server is not kept waiting by them, and it
   stops taking connections; uploads in progress finish;
3. the sessions are joined, the shared outputs (JSON lines, catalogue) closed, the engine
   thread stopped.

A second Ctrl-C abandons what is still queued (the live runner's convention) and quits.
"""

from __future__ import annotations

import errno
import signal
import socket
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

from ..config import Settings
from ..errors import AtcWhisperError, ConfigError
from ..log import get_logger
from ..workspace import Workspace
from .frequencies import Frequencies, FrequencySpec

log = get_logger(__name__)

LOOPBACK_NAMES = ("127.0.0.1", "localhost", "::1", "[::1]")
#: Environment variable holding the token when --token is not given.
TOKEN_ENV = "ATC_WHISPER_TOKEN"
#: Seconds the HTTP server waits for requests in progress (an upload being decoded) at shutdown.
GRACEFUL_SHUTDOWN_S = 30


def is_loopback(host: str) -> bool:
    """Whether ``host`` (an address to bind to or a Host header's name) is this machine only."""
    host = host.strip().lower()
    return host in LOOPBACK_NAMES or host.startswith("127.")


def import_fastapi() -> None:
    """Check the server's packages are installed (an optional extra of the toolkit).

    Raises:
        AtcWhisperError: naming what to install.
    """
    try:
        import fastapi  # noqa: F401
        import multipart  # noqa: F401  (python-multipart: the upload form)
        import uvicorn  # noqa: F401
    except ImportError as exc:
        raise AtcWhisperError(f"atc-whisper serve needs FastAPI, uvicorn and python-multipart ({exc.name} is "
                              "missing): pip install 'atc-whisper[serve]'.") from None


@dataclass
class ServeOptions:
    """How to run the server (the command line's choices; the rest is ``[serve]``).

    Attributes:
        host: Address to bind (``serve.host`` when None).
        port: TCP port (``serve.port`` when None; 0 picks a free one).
        allow_remote: The user asked for ``host`` explicitly (needed for a non-loopback address).
        token: Required on every request when set.
        model: Model to load (the workspace's default when None).
        engine: Engine name (``decode.engine`` when None).
        specs: Frequencies to listen to.
        realtime: Replay file sources at real-time pace.
        rate, fmt, channels: PCM layout of a stdin source.
        jsonl: JSON-lines file of the live transcripts (``data/live/transcripts.jsonl`` when None).
        catalogue: Store live transcripts in the catalogue (the page's search and corrections need it).
    """

    host: str | None = None
    port: int | None = None
    allow_remote: bool = False
    token: str | None = None
    model: str | None = None
    engine: str | None = None
    specs: Sequence[FrequencySpec] = ()
    realtime: bool = False
    rate: int = 16_000
    fmt: str = "s16le"
    channels: int = 1
    jsonl: Path | None = None
    catalogue: bool = True


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port``.

    Raises:
        ConfigError: the address is in use, not on this machine, or not allowed.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise ConfigError(f"cannot listen on {host}:{port}: the port is in use (another server?); "
                              "pick another with --port.") from None
        raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror or exc}; check --host.") from None
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def check_host(host: str, allow_remote: bool) -> None:
    """Refuse a non-loopback address unless it was asked for with ``--host``.

    Raises:
        ConfigError: ``serve.host`` in a config file points off this machine.
    """
    if not is_loopback(host) and not allow_remote:
        raise ConfigError(f"serve.host is {host!r}, which is reachable from other machines; pass --host {host} "
                          "on the command line to confirm (and consider --token).")


def serve(settings: Settings, workspace: Workspace, options: ServeOptions,
          announce: Callable[[str], None] = print) -> dict[str, Any]:
    """Run the server until Ctrl-C/SIGTERM; return a summary of what was heard.

    Args:
        settings: Resolved settings (``[serve]``, ``[live]``, ``[decode]``).
        workspace: The workspace (model caches, catalogue, live folder).
        options: The command line's choices.
        announce: Where the start-up lines (address, frequencies, warnings) go.

    Raises:
        AtcWhisperError: a bad address or source, a model that cannot load.
    """
    import_fastapi()
    import uvicorn

    from ..models.resolve import default_model_name
    from ..transcribe import load_engine
    from .app import ServerState, create_app
    from .guard import Guard
    from .hub import Hub
    from .scheduler import LIVE, DecodeScheduler

    host = options.host or settings.serve.host
    port = settings.serve.port if options.port is None else options.port
    check_host(host, options.allow_remote or options.host is not None)
    sock = bind(host, port)
    if not is_loopback(host):
        announce(f"Warning: listening on {host}, reachable from other machines"
                 + (" (every request needs the token)." if options.token else " WITHOUT a token: anyone who "
                    "can reach this address can read the transcripts and use the CPU; add --token."))
    hub = Hub()
    frequencies = Frequencies(options.specs, settings, workspace, hub, realtime=options.realtime, rate=options.rate,
                              fmt=options.fmt, channels=options.channels,
                              jsonl=options.jsonl or workspace.live_dir / "transcripts.jsonl",
                              catalogue=options.catalogue)
    scheduler = None
    try:
        frequencies.open()
        from ..live.runner import live_decode_settings

        model = str(options.model or default_model_name(settings.model.name, workspace))
        # One engine for uploads and live audio alike; live mode's latency-minded decoding rules
        # (no retries for merely unlikely text) keep a frequency's transcripts prompt.
        engine = load_engine(model, live_decode_settings(settings), workspace, engine=options.engine)
        scheduler = DecodeScheduler(engine)
        state = ServerState(settings=settings, workspace=workspace, model=model, scheduler=scheduler, hub=hub,
                            frequencies=frequencies, callsigns=_callsigns(settings, workspace))
        app = Guard(create_app(state), token=options.token, max_upload_bytes=int(settings.serve.max_upload_mb * 1e6),
                    loopback_only=is_loopback(host))
        config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on",
                                timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S, server_header=False)
        server = _make_server(config, lambda first: _on_signal(first, frequencies, hub))
        port = sock.getsockname()[1]
        shown = f"[{host}]" if ":" in host else host
        announce(f"Serving {model} ({engine.name}) on http://{shown}:{port}/ - the API schema is at /openapi.json. "
                 "Ctrl-C stops (transmissions in progress are still transcribed).")
        for item in frequencies.items:
            announce(f"Listening to {item.spec.name!r}: {item.described}")
        frequencies.start(scheduler.lane(LIVE))
        with _quiet_signals():
            try:
                server.run(sockets=[sock])
            except KeyboardInterrupt:  # uvicorn re-raises the signal it caught once it has stopped
                pass
        frequencies.stop()
        frequencies.join()
    finally:
        hub.close()
        frequencies.stop(abort=True)
        frequencies.join(timeout_s=5.0)
        if scheduler is not None:
            scheduler.close()
        sock.close()
    heard = {item.spec.name: (item.summary.transmissions if item.summary is not None else 0)
             for item in frequencies.items}
    return {"frequencies": heard, "transmissions": sum(heard.values()),
            "errors": {i.spec.name: i.message for i in frequencies.items if i.state == "error"}}


def _callsigns(settings: Settings, workspace: Workspace) -> list[str] | None:
    if not settings.decode.callsigns_file:
        return None
    from ..phraseology.callsigns import load_callsigns

    return load_callsigns(workspace.root / Path(settings.decode.callsigns_file).expanduser())


def _on_signal(first: bool, frequencies: Frequencies, hub: Any) -> None:
    if first:
        log.warning("stopping: finishing the transmissions in progress (Ctrl-C again to quit now)")
        frequencies.stop()
        hub.close()
    else:
        frequencies.stop(abort=True)


def _make_server(config: Any, on_signal: Callable[[bool], None]) -> Any:
    """uvicorn's server with one more thing done on Ctrl-C: stop the sources at once."""
    import uvicorn

    class Server(uvicorn.Server):
        def handle_exit(self, sig: int, frame: FrameType | None) -> None:
            first = not self.should_exit
            super().handle_exit(sig, frame)
            try:
                on_signal(first)
            except Exception as exc:  # a signal handler must not raise
                log.error("stopping the sources failed: %s", exc)

    return Server(config)


class _quiet_signals:
    """While uvicorn runs, keep SIGINT/SIGTERM from killing the process after it re-raises them.

    uvicorn restores the handlers it found and raises the signal it caught again once it has
    shut down; with these no-op handlers in place that does nothing, and the sessions are
    joined afterwards.
    """

    def __enter__(self) -> None:
        self._previous: dict[int, Any] = {}
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, lambda s, f: None)

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
