"""The FastAPI application: the page, its event stream, the transcript API and the OpenAI-compatible upload.

FastAPI was chosen over bare Starlette for what the issue asks of an API: the OpenAPI schema
(``/openapi.json``) is generated from the route signatures and the pydantic models of
:mod:`.views`, and query, form and JSON inputs are validated before a handler runs, so a bad
request gets a 400 naming the field instead of a crash. It runs on Starlette and uvicorn
(pure Python h11, no compiled extras needed) and ships Server-Sent Events with keep-alive
pings (``fastapi.sse``). The interactive ``/docs`` page is off: it loads Swagger UI from a CDN,
and nothing this server shows may need the internet.

Every handler that decodes or touches the disk is a plain ``def``, run on the thread pool, so
the event loop keeps answering (health, the event stream, other uploads' bytes) while audio is
being decoded.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import FastAPI, File, Form, Header, HTTPException, Query, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, PlainTextResponse, Response
from fastapi.sse import EventSourceResponse, ServerSentEvent
from fastapi.staticfiles import StaticFiles

from .. import __version__
from ..config import Settings
from ..data.catalogue import Catalogue
from ..data.transcripts import callsign_query, parse_time, search_transcripts
from ..errors import AtcWhisperError, DataError
from ..log import get_logger
from ..workspace import Workspace
from .guard import error_body
from .hub import Hub
from .scheduler import API, LIVE, DecodeScheduler, SchedulerClosed
from .uploads import UploadProblem, check_options, render, transcribe_upload
from .views import (
    Correction,
    CorrectionsExported,
    Health,
    TranscriptionJson,
    Transmission,
    TransmissionPage,
    VerboseTranscription,
    audio_media_type,
    transmission_json,
)

log = get_logger(__name__)

STATIC_PACKAGE = ("atc_whisper.serve", "static")


@dataclass
class ServerState:
    """What the routes share.

    Attributes:
        settings: Resolved settings.
        workspace: The workspace (catalogue, live folder).
        model: Name of the loaded model.
        scheduler: The engine behind its priority queue.
        hub: Events to the pages.
        frequencies: The live sources (None when the server only transcribes uploads).
        callsigns: Known callsigns for uploads (``decode.callsigns_file``).
    """

    settings: Settings
    workspace: Workspace
    model: str
    scheduler: DecodeScheduler
    hub: Hub
    frequencies: Any = None
    callsigns: Sequence[str] | None = None
    started: float = field(default_factory=time.monotonic)
    uploads: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _catalogue: Catalogue | None = None

    @property
    def catalogue(self) -> Catalogue:
        """The catalogue connection of the request handlers (opened on first use)."""
        with self._lock:
            if self._catalogue is None:
                self._catalogue = Catalogue(self.workspace.db_path, root=self.workspace.root)
            return self._catalogue

    def begin_upload(self) -> None:
        """Count an upload in, or refuse it with 503 when ``serve.max_pending`` are already in."""
        with self._lock:
            if self.uploads >= self.settings.serve.max_pending:
                raise HTTPException(503, f"the server is busy with {self.uploads} transcriptions "
                                         "(serve.max_pending); retry in a few seconds.",
                                    headers={"Retry-After": "2"})
            self.uploads += 1

    def end_upload(self) -> None:
        with self._lock:
            self.uploads -= 1

    def close(self) -> None:
        with self._lock:
            if self._catalogue is not None:
                self._catalogue.close()
                self._catalogue = None


def _error(status: int, message: str, *, param: str | None = None, headers: dict[str, str] | None = None) -> Response:
    return Response(error_body(status, message, param=param), status_code=status, media_type="application/json",
                    headers=headers)


def create_app(state: ServerState) -> FastAPI:
    """Build the application around ``state``."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        state.hub.attach(asyncio.get_running_loop())
        yield

    app = FastAPI(
        title="ATC Whisper",
        version=__version__,
        summary="Live ATC transcripts, corrections and an OpenAI-compatible transcription endpoint.",
        docs_url=None, redoc_url=None, lifespan=lifespan,
        # FastAPI's OpenTelemetry hooks cost time on every request of a 2-core box and export nothing here.
        telemetry={"tracing": False, "metrics": False, "logs": False, "operation_spans": False},
    )
    app.state.atc = state
    _install_error_handlers(app)
    _page_routes(app, state)
    _transmission_routes(app, state)
    _upload_routes(app, state)
    app.mount("/static", StaticFiles(packages=[STATIC_PACKAGE]), name="static")
    return app


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> Response:
        return _error(exc.status_code, str(exc.detail), headers=getattr(exc, "headers", None))

    from starlette.exceptions import HTTPException as StarletteHTTPException

    @app.exception_handler(StarletteHTTPException)
    async def starlette_error(request: Request, exc: StarletteHTTPException) -> Response:
        detail = "no such page or API route" if exc.status_code == 404 else str(exc.detail)
        return _error(exc.status_code, f"{detail} ({request.method} {request.url.path}).")

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> Response:
        problems = []
        param = None
        for err in exc.errors():
            where = [str(p) for p in err.get("loc", ()) if p not in ("body", "query", "path", "header")]
            param = param or (where[0] if where else None)
            problems.append(f"{'.'.join(where) or 'request'}: {err.get('msg', 'invalid')}")
        return _error(400, "invalid request: " + "; ".join(problems) + ".", param=param)

    @app.exception_handler(UploadProblem)
    async def upload_problem(request: Request, exc: UploadProblem) -> Response:
        return _error(exc.status, exc.message, param=exc.param)

    @app.exception_handler(AtcWhisperError)
    async def toolkit_error(request: Request, exc: AtcWhisperError) -> Response:
        return _error(400, str(exc))

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> Response:
        log.exception("%s %s failed", request.method, request.url.path)
        return _error(500, f"internal error ({type(exc).__name__}); the server log has the details.")


