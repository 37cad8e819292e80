"""The live models: loaded at start, swapped whole by a reload.

Routes read :attr:`RiskService.live` once per request and use that mapping to the end, so a
request that started before a reload finishes on the old models. A reload builds the complete
new state first — bundles loaded and checked, every entity scored and explained — and only then
replaces the one reference; if anything fails, the old state keeps serving and the reason is
returned to the admin.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType

from fengqiao.errors import ConfigurationError, FengqiaoError
from models.bundle import load_bundle
from models.bundle.scoring import is_registry_uri
from serving.metrics import ApiMetrics
from serving.scored import ScoredEntities, score_entities

log = logging.getLogger("fengqiao.api")


class ReloadInProgress(Exception):
    """A reload was asked for while another is running."""


def _point_mlflow_at(tracking_uri: str) -> None:
    import mlflow

    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_registry_uri(tracking_uri)


def load_scored(sources: Mapping[str, str], warehouse: Path, history_weeks: int,
                tracking_uri: str) -> dict[str, ScoredEntities]:
    """Load every entity kind's bundle from ``sources`` (folder or MLflow URI) and score it.
    A missing, damaged or incompatible bundle is a ConfigurationError naming the entity kind and
    the problem; a missing input, a FengqiaoError naming it."""
    if any(is_registry_uri(source) for source in sources.values()):
        _point_mlflow_at(tracking_uri)
    scored = {}
    for entity, source in sources.items():
        try:
            bundle = load_bundle(source)
        except ConfigurationError as err:
            raise ConfigurationError(f"{entity} model {source}: {err}") from None
        except Exception as err:  # noqa: BLE001 (MLflow raises several types for an unknown model or alias)
            raise ConfigurationError(f"{entity} model {source} cannot be loaded ({type(err).__name__}): "
                                     f"{' '.join(str(err).split())[:300]}") from None
        if bundle.entity != entity:
            raise ConfigurationError(f"{entity} model {source} is a {bundle.entity} model")
        try:
            scored[entity] = score_entities(bundle, source, warehouse, history_weeks)
        except FengqiaoError as err:
            raise type(err)(f"cannot serve {entity}s: {err} (FENGQIAO_API_ENTITIES names the kinds to serve)") from None
    return scored


class RiskService:
    """Holds the live scored entities of each kind and swaps them atomically on reload."""

    def __init__(self, sources: Mapping[str, str], warehouse: Path, history_weeks: int, tracking_uri: str,
                 metrics: ApiMetrics) -> None:
        self.sources = dict(sources)
        self.warehouse = Path(warehouse)
        self.history_weeks = history_weeks
        self.tracking_uri = tracking_uri
        self.metrics = metrics
        self._reloading = threading.Lock()
        self._live: Mapping[str, ScoredEntities] = self._load()
        self._show_live()

    def _load(self) -> Mapping[str, ScoredEntities]:
        live = MappingProxyType(load_scored(self.sources, self.warehouse, self.history_weeks, self.tracking_uri))
        for entity, scored in live.items():
            self.metrics.scoring.labels(entity, "snapshot").observe(scored.scoring_seconds)
        return live

    def _show_live(self) -> None:
        self.metrics.set_models({e: (s.version, s.snapshots[-1].isoformat()) for e, s in self._live.items()})

    @property
    def live(self) -> Mapping[str, ScoredEntities]:
        """The models serving now (read once per request)."""
        return self._live

    def reload(self) -> tuple[Mapping[str, ScoredEntities], Mapping[str, ScoredEntities], float]:
        """Load the current models, then swap: returns (old, new, seconds). Raises
        ReloadInProgress if a reload is running, a FengqiaoError if the new state cannot be built
        (the old one keeps serving)."""
        if not self._reloading.acquire(blocking=False):
            raise ReloadInProgress
        try:
            started = time.perf_counter()
            old = self._live
            try:
                new = self._load()
            except FengqiaoError as err:
                self.metrics.reloads.labels("refused").inc()
                log.warning("reload refused", extra={"reason": str(err)})
                raise
            self._live = new
            self.metrics.reloads.labels("swapped").inc()
            self._show_live()
            seconds = time.perf_counter() - started
            log.info("reloaded", extra={"models": {e: s.version for e, s in new.items()}, "seconds": round(seconds, 3)})
            return old, new, seconds
        finally:
            self._reloading.release()
