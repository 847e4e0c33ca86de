"""``POST /v1/rank``: order a user's candidates by click probability (click-probability
models such as ALPINE), and ``POST /v1/behaviours``: the events that build the histories.

A behaviour event names a user, a ProductId and its type: ``click``, ``impression`` (shown and
*not* clicked: send it when the item left the screen unclicked), ``like`` or ``follow`` (the
item whose author the user followed). A rank request carries the user (or session) id and 1 to
``max_candidates`` distinct candidate ProductIds; the answer lists every candidate, known ones
ordered by the model's click probability (``score``, the sigmoid of the fused logit), then the
ones outside the model's vocabulary in request order with ``known: false`` and no score. An
empty, too long or repeating candidate list is refused (422) with a message naming the
problem; an unknown behaviour type likewise.

Fallbacks, as on ``/v1/events``: the answer never fails because a dependency does. When the
history store cannot be read, the model ranks the candidates from an empty history (the user's
own vector and the candidates' features still count) and the answer says ``fallback: true``,
``reason: "store_unavailable"``; when the model itself fails, the known candidates keep their
request order without scores (``reason: "model_error"``). Both are counted in
``sessionrec_fallbacks_total{reason=...}`` and store failures in
``sessionrec_store_errors_total{op="history_get"}`` (``history_append`` for behaviours, which
answer 503: a behaviour that cannot be stored must be sent again, not silently dropped).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Literal

import numpy as np
from fastapi import APIRouter, HTTPException
from pydantic import BaseModel, Field

from sessionrec.batching.behaviours import UserRows
from sessionrec.models.neural.click import ClickRecommender
from sessionrec.serving.histories import HistoryStore, empty_history
from sessionrec.serving.metrics import Metrics

log = logging.getLogger(__name__)

BEHAVIOUR_OF_EVENT = {"click": "click", "impression": "skip", "like": "like",
                      "follow": "follow"}


class BehaviourEvent(BaseModel):
    user_id: str = Field(min_length=1, max_length=200)
    product_id: str = Field(min_length=1, max_length=200)
    behaviour: Literal["click", "impression", "like", "follow"]
    ts: float | None = None  # Unix seconds; default: now


class Recorded(BaseModel):
    user_id: str
    product_id: str
    behaviour: str
    known: bool  # False: the product is outside the model's vocabulary (not recorded)


class RankRequest(BaseModel):
    user_id: str = Field(min_length=1, max_length=200)  # a user or a session id
    candidates: list[str]


class RankedItem(BaseModel):
    product_id: str
    score: float | None
    known: bool


class Ranked(BaseModel):
    user_id: str
    model: str
    items: list[RankedItem]
    fallback: bool = Field(False, description="true when the answer did not come from the "
                                              "model with the user's stored history")
    reason: str | None = Field(None, description="why: store_unavailable (ranked from an "
                                                 "empty history) or model_error (request order)")


def check_candidates(candidates: list[str], max_candidates: int) -> None:
    """Raise HTTP 422 for an empty, too long or repeating candidate list."""
    if not candidates:
        raise HTTPException(422, "candidates is empty: send 1 to "
                                 f"{max_candidates} ProductIds to rank")
    if len(candidates) > max_candidates:
        raise HTTPException(422, f"candidates has {len(candidates)} ProductIds; at most "
                                 f"{max_candidates} can be ranked in one request")
    seen: set[str] = set()
    for pos, c in enumerate(candidates):
        if c in seen:
            raise HTTPException(422, f"candidates repeats ProductId {c!r} (position {pos}): "
                                     "send each candidate once")
        seen.add(c)


class Ranker:
    """A fitted click-probability model with its ProductId and user-id mappings."""

    def __init__(self, model: ClickRecommender) -> None:
        self.model = model
        self.item_index = {str(v): i for i, v in enumerate(model.item_ids_)}
        self.user_index = {str(v): i for i, v in enumerate(model.user_ids_)}

    def scores(self, user_id: str, history, items: np.ndarray, now_us: int) -> np.ndarray:
        """Click probabilities of ``items`` (int [N]) for the user with ``history``."""
        n = len(items)
        # A history store shared by several models keeps the longest max_len: cut to ours.
        keep = self.model.params.max_len
        h = {b: (ids[-keep:], ts[-keep:]) for b, (ids, ts) in history.items()}
        row = UserRows(self.user_index.get(user_id, -1), h["click"], h["skip"],
                       h["like"], h["follow"], items,
                       np.full(n, now_us, dtype=np.int64), np.zeros(n, dtype=np.int64),
                       np.full(n, -1, dtype=np.int64))
        return 1.0 / (1.0 + np.exp(-self.model.score_rows([row]).astype(np.float64)))

    def rank(self, user_id: str, candidates: list[str], history, now_us: int) -> list[RankedItem]:
        known = [(c, self.item_index[c]) for c in candidates if c in self.item_index]
        unknown = [c for c in candidates if c not in self.item_index]
        out: list[RankedItem] = []
        if known:
            p = self.scores(user_id, history, np.array([i for _, i in known]), now_us)
            order, score = np.argsort(-p, kind="stable").tolist(), p.tolist()
            out = [RankedItem(product_id=known[j][0], score=score[j], known=True)
                   for j in order]
        return out + [RankedItem(product_id=c, score=None, known=False) for c in unknown]

    def unranked(self, candidates: list[str]) -> list[RankedItem]:
        """The candidates in request order without scores, known ones first."""
        return ([RankedItem(product_id=c, score=None, known=True)
                 for c in candidates if c in self.item_index]
                + [RankedItem(product_id=c, score=None, known=False)
                   for c in candidates if c not in self.item_index])


async def record_behaviour(ranker: Ranker, histories: HistoryStore, event: BehaviourEvent,
                           metrics: Metrics) -> bool:
    """Append ``event`` to its user's history; False (nothing stored) for a product outside
    the model's vocabulary. A store failure is counted and answered 503 (Retry-After)."""
    idx = ranker.item_index.get(event.product_id)
    if idx is None:
        return False
    ts = int((event.ts if event.ts is not None else time.time()) * 1_000_000)
    try:
        await histories.append(event.user_id, BEHAVIOUR_OF_EVENT[event.behaviour], idx, ts)
    except Exception as err:  # the store is down: say so, do not lose it silently
        log.warning("history store failed: %s", err)
        metrics.store_errors.labels("history_append").inc()
        raise HTTPException(503, f"behaviour store unavailable: {err}",
                            headers={"Retry-After": "1"}) from err
    return True


