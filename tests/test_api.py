"""The scoring API against a real uvicorn server on loopback: every route, every scope rule,
errors, limits, the audit log, metrics, and reloads while serving."""

from __future__ import annotations

import json
import math
import shutil
import threading
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest
from api_world import (
    COUNTY_A,
    COUNTY_B,
    SHARED_PROJECT,
    Api,
    LiveServer,
    serving_settings,
    tokens_of,
)
from typer.testing import CliRunner

from fengqiao.errors import ConfigurationError
from fengqiao.interventions import Plan, read_plan
from models.bundle import load_bundle
from models.data import load_training_table
from pipelines.cli import app as cli
from serving.app import create_app


@pytest.fixture(scope="module")
def api(api_root) -> Api:
    (api_root / "adopted").mkdir(exist_ok=True)
    settings = serving_settings(api_root, api_root / "bundles" / "1", api_rate_per_second=1000, api_rate_burst=1000,
                         api_max_body_bytes=4096, api_max_page=100, plans_in_force=api_root / "adopted")
    with LiveServer(create_app(settings)) as server:
        yield Api(server.url, api_root, tokens_of(api_root))


def _ranking(api: Api, scope: str, entity: str = "village", **params) -> dict:
    with api.client(scope) as client:
        response = client.get(f"/v1/rankings/{entity}", params={"limit": 100, **params})
    assert response.status_code == 200, response.text
    return response.json()


def _all(api: Api, scope: str, entity: str = "village", **params) -> list[dict]:
    items, offset = [], 0
    while True:
        page = _ranking(api, scope, entity, offset=offset, **params)
        items += page["items"]
        offset += page["limit"]
        if offset >= page["total"]:
            return items


# -- health, auth, errors ---------------------------------------------------------------------

def test_health_and_readiness_need_no_token(api):
    with api.client(None) as client:
        assert client.get("/healthz").json() == {"status": "ok"}
        ready = client.get("/readyz").json()
    assert ready["ready"] is True and ready["models"] == {"village": "1", "project": "1"}


PROTECTED = [("GET", "/v1/models"), ("GET", "/v1/models/village"), ("GET", "/v1/rankings/village"),
             ("GET", "/v1/villages/610722100001"), ("GET", "/v1/projects/PRJ00001"), ("POST", "/v1/score/village"),
             ("GET", "/v1/alerts?since=2025-01-01"), ("POST", "/admin/reload"), ("GET", "/metrics"),
             ("POST", "/v1/plans")]


@pytest.mark.parametrize(("method", "path"), PROTECTED)
def test_every_route_refuses_a_missing_or_wrong_token_with_one_body(api, method, path):
    bodies = set()
    for headers in ({}, {"Authorization": "Bearer fq_0000abcd_" + "x" * 43}, {"Authorization": "Basic abc"},
                    {"Authorization": "Bearer " + api.tokens["city"][:-2]}):
        response = httpx.request(method, api.url + path, headers=headers, json={}, timeout=30)
        assert response.status_code == 401
        assert response.headers["www-authenticate"].startswith("Bearer")
        bodies.add(response.content)
    assert len(bodies) == 1
    assert json.loads(bodies.pop())["error"]["code"] == "unauthorized"


def test_errors_are_json_naming_the_field(api):
    with api.client() as client:
        too_many = client.get("/v1/rankings/village", params={"limit": 101})
        bad_entity = client.get("/v1/rankings/person")
        bad_date = client.get("/v1/alerts", params={"since": "yesterday-ish"})
        no_route = client.get("/v2/anything")
    assert too_many.status_code == 422 and too_many.json()["error"]["field"] == "query.limit"
    assert bad_entity.status_code == 422 and bad_entity.json()["error"]["field"] == "path.entity"
    assert "person" not in bad_entity.text
    assert bad_date.status_code == 422 and bad_date.json()["error"]["field"] == "query.since"
    assert "yesterday-ish" not in bad_date.text
    assert no_route.status_code == 404 and no_route.json()["error"]["code"] == "not_found"


