"""The app factory: ``create_app(settings)`` builds the whole service or refuses to.

Everything the API needs is loaded before the app exists — the token store, the live bundles,
the feature snapshots and the score history — so a missing or damaged one stops the start with
a ConfigurationError that names it, instead of a server that answers 500s.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.metadata import version as package_version

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import JSONResponse

from fengqiao.interventions import load_catalogue
from fengqiao.settings import Settings
from serving.audit import AuditLog
from serving.dashboard import add_dashboard
from serving.errors import ApiError, error_body, error_response, field_path
from serving.metrics import ApiMetrics
from serving.middleware import LimitBody, RecordRequests, SecurityHeaders, SingleQueryValues
from serving.plans import Planner
from serving.ratelimit import RateLimiter
from serving.routes import build_router
from serving.service import RiskService
from serving.tokens import TokenStore

_HTTP_ERRORS = {400: ("invalid_body", "The request body is not JSON text (UTF-8).", "body"),
                404: ("not_found", "No such route.", None),
                405: ("method_not_allowed", "This route does not accept this method.", None)}


async def _api_error(_: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, ApiError)
    return error_response(error)


async def _invalid_request(_: Request, error: Exception) -> JSONResponse:
    """422 naming the first invalid field; pydantic's message, never the submitted input."""
    assert isinstance(error, RequestValidationError)
    first = error.errors()[0] if error.errors() else {"loc": (), "msg": "invalid request"}
    field = field_path(first.get("loc", ())) or None
    message = str(first.get("msg", "invalid value")).removeprefix("Value error, ")
    return JSONResponse(error_body("invalid_request", f"{field or 'request'}: {message}", field), status_code=422)


async def _http_error(_: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, StarletteHTTPException)
    code, message, field = _HTTP_ERRORS.get(error.status_code, ("http_error", "The request cannot be answered.", None))
    return JSONResponse(error_body(code, message, field), status_code=error.status_code, headers=error.headers)


def create_app(settings: Settings) -> FastAPI:
    """The API of DESIGN.md over the warehouse and models that ``settings`` name."""
    tokens = TokenStore(settings.tokens_path)
    metrics = ApiMetrics()
    service = RiskService({e: settings.model_source(e) for e in settings.api_entities}, settings.warehouse_dir,
                          settings.api_history_weeks, settings.tracking_uri, metrics)
    audit = AuditLog(settings.audit_path)
    limiter = RateLimiter(settings.api_rate_per_second, settings.api_rate_burst)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        audit.close()

    app = FastAPI(title="Fengqiao risk API", version=package_version("fengqiao"), lifespan=lifespan,
                  docs_url=None, redoc_url=None,
                  description="Weekly escalation risk of villages and major projects, explained. "
                              "Bearer tokens with scopes city, county:<id> and admin.")
    app.state.service = service
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(RequestValidationError, _invalid_request)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    planner = Planner(service, load_catalogue(settings.interventions_config), settings.plan_budgets,
                      settings.plan_effect, settings.plans_in_force)
    app.include_router(build_router(service, tokens, limiter, metrics, settings.api_max_page, planner))
    add_dashboard(app, service, tokens, limiter)
    app.add_middleware(LimitBody, max_bytes=settings.api_max_body_bytes)
    app.add_middleware(SingleQueryValues)
    app.add_middleware(RecordRequests, metrics=metrics, audit=audit)
    app.add_middleware(SecurityHeaders)
    if settings.api_cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=list(settings.api_cors_origins),
                           allow_methods=["GET", "POST"], allow_headers=["Authorization", "Content-Type"])
    return app
