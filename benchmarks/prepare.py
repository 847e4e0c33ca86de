"""Benchmark: synthetic Galaxus-format logs through `sessionrec prepare` (clean -> split).

For each size it generates the raw shards once (cached under bench-data/), then runs the whole
prepare step in a fresh Python process and records wall time and that process's peak RSS.
Results go to docs/benchmarks.md (section "prepare").

    python benchmarks/prepare.py --sizes 1000000 3000000 10000000 30000000
    python benchmarks/prepare.py --sizes 10000000 --baseline COMMIT   # ratio to older code
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import machine, update_section

ROOT = Path(__file__).resolve().parents[1]

CHILD = """
import json, resource, sys, time
from pathlib import Path
from sessionrec.config import load_config
from sessionrec.data.prepare import PrepareConfig, prepare
from sessionrec.data.sources import get_source
raw, out = Path(sys.argv[1]), Path(sys.argv[2])
t0 = time.perf_counter()
m = prepare(get_source("galaxus"), raw, out, load_config(PrepareConfig), overwrite=True)
wall = time.perf_counter() - t0
use = resource.getrusage(resource.RUSAGE_SELF)
rss = use.ru_maxrss / 1024 / 1024
print(json.dumps({"wall_s": wall, "cpu_s": use.ru_utime + use.ru_stime, "peak_rss_gib": rss,
                  "manifest": m}))
