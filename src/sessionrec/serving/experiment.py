"""An online A/B/n experiment in the serving app: route each request to its unit's variant.

Every variant has a :class:`~sessionrec.serving.middleware.Middleware` of its own (its model,
and a namespace of the state store, so two variants never share a session's state). A request
is answered by the variant of its unit (:mod:`sessionrec.experiments.assignment`):

* outside the experiment's ``[start, end)`` (the request's ``timestamp``, else now) control
  answers and nothing is logged (no ``recommendation_id``);
* a ``holdout`` unit gets an empty list;
* otherwise the variant answers; when its model raises, control answers that request
  (``fallback``, ``reason: variant_model_error``), logged and counted, never a 5xx;
* an ``external`` variant asks its outside service (:mod:`sessionrec.serving.external`) with
  the session's products; on any failure control's ranking answers (``fallback``,
  ``reason: external_<why>``: timeout, unreachable, http_503, not_json, bad_response, empty,
  circuit_open). Its state store namespace keeps the session as control would.

Each answer with a ``recommendation_id`` is logged as a ``recommendation`` row (durably,
before the answer leaves), with the unit's ``assignment`` row the first time this worker sees
the unit (its idempotency key is derived from the unit, so replicas never log it twice). An
event log that fails is counted and logged, and recommendations keep being served.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from sessionrec.errors import SessionRecError
from sessionrec.experiments.assignment import HOLDOUT, assign, assignment_key, unit_of
from sessionrec.experiments.config import ExperimentConfig
from sessionrec.experiments.eventlog import Event
from sessionrec.experiments.eventlog_async import AsyncEventLog
from sessionrec.serving.bundle import Bundle
from sessionrec.serving.external import ExternalFailed, ExternalRecommender
from sessionrec.serving.metrics import Metrics
from sessionrec.serving.middleware import Answer, Middleware
from sessionrec.serving.placements import home_answer, remember_session
from sessionrec.serving.settings import ServeSettings
from sessionrec.serving.store import StateStore, StoreUnavailable

log = logging.getLogger(__name__)

VARIANT_ERROR = "variant_model_error"
MAX_SEEN_UNITS = 200_000  # units whose assignment this worker has logged (LRU)
MAX_RECENT = 100_000  # recommendations kept in memory for feedback lookups (LRU)


@dataclass(frozen=True)
class Routed:
    """An answer and the experiment fields of the response (None when no experiment ran)."""

    answer: Answer
    experiment: str | None = None
    variant: str | None = None
    recommendation_id: str | None = None
    n_events: int = 0  # session recommendations: clicks applied so far


class LRU(OrderedDict):
    def __init__(self, size: int) -> None:
        super().__init__()
        self.size = size

    def put(self, key, value) -> None:
        self[key] = value
        self.move_to_end(key)
        while len(self) > self.size:
            self.popitem(last=False)


def moment(timestamp: float | None, clock: Callable[[], float]) -> datetime:
    """The request's time: its ``timestamp`` (unix s), else now."""
    return datetime.fromtimestamp(clock() if timestamp is None else timestamp, UTC)


