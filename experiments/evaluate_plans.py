"""What the simulator's truth test of a plan costs and how sharp it is.

On the default world (fixed seed) and evenly spread snapshots, a few hand-made plans — legal
advisers (where none works), patrol hours or mediation teams for the villages with the highest
incident intensity over the 90 days before the snapshot, hearings for the live projects that held none — are
evaluated with common random numbers (the paired interval of ``evaluate_plan``) and, for
comparison, with the plan's arm drawn from another seed (the unpaired interval the same
replications would give without common random numbers). Reports the incidents averted, both
interval half-widths, and seconds per arm (2 cores shared with other jobs: timings are noisy,
the ratio of half-widths is not). Writes experiments/results/evaluate_plans.md and .json.

    python experiments/evaluate_plans.py [--snapshots 4] [--replications 200]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd
from results_table import publish
from scipy import stats

from fengqiao.interventions import Catalogue, Plan
from pipelines.simulate.config import SimulationConfig
from pipelines.simulate.evaluate import TrueWorld, evaluate_plan
from pipelines.simulate.world import make_truth

SEED = 0


def plans(world: TrueWorld, s: int) -> dict[str, list[dict]]:
    """The hand-made plans at the world's ``s``-th snapshot."""
    mech = world.truth.mech
    t = int(mech.snapshot_days[s])
    lam = world.truth.history.lam[max(0, t - 90) : t].sum(axis=0)
    top = mech.regions["village_id"].to_numpy()[np.argsort(-lam)]
    no_adviser = top[~mech.regions["legal_adviser"].to_numpy().astype(bool)[np.argsort(-lam)]]
    days = mech.arrays.proj_days
    no_hearing = (days[:, 0] < t) & (days[:, 3] > t) & ~mech.projects["hearing_held"].to_numpy().astype(bool)
    return {
        "10 legal advisers (where none works)": [{"kind": "legal_adviser", "entity": "village", "id": v}
                                                 for v in no_adviser[:10]],
        "500 patrol hours (50 x 10 villages)": [{"kind": "patrol_hours", "entity": "village", "id": v, "amount": 50}
                                                for v in top[:10]],
        "20 mediation teams": [{"kind": "mediation_team", "entity": "village", "id": v} for v in top[:20]],
        "hearings where none was held": [{"kind": "hearing", "entity": "project", "id": j}
                                         for j in mech.projects["project_id"].to_numpy()[no_hearing]],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--snapshots", type=int, default=4)
    parser.add_argument("--replications", type=int, default=200)
    args = parser.parse_args()
    config = SimulationConfig()
    started = time.perf_counter()
    world = TrueWorld(make_truth(config)[0])
    load_s = time.perf_counter() - started
    catalogue = Catalogue()
    n_snap = len(world.truth.mech.snapshot_days)
    chosen = np.linspace(n_snap // 4, n_snap - 6, args.snapshots).round().astype(int)
    reps = args.replications
    t_crit = stats.t.ppf(0.975, 2 * reps - 2)
    rows = []
    for s in chosen:
        snapshot = (config.start_ts + pd.Timedelta(days=int(world.truth.mech.snapshot_days[s]))).date()
        started = time.perf_counter()
        evaluate_plan(world, Plan(snapshot=snapshot, horizon_days=config.horizon_days), catalogue, reps, SEED)
        baseline_s = time.perf_counter() - started
        for name, actions in plans(world, s).items():
            plan = Plan(snapshot=snapshot, horizon_days=config.horizon_days, actions=actions)
            started = time.perf_counter()
            paired = evaluate_plan(world, plan, catalogue, reps, SEED)
            arm_s = time.perf_counter() - started
            other = evaluate_plan(world, plan, catalogue, reps, SEED + 1)
            unpaired = t_crit * np.sqrt((paired.totals_without.var(ddof=1) + other.totals_with.var(ddof=1)) / reps)
            rows.append({"snapshot": str(snapshot), "plan": name, "actions": len(actions),
                         "expected_without": round(paired.expected_without, 2),
                         "averted": round(paired.averted, 3), "low": round(paired.low, 3), "high": round(paired.high, 3),
                         "half_width_crn": round((paired.high - paired.low) / 2, 4),
                         "half_width_unpaired": round(float(unpaired), 3),
                         "seconds_plan_arm": round(arm_s, 2), "seconds_no_plan_arm": round(baseline_s, 2)})
    header = list(rows[0])
    lines = [f"# evaluate_plans — {time.strftime('%Y-%m-%d')}", "",
             (f"Default world (truth re-simulated in {load_s:.1f} s), {args.snapshots} snapshots, {reps} paired "
              "replications of the 30-day horizon each; 2 shared cores (timings noisy)."), ""]
    publish("evaluate_plans", lines, header, rows,
            {"replications": reps, "seed": SEED, "load_seconds": load_s, "rows": rows})


if __name__ == "__main__":
    main()
