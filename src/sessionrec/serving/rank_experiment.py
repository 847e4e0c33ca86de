"""``POST /v1/rank`` under an A/B experiment: each visitor's candidates are ranked by their
variant's click-probability model, every answer is logged, and clicks on ranked candidates
are attributed to the answer that showed them.

A variant's ``rank_model`` (experiment TOML) names a click-model run, or ``request-order``
(the candidates as the shop sent them: a "no re-ranking" control); a variant without one ranks
with the server's ``SESSIONREC_RANK_MODEL``. The visitor's unit and variant come from the same
assignment as ``/v1/events`` (:meth:`ExperimentRouter.assigned`): the request's ``user_id`` is
the unit's user (``session_id`` / ``device_id`` count as they do there), so a user gets the
same variant on both endpoints.

* outside the experiment's ``[start, end)`` control's rank model answers, nothing is logged;
* a ``holdout`` unit gets the candidates in request order (``model: "holdout"``), unlogged;
* otherwise the variant's model ranks; its answer carries ``experiment``, ``variant`` and a
  ``recommendation_id`` and is logged as a ``recommendation`` row with ``placement = "rank"``,
  ``model`` and the ProductIds in answer order (position = index + 1) before it leaves. The
  fallbacks of :mod:`sessionrec.serving.rank` hold per variant: a model that raises answers
  in request order (``reason: "model_error"``, the row's ``fallback`` true, counted in
  ``sessionrec_fallbacks_total`` and ``sessionrec_experiment_variant_fallbacks_total``).

``POST /v1/behaviours`` with ``behaviour: "click"`` is also logged as a ``click`` row of the
rank answer it names (``recommendation_id``), else of the user's latest rank answer in this
worker that held the product (within ``recommendation_ttl_days``); its idempotency key is
``click:rank:<recommendation_id>:<product>``, so a retried behaviour is counted once. The click
is logged before the history is appended: while the event log is down the behaviour is
answered 503 (retry it) and nothing is stored.

Behaviour histories are shared by the variants (a behaviour is a fact about the user), so
every click model of an experiment must use the same item vocabulary (train them on the same
prepared data); the store keeps the longest ``max_len`` and each model reads its own.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
from fastapi import APIRouter, HTTPException
from pydantic import Field

from sessionrec.errors import ConfigError, SessionRecError
from sessionrec.experiments.assignment import HOLDOUT
from sessionrec.experiments.config import REQUEST_ORDER, ExperimentConfig
from sessionrec.experiments.eventlog import RANK_PLACEMENT, Event
from sessionrec.serving.experiment import LRU, ExperimentRouter, moment
from sessionrec.serving.histories import HistoryStore
from sessionrec.serving.metrics import Metrics
from sessionrec.serving.rank import (
    BehaviourEvent,
    Ranked,
    RankedItem,
    Ranker,
    RankRequest,
    Recorded,
    check_candidates,
    load_ranker,
    ranked_items,
    record_behaviour,
)
from sessionrec.serving.settings import ServeSettings

log = logging.getLogger(__name__)

MAX_USERS_REMEMBERED = 100_000  # users whose recent rank answers this worker keeps (LRU)
ANSWERS_PER_USER = 8  # of each, the latest rank answers a click may be attributed to


class ExperimentRankRequest(RankRequest):
    session_id: str | None = Field(None, min_length=1, max_length=200,
                                   description="the visitor's session (the unit with unit = "
                                               "\"session\"), as on /v1/events")
    device_id: str | None = Field(None, min_length=1, max_length=200,
                                  description="the visitor's device, as on /v1/events")


class ExperimentRanked(Ranked):
    experiment: str | None = Field(description="the running experiment (null outside its "
                                               "time window)")
    variant: str | None = Field(description="the visitor's variant, or 'holdout'")
    recommendation_id: str | None = Field(description="the logged answer's id (null when "
                                                      "nothing was logged)")


class ExperimentBehaviour(BehaviourEvent):
    recommendation_id: str | None = Field(
        None, min_length=1, max_length=200,
        description="click: the rank answer that showed the product (default: the user's "
                    "latest rank answer in this worker that held it)")


class ExperimentRecorded(Recorded):
    recommendation_id: str | None = Field(description="click: the rank answer it was "
                                                      "attributed to (logged), else null")


@dataclass(frozen=True)
class RankArm:
    """How one variant ranks: a click model, or request order (``ranker`` None)."""

    ranker: Ranker | None
    model: str  # the name answers and log rows carry


def load_rank_arms(config: ExperimentConfig,
                   settings: ServeSettings) -> tuple[dict[str, RankArm], Ranker]:
    """Variant -> its arm, and a ranker whose vocabulary all of them share (its ProductId
    mapping stores the histories). Raises :class:`ConfigError` naming the experiment file,
    the variant and the path of a rank model that is missing, cannot be loaded or has another
    vocabulary than the others."""
    where = f"experiment {config.source or config.name}"
    loaded: dict[str, Ranker] = {}
    arms: dict[str, RankArm] = {}
    first: tuple[str, str] | None = None  # (variant, path) of the vocabulary's owner
    for v in config.variants:
        if v.rank_model == REQUEST_ORDER:
            arms[v.name] = RankArm(None, REQUEST_ORDER)
            continue
        path = str(v.rank_path) if v.rank_path is not None else settings.rank_model
        if not path:
            raise ConfigError(f"{where}: variant {v.name!r} has no rank_model and "
                              "SESSIONREC_RANK_MODEL is not set: give the variant rank_model = "
                              f"\"RUN\" (a click-model run) or {REQUEST_ORDER!r}, or set "
                              "SESSIONREC_RANK_MODEL")
        if path not in loaded:
            try:
                loaded[path] = load_ranker(path)
            except SessionRecError as err:
                raise ConfigError(f"{where}: variant {v.name!r}: rank_model {path} cannot be "
                                  f"served: {err}") from err
        ranker = loaded[path]
        if first is None:
            first = (v.name, path)
        elif not np.array_equal(ranker.model.item_ids_, loaded[first[1]].model.item_ids_):
            raise ConfigError(f"{where}: variant {v.name!r}: rank_model {path} was trained on "
                              f"other items than variant {first[0]!r}'s ({first[1]}); the "
                              "variants share the behaviour histories: train their click "
                              "models on the same prepared data")
        arms[v.name] = RankArm(ranker, ranker.model.name)
    if first is None:
        raise ConfigError(f"{where}: every variant has rank_model = {REQUEST_ORDER!r}; give "
                          "at least one a click-model run to rank with")
    return arms, loaded[first[1]]


@dataclass(frozen=True)
class _Shown:
    recommendation_id: str
    when: datetime
    products: frozenset[str]


class ExperimentRanking:
    """The rank arms of an experiment, its shared histories and the router that assigns
    and logs (:class:`~sessionrec.serving.experiment.ExperimentRouter`)."""

    def __init__(self, router: ExperimentRouter, arms: dict[str, RankArm], vocab: Ranker,
                 histories: HistoryStore, metrics: Metrics) -> None:
        missing = [n for n in router.config.variant_names() if n not in arms]
        if missing:
            raise SessionRecError(f"experiment {router.config.name}: no rank arm for "
                                  f"variant(s) {', '.join(missing)}")
        self.router, self.arms, self.vocab = router, arms, vocab
        self.histories, self.metrics = histories, metrics
        self.lock = asyncio.Lock()  # one model call at a time per process
        self._shown: LRU = LRU(MAX_USERS_REMEMBERED)

    async def _items(self, arm: RankArm, user_id: str,
                     candidates: list[str]) -> tuple[list[RankedItem], str | None]:
        if arm.ranker is None:
            return self.vocab.unranked(candidates), None
        return await ranked_items(arm.ranker, self.histories, user_id, candidates, self.lock,
                                  self.metrics)

    async def rank(self, req: ExperimentRankRequest) -> ExperimentRanked:
        """The visitor's variant's ranking of ``req.candidates``, logged (module docstring)."""
        router, cfg = self.router, self.router.config
        when = moment(None, router.clock)
        got = await router.assigned(req.session_id, req.user_id, req.device_id, when)
        if got is None:  # outside the time window: control ranks, nothing is logged
            arm = self.arms[cfg.control]
            items, reason = await self._items(arm, req.user_id, req.candidates)
            return ExperimentRanked(user_id=req.user_id, model=arm.model, items=items,
                                    fallback=reason is not None, reason=reason,
                                    experiment=None, variant=None, recommendation_id=None)
        unit, variant, events = got
        if variant == HOLDOUT:
            if events:
                await router.log_answer(events, unit, variant)
            router.xm.recommendations.labels(variant).inc()
            return ExperimentRanked(user_id=req.user_id, model=HOLDOUT,
                                    items=self.vocab.unranked(req.candidates),
                                    experiment=cfg.name, variant=HOLDOUT,
                                    recommendation_id=None)
        arm = self.arms[variant]
        items, reason = await self._items(arm, req.user_id, req.candidates)
        if reason == "model_error":
            router.xm.variant_fallbacks.labels(variant).inc()
        rid = uuid.uuid4().hex
        products = tuple(i.product_id for i in items)
        events.append(Event(kind="recommendation", idempotency_key=f"recommendation:{rid}",
                            experiment=cfg.name, variant=variant, unit_id=unit,
                            user_id=req.user_id, session_id=req.session_id,
                            recommendation_id=rid, product_ids=products, ts=when,
                            fallback=reason == "model_error", placement=RANK_PLACEMENT,
                            model=arm.model))
        await router.log_answer(events, unit, variant)
        router.xm.recommendations.labels(variant).inc()
        shown = self._shown.get(req.user_id)
        if shown is None:
            shown = deque(maxlen=ANSWERS_PER_USER)
        shown.append(_Shown(rid, when, frozenset(products)))
        self._shown.put(req.user_id, shown)
        return ExperimentRanked(user_id=req.user_id, model=arm.model, items=items,
                                fallback=reason is not None, reason=reason,
                                experiment=cfg.name, variant=variant, recommendation_id=rid)

    def latest_answer(self, user_id: str, product_id: str, when: datetime) -> str | None:
        """The id of the user's latest rank answer in this worker that held ``product_id``
        and is at most ``recommendation_ttl_days`` older than ``when``, or None."""
        ttl = timedelta(days=self.router.config.recommendation_ttl_days)
        for shown in reversed(self._shown.get(user_id) or ()):
            if product_id in shown.products and timedelta(0) <= when - shown.when <= ttl:
                return shown.recommendation_id
        return None

    async def behaviour(self, event: ExperimentBehaviour) -> ExperimentRecorded:
        """Store the behaviour in the user's history; a click on a ranked candidate is first
        logged against the rank answer that showed it (503 while the event log is down)."""
        from sessionrec.serving import feedback

        rid = None
        if event.behaviour == "click":
            when = moment(event.ts, self.router.clock)
            rid = event.recommendation_id or self.latest_answer(event.user_id,
                                                                event.product_id, when)
        if rid is not None:
            try:
                await feedback.click(self.router, f"rank:{rid}:{event.product_id}", rid,
                                     event.product_id, event.ts)
            except feedback.EventLogDown as err:
                raise HTTPException(503, f"{err}; the click was not recorded, send the "
                                         "behaviour again (it is never counted twice)",
                                    headers={"Retry-After": "1"}) from None
        known = await record_behaviour(self.vocab, self.histories, event, self.metrics)
        return ExperimentRecorded(user_id=event.user_id, product_id=event.product_id,
                                  behaviour=event.behaviour, known=known,
                                  recommendation_id=rid)

    async def close(self) -> None:
        await self.histories.close()


def open_experiment_ranking(router: ExperimentRouter, settings: ServeSettings,
                            metrics: Metrics) -> ExperimentRanking:
    """Load every variant's rank model (:func:`load_rank_arms`) and open the histories."""
    from sessionrec.serving.histories import open_histories

    arms, vocab = load_rank_arms(router.config, settings)
    max_len = max(a.ranker.model.params.max_len for a in arms.values() if a.ranker is not None)
    histories = open_histories(settings.store, max_len, settings.redis_prefix,
                               settings.max_users)
    return ExperimentRanking(router, arms, vocab, histories, metrics)


