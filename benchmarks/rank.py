"""``POST /v1/rank`` latency: 100 candidates per request at a fixed offered rate (open loop).

    python benchmarks/rank.py --model runs/kuairand/alpine/seed0 [--rate 200] [--seconds 20]

One uvicorn worker serves ``create_rank_app`` (memory store, one torch thread) on loopback.
Before the measurement 500 users get 20 behaviour events each (clicks, impressions, a few
likes) through ``POST /v1/behaviours``; each request then ranks 100 random known ProductIds for
one of those users. Requests are scheduled on a fixed clock and latency counts from the
scheduled time (no coordinated omission). The training figure (exposures/s) is read from the
run's metrics.json. Writes the ``rank`` section of docs/benchmarks.md with the load average.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

from _loadgen import connection, free_port, open_loop_requests, post
from _report import load_average, machine, update_section


async def seed_histories(port: int, products: list[str], users: int, events: int) -> None:
    rng = random.Random(1)
    conn = await connection("127.0.0.1", port)
    for u in range(users):
        for _ in range(events):
            kind = rng.choices(["click", "impression", "like"], [0.45, 0.5, 0.05])[0]
            body = json.dumps({"user_id": f"bench{u}", "product_id": rng.choice(products),
                               "behaviour": kind}).encode()
            await post(conn, "127.0.0.1", "/v1/behaviours", body)
    conn[1].close()


async def open_loop(port: int, products: list[str], users: int, n_candidates: int,
                    rate: float, seconds: float, connections: int = 32) -> dict:
    rng = random.Random(0)
    return await open_loop_requests(
        "127.0.0.1", port, "/v1/rank",
        lambda i: json.dumps({"user_id": f"bench{i % users}",
                              "candidates": rng.sample(products, n_candidates)}).encode(),
        rate, seconds, connections)


async def closed_loop(port: int, products: list[str], users: int, n_candidates: int,
                      n: int) -> dict:
    """``n`` requests one after another: the server's own time per request, no queueing."""
    rng = random.Random(2)
    conn = await connection("127.0.0.1", port)
    times = []
    for i in range(n):
        body = json.dumps({"user_id": f"bench{i % users}",
                           "candidates": rng.sample(products, n_candidates)}).encode()
        t0 = time.perf_counter()
        await post(conn, "127.0.0.1", "/v1/rank", body)
        times.append((time.perf_counter() - t0) * 1000)
    conn[1].close()
    times.sort()
    return {"p50": times[n // 2], "p99": times[min(n - 1, int(0.99 * n))]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, required=True, help="click-model run directory")
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--candidates", type=int, default=100)
    parser.add_argument("--users", type=int, default=500)
    args = parser.parse_args()
    import httpx
    import polars as pl

    products = pl.read_parquet(args.model / "model" / "items.parquet")["item_id"].cast(
        pl.Utf8).to_list()
    port = free_port()
    env = {**os.environ, "OMP_NUM_THREADS": "1", "SESSIONREC_RANK_MODEL": str(args.model)}
    proc = subprocess.Popen([sys.executable, "-m", "uvicorn", "--factory",
                             "sessionrec.serving.rank:create_rank_app_from_env", "--port",
                             str(port), "--host", "127.0.0.1", "--log-level", "warning"],
                            env=env)
    try:
        for _ in range(600):
            try:
                httpx.get(f"http://127.0.0.1:{port}/docs", timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.2)
        asyncio.run(seed_histories(port, products, args.users, 20))
        asyncio.run(open_loop(port, products, args.users, args.candidates, args.rate, 3.0))
        before = load_average()
        c = asyncio.run(closed_loop(port, products, args.users, args.candidates, 300))
        r = asyncio.run(open_loop(port, products, args.users, args.candidates, args.rate,
                                  args.seconds))
        after = load_average()
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    train = json.loads((args.model / "metrics.json").read_text())["train"]
    row = (f"| {json.loads((args.model / 'metrics.json').read_text())['model']} | "
           f"{args.candidates} | {args.rate:.0f} | {r['achieved']:,.0f} | {r['p50']:.1f} | "
           f"{r['p99']:.1f} | {r['max']:.0f} | {r['errors']} | {before} → {after} |")
    closed = (f"One request at a time (300 requests, same server, load {before}): p50 "
              f"{c['p50']:.1f} ms, p99 {c['p99']:.1f} ms per request of {args.candidates} "
              "candidates.")
    print(row)
    print(closed)
    update_section("rank", "\n".join([
        f"`python benchmarks/rank.py --model {args.model} --rate {args.rate:.0f} --seconds "
        f"{args.seconds:.0f}` ({machine()}; CPU only, shared machine, load generator on the "
        "same cores). `POST /v1/rank`, memory store, one uvicorn worker, one torch thread; "
        f"{args.users} users with 20 behaviour events each; {args.seconds:.0f} s open loop "
        "after a 3 s warm-up, latency from the scheduled time.", "",
        "| model | candidates | offered req/s | achieved req/s | p50 ms | p99 ms | max ms | "
        "errors | load avg (before → after) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|", row, "", closed, "",
        f"Training the same model (kuairand-pure-slice, 1 torch thread, niced, while other "
        f"jobs shared the 2 cores): {train['cases_per_s']:,.0f} train exposures/s over "
        f"{train['epochs']} epochs ({train['train_seconds']:.0f} s).",
    ]))


if __name__ == "__main__":
    main()