"""


def run_size(n: int, work: Path, keep: bool, src: Path | None = None) -> dict:
    """Prepare ``n`` synthetic events in a fresh process (``src``: import sessionrec from
    there instead of this tree)."""
    raw = work / f"raw-{n}"
    if not raw.exists():
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "sessionrec.cli", "synth", "--events", str(n),
                        "--seed", "0", "--out", str(raw)], check=True)
        print(f"  synth {n:,}: {time.perf_counter() - t0:.1f} s", flush=True)
    out = work / f"prepared-{n}"
    load = os.getloadavg()[0]
    env = {**os.environ, "PYTHONPATH": str(src)} if src else None
    proc = subprocess.run([sys.executable, "-c", CHILD, str(raw), out], check=True,
                          capture_output=True, text=True, env=env)
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    result["load"] = load
    result["output_mb"] = sum(f.stat().st_size for f in out.rglob("*") if f.is_file()) / 1e6
    if not keep:
        shutil.rmtree(out, ignore_errors=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+",
                        default=[1_000_000, 3_000_000, 10_000_000, 30_000_000])
    parser.add_argument("--work", type=Path, default=ROOT / "bench-data")
    parser.add_argument("--keep", action="store_true", help="keep the prepared directories")
    parser.add_argument("--no-doc", action="store_true", help="do not update docs/benchmarks.md")
    parser.add_argument("--repeats", type=int, default=1,
                        help="with --baseline: alternate the two codes this many times per size")
    parser.add_argument("--baseline", metavar="GIT_REF",
                        help="also run the code of this commit on each size, just before this "
                             "tree's run (section prepare-vs-baseline)")
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    if args.baseline:
        compare_with_baseline(args)
        return
    rows = []
    for n in args.sizes:
        r = run_size(n, args.work, args.keep)
        m = r["manifest"]
        secs = m["seconds"]
        row = (n, r["wall_s"], r["peak_rss_gib"], m["counts"]["clean_events"],
               m["counts"]["filtered_events"], len(m["filter_passes"]),
               secs["read_clean_sessionize"], secs["aggregate"], secs["filter_subsample_split"],
               secs["encode_write"], n / r["wall_s"], r["load"])
        rows.append(row)
        print(f"{n:>11,} events: {r['wall_s']:6.1f} s wall, {r['peak_rss_gib']:.2f} GiB peak RSS",
              flush=True)
    lines = [
        "## prepare: raw Galaxus-format shards -> train/valid/test (clean -> split)",
        "",
        f"Machine: {machine()}. Command: `python benchmarks/prepare.py --sizes "
        f"{' '.join(str(s) for s in args.sizes)}`. Default PrepareConfig (bots removed, users "
        "filled, sessions given, filter 5 events/item in train, 5 sessions/user, 3 "
        "events/session until stable, last-session-out split with valid, 8 user partitions "
        "written). Raw data: `sessionrec synth --seed 0`, Parquet shards of 1M events. "
        "Wall time and peak RSS are of the whole prepare process; load is the 1-minute load "
        "average just before it (the machine is shared). The aggregated sessions are written "
        "by a second thread while the main one filters, splits and encodes, so 'aggregate "
        "write s' overlaps the two columns after it and the steps add up to more than the "
        "wall time.",
        "",
        "| raw events | wall s | peak RSS GiB | events after clean | after filter | filter "
        "passes | read+clean+sessionize s | aggregate write s | filter+split s | encode+write s "
        "| raw events/s | load |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(f"| {r[0]:,} | {r[1]:.1f} | {r[2]:.2f} | {r[3]:,} | {r[4]:,} | {r[5]} | "
                     f"{r[6]:.1f} | {r[7]:.1f} | {r[8]:.1f} | {r[9]:.1f} | {r[10]:,.0f} | "
                     f"{r[11]:.1f} |")
    if not args.no_doc:
        update_section("prepare", "\n".join(lines))
    print("\n".join(lines))


def compare_with_baseline(args: argparse.Namespace) -> None:
    """Each size with the code of ``args.baseline`` and then with this tree, back to back."""
    with tempfile.TemporaryDirectory() as tmp:
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", args.baseline, "src"],
                                 check=True, capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", tmp], input=archive, check=True)
        rows = []
        for n in args.sizes:
            for _ in range(args.repeats):
                for code, src in ((args.baseline, Path(tmp) / "src"), ("this tree", None)):
                    r = run_size(n, args.work, False, src)
                    rows.append((n, code, r))
                    print(f"{n:>11,} events, {code}: {r['wall_s']:6.1f} s wall, "
                          f"{r['cpu_s']:6.1f} s CPU, {r['peak_rss_gib']:.2f} GiB, load "
                          f"{r['load']:.1f}", flush=True)
    lines = [
        "## prepare: this tree against an earlier commit, back to back",
        "",
        f"Machine: {machine()}, shared with other sessions (load: 1-minute load average just "
        f"before each run). Command: `python benchmarks/prepare.py --sizes "
        f"{' '.join(str(s) for s in args.sizes)} --baseline {args.baseline} --repeats "
        f"{args.repeats}`. Same data and default PrepareConfig as the section above; each size "
        "runs the earlier commit's code and then this tree's, alternately, so the two see about "
        "the same load. CPU s: user + system time of the prepare process (all its threads). "
        "Output MB: the prepared directory's files on disk.",
        "",
        "| raw events | code | wall s | CPU s | peak RSS GiB | load | read+clean+sessionize s "
        "| aggregate write s | filter+split s | encode+write s | output MB | wall vs earlier "
        "| CPU vs earlier |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for i, (n, code, r) in enumerate(rows):
        base = rows[i - i % 2][2]
        s = r["manifest"]["seconds"]
        lines.append(f"| {n:,} | {code} | {r['wall_s']:.1f} | {r['cpu_s']:.1f} | "
                     f"{r['peak_rss_gib']:.2f} | {r['load']:.1f} | "
                     f"{s['read_clean_sessionize']:.1f} | {s['aggregate']:.1f} | "
                     f"{s['filter_subsample_split']:.1f} | {s['encode_write']:.1f} | "
                     f"{r['output_mb']:.0f} | "
                     f"{base['wall_s'] / r['wall_s']:.2f}x | {base['cpu_s'] / r['cpu_s']:.2f}x |")
    if not args.no_doc:
        update_section("prepare-vs-baseline", "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
