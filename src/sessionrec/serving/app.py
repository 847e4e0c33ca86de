"""The REST API (FastAPI): live session recommendations for a shop's product pages.

    POST /v1/events                            a click -> {"Predictions": [ProductIds], ...}
    GET  /v1/sessions/{id}/recommendations     ranking for a live session, no new click
    POST /v1/sessions/{id}/end                 end a session (advances its user's state)
    GET  /v1/products/{id}/similar             nearest products by item embedding (cosine)
    GET  /healthz, /readyz, /metrics           liveness, readiness, Prometheus
    POST /admin/reload                         hot swap of model + vocabulary (bearer token)

With an experiment (``--experiment EXP.toml``) the recommendation endpoints answer with each
visitor's variant and the feedback endpoints log what the shop saw and bought: see
:mod:`sessionrec.serving.experiment_api`.

Bad input gets a 422 naming the field (FastAPI's ``detail[].loc``) and changes nothing in the
state store; unknown sessions and products in paths get a 404. Shop-page calls never get a
5xx: see the fallbacks of :mod:`sessionrec.serving.middleware`. Interactive docs at ``/docs``.

FastAPI reads the handlers' annotations at run time (they refer to classes built per app), so
this module does not use ``from __future__ import annotations``.
"""

import asyncio
import contextlib
import gc
import hmac
import json
import logging
import re
import time
import uuid
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Annotated, Literal

import torch
from fastapi import Depends, FastAPI, Header, HTTPException, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi_offline import FastAPIOffline
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainValidator,
    StrictBool,
    WithJsonSchema,
    create_model,
)

from sessionrec.errors import SessionRecError
from sessionrec.experiments.config import ExperimentConfig
from sessionrec.serving.bundle import Bundle, load_bundle
from sessionrec.serving.health import cause
from sessionrec.serving.limits import StrictJSONRoute, invalid_request
from sessionrec.serving.metrics import Metrics
from sessionrec.serving.middleware import Answer, Middleware
from sessionrec.serving.settings import ServeSettings
from sessionrec.serving.store import StateStore, StoreUnavailable, open_store

log = logging.getLogger(__name__)

DOCS_ASSETS = "/static-offline-docs"  # where /docs and /redoc load their JS and CSS from
MAX_ID_LENGTH = 128
MAX_INT_ID = 2**53 - 1  # JSON numbers beyond this lose digits in many clients: send text


def check_text(value: str) -> str:
    """Text that every store and event log keeps as given: no NUL character, no lone UTF-16
    surrogate (JSON can spell both; neither is text of any shop)."""
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("must be valid Unicode (a lone surrogate escape was sent)") from None
    return value


def _check_id(value):
    """A shop id: a JSON string of 1..128 characters or an integer up to 2^53 - 1 in size
    (``5.0`` counts as 5, as in JSON Schema; never a bool)."""
    if isinstance(value, str):
        if not 1 <= len(value) <= MAX_ID_LENGTH:
            raise ValueError(f"must have 1 to {MAX_ID_LENGTH} characters, got {len(value)}")
        return check_text(value)
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # JSON Schema counts 5.0 as an integer
    if isinstance(value, int) and not isinstance(value, bool):
        if abs(value) > MAX_INT_ID:
            raise ValueError(f"integer ids must lie within ±{MAX_INT_ID}; send larger ones "
                             "as strings")
        return value
    raise ValueError(f"must be a string or an integer, got {type(value).__name__}")


def _not_bool(value):
    """JSON ``true`` is not the integer 1 (pydantic's lax mode would take it as one)."""
    if isinstance(value, bool):
        raise ValueError("must be an integer, got a boolean")
    return value


def count(**bounds) -> type:
    """An integer field within ``bounds`` (``ge``, ``le``) that refuses booleans."""
    return Annotated[int, Field(**bounds), BeforeValidator(_not_bool)]  # type: ignore[return-value]


NO_NUL = "^[^\\u0000]*$"  # JSON Schema pattern of check_text (lone surrogates aside)

# Every text id of a path, a query or a body: the JSON Schema of the spec and the validation
# come from this one definition (the pattern refuses NUL; check_text also lone surrogates).
TEXT_ID = {"min_length": 1, "max_length": MAX_ID_LENGTH, "pattern": NO_NUL}