def _page_routes(app: FastAPI, state: ServerState) -> None:
    from importlib.resources import files

    index = files(STATIC_PACKAGE[0]).joinpath(STATIC_PACKAGE[1], "index.html")

    @app.get("/", include_in_schema=False)
    def page() -> Response:
        return Response(index.read_bytes(), media_type="text/html; charset=utf-8",
                        headers={"Cache-Control": "no-cache"})

    @app.get("/api/health", response_model=Health, tags=["server"])
    def health() -> dict[str, Any]:
        """What the server is doing: model, frequencies, decoder load, connected pages."""
        sched = state.scheduler
        return {
            "status": "ok", "version": __version__, "model": state.model, "engine": sched.name,
            "uptime_s": round(time.monotonic() - state.started, 3),
            "frequencies": state.frequencies.status() if state.frequencies is not None else [],
            "decoder": {name: sched.stats[p].as_dict() | {"waiting": sched.waiting(p)}
                        for p, name in ((LIVE, "live"), (API, "api"))},
            "uploads_in_progress": state.uploads, "pages_connected": state.hub.subscribers,
            "recent": state.settings.serve.recent,
        }

    @app.get("/api/events", response_class=EventSourceResponse, tags=["live"])
    async def events(after: Annotated[int, Query(ge=0, description="Replay events after this id.")] = 0,
                     last_event_id: Annotated[str | None, Header()] = None) -> AsyncIterator[ServerSentEvent]:
        """Server-Sent Events: ``transmission`` (a new one, as in /api/transmissions), ``correction``
        (one was corrected) and ``status`` (a frequency's state). A reconnecting browser sends
        Last-Event-ID and receives what it missed."""
        start = int(last_event_id) if last_event_id and last_event_id.isdigit() else after
        async for event in state.hub.subscribe(start):
            yield ServerSentEvent(data=event.data, event=event.kind, id=str(event.seq))


