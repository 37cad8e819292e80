"""The synthetic city's places: Hanzhong's 11 county-level divisions, towns and villages.

County codes, names, rough centres and population shares follow the real city (2020 census,
rounded); towns and villages inside them are invented, with 12-digit statistical codes
(6 county + 3 town + 3 village), coordinates inside the city's extent and populations that
sum to about 3.2 million per unit of scale.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class County:
    code: str
    name_zh: str
    name_en: str
    lat: float
    lon: float
    radius_deg: float
    population: int
    towns: int
    urban_share: float
    """Share of the county's units that are urban communities (社区) rather than villages."""


COUNTIES: tuple[County, ...] = (
    County("610702", "汉台区", "Hantai", 33.10, 107.03, 0.12, 630_000, 15, 0.55),
    County("610703", "南郑区", "Nanzheng", 32.88, 106.93, 0.22, 460_000, 18, 0.15),
    County("610722", "城固县", "Chenggu", 33.18, 107.32, 0.20, 460_000, 17, 0.15),
    County("610723", "洋县", "Yang", 33.28, 107.55, 0.22, 360_000, 18, 0.12),
    County("610724", "西乡县", "Xixiang", 32.95, 107.77, 0.22, 330_000, 17, 0.12),
    County("610725", "勉县", "Mian", 33.15, 106.67, 0.20, 370_000, 18, 0.12),
    County("610726", "宁强县", "Ningqiang", 32.83, 106.25, 0.22, 260_000, 18, 0.08),
    County("610727", "略阳县", "Lueyang", 33.33, 106.16, 0.20, 160_000, 17, 0.08),
    County("610728", "镇巴县", "Zhenba", 32.53, 107.90, 0.22, 220_000, 20, 0.06),
    County("610729", "留坝县", "Liuba", 33.62, 106.93, 0.16, 40_000, 8, 0.05),
    County("610730", "佛坪县", "Foping", 33.53, 107.98, 0.14, 30_000, 7, 0.05),
)
CITY_POPULATION = 3_200_000
CITY_LAT = (32.1, 33.9)
CITY_LON = (105.5, 108.3)
UNITS_PER_TOWN = 11.8

_SYLLABLES = list(
    "安宝北博长城大东丰凤福高关广汉和河红华黄金锦丽联龙马梅民南平坪桥青清庆荣三山上石"
    "双水顺松太桃天铁新兴阳杨永玉园张镇中周竹柳柏草花坝岭沟湾塘堡营寨庙铺"
)


def _place_names(rng: np.random.Generator, n: int, suffix: str) -> list[str]:
    """Two-syllable invented place names with a suffix (镇, 村, 社区 …); repeats allowed."""
    picks = rng.integers(0, len(_SYLLABLES), size=(n, 2))
    return [_SYLLABLES[a] + _SYLLABLES[b] + suffix for a, b in picks]


def build_regions(rng: np.random.Generator, scale: float) -> pd.DataFrame:
    """The `regions` table: one row per village/community, in code order.

    With ``scale`` s the city has s times the towns, villages and people (a province-sized
    world at s = 10), still inside the city's extent.
    """
    rows: list[pd.DataFrame] = []
    census_total = sum(c.population for c in COUNTIES)
    for county in COUNTIES:
        n_towns = max(1, int(round(county.towns * scale)))
        n_units = max(n_towns, int(round(n_towns * UNITS_PER_TOWN)))
        town_lat = np.clip(county.lat + rng.normal(0, county.radius_deg / 1.6, n_towns), *CITY_LAT)
        town_lon = np.clip(county.lon + rng.normal(0, county.radius_deg / 1.3, n_towns), *CITY_LON)
        town_of_unit = np.sort(rng.integers(0, n_towns, n_units))
        town_of_unit[:n_towns] = np.arange(n_towns)  # every town has at least one unit
        town_of_unit.sort()
        urban = rng.random(n_units) < county.urban_share
        # Street offices (街道) are the towns holding most communities: code them 001.., towns 100..
        urban_by_town = np.bincount(town_of_unit, weights=urban, minlength=n_towns)
        is_street = urban_by_town > np.bincount(town_of_unit, minlength=n_towns) / 2
        town_codes = _town_codes(is_street)
        town_names = [
            name[:-1] + ("街道" if street else "镇")
            for name, street in zip(_place_names(rng, n_towns, "镇"), is_street)
        ]
        unit_codes = _unit_codes(town_of_unit, urban)
        spread = np.where(urban, 0.015, 0.045)
        lat = np.clip(town_lat[town_of_unit] + rng.normal(0, 1, n_units) * spread, *CITY_LAT)
        lon = np.clip(town_lon[town_of_unit] + rng.normal(0, 1, n_units) * spread * 1.2, *CITY_LON)
        raw_pop = rng.lognormal(np.where(urban, 8.6, 7.1), 0.45)
        county_pop = county.population / census_total * CITY_POPULATION * scale
        population = np.maximum(120, np.round(raw_pop / raw_pop.sum() * county_pop)).astype(np.int64)
        households = np.maximum(40, np.round(population / rng.uniform(2.7, 3.4, n_units))).astype(np.int64)
        mediators = np.clip(
            np.round(rng.lognormal(np.log(2.2 * (population / 1000.0) ** 0.35), 0.35)), 1, 25
        ).astype(np.int64)
        rows.append(
            pd.DataFrame(
                {
                    "village_id": [county.code + t + u for t, u in zip(np.asarray(town_codes)[town_of_unit], unit_codes)],
                    "village_name": [
                        n[:-1] + ("社区" if u else "村")
                        for n, u in zip(_place_names(rng, n_units, "村"), urban)
                    ],
                    "town_id": [county.code + t for t in np.asarray(town_codes)[town_of_unit]],
                    "town_name": np.asarray(town_names)[town_of_unit],
                    "county_id": county.code,
                    "county_name": county.name_zh,
                    "kind": np.where(urban, "community", "village"),
                    "lat": np.round(lat, 5),
                    "lon": np.round(lon, 5),
                    "population": population,
                    "households": households,
                    "mediators": mediators,
                    "legal_adviser": rng.random(n_units) < np.where(urban, 0.95, 0.8),
                    "grid_cells": np.maximum(1, np.round(population / rng.uniform(300, 600, n_units))).astype(np.int64),
                }
            )
        )
    regions = pd.concat(rows, ignore_index=True)
    return regions.sort_values("village_id", kind="stable").reset_index(drop=True)


def _town_codes(is_street: np.ndarray) -> list[str]:
    """Street offices numbered 001.., towns 100.. (as in the statistical division codes)."""
    codes, street_no, town_no = [], 1, 100
    for street in is_street:
        if street:
            codes.append(f"{street_no:03d}")
            street_no += 1
        else:
            codes.append(f"{town_no:03d}")
            town_no += 1
    return codes


def _unit_codes(town_of_unit: np.ndarray, urban: np.ndarray) -> list[str]:
    """Within a town, communities numbered 001.., villages 200.. (resident committee codes)."""
    codes = []
    next_code: dict[tuple[int, bool], int] = {}
    for town, is_urban in zip(town_of_unit.tolist(), urban.tolist()):
        start = 1 if is_urban else 200
        n = next_code.get((town, is_urban), start)
        codes.append(f"{n:03d}")
        next_code[(town, is_urban)] = n + 1
    return codes
