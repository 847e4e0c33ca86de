"""Benchmark: the Polars and the Spark engine of `sessionrec prepare` side by side.

For each size: synthetic Galaxus-format shards (cached under bench-data/), then `prepare` on
each engine in a fresh process (Spark: local[N], its JVM's peak RSS added to the Python
process's), then the equivalence check of the two outputs. The 1-minute load average before
each run is recorded beside it (the machine is shared). Results go to docs/benchmarks.md
(section "prepare-engines").

    python benchmarks/prepare_engines.py --sizes 20000 1000000 --master "local[2]"
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
raw, out, engine, master = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3], sys.argv[4]
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
cfg = load_config(PrepareConfig, overrides=[f"engine={engine}", f'spark.master="{master}"'])
t0 = time.perf_counter()
m = prepare(get_source("galaxus"), raw, out, cfg, overwrite=True)
wall = time.perf_counter() - t0
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 / 1024
print(json.dumps({"wall_s": wall, "peak_rss_gib": rss + peak_jvm[0] / 1024 / 1024,
                  "manifest": m}))
"""


def run(raw: Path, out: Path, engine: str, master: str) -> dict:
    load = os.getloadavg()[0]
    proc = subprocess.run([sys.executable, "-c", CHILD, str(raw), str(out), engine, master],
                          check=True, capture_output=True, text=True)
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    result["load"] = load
    return result


def write_section(args: argparse.Namespace, rows: list) -> None:
    """The section for the sizes measured so far (an interrupted run keeps them)."""
    lines = [
        "## prepare: Polars engine vs Spark engine (same output)",
        "",
        f"Machine: {machine()}, shared with other sessions (load = 1-minute load average "
        f"before the run). Command: `python benchmarks/prepare_engines.py --sizes "
        f"{' '.join(map(str, args.sizes))} --master \"{args.master}\"`. Default PrepareConfig "
        "on `sessionrec synth --seed 0` shards. Spark wall time includes starting the JVM; "
        "its peak RSS adds the JVM's to the Python process's. 'same output': "
        "`sessionrec.data.compare.differences` found nothing (counts, passes, checksums).",
        "",
        "| raw events | engine | wall s | peak RSS GiB | load | read+clean+sessionize s | "
        "aggregate s | filter+split s | encode+write s | passes | raw events/s | "
        "rows/s vs Polars | same output |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        lines.append(f"| {r[0]:,} | {r[1]} | {r[2]:.1f} | {r[3]:.2f} | {r[4]:.1f} | {r[5]:.1f} "
                     f"| {r[6]:.1f} | {r[7]:.1f} | {r[8]:.1f} | {r[9]} | {r[10]:,.0f} | "
                     f"{r[11]:.3f} | {r[12]} |")
    if not args.no_doc:
        update_section("prepare-engines", "\n".join(lines))
    print("\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 3_000_000])
    parser.add_argument("--master", default="local[2]")
    parser.add_argument("--work", type=Path, default=ROOT / "bench-data")
    parser.add_argument("--no-doc", action="store_true")
    args = parser.parse_args()
    from sessionrec.data.compare import differences

    args.work.mkdir(parents=True, exist_ok=True)
    rows = []
    for n in args.sizes:
        raw = args.work / f"raw-{n}"
        if not raw.exists():
            subprocess.run([sys.executable, "-m", "sessionrec.cli", "synth", "--events", str(n),
                            "--seed", "0", "--out", str(raw)], check=True)
        outs = {e: args.work / f"prepared-{e}-{n}" for e in ("polars", "spark")}
        res = {e: run(raw, outs[e], e, args.master) for e in outs}
        same = differences(outs["polars"], outs["spark"])
        for engine, r in res.items():
            s = r["manifest"]["seconds"]
            rows.append((n, engine, r["wall_s"], r["peak_rss_gib"], r["load"],
                         s["read_clean_sessionize"], s["aggregate"],
                         s["filter_subsample_split"], s["encode_write"],
                         len(r["manifest"]["filter_passes"]), n / r["wall_s"],
                         res["polars"]["wall_s"] / r["wall_s"], "yes" if not same else "NO"))
            print(rows[-1], flush=True)
        for o in outs.values():
            shutil.rmtree(o, ignore_errors=True)
        write_section(args, rows)


if __name__ == "__main__":
    main()