def test_responses_carry_security_headers_and_no_cors_grant(api):
    with api.client() as client:
        response = client.get("/v1/models", headers={"Origin": "https://elsewhere.example"})
        preflight = client.options("/v1/models", headers={"Origin": "https://elsewhere.example",
                                                          "Access-Control-Request-Method": "GET"})
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "DENY"
    assert "default-src 'none'" in response.headers["content-security-policy"]
    assert response.headers["cache-control"] == "no-store"
    assert "access-control-allow-origin" not in response.headers
    assert "access-control-allow-origin" not in preflight.headers


def test_an_oversized_body_is_refused_with_413(api):
    features = {f"feature_{i}": 1.0 for i in range(400)}
    with api.client() as client:
        response = client.post("/v1/score/village", json={"features": features})
        chunked = client.post("/v1/score/village", content=iter([b'{"features": {', b" " * 5000, b"}}"]),
                              headers={"Content-Type": "application/json"})
    assert response.status_code == 413 and response.json()["error"]["code"] == "body_too_large"
    assert chunked.status_code == 413


def test_reload_needs_the_admin_scope(api):
    with api.client("city") as client:
        response = client.post("/admin/reload")
    assert response.status_code == 403 and "admin" in response.json()["error"]["message"]


# -- rankings -----------------------------------------------------------------------------------

def test_city_ranking_is_sorted_paged_and_explained(api):
    first = _ranking(api, "city", limit=10)
    second = _ranking(api, "city", limit=10, offset=10)
    items = first["items"] + second["items"]
    assert first["total"] == second["total"] > 20
    assert [item["rank"] for item in items] == list(range(1, 21))
    probabilities = [item["probability"] for item in items]
    assert probabilities == sorted(probabilities, reverse=True)
    top = items[0]
    assert top["name"] and top["county_id"] and top["town_id"] and top["level"] in ("red", "orange", "yellow", "blue")
    assert 1 <= len(top["reasons"]) <= 3 and all(r["log_odds"] > 0 for r in top["reasons"])
    assert top["reasons"][0]["text_zh"] and top["reasons"][0]["text_en"]
    assert any(item["change"] is not None for item in items)


def test_ranking_filters_by_county_town_and_level(api):
    everyone = _all(api, "city")
    in_a = _all(api, "city", county=COUNTY_A)
    assert {i["county_id"] for i in in_a} == {COUNTY_A}
    assert [i["id"] for i in in_a] == [i["id"] for i in everyone if i["county_id"] == COUNTY_A]
    assert [i["rank"] for i in in_a] == [i["rank"] for i in everyone if i["county_id"] == COUNTY_A], \
        "a city token's ranks stay city ranks under filters"
    town = in_a[0]["town_id"]
    assert {i["town_id"] for i in _all(api, "city", town=town)} == {town}
    level = everyone[0]["level"]
    assert [i["id"] for i in _all(api, "city", level=level)] == [i["id"] for i in everyone if i["level"] == level]


def test_ranking_as_of_an_earlier_snapshot(api):
    latest = _ranking(api, "city", limit=5)
    earlier = _ranking(api, "city", limit=5, as_of=(pd.Timestamp(latest["snapshot"]) - pd.Timedelta(days=1)).date())
    assert earlier["snapshot"] == (pd.Timestamp(latest["snapshot"]) - pd.Timedelta(days=7)).date().isoformat()
    assert all(item["reasons"] is not None for item in earlier["items"])
    with api.client() as client:
        too_early = client.get("/v1/rankings/village", params={"as_of": "1999-01-01"})
    assert too_early.status_code == 404 and too_early.json()["error"]["field"] == "query.as_of"


def test_county_token_ranks_only_its_county(api):
    mine = _all(api, f"county:{COUNTY_A}")
    city = _all(api, "city", county=COUNTY_A)
    assert [i["id"] for i in mine] == [i["id"] for i in city]
    assert [i["rank"] for i in mine] == list(range(1, len(mine) + 1)), "ranks within the county"


