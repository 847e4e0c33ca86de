"""``POST /v1/events:batch``: events a shop sends from its own queue, archived one by one.

Body: ``{"events": [EVENT, ...]}`` (1 to 1,000). Each event is checked on its own, so one bad
event never takes the others down with it; the answer lists every event in order::

    {"results": [{"index": 0, "status": "accepted"},
                 {"index": 1, "status": "duplicate"},
                 {"index": 2, "status": "rejected",
                  "errors": [{"field": "product_id", "message": "Field required"}]}],
     "accepted": 1, "duplicates": 1, "rejected": 1}

An EVENT: ``idempotency_key`` (required), ``type`` (view, basket_add, purchase, impression,
click), ``session_id``, ``user_id``, ``device_id``, ``product_id`` (view, basket_add, click) or
``product_ids`` (purchase, impression), ``prices``, ``order_id`` (purchase),
``recommendation_id`` (impression, click), ``placement`` (product_page, home, basket),
``user_agent``, ``timestamp`` (RFC 3339 with offset or unix seconds; default now).

FastAPI reads the handlers' annotations at run time: no ``from __future__ import annotations``.
"""

from collections.abc import Callable
from typing import Any, Literal

from fastapi import FastAPI, HTTPException
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from sessionrec.archive.record import ArchiveEvent, check_event
from sessionrec.serving.app import MAX_ID_LENGTH, AnyId, Timestamp
from sessionrec.serving.archiving import ArchiveDown, Archiver, now_or, text

MAX_BATCH = 1000
MAX_PRODUCTS = 1000


class BatchEvent(BaseModel):
    model_config = ConfigDict(extra="forbid")

    idempotency_key: str = Field(min_length=1, max_length=MAX_ID_LENGTH)
    type: Literal["view", "basket_add", "purchase", "impression", "click"]
    session_id: AnyId | None = None
    user_id: AnyId | None = None
    device_id: AnyId | None = None
    product_id: AnyId | None = None
    product_ids: list[AnyId] | None = Field(None, min_length=1, max_length=MAX_PRODUCTS)
    prices: list[float] | None = None
    order_id: AnyId | None = None
    recommendation_id: str | None = Field(None, min_length=1, max_length=MAX_ID_LENGTH)
    placement: Literal["product_page", "home", "basket"] | None = None
    user_agent: str | None = Field(None, max_length=2000)
    timestamp: Timestamp | None = None


class Batch(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"events": [
        {"idempotency_key": "q-1", "type": "view", "session_id": "s-1", "product_id": 101},
        {"idempotency_key": "q-2", "type": "purchase", "session_id": "s-1", "order_id": 9,
         "product_ids": [101, 205], "prices": [19.9, 5.0]}]}]})

    events: list[Any] = Field(min_length=1, max_length=MAX_BATCH)


class FieldError(BaseModel):
    field: str
    message: str


class EventResult(BaseModel):
    index: int
    status: Literal["accepted", "duplicate", "rejected"]
    errors: list[FieldError] = Field(default_factory=list)


class BatchResults(BaseModel):
    results: list[EventResult]
    accepted: int
    duplicates: int
    rejected: int


_ADAPTER = TypeAdapter(BatchEvent)


def _products(e: BatchEvent) -> tuple[str, ...] | list[tuple[str, str]]:
    single = e.type in ("view", "basket_add", "click")
    if single:
        if e.product_ids is not None:
            return [("product_ids", f"a {e.type} takes product_id, not product_ids")]
        if e.product_id is None:
            return [("product_id", f"a {e.type} needs product_id")]
        return (str(e.product_id),)
    if e.product_id is not None:
        return [("product_id", f"a {e.type} takes product_ids (a list), not product_id")]
    if e.product_ids is None:
        return [("product_ids", f"a {e.type} needs product_ids")]
    return tuple(str(p) for p in e.product_ids)


def to_archive_event(raw: Any) -> ArchiveEvent | list[tuple[str, str]]:
    """The archive row of one batch event, or its problems as (field, message) pairs."""
    try:
        e = _ADAPTER.validate_python(raw)
    except ValidationError as err:
        return [(".".join(str(p) for p in x["loc"]) or "event", x["msg"]) for x in err.errors()]
    products = _products(e)
    if isinstance(products, list):
        return products
    event = ArchiveEvent(
        kind=e.type, idempotency_key=e.idempotency_key, session_id=text(e.session_id),
        user_id=text(e.user_id), device_id=text(e.device_id), product_ids=products,
        prices=None if e.prices is None else tuple(e.prices), order_id=text(e.order_id),
        placement=e.placement, recommendation_id=e.recommendation_id,
        user_agent=e.user_agent, ts=now_or(e.timestamp))
    return check_event(event) or event


def add_archive_routes(app: FastAPI, archiver: Callable[[], Archiver]) -> None:
    """Register ``POST /v1/events:batch``; ``archiver()`` returns the running archiver."""

    @app.post("/v1/events:batch", response_model=BatchResults, tags=["archive"],
              responses={503: {"description": "the archive is unavailable: nothing was "
                                              "recorded; retry with the same keys"}})
    async def events_batch(body: Batch) -> dict:
        """Archive a batch of events; each is answered on its own (see the results)."""
        results: list[dict] = []
        good: list[tuple[int, ArchiveEvent]] = []
        for i, raw in enumerate(body.events):
            got = to_archive_event(raw)
            if isinstance(got, ArchiveEvent):
                good.append((i, got))
                results.append({"index": i, "status": "accepted", "errors": []})
            else:
                results.append({"index": i, "status": "rejected", "errors": [
                    {"field": f, "message": m} for f, m in got]})
        if good:
            try:
                flags = await archiver().append([e for _, e in good])
            except ArchiveDown as err:
                raise HTTPException(503, f"{err}; nothing was recorded, retry with the same "
                                         "idempotency keys", headers={"Retry-After": "1"}
                                    ) from None
            for (i, _), new in zip(good, flags, strict=True):
                if not new:
                    results[i]["status"] = "duplicate"
        counts = {s: sum(r["status"] == s for r in results)
                  for s in ("accepted", "duplicate", "rejected")}
        return {"results": results, "accepted": counts["accepted"],
                "duplicates": counts["duplicate"], "rejected": counts["rejected"]}

