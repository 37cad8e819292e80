"""The service's Prometheus metrics, in a registry of its own (one per app, so that several apps
in one process — tests — do not share counters)."""

from __future__ import annotations

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0)
"""Request and scoring latencies (seconds): fine below 10 ms, where the targets are."""


class ApiMetrics:
    """Requests by route and status, their latencies, the live model of each entity kind, the
    time spent scoring (start-up and reload batches, what-if rows) and reload outcomes."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter("fengqiao_http_requests", "HTTP requests answered.",
                                ["method", "route", "status"], registry=self.registry)
        self.latency = Histogram("fengqiao_http_request_duration_seconds", "Time until the answer starts (seconds).",
                                 ["route"], buckets=LATENCY_BUCKETS, registry=self.registry)
        self.model = Gauge("fengqiao_model_info", "The live model of each entity kind (value 1).",
                           ["entity", "version", "snapshot"], registry=self.registry)
        self.scoring = Histogram("fengqiao_scoring_seconds", "Model time: scoring and explaining (seconds).",
                                 ["entity", "kind"], buckets=LATENCY_BUCKETS, registry=self.registry)
        self.reloads = Counter("fengqiao_reloads", "Model reloads by outcome.", ["outcome"], registry=self.registry)

    def set_models(self, live: dict[str, tuple[str, str]]) -> None:
        """Show exactly the live models: entity → (version, snapshot date)."""
        self.model.clear()
        for entity, (version, snapshot) in live.items():
            self.model.labels(entity, version, snapshot).set(1)

    def render(self) -> bytes:
        return generate_latest(self.registry)
