"""One archived event: what a shop's visitor did (or was shown), as the API received it.

Kinds (``ARCHIVE_KINDS``): ``view`` (a product page view, the click of ``POST /v1/events``),
``basket_add``, ``purchase`` (one order: several products, optional prices), ``impression``
(recommended products that entered the viewport) and ``click`` (on a recommended product).
Every event carries the shop's ``idempotency_key`` (the archive keeps the first event of each
key and ignores repeats), its session, user, device, product(s), placement, time and the
visitor's user agent, where known.

:func:`check_event` returns the problems of one event as ``(field, message)`` pairs, so a batch
can be answered event by event; :func:`validate_archive_events` raises :class:`DataError`
naming the row and field of the first problem (what every append runs).
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from collections.abc import Sequence
from datetime import datetime

import polars as pl

from sessionrec.errors import DataError

ARCHIVE_KINDS = ("view", "basket_add", "purchase", "impression", "click")
PLACEMENTS = ("product_page", "home", "basket")
SINGLE_PRODUCT = ("view", "basket_add", "click")

ARCHIVE_SCHEMA: dict[str, pl.DataType] = {
    "seq": pl.Int64(),
    "kind": pl.Utf8(),
    "idempotency_key": pl.Utf8(),
    "session_id": pl.Utf8(),
    "user_id": pl.Utf8(),
    "device_id": pl.Utf8(),
    "product_ids": pl.List(pl.Utf8()),
    "prices": pl.List(pl.Float64()),
    "order_id": pl.Utf8(),
    "placement": pl.Utf8(),
    "recommendation_id": pl.Utf8(),
    "user_agent": pl.Utf8(),
    "ts": pl.Datetime("us", "UTC"),
    "received_at": pl.Datetime("us", "UTC"),
}

_OPTIONAL_TEXT = ("session_id", "user_id", "device_id", "order_id", "placement",
                  "recommendation_id", "user_agent")


@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)
class ArchiveEvent:
    """One archived event: the columns of :data:`ARCHIVE_SCHEMA` except ``seq``."""

    kind: str
    idempotency_key: str
    product_ids: tuple[str, ...]
    ts: datetime
    session_id: str | None = None
    user_id: str | None = None
    device_id: str | None = None
    prices: tuple[float, ...] | None = None
    order_id: str | None = None
    placement: str | None = None
    recommendation_id: str | None = None
    user_agent: str | None = None
    received_at: datetime | None = None

    def __post_init__(self) -> None:
        if isinstance(self.product_ids, list):
            object.__setattr__(self, "product_ids", tuple(self.product_ids))
        if isinstance(self.prices, list):
            object.__setattr__(self, "prices", tuple(self.prices))


def _storable(text: object) -> bool:
    """Text both databases keep as given: no NUL, no lone surrogate."""
    if not isinstance(text, str) or "\x00" in text:
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def check_event(e: ArchiveEvent) -> list[tuple[str, str]]:
    """The problems of ``e`` as (field, message) pairs; empty when it can be archived."""
    problems: list[tuple[str, str]] = []
    if e.kind not in ARCHIVE_KINDS:
        problems.append(("kind", f"is {e.kind!r}, expected one of {', '.join(ARCHIVE_KINDS)}"))
    if not _storable(e.idempotency_key) or not e.idempotency_key:
        problems.append(("idempotency_key", "must be non-empty text without NUL"))
    for name in _OPTIONAL_TEXT:
        value = getattr(e, name)
        if value is not None and not _storable(value):
            problems.append((name, f"must be text without NUL or null, got {value!r}"))
    if e.placement is not None and e.placement not in PLACEMENTS:
        problems.append(("placement", f"is {e.placement!r}, expected one of "
                                      f"{', '.join(PLACEMENTS)}"))
    if not isinstance(e.product_ids, tuple) or not all(_storable(p) and p
                                                        for p in e.product_ids):
        problems.append(("product_ids", "must be a list of non-empty product ids"))
    elif not e.product_ids:
        problems.append(("product_ids", "must name at least one product"))
    elif e.kind in SINGLE_PRODUCT and len(e.product_ids) != 1:
        problems.append(("product_ids", f"a {e.kind} names exactly one product, got "
                                        f"{len(e.product_ids)}"))
    if e.kind in ("view", "basket_add") and e.session_id is None:
        problems.append(("session_id", f"a {e.kind} needs the visitor's session"))
    if e.kind == "purchase" and e.order_id is None:
        problems.append(("order_id", "a purchase needs its order id"))
    if e.kind in ("impression", "click") and e.recommendation_id is None:
        problems.append(("recommendation_id", f"an {e.kind} names its recommendation"
                         if e.kind == "impression" else "a click names its recommendation"))
    if e.prices is not None:
        if not isinstance(e.prices, tuple) or len(e.prices) != len(e.product_ids):
            problems.append(("prices", f"must hold one price per product "
                                       f"({len(e.product_ids)}), got {e.prices!r}"))
        elif not all(isinstance(p, numbers.Real) and not isinstance(p, bool)
                     and math.isfinite(p) and p > 0 for p in e.prices):
            problems.append(("prices", "must be finite numbers > 0"))
    for name in ("ts", "received_at"):
        value = getattr(e, name)
        if value is None and name == "received_at":
            continue
        if not isinstance(value, datetime) or value.utcoffset() is None:
            problems.append((name, f"must be a timezone-aware datetime, got {value!r}"))
    return problems


def validate_archive_events(events: Sequence[ArchiveEvent]) -> None:
    """Raise :class:`DataError` naming the row and field of the first invalid event."""
    for row, event in enumerate(events):
        if not isinstance(event, ArchiveEvent):
            raise DataError(f"expected an ArchiveEvent, got {type(event).__name__}", row=row)
        problems = check_event(event)
        if problems:
            field, message = problems[0]
            raise DataError(f"invalid archive event: {field} {message}", column=field, row=row)
