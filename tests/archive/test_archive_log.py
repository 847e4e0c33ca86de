"""The archive's storage: both backends, idempotency, validation per field, group commit."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from sessionrec.archive.log import open_archive
from sessionrec.archive.record import ArchiveEvent, check_event
from sessionrec.errors import ConfigError, DataError
from sessionrec.experiments.eventlog_async import AsyncEventLog
from tests.experiments.test_eventlog import postgres_server, postgres_url  # noqa: F401

T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)


def view(key: str, product: str = "101", minute: int = 0, **kw) -> ArchiveEvent:
    fields = {"session_id": "s1", "user_agent": "Mozilla/5.0", "placement": "product_page"}
    fields.update(kw)
    return ArchiveEvent(kind="view", idempotency_key=key, product_ids=(product,),
                        ts=T0 + timedelta(minutes=minute), **fields)


@pytest.fixture(params=["sqlite", "sqlite-memory", "postgresql"])
def url(request, tmp_path) -> str:
    if request.param == "sqlite-memory":
        return "sqlite://:memory:"
    if request.param == "postgresql":
        return request.getfixturevalue("postgres_url")
    return f"sqlite:///{tmp_path}/archive.db"


def test_append_read_and_count(url):
    purchase = ArchiveEvent(kind="purchase", idempotency_key="o-1", product_ids=("101", "7"),
                            prices=(19.5, 2.0), order_id="o1", user_id="u1", session_id="s1",
                            ts=T0 + timedelta(hours=1))
    with open_archive(url) as archive:
        assert archive.append_each([view("a"), view("b", "102", 1, device_id="d1"),
                                    view("a", "999")]) == [True, True, False]
        assert archive.append_each([purchase, view("b")]) == [True, False]
        frame = archive.read_frame()
        assert frame["idempotency_key"].to_list() == ["a", "b", "o-1"]
        assert frame["product_ids"].to_list() == [["101"], ["102"], ["101", "7"]]
        assert frame["prices"].to_list() == [None, None, [19.5, 2.0]]
        assert frame["device_id"].to_list() == [None, "d1", None]
        assert frame["ts"].to_list()[2] == T0 + timedelta(hours=1)
        assert frame["user_agent"].to_list()[0] == "Mozilla/5.0"
        assert archive.read_frame(since=T0 + timedelta(minutes=1)).height == 2
        assert archive.counts() == {"view": 2, "basket_add": 0, "purchase": 1,
                                    "impression": 0, "click": 0}


@pytest.mark.parametrize("change, field", [
    ({"kind": "wishlist"}, "kind"),
    ({"placement": "sidebar"}, "placement"),
    ({"product_ids": ("1", "2")}, "product_ids"),
    ({"session_id": None}, "session_id"),
    ({"ts": datetime(2026, 1, 1)}, "ts"),
    ({"user_agent": "a\x00b"}, "user_agent"),
])
def test_an_invalid_event_names_its_field_and_nothing_is_written(change, field, tmp_path):
    fields = {"kind": "view", "idempotency_key": "k", "product_ids": ("1",), "ts": T0,
              "session_id": "s"}
    fields.update(change)
    bad = ArchiveEvent(**fields)
    assert [f for f, _ in check_event(bad)] == [field]
    with open_archive(f"sqlite:///{tmp_path}/a.db") as archive:
        with pytest.raises(DataError, match=f"column '{field}', row 1"):
            archive.append_each([view("ok"), bad])
        assert archive.read_frame().height == 0


def test_a_purchase_needs_an_order_and_positive_prices():
    p = ArchiveEvent(kind="purchase", idempotency_key="k", product_ids=("1", "2"),
                     prices=(3.0, -1.0), ts=T0)
    assert check_event(p) == [("order_id", "a purchase needs its order id"),
                              ("prices", "must be finite numbers > 0")]


def test_group_commit_through_the_async_front(tmp_path):
    front = AsyncEventLog(open_archive(f"sqlite:///{tmp_path}/a.db"))

    async def main():
        return await asyncio.gather(*(front.append_each([view(f"k{i % 50}", minute=i)])
                                      for i in range(100)))

    flags = asyncio.run(main())
    assert sum(f[0] for f in flags) == 50
    assert front.log.read_frame().height == 50
    front.close()


def test_bad_urls():
    with pytest.raises(ConfigError, match="archive URL has scheme 'mysql'"):
        open_archive("mysql://x")
    with pytest.raises(ConfigError, match="expected sqlite:///"):
        open_archive("sqlite://relative.db")
