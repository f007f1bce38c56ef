"""The server's front door, one ASGI middleware in front of every route (page, API, static files).

In order, for every HTTP request:

1. **Host check.** Bound to loopback, only requests addressed to a loopback name are served:
   a web page on another site cannot reach the server through DNS rebinding.
2. **Token.** With ``--token`` (or ``$ATC_WHISPER_TOKEN``) every request must carry it, as
   ``Authorization: Bearer TOKEN`` (what OpenAI clients send as their API key), the
   ``X-API-Key`` header, or ``?token=TOKEN``. Opening the page with ``?token=`` once sets an
   HttpOnly, SameSite=Strict cookie, so the page's own requests (event stream, audio) carry it
   without putting it in every URL.
3. **Body size.** A request announcing a body over the limit is answered 413 before it is
   read; a chunked one is cut off with 413 as soon as it passes the limit, so an endless upload
   costs nothing but the bytes up to the limit.

Errors are JSON in OpenAI's shape, ``{"error": {"message", "type", "param", "code"}}``, which
OpenAI client libraries turn into their own exceptions with the message intact.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import parse_qs

from fastapi import HTTPException

from .server import is_loopback

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

COOKIE = "atc_whisper_token"
#: Body limit of every route but the upload: corrections and the like are a few hundred bytes.
SMALL_BODY_BYTES = 64 * 1024

_ERROR_TYPES = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
                404: "not_found_error", 405: "invalid_request_error", 413: "invalid_request_error",
                415: "invalid_request_error", 421: "invalid_request_error", 503: "server_error"}


def error_body(status: int, message: str, *, param: str | None = None, code: str | None = None) -> bytes:
    """The JSON error document (OpenAI's shape) for ``status``."""
    kind = _ERROR_TYPES.get(status, "server_error" if status >= 500 else "invalid_request_error")
    return json.dumps({"error": {"message": message, "type": kind, "param": param, "code": code}}).encode()


class BodyTooLarge(HTTPException):
    """A request body passed its limit (raised from ``receive``; answered 413).

    An HTTPException, so FastAPI's body parsing passes it on instead of calling it a parse error.
    """

    def __init__(self, limit: int, what: str = "upload") -> None:
        super().__init__(status_code=413, detail=too_large_message(limit, what))
        self.limit = limit


def too_large_message(limit: int, what: str = "upload") -> str:
    return (f"the {what} is larger than this server's limit of {limit / 1e6:.1f} MB "
            "(serve.max_upload_mb); send a shorter or more compressed recording.")


class Guard:
    """Host check, token check and body limit (see the module docstring).

    Args:
        app: The application behind it.
        token: The required token, or None for none.
        max_upload_bytes: Body limit of the upload routes.
        upload_paths: Routes that take audio uploads.
        loopback_only: Refuse Host headers that are not loopback names.
    """

    def __init__(self, app: ASGIApp, *, token: str | None, max_upload_bytes: int,
                 upload_paths: tuple[str, ...] = ("/v1/audio/transcriptions",), loopback_only: bool = True) -> None:
        self.app = app
        self.token = token or None
        self.max_upload_bytes = max_upload_bytes
        self.upload_paths = upload_paths
        self.loopback_only = loopback_only

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        if self.loopback_only:
            host = headers.get("host", "")
            name = host.rsplit(":", 1)[0] if not host.startswith("[") else host.split("]")[0] + "]"
            if not is_loopback(name):
                await _respond(send, 421, f"this server answers requests for 127.0.0.1 or localhost only, not "
                                          f"{host!r}; start it with --host to serve other names.")
                return
        set_cookie = False
        if self.token is not None:
            given, from_query = self._token_of(scope, headers)
            if given is None or not hmac.compare_digest(given.encode(), self.token.encode()):
                what = "a wrong token" if given is not None else "no token"
                await _respond(send, 401, f"this server needs its token and the request had {what}: send "
                                          "'Authorization: Bearer TOKEN' (an OpenAI client's api_key), or open the "
                                          "page as /?token=TOKEN.", extra=[(b"www-authenticate", b"Bearer")])
                return
            set_cookie = from_query
        limit = self.max_upload_bytes if scope["path"] in self.upload_paths else SMALL_BODY_BYTES
        length = headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > limit:
            await _respond(send, 413, too_large_message(limit, "upload" if limit == self.max_upload_bytes else
                                                        "request body"))
            return
        received = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit, "upload" if limit == self.max_upload_bytes else "request body")
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                if set_cookie:
                    cookie = f"{COOKIE}={self.token}; Path=/; HttpOnly; SameSite=Strict"
                    message = {**message, "headers": [*message.get("headers", []),
                                                      (b"set-cookie", cookie.encode("latin-1"))]}
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except BodyTooLarge as exc:
            if not started:
                await _respond(send, 413, str(exc.detail))

    @staticmethod
    def _token_of(scope: Scope, headers: dict[str, str]) -> tuple[str | None, bool]:
        auth = headers.get("authorization", "")
        if auth.lower().startswith("bearer "):
            return auth[7:].strip(), False
        if "x-api-key" in headers:
            return headers["x-api-key"].strip(), False
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        if query.get("token"):
            return query["token"][0], True
        for part in headers.get("cookie", "").split(";"):
            name, _, value = part.strip().partition("=")
            if name == COOKIE:
                return value, False
        return None, False


async def _respond(send: Send, status: int, message: str, *, extra: list[tuple[bytes, bytes]] | None = None) -> None:
    body = error_body(status, message)
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            *(extra or [])]})
    await send({"type": "http.response.body", "body": body})
