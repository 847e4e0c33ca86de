"""What the shop reports back: impressions, clicks and purchases, logged exactly once.

Every report carries the shop's ``idempotency_key``; the logged row's key is ``KIND:KEY`` and
the event log ignores a key it already holds, so a retried request is never counted twice
(the answer says ``duplicate``). A report is answered only once its row is durable; when the
log fails or does not answer within ``event_log_timeout_s`` the caller gets
:class:`EventLogDown` (the API answers 503 and the shop retries with the same key).

Impressions and clicks name a ``recommendation_id`` and copy its variant, unit, user and
session. An id the log does not know, or one whose recommendation is older than the
experiment's ``recommendation_ttl_days`` (measured from the recommendation's time to the
report's), makes the row an orphan: kept, ``variant`` null, counted. A purchase names its
buyer (user, session or device id) and gets the unit and variant the assignment gives them,
holdout included, whatever the time window: sales after the experiment's end still count.
Timestamps are taken as given (out of order is fine); without one, now.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sessionrec.errors import DataError, SessionRecError
from sessionrec.experiments.assignment import assign
from sessionrec.experiments.eventlog import Event
from sessionrec.serving.experiment import ExperimentRouter, moment


class EventLogDown(SessionRecError):
    """The event log failed or timed out: nothing was acknowledged, retry with the same key."""


@dataclass(frozen=True)
class Accepted:
    duplicate: bool
    orphan: bool


async def _linked(router: ExperimentRouter, recommendation_id: str,
                  when: datetime) -> tuple[Event | None, str | None]:
    """(the recommendation, None) or (None / the expired one, why it is an orphan)."""
    try:
        rec = await router.recommendation(recommendation_id)
    except Exception as err:
        raise EventLogDown(f"event log lookup failed: {type(err).__name__}: {err}") from err
    if rec is None:
        return None, "unknown"
    if when - rec.ts > timedelta(days=router.config.recommendation_ttl_days):
        return rec, "expired"
    return rec, None


async def _write(router: ExperimentRouter, event: Event, orphan_why: str | None) -> Accepted:
    try:
        flags = await router.append([event], "feedback")
    except DataError:
        raise  # an event we built wrongly is a bug, not an outage
    except Exception as err:
        raise EventLogDown(f"event log write failed: {type(err).__name__}: {err}") from err
    new = flags[0]
    router.xm.feedback.labels(event.kind, "new" if new else "duplicate").inc()
    if new and orphan_why:
        router.xm.orphans.labels(event.kind, orphan_why).inc()
    return Accepted(duplicate=not new, orphan=orphan_why is not None)


async def _on_recommendation(router: ExperimentRouter, kind: str, key: str,
                             recommendation_id: str, product_ids: list,
                             timestamp: float | None) -> Accepted:
    when = moment(timestamp, router.clock)
    rec, why = await _linked(router, recommendation_id, when)
    event = Event(kind=kind, idempotency_key=f"{kind}:{key}", experiment=router.config.name,
                  variant=None if why else rec.variant,
                  unit_id=rec.unit_id if rec else None, user_id=rec.user_id if rec else None,
                  session_id=rec.session_id if rec else None,
                  recommendation_id=recommendation_id,
                  product_ids=tuple(str(p) for p in product_ids), ts=when, orphan=why is not None)
    return await _write(router, event, why)


async def impression(router: ExperimentRouter, key: str, recommendation_id: str,
                     product_ids: list, timestamp: float | None = None) -> Accepted:
    """The products of a recommendation that entered the viewport."""
    return await _on_recommendation(router, "impression", key, recommendation_id, product_ids,
                                    timestamp)


async def click(router: ExperimentRouter, key: str, recommendation_id: str,
                product_id: str | int, timestamp: float | None = None) -> Accepted:
    """A click on one product of a recommendation."""
    return await _on_recommendation(router, "click", key, recommendation_id, [product_id],
                                    timestamp)


async def purchase(router: ExperimentRouter, key: str, order_id: str, product_ids: list,
                   prices: list[float] | None = None, user_id: str | None = None,
                   session_id: str | None = None, device_id: str | None = None,
                   timestamp: float | None = None) -> Accepted:
    """An order: its products (and prices), credited to the buyer's unit and variant."""
    unit = await router.resolve_unit(session_id, user_id, device_id)
    event = Event(kind="purchase", idempotency_key=f"purchase:{key}",
                  experiment=router.config.name, variant=assign(router.config, unit),
                  unit_id=unit, user_id=user_id, session_id=session_id,
                  product_ids=tuple(str(p) for p in product_ids),
                  prices=None if prices is None else tuple(float(p) for p in prices),
                  order_id=order_id, ts=moment(timestamp, router.clock))
    return await _write(router, event, None)
