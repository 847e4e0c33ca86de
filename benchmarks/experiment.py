"""Benchmark: the replay simulator's throughput through the live API, and what experiment
logging costs the API (latency of ``POST /v1/events`` with the event log on vs off, and of the
feedback endpoints).

Served model: the GRU4Rec run of the synthetic experiment (configs/experiments/synthetic.toml;
built with ``--build`` semantics when missing). Visitors: a seeded sample of its held-out
visitors. Every scenario starts a fresh ``sessionrec serve`` process on loopback (one worker,
in-process state store) and replays the same visitors with the simulator's async client:

* **off** — ``sessionrec serve --model RUN`` (no experiment): views only;
* **on, views only** — ``sessionrec serve --experiment`` with one variant (the same GRU4Rec,
  weight 1) and an SQLite event log (WAL, synchronous=FULL): every answer logs a
  recommendation row (and the first one of a user an assignment row) before it returns;
* **on, full replay** — the same plus impressions, clicks and orders: the simulator's
  throughput (requests/s and logged events/s) and the feedback endpoints' latency.

Latency is measured by the client from send to answer, at concurrency 1 (service time, no
queueing) and at concurrency 8 (under load, where queueing dominates the tail). The client
runs on the same cores as the server. Results go to docs/benchmarks.md (section
"experiment").

    python benchmarks/experiment.py                      # about a minute (+ the build)
    python benchmarks/experiment.py --visitors 150       # shorter
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import machine, update_section
from sessionrec.data.sources import get_source
from sessionrec.experiments import prerequisites, visitors
from sessionrec.experiments.eventlog import open_event_log
from sessionrec.experiments.liveapi import ServeProcess, experiment_options
from sessionrec.experiments.simulate import EVENTS, load_simulation, replay

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "configs" / "experiments" / "synthetic.toml"

ONE_VARIANT = """[experiment]
name = "bench"
salt = "bench"
unit = "user"
control = "gru4rec"