AnyId = Annotated[int | str, PlainValidator(_check_id), WithJsonSchema({"anyOf": [
    {"type": "integer", "minimum": -MAX_INT_ID, "maximum": MAX_INT_ID},
    {"type": "string", "minLength": 1, "maxLength": MAX_ID_LENGTH, "pattern": NO_NUL}]})]


RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})")
YEAR_3000 = 32503680000.0


def _check_timestamp(value) -> float:
    """Unix seconds from an RFC 3339 date-time with offset, or from a number of seconds."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        if not 0 <= value < YEAR_3000:
            raise ValueError("unix seconds must lie between 1970 and 3000")
        return float(value)
    if isinstance(value, str):
        if not RFC3339.fullmatch(value):
            raise ValueError("must be an RFC 3339 date-time with offset, e.g. "
                             "2024-03-01T08:00:00Z, or unix seconds")
        try:
            return datetime.fromisoformat(value.replace("z", "Z")).timestamp()
        except ValueError as err:
            raise ValueError(f"not a valid date-time: {err}") from None
    raise ValueError(f"must be a date-time string or a number, got {type(value).__name__}")


Timestamp = Annotated[float, PlainValidator(_check_timestamp), WithJsonSchema({"anyOf": [
    {"type": "string", "format": "date-time"},
    {"type": "number", "minimum": 0, "exclusiveMaximum": YEAR_3000}]})]


def _text(value: int | str | None) -> str | None:
    return None if value is None else str(value)


class EventBody(BaseModel):
    """A click (product page view) in a session."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"session_id": "s-1", "user_id": "u-7", "product_id": 1003106}]})

    session_id: AnyId = Field(description="the shop's session id (text or number)")
    user_id: AnyId | None = Field(None, description="logged-in user, if any")
    device_id: AnyId | None = Field(
        None, description="the visitor's device (experiments: links anonymous visits to the "
                          "device's last logged-in user; ignored otherwise)")
    product_id: AnyId = Field(description="the shop's ProductId that was clicked")
    timestamp: Timestamp | None = Field(
        None, description="when the click happened: RFC 3339 date-time with offset or unix "
                          "seconds (default: now)")
    k: count(ge=1) | None = Field(  # type: ignore[valid-type]
        None, description="recommendations wanted (default: server's)")
    exclude_seen: StrictBool | None = Field(
        None, description="never recommend the session's own products (default: server's)")
    placement: Literal["product_page", "basket"] | None = Field(
        None, description="where the answer is shown: product_page (a product view, the "
                          "default) or basket (a basket add: 'often bought together' with "
                          "the product)")


def _event_model(max_k: int) -> type[EventBody]:
    """``EventBody`` as ``Event``, with the server's upper bound on ``k`` (in the schema)."""
    k = (count(ge=1, le=max_k) | None, Field(None,
                           description="recommendations wanted (default: server's)"))
    return create_model("Event", __base__=EventBody, __doc__=EventBody.__doc__, k=k)


