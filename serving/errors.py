"""The API's errors: one JSON shape, ``{"error": {"code", "message", "field"}}``, for every failure.

A message says what was wrong and names the field (``query.limit``, ``body.features.mediators``)
but never repeats a submitted value, and no response ever carries a stack trace: the body of a
500 is the same fixed sentence whatever went wrong (the log has the details).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from starlette.responses import JSONResponse

_NAMEABLE = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
"""A location part that may be echoed: a snake_case name. Anything else that a client chose
(an odd dictionary key) is shown as ``*``."""


class ApiError(Exception):
    """A request the API refuses, with its HTTP status and machine-readable code."""

    def __init__(self, status: int, code: str, message: str, field: str | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.field = field
        self.headers = headers or {}


UNAUTHORIZED = ApiError(401, "unauthorized", "A valid bearer token is required (header Authorization: Bearer <token>).",
                        headers={"WWW-Authenticate": 'Bearer realm="fengqiao"'})
NOT_VISIBLE = ApiError(403, "forbidden", "Not found in this token's scope.")
"""The one answer for an entity (or county) that does not exist and for one outside the token's
scope, so that a county token cannot learn which ids exist elsewhere."""
ADMIN_ONLY = ApiError(403, "forbidden", "This route needs a token with scope admin.")
INTERNAL = ApiError(500, "internal_error", "The server failed to answer this request; the operators' log has the details.")


def error_body(code: str, message: str, field: str | None = None) -> dict:
    """The JSON body of every error response."""
    return {"error": {"code": code, "message": message, "field": field}}


def error_response(error: ApiError) -> JSONResponse:
    return JSONResponse(error_body(error.code, error.message, error.field), status_code=error.status,
                        headers=error.headers)


def field_path(location: Sequence[str | int]) -> str:
    """A validation error's location as a dotted path (``body.features.mediators``) in which only
    snake_case names and list indices appear; other client-chosen keys become ``*``."""
    parts = [str(part) if isinstance(part, int) or _NAMEABLE.fullmatch(str(part)) else "*" for part in location]
    return ".".join(parts)
