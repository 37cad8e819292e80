"""The dashboard: ``GET /`` serves the page, ``/static/`` its scripts and styles, and
``GET /v1/map/villages`` the one answer it needs beyond the API (the map layer).

The page is plain HTML, CSS and JavaScript shipped inside the package (no CDN, no fonts from
outside: it runs on government intranets). Its responses carry their own Content-Security-Policy
— scripts, styles and API calls from this origin only — in place of the API's ``default-src
'none'``, which would forbid the page everything.

No ``from __future__ import annotations`` here: FastAPI reads the route annotations at run time.
"""

from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI, Query, Request
from starlette.responses import FileResponse
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Receive, Scope, Send

from serving.auth import bearer_principal
from serving.errors import ApiError
from serving.ratelimit import RateLimiter
from serving.routes import AUTH_ERRORS, _errors
from serving.service import RiskService
from serving.tokens import Principal, TokenStore
from serving.village_map import VillageCoordinates, VillageMap, village_map

STATIC_DIR = Path(__file__).parent / "static"
PAGE_POLICY = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
               "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
"""What the page may load: its own files and its own API, nothing else."""


class PagePolicy:
    """Give every response of the wrapped app (the static files) the page's policy header."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_with_policy(message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []),
                                      (b"content-security-policy", PAGE_POLICY.encode())]
            await send(message)

        await self.app(scope, receive, send_with_policy)


def add_dashboard(app: FastAPI, service: RiskService, tokens: TokenStore, limiter: RateLimiter) -> None:
    """Add the page, its static files and the map route to ``app``."""
    app.include_router(_router(service, tokens, limiter))
    app.mount("/static", PagePolicy(StaticFiles(directory=STATIC_DIR)), name="static")


def _router(service: RiskService, tokens: TokenStore, limiter: RateLimiter) -> APIRouter:
    router = APIRouter()
    coordinates = VillageCoordinates(service.warehouse)
    Caller = Annotated[Principal, Depends(bearer_principal(tokens, limiter))]

    @router.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        """The dashboard page (no token needed: it signs in with one and calls the API)."""
        return FileResponse(STATIC_DIR / "index.html", headers={"Content-Security-Policy": PAGE_POLICY})

    @router.get("/v1/map/villages", response_model=VillageMap, tags=["risk"],
                responses=_errors(*AUTH_ERRORS, 403))
    async def villages_map(request: Request, caller: Caller, county: Annotated[
            str | None, Query(max_length=32, description="Only this county.")] = None) -> VillageMap:
        """Every village this token may see, with coordinates (WGS84 degrees), latest
        probability, level and change: the dashboard's map in one answer. A county token sees its
        county only; a county outside the scope is a 403."""
        scored = service.live.get("village")
        if scored is None:
            raise ApiError(422, "invalid_request", "This service does not serve villages.", "path")
        request.state.entity = "village"
        return village_map(scored, caller, coordinates, county)

    return router
