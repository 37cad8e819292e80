"""The feature registry: every feature declared once, with its factor group, unit and reasons.

Later stages (explanations, the API, the dashboard) read a feature's group and its zh/en
reason templates from here; the engine reads nothing but names. A template holds one
placeholder, ``{value}``, e.g. "近30天未化解土地纠纷 {value} 件" /
"{value} unresolved land disputes in the last 30 days".
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Literal

GROUPS: dict[str, tuple[str, str]] = {
    "disputes": ("矛盾纠纷", "dispute activity"),
    "land_and_projects": ("土地与重大项目", "land and major projects"),
    "petitions": ("信访", "petitions"),
    "unresolved_backlog": ("积案未化解", "unresolved backlog"),
    "patrol_coverage": ("网格巡查", "grid patrol coverage"),
    "incident_history": ("既往事件", "incident history"),
    "neighbourhood": ("周边态势", "neighbourhood"),
    "capacity": ("基层治理能力", "size and local capacity"),
    "trend": ("趋势", "trend"),
    "calendar": ("时间节点", "calendar"),
}
"""The factor groups explanations sum contributions into: name → (zh, en) title."""

Unit = Literal["count", "decayed_count", "days", "share", "ratio", "households", "people", "CNY", "flag", "month"]
UNITS: tuple[str, ...] = Unit.__args__  # type: ignore[attr-defined]

_INTEGER_UNITS = ("count", "households", "people", "flag", "month")


def format_feature_value(value: float, unit: str) -> str:
    """A value as a reason shows it: whole numbers for counts, a percentage for shares, one
    decimal otherwise (and for units the registry does not know); "—" for NaN."""
    if math.isnan(value):
        return "—"
    if unit in _INTEGER_UNITS or (unit == "days" and abs(value) >= 10):
        return f"{value:,.0f}"
    if unit == "share":
        return f"{100 * value:.0f}%"
    return f"{value:,.1f}"


@dataclass(frozen=True)
class FeatureSpec:
    """One feature: its column name, factor group, unit and zh/en reason templates."""

    name: str
    group: str
    unit: str
    zh: str
    en: str

    def __post_init__(self) -> None:
        if self.group not in GROUPS:
            raise ValueError(f"feature {self.name!r}: unknown group {self.group!r}; use one of {sorted(GROUPS)}")
        if self.unit not in UNITS:
            raise ValueError(f"feature {self.name!r}: unknown unit {self.unit!r}; use one of {UNITS}")
        for lang, template in (("zh", self.zh), ("en", self.en)):
            if "{value}" not in template:
                raise ValueError(f"feature {self.name!r}: the {lang} template lacks '{{value}}': {template!r}")

    def format_value(self, value: float) -> str:
        """The value as a reason shows it (see ``format_feature_value``)."""
        return format_feature_value(value, self.unit)

    def reason(self, value: float, lang: Literal["zh", "en"] = "zh") -> str:
        """The reason text with ``value`` filled in."""
        template = self.zh if lang == "zh" else self.en
        return template.format(value=self.format_value(value))


class FeatureRegistry:
    """Feature specs by name, in declaration order; a name may be declared only once."""

    def __init__(self, specs: Iterable[FeatureSpec] = ()) -> None:
        self._specs: dict[str, FeatureSpec] = {}
        for spec in specs:
            self.register(spec)

    def register(self, spec: FeatureSpec) -> None:
        if spec.name in self._specs:
            raise ValueError(f"feature {spec.name!r} is declared twice")
        self._specs[spec.name] = spec

    def __getitem__(self, name: str) -> FeatureSpec:
        return self._specs[name]

    def __contains__(self, name: object) -> bool:
        return name in self._specs

    def __iter__(self) -> Iterator[FeatureSpec]:
        return iter(self._specs.values())

    def __len__(self) -> int:
        return len(self._specs)

    @property
    def names(self) -> list[str]:
        return list(self._specs)

    def in_group(self, group: str) -> list[FeatureSpec]:
        return [s for s in self._specs.values() if s.group == group]
