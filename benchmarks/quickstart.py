"""`sessionrec quickstart` wall time: processes (--jobs), torch threads, idle vs busy machine.

Each run is the real command in a fresh process (``sessionrec quickstart --threads N``), timed
from outside; "busy" starts one CPU-bound competing process (a Python busy loop) first, as a
user's other work or a shared CI runner would. Records the 1-minute load average before each
run, GRU4Rec's fit time and events/s (from its metrics.json) and checks that every run gives
the same metrics. Writes the "quickstart" section of docs/benchmarks.md.

    python benchmarks/quickstart.py                 # jobs 2 and 1, threads 1 and 0, idle+busy
    python benchmarks/quickstart.py --threads 1 --jobs 2 1 --repeats 2 --no-write
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _report import DOC, machine, update_section

SECTION = "quickstart"
METRICS = ("recall@20", "mrr@20")


def start_competitor() -> subprocess.Popen:
    """One CPU-bound process competing for the cores."""
    return subprocess.Popen([sys.executable, "-c", "while True: pass"])


def run_quickstart(threads: int, jobs: int, busy: bool, out: Path) -> dict:
    """One timed ``sessionrec quickstart`` run; its wall time, CPU time, load and metrics."""
    competitor = start_competitor() if busy else None
    try:
        if busy:
            time.sleep(2.0)  # let the competitor get going
        load = os.getloadavg()[0]
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "sessionrec.cli", "quickstart", "--out", str(out),
                        "--threads", str(threads), "--jobs", str(jobs)],
                       check=True, stdout=subprocess.DEVNULL)
        wall = time.perf_counter() - t0
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    finally:
        if competitor is not None:
            competitor.kill()
            competitor.wait()
    runs = {}
    for metrics_file in sorted((out / "runs").glob("*/metrics.json")):
        payload = json.loads(metrics_file.read_text())
        runs[payload["model"]] = payload
    gru = runs["gru4rec"]
    return {"threads": threads, "jobs": jobs, "busy": busy, "wall_s": wall, "cpu_s": cpu,
            "load": load,
            "gru_fit_s": gru["train"]["seconds"],
            "gru_events_per_s": gru["train"].get("events_per_s") or 0.0,
            "metrics": {m: {k: round(p["metrics"][k], 6) for k in METRICS}
                        for m, p in runs.items()}}


def cpu_text(row: dict) -> str:
    return f"{row['cpu_s']:.1f}" if row.get("cpu_s") is not None else "—"


def render(rows: list[dict], command: str, identical: bool, note: str = "") -> str:
    lines = [
        "## quickstart: wall time, torch threads and a competing process",
        "",
        "`sessionrec quickstart` end to end (synthesise 200,000 events, prepare, fit and "
        "evaluate pop, cooc, markov, sr, vsknn and GRU4Rec for 2 epochs of 256 lanes with 512 "
        "sampled negatives), timed from outside. "
        "\"busy\": one CPU-bound competing process (a Python busy loop) ran throughout. "
        "\"load\" is the 1-minute load average just before the run: this machine is shared, "
        "so \"idle\" means no competitor of ours, not an idle machine.",
        f"Machine: {machine()}, CPU only.",
        f"Command: `{command}`",
        *([note] if note else []),
        "",
        "\"CPU s\" is the CPU time (user + system) of the quickstart process and its worker "
        "(all threads); \"jobs\" is `--jobs`: with 2, GRU4Rec trains in the main process while "
        "a spawned worker fits the five cheap baselines.",
        "",
        "| jobs | torch threads | competitor | wall s | CPU s | GRU4Rec fit s "
        "| GRU4Rec events/s | load |",
        "|---:|---|---|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        threads = "torch default" if r["threads"] == 0 else str(r["threads"])
        jobs = r.get("jobs", 1)  # rows from before --jobs ran everything in one process
        if r.get("wall_s") is None:  # stopped before it finished: a lower bound
            lines.append(f"| {jobs} | {threads} | {'busy loop' if r['busy'] else 'none'} "
                         f"| > {r['lower_bound_s']:.0f} (stopped: {r['note']}) | — | — | — "
                         f"| {r['load']:.1f} |")
            continue
        lines.append(f"| {jobs} | {threads} | {'busy loop' if r['busy'] else 'none'} "
                     f"| {r['wall_s']:.1f} | {cpu_text(r)} | {r['gru_fit_s']:.1f} "
                     f"| {r['gru_events_per_s']:,.0f} | {r['load']:.1f} |")
    first = rows[0].get("metrics")
    if first and all(r.get("metrics") for r in rows) and len(rows) > 1:
        lines += ["", "Metrics " + ("identical in every run" if identical else
                                    "DIFFER between runs") + ": " +
                  ", ".join(f"{m} recall@20 {v['recall@20']:.4f}" for m, v in first.items())
                  + "."]
    else:
        lines += ["", "Metrics were not compared: fewer than two runs finished."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 0],
                        help="thread counts to compare (0: torch's default, one per core)")
    parser.add_argument("--jobs", type=int, nargs="+", default=[2, 1],
                        help="quickstart --jobs values to compare")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--no-busy", action="store_true", help="skip the competing-process runs")
    parser.add_argument("--no-write", action="store_true", help="print only")
    parser.add_argument("--note", default="", help="a sentence about the conditions")
    parser.add_argument("--rows", type=Path, default=None,
                        help="JSON rows of earlier runs (one object per line, as printed after "
                             "'row:') to render instead of running")
    args = parser.parse_args(argv)
    command = " ".join(["python", "benchmarks/quickstart.py",
                        *(f'"{a}"' if " " in a else a for a in sys.argv[1:])])
    if args.rows is not None:
        # The rows came from an earlier (possibly interrupted) run of the plain command.
        command = "python benchmarks/quickstart.py (stopped early; rows re-rendered with --rows)"
        rows = [json.loads(line) for line in args.rows.read_text().splitlines() if line.strip()]
        text = render(rows, command, all(r.get("metrics") == rows[0].get("metrics")
                                         for r in rows), args.note)
        print(text)
        if not args.no_write:
            update_section(SECTION, text)
        return
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.repeats):
            for busy in (False,) if args.no_busy else (False, True):
                for jobs, threads in ((j, t) for j in args.jobs for t in args.threads):
                    row = run_quickstart(threads, jobs, busy, Path(tmp) / "qs")
                    rows.append(row)
                    print(f"jobs {jobs} threads {threads} {'busy' if busy else 'idle'}: "
                          f"{row['wall_s']:.1f} s (GRU4Rec fit {row['gru_fit_s']:.1f} s, "
                          f"load {row['load']:.1f})", flush=True)
                    print("row: " + json.dumps(row), flush=True)
                    if not args.no_write:  # an interrupted run keeps what it measured
                        same = all(r["metrics"] == rows[0]["metrics"] for r in rows)
                        update_section(SECTION, render(rows, command, same, args.note))
    identical = all(r["metrics"] == rows[0]["metrics"] for r in rows)
    text = render(rows, command, identical, args.note)
    print(text)
    if not args.no_write:
        update_section(SECTION, text)
        print(f"written to {DOC}")


if __name__ == "__main__":
    main()