class ExperimentRouter:
    """Variants, assignment, identity links and the experiment's event log."""

    def __init__(self, config: ExperimentConfig, bundles: dict[str, Bundle], store: StateStore,
                 events: AsyncEventLog, settings: ServeSettings, metrics: Metrics,
                 loader: Callable[[str], Bundle] | None = None, clock=time.time,
                 own_events: bool = True) -> None:
        missing = [name for name in config.variant_names() if name not in bundles]
        if missing:
            raise SessionRecError(f"experiment {config.name}: no model loaded for variant(s) "
                                  f"{', '.join(missing)}")
        self.config = config
        self.store = store  # device links (shared); each variant has a namespace of it
        self.settings = settings
        self.events = events
        self.metrics = metrics
        self.xm = metrics.experiment()
        self.loader = loader
        self.clock = clock
        self.own_events = own_events
        self.variants = {
            name: Middleware(bundles[name], store.namespace(f"x:{config.name}:{name}"),
                             settings, metrics, clock=clock)
            for name in config.variant_names()}
        self.control = self.variants[config.control]
        self.external = {v.name: ExternalRecommender(v.external) for v in config.variants
                         if v.external is not None}
        self._seen_units = LRU(MAX_SEEN_UNITS)
        self._recent = LRU(MAX_RECENT)
        self._reload_lock = asyncio.Lock()

    # -- identity -----------------------------------------------------------------------------
    async def resolve_unit(self, session_id: str | None, user_id: str | None,
                           device_id: str | None) -> str:
        """The unit of a visitor; a logged-in user on a device becomes its LastLoggedInUserId."""
        linked = None
        if self.config.unit == "user" and device_id:
            try:
                if user_id:
                    await self.store.put_link(device_id, user_id)
                else:
                    linked = await self.store.get_link(device_id)
            except StoreUnavailable as err:  # the device id stands in for its user meanwhile
                self.metrics.store_errors.labels("link").inc()
                log.debug("device link of %r unavailable: %s", device_id, err)
        return unit_of(self.config.unit, session_id, user_id, device_id, linked)

    # -- the event log ------------------------------------------------------------------------
    async def append(self, events: list[Event], op: str) -> list[bool]:
        """Durably log ``events``; raises what the log raised, or TimeoutError (counted)."""
        try:
            return await asyncio.wait_for(self.events.append_each(events),
                                          self.settings.event_log_timeout_s)
        except Exception:
            self.xm.log_errors.labels(op).inc()
            raise

    async def recommendation(self, recommendation_id: str) -> Event | None:
        """The logged recommendation of this id (recent ones from memory), or None."""
        found = self._recent.get(recommendation_id)
        if found is not None:
            return found
        try:
            return await asyncio.wait_for(
                self.events.recommendation(self.config.name, recommendation_id),
                self.settings.event_log_timeout_s)
        except Exception:
            self.xm.log_errors.labels("lookup").inc()
            raise

    async def log_answer(self, events: list[Event], unit: str, variant: str) -> None:
        """Log an answer's rows (the unit's assignment, its recommendation); a failing log is
        counted and logged, never raised: the answer is served anyway."""
        try:
            flags = await self.append(events, "recommendation")
        except Exception as err:
            log.warning("experiment %s: could not log a recommendation (%s: %s); served anyway",
                        self.config.name, type(err).__name__, err)
            return
        for event, new in zip(events, flags, strict=True):
            if event.kind == "assignment":
                self._seen_units.put(unit, True)
                if new:
                    self.xm.assignments.labels(variant).inc()
            elif event.kind == "recommendation":
                self._recent.put(event.recommendation_id, event)

    def _assignment(self, unit: str, variant: str, when: datetime, user_id: str | None,
                    session_id: str | None) -> list[Event]:
        if unit in self._seen_units:
            return []
        return [Event(kind="assignment", idempotency_key=assignment_key(unit),
                      experiment=self.config.name, variant=variant, unit_id=unit,
                      user_id=user_id, session_id=session_id, ts=when)]

    async def assigned(self, session_id: str | None, user_id: str | None,
                       device_id: str | None, when: datetime
                       ) -> tuple[str, str, list[Event]] | None:
        """(unit, variant or ``holdout``, the unit's ``assignment`` row when this worker has not
        logged it yet) of a visitor at ``when``; None outside the experiment's time window."""
        if not self.config.active(when):
            return None
        unit = await self.resolve_unit(session_id, user_id, device_id)
        variant = assign(self.config, unit)
        return unit, variant, self._assignment(unit, variant, when, user_id, session_id)

    # -- recommendations ----------------------------------------------------------------------
    async def _session_products(self, mw: Middleware, session_id: str,
                                product_id: str | int | None) -> list:
        """The session's products, oldest first (known ones from its state, then the clicked
        product if the model does not know it)."""
        products: list = []
        try:
            got = await mw.store.get_session(session_id) if session_id else None
        except StoreUnavailable:
            got = None
        if got is not None and got.record is not None:
            products = list(mw.bundle.vocab.products(got.record.seen.tolist()))
        if product_id is not None and mw.bundle.vocab.index_of(product_id) < 0:
            products.append(product_id)
        return products

    async def _external(self, variant: str, mw: Middleware, answer: Answer, session_id: str,
                        user_id: str | None, product_id, k: int | None) -> tuple[Answer, bool]:
        """The outside service's answer, or control's (``answer``) with the reason."""
        products = await self._session_products(mw, session_id, product_id)
        try:
            ids = await self.external[variant].recommend(
                session_id, user_id, products, k or self.settings.default_k)
        except ExternalFailed as err:
            self.xm.variant_fallbacks.labels(variant).inc()
            log.info("experiment %s: external variant %r failed (%s); control answered",
                     self.config.name, variant, err)
            return Answer(answer.products, answer.model, True, f"external_{err.reason}",
                          answer.scores), True
        return Answer(ids, f"external:{variant}", False), False

    async def _route(self, session_id: str, user_id: str | None, device_id: str | None,
                     when: datetime, answer_of: Callable[[Middleware], object],
                     k: int | None = None, product_id: str | int | None = None,
                     placement: str = "product_page") -> Routed | None:
        """Answer with the unit's variant (``answer_of(middleware)`` -> Answer or a view) on
        ``placement``; a variant that does not cover the placement (its ``placements``) is
        answered there by control, logged under the unit's variant."""
        cfg = self.config
        got_unit = await self.assigned(session_id, user_id, device_id, when)
        if got_unit is None:
            return await self._plain(await answer_of(self.control))
        unit, variant, events = got_unit
        if variant == HOLDOUT:
            if events:
                await self.log_answer(events, unit, variant)
            self.xm.recommendations.labels(variant).inc()
            return Routed(Answer([], HOLDOUT, False), cfg.name, HOLDOUT, None)
        serving = variant if placement in cfg.variant(variant).placements else cfg.control
        got = await answer_of(self.variants[serving])
        if got is None:
            return None
        if session_id and user_id:
            await remember_session(self.variants[serving], user_id, session_id)
        answer, n_events = (got.answer, got.n_events) if hasattr(got, "n_events") else (got, 0)
        fell_back = False
        if serving in self.external:
            answer, fell_back = await self._external(serving, self.variants[serving], answer,
                                                     session_id, user_id, product_id, k)
        elif answer.reason == "model_error" and serving != cfg.control:
            got = await answer_of(self.control)
            control = got.answer if hasattr(got, "n_events") else got
            if control is not None:  # (None: control has no live session of that id)
                fell_back = True
                answer = Answer(control.products, control.model, True, VARIANT_ERROR,
                                control.scores)
                self.xm.variant_fallbacks.labels(variant).inc()
                log.warning("experiment %s: the model of variant %r failed; control answered",
                            cfg.name, variant)
        rid = uuid.uuid4().hex
        events.append(Event(kind="recommendation", idempotency_key=f"recommendation:{rid}",
                            experiment=cfg.name, variant=variant, unit_id=unit,
                            user_id=user_id, session_id=session_id, recommendation_id=rid,
                            product_ids=tuple(str(p) for p in answer.products), ts=when,
                            fallback=fell_back, placement=placement))
        await self.log_answer(events, unit, variant)
        self.xm.recommendations.labels(variant).inc()
        return Routed(answer, cfg.name, variant, rid, n_events)

    @staticmethod
    async def _plain(got) -> Routed | None:
        if got is None:
            return None
        if hasattr(got, "n_events"):
            return Routed(got.answer, n_events=got.n_events)
        return Routed(got)

    async def event(self, session_id: str, product_id: str | int, user_id: str | None = None,
                    device_id: str | None = None, timestamp: float | None = None,
                    k: int | None = None, exclude_seen: bool | None = None,
                    placement: str = "product_page") -> Routed:
        """A click (``product_page``) or basket add (``basket``): applied to the session in
        the unit's variant, which ranks what follows."""
        async def answer_of(mw: Middleware):
            return await mw.event(session_id, product_id, user_id, timestamp, k, exclude_seen)

        routed = await self._route(session_id, user_id, device_id,
                                   moment(timestamp, self.clock), answer_of, k, product_id,
                                   placement)
        assert routed is not None  # event() always answers
        return routed

    async def recommendations(self, session_id: str, user_id: str | None = None,
                              device_id: str | None = None, k: int | None = None,
                              exclude_seen: bool | None = None) -> Routed | None:
        """Ranking for a live session of the unit's variant; None when it has none."""
        async def answer_of(mw: Middleware):
            return await mw.recommendations(session_id, k, exclude_seen)

        return await self._route(session_id, user_id, device_id, moment(None, self.clock),
                                 answer_of, k)

    async def home(self, user_id: str, device_id: str | None = None,
                   k: int | None = None) -> Routed:
        """'For you' (the home placement) from the unit's variant, before any click."""
        async def answer_of(mw: Middleware):
            return await home_answer(mw, user_id, k)

        routed = await self._route(None, user_id, device_id, moment(None, self.clock),
                                   answer_of, k, placement="home")
        assert routed is not None
        return routed

    # -- sessions, reload, lifecycle ----------------------------------------------------------
    async def end_session(self, session_id: str) -> bool:
        """End the session in whichever variant holds it."""
        ended = [await mw.end_session(session_id) for mw in self.variants.values()]
        return any(ended)

    async def sweep(self) -> int:
        return sum([await mw.sweep() for mw in self.variants.values()])

    async def reload(self, model: str | None = None, vocab: str | None = None,
                     fallback: str | None = None) -> Bundle:
        """Re-read every variant's model from the experiment's paths and swap them together;
        returns control's bundle. Paths cannot be changed here (they are the experiment)."""
        if model or vocab or fallback:
            raise SessionRecError("an experiment's variants are reloaded from the paths in its "
                                  "config: replace the files there and reload without a body")
        if self.loader is None:
            raise SessionRecError("this experiment's models were given in memory: nothing to "
                                  "reload from")
        async with self._reload_lock:
            try:
                fresh = {name: await asyncio.to_thread(self.loader, name)
                         for name in self.variants}
            except Exception:
                self.metrics.reloads.labels("failed").inc()
                raise
            for name, bundle in fresh.items():
                self.variants[name].bundle = bundle
            self.metrics.reloads.labels("ok").inc()
            return self.control.bundle

    def summary(self) -> dict:
        """The config for operators (``GET /v1/experiment``); the salt stays secret."""
        cfg = self.config
        now = moment(None, self.clock)
        return {
            "name": cfg.name, "unit": cfg.unit, "active": cfg.active(now),
            "start": cfg.start.isoformat() if cfg.start else None,
            "end": cfg.end.isoformat() if cfg.end else None,
            "holdout": cfg.holdout, "control": cfg.control,
            "attribution_window_days": cfg.attribution_window_days,
            "recommendation_ttl_days": cfg.recommendation_ttl_days,
            # the model's name, never its path (paths are for admins: GET /admin/model)
            "variants": [{"name": v.name, "model": v.model if v.path is None
                          else self.variants[v.name].bundle.name, "weight": v.weight,
                          "traffic_share": v.weight * (1.0 - cfg.holdout),
                          "serving": (f"external {v.external.url}" if v.external
                                      else self.variants[v.name].bundle.tag),
                          "placements": list(v.placements)}
                         for v in cfg.variants],
        }

    async def close(self) -> None:
        for client in self.external.values():
            await client.close()
        for mw in self.variants.values():
            await mw.close()
        await self.store.close()
        if self.own_events:
            await self.events.aclose()


