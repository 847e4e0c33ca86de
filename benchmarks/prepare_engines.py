"""Benchmark: the Polars and the Spark engine of `sessionrec prepare` side by side.

For each size: synthetic Galaxus-format shards (cached under bench-data/), then `prepare` on
each engine in a fresh process (Spark: local[N], its JVM's peak RSS added to the Python
process's), then the equivalence check of the two outputs. The 1-minute load average before
each run is recorded beside it (the machine is shared). Results go to docs/benchmarks.md
(section "prepare-engines").

With ``--spark-jobs`` the Spark run also writes Spark's event log, and section
"prepare-engines-jobs" splits each prepare step's wall time into the time Spark jobs ran, the
task seconds inside them, and the time outside any job (driver, Python, staging, JVM start).

    python benchmarks/prepare_engines.py --sizes 20000 1000000 --master "local[2]"
    python benchmarks/prepare_engines.py --sizes 1000000 --spark-jobs
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import machine, update_section

ROOT = Path(__file__).resolve().parents[1]

CHILD = """
import json, resource, sys, time, threading, subprocess
from pathlib import Path
from sessionrec.config import load_config
from sessionrec.data.prepare import PrepareConfig, prepare
from sessionrec.data.sources import get_source
raw, out, engine, master, memory = (Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3],
                                   sys.argv[4], sys.argv[5])
peak_jvm = [0]
def watch():  # peak RSS of the JVM child (Spark), sampled every 0.5 s
    while True:
        try:
            pids = subprocess.run(["pgrep", "-P", str(__import__("os").getpid())],
                                  capture_output=True, text=True).stdout.split()
            rss = sum(int(open(f"/proc/{p}/status").read().split("VmRSS:")[1].split()[0])
                      for p in pids)
            peak_jvm[0] = max(peak_jvm[0], rss)
        except Exception:
            pass
        time.sleep(0.5)
threading.Thread(target=watch, daemon=True).start()
cfg = load_config(PrepareConfig, overrides=[f"engine={engine}", f'spark.master="{master}"',
                                            f'spark.driver_memory="{memory}"'])
t0_epoch = time.time()
t0 = time.perf_counter()
m = prepare(get_source("galaxus"), raw, out, cfg, overwrite=True)
wall = time.perf_counter() - t0
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 / 1024
print(json.dumps({"wall_s": wall, "peak_rss_gib": rss + peak_jvm[0] / 1024 / 1024,
                  "t0_epoch": t0_epoch, "manifest": m}))
