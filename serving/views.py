"""The API's answers, computed from the scored entities for one principal.

Answers are assembled as plain dicts and validated into their response model once, at the
end: pydantic-core then builds the nested models in Rust, several times faster than building
hundreds of small models one by one in Python (measured on a 270-feature explanation).

Every function here applies the scope rule first: a county token sees exactly the entities that
belong to its county (``serving.places``); anything else — another county's entity, an id that
does not exist, a county filter outside the scope — is the one :data:`NOT_VISIBLE` answer.
Ranks are ranks among what the token may see: city-wide for city and admin tokens, within the
county for a county token.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from datetime import date

import numpy as np

from models.bundle import Explanation as BundleExplanation
from models.bundle import explain_rows
from serving import schemas
from serving.errors import NOT_VISIBLE, ApiError
from serving.scored import ScoredEntities, county_reference
from serving.tokens import Principal


def _number(value: float) -> float | None:
    """A float for JSON: None for NaN (unknown)."""
    value = float(value)
    return None if math.isnan(value) else value


def _numbers(values: np.ndarray) -> list[float | None]:
    """Floats for JSON, None for NaN (unknown)."""
    return [None if v != v else v for v in np.asarray(values, dtype=float).tolist()]  # noqa: PLR0124 (NaN test)


def visible(scored: ScoredEntities, principal: Principal) -> np.ndarray:
    """Boolean mask of the entities ``principal`` may see."""
    if principal.county is None:
        return np.ones(len(scored.places.ids), dtype=bool)
    return scored.places.in_county(principal.county)


def _ranks(scored: ScoredEntities, principal: Principal) -> np.ndarray:
    if principal.county is None:
        return scored.city_rank
    return scored.county_rank.get(principal.county, np.zeros_like(scored.city_rank))


def entity_row(scored: ScoredEntities, principal: Principal, entity_id: str) -> int:
    """The index of a visible entity scored at the latest snapshot, else NOT_VISIBLE."""
    i = scored.index.get(entity_id)
    if i is None or not scored.present[scored.latest, i] or not visible(scored, principal)[i]:
        raise NOT_VISIBLE
    return i


def _change(scored: ScoredEntities, s: int, i: int) -> float | None:
    if s == 0 or not scored.present[s - 1, i]:
        return None
    return float(scored.probability[s, i] - scored.probability[s - 1, i])


def _reasons(explanation: BundleExplanation) -> list[dict]:
    """``schemas.Reason`` fields of an explanation's reasons."""
    return [{"feature": r.feature, "group": r.group, "value": _number(r.value),
             "county_median": _number(r.county_median), "log_odds": r.log_odds,
             "probability_change": r.probability_change, "text_zh": r.text_zh, "text_en": r.text_en}
            for r in explanation.reasons]


def explanation(scored: ScoredEntities, explained: BundleExplanation, values: np.ndarray, reference: np.ndarray,
                contributions: np.ndarray) -> dict:
    """``schemas.Explanation`` fields: the bundle's groups and reasons, each group with its
    features' values, county medians and contributions (log-odds), largest first."""
    bundle = scored.bundle
    shown, medians, log_odds = _numbers(values), _numbers(reference), np.asarray(contributions[:-1], dtype=float)
    members: dict[str, list[int]] = {}
    for j in np.argsort(-np.abs(log_odds), kind="stable").tolist():
        members.setdefault(bundle.feature_groups[j], []).append(j)
    odds = log_odds.tolist()
    groups = [{"group": g.group, "title_zh": g.title_zh, "title_en": g.title_en, "log_odds": g.log_odds,
               "probability_change": g.probability_change,
               "features": [{"feature": bundle.feature_names[j], "value": shown[j], "county_median": medians[j],
                             "log_odds": odds[j], "actionable": bundle.actionable[j]}
                            for j in members.get(g.group, [])]}
              for g in explained.groups]
    return {"raw_score": explained.raw_score, "probability": explained.probability, "level": explained.level,
            "base_probability": explained.base_probability, "groups": groups, "reasons": _reasons(explained)}


