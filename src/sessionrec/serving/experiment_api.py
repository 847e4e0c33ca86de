"""The REST endpoints of an online experiment (``sessionrec serve --experiment EXP.toml``).

    POST /v1/events                          the click, answered by the unit's variant, with
                                             experiment, variant and recommendation_id
    GET  /v1/sessions/{id}/recommendations   the same without a click (?user_id=&device_id=)
    POST /v1/feedback/impressions            {idempotency_key, recommendation_id, product_ids}
    POST /v1/feedback/clicks                 {idempotency_key, recommendation_id, product_id}
    POST /v1/feedback/purchases              {idempotency_key, order_id, product_ids, prices?,
                                              user_id? | session_id? | device_id?}
    GET  /v1/experiment                      the experiment's config, for operators

Feedback is answered ``202 {"accepted": true, "duplicate": bool, "orphan": bool}`` once it is
durable, ``503`` while the event log is down or slow (the outcome is unknown: retry with the
same key), ``422`` naming the field for a malformed body. See :mod:`sessionrec.serving.feedback`.

FastAPI reads the handlers' annotations at run time: no ``from __future__ import annotations``.
"""

from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, FastAPI, HTTPException, Path, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field

from sessionrec.serving import feedback
from sessionrec.serving.app import (
    TEXT_ID,
    AnyId,
    Recommendations,
    SessionRecommendations,
    Timestamp,
    _answer,
    _not_bool,
    _text,
    answered_and_archived,
    check_text,
)
from sessionrec.serving.archiving import now_or, text
from sessionrec.serving.experiment import ExperimentRouter, Routed

MAX_PRODUCTS = 1000

Key = Annotated[str, AfterValidator(check_text), Field(
    **TEXT_ID, description="the shop's unique key of this report: a retry with the same key "
                           "is never counted twice")]
RecommendationId = Annotated[str, AfterValidator(check_text), Field(
    **TEXT_ID, description="the recommendation_id of /v1/events")]
Price = Annotated[float, BeforeValidator(_not_bool), Field(gt=0, allow_inf_nan=False)]
# Not expressible in JSON Schema: stated in the spec as text and as an extension keyword
# (x-same-length-as), checked by the handler with the same words.
PRICES_RULE = "one price (> 0) per product: exactly as many prices as product_ids"
When = Annotated[Timestamp | None, Field(
    description="when it happened: RFC 3339 date-time with offset or unix seconds "
                "(default: now); out-of-order times are taken as given")]


class ExperimentRecommendations(Recommendations):
    experiment: str | None = Field(description="the running experiment (null outside its "
                                               "time window)")
    variant: str | None = Field(description="the visitor's variant, or 'holdout' (no "
                                            "recommendations)")
    recommendation_id: str | None = Field(description="quote it in feedback (null when "
                                                      "nothing was logged)")


class ExperimentSessionRecommendations(ExperimentRecommendations, SessionRecommendations):
    pass


class Impressions(BaseModel):
    """Products of one recommendation that entered the viewport."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"idempotency_key": "imp-1", "recommendation_id": "4f1c...", "product_ids": [101, 102]}]})

    idempotency_key: Key
    recommendation_id: RecommendationId
    product_ids: list[AnyId] = Field(min_length=1, max_length=MAX_PRODUCTS)
    timestamp: When = None


class Click(BaseModel):
    """A click on one recommended product."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"idempotency_key": "clk-1", "recommendation_id": "4f1c...", "product_id": 101}]})

    idempotency_key: Key
    recommendation_id: RecommendationId
    product_id: AnyId
    timestamp: When = None


