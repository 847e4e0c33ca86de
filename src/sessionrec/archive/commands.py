"""``sessionrec archive {export,stats}``: the event archive from the command line."""

from __future__ import annotations

import argparse
import json
import os
from datetime import UTC, date, datetime

from sessionrec.errors import ConfigError

ARCHIVE_ENV = "SESSIONREC_ARCHIVE"


def parse_since(text: str | None) -> datetime | None:
    """A date (midnight UTC) or an RFC 3339 date-time with offset; None for None."""
    if text is None:
        return None
    try:
        if "T" in text.upper() or " " in text:
            moment = datetime.fromisoformat(text.replace("z", "Z"))
        else:
            day = date.fromisoformat(text)
            return datetime(day.year, day.month, day.day, tzinfo=UTC)
    except ValueError:
        raise ConfigError(f"--since {text!r} is not a date (2026-01-31) or a date-time with "
                          "offset (2026-01-31T00:00:00Z)") from None
    if moment.tzinfo is None:
        raise ConfigError(f"--since {text!r} has no UTC offset; add one, e.g. "
                          "2026-01-01T00:00:00Z")
    return moment.astimezone(UTC)


def _url(args: argparse.Namespace) -> str:
    url = args.archive or os.environ.get(ARCHIVE_ENV, "")
    if not url:
        raise ConfigError("no archive: give --archive sqlite:///archive.db (or "
                          "postgresql://...), or set SESSIONREC_ARCHIVE")
    return url


def cmd_export(args: argparse.Namespace) -> int:
    from sessionrec.archive.export import export_galaxus
    from sessionrec.archive.log import open_archive

    since = parse_since(args.since)
    with open_archive(_url(args)) as archive:
        frame = archive.read_frame()
    summary = export_galaxus(frame, args.out, since, overwrite=args.overwrite)
    print(f"exported {summary['views']:,} views ({summary['shards']} daily shards) and "
          f"{summary['order_lines']:,} order lines of {summary['orders']:,} orders to "
          f"{args.out}; prepare it with: sessionrec prepare --source galaxus --input "
          f"{args.out} --out DIR")
    return 0


def cmd_stats(args: argparse.Namespace) -> int:
    from sessionrec.archive.log import open_archive

    with open_archive(_url(args)) as archive:
        print(json.dumps(archive.counts(), indent=2))
    return 0


def cmd_orders(args: argparse.Namespace) -> int:
    from sessionrec.data.orders import write_orders

    meta = write_orders(args.data, args.raw)
    print(f"{meta['orders']:,} orders ({meta['lines']:,} lines; "
          f"{meta['unknown_product_lines']:,} lines of unknown products dropped) written to "
          f"{args.data}/orders.parquet; train 'often bought together' on them with: "
          f"sessionrec train --set data.prepared={args.data} --set model.name=obt --set "
          f"model.params.orders={args.data}/orders.parquet --out RUN_DIR")
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Add ``archive`` (and ``orders``) to the top-level subparsers."""
    o = sub.add_parser("orders", help="write a prepared directory's orders (products bought "
                                      "together) for the obt model")
    o.add_argument("--data", required=True, help="prepared data directory")
    o.add_argument("--raw", default=None, help="its raw data (default: from its manifest)")
    o.set_defaults(func=cmd_orders)
    p = sub.add_parser("archive", help="the event archive of the API (serve --archive)")
    group = p.add_subparsers(dest="archive_command", required=True)
    e = group.add_parser("export", help="write the archive as Galaxus-format raw data")
    e.add_argument("--archive", default=None, metavar="URL",
                   help="sqlite:///archive.db or postgresql://... (or SESSIONREC_ARCHIVE)")
    e.add_argument("--since", default=None, help="first day (2026-01-31) or date-time with "
                                                 "offset; default: everything")
    e.add_argument("--out", required=True, help="raw data directory to write")
    e.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    e.set_defaults(func=cmd_export)
    s = group.add_parser("stats", help="events per kind")
    s.add_argument("--archive", default=None, metavar="URL")
    s.set_defaults(func=cmd_stats)
