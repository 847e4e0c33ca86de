"""``sessionrec experiment report | aa | power``: analyse an experiment's event log, check the
analysis on synthetic A/A experiments, and plan an experiment's size."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path


def cmd_report(args: argparse.Namespace) -> int:
    from sessionrec.experiments.config import load_experiment
    from sessionrec.experiments.eventlog import open_event_log
    from sessionrec.experiments.report import write_report

    config = load_experiment(args.experiment, check_models=False)
    t0 = time.perf_counter()
    with open_event_log(args.log) as log:
        frame = log.read_frame(config.name)
    result = write_report(frame, config, Path(args.out), fmt=args.format, alpha=args.alpha,
                          n_boot=args.n_boot, seed=args.seed, holm_family=args.holm_family,
                          lag_window_days=args.lag_window)
    for c in result["comparisons"]:
        print(c["verdict"])
    if result["srm"]["mismatch"]:
        print(f"WARNING: sample-ratio mismatch (p = {result['srm']['p_value']:.3g})")
    print(f"wrote {result['files'][0]} and metrics.json ({len(frame):,} events, "
          f"{time.perf_counter() - t0:.1f} s)")
    return 0


def cmd_aa(args: argparse.Namespace) -> int:
    from sessionrec.evaluation.report import write_results
    from sessionrec.experiments.aa import simulate_aa, simulate_peeking, srm_demo

    t0 = time.perf_counter()
    aa = simulate_aa(args.experiments, args.units, alpha=args.alpha, seed=args.seed)
    demo = srm_demo(args.srm_units, args.srm_share)
    print(aa.summary())
    print(demo.summary())
    payload = {"aa": aa.to_dict(), "srm_demo": demo.to_dict()}
    if args.looks > 0:
        peeking = simulate_peeking(args.experiments, args.units, args.looks, alpha=args.alpha,
                                   seed=args.seed)
        print(peeking.summary())
        payload["peeking"] = peeking.to_dict()
    print(f"({time.perf_counter() - t0:.1f} s)")
    if args.out:
        write_results(args.out, payload)
        print(f"wrote {Path(args.out) / 'metrics.json'}")
    return 0 if aa.within_range and demo.skewed.mismatch else 1


def cmd_power(args: argparse.Namespace) -> int:
    from sessionrec.errors import ConfigError
    from sessionrec.experiments.stats import mde_two_proportions, sample_size_two_proportions

    if (args.mde is None) == (args.units is None):
        raise ConfigError("give exactly one of --mde (gives the units per arm) or --units "
                          "(gives the minimum detectable effect)")
    if args.mde is not None:
        n = sample_size_two_proportions(args.baseline, args.mde, args.alpha, args.power,
                                        relative=args.relative,
                                        design_effect=args.design_effect)
        kind = "relative" if args.relative else "absolute"
        out = {"units_per_arm": n}
        print(f"{n:,} units per arm to detect a {args.mde:g} {kind} change of a "
              f"{args.baseline:g} rate (alpha {args.alpha:g}, power {args.power:g})")
    else:
        mde = mde_two_proportions(args.baseline, args.units, args.alpha, args.power,
                                  design_effect=args.design_effect)
        out = {"mde_absolute": mde, "mde_relative": mde / args.baseline}
        print(f"{args.units:,} units per arm detect {args.baseline:g} -> "
              f"{args.baseline + mde:.6g} (+{mde:.4g} absolute, +{mde / args.baseline:.1%} "
              f"relative; alpha {args.alpha:g}, power {args.power:g})")
    if args.json:
        print(json.dumps(out))
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``report``, ``aa`` and ``power`` to the ``experiment`` subcommands."""
    p = sub.add_parser("report", help="KPIs, significance verdicts and daily plots of an "
                                      "experiment, from its event log")
    p.add_argument("experiment", metavar="EXP", help="experiment config (TOML)")
    p.add_argument("--log", required=True,
                   help="event log URL: sqlite:///path.db or postgresql://user@host:port/db")
    p.add_argument("--out", required=True, help="directory for report, metrics.json, plots")
    p.add_argument("--format", choices=("md", "html"), default="md")
    p.add_argument("--alpha", type=float, default=0.05)
    p.add_argument("--n-boot", type=int, default=2000,
                   help="unit-level bootstrap replicates (0: no bootstrap)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--lag-window", type=float, default=None, metavar="DAYS",
                   help="window whose share of click-linked sales the click-to-sale lag "
                        "reports (default: the attribution window)")
    p.add_argument("--holm-family", choices=("all", "kpi"), default="all",
                   help="Holm over every variant x KPI comparison, or per KPI")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("aa", help="synthetic A/A experiments: false-positive rate of the "
                                  "unit-level test vs a naive one, and the SRM check (exit 1 "
                                  "when the rate leaves the binomial range or SRM stays silent)")
    p.add_argument("--experiments", type=int, default=200)
    p.add_argument("--units", type=int, default=2000, help="units per A/A experiment")
    p.add_argument("--alpha", type=float, default=0.05)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--looks", type=int, default=14,
                   help="daily looks of the peeking / always-valid demonstration (0: skip it)")
    p.add_argument("--srm-units", type=int, default=20_000)
    p.add_argument("--srm-share", type=float, default=0.52,
                   help="share of arm A in the deliberately skewed split")
    p.add_argument("--out", help="directory to write metrics.json into")
    p.set_defaults(func=cmd_aa)

    p = sub.add_parser("power", help="units per arm for a minimum detectable effect, or the "
                                     "MDE of a given number of units (two proportions)")
    p.add_argument("--baseline", type=float, required=True, help="control rate, e.g. 0.05")
    p.add_argument("--mde", type=float, help="effect to detect (absolute, or see --relative)")
    p.add_argument("--relative", action="store_true", help="--mde is relative (0.1 = +10%%)")
    p.add_argument("--units", type=int, help="units per arm (gives the MDE)")
    p.add_argument("--alpha", type=float, default=0.05)
    p.add_argument("--power", type=float, default=0.8)
    p.add_argument("--design-effect", type=float, default=1.0,
                   help="variance inflation of clustered trials, 1 + (m - 1) ICC")
    p.add_argument("--json", action="store_true", help="also print the result as JSON")
    p.set_defaults(func=cmd_power)