[variants.gru4rec]
model = "{model}"
weight = 1.0
"""


def held_out(n: int, seed: int) -> tuple[list[visitors.Visitor], Path]:
    cfg = load_simulation(CONFIG)
    base = CONFIG.parent
    prerequisites.build(cfg, base, say=lambda m: print(m, flush=True))
    prepared = base / cfg.prepared
    opts = visitors.prepared_options(prepared)
    timeline = visitors.read_timeline(get_source(opts["source"]),
                                      prerequisites.raw_path(cfg, base),
                                      user_aware=opts["user_aware"],
                                      session_method=opts["session_method"])
    events = visitors.held_out(timeline, visitors.training_cutoff(prepared), cfg.days)
    everyone, _ = visitors.build_visitors(events)
    gru = next(base / name for name in cfg.build.runs if name.endswith("gru4rec"))
    return visitors.sample_visitors(everyone, n, seed), gru.resolve()


def run(server: ServeProcess, chosen, concurrency: int, feedback: bool, seed: int) -> dict:
    with server as api:
        return asyncio.run(replay(chosen, api.url, seed=seed, concurrency=concurrency,
                                  feedback=feedback, progress=False))


def scenario_rows(results: dict[str, dict]) -> list[str]:
    rows = []
    for name, r in results.items():
        lat = r["latency_ms"]
        for path in sorted(lat):
            v = lat[path]
            rows.append(f"| {name} | {r['concurrency']} | `POST {path}` | {v['n']:,} | "
                        f"{v['p50']:.1f} | {v['p99']:.1f} | {v['max']:.1f} |")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--visitors", type=int, default=300, help="held-out visitors replayed")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-doc", action="store_true", help="print, do not write the doc")
    args = parser.parse_args()
    torch.set_num_threads(1)
    load_start = os.getloadavg()[0]
    chosen, gru = held_out(args.visitors, args.seed)
    n_views = sum(len(v.views) for v in chosen)
    n_orders = sum(len(v.orders) for v in chosen)
    print(f"{len(chosen)} visitors, {n_views:,} views, {n_orders:,} orders", flush=True)
    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="sessionrec-exp-bench-") as tmp:
        tmp = Path(tmp)
        exp = tmp / "bench.toml"
        exp.write_text(ONE_VARIANT.format(model=gru))
        for concurrency in (1, 8):
            off = ServeProcess(["--model", str(gru)], log_file=tmp / f"off{concurrency}.log")
            results[f"off, views only (c={concurrency})"] = run(off, chosen, concurrency,
                                                                 False, args.seed)
            on = ServeProcess(experiment_options(exp, f"sqlite:///{tmp / f'v{concurrency}.db'}"),
                              log_file=tmp / f"on{concurrency}.log")
            results[f"on, views only (c={concurrency})"] = run(on, chosen, concurrency, False,
                                                                args.seed)
            print(f"concurrency {concurrency}: done", flush=True)
        log_url = f"sqlite:///{tmp / 'full.db'}"
        full = run(ServeProcess(experiment_options(exp, log_url), log_file=tmp / "full.log"),
                   chosen, 8, True, args.seed)
        results["on, full replay (c=8)"] = full
        with open_event_log(log_url) as log:
            logged = log.counts("bench")
    text = report(results, logged, args, len(chosen), n_views, n_orders,
                  (load_start, os.getloadavg()[0]))
    print(text)
    if not args.no_doc:
        update_section("experiment", text)


def report(results: dict[str, dict], logged: dict, args, n_visitors: int, n_views: int,
           n_orders: int, loadavg: tuple[float, float]) -> str:
    full = results["on, full replay (c=8)"]
    n_logged = sum(logged.values())

    def p(name: str, q: str) -> float:
        return results[name]["latency_ms"][EVENTS][q]

    ratios = []
    for c in (1, 8):
        on, off = f"on, views only (c={c})", f"off, views only (c={c})"
        ratios.append(f"concurrency {c}: p50 {p(on, 'p50'):.1f} vs {p(off, 'p50'):.1f} ms "
                      f"(× {p(on, 'p50') / p(off, 'p50'):.2f}), p99 {p(on, 'p99'):.1f} vs "
                      f"{p(off, 'p99'):.1f} ms (**× {p(on, 'p99') / p(off, 'p99'):.2f}**); "
                      f"throughput {results[on]['requests_per_s']:,.0f} vs "
                      f"{results[off]['requests_per_s']:,.0f} requests/s")
    lines = [
        f"`python benchmarks/experiment.py --visitors {args.visitors}` — {machine()}. "
        f"**Other processes shared the CPU cores** (1-minute load average {loadavg[0]:.1f} at "
        f"the start, {loadavg[1]:.1f} at the end, this benchmark included), and the client "
        "ran on the same cores as the server.", "",
        f"Replay of {n_visitors:,} held-out visitors of the synthetic experiment "
        f"({n_views:,} views, {n_orders:,} orders; GRU4Rec served, one worker, in-process "
        "state store, SQLite event log in WAL mode with synchronous=FULL). "
        f"**Simulator throughput** (full replay, concurrency 8): {full['requests']:,} requests "
        f"in {full['wall_s']:.1f} s = **{full['requests_per_s']:,.0f} requests/s**, "
        f"{n_logged / full['wall_s']:,.0f} logged events/s ({n_logged:,} rows: "
        + ", ".join(f"{k} {v:,}" for k, v in sorted(logged.items()))
        + f"), {full['errors']} errors.", "",
        "Experiment logging on vs off, `POST /v1/events` (views only, same model and "
        "visitors): " + "; ".join(ratios) + ".", "",
        "| scenario | concurrency | endpoint | requests | p50 ms | p99 ms | max ms |",
        "|---|---:|---|---:|---:|---:|---:|",
        *scenario_rows(results)]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
