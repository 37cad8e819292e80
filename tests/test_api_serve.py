"""``fengqiao serve`` as an operator runs it: a separate process that loads, serves, logs JSON
lines and stops cleanly on SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import httpx
import pytest
from api_world import tokens_of

from fengqiao.loopback import free_port

pytestmark = pytest.mark.slow


def test_serve_answers_then_stops_on_sigterm_with_json_logs(api_root):
    port = free_port()
    env = {**os.environ, "FENGQIAO_DATA_ROOT": str(api_root),
           "FENGQIAO_API_VILLAGE_MODEL": str(api_root / "bundles" / "1" / "village"),
           "FENGQIAO_API_PROJECT_MODEL": str(api_root / "bundles" / "1" / "project")}
    server = subprocess.Popen([sys.executable, "-m", "pipelines.cli", "serve", "--port", str(port)], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 180
        while True:
            assert server.poll() is None, server.stderr.read()[-2000:]
            assert time.monotonic() < deadline, "not ready within 180 s"
            try:
                if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.5)
        headers = {"Authorization": f"Bearer {tokens_of(api_root)['city']}"}
        ranking = httpx.get(f"http://127.0.0.1:{port}/v1/rankings/village", headers=headers, timeout=30)
        assert ranking.status_code == 200 and ranking.json()["items"]
    finally:
        server.send_signal(signal.SIGTERM)
        _, stderr = server.communicate(timeout=60)
    assert server.returncode in (0, -signal.SIGTERM), "uvicorn re-raises the signal it handled"
    records = [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]
    requests = [r for r in records if r["message"] == "request"]
    assert any(r["route"] == "/v1/rankings/{entity}" and r["status"] == 200 and r["token"] for r in requests)
    messages = [r["message"] for r in records]
    assert "Application shutdown complete." in messages, "lifespan shutdown ran (audit log closed)"
    assert any(m.startswith("Finished server process") for m in messages)
