"""Turn the mechanism's event logs into the platform's tables, with every attribute.

The kernels decide what drives the world (when, where, which project, mediation outcome,
repeat/collective/leapfrog); this module draws the attributes that do not (category mix,
times of day, channels, delays, participants), the personal columns a real export carries
(ID-card numbers, names — pseudonymised or dropped at ingest) and clean free text.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from numba import njit

from features.contracts import (
    COLLECTIVE_MIN_PARTICIPANTS,
    DISPUTE_CATEGORIES,
    DISPUTE_OUTCOMES,
    DISPUTE_SOURCES,
    INCIDENT_KINDS,
    LEAPFROG_LEVELS,
    MEDIATOR_KINDS,
    PATROL_ISSUE_KINDS,
    PETITION_CHANNELS,
    SECONDS_PER_DAY,
)

CATEGORY_MIX_VILLAGE = np.array([0.22, 0.22, 0.17, 0.10, 0.02, 0.04, 0.08, 0.05, 0.02, 0.08])
CATEGORY_MIX_COMMUNITY = np.array([0.04, 0.20, 0.16, 0.12, 0.20, 0.07, 0.10, 0.03, 0.02, 0.06])
PROJECT_CATEGORY_MIX = {  # over DISPUTE_CATEGORIES
    "land_acquisition": {"land": 0.6, "demolition_compensation": 0.3, "environment": 0.1},
    "demolition_relocation": {"demolition_compensation": 0.7, "property_management": 0.1, "other": 0.2},
    "urban_renewal": {"demolition_compensation": 0.6, "property_management": 0.25, "other": 0.15},
    "environmental_facility": {"environment": 0.7, "land": 0.3},
    "hydropower": {"land": 0.5, "environment": 0.4, "labour_wages": 0.1},
    "mining": {"land": 0.4, "environment": 0.45, "labour_wages": 0.15},
    "infrastructure": {"land": 0.5, "labour_wages": 0.3, "environment": 0.2},
    "industrial_park": {"land": 0.45, "labour_wages": 0.35, "environment": 0.2},
}
CATEGORY_ZH = {
    "land": "土地", "neighbour": "邻里", "family": "婚姻家庭", "labour_wages": "劳资欠薪",
    "property_management": "物业", "medical": "医疗", "traffic": "交通事故", "environment": "环境污染",
    "demolition_compensation": "征迁补偿", "other": "其他",
}
INCIDENT_MIX_GENERAL = np.array([0.35, 0.25, 0.2, 0.1, 0.1])
INCIDENT_MIX_PROJECT = np.array([0.25, 0.05, 0.3, 0.35, 0.05])
SURNAMES = list("王李张刘陈杨赵黄周吴徐孙胡朱高林何郭马罗梁宋郑谢韩唐冯于董萧程曹袁邓许傅沈曾彭吕")
GIVEN = list("伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超秀兰霞平刚桂英华建国红梅玉兰志强海燕")


def _times(rng: np.random.Generator, days: np.ndarray, start: pd.Timestamp, day_start_h: float = 7.5,
           day_end_h: float = 20.0) -> pd.DatetimeIndex:
    """Timestamps on the given day numbers at office-ish hours, to the second."""
    secs = rng.integers(int(day_start_h * 3600), int(day_end_h * 3600), len(days))
    return start + pd.to_timedelta(days.astype(np.int64) * SECONDS_PER_DAY + secs, unit="s")


def _choose(rng: np.random.Generator, labels, probs: np.ndarray) -> np.ndarray:
    """One categorical draw per row of ``probs`` (n, k), rows need not be normalised."""
    cum = np.cumsum(probs / probs.sum(axis=1, keepdims=True), axis=1)
    u = rng.random(probs.shape[0])
    return np.asarray(labels, dtype=object)[(u[:, None] > cum).sum(axis=1).clip(0, len(labels) - 1)]


def _choose_n(rng: np.random.Generator, labels, probs, n: int) -> np.ndarray:
    """``n`` draws from one categorical distribution, as labels."""
    p = np.asarray(probs, dtype=float)
    return np.asarray(labels, dtype=object)[rng.choice(len(labels), size=n, p=p / p.sum())]


def _take(labels, idx: np.ndarray) -> pd.Series:
    """``labels[idx]`` as an Arrow-backed string column, null where ``idx`` < 0.

    Building columns this way keeps a 13M-row table in compact Arrow buffers instead of one
    Python object per cell (the difference between 2 and 12 GiB at --scale 10).
    """
    idx = np.asarray(idx, dtype=np.int64)
    picked = pa.array(np.asarray(labels, dtype=object), pa.string()).take(pa.array(np.maximum(idx, 0)))
    if (idx < 0).any():
        picked = pc.if_else(pa.array(idx >= 0), picked, pa.scalar(None, pa.string()))
    return pd.Series(picked, dtype="str")


def _join(*parts) -> pd.Series:
    """Element-wise concatenation of string columns and literals, Arrow-backed."""
    arrays = [pa.array(p, pa.string()) if isinstance(p, pd.Series) else p for p in parts]
    return pd.Series(pc.binary_join_element_wise(*arrays, ""), dtype="str")


def _delays(rng: np.random.Generator, n: int, mean_days: np.ndarray | float) -> np.ndarray:
    """Whole-day delays, geometric with the given mean (≥ 0)."""
    return rng.geometric(1.0 / (1.0 + np.broadcast_to(mean_days, (n,)))) - 1


def _names(rng: np.random.Generator, n: int) -> np.ndarray:
    s = rng.integers(0, len(SURNAMES), n)
    g1 = rng.integers(0, len(GIVEN), n)
    g2 = rng.integers(0, len(GIVEN), n)
    two = rng.random(n) < 0.6
    return np.array([SURNAMES[a] + GIVEN[b] + (GIVEN[c] if t else "") for a, b, c, t in zip(s, g1, g2, two)], dtype=object)


def id_card_numbers(rng: np.random.Generator, county_codes: np.ndarray) -> np.ndarray:
    """Valid-looking 18-digit resident ID numbers (GB 11643 check digit) for each county code."""
    n = len(county_codes)
    birth = pd.Timestamp("1950-01-01") + pd.to_timedelta(rng.integers(0, 365 * 55, n), unit="D")
    body = [f"{c}{b:%Y%m%d}{s:03d}" for c, b, s in zip(county_codes, birth, rng.integers(0, 1000, n))]
    weights = np.array([7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2])
    digits = np.array([[int(ch) for ch in b] for b in body]).reshape(n, 17)
    check = np.array(list("10X98765432"))[(digits @ weights) % 11]
    return np.array([b + c for b, c in zip(body, check)], dtype=object)


def _ids(prefix: str, n: int, width: int) -> pd.Series:
    """Sequential ids ``prefix`` + zero-padded number (1-based)."""
    numbers = pc.utf8_lpad(pc.cast(pa.array(np.arange(1, n + 1)), pa.string()), width, "0")
    return _join(prefix, pd.Series(numbers, dtype="str"))


def _cut_at(end: pd.Timestamp, times: pd.Series) -> pd.Series:
    """Outcomes recorded after the export moment are not in the export yet."""
    return times.where(times < end)


def dispute_table(rng, log: np.ndarray, regions: pd.DataFrame, projects: pd.DataFrame, traits,
                  start: pd.Timestamp, end: pd.Timestamp, wage_ramp: np.ndarray) -> pd.DataFrame:
    """The `disputes` table from the dispute log (day, village, project, outcome)."""
    day, vill, proj, outcome = log[:, 0], log[:, 1], log[:, 2], log[:, 3]
    n = len(log)
    urban = (regions["kind"] == "community").to_numpy()[vill]
    mix = np.where(urban[:, None], CATEGORY_MIX_COMMUNITY, CATEGORY_MIX_VILLAGE)
    labour = DISPUTE_CATEGORIES.index("labour_wages")
    mix[:, labour] += 0.4 * wage_ramp[day]
    category = _choose(rng, DISPUTE_CATEGORIES, mix)
    linked = proj >= 0
    if linked.any():
        kinds = projects["kind"].to_numpy()[proj[linked]]
        project_mix = np.array([[PROJECT_CATEGORY_MIX[k].get(c, 0.0) for c in DISPUTE_CATEGORIES] for k in kinds])
        category[linked] = _choose(rng, DISPUTE_CATEGORIES, project_mix)
    reported = _times(rng, day, start)
    slow = 1.0 / np.maximum(traits.p_resolve[vill], 0.2)
    mediated = pd.Series(reported + pd.to_timedelta(_delays(rng, n, 4.0 * slow) * SECONDS_PER_DAY
                                                    + rng.integers(3600, 8 * 3600, n), unit="s"))
    outcome_label = np.asarray(DISPUTE_OUTCOMES, dtype=object)[outcome]
    mediated = _cut_at(end, mediated.where(outcome_label != "pending"))
    outcome_label = np.where(mediated.isna(), "pending", outcome_label)
    professional = np.isin(category, ["medical", "traffic", "property_management"])
    legal = regions["legal_adviser"].to_numpy()[vill]
    mediator_probs = np.column_stack([
        np.where(professional, 0.3, 0.7), np.where(professional, 0.55, 0.05),
        np.where(legal, 0.12, 0.04), np.where(linked, 0.35, 0.1),
    ])
    parties = 2 + rng.geometric(0.7, n) - 1
    cat_zh = pd.Series(category).map(CATEGORY_ZH)
    return pd.DataFrame({
        "dispute_id": _ids("MD", n, 9),
        "village_id": _take(regions["village_id"], vill),
        "reported_at": reported,
        "category": category,
        "parties": parties.astype(np.int64),
        "project_id": _take(projects["project_id"], proj),
        "source": _choose_n(rng, DISPUTE_SOURCES, [0.4, 0.3, 0.15, 0.15], n),
        "mediated_at": mediated,
        "outcome": outcome_label,
        "mediator_kind": _choose(rng, MEDIATOR_KINDS, mediator_probs),
        "summary": (cat_zh + "纠纷，" + pd.Series(parties).astype(str) + "方当事人").to_numpy(dtype=object),
    })


@njit(cache=True)
def _petitioners(vill: np.ndarray, repeat: np.ndarray, n_villages: int) -> np.ndarray:
    """Person index for each petition (in time order): a repeat petition comes from one of
    the village's last three petitioners, a first petition from a new person."""
    recent = -np.ones((n_villages, 3), dtype=np.int64)
    person = np.empty(vill.shape[0], dtype=np.int64)
    n_people = 0
    for i in range(vill.shape[0]):
        v = vill[i]
        if repeat[i] and recent[v, 0] >= 0:
            k = 1 if recent[v, 1] >= 0 and (i % 3 == 1) else 0
            person[i] = recent[v, k]
        else:
            person[i] = n_people
            n_people += 1
        if person[i] != recent[v, 0]:
            recent[v, 2] = recent[v, 1]
            recent[v, 1] = recent[v, 0]
            recent[v, 0] = person[i]
    return person


