"""What world to make."""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from features.contracts import TIMEZONE
from fengqiao.errors import ConfigurationError
from pipelines.simulate.dynamics import Mechanism


@dataclass(frozen=True)
class SimulationConfig:
    """What world to make. The defaults are the demo's Hanzhong-like city."""

    seed: int = 20261128
    scale: float = 1.0
    years: float = 3.0
    start: str = "2023-11-27"
    horizon_days: int = 30
    oracle_paths: int = 24
    mechanism: Mechanism = field(default_factory=Mechanism)

    def __post_init__(self) -> None:
        """Refuse a world that cannot be made, naming the option and its allowed range."""
        checks = (
            ("seed", 0 <= self.seed < 2**32, "an integer from 0 to 4294967295"),
            ("scale", 0.01 <= self.scale <= 50, "between 0.01 and 50"),
            ("years", 0.25 <= self.years <= 30, "between 0.25 and 30"),
            ("horizon_days", 1 <= self.horizon_days <= 365, "between 1 and 365 days"),
            ("oracle_paths", 1 <= self.oracle_paths <= 10_000, "between 1 and 10000"),
        )
        for name, ok, allowed in checks:
            if not ok:
                raise ConfigurationError(f"--{name.replace('_', '-')} must be {allowed}")
        try:
            pd.Timestamp(self.start)
        except ValueError as err:
            raise ConfigurationError("--start must be a date written YYYY-MM-DD") from err

    @property
    def n_days(self) -> int:
        return int(round(self.years * 365.25))

    @property
    def start_ts(self) -> pd.Timestamp:
        return pd.Timestamp(self.start, tz=TIMEZONE)

    @property
    def end_ts(self) -> pd.Timestamp:
        """The moment of the export: the end of the last simulated day."""
        return self.start_ts + pd.Timedelta(days=self.n_days)