# -- scope rules ------------------------------------------------------------------------------

def _other_village(api: Api) -> str:
    return _ranking(api, "city", county=COUNTY_B, limit=1)["items"][0]["id"]


def test_county_token_cannot_read_rank_alert_on_or_what_if_another_county(api):
    other = _other_village(api)
    with api.client(f"county:{COUNTY_A}") as client:
        responses = {
            "detail": client.get(f"/v1/villages/{other}"),
            "rank": client.get("/v1/rankings/village", params={"county": COUNTY_B}),
            "what_if": client.post("/v1/score/village", json={"id": other, "features": {}}),
            "what_if_county": client.post("/v1/score/village", json={"county": COUNTY_B, "features": {}}),
            "missing": client.get("/v1/villages/000000000000"),
        }
        alerts = client.get("/v1/alerts", params={"since": "2000-01-01", "limit": 100}).json()
        towns = client.get("/v1/rankings/village", params={"town": _ranking(
            api, "city", county=COUNTY_B, limit=1)["items"][0]["town_id"]}).json()
    assert {r.status_code for r in responses.values()} == {403}
    assert len({r.content for r in responses.values()}) == 1, "one body for missing and out of scope"
    assert alerts["items"] and {i["county_id"] for i in alerts["items"]} <= {COUNTY_A}
    assert towns["total"] == 0, "another county's town filters to nothing"


def test_missing_and_out_of_scope_entities_get_identical_403_bodies(api):
    other = _other_village(api)
    with api.client(f"county:{COUNTY_A}") as client:
        out_of_scope = client.get(f"/v1/villages/{other}")
        missing = client.get("/v1/villages/610799999999")
        project = client.get("/v1/projects/PRJ99999")
    assert out_of_scope.status_code == missing.status_code == project.status_code == 403
    assert out_of_scope.content == missing.content == project.content
    assert out_of_scope.headers["content-length"] == missing.headers["content-length"]


def test_project_spanning_two_counties_is_seen_by_both_with_only_their_villages(api):
    with api.client(f"county:{COUNTY_A}") as a, api.client(f"county:{COUNTY_B}") as b, api.client() as city:
        seen_a, seen_b, seen_city = (c.get(f"/v1/projects/{SHARED_PROJECT}").json() for c in (a, b, city))
        ranked_a = [i["id"] for i in a.get("/v1/rankings/project").json()["items"]]
    assert seen_city["counties"] == [COUNTY_B, COUNTY_A]
    assert seen_a["counties"] == [COUNTY_A] and seen_b["counties"] == [COUNTY_B]
    assert set(seen_a["villages"]) | set(seen_b["villages"]) == set(seen_city["villages"])
    assert not set(seen_a["villages"]) & set(seen_b["villages"])
    assert all(v.startswith(COUNTY_A) for v in seen_a["villages"])
    assert SHARED_PROJECT in ranked_a


# -- details, what-if, alerts, models ---------------------------------------------------------

def test_village_detail_has_an_explanation_that_adds_up_and_the_published_history(api):
    village = _ranking(api, "city", limit=1)["items"][0]
    with api.client() as client:
        detail = client.get(f"/v1/villages/{village['id']}").json()
    assert detail["probability"] == village["probability"] and detail["rank"] == 1
    explanation = detail["explanation"]
    total = explanation["base_probability"] + sum(g["probability_change"] for g in explanation["groups"])
    assert math.isclose(total, detail["probability"], abs_tol=1e-9)
    log_odds = [f["log_odds"] for g in explanation["groups"] for f in g["features"]]
    bias = explanation["raw_score"] - sum(log_odds)
    assert math.isclose(sum(g["log_odds"] for g in explanation["groups"]) + bias, explanation["raw_score"],
                        abs_tol=1e-9)
    assert [r["feature"] for r in explanation["reasons"]] == [r["feature"] for r in village["reasons"]]
    assert any(f["county_median"] is not None for g in explanation["groups"] for f in g["features"])
    history = pd.read_parquet(api.root / "warehouse" / "score_history_village.parquet")
    mine = history[history["village_id"] == village["id"]].sort_values("snapshot")
    assert [h["probability"] for h in detail["history"]] == pytest.approx(mine["probability"].tolist())
    assert {h["model_version"] for h in detail["history"]} == {"1"}