@njit(cache=True)
def _linked_disputes(p_day, p_vill, p_proj, d_day, d_vill, d_proj, d_unresolved, d_order, d_ptr, max_age):
    """For each petition, the most recent unresolved dispute of its village (same project
    link) reported on an earlier day within ``max_age`` days, or -1."""
    out = -np.ones(p_day.shape[0], dtype=np.int64)
    for i in range(p_day.shape[0]):
        v = p_vill[i]
        for k in range(d_ptr[v + 1] - 1, d_ptr[v] - 1, -1):
            j = d_order[k]
            if d_day[j] >= p_day[i]:
                continue
            if p_day[i] - d_day[j] > max_age:
                break
            if d_unresolved[j] and d_proj[j] == p_proj[i]:
                out[i] = j
                break
    return out


def petition_table(rng, log: np.ndarray, disputes: pd.DataFrame, regions: pd.DataFrame,
                   projects: pd.DataFrame, start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
    """The `petitions` table from the petition log (day, village, project, repeat,
    collective, leapfrog), linked to the unresolved disputes behind them."""
    day, vill, proj = log[:, 0], log[:, 1], log[:, 2]
    repeat, collective, leapfrog = log[:, 3] > 0, log[:, 4] > 0, log[:, 5] > 0
    n = len(log)
    person = _petitioners(vill, repeat, len(regions))
    n_people = int(person.max()) + 1 if n else 0
    county_of_person = np.empty(n_people, dtype=object)
    county_of_person[person] = regions["county_id"].to_numpy()[vill]
    id_cards = id_card_numbers(rng, county_of_person)
    names = _names(rng, n_people)

    d_vill = pd.Index(regions["village_id"]).get_indexer(disputes["village_id"])
    d_proj = pd.Index(projects["project_id"]).get_indexer(disputes["project_id"].fillna(""))
    d_day = (disputes["reported_at"] - start).dt.days.to_numpy()
    d_order = np.lexsort((d_day, d_vill))
    d_ptr = np.concatenate([[0], np.cumsum(np.bincount(d_vill, minlength=len(regions)))])
    unresolved = (disputes["outcome"] != "resolved").to_numpy()
    link = _linked_disputes(day, vill, proj, d_day, d_vill, d_proj, unresolved, d_order, d_ptr, 365)
    link = np.where(rng.random(n) < 0.8, link, -1)

    level_hi = _choose_n(rng, LEAPFROG_LEVELS, [0.6, 0.3, 0.1], n)
    level_lo = _choose_n(rng, ["town", "county"], [0.55, 0.45], n)
    channel_probs = np.where(collective[:, None], [0.8, 0.05, 0.05, 0.1], [0.25, 0.15, 0.32, 0.28])
    participants = np.where(collective, COLLECTIVE_MIN_PARTICIPANTS + rng.geometric(0.1, n) - 1, 1 + (rng.random(n) < 0.2) * rng.integers(1, 4, n))
    filed = _times(rng, day, start, 8.0, 18.0)
    closed = _cut_at(end, pd.Series(filed + pd.to_timedelta(_delays(rng, n, np.where(leapfrog, 40.0, 22.0)), unit="D")))
    age_at_end = (end - pd.Series(filed)).dt.days
    open_days = np.where(closed.isna(), age_at_end, (closed - pd.Series(filed)).dt.days)
    satisfied = pd.Series(rng.random(n) < np.where(repeat, 0.4, 0.68), dtype="boolean").where(closed.notna())
    topics = np.where(link >= 0, disputes["category"].to_numpy()[np.maximum(link, 0)],
                      _choose_n(rng, DISPUTE_CATEGORIES, CATEGORY_MIX_VILLAGE, n))
    return pd.DataFrame({
        "petition_id": _ids("XF", n, 9),
        "village_id": _take(regions["village_id"], vill),
        "filed_at": filed,
        "channel": _choose(rng, PETITION_CHANNELS, channel_probs),
        "level": np.where(leapfrog, level_hi, level_lo),
        "participants": participants.astype(np.int64),
        "petitioner_key": id_cards[person],
        "petitioner_name": names[person],
        "topic": topics,
        "project_id": _take(projects["project_id"], proj),
        "dispute_id": _take(disputes["dispute_id"], link),
        "closed_at": closed,
        "within_limit": open_days <= 60,
        "satisfied": satisfied,
        "summary": (pd.Series(topics).map(CATEGORY_ZH) + "问题信访").to_numpy(dtype=object),
    })


def incident_table(rng, log: np.ndarray, regions: pd.DataFrame, projects: pd.DataFrame,
                   start: pd.Timestamp) -> pd.DataFrame:
    """The `incidents` register from the incident log (day, village, project)."""
    day, vill, proj = log[:, 0], log[:, 1], log[:, 2]
    n = len(log)
    linked = proj >= 0
    kind = np.where(linked, _choose_n(rng, INCIDENT_KINDS, INCIDENT_MIX_PROJECT, n),
                    _choose_n(rng, INCIDENT_KINDS, INCIDENT_MIX_GENERAL, n))
    participants = np.where(np.isin(kind, ["mass_gathering", "blockade"]), 20, 5) + rng.geometric(0.05, n)
    severity = np.clip(1 + (participants >= 30) + (participants >= 60) + (kind == "violent_conflict")
                       + (rng.random(n) < 0.1), 1, 4)
    return pd.DataFrame({
        "incident_id": _ids("SJ", n, 7),
        "village_id": _take(regions["village_id"], vill),
        "occurred_at": _times(rng, day, start, 6.0, 22.0),
        "kind": kind,
        "participants": participants.astype(np.int64),
        "project_id": _take(projects["project_id"], proj),
        "severity": severity.astype(np.int64),
    })


HAZARDS_PER_CELL_PER_YEAR = 2.0
"""New hazards (fire risks, broken facilities, dumping …) per grid cell per year, on average."""
HAZARD_OPEN_DAYS = 20.0
"""Mean time a hazard stays open."""
HAZARD_KINDS = PATROL_ISSUE_KINDS[1:]
HAZARD_KIND_MIX = [0.35, 0.2, 0.25, 0.2]
LEADS_PER_GRIEVANCE = 0.6
"""Dispute leads a thorough round of every cell would find per unit of grievance backlog."""
DETECTION_PER_HOUR = 0.6
"""A round of h hours finds each thing there is to find with probability 1 - e^{-0.6 h}."""
FINDING_NOISE_SHAPE = 3.0
"""Shape of the gamma noise on what a round finds (how much one round differs from another)."""


def open_hazards(rng: np.random.Generator, cells: np.ndarray, n_days: int) -> np.ndarray:
    """Open hazards per village at the start of each day, shape (n_days, n): arrivals at a
    rate per cell (with a village-level propensity unrelated to disputes or incidents), each
    open for an exponential time. Starts in its stationary distribution."""
    rate = cells * HAZARDS_PER_CELL_PER_YEAR / 365.25 * rng.lognormal(-0.125, 0.5, len(cells))
    stay = np.exp(-1.0 / HAZARD_OPEN_DAYS)
    current = rng.poisson(rate * HAZARD_OPEN_DAYS)
    out = np.empty((n_days, len(cells)), dtype=np.float32)
    for d in range(n_days):
        out[d] = current
        current = rng.binomial(current, stay) + rng.poisson(rate)
    return out


def patrol_findings(rng: np.random.Generator, backlog: np.ndarray, hazards: np.ndarray, cells: np.ndarray,
                    hours: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Dispute leads and hazards found by rounds of one grid cell each: what there is to find
    in the cell (the village's grievance backlog and open hazards, spread over its cells) times
    the detection of a round of ``hours`` hours, with gamma noise. All arguments are per round.

    Nothing else enters: a village's latent propensities reach patrol reports only through
    the disputes they cause, never through a reporting channel of their own.
    """
    detect = 1.0 - np.exp(-DETECTION_PER_HOUR * hours)
    noise = rng.gamma(FINDING_NOISE_SHAPE, 1.0 / FINDING_NOISE_SHAPE, len(hours))
    leads = rng.poisson(detect * noise * LEADS_PER_GRIEVANCE * backlog / cells)
    found = rng.poisson(detect * noise * hazards / cells)
    return leads, found


def patrol_table(rng, regions: pd.DataFrame, patrol_rate: np.ndarray, backlog: np.ndarray,
                 start: pd.Timestamp, end: pd.Timestamp, extra_rounds: np.ndarray | None = None) -> pd.DataFrame:
    """The `patrols` table: grid workers' rounds, about ``patrol_rate`` per cell per week, and
    Poisson(``extra_rounds[d, v]``) more on day d in village v (patrol hours a plan bought).

    What a round finds depends on what there is to find — ``backlog[d, v]``, the grievance
    backlog that unresolved disputes leave (event-built state), and open hazards — and on the
    round's effort (hours, per village habit and per round). Issues are resolved after a few days.
    """
    n_days = backlog.shape[0]
    cells = regions["grid_cells"].to_numpy()
    per_village = rng.poisson(cells * patrol_rate * n_days / 7.0)
    vill = np.repeat(np.arange(len(regions)), per_village)
    day = rng.integers(0, n_days, len(vill))
    if extra_rounds is not None:
        extra = rng.poisson(extra_rounds)
        extra_day, extra_vill = np.nonzero(extra)
        vill = np.concatenate([vill, np.repeat(extra_vill, extra[extra_day, extra_vill])])
        day = np.concatenate([day, np.repeat(extra_day, extra[extra_day, extra_vill])])
    order = np.lexsort((day, vill))
    vill, day = vill[order], day[order]
    n = len(vill)
    cell = (rng.random(n) * cells[vill]).astype(np.int64) + 1
    village_id = _take(regions["village_id"], vill)
    grid_id = _join(village_id, pd.Series(pc.utf8_lpad(pc.cast(pa.array(cell), pa.string()), 2, "0"), dtype="str"))
    habit_hours = rng.lognormal(np.log(1.5), 0.35, len(regions))
    hours = habit_hours[vill] * rng.gamma(4.0, 0.25, n)
    hazards = open_hazards(rng, cells, n_days)
    leads, found = patrol_findings(rng, backlog[day, vill], hazards[day, vill], cells[vill], hours)
    issues = leads + found
    has_issue = issues > 0
    hazard_kind = rng.choice(len(HAZARD_KINDS), size=n, p=HAZARD_KIND_MIX)
    kinds = ["dispute_lead", *HAZARD_KINDS, *(f"dispute_lead|{k}" for k in HAZARD_KINDS)]
    kind_idx = np.where(found > 0, 1 + hazard_kind + len(HAZARD_KINDS) * (leads > 0), np.where(leads > 0, 0, -1))
    patrolled = _times(rng, day, start, 8.0, 18.5)
    resolved = pd.Series(patrolled + pd.to_timedelta(_delays(rng, n, 5.0), unit="D") + pd.Timedelta(hours=2))
    resolved = _cut_at(end, resolved.where(has_issue & (rng.random(n) > 0.08)))
    escalated = ((leads > 0) & (rng.random(n) < 0.35)) | ((found > 0) & (rng.random(n) < 0.1))
    grid_no, grids = pd.factorize(grid_id)
    worker_names = _names(rng, len(grids))  # one grid worker per cell
    return pd.DataFrame({
        "patrol_id": _ids("WG", n, 10),
        "village_id": village_id,
        "grid_id": grid_id,
        "patrolled_at": patrolled,
        "worker_key": _join("GW", grid_id),
        "worker_name": _take(worker_names, grid_no),
        "issues_found": issues.astype(np.int64),
        "issue_kinds": _take(kinds, kind_idx),
        "escalated": escalated,
        "resolved_at": resolved,
        "notes": _take(["巡查正常", "巡查发现问题，已登记跟进"], has_issue.astype(np.int64)),
    })
