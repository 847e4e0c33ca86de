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