def test_what_if_scores_overrides_exactly_as_the_bundle_does(api):
    village = _ranking(api, "city", limit=1)["items"][0]
    feature = village["reasons"][0]["feature"]
    with api.client() as client:
        result = client.post("/v1/score/village", json={"id": village["id"], "features": {feature: 0}}).json()
        blank = client.post("/v1/score/village", json={"features": {feature: 3.0}}).json()
    bundle = load_bundle(api.root / "bundles" / "1" / "village")
    table = load_training_table(api.root / "warehouse", "village", 30, labelled_only=False).frame
    row = table[(table["village_id"] == village["id"]) & (table["snapshot"] == table["snapshot"].max())]
    x = row[bundle.feature_names].to_numpy(dtype=float, copy=True)
    x[0, bundle.feature_names.index(feature)] = 0
    assert result["probability"] == pytest.approx(float(bundle.probability(x)[0]), abs=1e-12)
    assert result["current_probability"] == village["probability"]
    assert result["change"] == pytest.approx(result["probability"] - village["probability"])
    assert result["overridden"] == [feature] and result["model_ms"] > 0
    assert blank["id"] is None and blank["missing"] == len(bundle.feature_names) - 1


def test_what_if_refuses_unknown_features_and_bad_values_without_echoing_them(api):
    with api.client() as client:
        unknown = client.post("/v1/score/village", json={"features": {"secret_plan": 1}})
        text = client.post("/v1/score/village", json={"features": {"mediators": "DROP TABLE regions"}})
        odd_key = client.post("/v1/score/village", json={"features": {"<b>name</b>": 1}})
        infinite = client.post("/v1/score/village", content=b'{"features": {"mediators": Infinity}}',
                               headers={"Content-Type": "application/json"})
    assert unknown.status_code == 422 and unknown.json()["error"]["field"] == "body.features.secret_plan"
    assert text.status_code == 422 and "DROP TABLE" not in text.text
    assert text.json()["error"]["field"] == "body.features.mediators"
    assert odd_key.status_code == 422 and "<b>" not in odd_key.text
    assert infinite.status_code == 422


def test_alerts_are_entries_into_orange_or_red_newest_first(api):
    with api.client() as client:
        page = client.get("/v1/alerts", params={"since": "2000-01-01", "entity": "village", "limit": 100}).json()
    assert page["total"] == len(page["items"]) > 0
    assert all(i["level"] in ("orange", "red") for i in page["items"])
    assert [i["entered_on"] for i in page["items"]] == sorted((i["entered_on"] for i in page["items"]), reverse=True)
    entry = page["items"][0]
    before = _ranking(api, "city", as_of=(pd.Timestamp(entry["entered_on"]) - pd.Timedelta(days=7)).date(),
                      limit=100)
    previous = {i["id"]: i["level"] for i in _all(api, "city", as_of=before["snapshot"])}
    assert previous[entry["id"]] not in ("orange", "red")
    later = client_get_json(api, "/v1/alerts", since=page["to_snapshot"], entity="village", limit=100)
    assert all(i["entered_on"] == page["to_snapshot"] for i in later["items"])


def client_get_json(api: Api, path: str, **params) -> dict:
    with api.client() as client:
        response = client.get(path, params=params)
    assert response.status_code == 200, response.text
    return response.json()