def ranking(scored: ScoredEntities, principal: Principal, *, county: str | None, town: str | None,
            level: str | None, limit: int, offset: int, as_of: date | None) -> schemas.Ranking:
    """One page of the ranking at the latest snapshot (or the latest on or before ``as_of``)."""
    s = scored.latest if as_of is None else scored.snapshot_at(as_of)
    if s is None:
        raise ApiError(404, "snapshot_not_held", f"as_of precedes the first snapshot the service holds "
                       f"({scored.snapshots[0].isoformat()}).", "query.as_of")
    if county is not None and principal.county not in (None, county):
        raise NOT_VISIBLE
    mask = visible(scored, principal)
    if county is not None:
        mask = mask & scored.places.in_county(county)
    if town is not None:
        mask = mask & scored.places.town_mask(town)
    if level is not None:
        mask = mask & (scored.level[s] == level)
    rows = scored.order[s][mask[scored.order[s]]]
    page = rows[offset:offset + limit]
    return schemas.Ranking.model_validate({
        "entity": scored.entity, "snapshot": scored.snapshots[s], "model_version": scored.version,
        "total": len(rows), "limit": limit, "offset": offset, "items": _ranking_items(scored, principal, s, page)})


def _ranking_items(scored: ScoredEntities, principal: Principal, s: int, page: np.ndarray) -> list:
    """The ranking items of entities ``page`` at snapshot ``s`` with the principal's ranks. Those
    of the latest snapshot are built once per scope and entity and kept in ``scored.memo``."""
    ranks, places = _ranks(scored, principal)[s], scored.places

    def item(i: int, explained: BundleExplanation) -> dict:
        return {**places.fields(i), "probability": float(scored.probability[s, i]), "level": scored.level[s, i],
                "rank": int(ranks[i]), "change": _change(scored, s, i), "reasons": _reasons(explained)}

    if s != scored.latest:
        return [item(i, explained) for i, explained in zip(page.tolist(), scored.explain(s, page))]
    items = []
    for i in page.tolist():
        key = ("ranking_item", principal.county, i)
        if key not in scored.memo:
            scored.memo[key] = schemas.RankingItem.model_validate(item(i, scored.explanations[i]))
        items.append(scored.memo[key])
    return items


def _history(scored: ScoredEntities, entity_id: str) -> list[dict]:
    """``schemas.HistoryPoint`` fields of an entity's published scores."""
    return [{"snapshot": h.snapshot, "probability": h.probability, "level": h.level,
             "model_version": h.model_version, "scored_at": h.scored_at} for h in scored.history.get(entity_id, ())]


def detail(scored: ScoredEntities, principal: Principal, entity_id: str) -> schemas.EntityDetail:
    """A village's or project's latest score, full explanation and published history."""
    i = entity_row(scored, principal, entity_id)
    s, places = scored.latest, scored.places
    rows = np.array([i])
    common = {
        **places.fields(i), "kind": places.kind[i], "snapshot": scored.snapshots[s], "model_version": scored.version,
        "probability": float(scored.probability[s, i]), "level": scored.level[s, i], "rank": int(_ranks(scored, principal)[s, i]), "change": _change(scored, s, i),
        "explanation": explanation(scored, scored.explanations[i], scored.features[s, i], scored.reference(s, rows)[0],
                                scored.contributions[i]),
        "history": _history(scored, entity_id)}
    if scored.entity == "village":
        return schemas.VillageDetail.model_validate({"entity": "village", **common})
    seen = set(scored.places.county_ids if principal.county is None else [principal.county])
    counties = [c for c in places.counties[i] if c in seen]
    return schemas.ProjectDetail.model_validate({
        "entity": "project", "counties": counties,
        "villages": _visible_villages(scored, places.villages[i], principal), **common})


def _visible_villages(scored: ScoredEntities, villages: Sequence[str], principal: Principal) -> list[str]:
    """The affected villages a principal may see: all for city and admin; for a county token,
    those of its county (the project's place table knows each village's county)."""
    if principal.county is None:
        return list(villages)
    return [v for v in villages if scored.places.village_county.get(v) == principal.county]