async def start_router(settings: ServeSettings, metrics: Metrics,
                       open_store: Callable[[], StateStore],
                       config: ExperimentConfig | None = None,
                       bundles: dict[str, Bundle] | None = None,
                       events=None) -> ExperimentRouter:
    """Load the experiment of ``settings`` (unless ``config``), its variants' models (unless
    ``bundles``) and open its event log (unless ``events``: an EventLog or AsyncEventLog,
    then left open at shutdown)."""
    from sessionrec.experiments.config import load_experiment
    from sessionrec.experiments.eventlog import EventLog, open_event_log
    from sessionrec.serving.variants import load_variant_bundle, load_variant_bundles

    if config is None:
        config = await asyncio.to_thread(load_experiment, settings.experiment)
    loaded = bundles if bundles is not None else await asyncio.to_thread(
        load_variant_bundles, config, settings)
    own = events is None
    if own:
        url = settings.event_log_url(config.source or settings.experiment)
        events = await asyncio.to_thread(open_event_log, url)
    if isinstance(events, EventLog):
        events = AsyncEventLog(events)

    def loader(name: str) -> Bundle:
        return load_variant_bundle(config, config.variant(name), settings)

    return ExperimentRouter(config, loaded, open_store(), events, settings, metrics,
                            loader=loader if bundles is None else None, own_events=own)