def test_models_routes_describe_the_live_bundles(api):
    listed = client_get_json(api, "/v1/models")["models"]
    village = client_get_json(api, "/v1/models/village")
    assert {m["entity"]: m["version"] for m in listed} == {"village": "1", "project": "1"}
    bundle = load_bundle(api.root / "bundles" / "1" / "village")
    assert [f["name"] for f in village["features"]] == bundle.feature_names
    assert village["level_thresholds"] == {"red": 0.3, "orange": 0.15, "yellow": 0.05}
    assert village["fingerprint"] == bundle.meta["training_data_fingerprint"] and village["horizon_days"] == 30


def test_models_show_the_last_drift_check_of_a_refresh(api):
    assert client_get_json(api, "/v1/models/project")["last_drift_check"] is None
    record = {"entity": "village", "checked_at": "2026-11-23T06:05:00+00:00", "warnings": ["feature x PSI 0.4 > 0.25"]}
    path = api.root / "warehouse" / "drift_village.json"
    path.write_text(json.dumps(record), encoding="utf-8")
    try:
        village = client_get_json(api, "/v1/models/village")
    finally:
        path.unlink()
    assert village["last_drift_check"].startswith("2026-11-23T06:05") and village["drift_warnings"] == record["warnings"]


def test_metrics_count_requests_and_show_the_live_model(api):
    client_get_json(api, "/v1/models")
    with api.client() as client:
        text = client.get("/metrics").text
    assert 'fengqiao_http_requests_total{method="GET",route="/v1/models",status="200"}' in text
    assert 'fengqiao_model_info{entity="village",snapshot=' in text and 'version="1"' in text
    assert "fengqiao_http_request_duration_seconds_bucket" in text and "fengqiao_scoring_seconds" in text


def test_audit_log_records_each_request_without_payloads(api):
    village = _ranking(api, "city", limit=1)["items"][0]
    with api.client(f"county:{COUNTY_B}") as client:
        client.post("/v1/score/village", json={"id": village["id"], "features": {"mediators": 12345.5}})
    lines = [json.loads(line) for line in (api.root / "audit" / "api.jsonl").read_text().splitlines()]
    last = lines[-1]
    assert last["route"] == "/v1/score/{entity}" and last["entity"] == village["id"]
    assert last["status"] in (200, 403) and last["token"] is not None
    assert set(last) == {"time", "token", "method", "route", "entity", "status"}
    assert "12345.5" not in (api.root / "audit" / "api.jsonl").read_text()
    assert any(line["status"] == 401 and line["token"] is None for line in lines)


# -- plans ------------------------------------------------------------------------------------

PLAN_BUDGETS = {"mediation_team": 4, "legal_adviser": 2, "patrol_hours": 120, "hearing": 1, "compensation": 1}


def _plan(api: Api, scope: str, body: dict) -> httpx.Response:
    with api.client(scope) as client:
        return client.post("/v1/plans", json=body)


def test_a_plan_stays_within_its_budgets_and_names_entities_the_api_serves(api):
    response = _plan(api, "city", {"budgets": PLAN_BUDGETS})
    assert response.status_code == 200, response.text
    plan = response.json()
    Plan.model_validate(plan)
    assert plan["scope"] == "city" and plan["actions"]
    for name, amount in PLAN_BUDGETS.items():
        assert plan["budget_used"][name] <= amount
    served = {e: {i["id"] for i in _all(api, "city", e)} for e in ("village", "project")}
    assert all(a["id"] in served[a["entity"]] for a in plan["actions"])
    assert plan["model_versions"] == {"village": "1", "project": "1"}
    assert all(a["reasons_zh"] and a["reasons_en"] for a in plan["actions"])


def test_county_token_plans_only_within_its_county(api):
    own = _plan(api, f"county:{COUNTY_A}", {"budgets": PLAN_BUDGETS})
    assert own.status_code == 200
    plan = own.json()
    assert plan["scope"] == f"county:{COUNTY_A}"
    villages = {i["id"] for i in _all(api, f"county:{COUNTY_A}")}
    projects = {i["id"] for i in _all(api, f"county:{COUNTY_A}", "project")}
    assert all(a["id"] in (villages if a["entity"] == "village" else projects) for a in plan["actions"])
    refused = [_plan(api, f"county:{COUNTY_A}", {"scope": scope}) for scope in ("city", f"county:{COUNTY_B}")]
    unknown = _plan(api, "city", {"scope": "county:999999"})
    assert {r.status_code for r in [*refused, unknown]} == {403}
    assert len({r.content for r in [*refused, unknown]}) == 1


