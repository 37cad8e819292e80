"""A flow command as a new user first runs it: no Prefect server configured and a data root that
does not exist yet (a fresh clone's var/), so the command starts Prefect's temporary local
server with its home under that root."""

from __future__ import annotations

import os
import subprocess
import sys
import time

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
    server = start_local_server(timeout_s=120)
    with pytest.raises(ServiceUnavailable, match=r"did not start within 120 s \(it exited with status"):
        server.wait_ready()


def test_the_local_server_dies_with_the_command_even_when_it_is_killed(tmp_path):
    script = ("import os, signal\n"
              "from pipelines.local_prefect import start_local_server\n"
              "server = start_local_server(timeout_s=120)\n"
              "print(server.process.pid, flush=True)\n"
              "os.kill(os.getpid(), signal.SIGKILL)\n")
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}, "PREFECT_HOME": str(tmp_path)}
    run = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, check=False,
                         timeout=60)
    pid = int(run.stdout.split()[0])
    deadline = time.monotonic() + 30
    while _alive(pid):
        assert time.monotonic() < deadline, "the server outlived the command that started it"
        time.sleep(0.2)


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie, exited but not yet reaped by init, counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False
