"""``sessionrec experiment simulate``: an A/B test without a shop, on held-out real sessions.

    sessionrec experiment simulate --config configs/experiments/synthetic.toml \\
        --out runs/experiments/synthetic/sim [--build] [--seed 0] [--concurrency 8] \\
        [--slots 5] [--time-compression 0] [--max-visitors 0] [--data RAW] [--doc FILE]

Steps: (``--build``: make missing raw data, prepared data and runs), load the experiment, check
that every variant was trained on the prepared data, take the visitors after its training
cut-off, start ``sessionrec serve --experiment ... --event-log sqlite:///OUT/events.db`` on a
free loopback port, replay the visitors, stop the server, then write into OUT:
``summary.json`` (what was sent, answered and logged; throughput and latency),
``simulation.toml`` (the resolved config), ``server.log``, and the experiment report
(``report.md``, ``metrics.json``, daily plots). ``--doc`` also writes the run's section of a
Markdown document (docs/experiments.md).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import shlex
import shutil
import time
from pathlib import Path

from sessionrec.errors import SessionRecError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("simulate", help="replay held-out real sessions with purchases against "
                                        "the live API: an A/B test without a shop")
    p.add_argument("--config", required=True, help="simulation TOML (configs/experiments/*.toml)")
    p.add_argument("--out", required=True, help="output directory (event log, summary, report)")
    p.add_argument("--seed", type=int, default=None, help="visitors' random seed")
    p.add_argument("--concurrency", type=int, default=None, help="visitors (and requests) at "
                                                                 "a time")
    p.add_argument("--slots", type=int, default=None, help="recommendations shown per view")
    p.add_argument("--time-compression", type=float, default=None, metavar="X",
                   help="simulated seconds per wall-clock second (0: as fast as possible)")
    p.add_argument("--max-visitors", type=int, default=None, help="a seeded sample of this "
                                                                  "many visitors (0: all)")
    p.add_argument("--days", type=float, default=None,
                   help="simulated days after the training cut-off (0: all there are)")
    p.add_argument("--data", default=None, help="raw data to replay (default: the config's, "
                                                "else the prepared data's input)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config value, e.g. clicks.base=0.2")
    p.add_argument("--build", action="store_true",
                   help="first make missing raw data, prepared data and runs ([build] section)")
    p.add_argument("--event-log", default=None, metavar="URL",
                   help="event log of the served experiment (default: sqlite:///OUT/events.db)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--no-report", action="store_true", help="skip the experiment report")
    p.add_argument("--doc", default=None, metavar="FILE",
                   help="also write this run's section into FILE (e.g. docs/experiments.md)")
    from sessionrec.cli import add_threads

    add_threads(p)
    p.set_defaults(func=cmd_simulate)


OPTION_KEYS = {"seed": "seed", "concurrency": "concurrency", "slots": "slots",
               "time_compression": "time_compression", "max_visitors": "max_visitors",
               "days": "days"}


def overrides_of(args: argparse.Namespace) -> tuple[str, ...]:
    """``--set`` overrides plus the dedicated options, as ``key=value``."""
    out = list(args.set)
    for option, key in OPTION_KEYS.items():
        value = getattr(args, option)
        if value is not None:
            out.append(f"{key}={value}")
    return tuple(out)


def prepare_out(out: Path, overwrite: bool) -> None:
    if out.exists() and any(out.iterdir()):
        if not overwrite:
            raise SessionRecError(f"output directory {out} is not empty (pass --overwrite to "
                                  "replace it)")
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)


def write_json(path: Path, payload: dict) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(payload, indent=2, default=str) + "\n", encoding="utf-8")
    tmp.replace(path)


def cmd_simulate(args: argparse.Namespace) -> int:
    from sessionrec.config import dump_toml, to_dict
    from sessionrec.data.sources import get_source
    from sessionrec.experiments import prerequisites, visitors
    from sessionrec.experiments.config import load_experiment
    from sessionrec.experiments.eventlog import open_event_log
    from sessionrec.experiments.liveapi import ServeProcess, experiment_options
    from sessionrec.experiments.simulate import iso, load_simulation, replay

    config_path = Path(args.config)
    cfg = load_simulation(config_path, overrides_of(args))
    base = config_path.parent
    if args.build:
        prerequisites.build(cfg, base, say=lambda m: print(m, flush=True))
    exp_path = prerequisites.under(base, cfg.experiment)
    experiment = load_experiment(exp_path)
    prepared = prerequisites.under(base, cfg.prepared)
    prerequisites.check_trained_on(experiment, prepared)
    opts = visitors.prepared_options(prepared)
    raw = prerequisites.raw_path(cfg, base, args.data)
    source = get_source(opts["source"])
    cutoff = visitors.training_cutoff(prepared)
    print(f"{source.name}: replaying {raw} after the training cut-off {cutoff.isoformat()} "
          f"(end of {prepared}'s train/valid data)", flush=True)
    timeline = visitors.read_timeline(
        source, raw, user_aware=opts["user_aware"], session_method=opts["session_method"],
        gap_minutes=opts["gap_minutes"], drop_bots=opts["drop_bots"])
    events = visitors.held_out(timeline, cutoff, cfg.days or None)
    everyone, counts = visitors.build_visitors(events)
    chosen = visitors.sample_visitors(everyone, cfg.max_visitors, cfg.seed)
    first, last, days = visitors.span_days(chosen)
    n_orders = sum(len(v.orders) for v in chosen)
    print(f"{len(chosen):,} visitors ({counts['visitors']:,} held out), "
          f"{sum(len(v.views) for v in chosen):,} views, {n_orders:,} orders over "
          f"{visitors.span_text(days)} ({iso(first)} .. {iso(last)})", flush=True)

    out = Path(args.out)
    prepare_out(out, args.overwrite)
    log_url = args.event_log or f"sqlite:///{(out / 'events.db').resolve()}"
    started = time.time()
    options = experiment_options(exp_path, log_url, cfg.serve)
    with ServeProcess(options, log_file=out / "server.log") as api:
        print(f"API up at {api.url} ({experiment.name}: "
              f"{', '.join(experiment.variant_names())})", flush=True)
        summary = asyncio.run(replay(
            chosen, api.url, seed=cfg.seed, slots=cfg.slots, clicks=cfg.clicks,
            concurrency=cfg.concurrency, time_compression=cfg.time_compression,
            progress=not args.no_progress))
        exit_code = api.stop()
    with open_event_log(log_url) as event_log:
        logged = event_log.counts(experiment.name)
        frame = event_log.read_frame(experiment.name)
    summary = {
        "dataset": cfg.dataset or source.name, "source": source.name,
        "experiment": experiment.name, "variants": experiment.variant_names(),
        "control": experiment.control,
        "command": command_line(args),
        "machine": machine(), "started": iso(started),
        "cutoff": iso(cutoff), "prepared_split": opts["split_method"],
        "simulated": {"first": iso(first), "last": iso(last), "days": round(days, 4),
                      "days_asked": cfg.days},
        "held_out": counts,
        "visitors": len(chosen),
        "views": sum(len(v.views) for v in chosen),
        "orders": n_orders,
        **summary,
        "logged": logged,
        "server_exit_code": exit_code,
        "offline": prerequisites.offline_metrics(experiment),
    }
    write_json(out / "summary.json", summary)
    (out / "simulation.toml").write_text(dump_toml(to_dict(cfg)), encoding="utf-8")
    print(summary_text(summary))
    if not args.no_report:
        from sessionrec.experiments.report import write_report

        report = write_report(frame, experiment, out, seed=cfg.seed)
        print(f"wrote {out / 'summary.json'}, " + ", ".join(report["files"]))
        if args.doc:
            from sessionrec.experiments.simulate_doc import write_section

            write_section(Path(args.doc), summary, report)
            print(f"wrote the {summary['dataset']} section of {args.doc}")
    return 0 if summary["errors"] == 0 else 1


def command_line(args: argparse.Namespace) -> str:
    """The command that reproduces this run (the options given, in canonical order)."""
    words = ["sessionrec", "experiment", "simulate", "--config", args.config, "--out", args.out]
    for option in (*OPTION_KEYS, "data", "event_log", "doc"):
        value = getattr(args, option)
        if value is not None:
            words += [f"--{option.replace('_', '-')}", str(value)]
    for text in args.set:
        words += ["--set", text]
    words += [f"--{flag}" for flag in ("build", "overwrite", "no_report")
              if getattr(args, flag)]
    return " ".join(shlex.quote(w.replace("_", "-") if w.startswith("--") else w)
                    for w in words)


def machine() -> str:
    import os

    return (f"{platform.system()} {platform.machine()}, {os.cpu_count()} cores, "
            f"Python {platform.python_version()}")


def summary_text(s: dict) -> str:
    sent = s["sent"]
    lat = s["latency_ms"].get("/v1/events", {})
    return (f"{s['visitors']:,} visitors, {s['requests']:,} requests in {s['wall_s']:.1f} s "
            f"({s['requests_per_s']:,.0f} requests/s), {s['errors']} errors; sent "
            f"{sent.get('events', 0):,} views, {sent.get('impressions', 0):,} impressions, "
            f"{sent.get('clicks', 0):,} clicks, {sent.get('purchases', 0):,} orders; "
            f"POST /v1/events p50 {lat.get('p50', float('nan')):.1f} ms, "
            f"p99 {lat.get('p99', float('nan')):.1f} ms; logged {s['logged']}")
