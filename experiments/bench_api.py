"""Benchmark: latency of the scoring API under load, on the default world, on loopback.

Targets (issue 10): at 60% of the peak rate, p99 under 10 ms for ``GET /v1/rankings/village?limit=50``
and under 15 ms for ``GET /v1/villages/{id}``, zero errors; a what-if request's model time under
2 ms. The data root is prepared once by the operator's commands (simulate, ingest, features,
train the village model with the defaults but no tuning and a one-month backtest, score, token
create); the server is ``fengqiao serve`` (villages only) in its own process; the load comes
from this process, a bounded asyncio client (httpx) — both on the same 2 cores, so the client's
own time is in every figure.

For each route: the peak rate is the best throughput of a closed loop at 1, 2, 4 and 8
concurrent requests; then an open loop sends requests at 60% of that rate on a fixed schedule
(each latency measured from its scheduled start, so a stalled server cannot hide its queue).
Village detail requests cycle through every village (a different row each call). Fixed seed.

    python experiments/bench_api.py [--data-root var/bench_api] [--seconds 10]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
import psutil
from results_table import publish

from fengqiao.loopback import free_port

SEED = 20261129
CONCURRENCY = (1, 2, 4, 8)
LOAD_SHARE = 0.6
TARGETS_MS = {"rankings": 10.0, "village": 15.0}
WHAT_IF_TARGET_MS = 2.0


def fengqiao(argv: list[str], env: dict[str, str]) -> str:
    proc = subprocess.run([sys.executable, "-m", "pipelines.cli", *argv], env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"fengqiao {' '.join(argv)} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    return proc.stdout


def prepare(root: Path, env: dict[str, str]) -> str:
    """The default world, trained and scored, and a city token (made once per data root)."""
    token_file = root / "bench.token"
    if token_file.exists():
        return token_file.read_text().strip()
    for argv in (["simulate", "--seed", str(SEED)], ["ingest", "--create-key"], ["features"],
                 ["train", "--entity", "village", "--trials", "0"], ["score", "--entity", "village"]):
        started = time.perf_counter()
        fengqiao(argv, env)
        print(f"prepared: fengqiao {' '.join(argv)} in {time.perf_counter() - started:.0f} s", flush=True)
    token = fengqiao(["token", "create", "--scope", "city", "--note", "bench_api"], env).strip().splitlines()[-1]
    token_file.write_text(token)
    return token


def start_server(env: dict[str, str], port: int, ready_within_s: float = 180.0) -> subprocess.Popen:
    server = subprocess.Popen([sys.executable, "-m", "pipelines.cli", "serve", "--port", str(port)], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + ready_within_s
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                return server
        except httpx.HTTPError:
            time.sleep(0.5)
        if server.poll() is not None:
            raise SystemExit("fengqiao serve exited before it was ready (run it by hand to see why)")
    server.kill()
    raise SystemExit(f"fengqiao serve was not ready within {ready_within_s:.0f} s")


async def closed_loop(client: httpx.AsyncClient, paths: list[str], concurrency: int, seconds: float) -> dict:
    """Throughput of ``concurrency`` workers sending back to back for ``seconds``."""
    done, errors, cursor = 0, 0, 0
    deadline = time.perf_counter() + seconds

    async def worker() -> None:
        nonlocal done, errors, cursor
        while time.perf_counter() < deadline:
            path = paths[cursor % len(paths)]
            cursor += 1
            response = await client.get(path)
            done += 1
            errors += response.status_code != 200

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return {"concurrency": concurrency, "rate": done / (time.perf_counter() - started), "errors": errors}


async def open_loop(client: httpx.AsyncClient, paths: list[str], rate: float, seconds: float) -> dict:
    """Requests at ``rate`` per second on a fixed schedule; latency from each scheduled start."""
    n = int(rate * seconds)
    latencies = np.full(n, np.nan)
    errors = 0
    start = time.perf_counter() + 0.05

    async def one(k: int) -> None:
        nonlocal errors
        scheduled = start + k / rate
        await asyncio.sleep(max(0.0, scheduled - time.perf_counter()))
        try:
            response = await client.get(paths[k % len(paths)])
            errors += response.status_code != 200
        except httpx.HTTPError:
            errors += 1
        latencies[k] = time.perf_counter() - scheduled

    await asyncio.gather(*(one(k) for k in range(n)))
    ms = 1000 * latencies
    return {"rate": rate, "requests": n, "errors": errors, "p50_ms": float(np.percentile(ms, 50)),
            "p99_ms": float(np.percentile(ms, 99)), "max_ms": float(ms.max())}


def cpu_seconds(process: psutil.Process) -> float:
    """User + system CPU time of the server process so far."""
    times = process.cpu_times()
    return times.user + times.system


async def measure(url: str, token: str, seconds: float, server: psutil.Process) -> tuple[dict, dict]:
    headers = {"Authorization": f"Bearer {token}"}
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
    async with httpx.AsyncClient(base_url=url, headers=headers, limits=limits, timeout=30) as client:
        total = (await client.get("/v1/rankings/village", params={"limit": 1})).json()["total"]
        ids = []
        for offset in range(0, total, 200):
            page = await client.get("/v1/rankings/village", params={"limit": 200, "offset": offset})
            ids += [item["id"] for item in page.json()["items"]]
        random.Random(SEED).shuffle(ids)
        routes = {"rankings": ["/v1/rankings/village?limit=50"], "village": [f"/v1/villages/{v}" for v in ids]}
        results = {}
        for route, paths in routes.items():
            await closed_loop(client, paths, 2, 2.0)  # warm-up
            peaks = [await closed_loop(client, paths, c, seconds / 2) for c in CONCURRENCY]
            peak = max(peaks, key=lambda p: p["rate"])
            before = cpu_seconds(server)
            load = await open_loop(client, paths, LOAD_SHARE * peak["rate"], seconds)
            load["server_cpu_ms_per_request"] = 1000 * (cpu_seconds(server) - before) / load["requests"]
            results[route] = {"peak": peak, "peaks": peaks, "at_60_percent": load}
        what_if = []
        features = (await client.get("/v1/models/village")).json()["features"]
        rng = random.Random(SEED)
        for k in range(300):
            name = rng.choice(features)["name"]
            body = {"id": ids[k % len(ids)], "features": {name: rng.uniform(0, 10)}}
            what_if.append((await client.post("/v1/score/village", json=body)).json()["model_ms"])
        return results, {"requests": len(what_if), "median_ms": float(np.median(what_if)),
                         "p99_ms": float(np.percentile(what_if, 99))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", type=Path, default=Path("var/bench_api"))
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each load phase")
    args = parser.parse_args()
    root = args.data_root.resolve()
    env = {**os.environ, "FENGQIAO_DATA_ROOT": str(root), "FENGQIAO_TUNING_TRIALS": "0", "FENGQIAO_API_ENTITIES": '["village"]',
           "FENGQIAO_BACKTEST_MONTHS": "1", "FENGQIAO_BOOTSTRAP_DRAWS": "0",
           "FENGQIAO_API_RATE_PER_SECOND": "100000", "FENGQIAO_API_RATE_BURST": "100000"}
    token = prepare(root, env)
    port = free_port()
    server = start_server(env, port)
    try:
        results, what_if = asyncio.run(measure(f"http://127.0.0.1:{port}", token, args.seconds,
                                               psutil.Process(server.pid)))
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
    rows = []
    for route, label in (("rankings", "GET /v1/rankings/village?limit=50"), ("village", "GET /v1/villages/{id}")):
        peak, load = results[route]["peak"], results[route]["at_60_percent"]
        rows.append({"route": label, "peak req/s": f"{peak['rate']:.0f} (at {peak['concurrency']} in flight)",
                     "load req/s": f"{load['rate']:.0f}", "p50 ms": f"{load['p50_ms']:.2f}",
                     "p99 ms": f"{load['p99_ms']:.2f}", "target p99 ms": f"< {TARGETS_MS[route]:.0f}",
                     "server CPU ms/request": f"{load['server_cpu_ms_per_request']:.2f}",
                     "errors": load["errors"],
                     "met": "yes" if load["p99_ms"] < TARGETS_MS[route] and load["errors"] == 0 else "NO"})
    preamble = [
        "# API latency under load (experiments/bench_api.py)", "",
        (f"Default world (seed {SEED}), `fengqiao serve` (one uvicorn process) and this load client on one "
        f"{os.cpu_count()}-core machine ({platform.processor() or platform.machine()}), loopback; machine shared "
        "with other work, so figures are noisy. Peak: best closed-loop throughput at 1/2/4/8 in flight; load: "
        f"open loop at {LOAD_SHARE:.0%} of peak for {args.seconds:.0f} s, latency from each scheduled start. "
        "Server CPU ms/request: the server process's CPU time during the load phase over its requests — what "
        "a request costs, whatever else the machine runs."), "",
        f"Machine load average while measuring: {os.getloadavg()[0]:.1f} (1 min) on {os.cpu_count()} cores.", "",
        (f"What-if model time (scoring + TreeSHAP + explanation, {what_if['requests']} requests, a different "
        f"village and feature each): median {what_if['median_ms']:.3f} ms, p99 {what_if['p99_ms']:.3f} ms "
        f"(target < {WHAT_IF_TARGET_MS:.0f} ms: {'met' if what_if['median_ms'] < WHAT_IF_TARGET_MS else 'NOT met'})."),
        "",
    ]
    publish("bench_api", preamble, list(rows[0]), rows,
            {"seed": SEED, "seconds": args.seconds, "routes": results, "what_if": what_if,
             "cpus": os.cpu_count(), "python": sys.version.split()[0]})


if __name__ == "__main__":
    main()