def test_a_plan_in_force_is_taken_into_account_and_a_broken_one_is_422_naming_it(api):
    first = _plan(api, "city", {"budgets": PLAN_BUDGETS}).json()
    slim = {"snapshot": first["snapshot"], "horizon_days": first["horizon_days"],
            "actions": [{k: a[k] for k in ("kind", "entity", "id", "amount", "weeks")} for a in first["actions"]]}
    second = _plan(api, "city", {"budgets": PLAN_BUDGETS, "in_force": [slim]})
    assert second.status_code == 200, second.text
    counts = second.json()["in_force"]
    assert counts["plans"] == 1 and counts["applied"] + counts["recorded"] == len(first["actions"])
    advised = {a["id"] for a in first["actions"] if a["kind"] == "legal_adviser"}
    assert advised and not advised & {a["id"] for a in second.json()["actions"] if a["kind"] == "legal_adviser"}
    broken = _plan(api, "city", {"in_force": [{**slim, "actions": [{"kind": "airlift", "entity": "village",
                                                                      "id": "V1"}]}]})
    assert broken.status_code == 422 and broken.json()["error"]["field"] == "body.in_force.0.actions.0.kind"


def test_adopted_plans_count_in_every_plan_and_a_broken_one_is_503_until_mended(api):
    first = _plan(api, "city", {"budgets": PLAN_BUDGETS}).json()
    assert first["in_force"]["plans"] == 0
    adopted = api.root / "adopted" / "first.json"
    try:
        adopted.write_text(json.dumps(first))
        second = _plan(api, "city", {"budgets": PLAN_BUDGETS}).json()
        assert second["in_force"]["plans"] == 1 and second["in_force"]["applied"] > 0
        advised = {a["id"] for a in first["actions"] if a["kind"] == "legal_adviser"}
        assert not advised & {a["id"] for a in second["actions"] if a["kind"] == "legal_adviser"}
        for text in ('{"snapshot": "2026-01-06"}',
                     json.dumps({**first, "actions": [{"kind": "airlift", "entity": "village", "id": "V1"}]})):
            adopted.write_text(text)
            broken = _plan(api, "city", {"budgets": PLAN_BUDGETS})
            assert broken.status_code == 503 and broken.json()["error"]["code"] == "plans_in_force_unreadable"
            assert "first.json" not in broken.text
    finally:
        adopted.unlink(missing_ok=True)
    assert _plan(api, "city", {"budgets": PLAN_BUDGETS}).json()["in_force"]["plans"] == 0


def test_a_query_parameter_given_twice_is_422_naming_it(api):
    with api.client() as client:
        response = client.get("/v1/rankings/village", params=[("county", "610702"), ("county", "x\t")])
        once = client.get("/v1/rankings/village", params={"county": "610702"})
    assert response.status_code == 422 and once.status_code == 200
    assert response.json()["error"]["field"] == "query.county"
    assert "x\t" not in response.text


def test_malformed_plan_requests_are_422_naming_the_field(api):
    negative = _plan(api, "city", {"budgets": {"mediation_team": -1}})
    unknown = _plan(api, "city", {"budgets": {"drones": 3}})
    bad_scope = _plan(api, "city", {"scope": "town:610722100"})
    assert negative.status_code == unknown.status_code == bad_scope.status_code == 422
    assert negative.json()["error"]["field"] == "body.budgets.mediation_team"
    assert unknown.json()["error"]["field"] == "body.budgets.drones"
    assert bad_scope.json()["error"]["field"] == "body.scope"
    assert "610722100" not in bad_scope.text