async def ranked_items(ranker: Ranker, histories: HistoryStore, user_id: str,
                       candidates: list[str], lock: asyncio.Lock,
                       metrics: Metrics) -> tuple[list[RankedItem], str | None]:
    """The candidates ranked by ``ranker`` from the user's stored history, and the fallback
    reason (None, ``store_unavailable`` or ``model_error``: request order), counted."""
    reason = None
    try:
        history = await histories.get(user_id)
    except Exception as err:  # rank without the history rather than fail the page
        log.warning("history store failed, ranking from an empty history: %s", err)
        metrics.store_errors.labels("history_get").inc()
        history, reason = empty_history(), "store_unavailable"
    now_us = int(time.time() * 1_000_000) + 1
    try:
        async with lock:
            items = ranker.rank(user_id, candidates, history, now_us)
    except Exception:  # a model failure must not break the page
        log.exception("rank model failed for user %r; answering in request order", user_id)
        items, reason = ranker.unranked(candidates), "model_error"
    if reason is not None:
        metrics.fallbacks.labels(reason).inc()
    return items, reason


def rank_router(ranker: Ranker, histories: HistoryStore, max_candidates: int = 500,
                name: str = "", metrics: Metrics | None = None) -> APIRouter:
    """The ``/v1/rank`` and ``/v1/behaviours`` routes over ``ranker`` and ``histories``;
    fallbacks and store errors are counted in ``metrics`` (the app's)."""
    router = APIRouter(tags=["ranking"])
    metrics = metrics if metrics is not None else Metrics()
    model_name = name or ranker.model.name
    lock = asyncio.Lock()  # one model call at a time per process (torch threads are shared)

    @router.post("/v1/behaviours", response_model=Recorded)
    async def record(event: BehaviourEvent) -> Recorded:
        known = await record_behaviour(ranker, histories, event, metrics)
        return Recorded(user_id=event.user_id, product_id=event.product_id,
                        behaviour=event.behaviour, known=known)

    @router.post("/v1/rank", response_model=Ranked)
    async def rank(req: RankRequest) -> Ranked:
        check_candidates(req.candidates, max_candidates)
        items, reason = await ranked_items(ranker, histories, req.user_id, req.candidates,
                                           lock, metrics)
        return Ranked(user_id=req.user_id, model=model_name, items=items,
                      fallback=reason is not None, reason=reason)

    return router


def load_ranker(path: str) -> Ranker:
    """A ranker from a click-model run directory (``RUN/model``) or model directory."""
    from pathlib import Path

    p = Path(path)
    return Ranker(ClickRecommender.load(p / "model" if (p / "model").is_dir() else p))


def add_rank_routes(app, settings, metrics: Metrics | None = None) -> None:
    """Serve ``settings.rank_model`` on ``app`` with histories in ``settings.store``; fallbacks
    and store errors go to ``metrics`` (the app's ``/metrics``)."""
    from sessionrec.serving.histories import open_histories

    ranker = load_ranker(settings.rank_model)
    histories = open_histories(settings.store, ranker.model.params.max_len,
                               settings.redis_prefix, settings.max_users)
    app.include_router(rank_router(ranker, histories, settings.max_candidates,
                                   metrics=metrics))


def create_rank_app(model: str, store: str = "memory", max_candidates: int = 500,
                    prefix: str = "sessionrec:"):
    """A FastAPI app serving only ``/v1/rank`` and ``/v1/behaviours`` (tests, benchmarks)."""
    from fastapi import FastAPI

    from sessionrec.serving.histories import open_histories

    ranker = load_ranker(model)
    app = FastAPI(title="sessionrec rank", version="1")
    histories = open_histories(store, ranker.model.params.max_len, prefix, 1_000_000)
    metrics = Metrics()
    app.include_router(rank_router(ranker, histories, max_candidates, metrics=metrics))
    app.state.histories = histories
    app.state.metrics = metrics
    return app


def create_rank_app_from_env():
    """``uvicorn --factory sessionrec.serving.rank:create_rank_app_from_env``: the model from
    ``SESSIONREC_RANK_MODEL``, the store from ``SESSIONREC_STORE`` (default memory)."""
    import os

    from sessionrec.errors import ConfigError

    model = os.environ.get("SESSIONREC_RANK_MODEL", "")
    if not model:
        raise ConfigError("SESSIONREC_RANK_MODEL is not set: set it to a click-model run "
                          "directory (sessionrec train on kuairand data, e.g. "
                          "runs/kuairand/alpine/seed0)")
    return create_rank_app(model, os.environ.get("SESSIONREC_STORE", "memory"))
