"""Everything models/ needs to know about the feature engine, in one place.

The models read feature *tables* (``features_<entity>.parquet``: the entity id, ``snapshot``,
float features, ``label``). What the tables do not say — the id column of each entity, a
feature's factor group and its zh/en title, and which features may only raise risk — is taken
from the engine's registry here and nowhere else, so that a change of the engine touches one
module.
"""

from __future__ import annotations

import re
from functools import lru_cache

import pandas as pd

from features.engine import GROUPS, feature_registry
from features.engine.catalogue import LAG_WEEKS

ENTITIES: tuple[str, ...] = ("village", "project")
ID_COLUMNS: dict[str, str] = {"village": "village_id", "project": "project_id"}
NON_FEATURES: frozenset[str] = frozenset({"village_id", "project_id", "snapshot", "label"})
MODEL_COLUMN_GROUP = "incident_history"
"""Group of the columns a model adds to the table's (the Hawkes probability)."""

_MONOTONE = re.compile(
    r"(linked_)?(unresolved|unclosed|open)_.*"
    r"|(linked_|villages_|severe_)?incidents_(\d+d|decay_\d+d|lag_\d+w|all_history|per_year_shrunk)"
    r"|(linked_)?(collective_|leapfrog_)?petitions_(\d+d|decay_\d+d)"
)
_MONOTONE_UNITS = ("count", "decayed_count", "per_year")
_LEVER_SIGNS = (
    (re.compile(r"mediators|mediators_per_10k_people|legal_adviser|patrols_\d+d|patrols_per_grid_cell_week_\d+d"
                r"|hearing_held|compensation_ratio"), -1),
    (re.compile(r"days_since_last_patrol|active_projects_without_hearing|compensation_gap"), 1),
)
"""The levers' known causal signs: more mediation, advice, patrols, hearings or compensation never
raises risk; longer without a patrol, more projects without a hearing, a larger gap to the
compensation standard never lowers it."""
OTHER_GROUP = "other"
"""Group of features the registry does not know (models trained elsewhere)."""


def id_column(entity: str) -> str:
    """The id column of an entity's feature table."""
    return ID_COLUMNS[entity]


def feature_columns(frame: pd.DataFrame) -> list[str]:
    """The feature columns of a feature table, in table order."""
    return [c for c in frame.columns if c not in NON_FEATURES]


@lru_cache(maxsize=4)
def _registry(entity: str):
    return feature_registry(entity)


def feature_group(entity: str, name: str) -> str:
    """A feature's factor group (a model's own columns count as incident history)."""
    registry = _registry(entity)
    return registry[name].group if name in registry else MODEL_COLUMN_GROUP


def group_title(group: str, lang: str = "en") -> str:
    """The zh or en title of a factor group."""
    zh, en = GROUPS.get(group, ("其他", "other") if group == OTHER_GROUP else (group, group))
    return zh if lang == "zh" else en


def is_actionable(name: str) -> bool:
    """Whether a feature is a lever the committee controls: mediators, the legal adviser,
    patrol frequency, hearings held, compensation."""
    return any(pattern.fullmatch(name) for pattern, _ in _LEVER_SIGNS)


def feature_description(entity: str | None, name: str) -> dict:
    """What explanations need of a feature: group, unit, actionable and the zh/en reason
    templates (with one ``{value}``). Features the registry does not know (a model trained
    elsewhere) are in group ``other`` with a plain "name = value" template."""
    registry = _registry(entity) if entity in ENTITIES else {}
    if name in registry:
        spec = registry[name]
        group, unit, zh, en = spec.group, spec.unit, spec.zh, spec.en
    else:
        group, unit, zh, en = OTHER_GROUP, "ratio", f"{name} 为 {{value}}", f"{name} = {{value}}"
    return {"group": group, "unit": unit, "zh": zh, "en": en, "actionable": is_actionable(name)}


def monotone_sign(entity: str, name: str) -> int:
    """+1 where more of the feature can never lower risk — open (unresolved, unclosed)
    cases, petitions in total and collective or leapfrog, past incidents and their rates —
    and each lever's known sign (``_LEVER_SIGNS``), else 0 (unconstrained: kinds and channels
    of cases, ratios, trends, recency).

    A lever is constrained because the planner reads the model's what-if on it as an effect.
    Observed data confound it — mediation teams and patrols go where trouble already is — and
    an unconstrained model learns that deployment pattern, predicting that a team sent raises
    the risk it is sent to lower."""
    for pattern, sign in _LEVER_SIGNS:
        if pattern.fullmatch(name):
            return sign
    registry = _registry(entity)
    if name in registry and registry[name].unit not in _MONOTONE_UNITS:
        return 0
    return 1 if _MONOTONE.fullmatch(name) else 0


def incident_lag_columns(entity: str, weeks: int = LAG_WEEKS) -> list[str]:
    """The weekly lag counts of incidents (of the project): last week first."""
    stem = "incidents" if entity == "village" else "linked_incidents"
    return [f"{stem}_lag_{k}w" for k in range(1, weeks + 1)]


def recent_incident_columns(entity: str) -> tuple[str, str]:
    """The recent-incidents baseline's score and tie-breaker: incidents (of the project) in
    the last 365 days, then the last 90."""
    return ("incidents_365d", "incidents_90d") if entity == "village" else ("linked_incidents_365d", "linked_incidents_90d")