def test_the_api_and_the_command_line_make_the_same_plan(api, tmp_path, monkeypatch):
    monkeypatch.setenv("FENGQIAO_API_VILLAGE_MODEL", str(api.root / "bundles" / "1" / "village"))
    monkeypatch.setenv("FENGQIAO_API_PROJECT_MODEL", str(api.root / "bundles" / "1" / "project"))
    budget = ",".join(f"{k}={v}" for k, v in PLAN_BUDGETS.items())
    result = CliRunner().invoke(cli, ["--data-root", str(api.root), "plan", "--budget", budget,
                                      "--scope", f"county:{COUNTY_B}", "--out", str(tmp_path / "plan.json")])
    assert result.exit_code == 0, result.output
    written = read_plan(tmp_path / "plan.json")
    served = _plan(api, f"county:{COUNTY_B}", {"budgets": PLAN_BUDGETS}).json()
    key = ("kind", "entity", "id", "amount", "weeks")
    assert [a.model_dump(include=set(key)) for a in written.actions] == [{k: a[k] for k in key} for a in served["actions"]]
    assert served["expected_incidents_averted"] == pytest.approx(written.model_extra["expected_incidents_averted"])
    lines = [json.loads(line) for line in (api.root / "audit" / "api.jsonl").read_text().splitlines()]
    assert lines[-1]["route"] == "/v1/plans" and lines[-1]["entity"] == f"county:{COUNTY_B}"


# -- rate limit, reloads, refusing to start ---------------------------------------------------

def test_a_token_over_its_rate_gets_429_with_retry_after(api_root):
    settings = serving_settings(api_root, api_root / "bundles" / "1", api_entities=("village",), api_rate_per_second=0.5,
                         api_rate_burst=3)
    with LiveServer(create_app(settings)) as server:
        api = Api(server.url, api_root, tokens_of(api_root))
        with api.client("city") as city, api.client("admin") as admin:
            statuses = [city.get("/v1/models").status_code for _ in range(5)]
            limited = city.get("/v1/models")
            other = admin.get("/v1/models")
    assert statuses[:3] == [200, 200, 200] and statuses[3:] == [429, 429]
    assert limited.json()["error"]["code"] == "rate_limited" and int(limited.headers["retry-after"]) >= 1
    assert other.status_code == 200, "budgets are per token"


@pytest.fixture(scope="module")
def reloadable(api_root, tmp_path_factory) -> Api:
    """A server whose models live in folders that the tests replace, as a registry's champion
    alias moves."""
    live = tmp_path_factory.mktemp("live")
    for entity in ("village", "project"):
        shutil.copytree(api_root / "bundles" / "1" / entity, live / entity)
    settings = serving_settings(api_root, live, api_rate_per_second=1000, api_rate_burst=1000)
    with LiveServer(create_app(settings)) as server:
        yield Api(server.url, live, tokens_of(api_root))


def _versions(api: Api) -> dict[str, str]:
    with api.client() as client:
        return {m["entity"]: m["version"] for m in client.get("/v1/models").json()["models"]}


def _install(bundles: Path, live: Path) -> None:
    for entity in ("village", "project"):
        shutil.rmtree(live / entity)
        shutil.copytree(bundles / entity, live / entity)


def test_reload_swaps_to_the_new_models_and_models_show_them(reloadable, api_root):
    assert _versions(reloadable) == {"village": "1", "project": "1"}
    _install(api_root / "bundles" / "2", reloadable.root)
    with reloadable.client("admin") as admin:
        response = admin.post("/admin/reload")
    assert response.status_code == 200, response.text
    assert {m["entity"]: (m["previous_version"], m["version"]) for m in response.json()["models"]} == {
        "village": ("1", "2"), "project": ("1", "2")}
    assert _versions(reloadable) == {"village": "2", "project": "2"}
    assert _ranking(reloadable, "city", limit=1)["model_version"] == "2"


