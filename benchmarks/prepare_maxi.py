"""Benchmark: `sessionrec prepare --preset MAXI` on synthetic logs of seed 000's MAXI size.

Seed 000's Table 3.1: MAXI is the complete dataset after filtering, 242,797 users, 470,817
products, 28,726,701 events in 4,652,496 sessions. `sessionrec synth` with the given users and
products generates the raw log (cached under --work); 34.5M raw events leave about that many
after cleaning and filtering. Prepare runs in a fresh process (wall time and peak RSS of that
process) and the section "prepare-maxi" of docs/benchmarks.md gets the figures beside the
table's.

    python benchmarks/prepare_maxi.py --events 34500000 --users 240000 --items 470000
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
TABLE_3_1 = {"users": 242_797, "items": 470_817, "events": 28_726_701, "sessions": 4_652_496}

CHILD = """
import json, resource, sys, time
from pathlib import Path
from sessionrec.config import load_config
from sessionrec.data.prepare import PrepareConfig, prepare, with_preset
from sessionrec.data.sources import get_source
raw, out, engine = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
memory = sys.argv[4]
peak_jvm = [0]
def watch():  # peak RSS of the JVM child (Spark), sampled every 0.5 s
    import os, subprocess, threading
    while True:
        try:
            pids = subprocess.run(["pgrep", "-P", str(os.getpid())], capture_output=True,
                                  text=True).stdout.split()
            peak_jvm[0] = max(peak_jvm[0], sum(
                int(open(f"/proc/{p}/status").read().split("VmRSS:")[1].split()[0])
                for p in pids))
        except Exception:
            pass
        time.sleep(0.5)
__import__("threading").Thread(target=watch, daemon=True).start()
cfg = with_preset(load_config(PrepareConfig, overrides=[
    f"engine={engine}", f'spark.driver_memory="{memory}"']), "MAXI")
t0 = time.perf_counter()
m = prepare(get_source("galaxus"), raw, out, cfg, overwrite=True)
wall = time.perf_counter() - t0
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 / 1024
print(json.dumps({"wall_s": wall, "peak_rss_gib": rss + peak_jvm[0] / 1024 / 1024,
                  "manifest": m}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=34_500_000)
    parser.add_argument("--users", type=int, default=240_000)
    parser.add_argument("--items", type=int, default=470_000)
    parser.add_argument("--engine", default="polars", choices=("polars", "spark", "both"),
                        help="both: Polars, then Spark, then compare the two outputs")
    parser.add_argument("--driver-memory", default="2g",
                        help="spark.driver_memory (in local mode the heap of every task)")
    parser.add_argument("--work", type=Path, default=ROOT / "bench-data")
    parser.add_argument("--no-doc", action="store_true")
    args = parser.parse_args()
    raw = args.work / f"raw-maxi-{args.events}-{args.users}-{args.items}"
    if not raw.exists():
        subprocess.run([sys.executable, "-m", "sessionrec.cli", "synth", "--events",
                        str(args.events), "--users", str(args.users), "--items",
                        str(args.items), "--seed", "0", "--out", str(raw)], check=True)
    engines = ("polars", "spark") if args.engine == "both" else (args.engine,)
    outs = {e: args.work / f"prepared-maxi-{e}" for e in engines}
    for engine in engines:
        report(args, raw, engine, outs[engine])
    if len(engines) == 2:
        from sessionrec.data.compare import differences

        found = differences(outs["polars"], outs["spark"])
        line = ("Same output on both engines (`sessionrec.data.compare.differences`: counts, "
                "passes, splits, vocabularies, file checksums): "
                + ("**yes**." if not found else f"**no**, {len(found)} differences: {found[:5]}"))
        print(line)
        if not args.no_doc:
            update_section("prepare-maxi-engines", line)
    for out in outs.values():
        shutil.rmtree(out, ignore_errors=True)


def report(args: argparse.Namespace, raw: Path, engine: str, out: Path) -> None:
    """Prepare MAXI on ``engine`` in a fresh process into ``out``; section prepare-maxi-ENGINE."""
    load = os.getloadavg()[0]
    proc = subprocess.run([sys.executable, "-c", CHILD, str(raw), str(out), engine,
                           args.driver_memory], capture_output=True, text=True)
    if proc.returncode:
        tail = "\n".join(proc.stderr.strip().splitlines()[-5:])
        raise SystemExit(f"prepare --preset MAXI --engine {engine} failed "
                         f"(exit {proc.returncode}):\n{tail}")
    load_after = os.getloadavg()[0]
    r = json.loads(proc.stdout.strip().splitlines()[-1])
    m = r["manifest"]
    sessions = sum(s["sessions"] for s in m["splits"].values())
    events = m["counts"].get("subsampled_events", m["counts"]["filtered_events"])
    secs = m["seconds"]
    memory = (f" --driver-memory {args.driver_memory}" if engine == "spark" else "")
    lines = [
        "## prepare --preset MAXI: seed 000's full-size dataset (synthetic)",
        "",
        f"Machine: {machine()}, shared with other sessions (load = 1-minute load average "
        f"before / after the run: {load:.1f} / {load_after:.1f}). Command: `python "
        f"benchmarks/prepare_maxi.py --events {args.events} --users {args.users} --items "
        f"{args.items} --engine {args.engine}{memory}` "
        f"(raw log: `sessionrec synth --events {args.events} --users {args.users} --items "
        f"{args.items} --seed 0`; then `sessionrec prepare --preset MAXI`, default "
        "PrepareConfig otherwise" + (", Spark `local[*]`; peak RSS adds the JVM's"
                                     if engine == "spark" else "") + ").",
        "",
        "| | raw events | users | products | events after filter | sessions |",
        "|---|---:|---:|---:|---:|---:|",
        f"| seed 000, Table 3.1 (MAXI) | | {TABLE_3_1['users']:,} | {TABLE_3_1['items']:,} | "
        f"{TABLE_3_1['events']:,} | {TABLE_3_1['sessions']:,} |",
        f"| this run ({engine}) | {m['counts']['raw_events']:,} | {m['n_users']:,} | "
        f"{m['n_items']:,} | {events:,} | {sessions:,} |",
        "",
        f"Wall time {r['wall_s']:.1f} s, peak RSS {r['peak_rss_gib']:.2f} GiB; "
        f"read+clean+sessionize {secs['read_clean_sessionize']:.1f} s, aggregate write "
        f"{secs['aggregate']:.1f} s (beside the next steps), filter+split "
        f"{secs['filter_subsample_split']:.1f} s ({len(m['filter_passes'])} passes), "
        f"encode+write {secs['encode_write']:.1f} s.",
    ]
    if not args.no_doc:
        update_section(f"prepare-maxi-{engine}", "\n".join(lines))
    print("\n".join(lines), flush=True)


if __name__ == "__main__":
    main()
