"""Request ids, body size limits, security headers, and structured logging.

Each request is logged as one JSON line: time, level, method, path (never the query
string), status, duration, client address and request id. Events (logins,
logouts, password and superuser changes) are JSON lines too. No header, body,
password, hash or token is ever logged; an unexpected error is logged with its
type and stack, without its message (which may quote a value).
"""

import json
import logging
import re
import time
import traceback
import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.exc import SQLAlchemyError
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

logger = logging.getLogger(__name__)
events = logging.getLogger(f"{__name__.split('.')[0]}.events")

#: A caller's X-Request-ID is kept if it looks like an id, replaced otherwise.
REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")

SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",  # tokens and user data must not be cached
}


class RequestMiddleware:
    """Pure ASGI middleware, so it adds almost nothing to each request."""

    def __init__(self, app: ASGIApp, max_body_bytes: int = 1024 * 1024) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        given = headers.get(b"x-request-id", b"").decode("latin-1")
        request_id = given if REQUEST_ID.fullmatch(given) else uuid.uuid4().hex
        started = time.perf_counter()
        status_code = 500
        answered = False

        async def send_with_headers(message: Message) -> None:
            nonlocal status_code, answered
            if message["type"] == "http.response.start":
                status_code, answered = message["status"], True
                response_headers = MutableHeaders(scope=message)
                response_headers["X-Request-ID"] = request_id
                for name, value in SECURITY_HEADERS.items():
                    response_headers.setdefault(name, value)
            await send(message)

        try:
            limited = await self._within_limit(headers, receive)
            if limited is None:
                await _answer(send_with_headers, 413, "Request body too large")
            else:
                await self.app(scope, limited, send_with_headers)
        except Exception as error:
            # Answered here, with this request's id and headers, and logged once
            # (not re-raised: the server would log the message too).
            log_event("error", request_id=request_id, **describe(error))
            if not answered:
                await _answer(send_with_headers, 500, "Internal server error")
        finally:
            client = scope.get("client")
            logger.info(
                "request",
                extra={
                    "fields": {
                        "method": scope["method"],
                        "path": scope["path"],
                        "status": status_code,
                        "duration_ms": round((time.perf_counter() - started) * 1000, 2),
                        "client": client[0] if client else None,
                        "request_id": request_id,
                    }
                },
            )

    async def _within_limit(
        self, headers: dict[bytes, bytes], receive: Receive
    ) -> Receive | None:
        """Where to receive the body from, or None if it is over MAX_BODY_BYTES: a
        declared length is checked as it is, a streamed body is read here first (up
        to the limit, so never more), before anything parses it."""
        if b"content-length" in headers or b"transfer-encoding" not in headers:
            declared = headers.get(b"content-length", b"0")
            fits = declared.isdigit() and int(declared) <= self.max_body_bytes
            return receive if fits else None
        body = await _read_at_most(receive, self.max_body_bytes)
        return None if body is None else _replay(body, receive)


async def _read_at_most(receive: Receive, limit: int) -> bytes | None:
    """The whole body, or None as soon as it is longer than ``limit``."""
    chunks, size = [], 0
    while True:
        message = await receive()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body"):
            return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A receive channel that gives ``body`` first, then what ``receive`` gives."""
    pending = [{"type": "http.request", "body": body, "more_body": False}]

    async def replay() -> Message:
        return pending.pop() if pending else await receive()

    return replay


async def _answer(send: Send, status_code: int, detail: str) -> None:
    body = json.dumps({"detail": detail}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status_code,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def describe(error: BaseException) -> dict[str, Any]:
    """An error for the log: its type and stack; its message only from the database
    layer, whose messages never hold bound values (``hide_parameters``)."""
    described: dict[str, Any] = {"error": type(error).__name__}
    if isinstance(error, SQLAlchemyError):
        described["message"] = str(error).splitlines()[0]
    described["stack"] = "".join(traceback.format_tb(error.__traceback__))
    return described


def log_event(event: str, **fields: object) -> None:
    """One structured line for ``event``. Pass ids and addresses, never a
    username as typed (it may be a password typed in the wrong field)."""
    events.info(event, extra={"fields": {"event": event, **fields}})


class JsonFormatter(logging.Formatter):
    """A log record as one JSON line: time, level, then its fields (or message)."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname.lower(),
        }
        fields = getattr(record, "fields", None)
        if fields is not None:
            line.update(fields)
        else:
            line.update(logger=record.name, message=record.getMessage())
        return json.dumps(line, default=str)


def configure_logging() -> None:
    """Send the service's log lines to stderr as JSON, unless logging is configured
    already."""
    package_logger = logging.getLogger(__name__.split(".")[0])
    if not package_logger.handlers and not logging.getLogger().handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(JsonFormatter())
        package_logger.addHandler(handler)
        package_logger.setLevel(logging.INFO)
