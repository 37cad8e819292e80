"""The routes of DESIGN.md's API section. Each one authenticates, reads the live models once and
hands the work to :mod:`serving.views`; none holds model logic.

No ``from __future__ import annotations`` here: FastAPI reads the parameter annotations, which
use aliases local to :func:`build_router`, at run time."""

import json
from datetime import date
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from fastapi.concurrency import run_in_threadpool

from fengqiao.errors import FengqiaoError
from serving import schemas, views
from serving.auth import bearer_principal
from serving.errors import ADMIN_ONLY, ApiError
from serving.metrics import ApiMetrics
from serving.plans import Planner
from serving.ratelimit import RateLimiter
from serving.scored import ScoredEntities
from serving.service import ReloadInProgress, RiskService
from serving.tokens import Principal, TokenStore


def _errors(*statuses: int) -> dict:
    """OpenAPI entries for the error statuses a route may answer, all of one shape."""
    described = {400: "The body is not JSON text.", 401: "No valid bearer token.", 403: "Outside this token's scope (or no such entity).",
                 404: "as_of precedes the snapshots the service holds.",
                 409: "Refused: the live models keep serving.", 413: "Request body too large.",
                 422: "A parameter or body field is invalid; `field` names it.",
                 429: "Too many requests for this token; see Retry-After.", 500: "Server failure.",
                 503: "The adopted plans (FENGQIAO_PLANS_IN_FORCE) cannot be read; the operators' log names the file."}
    return {s: {"model": schemas.ErrorResponse, "description": described[s]} for s in (*statuses, 500)}


AUTH_ERRORS = (401, 422, 429)


