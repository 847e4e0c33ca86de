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
cfg = with_preset(load_config(PrepareConfig, overrides=[f"engine={engine}"]), "MAXI")
t0 = time.perf_counter()
m = prepare(get_source("galaxus"), raw, out, cfg, overwrite=True)
wall = time.perf_counter() - t0
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 / 1024
print(json.dumps({"wall_s": wall, "peak_rss_gib": rss, "manifest": m}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=34_500_000)
    parser.add_argument("--users", type=int, default=240_000)
    parser.add_argument("--items", type=int, default=470_000)
    parser.add_argument("--engine", default="polars", choices=("polars", "spark"))
    parser.add_argument("--work", type=Path, default=ROOT / "bench-data")
    parser.add_argument("--no-doc", action="store_true")
    args = parser.parse_args()
    raw = args.work / f"raw-maxi-{args.events}-{args.users}-{args.items}"
    if not raw.exists():
        subprocess.run([sys.executable, "-m", "sessionrec.cli", "synth", "--events",
                        str(args.events), "--users", str(args.users), "--items",
                        str(args.items), "--seed", "0", "--out", str(raw)], check=True)
    out = args.work / f"prepared-maxi-{args.engine}"
    load = os.getloadavg()[0]
    proc = subprocess.run([sys.executable, "-c", CHILD, str(raw), str(out), args.engine],
                          check=True, capture_output=True, text=True)
    r = json.loads(proc.stdout.strip().splitlines()[-1])
    m = r["manifest"]
    sessions = sum(s["sessions"] for s in m["splits"].values())
    events = m["counts"].get("subsampled_events", m["counts"]["filtered_events"])
    shutil.rmtree(out, ignore_errors=True)
    secs = m["seconds"]
    lines = [
        "## prepare --preset MAXI: seed 000's full-size dataset (synthetic)",
        "",
        f"Machine: {machine()}, shared with other sessions (load = 1-minute load average "
        f"before the run: {load:.1f}). Command: `python benchmarks/prepare_maxi.py --events "
        f"{args.events} --users {args.users} --items {args.items} --engine {args.engine}` "
        f"(raw log: `sessionrec synth --events {args.events} --users {args.users} --items "
        f"{args.items} --seed 0`; then `sessionrec prepare --preset MAXI`, default "
        "PrepareConfig otherwise).",
        "",
        "| | raw events | users | products | events after filter | sessions |",
        "|---|---:|---:|---:|---:|---:|",
        f"| seed 000, Table 3.1 (MAXI) | | {TABLE_3_1['users']:,} | {TABLE_3_1['items']:,} | "
        f"{TABLE_3_1['events']:,} | {TABLE_3_1['sessions']:,} |",
        f"| this run ({args.engine}) | {m['counts']['raw_events']:,} | {m['n_users']:,} | "
        f"{m['n_items']:,} | {events:,} | {sessions:,} |",
        "",
        f"Wall time {r['wall_s']:.1f} s, peak RSS {r['peak_rss_gib']:.2f} GiB; "
        f"read+clean+sessionize {secs['read_clean_sessionize']:.1f} s, aggregate write "
        f"{secs['aggregate']:.1f} s (beside the next steps), filter+split "
        f"{secs['filter_subsample_split']:.1f} s ({len(m['filter_passes'])} passes), "
        f"encode+write {secs['encode_write']:.1f} s.",
    ]
    if not args.no_doc:
        update_section(f"prepare-maxi-{args.engine}", "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