def test_reload_of_a_broken_model_is_refused_and_the_old_keeps_serving(reloadable, api_root):
    before = _versions(reloadable)
    _install(api_root / "bundles" / "1", reloadable.root)
    arrays = reloadable.root / "village" / "trees.npz"
    arrays.write_bytes(arrays.read_bytes()[: arrays.stat().st_size // 2])
    with reloadable.client("admin") as admin:
        response = admin.post("/admin/reload")
    assert response.status_code == 409
    error = response.json()["error"]
    assert error["code"] == "reload_refused" and "trees.npz" in error["message"]
    assert _versions(reloadable) == before
    assert _ranking(reloadable, "city", limit=3)["model_version"] == before["village"]


def test_requests_during_a_reload_are_all_answered(reloadable, api_root):
    _install(api_root / "bundles" / "1", reloadable.root)
    village = _ranking(reloadable, "city", limit=1)["items"][0]["id"]
    statuses: list[int] = []
    versions: set[str] = set()
    done = threading.Event()

    def hammer() -> None:
        with reloadable.client("city") as client:
            while not done.is_set():
                for path in ("/v1/rankings/village?limit=20", f"/v1/villages/{village}"):
                    response = client.get(path)
                    statuses.append(response.status_code)
                    versions.add(response.json().get("model_version", "?"))

    workers = [threading.Thread(target=hammer) for _ in range(4)]
    for worker in workers:
        worker.start()
    try:
        with reloadable.client("admin") as admin:
            reloaded = admin.post("/admin/reload")
    finally:
        done.set()
        for worker in workers:
            worker.join(timeout=60)
    assert reloaded.status_code == 200, reloaded.text
    assert len(statuses) > 20 and set(statuses) == {200}
    assert versions <= {"1", "2"} and _versions(reloadable) == {"village": "1", "project": "1"}


def test_the_service_refuses_to_start_naming_what_is_missing_or_damaged(api_root, tmp_path):
    good = api_root / "bundles" / "1"
    with pytest.raises(ConfigurationError, match="token store"):
        create_app(serving_settings(api_root, good, api_tokens_file=tmp_path / "none.json"))
    broken = tmp_path / "broken"
    shutil.copytree(good, broken)
    meta = json.loads((broken / "village" / "bundle.json").read_text())
    meta["level_thresholds"]["red"] = 0.99
    (broken / "village" / "bundle.json").write_text(json.dumps(meta))
    with pytest.raises(ConfigurationError, match="village model .*bundle.json"):
        create_app(serving_settings(api_root, broken))
    bare = tmp_path / "bare"
    shutil.copytree(api_root / "warehouse", bare / "warehouse")
    shutil.copytree(api_root / "secrets", bare / "secrets")
    (bare / "warehouse" / "score_history_village.parquet").unlink()
    with pytest.raises(ConfigurationError, match="score_history_village.parquet does not exist"):
        create_app(serving_settings(bare, good))
    (bare / "warehouse" / "score_history_village.parquet").write_bytes(b"PAR1 not really")
    with pytest.raises(ConfigurationError, match="score_history_village.parquet is not a readable"):
        create_app(serving_settings(bare, good))


def test_serve_command_refuses_in_one_line_without_a_token_store(tmp_path, monkeypatch):
    monkeypatch.setenv("FENGQIAO_DATA_ROOT", str(tmp_path / "var"))
    result = CliRunner().invoke(cli, ["serve", "--port", "8999"])
    assert result.exit_code == 2
    assert "token store" in result.stderr and "fengqiao token create" in result.stderr
    assert "Traceback" not in result.output


def test_probabilities_in_rankings_are_the_bundles_own(api):
    items = _ranking(api, "city", limit=5)["items"]
    bundle = load_bundle(api.root / "bundles" / "1" / "village")
    table = load_training_table(api.root / "warehouse", "village", 30, labelled_only=False).frame
    latest = table[table["snapshot"] == table["snapshot"].max()].set_index("village_id")
    x = latest.loc[[i["id"] for i in items], bundle.feature_names].to_numpy(dtype=float)
    assert np.allclose([i["probability"] for i in items], bundle.probability(x), atol=1e-12)