def what_if(scored: ScoredEntities, principal: Principal, request: schemas.WhatIfRequest) -> schemas.WhatIfResult:
    """Score one row made of an entity's current features (or nothing: all missing) with the
    request's values on top, and explain it."""
    bundle, s = scored.bundle, scored.latest
    position = {name: j for j, name in enumerate(bundle.feature_names)}
    for name in request.features:
        if name not in position:
            raise ApiError(422, "unknown_feature", f"Not a feature of the {scored.entity} model; "
                           f"GET /v1/models/{scored.entity} lists them.", f"body.features.{name}")
    current = None
    if request.id is not None:
        i = entity_row(scored, principal, request.id)
        x, reference = scored.features[s, i].copy(), scored.reference(s, np.array([i]))[0]
        current = float(scored.probability[s, i])
    else:
        county = request.county if request.county is not None else principal.county
        if county is not None and principal.county not in (None, county):
            raise NOT_VISIBLE
        x = np.full(len(bundle.feature_names), np.nan)
        reference = _county_medians(scored, county)
    for name, value in request.features.items():
        x[position[name]] = np.nan if value is None else value
    started = time.perf_counter()
    contributions = bundle.contributions(x[None, :])
    explained = explain_rows(bundle, x[None, :], reference[None, :], contributions=contributions)[0]
    model_ms = 1000 * (time.perf_counter() - started)
    return schemas.WhatIfResult.model_validate({
        "entity": scored.entity, "id": request.id, "model_version": scored.version,
        "snapshot": scored.snapshots[s] if request.id is not None else None, "probability": explained.probability,
        "level": explained.level, "current_probability": current,
        "change": None if current is None else explained.probability - current,
        "explanation": explanation(scored, explained, x, reference, contributions[0]),
        "overridden": sorted(request.features), "missing": int(np.isnan(x).sum()), "model_ms": model_ms})


def _county_medians(scored: ScoredEntities, county: str | None) -> np.ndarray:
    """The latest medians of ``county`` (NaN for no county; NOT_VISIBLE for an unknown one)."""
    if county is None:
        return np.full(len(scored.bundle.feature_names), np.nan)
    counties = scored.places.county_ids
    if county not in counties:
        raise NOT_VISIBLE
    return county_reference(scored.county_medians, np.array([counties.index(county)]), scored.latest,
                            np.array([0]))[0]


def alerts(all_scored: Sequence[ScoredEntities], principal: Principal, since: date, limit: int,
           offset: int) -> schemas.Alerts:
    """Entities that entered orange or red at a snapshot on or after ``since`` (orange or red
    there, neither at the snapshot before), among those scored at the latest snapshot. Newest
    first, then by probability. The service holds a window of snapshots: ``from_snapshot`` says
    where the answer starts (None: no snapshot on or after ``since``)."""
    found: list[tuple[date, float, ScoredEntities, int, int]] = []
    starts = []
    for scored in all_scored:
        days = np.array(scored.snapshots, dtype="datetime64[D]")
        start = max(1, int(np.searchsorted(days, np.datetime64(since, "D"))))
        if start <= scored.latest:
            starts.append(scored.snapshots[start])
        mask = visible(scored, principal) & scored.present[-1]
        for s in range(start, len(scored.snapshots)):
            entered = mask & scored.present[s - 1] & scored.alerting[s] & ~scored.alerting[s - 1]
            found += [(scored.snapshots[s], float(scored.probability[s, i]), scored, s, int(i))
                      for i in np.flatnonzero(entered)]
    found.sort(key=lambda hit: (hit[0], hit[1]), reverse=True)
    items = [{**scored.places.fields(i), "entity": scored.entity, "entered_on": day, "level": scored.level[s, i],
              "probability": p, "current_level": scored.level[scored.latest, i],
              "current_probability": float(scored.probability[scored.latest, i])}
             for day, p, scored, s, i in found[offset:offset + limit]]
    return schemas.Alerts.model_validate({
        "since": since, "from_snapshot": min(starts, default=None),
        "to_snapshot": max(scored.snapshots[-1] for scored in all_scored), "total": len(found), "limit": limit,
        "offset": offset, "items": items})
