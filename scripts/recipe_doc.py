"""The four-variant study under several training recipes, side by side (issue 19).

    python scripts/recipe_doc.py --baseline current \
        current=runs/study-taobao thesis=runs/study-taobao-thesis \
        thesis-adagrad=runs/study-taobao-thesis-adagrad ... [--section study-recipes]

Each ``LABEL=DIR`` is an ``OUT`` of ``sessionrec study`` (finished: ``study.json``). Studies are
grouped by dataset (``study.json``'s ``dataset``); per dataset the section shows, per variant,
Recall@20 and MRR@20 (mean ± sd over seeds) and the epochs early stopping chose under every
recipe, then every recipe minus the ``--baseline`` recipe per variant: the paired cluster
bootstrap (resampling test sessions) of the per-prediction metric averaged over the seeds both
studies have. Recipes are read from each study's resolved config (loss, optimiser, learning
rate, momentum, negatives), so the table says what ran, not what the label claims.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from _report import update_section
from sessionrec.evaluation.significance import paired_bootstrap
from sessionrec.study import seed_values

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "results.md"
METRICS = ("recall@20", "mrr@20")


def _ms(stat: dict) -> str:
    return f"{stat['mean']:.4f} ± {stat['std']:.4f}"


def recipe_of(summary: dict) -> str:
    """Loss, optimiser, learning rate, momentum and negatives of a study's resolved config."""
    p = summary["config"]["model"]["params"]
    negatives = ("in-batch only" if int(p["n_sample"]) == 0
                 else f"in-batch + {p['n_sample']} sampled")
    momentum = f", momentum {p.get('momentum', 0.0)}" if p["optimizer"] == "adagrad" else ""
    return (f"{p['loss']}, {p['optimizer']} (lr {p['learning_rate']}{momentum}), "
            f"{negatives}, batch {p['batch_size']}")


def dataset_section(name: str, studies: dict[str, Path], baseline: str) -> list[str]:
    summaries = {label: json.loads((d / "study.json").read_text(encoding="utf-8"))
                 for label, d in studies.items()}
    labels = list(studies)
    variants = list(summaries[labels[0]]["variants"])
    lines = [f"### {name}", "", "| recipe | study directory | training recipe |",
             "|---|---|---|"]
    lines += [f"| {label} | `{d.name}` | {recipe_of(summaries[label])} |"
              for label, d in studies.items()]
    lines += ["", "Recall@20 / MRR@20, mean ± sd over seeds; epochs chosen by early stopping "
              "on valid MRR@10 in brackets.", ""]
    lines += ["| variant | " + " | ".join(labels) + " |", "|---|" + "---|" * len(labels)]
    for v in variants:
        cells = []
        for label in labels:
            s = summaries[label]["variants"].get(v)
            if s is None:
                cells.append("—")
                continue
            cells.append(f"{_ms(s['metrics']['recall@20'])} / {_ms(s['metrics']['mrr@20'])} "
                         f"({s['epochs']['mean']:.1f})")
        lines.append(f"| {v} | " + " | ".join(cells) + " |")
    comparisons = list(summaries[labels[0]].get("comparisons", {}))
    if comparisons:
        lines += ["", "The study's own comparisons under each recipe (MRR@20 difference [95 % CI] "
                  "from `study.json`: does the finding depend on the recipe?):", "",
                  "| comparison | " + " | ".join(labels) + " |", "|---|" + "---|" * len(labels)]
        for comp in comparisons:
            cells = []
            for label in labels:
                ci = summaries[label].get("comparisons", {}).get(comp, {}).get("mrr@20")
                cells.append("—" if ci is None else
                             f"{ci['estimate']:+.4f} [{ci['low']:+.4f}, {ci['high']:+.4f}] "
                             f"{ci['verdict']}")
            lines.append(f"| {comp} | " + " | ".join(cells) + " |")
    others = [label for label in labels if label != baseline]
    if baseline in studies and others:
        lines += ["", f"Each recipe minus **{baseline}**, per variant: per-prediction metric "
                  "averaged over the seeds both have, paired cluster bootstrap over test "
                  "sessions (1,000 resamples, 95 %).", "",
                  "| recipe | variant | metric | difference [95 % CI] | verdict |",
                  "|---|---|---|---:|---|"]
        for label in others:
            for v in variants:
                seeds = tuple(sorted(set(summaries[label]["seeds"])
                                     & set(summaries[baseline]["seeds"])))
                if v not in summaries[label]["variants"] or not seeds:
                    continue
                for metric in METRICS:
                    ta, sess, va = seed_values(studies[label], v, seeds, metric)
                    tb, _, vb = seed_values(studies[baseline], v, seeds, metric)
                    if not np.array_equal(ta, tb):
                        raise SystemExit(f"{name}: {label} and {baseline} were evaluated on "
                                         "different predictions (different data?)")
                    ci = paired_bootstrap(va.mean(axis=0), vb.mean(axis=0), n_boot=1000,
                                          seed=0, cluster=sess)
                    verdict = ("higher" if ci.low > 0 else "lower" if ci.high < 0
                               else "no significant difference")
                    lines.append(f"| {label} | {v} | {metric} | {ci.estimate:+.4f} "
                                 f"[{ci.low:+.4f}, {ci.high:+.4f}] | {verdict} |")
    return [*lines, ""]


def section(groups: dict[str, dict[str, Path]], baseline: str, command: str) -> str:
    lines = ["## The four-variant study under several training recipes (issue 19)", "",
             f"Generated by `python scripts/recipe_doc.py` from the `study.json` files and run "
             f"directories of `sessionrec study` on {platform.system()} {platform.machine()}, "
             f"{os.cpu_count()} cores, CPU only, torch 1 thread per run. Command: `{command}`. "
             "Same data, split, model sizes, seeds and early stopping in every recipe; only "
             "the loss, optimiser and negatives change. The current-recipe studies here were "
             "rerun for this comparison with the configs of the `study` section above, whose "
             "tables come from earlier runs of older code and differ from these slightly.", ""]
    for name, studies in groups.items():
        lines += dataset_section(name, studies, baseline)
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("studies", nargs="+", help="LABEL=STUDY_DIR")
    parser.add_argument("--baseline", default="current")
    parser.add_argument("--section", default="study-recipes")
    parser.add_argument("--doc", type=Path, default=DOC)
    args = parser.parse_args()
    groups: dict[str, dict[str, Path]] = {}
    for spec in args.studies:
        label, sep, path = spec.partition("=")
        if not sep or not label or not path:
            raise SystemExit(f"expected LABEL=STUDY_DIR, got {spec!r}")
        study = Path(path)
        if not (study / "study.json").is_file():
            raise SystemExit(f"{study}: not a finished study (no study.json)")
        name = json.loads((study / "study.json").read_text(encoding="utf-8"))["dataset"]
        groups.setdefault(name, {})[label] = study
    command = "python scripts/recipe_doc.py --baseline " + args.baseline + " " + " ".join(
        f"{label}=runs/{Path(p).name}" for spec in args.studies
        for label, _, p in [spec.partition("=")])
    update_section(args.section, section(groups, args.baseline, command), args.doc)
    print(f"updated {args.doc}")


if __name__ == "__main__":
    main()
