"""``sessionrec retrain`` and ``sessionrec rollback``: the retraining loop from the command line
(and from cron: exit code 0 when a decision was made, 3 when a step failed and the live model
was left as it was, 2 on errors such as another retrain holding the lock)."""

from __future__ import annotations

import argparse
import json


def _config(args: argparse.Namespace):
    from sessionrec.loop.config import load_loop_config

    return load_loop_config(args.config, args.set)


def cmd_retrain(args: argparse.Namespace) -> int:
    from sessionrec.archive.commands import parse_since
    from sessionrec.loop.admin import channel_for
    from sessionrec.loop.retrain import DECIDED, retrain

    cfg = _config(args)
    until = parse_since(args.until or cfg.data.until or None)
    outcome = retrain(cfg, channel_for(cfg.serve), until)
    line = {"decision": outcome.decision, "reason": outcome.reason,
            "run_dir": str(outcome.run_dir)}
    print(json.dumps(line))
    return 0 if outcome.decision in DECIDED else 3


def cmd_rollback(args: argparse.Namespace) -> int:
    from sessionrec.loop.admin import channel_for
    from sessionrec.loop.retrain import rollback

    cfg = _config(args)
    outcome = rollback(cfg, channel_for(cfg.serve), force=args.force)
    print(json.dumps({"decision": outcome.decision, "reason": outcome.reason,
                      "run_dir": str(outcome.run_dir)}))
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Add ``retrain`` and ``rollback`` to the top-level subparsers."""
    p = sub.add_parser("retrain", help="prepare the latest window, train, shadow-evaluate "
                                       "against the live model, promote if not worse")
    p.add_argument("--config", required=True, help="loop.toml (see docs/retraining.md)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config value, e.g. decision.margin=0.01")
    p.add_argument("--until", default=None, help="end of the window (a date, or a date-time "
                                                 "with offset); default: the newest event")
    p.set_defaults(func=cmd_retrain)
    r = sub.add_parser("rollback", help="serve again the model the last promotion replaced")
    r.add_argument("--config", required=True, help="the loop.toml of the retrains")
    r.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    r.add_argument("--force", action="store_true",
                   help="roll back even if the live model is not the last promoted one")
    r.set_defaults(func=cmd_rollback)
