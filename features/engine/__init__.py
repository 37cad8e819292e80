"""The feature engine: point-in-time features and labels for villages and projects.

``build_features`` turns warehouse tables into one table per entity type (a row per entity
per weekly snapshot); ``build_and_write`` does it for the warehouse on disk. Event sources
are declarations (``EventSource``), the kernels are generic numba sweeps, and every feature
is declared once in the registry (``feature_registry``).
"""

from features.engine.build import BuildSummary, FeatureBuild, build_and_write, build_features, features_path
from features.engine.declarations import (
    PROJECT_SOURCES,
    VILLAGE_SOURCES,
    Closure,
    Code,
    Condition,
    Counter,
    EventSource,
    Ratio,
    RepeatKeys,
)
from features.engine.neighbours import NeighbourParams
from features.engine.plan import feature_registry, plan_features
from features.engine.registry import GROUPS, FeatureRegistry, FeatureSpec

__all__ = [
    "GROUPS",
    "PROJECT_SOURCES",
    "VILLAGE_SOURCES",
    "BuildSummary",
    "Closure",
    "Code",
    "Condition",
    "Counter",
    "EventSource",
    "FeatureBuild",
    "FeatureRegistry",
    "FeatureSpec",
    "NeighbourParams",
    "Ratio",
    "RepeatKeys",
    "build_and_write",
    "build_features",
    "feature_registry",
    "features_path",
    "plan_features",
]
