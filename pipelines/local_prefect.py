"""Prefect's temporary local server for flow commands run without a Prefect server.

With no ``PREFECT_API_URL``, Prefect starts a temporary server when a flow is first called
(``SubprocessASGIServer``: Prefect's own API app under uvicorn in a child process). A flow
command would then pay for it after importing the flow's libraries (about 11 s), and starting
it from Prefect's class means first importing Prefect's server module (about 5 s) in this
process. Here the same child process — Prefect's app, uvicorn, the options Prefect gives it —
is launched as the command's first step, so that it boots (about 16 s on a new data root: its
database is created then) on the other core while this process imports the flow's libraries;
``PREFECT_API_URL`` then points this process's Prefect at it, and it stops when this process
exits. Measured on a quiet 2-core machine: the server is ready 19 s after the command starts,
against 23 s through Prefect's class.
"""

from __future__ import annotations

import atexit
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable

from fengqiao.errors import ServiceUnavailable

POLL_SECONDS = 0.1


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _launch(port: int) -> subprocess.Popen:
    """Prefect's API app under uvicorn on ``port`` of the loopback, without its UI, as
    ``SubprocessASGIServer`` runs it."""
    return subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "--factory", "prefect.server.api.server:create_app", "--host", "127.0.0.1",
         "--port", str(port), "--log-level", "error", "--lifespan", "on"],
        env={**os.environ, "PREFECT_UI_ENABLED": "0", "PREFECT__SERVER_EPHEMERAL": "1", "PREFECT__SERVER_FINAL": "1"})


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()


def start_local_server(timeout_s: float) -> Callable[[], None]:
    """Launch the server now and point this process's Prefect at it (``PREFECT_API_URL``, which
    must be set before Prefect is imported); the returned call waits until it answers, at most
    ``timeout_s`` seconds, and raises ServiceUnavailable if it does not."""
    import httpx  # light; Prefect's client imports it anyway

    port = _free_port()
    process = _launch(port)
    atexit.register(lambda: _stop(process))
    os.environ["PREFECT_API_URL"] = f"http://127.0.0.1:{port}/api"

    def ready() -> None:
        deadline = time.monotonic() + timeout_s
        with httpx.Client(timeout=2) as client:
            while time.monotonic() < deadline and process.poll() is None:
                try:
                    if client.get(f"{os.environ['PREFECT_API_URL']}/health").status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
                time.sleep(POLL_SECONDS)
        raise ServiceUnavailable(
            f"Prefect's temporary local server did not start within {timeout_s:.0f} s"
            + ("" if process.poll() is None else f" (it exited with status {process.returncode})")
            + "; its errors are printed above. Set PREFECT_API_URL to use a running Prefect server instead.")

    return ready
