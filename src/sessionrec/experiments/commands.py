"""``sessionrec experiment {report,simulate}``: the command group of online A/B tests."""

from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Add ``experiment`` and its subcommands to the top-level subparsers."""
    from sessionrec.experiments import report_cli, simulate_cli

    p = sub.add_parser("experiment", help="online A/B tests: report an experiment, or simulate "
                                          "one against the live API")
    group = p.add_subparsers(dest="experiment_command", required=True)
    report_cli.register(group)
    simulate_cli.register(group)
    o = group.add_parser("outside", help="serve a trained run as a stand-in outside "
                                         "recommender (for an external variant)")
    o.add_argument("--model", required=True, help="run directory")
    o.add_argument("--host", default="127.0.0.1")
    o.add_argument("--port", type=int, default=8765)
    o.add_argument("--key-env", default="", help="require X-Api-Key equal to this variable")
    o.set_defaults(func=cmd_outside)


def cmd_outside(args: argparse.Namespace) -> int:
    import uvicorn

    from sessionrec.experiments.outside import outside_app

    app = outside_app(args.model, args.key_env)
    print(f"outside recommender {args.model} on http://{args.host}:{args.port}/recommend",
          flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", access_log=False)
    return 0
