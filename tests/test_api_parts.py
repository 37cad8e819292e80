"""The API's parts that need no model: token store, rate limiter, audit log, error fields,
places and the county rule of projects."""

from __future__ import annotations

import json
import stat

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from fengqiao.errors import ConfigurationError
from pipelines.cli import app
from serving.audit import AuditLog
from serving.errors import field_path
from serving.places import project_places, village_places
from serving.ratelimit import RateLimiter
from serving.tokens import TokenStore, create_token, digest, read_records, revoke_token


def test_token_store_keeps_only_the_digest_and_accepts_the_token(tmp_path):
    path = tmp_path / "tokens.json"
    token, record = create_token(path, "county:610722", note="Chenggu office")
    text = path.read_text()
    assert token not in text and token.split("_", 2)[2] not in text  # fq_<id>_<secret>; the secret may hold "_"
    assert record.sha256 == digest(token) and record.sha256 in text
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    principal = TokenStore(path).authenticate(token)
    assert principal is not None and principal.scope == "county:610722" and principal.county == "610722"


def test_token_store_refuses_wrong_tokens(tmp_path):
    path = tmp_path / "tokens.json"
    token, _ = create_token(path, "city")
    store = TokenStore(path)
    other, _ = create_token(tmp_path / "elsewhere.json", "city")
    forged = token[:-1] + ("A" if token[-1] != "A" else "B")
    for wrong in (other, forged, "", "Bearer " + token, token + "x", "fq_00000000_" + "a" * 43):
        assert store.authenticate(wrong) is None


def test_revoked_token_is_refused_by_a_running_store(tmp_path):
    path = tmp_path / "tokens.json"
    keep, _ = create_token(path, "city")
    gone, record = create_token(path, "admin")
    store = TokenStore(path, recheck_seconds=0)
    assert store.authenticate(gone) is not None
    revoke_token(path, record.id)
    assert store.authenticate(gone) is None and store.authenticate(keep) is not None


@pytest.mark.parametrize(("content", "named"), [
    ("{not json", "not readable JSON"),
    (json.dumps({"format": "other", "tokens": []}), "format"),
    (json.dumps({"format": "fengqiao-tokens/1", "tokens": [{"id": "0a0b0c0d", "scope": "city",
                                                           "created_at": "x"}]}), "tokens[0]: field 'sha256'"),
    (json.dumps({"format": "fengqiao-tokens/1", "tokens": [{"id": "0a0b0c0d", "scope": "town:1", "sha256": "0" * 64,
                                                           "created_at": "x"}]}), "tokens[0]: field 'scope'"),
])
def test_damaged_token_store_is_refused_naming_the_problem(tmp_path, content, named):
    path = tmp_path / "tokens.json"
    path.write_text(content)
    with pytest.raises(ConfigurationError, match=named.replace("[", r"\[").replace("]", r"\]")):
        TokenStore(path)


def test_missing_or_empty_token_store_is_refused(tmp_path):
    with pytest.raises(ConfigurationError, match="does not exist"):
        TokenStore(tmp_path / "none.json")
    path = tmp_path / "tokens.json"
    _, record = create_token(path, "city")
    revoke_token(path, record.id)
    with pytest.raises(ConfigurationError, match="holds no token"):
        TokenStore(path)


def test_scope_must_be_city_admin_or_a_county(tmp_path):
    with pytest.raises(ConfigurationError, match="scope"):
        create_token(tmp_path / "t.json", "village:610722104201")


def test_cli_prints_the_token_once_and_lists_no_secret(tmp_path, monkeypatch):
    monkeypatch.setenv("FENGQIAO_DATA_ROOT", str(tmp_path / "var"))
    runner = CliRunner()
    created = runner.invoke(app, ["token", "create", "--scope", "county:610722", "--note", "Chenggu"])
    assert created.exit_code == 0, created.output
    token = created.stdout.strip().splitlines()[-1]
    assert token.startswith("fq_")
    listed = runner.invoke(app, ["token", "list"])
    assert listed.exit_code == 0 and "county:610722" in listed.stdout and token not in listed.stdout
    assert digest(token) not in listed.stdout
    [record] = read_records(tmp_path / "var" / "secrets" / "api_tokens.json")
    refused = runner.invoke(app, ["token", "create", "--scope", "everyone"])
    assert refused.exit_code == 2 and "scope" in refused.stderr
    revoked = runner.invoke(app, ["token", "revoke", record.id])
    assert revoked.exit_code == 0 and read_records(tmp_path / "var" / "secrets" / "api_tokens.json") == []