def build_router(service: RiskService, tokens: TokenStore, limiter: RateLimiter, metrics: ApiMetrics,
                 max_page: int, planner: Planner) -> APIRouter:
    """All routes, bound to one service, token store, rate limiter, page cap and planner."""
    router = APIRouter()

    Caller = Annotated[Principal, Depends(bearer_principal(tokens, limiter))]
    Limit = Annotated[int, Query(ge=1, le=max_page, description=f"Items per page (at most {max_page}).")]
    Offset = Annotated[int, Query(ge=0, le=1_000_000, description="Items to skip.")]
    Id = Annotated[str, Path(pattern=r"^[0-9A-Za-z_.-]{1,64}$", description="A village or project id.")]

    def live(entity: str) -> ScoredEntities:
        scored = service.live.get(entity)
        if scored is None:
            raise ApiError(422, "invalid_request", f"This service does not serve {entity}s.", "path.entity")
        return scored

    @router.get("/healthz", response_model=schemas.Health, tags=["operations"])
    async def healthz() -> schemas.Health:
        """The process is up (no token needed)."""
        return schemas.Health(status="ok")

    @router.get("/readyz", response_model=schemas.Readiness, tags=["operations"])
    async def readyz() -> schemas.Readiness:
        """Models and snapshots are loaded and serving (no token needed)."""
        now = service.live
        return schemas.Readiness(ready=bool(now), models={e: s.version for e, s in now.items()},
                                 snapshots={e: s.snapshots[-1] for e, s in now.items()})

    @router.get("/metrics", response_class=Response, tags=["operations"], responses={
        200: {"content": {"text/plain": {"schema": {"type": "string"}}}, "description": "Prometheus text format."},
        **_errors(*AUTH_ERRORS)})
    async def prometheus(_: Caller) -> Response:
        """Prometheus metrics: requests, latencies, live model versions, scoring time, reloads."""
        return Response(metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8")

    def last_drift_check(entity: str) -> dict:
        """The refresh's last drift check of an entity kind (``drift_<entity>.json``), if any."""
        path = service.warehouse / f"drift_{entity}.json"
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {"last_drift_check": None, "drift_warnings": []}
        return {"last_drift_check": record.get("checked_at"), "drift_warnings": list(record.get("warnings", []))}

    def model_info(scored: ScoredEntities) -> dict:
        meta = scored.bundle.meta
        recorded = meta.get("backtest_metrics") or {}
        return {"entity": scored.entity, "version": scored.version, "source": scored.source,
                "trained_at": meta.get("trained_at"), "mlflow_run_id": meta.get("mlflow_run_id"),
                "horizon_days": int(meta["horizon_days"]), "fingerprint": meta.get("training_data_fingerprint"),
                "metrics": {k: float(v) if isinstance(v, int | float) else None for k, v in recorded.items()},
                "snapshot": scored.snapshots[-1], "loaded_at": scored.loaded_at,
                "n_features": len(scored.bundle.feature_names), **last_drift_check(scored.entity)}

    @router.get("/v1/models", response_model=schemas.ModelList, tags=["models"], responses=_errors(*AUTH_ERRORS))
    async def models(_: Caller) -> schemas.ModelList:
        """The live model of each entity kind."""
        return schemas.ModelList(models=[schemas.ModelInfo(**model_info(s)) for s in service.live.values()])

    @router.get("/v1/models/{entity}", response_model=schemas.ModelDetail, tags=["models"],
                responses=_errors(*AUTH_ERRORS))
    async def model(entity: schemas.Entity, _: Caller) -> schemas.ModelDetail:
        """The live model of one entity kind, with its features and level thresholds."""
        scored = live(entity)
        bundle = scored.bundle
        return schemas.ModelDetail(
            **model_info(scored), level_thresholds={k: float(v) for k, v in bundle.meta["level_thresholds"].items()},
            features=[schemas.FeatureInfo(name=n, group=g, actionable=bool(a))
                      for n, g, a in zip(bundle.feature_names, bundle.feature_groups, bundle.actionable)])

    @router.get("/v1/rankings/{entity}", response_model=schemas.Ranking, tags=["risk"],
                responses=_errors(*AUTH_ERRORS, 403, 404))
    async def rankings(request: Request, entity: schemas.Entity, caller: Caller,
                       limit: Limit = 50, offset: Offset = 0,
                       county: Annotated[str | None, Query(max_length=32, description="Only this county.")] = None,
                       town: Annotated[str | None, Query(max_length=32, description="Only this town.")] = None,
                       level: Annotated[schemas.Level | None, Query(description="Only this level.")] = None,
                       as_of: Annotated[date | None, Query(description="Ranking at the latest snapshot on or "
                                                                       "before this date.")] = None,
                       ) -> schemas.Ranking:
        """Entities by risk, highest first, with the change since the previous snapshot and the
        top three reasons. A county token sees its county only."""
        request.state.entity = entity
        return views.ranking(live(entity), caller, county=county, town=town, level=level, limit=limit,
                             offset=offset, as_of=as_of)

    @router.get("/v1/villages/{id}", response_model=schemas.VillageDetail, tags=["risk"],
                responses=_errors(*AUTH_ERRORS, 403))
    async def village(request: Request, id: Id, caller: Caller) -> schemas.EntityDetail:
        """A village's score, level, grouped explanation (raw values, county medians, zh/en
        reasons) and score history."""
        request.state.entity = id
        return views.detail(live("village"), caller, id)

    @router.get("/v1/projects/{id}", response_model=schemas.ProjectDetail, tags=["risk"],
                responses=_errors(*AUTH_ERRORS, 403))
    async def project(request: Request, id: Id, caller: Caller) -> schemas.EntityDetail:
        """A project's score, level, grouped explanation and score history."""
        request.state.entity = id
        return views.detail(live("project"), caller, id)

    @router.post("/v1/score/{entity}", response_model=schemas.WhatIfResult, tags=["risk"],
                 responses=_errors(*AUTH_ERRORS, 400, 403, 413))
    async def score(request: Request, entity: schemas.Entity, body: schemas.WhatIfRequest,
                    caller: Caller) -> schemas.WhatIfResult:
        """What-if: score feature values — an entity's current ones with overrides, or values
        alone — and explain the result; ``model_ms`` is the model's time."""
        request.state.entity = body.id or entity
        scored = live(entity)
        result = views.what_if(scored, caller, body)
        metrics.scoring.labels(entity, "what_if").observe(result.model_ms / 1000)
        return result

    @router.get("/v1/alerts", response_model=schemas.Alerts, tags=["risk"], responses=_errors(*AUTH_ERRORS))
    async def alerts(caller: Caller, since: Annotated[date, Query(description="Entered on or after this date.")],
                     entity: Annotated[schemas.Entity | None, Query(description="Only this kind.")] = None,
                     limit: Limit = 50, offset: Offset = 0) -> schemas.Alerts:
        """Villages and projects that entered orange or red since a date."""
        scored = [live(entity)] if entity else list(service.live.values())
        return views.alerts(scored, caller, since, limit, offset)

    @router.post("/v1/plans", response_model=schemas.PlanResult, tags=["prevention"],
                 responses=_errors(*AUTH_ERRORS, 400, 403, 413, 503))
    async def plans(request: Request, body: schemas.PlanRequest, caller: Caller) -> schemas.PlanResult:
        """A plan: where to send mediation teams, legal advisers, patrol hours, hearings and
        compensation within the budgets (defaults for those not named) so as to avert the most
        incidents expected within the horizon (docs/prevention.md). A county token plans within
        its county only."""
        request.state.entity = body.scope or (f"county:{caller.county}" if caller.county else "city")
        return await run_in_threadpool(planner.plan, caller, body)

    @router.post("/admin/reload", response_model=schemas.ReloadResult, tags=["operations"],
                 responses=_errors(*AUTH_ERRORS, 403, 409))
    async def reload(caller: Caller) -> schemas.ReloadResult:
        """Swap to the registry's current champions (admin scope). The new models are loaded and
        every entity scored before the swap; a damaged or incompatible model is refused (409)
        and the live ones keep serving."""
        if not caller.is_admin:
            raise ADMIN_ONLY
        try:
            old, new, seconds = await run_in_threadpool(service.reload)
        except ReloadInProgress:
            raise ApiError(409, "reload_in_progress", "Another reload is running; the live models keep serving.")
        except FengqiaoError as err:
            raise ApiError(409, "reload_refused", f"Reload refused; the live models keep serving. {err}") from None
        return schemas.ReloadResult(seconds=seconds, models=[
            schemas.ReloadedModel(entity=e, previous_version=old[e].version if e in old else "", version=s.version,
                                  snapshot=s.snapshots[-1]) for e, s in new.items()])

    return router