def experiment_rank_router(ranking: Callable[[], ExperimentRanking],
                           max_candidates: int = 500) -> APIRouter:
    """``/v1/rank`` and ``/v1/behaviours`` of an experiment; ``ranking()`` returns the running
    :class:`ExperimentRanking` (opened at start-up)."""
    router = APIRouter(tags=["ranking"])

    @router.post("/v1/behaviours", response_model=ExperimentRecorded)
    async def record(event: ExperimentBehaviour) -> ExperimentRecorded:
        return await ranking().behaviour(event)

    @router.post("/v1/rank", response_model=ExperimentRanked)
    async def rank(req: ExperimentRankRequest) -> ExperimentRanked:
        check_candidates(req.candidates, max_candidates)
        return await ranking().rank(req)

    return router


def experiment_ranks(settings: ServeSettings, config: ExperimentConfig | None) -> bool:
    """Whether ``/v1/rank`` is served under the experiment: ``SESSIONREC_RANK_MODEL`` is set
    or a variant names a ``rank_model``. A config that cannot be read says no here: start-up
    refuses it with its own error."""
    if settings.rank_model:
        return True
    if config is None:
        from sessionrec.experiments.config import load_experiment

        try:
            config = load_experiment(settings.experiment, check_models=False)
        except SessionRecError:
            return False
    return any(v.rank_model is not None for v in config.variants)