class Purchase(BaseModel):
    """An order; at least one of user_id, session_id, device_id names the buyer."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"idempotency_key": "order-77", "order_id": 77, "user_id": "u-7",
         "product_ids": [101, 205], "prices": [19.9, 5.0]}]})

    idempotency_key: Key
    order_id: AnyId
    user_id: AnyId | None = None
    session_id: AnyId | None = None
    device_id: AnyId | None = None
    product_ids: list[AnyId] = Field(min_length=1, max_length=MAX_PRODUCTS)
    prices: list[Price] | None = Field(None, description=PRICES_RULE, json_schema_extra={
        "x-same-length-as": "product_ids"})
    timestamp: When = None


class FeedbackAccepted(BaseModel):
    accepted: bool
    duplicate: bool = Field(description="this key was reported before: nothing new counted")
    orphan: bool = Field(description="the recommendation_id is unknown or expired")


class VariantSummary(BaseModel):
    name: str
    model: str
    weight: float = Field(description="share of the non-holdout traffic")
    traffic_share: float = Field(description="share of all units")
    serving: str = Field(description="the loaded model (name@key)")
    placements: list[str] = Field(description="where this variant's model answers (control "
                                              "answers its units elsewhere)")


class ExperimentSummary(BaseModel):
    name: str
    unit: str
    active: bool = Field(description="whether now lies in [start, end)")
    start: str | None
    end: str | None
    holdout: float
    control: str
    attribution_window_days: float
    recommendation_ttl_days: float
    variants: list[VariantSummary]


def _check_optional(value: str | None) -> str | None:
    return None if value is None else check_text(value)


def _routed(r: Routed) -> dict:
    return {**_answer(r.answer), "experiment": r.experiment, "variant": r.variant,
            "recommendation_id": r.recommendation_id}


def _invalid(field: str, message: str, value) -> RequestValidationError:
    return RequestValidationError([{"type": "value_error", "loc": ("body", field),
                                    "msg": message, "input": value}])


LOG_DOWN = {400: {"description": "the body is not parseable JSON (e.g. not UTF-8)"},
            503: {"description": "the event log failed or was slow: the outcome is unknown; "
                                 "retry with the same idempotency_key (never counted twice)"}}


def _archive_row(kind: str, key: str, body, request: Request):
    """The archive row of a feedback report (see :mod:`sessionrec.serving.archiving`)."""
    from sessionrec.archive.record import ArchiveEvent

    products = getattr(body, "product_ids", None) or [body.product_id]
    return ArchiveEvent(
        kind=kind, idempotency_key=f"{kind}:{key}", product_ids=tuple(str(p) for p in products),
        session_id=text(getattr(body, "session_id", None)),
        user_id=text(getattr(body, "user_id", None)),
        device_id=text(getattr(body, "device_id", None)),
        prices=None if getattr(body, "prices", None) is None else tuple(body.prices),
        order_id=text(getattr(body, "order_id", None)),
        recommendation_id=getattr(body, "recommendation_id", None),
        user_agent=request.headers.get("user-agent"), ts=now_or(body.timestamp))


def add_experiment_routes(app: FastAPI, event_model: type, k_param: Callable,
                          router: Callable[[], ExperimentRouter],
                          archiver: Callable = lambda: None) -> None:
    """Register the experiment's endpoints; ``router()`` returns the running router,
    ``archiver()`` the archive's :class:`~sessionrec.serving.archiving.Archiver` or None."""

    @app.post("/v1/events", response_model=ExperimentRecommendations, tags=["recommendations"],
              responses={400: {"description": "the body is not parseable JSON"}})
    async def post_event(event: event_model, request: Request,  # type: ignore[valid-type]
                         response: Response) -> dict:
        """Apply a click (or basket add: placement basket) to its session and return what the
        visitor's variant shows next on that placement."""
        routed = await answered_and_archived(
            router().event(str(event.session_id), event.product_id, _text(event.user_id),
                           _text(event.device_id), event.timestamp, event.k,
                           event.exclude_seen, event.placement or "product_page"),
            archiver, event, request, response)
        return _routed(routed)

    @app.get("/v1/sessions/{session_id}/recommendations",
             response_model=ExperimentSessionRecommendations, tags=["recommendations"],
             responses={404: {"description": "no such live session"}})
    async def session_recommendations(
            session_id: Annotated[str, Path(**TEXT_ID), AfterValidator(check_text)],
            k: Annotated[int | None, Depends(k_param)] = None,
            exclude_seen: Annotated[bool | None, Query()] = None,
            user_id: Annotated[str | None, Query(**TEXT_ID),
                               AfterValidator(_check_optional)] = None,
            device_id: Annotated[str | None, Query(**TEXT_ID),
                                 AfterValidator(_check_optional)] = None) -> dict:
        """Recommendations for a live session from its variant's stored state (no click)."""
        routed = await router().recommendations(session_id, user_id, device_id, k,
                                                exclude_seen)
        if routed is None:
            raise HTTPException(404, f"session_id {session_id!r}: no live session (never seen, "
                                     "ended or expired)")
        return {**_routed(routed), "session_id": session_id, "events": routed.n_events}

    @app.get("/v1/users/{user_id}/recommendations", response_model=ExperimentRecommendations,
             tags=["recommendations"])
    async def home(user_id: Annotated[str, Path(**TEXT_ID), AfterValidator(check_text)],
                   k: Annotated[int | None, Depends(k_param)] = None,
                   device_id: Annotated[str | None, Query(**TEXT_ID),
                                        AfterValidator(_check_optional)] = None) -> dict:
        """'For you' on the home page from the unit's variant (no click yet)."""
        return _routed(await router().home(user_id, device_id, k))

    async def accepted(report, kind: str = "", body=None, request: Request | None = None,
                       ) -> dict:
        try:
            result = await report
        except feedback.EventLogDown as err:
            raise HTTPException(503, f"{err}; the outcome is unknown (the event may still be "
                                     "recorded), retry with the same idempotency_key: a "
                                     "recorded event is never counted twice",
                                headers={"Retry-After": "1"}) from None
        current = archiver()
        if current is not None and body is not None:
            await current.record([_archive_row(kind, body.idempotency_key, body, request)])
        return {"accepted": True, "duplicate": result.duplicate, "orphan": result.orphan}

    @app.post("/v1/feedback/impressions", status_code=202, response_model=FeedbackAccepted,
              tags=["feedback"], responses=LOG_DOWN)
    async def impressions(body: Impressions, request: Request) -> dict:
        """Report the products of a recommendation that entered the viewport."""
        return await accepted(feedback.impression(
            router(), body.idempotency_key, body.recommendation_id, body.product_ids,
            body.timestamp), "impression", body, request)

    @app.post("/v1/feedback/clicks", status_code=202, response_model=FeedbackAccepted,
              tags=["feedback"], responses=LOG_DOWN)
    async def clicks(body: Click, request: Request) -> dict:
        """Report a click on a recommended product."""
        return await accepted(feedback.click(
            router(), body.idempotency_key, body.recommendation_id, body.product_id,
            body.timestamp), "click", body, request)

    @app.post("/v1/feedback/purchases", status_code=202, response_model=FeedbackAccepted,
              tags=["feedback"], responses=LOG_DOWN)
    async def purchases(body: Purchase, request: Request) -> dict:
        """Report an order (credited to the buyer's variant by the analysis)."""
        if body.user_id is None and body.session_id is None and body.device_id is None:
            raise _invalid("user_id", "give at least one of user_id, session_id, device_id",
                           None)
        if body.prices is not None and len(body.prices) != len(body.product_ids):
            raise _invalid("prices", f"{PRICES_RULE}: {len(body.product_ids)} products, "
                                     f"{len(body.prices)} prices", None)
        return await accepted(feedback.purchase(
            router(), body.idempotency_key, str(body.order_id), body.product_ids, body.prices,
            _text(body.user_id), _text(body.session_id), _text(body.device_id),
            body.timestamp), "purchase", body, request)

    @app.get("/v1/experiment", response_model=ExperimentSummary, tags=["operations"])
    async def experiment() -> dict:
        """The running experiment: variants, weights, holdout, time window."""
        return router().summary()