"""


def run(raw: Path, out: Path, engine: str, master: str, event_log: Path | None = None,
        driver_memory: str = "2g") -> dict:
    """One prepare run in a fresh process; ``event_log``: a folder for Spark's event log."""
    load = os.getloadavg()[0]
    env = None
    if event_log is not None:
        # spark-submit reads spark-defaults.conf from SPARK_CONF_DIR: the engine's own
        # session settings stay as they are, only the event log is switched on.
        conf = event_log / "conf"
        (event_log / "log").mkdir(parents=True)
        conf.mkdir()
        (conf / "spark-defaults.conf").write_text(
            "spark.eventLog.enabled true\nspark.eventLog.compress false\n"
            f"spark.eventLog.dir {(event_log / 'log').resolve().as_uri()}\n")
        env = {**os.environ, "SPARK_CONF_DIR": str(conf)}
    proc = subprocess.run([sys.executable, "-c", CHILD, str(raw), str(out), engine, master,
                           driver_memory], capture_output=True, text=True, env=env)
    if proc.returncode:
        tail = "\n".join(proc.stderr.strip().splitlines()[-5:])
        raise SystemExit(f"prepare --engine {engine} on {raw.name} failed "
                         f"(exit {proc.returncode}):\n{tail}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    result["load"] = load
    result["load_after"] = os.getloadavg()[0]
    return result


def spark_jobs(log_dir: Path) -> tuple[dict[int, list[float]], dict[int, float]]:
    """From Spark's event log: (job id -> [submitted, completed] epoch seconds,
    job id -> summed task durations in ms, launch to finish)."""
    jobs: dict[int, list[float]] = {}
    stage_job: dict[int, int] = {}
    task_ms: dict[int, float] = {}
    # A rolling log (Spark 4's default) is a folder of events_* files beside status files.
    for path in sorted(p for p in log_dir.rglob("*") if p.is_file()
                       and not p.name.startswith((".", "appstatus"))):
        for line in path.open(encoding="utf-8"):
            event = json.loads(line)
            kind = event["Event"]
            if kind == "SparkListenerJobStart":
                jobs[event["Job ID"]] = [event["Submission Time"] / 1000, 0.0]
                stage_job.update((s, event["Job ID"]) for s in event["Stage IDs"])
            elif kind == "SparkListenerJobEnd":
                jobs[event["Job ID"]][1] = event["Completion Time"] / 1000
            elif kind == "SparkListenerTaskEnd":
                info = event["Task Info"]
                job = stage_job.get(event["Stage ID"])
                if job is not None:
                    task_ms[job] = (task_ms.get(job, 0.0) + info["Finish Time"]
                                    - info["Launch Time"])
    return jobs, task_ms


def job_rows(jobs: dict, task_ms: dict, t0_epoch: float, laps: dict[str, float],
             cores: int) -> list[dict]:
    """Per prepare step (in the order of ``laps``) the jobs submitted during it.

    Jobs overlap (a broadcast or a subquery runs as its own job beside the one that needs
    it), so ``busy_s`` is the wall time with at least one job running (the union of the
    jobs' intervals); ``task_s``: the jobs' task seconds; ``fixed_s``: ``busy_s`` less
    ``task_s`` spread over ``cores`` (scheduling, shuffle set-up, idle cores at a job's end);
    ``outside_s``: the step's time with no job running (driver, Python, staging, JVM start).
    """
    rows, start = [], t0_epoch
    for step, seconds in laps.items():
        end = start + seconds
        mine = sorted((a, b, j) for j, (a, b) in jobs.items() if start <= a < end)
        busy, reach = 0.0, start
        for a, b, _ in mine:
            busy += max(0.0, b - max(a, reach))
            reach = max(reach, b)
        task = sum(task_ms.get(j, 0.0) for _, _, j in mine) / 1000
        walls = sorted(b - a for a, b, _ in mine)
        rows.append({"step": step, "wall_s": seconds, "jobs": len(mine), "busy_s": busy,
                     "task_s": task, "fixed_s": max(0.0, busy - task / cores),
                     "outside_s": seconds - busy,
                     "median_job_s": walls[len(walls) // 2] if walls else 0.0})
        start = end
    return rows


def write_section(args: argparse.Namespace, rows: list) -> None:
    """The section for the sizes measured so far (an interrupted run keeps them)."""
    lines = [
        "## prepare: Polars engine vs Spark engine (same output)",
        "",
        f"Machine: {machine()}, shared with other sessions (load = 1-minute load average "
        f"before / after the run). Command: `python benchmarks/prepare_engines.py --sizes "
        f"{' '.join(map(str, args.sizes))} --master \"{args.master}\""
        f"{' --spark-jobs' if args.spark_jobs else ''}"
        f"{'' if args.section == 'prepare-engines' else ' --section ' + args.section}"
        f"{'' if args.driver_memory == '2g' else ' --driver-memory ' + args.driver_memory}`. "
        "Default PrepareConfig "
        "on `sessionrec synth --seed 0` shards. Spark wall time includes starting the JVM; "
        "its peak RSS adds the JVM's to the Python process's. 'same output': "
        "`sessionrec.data.compare.differences` found nothing (counts, passes, checksums).",
        "",
        "| raw events | engine | wall s | peak RSS GiB | load before/after | "
        "read+clean+sessionize s | aggregate s | filter+split s | encode+write s | passes | "
        "raw events/s | rows/s vs Polars | same output |",
        "|---:|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        lines.append(f"| {r[0]:,} | {r[1]} | {r[2]:.1f} | {r[3]:.2f} | {r[4]:.1f}/{r[13]:.1f} "
                     f"| {r[5]:.1f} | {r[6]:.1f} | {r[7]:.1f} | {r[8]:.1f} | {r[9]} "
                     f"| {r[10]:,.0f} | {r[11]:.3f} | {r[12]} |")
    if not args.no_doc:
        update_section(args.section, "\n".join(lines))
    print("\n".join(lines))


def cores(master: str) -> int:
    """The task slots of a ``local[N]`` master (every core for ``local[*]`` or a cluster)."""
    inner = master[master.find("[") + 1:master.find("]")] if master.startswith("local[") else "*"
    return int(inner) if inner.isdigit() else os.cpu_count() or 1


def write_jobs_section(args: argparse.Namespace, table: list) -> None:
    lines = [
        "## prepare --engine spark: where each step's time goes (Spark's event log)",
        "",
        f"Machine: {machine()}, shared with other sessions (load = 1-minute load average "
        f"before / after the run). Command: `python benchmarks/prepare_engines.py --sizes "
        f"{' '.join(map(str, args.sizes))} --master \"{args.master}\" --spark-jobs"
        f"{'' if args.section == 'prepare-engines' else ' --section ' + args.section}` (the "
        f"Spark runs of section {args.section}, with Spark's event log on). A job belongs to "
        "the step it was submitted in. 'in jobs s': wall time with at least one job running "
        "(jobs overlap); 'task s': their tasks' durations summed (launch to finish, all "
        f"cores); 'fixed s': 'in jobs s' less 'task s' over the {cores(args.master)} cores "
        "(scheduling, shuffle set-up, idle cores at a job's end); 'outside jobs s': the step's "
        "time with no job running (Python driver code, Polars staging of the input, JVM "
        "start, planning).",
        "",
        "| raw events | load before/after | step | wall s | Spark jobs | median job s | "
        "in jobs s | task s | fixed s | outside jobs s |",
        "|---:|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for n, before, after, steps in table:
        for s in steps:
            lines.append(f"| {n:,} | {before:.1f}/{after:.1f} | {s['step']} | "
                         f"{s['wall_s']:.1f} | {s['jobs']} | {s['median_job_s']:.2f} | "
                         f"{s['busy_s']:.1f} | {s['task_s']:.1f} | {s['fixed_s']:.1f} | "
                         f"{s['outside_s']:.1f} |")
    if not args.no_doc:
        update_section(f"{args.section}-jobs", "\n".join(lines))
    print("\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 3_000_000])
    parser.add_argument("--master", default="local[2]")
    parser.add_argument("--work", type=Path, default=ROOT / "bench-data")
    parser.add_argument("--no-doc", action="store_true")
    parser.add_argument("--spark-jobs", action="store_true",
                        help="write Spark's event log and section SECTION-jobs")
    parser.add_argument("--driver-memory", default="2g",
                        help="spark.driver_memory (in local mode the heap of every task)")
    parser.add_argument("--section", default="prepare-engines",
                        help="the docs/benchmarks.md section to write (another name keeps the "
                             "default section's sizes)")
    args = parser.parse_args()
    from sessionrec.data.compare import differences

    args.work.mkdir(parents=True, exist_ok=True)
    rows, job_table = [], []
    for n in args.sizes:
        raw = args.work / f"raw-{n}"
        if not raw.exists():
            subprocess.run([sys.executable, "-m", "sessionrec.cli", "synth", "--events", str(n),
                            "--seed", "0", "--out", str(raw)], check=True)
        outs = {e: args.work / f"prepared-{e}-{n}" for e in ("polars", "spark")}
        log = args.work / f"spark-events-{n}" if args.spark_jobs else None
        if log is not None:
            shutil.rmtree(log, ignore_errors=True)
        res = {e: run(raw, outs[e], e, args.master, log if e == "spark" else None,
                      args.driver_memory) for e in outs}
        same = differences(outs["polars"], outs["spark"])
        for engine, r in res.items():
            s = r["manifest"]["seconds"]
            rows.append((n, engine, r["wall_s"], r["peak_rss_gib"], r["load"],
                         s["read_clean_sessionize"], s["aggregate"],
                         s["filter_subsample_split"], s["encode_write"],
                         len(r["manifest"]["filter_passes"]), n / r["wall_s"],
                         res["polars"]["wall_s"] / r["wall_s"], "yes" if not same else "NO",
                         r["load_after"]))
            print(rows[-1], flush=True)
        for o in outs.values():
            shutil.rmtree(o, ignore_errors=True)
        write_section(args, rows)
        if log is not None:
            r = res["spark"]
            (log / "result.json").write_text(json.dumps(r, indent=1))
            steps = job_rows(*spark_jobs(log / "log"), r["t0_epoch"], r["manifest"]["seconds"],
                             cores(args.master))
            job_table.append((n, r["load"], r["load_after"], steps))
            write_jobs_section(args, job_table)


if __name__ == "__main__":
    main()