def test_rate_limiter_allows_a_burst_then_the_rate():
    now = [0.0]
    limiter = RateLimiter(rate=2.0, burst=3, clock=lambda: now[0])
    assert [limiter.acquire("a") for _ in range(3)] == [0, 0, 0]
    assert limiter.acquire("a") == pytest.approx(0.5)
    assert limiter.acquire("b") == 0, "buckets are per key"
    now[0] = 0.5
    assert limiter.acquire("a") == 0
    assert limiter.acquire("a") > 0
    assert limiter.retry_after(0.2) == "1"


def test_rate_limiter_forgets_the_oldest_keys_beyond_its_cap():
    limiter = RateLimiter(rate=1.0, burst=1, max_keys=2, clock=lambda: 0.0)
    for key in ("a", "b", "c"):
        limiter.acquire(key)
    assert limiter.acquire("a") == 0, "a was dropped and starts full"
    assert limiter.acquire("c") > 0


def test_audit_log_appends_one_json_line_per_request_without_payloads(tmp_path):
    path = tmp_path / "audit" / "api.jsonl"
    path.parent.mkdir()
    path.write_text('{"earlier": true}\n')
    log = AuditLog(path)
    log.record("0a0b0c0d", "GET", "/v1/villages/{id}", "610722104201", 200)
    log.record(None, "POST", "/v1/score/{entity}", "village", 401)
    log.close()
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert lines[0] == {"earlier": True}
    assert lines[1]["token"] == "0a0b0c0d" and lines[1]["entity"] == "610722104201" and lines[1]["status"] == 200
    assert set(lines[2]) == {"time", "token", "method", "route", "entity", "status"}


def test_error_field_paths_never_echo_odd_client_keys():
    assert field_path(("body", "features", "mediators")) == "body.features.mediators"
    assert field_path(("query", "limit")) == "query.limit"
    assert field_path(("body", "features", "<script>alert(1)</script>", "[key]")) == "body.features.*.*"
    assert field_path(("body", "items", 3)) == "body.items.3"


REGIONS = pd.DataFrame({
    "village_id": ["610722001001", "610722001002", "610723002001"],
    "village_name": ["东村", "西村", "南村"], "town_id": ["610722001", "610722001", "610723002"],
    "town_name": ["甲镇", "甲镇", "乙镇"], "county_id": ["610722", "610722", "610723"],
    "county_name": ["城固县", "城固县", "洋县"], "kind": ["village", "village", "community"],
})


def test_village_belongs_to_its_county():
    places = village_places(np.array(["610723002001", "610722001001", "999"], dtype=object), REGIONS)
    assert list(places.county_id) == ["610723", "610722", None]
    assert places.in_county("610722").tolist() == [False, True, False]
    assert places.counties[2] == (), "a village missing from regions belongs to no county"
    assert places.in_county("000000").tolist() == [False, False, False]


def test_project_belongs_to_every_county_of_its_affected_villages():
    projects = pd.DataFrame({"project_id": ["P1", "P2", "P3"], "name": ["水库", "园区", "道路"],
                             "kind": ["hydropower", "industrial_park", "infrastructure"],
                             "village_ids": ["610722001002|610723002001", "610723002001", None]})
    places = project_places(np.array(["P1", "P2", "P3"], dtype=object), projects, REGIONS)
    assert places.counties == (("610722", "610723"), ("610723",), ())
    assert list(places.county_id) == ["610722", "610723", None], "home county: the first affected village's"
    assert list(places.town_name) == ["甲镇", "乙镇", None]
    assert places.in_county("610723").tolist() == [True, True, False]
    assert places.village_county["610723002001"] == "610723"
