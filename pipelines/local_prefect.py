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
import ctypes
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass

from fengqiao.errors import ServiceUnavailable
from fengqiao.loopback import free_port

POLL_SECONDS = 0.1
PR_SET_PDEATHSIG = 1
"""prctl's option: the signal a process gets when its parent dies (Linux)."""
_PRCTL = ctypes.CDLL(None, use_errno=True).prctl if sys.platform == "linux" else None


def _launch(port: int) -> subprocess.Popen:
    """Prefect's API app under uvicorn on ``port`` of the loopback, without its UI, as
    ``SubprocessASGIServer`` runs it."""
    return subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "--factory", "prefect.server.api.server:create_app", "--host", "127.0.0.1",
         "--port", str(port), "--log-level", "error", "--lifespan", "on"],
        env={**os.environ, "PREFECT_UI_ENABLED": "0", "PREFECT__SERVER_EPHEMERAL": "1", "PREFECT__SERVER_FINAL": "1"},
        preexec_fn=_die_with_parent if _PRCTL is not None else None)  # noqa: PLW1509 (a C call only)


def _die_with_parent() -> None:
    """In the child, between fork and exec (Linux): SIGTERM when this process dies without
    stopping it — killed by a signal, whose default action runs no exit handler. Only a C call
    runs here (the library was loaded before the fork), which is what is safe in a forked child."""
    _PRCTL(PR_SET_PDEATHSIG, signal.SIGTERM)


@dataclass
class LocalServer:
    """The server's process and its API's URL (``PREFECT_API_URL``)."""

    process: subprocess.Popen
    api_url: str
    timeout_s: float

    def wait_ready(self) -> None:
        """Wait until the server answers, at most ``timeout_s`` seconds; ServiceUnavailable if
        it does not (its own errors are on stderr already)."""
        import httpx  # light; Prefect's client imports it anyway

        deadline = time.monotonic() + self.timeout_s
        with httpx.Client(timeout=2) as client:
            while time.monotonic() < deadline and self.process.poll() is None:
                try:
                    if client.get(f"{self.api_url}/health").status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
                time.sleep(POLL_SECONDS)
        raise ServiceUnavailable(
            f"Prefect's temporary local server did not start within {self.timeout_s:.0f} s"
            + ("" if self.process.poll() is None else f" (it exited with status {self.process.returncode})")
            + "; its errors are printed above. Set PREFECT_API_URL to use a running Prefect server instead.")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()


def start_local_server(timeout_s: float) -> LocalServer:
    """Launch the server now, stopped when this process exits, and point this process's Prefect
    at it (``PREFECT_API_URL``, which must be set before Prefect is imported)."""
    port = free_port()
    server = LocalServer(_launch(port), f"http://127.0.0.1:{port}/api", timeout_s)
    atexit.register(server.stop)
    os.environ["PREFECT_API_URL"] = server.api_url
    return server
