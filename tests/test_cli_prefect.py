"""A flow command as a new user first runs it: no Prefect server configured and a data root that
does not exist yet (a fresh clone's var/), so the command starts Prefect's temporary local
server with its home under that root."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow


def test_a_flow_starts_its_local_prefect_in_a_data_root_that_does_not_exist_yet(tmp_path):
    root = tmp_path / "new" / "place" / "var"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "FENGQIAO_"))}
    env["FENGQIAO_DATA_ROOT"] = str(root)
    run = subprocess.run([sys.executable, "-m", "pipelines.cli", "refresh"], env=env, capture_output=True, check=False,
                         text=True, timeout=180)
    # the flow ran (Prefect's server came up) and stopped on the missing export, as a refresh should
    assert run.returncode == 2, run.stderr[-3000:]
    assert "error: Cannot ingest" in run.stderr
    assert "Failed to create the Prefect home directory" not in run.stderr
    assert (root / "prefect").is_dir()


def test_a_local_server_that_cannot_start_is_a_clear_error_not_a_wait(tmp_path, monkeypatch):
    from fengqiao.errors import ServiceUnavailable
    from pipelines.local_prefect import start_local_server

    monkeypatch.setenv("PREFECT_API_URL", "restored after the test")
    monkeypatch.setenv("PREFECT_API_DATABASE_CONNECTION_URL", f"sqlite+aiosqlite:///{tmp_path}/no/such/dir/prefect.db")
    ready = start_local_server(timeout_s=120)
    with pytest.raises(ServiceUnavailable, match=r"did not start within 120 s \(it exited with status"):
        ready()