def _transmission_routes(app: FastAPI, state: ServerState) -> None:
    @app.get("/api/transmissions", response_model=TransmissionPage, tags=["transcripts"])
    def transmissions(
        q: Annotated[str | None, Query(max_length=200, description=(
            "Words that must all appear in the text, the correction or the callsign; written forms find "
            "spoken ones (FL350 finds 'flight level three five zero')."))] = None,
        callsign: Annotated[str | None, Query(max_length=100, description=(
            "Callsign as designator (DLH4AB), in words, or an airline alone (DLH, speedbird) for all its flights."
        ))] = None,
        frequency: Annotated[str | None, Query(max_length=200, description="The frequency's name, exactly.")] = None,
        since: Annotated[str | None, Query(max_length=40, description=(
            "Start (inclusive): ISO 8601 (UTC unless it has an offset), Unix seconds, or an age (90m, 2h, 3d)."
        ))] = None,
        until: Annotated[str | None, Query(max_length=40, description=(
            "End (inclusive), as since; a bare date includes that whole day."))] = None,
        low_confidence: bool | None = None,
        corrected: bool | None = None,
        role: Annotated[Literal["controller", "pilot", "unknown"] | None, Query(
            description="Only this speaker role.")] = None,
        readback: Annotated[Literal["ok", "mismatch", "checked", "none"] | None, Query(
            description="Readback check outcome: ok, mismatch, checked (either) or none.")] = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 50,
        offset: Annotated[int, Query(ge=0)] = 0,
    ) -> Any:
        """Search the catalogue's transcripts (live and from files), newest first."""
        checks: tuple[tuple[str, str | None, Callable[[str], object]], ...] = (
            ("since", since, parse_time), ("until", until, parse_time), ("callsign", callsign, callsign_query))
        for name, value, check in checks:  # one by one, so the 400 names the parameter
            try:
                if value and value.strip():
                    check(value)
            except DataError as exc:
                return _error(400, f"{name}: {exc}", param=name)
        page = search_transcripts(
            state.catalogue, q, callsign=callsign, source=frequency, exact_source=True, since=since, until=until,
            low_confidence=low_confidence, corrected=corrected, role=role, readback=readback, limit=limit,
            offset=offset, newest_first=True)
        return {"items": [transmission_json(r) for r in page.rows], "total": page.total, "limit": limit,
                "offset": offset}

    def _row(transmission_id: int) -> dict[str, Any]:
        row = state.catalogue.transcript(transmission_id)
        if row is None:
            raise HTTPException(404, f"transmission {transmission_id} is not in the catalogue.")
        return row

    @app.get("/api/transmissions/{transmission_id}", response_model=Transmission, tags=["transcripts"])
    def transmission(transmission_id: int) -> dict[str, Any]:
        """One transmission."""
        return transmission_json(_row(transmission_id))

    @app.get("/api/transmissions/{transmission_id}/audio", tags=["transcripts"],
             responses={200: {"content": {"audio/wav": {}}}, 403: {}, 404: {}})
    def transmission_audio(transmission_id: int) -> Response:
        """The saved audio of a transmission (only files inside the workspace's live folder are served)."""
        row = _row(transmission_id)
        if row.get("audio_path") is None:
            raise HTTPException(404, f"transmission {transmission_id} has no saved audio (serve.save_audio was off).")
        live = state.workspace.live_dir.resolve()
        path = Path(row["audio_path"]).resolve()
        if not path.is_relative_to(live):
            log.warning("refused to serve %s for transmission %d: outside %s", path, transmission_id, live)
            raise HTTPException(403, f"the audio of transmission {transmission_id} is outside the workspace's "
                                     "live folder and is not served.")
        if not path.is_file():
            raise HTTPException(404, f"the audio of transmission {transmission_id} is gone from the live folder.")
        return FileResponse(path, media_type=audio_media_type(path), headers={"Cache-Control": "max-age=3600"})

    @app.patch("/api/transmissions/{transmission_id}", response_model=Transmission, tags=["transcripts"])
    def correct(transmission_id: int, correction: Correction) -> dict[str, Any]:
        """Store a correction beside the machine text (``{"text": null}`` removes it)."""
        _row(transmission_id)
        row = transmission_json(state.catalogue.correct_transcript(transmission_id, correction.text))
        state.hub.publish("correction", row)
        return row

    @app.post("/api/corrections/export", response_model=CorrectionsExported, tags=["transcripts"])
    def export(request: Request) -> dict[str, Any]:
        """Write every corrected transmission to ``data/live/corrections.csv``, a manifest for
        ``atc-whisper import generic``. Needs ``Content-Type: application/json`` (an empty ``{}`` body),
        which a cross-site form cannot send."""
        from ..data.corrections import CORRECTIONS_NAME, export_corrections

        if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
            raise HTTPException(415, "send this request with Content-Type: application/json (body {}).")
        report = export_corrections(state.catalogue, state.workspace.live_dir / CORRECTIONS_NAME)
        return {"path": str(report.path), "rows": report.rows, "without_audio": len(report.without_audio),
                "import_command": report.import_command}


def _upload_routes(app: FastAPI, state: ServerState) -> None:
    lane = state.scheduler.lane(API)

    @app.get("/v1/models", tags=["openai"])
    def models() -> dict[str, Any]:
        """The model this server transcribes with (every model name is answered by it)."""
        return {"object": "list", "data": [{"id": state.model, "object": "model", "owned_by": "atc-whisper"}]}

    @app.post("/v1/audio/transcriptions", tags=["openai"],
              responses={200: {"model": VerboseTranscription | TranscriptionJson,
                               "content": {"text/plain": {}, "text/vtt": {}}},
                         400: {}, 401: {}, 413: {}, 503: {}})
    def transcriptions(
        file: Annotated[UploadFile, File(description="The recording: WAV, FLAC, OGG, MP3, M4A …")],
        model: Annotated[str, Form(description="Accepted for compatibility; the server's model answers.")] = "whisper-1",
        prompt: Annotated[str | None, Form(max_length=2000, description="Text to condition decoding on.")] = None,
        response_format: Annotated[str, Form(description="json, text, srt, vtt or verbose_json.")] = "json",
        language: Annotated[str | None, Form(description="en (or omitted): the models transcribe English.")] = None,
        temperature: Annotated[float | None, Form(ge=0.0, le=1.0, description="Ignored: decode.temperatures apply.")] = None,
        stream: Annotated[str | None, Form(description="Not supported (false).")] = None,
    ) -> Response:
        """Transcribe an uploaded recording; OpenAI's multipart form, so OpenAI clients work unchanged.
        ``verbose_json`` adds the ATC reading: callsign, commands and confidence."""
        check_options(response_format, language, stream)
        state.begin_upload()
        try:
            result = transcribe_upload(file.file, file.filename, lane, state.settings, prompt=prompt,
                                       callsigns=state.callsigns)
        except SchedulerClosed:
            raise HTTPException(503, "the server is shutting down; send the upload again once it is back.") from None
        finally:
            state.end_upload()
        body, media_type = render(result, response_format, state.model)
        if isinstance(body, dict):
            return JSONResponse(body)
        return PlainTextResponse(body, media_type=media_type)
