"""Check: the Polars and the Spark engine of `sessionrec prepare` on every shared dataset.

For each source adapter whose dataset folder is in ../shared/data, `prepare` runs with the
source's default config on both engines (one Python process, one Spark session for all
datasets, so the JVM starts once) and `sessionrec.data.compare.differences` compares the two
outputs: counts after every step, filter passes, split membership, vocabularies and a checksum
of every output file. Writes section "prepare-engines-shared" of docs/benchmarks.md.

`diginetica` is left out on purpose: the project tunes on diginetica-srgnn-dev only and does
not read other copies of Diginetica (they contain the benchmark's test week).

    python benchmarks/engines_shared.py --master "local[2]"
    python benchmarks/engines_shared.py --sources yoochoose taobao --no-doc
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import machine, update_section

ROOT = Path(__file__).resolve().parents[1]
LEFT_OUT = {"diginetica": "not read: other copies of Diginetica contain the benchmark's test week"}


def shared_sources(data: Path) -> dict[str, Path]:
    """Source name -> its dataset folder, for every adapter whose folder exists under ``data``."""
    from sessionrec.data.sources.base import all_sources

    return {name: data / s.shared_dir for name, s in sorted(all_sources().items())
            if s.shared_dir and (data / s.shared_dir).is_dir() and name not in LEFT_OUT}


def check(name: str, path: Path, work: Path, master: str) -> dict:
    """Prepare ``path`` with both engines; the counts, seconds and differences."""
    from sessionrec.config import load_config
    from sessionrec.data.compare import differences
    from sessionrec.data.prepare import PrepareConfig, prepare
    from sessionrec.data.sources import get_source
    from sessionrec.errors import SessionRecError

    source = get_source(name)
    row: dict = {"source": name, "dataset": path.name, "error": {}}
    for engine in ("polars", "spark"):
        cfg = load_config(PrepareConfig, overrides=[f"engine={engine}",
                                                    f'spark.master="{master}"'],
                          base=source.defaults)  # as `sessionrec prepare --source` does
        start = time.perf_counter()
        try:
            row[f"{engine}_manifest"] = prepare(source, path, work / f"{name}-{engine}", cfg)
        except SessionRecError as err:  # a dataset the defaults cannot prepare: same refusal?
            row["error"][engine] = str(err)
        row[f"{engine}_s"] = time.perf_counter() - start
    if row["error"]:
        errors = row["error"]
        same = len(errors) == 2 and errors["polars"] == errors["spark"]
        row["differences"] = [] if same else [f"errors differ: {errors}"]
    else:
        row["differences"] = differences(work / f"{name}-polars", work / f"{name}-spark")
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--sources", nargs="*", help="only these adapters (default: all found)")
    parser.add_argument("--master", default="local[2]")
    parser.add_argument("--no-doc", action="store_true")
    args = parser.parse_args()
    found = shared_sources(args.data)
    if args.sources:
        found = {n: p for n, p in found.items() if n in args.sources}
    if not found:
        raise SystemExit(f"no shared dataset found under {args.data}")
    load = os.getloadavg()[0]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, path in found.items():
            rows.append(check(name, path, Path(tmp), args.master))
            r = rows[-1]
            print(f"{name}: polars {r['polars_s']:.1f} s, spark {r['spark_s']:.1f} s, "
                  f"{len(r['differences'])} differences", flush=True)
            for d in r["differences"][:10]:
                print("   ", d, flush=True)
    lines = [
        "## prepare on every shared dataset: Polars engine vs Spark engine",
        "",
        f"Machine: {machine()}, shared (1-minute load average before the run: {load:.1f}; "
        f"after: {os.getloadavg()[0]:.1f}). Command: `python benchmarks/engines_shared.py "
        f"--master \"{args.master}\"`. Each adapter whose dataset is in ../shared/data, with "
        "its default prepare config; one Spark session for all (the JVM start is in the first "
        "dataset's Spark seconds). 'same output': `sessionrec.data.compare.differences` found "
        "nothing (counts after every step, filter passes, split membership, vocabularies, a "
        "checksum of every output file). Left out: "
        + "; ".join(f"`{n}` ({why})" for n, why in LEFT_OUT.items()) + ".",
        "",
        "| source | dataset | raw events | after filter | passes | train / test events | "
        "items | Polars s | Spark s | same output |",
        "|---|---|---:|---:|---:|---|---:|---:|---:|---|",
    ]
    for r in rows:
        if r["error"]:
            message = r["error"].get("polars") or r["error"].get("spark")
            lines.append(f"| {r['source']} | {r['dataset']} | both engines refuse: "
                         f"{message.split('.')[0]} | | | | | {r['polars_s']:.1f} | "
                         f"{r['spark_s']:.1f} | "
                         f"{'yes (same error)' if not r['differences'] else 'NO'} |")
            continue
        m = r["polars_manifest"]
        counts, splits = m["counts"], m["splits"]
        lines.append(
            f"| {r['source']} | {r['dataset']} | {counts['raw_events']:,} | "
            f"{counts['filtered_events']:,} | {len(m['filter_passes'])} | "
            f"{splits['train']['events']:,} / {splits['test']['events']:,} | "
            f"{m['n_items']:,} | {r['polars_s']:.1f} | {r['spark_s']:.1f} | "
            f"{'yes' if not r['differences'] else 'NO: ' + str(len(r['differences']))} |")
    if not args.no_doc:
        update_section("prepare-engines-shared", "\n".join(lines))
    print("\n".join(lines))
    if any(r["differences"] for r in rows):
        raise SystemExit("the engines differ on at least one dataset")


if __name__ == "__main__":
    main()
