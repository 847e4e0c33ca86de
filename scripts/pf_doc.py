"""docs/results.md section ``pf-<dataset>`` from the run directories of scripts/pf_study.py.

    python scripts/pf_doc.py runs/pf/yoochoose-100k runs/pf/retailrocket [--doc docs/results.md]

Per study directory (``<variant>-s<seed>`` run dirs with metrics.json, ranks.parquet,
next_n.json, next_n_ranks.parquet): mean ± sd over seeds of next-item and next-n figures per
variant; the paired bootstrap of professor forcing (``pf``) minus teacher forcing only
(``base``): per-case values averaged over the seeds both variants have, resampled by test
session (1,000 resamples, 95 %); next-item Recall@20 by position (prefix length) per variant.
Nothing here is typed by hand: every figure comes from those files.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

import numpy as np
import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from _report import update_section
from sessionrec.evaluation.metrics import metric_values
from sessionrec.evaluation.significance import paired_bootstrap

RUN = re.compile(r"^(?P<variant>[a-z0-9_]+)-s(?P<seed>\d+)$")
DOC = Path(__file__).resolve().parents[1] / "docs" / "results.md"
ORDER = ("onestep", "base", "pf", "pf_top1")
MIN_CASES = 20
LABEL = {"onestep": "one-step BPTT (default)", "base": "bptt window, no adversarial term",
         "pf": "bptt window + professor forcing",
         "pf_top1": "professor forcing, top-1 feed, 3 D updates"}


def runs_of(study: Path) -> dict[str, dict[int, Path]]:
    out: dict[str, dict[int, Path]] = {}
    for d in sorted(study.iterdir()):
        m = RUN.match(d.name)
        if m and (d / "metrics.json").is_file() and (d / "next_n.json").is_file():
            out.setdefault(m["variant"], {})[int(m["seed"])] = d
    return out


def _ms(values: list[float]) -> str:
    a = np.asarray(values, dtype=float)
    return f"{a.mean():.4f} ± {a.std(ddof=1):.4f}" if len(a) > 1 else f"{a.mean():.4f}"


def _case_values(runs: list[Path], metric: str, horizon: int | None) -> pl.DataFrame:
    """Per-case metric averaged over ``runs``: columns key, session, value."""
    frames = []
    for i, run in enumerate(runs):
        if horizon is None:
            df = pl.read_parquet(run / "ranks.parquet").rename({"target_event": "key"})
        else:
            df = (pl.read_parquet(run / "next_n_ranks.parquet")
                  .filter(pl.col("horizon") == horizon).rename({"prefix_end": "key"}))
        frames.append(df.select("key", "session", pl.Series(
            f"v{i}", metric_values(metric, df["rank"].to_numpy()))))
    out = frames[0]
    for f in frames[1:]:
        out = out.join(f.drop("session"), on="key")
    cols = [c for c in out.columns if c.startswith("v")]
    return out.select("key", "session", value=pl.mean_horizontal(cols)).sort("key")


def section(study: Path) -> tuple[str, str]:
    runs = runs_of(study)
    if not runs:
        raise SystemExit(f"{study}: no finished run directories (<variant>-s<seed>)")
    first = next(iter(next(iter(runs.values())).values()))
    meta = json.loads((first / "metrics.json").read_text())
    dataset, model = meta["dataset"], meta["model"]
    variants = [v for v in ORDER if v in runs] + sorted(set(runs) - set(ORDER))
    n_cases = json.loads((first / "next_n.json").read_text())["n_cases"]
    # Horizon 1 is the next-item protocol (same cases, same ranks): shown once, as next-item.
    # Horizons with fewer than MIN_CASES cases are left out (listed with their counts).
    hs = [int(k[1:]) for k, v in n_cases.items() if v >= MIN_CASES and k != "h1"]
    lines = [f"## Professor forcing (issue 19): {model} on {dataset}", "",
             "Command: `python scripts/pf_study.py` then `python scripts/pf_doc.py` (see "
             "docs/professor_forcing.md); shared 2-core machine, one torch thread per run.", ""]
    if "pf" in runs:
        meta = json.loads((next(iter(runs["pf"].values())) / "metrics.json").read_text())
    pf_params = {k: v for k, v in meta["params"].items() if k.startswith(("pf_", "bptt",
                                                                          "grad_clip"))}
    lines.append(f"Study directory `{study.name}`; config parameters of the window and the "
                 f"adversarial term: `{json.dumps(pf_params)}`.")
    lines.append("")
    head = ["variant", "seeds", "epochs", "next-item R@20", "next-item MRR@20",
            *[f"next-n h{h} R@20" for h in hs], "D accuracy (last epoch)"]
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for v in variants:
        seeds = sorted(runs[v])
        mets = [json.loads((runs[v][s] / "metrics.json").read_text()) for s in seeds]
        nn = [json.loads((runs[v][s] / "next_n.json").read_text()) for s in seeds]
        pf = [m["train"].get("professor_forcing") for m in mets]
        acc = (_ms([p[-1]["pf_disc_accuracy"] for p in pf]) if all(pf) else "—")
        row = [LABEL.get(v, v), ",".join(map(str, seeds)),
               ",".join(str(m["train"].get("epochs", "?")) for m in mets),
               _ms([m["metrics"]["recall@20"] for m in mets]),
               _ms([m["metrics"]["mrr@20"] for m in mets]),
               *[_ms([n["metrics"][f"h{h}/recall@20"] for n in nn]) for h in hs], acc]
        lines.append("| " + " | ".join(row) + " |")
    lines += ["", "next-n cases per horizon: " + ", ".join(f"{k} {v:,}"
                                                           for k, v in n_cases.items())
              + f" (h1 = the next-item cases; horizons with fewer than {MIN_CASES} cases are "
              "not shown). D accuracy: the discriminator's accuracy on its last epoch's "
              "batches (0.5 = it cannot tell free-running from teacher-forced rollouts).", ""]
    for pf_variant in [v for v in variants if v.startswith("pf") and "base" in runs]:
        seeds = sorted(set(runs[pf_variant]) & set(runs["base"]))
        label = LABEL.get(pf_variant, pf_variant)
        lines += [f"{label} minus teacher forcing only (same window), paired over "
                  f"seeds {','.join(map(str, seeds))}: per-case values averaged over the "
                  "seeds, 95 % bootstrap interval resampling test sessions (1,000 resamples).",
                  "", f"| protocol | metric | base | {pf_variant} | {pf_variant} − base | "
                  "95 % interval | significant |", "|---|---|---:|---:|---:|---|---|"]
        for horizon in [None, *hs]:
            for metric in ("recall@20", "mrr@20"):
                a = _case_values([runs[pf_variant][s] for s in seeds], metric, horizon)
                b = _case_values([runs["base"][s] for s in seeds], metric, horizon)
                if not a["key"].equals(b["key"]):
                    raise SystemExit(f"{study}: {pf_variant} and base runs do not share "
                                     "test cases")
                ci = paired_bootstrap(a["value"].to_numpy(), b["value"].to_numpy(),
                                      cluster=a["session"].to_numpy())
                sig = "yes" if ci.low > 0 or ci.high < 0 else "no"
                proto = "next-item" if horizon is None else f"next-n h{horizon}"
                lines.append(f"| {proto} | {metric} | {b['value'].mean():.4f} | "
                             f"{a['value'].mean():.4f} | {ci.estimate:+.4f} | "
                             f"[{ci.low:+.4f}, {ci.high:+.4f}] | {sig} |")
        lines.append("")
    # Accuracy by position: next-item Recall@20 by prefix length, seed means.
    positions: dict[str, dict[str, float]] = {}
    for v in variants:
        per = [json.loads((runs[v][s] / "metrics.json").read_text())["by_position"]
               for s in sorted(runs[v])]
        positions[v] = {p: float(np.mean([b[p]["recall@20"] for b in per if p in b]))
                        for p in per[0]}
    labels = list(positions[variants[0]])
    lines += ["Next-item Recall@20 by position (events before the target; seed means):", "",
              "| variant | " + " | ".join(labels) + " |", "|---|" + "---:|" * len(labels)]
    for v in variants:
        lines.append(f"| {LABEL.get(v, v)} | "
                     + " | ".join(f"{positions[v].get(p, float('nan')):.4f}" for p in labels)
                     + " |")
    return dataset, "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("studies", nargs="+", type=Path)
    parser.add_argument("--doc", type=Path, default=DOC)
    args = parser.parse_args()
    for study in args.studies:
        dataset, body = section(study)
        update_section(f"pf-{dataset}", body, doc=args.doc)
        print(body)


if __name__ == "__main__":
    main()
