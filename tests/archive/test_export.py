"""``archive export``: Galaxus shards per day, last-logged-in users per device, orders."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import polars as pl
import pytest

from sessionrec.archive.commands import parse_since
from sessionrec.archive.export import export_galaxus
from sessionrec.archive.log import open_archive
from sessionrec.archive.record import ArchiveEvent
from sessionrec.errors import ConfigError, EmptyDataError

T0 = datetime(2026, 3, 1, 22, 0, tzinfo=UTC)


def ev(key, kind, product, hours, session="s1", user=None, device="d1", **kw):
    products = product if isinstance(product, tuple) else (product,)
    return ArchiveEvent(kind=kind, idempotency_key=key, product_ids=products, session_id=session,
                        user_id=user, device_id=device, user_agent="UA",
                        ts=T0 + timedelta(hours=hours), **kw)


def archive_frame(events):
    with open_archive("sqlite://:memory:") as archive:
        archive.append(events)
        return archive.read_frame()


EVENTS = [
    ev("1", "view", "101", 0),                        # day 1, anonymous on d1
    ev("2", "view", "102", 1, user="u1"),             # day 1 23:00, u1 logs in on d1
    ev("3", "view", "103", 3, session="s2"),          # day 2 01:00, anonymous again on d1
    ev("4", "view", "101", 4, session="s3", device=None, user="u2"),
    ev("5", "basket_add", "103", 4.5, session="s2"),  # not a view: not in the shards
    ev("6", "purchase", ("103", "101"), 5, session="s2", user="u1", order_id="o1",
       prices=(10.0, 2.5)),
]


def test_views_become_daily_galaxus_shards_and_purchases_order_lines(tmp_path):
    summary = export_galaxus(archive_frame(EVENTS), tmp_path / "raw")
    assert summary["views"] == 4 and summary["shards"] == 2 and summary["order_lines"] == 2
    day1 = pl.read_parquet(tmp_path / "raw" / "events" / "part-00000.parquet")
    day2 = pl.read_parquet(tmp_path / "raw" / "events" / "part-00001.parquet")
    assert day1.columns == ["ProductId", "LastLoggedInUserId", "UserId", "SessionId",
                            "UserAgent", "Timestamp"]
    assert day1["ProductId"].dtype == pl.Int64  # every product id is an integer's text
    assert day1["ProductId"].to_list() == [101, 102]
    assert day1["LastLoggedInUserId"].to_list() == [None, "u1"]
    assert day2["ProductId"].to_list() == [103, 101]
    assert day2["LastLoggedInUserId"].to_list() == ["u1", "u2"]  # d1 remembers u1
    assert day2["UserId"].to_list() == [None, "u2"]
    orders = pl.read_parquet(tmp_path / "raw" / "orders.parquet")
    assert orders.select("OrderId", "ProductId", "Price").rows() == [("o1", 103, 10.0),
                                                                      ("o1", 101, 2.5)]


def test_since_keeps_the_device_history_from_before(tmp_path):
    since = datetime(2026, 3, 2, tzinfo=UTC)
    summary = export_galaxus(archive_frame(EVENTS), tmp_path / "raw", since)
    assert summary["views"] == 2 and summary["shards"] == 1
    shard = pl.read_parquet(tmp_path / "raw" / "events" / "part-00000.parquet")
    assert shard["LastLoggedInUserId"].to_list() == ["u1", "u2"]


def test_an_empty_window_writes_nothing(tmp_path):
    with pytest.raises(EmptyDataError, match="no views since 2027"):
        export_galaxus(archive_frame(EVENTS), tmp_path / "raw",
                       datetime(2027, 1, 1, tzinfo=UTC))
    assert not (tmp_path / "raw").exists()


def test_parse_since():
    assert parse_since("2026-03-02") == datetime(2026, 3, 2, tzinfo=UTC)
    assert parse_since("2026-03-02T01:00:00+01:00") == datetime(2026, 3, 2, tzinfo=UTC)
    with pytest.raises(ConfigError, match="no UTC offset"):
        parse_since("2026-03-02T01:00:00")
    with pytest.raises(ConfigError, match="is not a date"):
        parse_since("yesterday")
