"""The feature engine: point-in-time features and labels for villages, projects and other kinds.

``build_features`` turns warehouse tables into one table per entity kind (a row per entity per
weekly snapshot); ``build_and_write`` does it for the warehouse on disk and publishes the
tables as one set. Event sources are data (``catalogue``), each feature family owns its
declarations and computation (``families``), the kernels are generic numba sweeps
(``kernels``), and every feature is declared once in the registry (``feature_registry``).
"""

from features.engine.catalogue import Catalogue, EntityKind, default_catalogue
from features.engine.declarations import Closure, Code, Condition, EventCounter, EventSource, Ratio, RepeatKeys
from features.engine.engine import EngineOptions, FeatureBuild, build_features, feature_registry
from features.engine.neighbours import NeighbourParams
from features.engine.plan import FeaturePlan, plan_features
from features.engine.registry import GROUPS, FeatureRegistry, FeatureSpec
from features.engine.store import build_and_write, features_path, publish_features, read_feature_inputs
from features.engine.summary import BuildSummary

__all__ = [
    "GROUPS",
    "BuildSummary",
    "Catalogue",
    "Closure",
    "Code",
    "Condition",
    "EngineOptions",
    "EntityKind",
    "EventCounter",
    "EventSource",
    "FeatureBuild",
    "FeaturePlan",
    "FeatureRegistry",
    "FeatureSpec",
    "NeighbourParams",
    "Ratio",
    "RepeatKeys",
    "build_and_write",
    "build_features",
    "default_catalogue",
    "feature_registry",
    "features_path",
    "plan_features",
    "publish_features",
    "read_feature_inputs",
]
