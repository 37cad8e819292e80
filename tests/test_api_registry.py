"""Reloads to the registry's champion: the API serves ``models:/<name>@champion`` from the
embedded MLflow store and follows the alias when an admin asks it to reload. Slow: each
registration logs a pyfunc model (about half a minute on a shared 2-core machine)."""

from __future__ import annotations

from pathlib import Path

import pytest
from api_world import Api, LiveServer, register, tokens_of

from fengqiao.settings import Settings
from models.tracking import CHAMPION, REGISTERED_MODELS
from serving.app import create_app

pytestmark = pytest.mark.slow


def _versions(api: Api) -> dict[str, str]:
    with api.client() as client:
        return {m["entity"]: m["version"] for m in client.get("/v1/models").json()["models"]}


def _reload(api: Api) -> dict:
    with api.client("admin") as admin:
        response = admin.post("/admin/reload")
    return {"status": response.status_code, **response.json()}


def test_reload_follows_the_champion_alias_and_refuses_a_damaged_champion(api_root):
    name = REGISTERED_MODELS["village"]
    client, first = register(api_root, "village", api_root / "bundles" / "1" / "village")
    _, second = register(api_root, "village", api_root / "bundles" / "2" / "village")
    client.set_registered_model_alias(name, CHAMPION, first)
    settings = Settings(data_root=api_root, api_entities=("village",), api_rate_burst=1000)
    with LiveServer(create_app(settings)) as server:
        api = Api(server.url, api_root, tokens_of(api_root))
        assert _versions(api) == {"village": first}
        with api.client() as http:
            assert http.get("/v1/models/village").json()["source"] == "models:/village-risk@champion"

        client.set_registered_model_alias(name, CHAMPION, second)
        swapped = _reload(api)
        assert swapped["status"] == 200 and swapped["models"][0]["version"] == second
        assert _versions(api) == {"village": second}

        _, damaged = register(api_root, "village", api_root / "bundles" / "1" / "village")
        stored = Path(client.get_model_version_download_uri(name, damaged).removeprefix("file://"))
        [arrays] = stored.rglob("trees.npz")
        arrays.write_bytes(arrays.read_bytes()[: arrays.stat().st_size // 2])
        client.set_registered_model_alias(name, CHAMPION, damaged)
        refused = _reload(api)
        assert refused["status"] == 409 and "trees.npz" in refused["error"]["message"]
        assert _versions(api) == {"village": second}
        with api.client() as http:
            assert http.get("/v1/rankings/village", params={"limit": 5}).json()["model_version"] == second