class MeasureRequests:
    """ASGI middleware: latency histogram and request counts per route and status."""

    def __init__(self, app, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        t0 = time.perf_counter()
        status = [500]

        async def send_status(message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            route = getattr(scope.get("route"), "path", "unmatched")
            self.metrics.latency.labels(route).observe(time.perf_counter() - t0)
            self.metrics.requests.labels(route, str(status[0])).inc()


class Recommendations(BaseModel):
    Predictions: list[int | str] = Field(description="ranked ProductIds, best first")
    model: str = Field(description="the model that ranked them (name@key), or fallback:<name>")
    fallback: bool = Field(description="true when the fallback recommender answered")
    reason: str | None = Field(None, description="why the fallback answered")
    state_reset: bool = Field(False, description="true when the session's earlier clicks "
                                                 "were lost (the state store restarted empty, "
                                                 "or a new model cannot use the old state): "
                                                 "it starts over from this click")
    cold_start: list[bool] | None = Field(
        None, exclude_if=lambda v: v is None,
        description="per prediction: true for a product without views, placed from its "
                    "metadata (p2v served with --embeddings); absent when none are "
                    "served or the fallback answered")


class SessionRecommendations(Recommendations):
    session_id: str
    events: int = Field(description="clicks applied to the session so far")


class SimilarProducts(Recommendations):
    product_id: int | str
    similarity: list[float] = Field(description="cosine similarity of each prediction")
    product_cold_start: bool = Field(False, description="true when the queried product has no "
                                                        "views (placed from its metadata)")


class Ended(BaseModel):
    session_id: str
    ended: bool = Field(description="false when there was no live session of that id")


class ReloadRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: str | None = Field(None, description="run or model directory (default: configured)")
    vocab: str | None = Field(None, description="items.parquet or prepared directory")
    fallback: str | None = Field(None, description="item-to-item run for fallbacks")


class ModelInfo(BaseModel):
    """The served model, without file-system paths (those are behind the admin token)."""

    model: str
    tag: str
    vocab_fingerprint: str
    n_items: int
    state_size: int
    user_state_size: int
    fallback: str
    blocked_items: int
    loaded_at: float
    degraded: str | None = Field(None, description="why the model stopped answering (its "
                                                   "requests go to the fallback), else null")


class AdminModelInfo(ModelInfo):
    model_dir: str
    vocab: str


class Ready(BaseModel):
    ready: bool = Field(description="false (HTTP 503) while a served model is degraded")
    model: ModelInfo
    store: str = Field(description="'ok', or why the state store is unavailable")


def _answer(a: Answer) -> dict:
    return {"Predictions": a.products, "model": a.model, "fallback": a.fallback,
            "reason": a.reason, "state_reset": a.state_reset, "cold_start": a.cold_start}


def _k(settings: ServeSettings):
    def k_param(k: int | None = Query(None, ge=1, le=settings.max_k,
                                      description="recommendations wanted")) -> int | None:
        return k

    return k_param


class ReloadChannel:
    """With a Redis store, a reload in one worker reloads every worker (polling one key)."""

    def __init__(self, middleware: Middleware) -> None:
        self.mw = middleware
        self.key = f"{middleware.settings.redis_prefix}reload"
        self.generation = ""

    @property
    def client(self):
        return getattr(self.mw.store, "client", None)

    async def start(self) -> None:
        if self.client is not None:
            with contextlib.suppress(Exception):  # no reload announced, or Redis down
                raw = await self.client.get(self.key)
                self.generation = json.loads(raw)["generation"] if raw else ""

    async def announce(self, request: ReloadRequest) -> None:
        if self.client is None:
            return
        self.generation = uuid.uuid4().hex
        payload = {"generation": self.generation, **request.model_dump()}
        try:
            await self.client.set(self.key, json.dumps(payload))
        except Exception as err:  # the reload happened here; the others will miss it
            log.warning("could not announce the reload to other workers: %s", err)

    async def poll(self) -> None:
        if self.client is None:
            return
        try:
            raw = await self.client.get(self.key)
        except Exception:
            return  # store errors are counted by requests; try again next time
        if not raw:
            return
        payload = json.loads(raw)
        if payload.get("generation") == self.generation:
            return
        self.generation = payload["generation"]
        try:
            await self.mw.reload(payload.get("model"), payload.get("vocab"),
                                 payload.get("fallback"))
        except Exception as err:
            log.error("reload announced by another worker failed here: %s", err)


SHUTDOWN_STEP_S = 5.0


async def _bounded(awaitable, what: str) -> None:
    """Await ``awaitable`` for at most SHUTDOWN_STEP_S seconds; log (never raise) past it."""
    try:
        await asyncio.wait_for(awaitable, SHUTDOWN_STEP_S)
    except TimeoutError:
        log.warning("shutdown: closing the %s took over %.0f s; continuing without it", what,
                    SHUTDOWN_STEP_S)


async def _every(seconds: float, fn) -> None:
    while True:
        await asyncio.sleep(seconds)
        try:
            await fn()
        except StoreUnavailable:
            pass
        except Exception:
            log.exception("background task %s failed", getattr(fn, "__name__", fn))


def create_app(settings: ServeSettings, bundle: Bundle | None = None,
               store: StateStore | None = None, *, experiment: ExperimentConfig | None = None,
               variants: dict[str, Bundle] | None = None, event_log=None,
               archive=None) -> FastAPI:
    """The app; ``bundle`` / ``store`` are loaded / opened from ``settings`` when not given.

    With an experiment (``settings.experiment``, or ``experiment`` given) the variants' bundles
    and the event log are loaded / opened likewise unless given (``variants``: name -> bundle;
    ``event_log``: an ``EventLog`` or ``AsyncEventLog``, left open at shutdown). With an
    archive (``settings.archive``, or ``archive`` given: an archive log, left open) every
    event is archived before its answer (:mod:`sessionrec.serving.archiving`).
    """
    state: dict = {"archive": None}
    metrics = Metrics()
    experimenting = bool(settings.experiment) or experiment is not None
    archiving = bool(settings.archive) or archive is not None
    ranking_experiment = False  # /v1/rank under the experiment (its variants' click models)
    if experimenting:
        from sessionrec.serving.rank_experiment import experiment_ranks

        ranking_experiment = experiment_ranks(settings, experiment)

    def open_state_store() -> StateStore:
        return store or open_store(settings.store, settings.session_ttl_s, settings.user_ttl_s,
                                   settings.max_sessions, settings.max_users,
                                   settings.store_timeout_s, settings.redis_prefix)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        torch.set_num_threads(settings.torch_threads)
        if settings.basket_model:
            from sessionrec.serving.baseline import load_baseline_bundle

            state["basket"] = await asyncio.to_thread(
                load_baseline_bundle, "cooc", settings.basket_model, None, settings.blocked())
        if archiving:
            from sessionrec.serving.archiving import open_archiver

            state["archive"] = await asyncio.to_thread(
                open_archiver, settings.archive, metrics, settings.event_log_timeout_s, archive)
        if experimenting:
            from sessionrec.serving.experiment import start_router

            router = await start_router(settings, metrics, open_state_store, experiment,
                                        variants, event_log)
            mw, reloader = router.control, router
            serving = f"experiment {router.config.name} ({', '.join(router.variants)})"
            if ranking_experiment:
                from sessionrec.serving.rank_experiment import open_experiment_ranking

                try:
                    state["rank"] = await asyncio.to_thread(open_experiment_ranking, router,
                                                            settings, metrics)
                except BaseException:
                    await router.close()
                    raise
        else:
            loaded = bundle or await asyncio.to_thread(
                load_bundle, settings.model, settings.vocab or None, settings.fallback or None,
                settings.blocked(), settings.embeddings or None)
            mw = reloader = Middleware(loaded, open_state_store(), settings, metrics)
            serving = loaded.tag
        opened = reloader.store
        channel = ReloadChannel(reloader)
        await channel.start()
        state.update(mw=mw, channel=channel, reloader=reloader)
        tasks = [asyncio.create_task(_every(settings.sweep_interval_s, reloader.sweep))]
        if channel.client is not None:
            tasks.append(asyncio.create_task(_every(settings.reload_poll_s, channel.poll)))
        # Everything loaded so far lives as long as the process: keep it out of the garbage
        # collector's full passes, which otherwise stall requests for ~100 ms now and then.
        gc.collect()
        gc.freeze()
        log.info("serving %s with store %s", serving, opened.describe())
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            # A shutdown must end: each step gets a bounded wait (a Redis client whose command
            # was cancelled mid-flight can leave its pool's disconnect waiting for ever).
            await _bounded(asyncio.gather(*tasks, return_exceptions=True), "background tasks")
            await _bounded(reloader.close(), "state store")
            if state.get("rank") is not None:
                await _bounded(state["rank"].close(), "rank histories")
            if state["archive"] is not None:
                await _bounded(state["archive"].close(), "event archive")

    # Swagger UI (/docs) and ReDoc (/redoc) from assets shipped in the fastapi-offline
    # package, not a CDN: the docs work on a server without internet access.
    app = FastAPIOffline(title="sessionrec", version="1", lifespan=lifespan,
                         description=__doc__.split("\n\n")[0], static_url=DOCS_ASSETS,
                         max_body_size=settings.max_body_bytes)
    app.router.route_class = StrictJSONRoute  # NaN, Infinity, 1e400: 422, not a float
    app.state.metrics = metrics
    app.state.parts = state
    app.add_exception_handler(RequestValidationError, invalid_request)
    k_param = _k(settings)

    def mw() -> Middleware:
        return state["mw"]

    app.add_middleware(MeasureRequests, metrics=metrics)
    Event = _event_model(settings.max_k)

    def archiver():
        return state["archive"]

    if experimenting:
        from sessionrec.serving.experiment_api import add_experiment_routes

        add_experiment_routes(app, Event, k_param, lambda: state["reloader"], archiver)
    else:
        _add_recommendation_routes(app, Event, k_param, mw, archiver,
                                   lambda: state.get("basket"))
    if archiving:
        from sessionrec.serving.archive_api import add_archive_routes

        add_archive_routes(app, archiver)
    _add_common_routes(app, settings, metrics, state, k_param, mw)
    if ranking_experiment:  # candidate re-ranking by each visitor's variant, logged
        from sessionrec.serving.rank_experiment import experiment_rank_router

        app.include_router(experiment_rank_router(lambda: state["rank"],
                                                  settings.max_candidates))
    elif settings.rank_model:  # candidate re-ranking with a click-probability model
        from sessionrec.serving.rank import add_rank_routes

        add_rank_routes(app, settings, metrics)
    if settings.ui:
        from sessionrec.console.routes import add_console

        add_console(app, settings, state)
    return app


async def answered_and_archived(answer, archiver, event, request: Request,
                                response: Response):
    """Await ``answer`` while the view of ``event`` is archived (with an archive); sets
    the ``Sessionrec-Archived`` header of ``response``."""
    current = archiver()
    if current is None:
        return await answer
    from sessionrec.serving.archiving import ARCHIVED_HEADER, view_event

    basket = getattr(event, "placement", None) == "basket"
    row = view_event(str(event.session_id), event.product_id, _text(event.user_id),
                     _text(event.device_id), event.timestamp,
                     request.headers.get("user-agent"),
                     placement="basket" if basket else "product_page",
                     kind="basket_add" if basket else "view")
    got, archived = await asyncio.gather(answer, current.record([row]))
    response.headers[ARCHIVED_HEADER] = "true" if archived else "false"
    return got


async def placed_event(current: Middleware, event, basket_bundle: Bundle | None) -> Answer:
    """A view (product_page) or basket add (basket) applied to its session, answered for its
    placement (:mod:`sessionrec.serving.placements`)."""
    from sessionrec.serving.placements import basket_answer, remember_session

    answer = await current.event(str(event.session_id), event.product_id,
                                 _text(event.user_id), event.timestamp, event.k,
                                 event.exclude_seen)
    await remember_session(current, _text(event.user_id), str(event.session_id))
    if event.placement == "basket":
        return basket_answer(basket_bundle, current, event.product_id, event.k)
    return answer


def _add_recommendation_routes(app: FastAPI, event_model: type, k_param, mw,
                               archiver, basket) -> None:
    @app.post("/v1/events", response_model=Recommendations, tags=["recommendations"],
              responses={400: {"description": "the body is not parseable JSON (e.g. not UTF-8)"}})
    async def post_event(event: event_model, request: Request,  # type: ignore[valid-type]
                         response: Response) -> dict:
        """Apply a click (or basket add) to its session and return the products to show."""
        answer = await answered_and_archived(placed_event(mw(), event, basket()),
                                             archiver, event, request, response)
        return _answer(answer)

    @app.get("/v1/users/{user_id}/recommendations", response_model=Recommendations,
             tags=["recommendations"])
    async def home(user_id: Annotated[str, Path(**TEXT_ID), AfterValidator(check_text)],
                   k: Annotated[int | None, Depends(k_param)] = None) -> dict:
        """'For you' on the home page: from the user's state before any click of the visit
        (reason: user_state, last_items or popular)."""
        from sessionrec.serving.placements import home_answer

        return _answer(await home_answer(mw(), user_id, k))

    @app.get("/v1/sessions/{session_id}/recommendations", response_model=SessionRecommendations,
             tags=["recommendations"], responses={404: {"description": "no such live session"}})
    async def session_recommendations(
            session_id: Annotated[str, Path(**TEXT_ID), AfterValidator(check_text)],
            k: Annotated[int | None, Depends(k_param)] = None,
            exclude_seen: Annotated[bool | None, Query()] = None) -> dict:
        """Recommendations for a live session from its stored state (no new click)."""
        view = await mw().recommendations(session_id, k, exclude_seen)
        if view is None:
            raise HTTPException(404, f"session_id {session_id!r}: no live session (never seen, "
                                     "ended or expired)")
        return {**_answer(view.answer), "session_id": session_id, "events": view.n_events}


def _add_common_routes(app: FastAPI, settings: ServeSettings, metrics: Metrics, state: dict,
                       k_param, mw) -> None:
    @app.post("/v1/sessions/{session_id}/end", response_model=Ended, tags=["sessions"])
    async def end_session(
            session_id: Annotated[str, Path(min_length=1, max_length=MAX_ID_LENGTH)]) -> dict:
        """End a session now; with a user-state model its user's state advances."""
        try:
            ended = await state["reloader"].end_session(session_id)
        except StoreUnavailable as err:
            raise HTTPException(503, f"state store unavailable: {err}") from None
        return {"session_id": session_id, "ended": ended}

    @app.get("/v1/products/{product_id}/similar", response_model=SimilarProducts,
             tags=["recommendations"], responses={404: {"description": "unknown product"}})
    async def similar(
            product_id: Annotated[str, Path(**TEXT_ID), AfterValidator(check_text)],
            k: Annotated[int | None, Depends(k_param)] = None) -> dict:
        """Products closest to this one in the model's item embedding space (cosine)."""
        current = mw()
        answer = await current.similar(product_id, k)
        if answer is None:
            raise HTTPException(404, f"product_id {product_id!r} is not in the model's "
                                     "vocabulary nor a cold-start product of its embedding "
                                     "store (serve --embeddings)")
        item = current.bundle.vocab.index_of(product_id)
        return {**_answer(answer), "product_id": current.bundle.vocab.products([item])[0],
                "similarity": answer.scores or [],
                "product_cold_start": current.bundle.is_cold(item)}

    @app.get("/healthz", tags=["operations"])
    async def healthz() -> dict:
        """Liveness: the process answers."""
        return {"status": "ok"}

    @app.get("/readyz", response_model=Ready, tags=["operations"],
             responses={503: {"model": Ready, "description": "a served model is degraded"}})
    async def readyz() -> Response | dict:
        """Readiness: the model is loaded and answers (finite scores); the store's health is
        reported (the app still answers from the fallback while the store is down)."""
        current = mw()
        try:
            await current.store.ping()
            store_state = "ok"
        except StoreUnavailable as err:
            store_state = f"unavailable: {err}"
        body = {"ready": _degraded(state["reloader"]) is None,
                "model": current.bundle.info(paths=False), "store": store_state}
        return body if body["ready"] else JSONResponse(body, status_code=503)

    @app.get("/metrics", tags=["operations"], response_class=Response)
    async def metrics_endpoint() -> Response:
        """Prometheus metrics."""
        body, content_type = metrics.render()
        return Response(body, media_type=content_type)

    admin = _admin_check(settings)

    @app.get("/admin/model", response_model=AdminModelInfo, tags=["operations"],
             responses=ADMIN_ERRORS)
    async def admin_model(_: Annotated[None, Depends(admin)]) -> dict:
        """The served model with its file-system paths (model directory, vocabulary)."""
        return mw().bundle.info()

    @app.post("/admin/reload", response_model=AdminModelInfo, tags=["operations"],
              responses={400: {"description": "the model could not be loaded or is unhealthy "
                                              "(the reason is given); the old one keeps "
                                              "serving"}, **ADMIN_ERRORS})
    async def reload(_: Annotated[None, Depends(admin)],
                     request: ReloadRequest | None = None) -> dict:
        """Load a model (default: the configured paths, re-read), check its health and swap
        it in atomically."""
        request = request or ReloadRequest()
        try:
            loaded = await state["reloader"].reload(request.model, request.vocab,
                                                    request.fallback)
        except Exception as err:  # whatever broke, the old model keeps serving
            reason = str(err) if isinstance(err, SessionRecError) else cause(err)
            raise HTTPException(400, f"reload failed, still serving the previous model: "
                                     f"{reason}") from None
        await state["channel"].announce(request)
        return loaded.info()


ADMIN_ERRORS = {401: {"description": "missing or wrong bearer token"},
                403: {"description": "admin endpoints disabled (no token set)"}}


def _admin_check(settings: ServeSettings):
    """A dependency that lets only requests with the admin bearer token through."""
    def check(authorization: Annotated[str | None, Header()] = None) -> None:
        if not settings.admin_token:
            raise HTTPException(403, "admin endpoints are disabled: set SESSIONREC_ADMIN_TOKEN "
                                     "or --admin-token-file")
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(
                token.encode(), settings.admin_token.encode()):
            raise HTTPException(401, "authorization: expected 'Bearer <admin token>'",
                                headers={"WWW-Authenticate": "Bearer"})

    return check


def _degraded(reloader) -> str | None:
    """Why a served model (the model, or any variant of an experiment) is degraded."""
    parts = getattr(reloader, "variants", None)
    for current in (parts.values() if parts else [reloader]):
        if current.bundle.degraded is not None:
            return current.bundle.degraded
    return None


def create_app_from_env() -> FastAPI:
    """App factory for ``uvicorn --factory`` and the workers of ``sessionrec serve``."""
    return create_app(ServeSettings.from_env())
