"""ASGI middleware around every request: body size limit, security headers, and the record of
each request (metrics, audit log, structured access log).

Plain ASGI classes rather than ``BaseHTTPMiddleware``: they add microseconds, not a task per
request, and they see requests that never reach a route (404, 413).
"""

from __future__ import annotations

import logging
import os
import time
from collections import Counter
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import parse_qsl

from serving.audit import AuditLog
from serving.errors import INTERNAL, ApiError, error_response
from serving.metrics import ApiMetrics

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

SECURITY_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"content-security-policy", b"default-src 'none'; frame-ancestors 'none'"),
    (b"cross-origin-resource-policy", b"same-origin"),
    (b"cache-control", b"no-store"),
)
"""Headers on every response: the API serves JSON only, to be framed by nobody, cached by nobody.
A response that sets one of them itself (the dashboard page's own policy) keeps its value."""

UNMATCHED_ROUTE = "unmatched"


def _route(scope: Scope) -> str:
    """The matched route's template (``/v1/villages/{id}``), never the raw path a client chose."""
    return getattr(scope.get("route"), "path", UNMATCHED_ROUTE)

log = logging.getLogger("fengqiao.api")


class SingleQueryValues:
    """Refuse with 422 a query that gives one parameter more than once (``?county=a&county=b``):
    every query parameter of the API is a single value, and taking one of the two silently
    would answer a question the caller did not ask."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope.get("query_string"):
            names = Counter(name for name, _ in parse_qsl(scope["query_string"].decode("latin-1"), keep_blank_values=True))
            repeated = sorted(n for n, times in names.items() if times > 1)
            if repeated:
                error = ApiError(422, "invalid_request", f"The query parameter {repeated[0]!r} is given more than once; "
                                 "give it once.", f"query.{repeated[0]}")
                await error_response(error)(scope, receive, send)
                return
        await self.app(scope, receive, send)


class LimitBody:
    """Refuse request bodies over ``max_bytes`` with 413, whether announced by Content-Length or
    streamed in chunks. A body is read whole (it is small) before the app sees it, so that the
    refusal happens before any parsing."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        too_large = error_response(ApiError(413, "body_too_large", f"The request body exceeds {self.max_bytes} bytes.",
                                            "body"))
        for name, value in scope["headers"]:
            if name == b"content-length" and (not value.isdigit() or int(value) > self.max_bytes):
                await too_large(scope, receive, send)
                return
        chunks, size, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > self.max_bytes:
                await too_large(scope, receive, send)
                return
            more = message.get("more_body", False)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": b"".join(chunks), "more_body": False}

        await self.app(scope, replay, send)


class SecurityHeaders:
    """Add :data:`SECURITY_HEADERS` to every HTTP response that does not set them itself."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                message["headers"] = headers + [(n, v) for n, v in SECURITY_HEADERS if n not in present]
            await send(message)

        await self.app(scope, receive, send_with_headers)


class RecordRequests:
    """For each request, as its answer starts (so that both exist before the client sees the
    answer): append it to the audit log, count it and its time to answer by route template (never
    by raw path, which a client chooses); when it ends, log one structured line. The token id and
    the entity come from ``scope["state"]``, where the auth dependency and the routes put them;
    the response carries an ``X-Request-ID`` that the log line repeats. An exception escaping the
    app is logged with its trace and answered with the fixed 500 body."""

    def __init__(self, app: ASGIApp, metrics: ApiMetrics, audit: AuditLog) -> None:
        self.app = app
        self.metrics = metrics
        self.audit = audit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id = os.urandom(8).hex()
        status, responded = 500, False

        def record() -> None:
            """Audit, count and time the request as its answer starts (before the client can see it)."""
            state, route = scope.get("state") or {}, _route(scope)
            self.audit.record(state.get("token_id"), scope["method"], route, state.get("entity"), status)
            self.metrics.requests.labels(scope["method"], route, str(status)).inc()
            self.metrics.latency.labels(route).observe(time.perf_counter() - started)

        async def send_with_id(message: Message) -> None:
            nonlocal status, responded
            if message["type"] == "http.response.start":
                status, responded = message["status"], True
                message["headers"] = [*message.get("headers", []), (b"x-request-id", request_id.encode())]
                record()
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            log.exception("unhandled error", extra={"request_id": request_id})
            if responded:
                raise
            await error_response(INTERNAL)(scope, receive, send_with_id)
        finally:
            if not responded:
                record()  # the client went away, or the server failed to answer at all
            state = scope.get("state") or {}
            log.info("request", extra={"request_id": request_id, "method": scope["method"], "route": _route(scope),
                                       "status": status, "ms": round(1000 * (time.perf_counter() - started), 3),
                                       "token": state.get("token_id"), "entity": state.get("entity")})
