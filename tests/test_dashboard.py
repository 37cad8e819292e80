"""The dashboard's server side against a real uvicorn server on loopback: the page and its files
with their own Content-Security-Policy, nothing loaded from outside, and the map route's scope
rules and numbers (the browser itself: test_dashboard_browser.py)."""

from __future__ import annotations

import re

import httpx
import pandas as pd
import pytest
from api_world import COUNTY_A, COUNTY_B, Api, LiveServer, serving_settings, tokens_of

from serving.app import create_app
from serving.dashboard import STATIC_DIR


@pytest.fixture(scope="module")
def api(api_root) -> Api:
    settings = serving_settings(api_root, api_root / "bundles" / "1", api_rate_per_second=1000, api_rate_burst=1000)
    with LiveServer(create_app(settings)) as server:
        yield Api(server.url, api_root, tokens_of(api_root))


def _map(api: Api, scope: str, **params) -> httpx.Response:
    with api.client(scope) as client:
        return client.get("/v1/map/villages", params=params)


def test_page_is_served_without_a_token_under_its_own_policy(api):
    page = httpx.get(api.url + "/", timeout=30)
    script = httpx.get(api.url + "/static/app.js", timeout=30)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert script.status_code == 200 and "javascript" in script.headers["content-type"]
    for response in (page, script):
        policies = response.headers.get_list("content-security-policy")
        assert len(policies) == 1, "two policies would both apply, and the API's forbids everything"
        assert "script-src 'self'" in policies[0] and "connect-src 'self'" in policies[0]
        assert "default-src 'none'" in policies[0] and "frame-ancestors 'none'" in policies[0]
        assert response.headers["x-content-type-options"] == "nosniff"
    with api.client() as client:
        assert client.get("/v1/models").headers["content-security-policy"] == "default-src 'none'; frame-ancestors 'none'"


def test_unknown_static_file_and_route_are_json_404s(api):
    for path in ("/static/nothing.js", "/v1/nothing"):
        response = httpx.get(api.url + path, timeout=30)
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "not_found"


def test_page_loads_nothing_from_outside_its_origin():
    files = sorted(STATIC_DIR.iterdir())
    assert {f.suffix for f in files} == {".html", ".css", ".js"}
    for file in files:
        text = file.read_text(encoding="utf-8")
        outside = [u for u in re.findall(r"(?:https?:)?//[\w.-]+\.\w+[^\s\"')]*", text)
                   if u != "http://www.w3.org/2000/svg"]
        assert outside == [], f"{file.name} refers to {outside}"
        assert "@import" not in text and "url(" not in text


def test_map_lists_every_visible_village_with_coordinates_level_and_change(api):
    answer = _map(api, "city").json()
    regions = pd.read_parquet(api.root / "warehouse" / "regions.parquet").set_index("village_id")
    with api.client() as client:
        ranking = client.get("/v1/rankings/village", params={"limit": 100}).json()
    assert answer["total"] == ranking["total"] == len(answer["items"])
    assert answer["snapshot"] == ranking["snapshot"] and answer["model_version"] == ranking["model_version"]
    by_id = {v["id"]: v for v in answer["items"]}
    for item in ranking["items"]:
        village = by_id[item["id"]]
        assert (village["probability"], village["level"], village["change"]) == (
            item["probability"], item["level"], item["change"])
        assert (village["county_id"], village["town_id"], village["name"]) == (
            item["county_id"], item["town_id"], item["name"])
    for village in answer["items"]:
        assert village["lat"] == pytest.approx(regions.loc[village["id"], "lat"])
        assert village["lon"] == pytest.approx(regions.loc[village["id"], "lon"])


def test_county_token_maps_only_its_county_and_cannot_ask_for_another(api):
    mine = _map(api, f"county:{COUNTY_A}").json()
    city_view = _map(api, "city", county=COUNTY_A).json()
    assert {v["county_id"] for v in mine["items"]} == {COUNTY_A}
    assert [v["id"] for v in mine["items"]] == [v["id"] for v in city_view["items"]]
    assert _map(api, f"county:{COUNTY_A}", county=COUNTY_A).json() == mine
    refused = _map(api, f"county:{COUNTY_A}", county=COUNTY_B)
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "forbidden"
    assert httpx.get(api.url + "/v1/map/villages", timeout=30).status_code == 401


def test_map_route_is_documented_with_its_response_model(api):
    schema = httpx.get(api.url + "/openapi.json", timeout=30).json()
    operation = schema["paths"]["/v1/map/villages"]["get"]
    assert operation["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith("/VillageMap")
    assert {"401", "403", "422", "429"} <= set(operation["responses"])
    assert "/" not in schema["paths"]
