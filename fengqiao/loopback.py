"""Loopback ports for the servers the project starts itself (Prefect's local server, the API in
tests and benchmarks)."""

from __future__ import annotations

import socket


def free_port() -> int:
    """A loopback port no one listens on now: the operating system's pick, released at once, so
    it stays free unless another process takes it before the caller binds it."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
