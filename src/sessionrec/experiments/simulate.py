"""The replay simulator: held-out visitors drive the live API like a shop would.

For each visitor (:mod:`sessionrec.experiments.visitors`) in time order of their steps:

* a **view** is ``POST /v1/events`` (session, user, product, ``timestamp`` = the real time,
  ``k`` = ``slots``); when the answer carries a ``recommendation_id`` and products, the top
  ``slots`` are reported with ``POST /v1/feedback/impressions``, and each position the click
  model (:mod:`sessionrec.experiments.clicks`) picks with ``POST /v1/feedback/clicks`` a
  moment later;
* an **order** is ``POST /v1/feedback/purchases`` at its real time, with the products and,
  where known, their prices.

Idempotency keys are derived from the seed, the visitor and the step, so a re-run with the same
seed against the same event log is deduplicated by the log. Visitors run concurrently
(``concurrency`` at a time, and at most that many requests in flight); one visitor's steps are
sequential. ``time_compression`` > 0 paces the replay on the wall clock (simulated seconds per
real second; the timestamps sent stay the simulated ones); 0 sends as fast as the API answers.
The outcome depends only on the seed, the visitors and the API's answers, not on concurrency.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from sessionrec.config import load_config
from sessionrec.errors import ConfigError
from sessionrec.experiments.clicks import ClickModel, visitor_rng
from sessionrec.experiments.visitors import Order, View, Visitor, stable_hash

log = logging.getLogger(__name__)

EVENTS = "/v1/events"
IMPRESSIONS = "/v1/feedback/impressions"
CLICKS = "/v1/feedback/clicks"
PURCHASES = "/v1/feedback/purchases"
RETRIES = 3


@dataclass(frozen=True)
class SynthSpec:
    """Generate the raw data first (synthetic Galaxus format with orders) when ``events`` > 0."""

    events: int = 0
    seed: int = 0
    events_per_shard: int = 1_000_000
    users: int | None = None
    items: int | None = None


@dataclass(frozen=True)
class BuildRun:
    """``[build.runs."DIR"]``: one ``sessionrec train`` run of a registered model."""

    model: str
    params: dict[str, Any] = field(default_factory=dict)
    seed: int = 0


@dataclass(frozen=True)
class BuildStudy:
    """``[build.study]``: ``sessionrec study --config CONFIG --out OUT`` (relative paths)."""

    config: str
    out: str
    seeds: tuple[int, ...] = ()
    set: tuple[str, ...] = ()  # study overrides, as for --set


@dataclass(frozen=True)
class BuildConfig:
    """How ``--build`` makes what is missing: raw data, prepared data, the variants' runs.

    ``runs`` maps a run directory (relative to the simulation TOML) to a table with ``model``
    (a registered model name), optional ``params`` and ``seed``. ``study`` runs the thesis's
    four-variant study (``sessionrec study``) on the prepared data: a table with ``config``
    (the study TOML) and ``out`` (relative paths), optional ``seeds`` and ``set`` (overrides);
    its runs are ``OUT/runs/<variant>/seed<S>``.
    """

    source: str = ""                      # source adapter of the raw data
    synth: SynthSpec = field(default_factory=SynthSpec)
    prepare: dict = field(default_factory=dict)  # PrepareConfig overrides
    runs: dict[str, BuildRun] = field(default_factory=dict)
    study: BuildStudy | None = None


@dataclass(frozen=True)
class SimulationConfig:
    """A simulation: the experiment served, the data replayed and the visitors' behaviour.

    Paths are relative to the simulation TOML's folder.
    """

    experiment: str = ""          # the experiment config served (variants -> runs)
    prepared: str = ""            # the prepared data the variants were trained on
    raw: str = ""                 # raw data to replay (default: the prepared data's input)
    dataset: str = ""             # a name for reports (default: the source's)
    days: float = 14.0            # simulated period after the training cut-off (0: all)
    seed: int = 0
    concurrency: int = 8
    slots: int = 5                # recommendations shown (and asked for) per view
    time_compression: float = 0.0  # simulated seconds per wall-clock second; 0: no pacing
    max_visitors: int = 0         # 0: every held-out visitor
    clicks: ClickModel = field(default_factory=ClickModel)
    serve: tuple[str, ...] = ()   # extra `sessionrec serve` options, e.g. ["--store", "..."]
    build: BuildConfig = field(default_factory=BuildConfig)

    def __post_init__(self) -> None:
        checks = {"days": self.days >= 0, "seed": self.seed >= 0,
                  "concurrency": self.concurrency >= 1, "slots": self.slots >= 1,
                  "time_compression": self.time_compression >= 0,
                  "max_visitors": self.max_visitors >= 0}
        for name, ok in checks.items():
            if not ok:
                raise ConfigError(f"simulation setting {name} = {getattr(self, name)!r} is out "
                                  "of range (days, seed, max_visitors >= 0; concurrency, slots "
                                  ">= 1; time_compression >= 0)")


def load_simulation(path: str | Path, overrides: tuple[str, ...] = ()) -> SimulationConfig:
    """Read a simulation TOML (see :class:`SimulationConfig`) with ``a.b=c`` overrides."""
    cfg = load_config(SimulationConfig, path, overrides, what="simulation config")
    if not cfg.experiment:
        raise ConfigError(f"simulation config {path}: experiment is missing (the experiment "
                          "TOML to serve, relative to this file)")
    if not cfg.prepared:
        raise ConfigError(f"simulation config {path}: prepared is missing (the prepared data "
                          "directory the variants were trained on: its end is the cut-off)")
    return cfg


# -- bookkeeping ----------------------------------------------------------------------------------
@dataclass
class Tally:
    """What the simulator sent and what the API answered."""

    sent: Counter = field(default_factory=Counter)       # per kind of request that succeeded
    answers: Counter = field(default_factory=Counter)    # recommendation outcomes
    feedback: Counter = field(default_factory=Counter)   # duplicate / orphan answers
    errors: Counter = field(default_factory=Counter)     # "PATH STATUS" or "PATH ErrorName"
    latency: dict[str, list[float]] = field(default_factory=dict)
    max_lag_s: float = 0.0

    def observe(self, path: str, seconds: float) -> None:
        self.latency.setdefault(path, []).append(seconds)

    def latency_ms(self) -> dict[str, dict[str, float]]:
        out = {}
        for path, values in sorted(self.latency.items()):
            a = np.asarray(values) * 1000
            out[path] = {"n": len(a), "p50": float(np.percentile(a, 50)),
                         "p99": float(np.percentile(a, 99)), "max": float(a.max())}
        return out


class Clock:
    """Maps simulated Unix seconds to wall-clock due times: ``t0_sim`` is due at the start,
    ``t0_sim + x`` ``x / compression`` seconds later (``compression`` 0: everything is due)."""

    def __init__(self, t0_sim: float, compression: float,
                 now: Callable[[], float] = time.monotonic, sleep=asyncio.sleep) -> None:
        self.t0_sim = t0_sim
        self.compression = compression
        self.now = now
        self.sleep = sleep
        self.t0_wall = now()

    async def wait(self, ts: float) -> float:
        """Sleep until ``ts`` is due; returns how late it is, in seconds (0 when on time)."""
        if self.compression <= 0:
            return 0.0
        delay = self.t0_wall + (ts - self.t0_sim) / self.compression - self.now()
        if delay > 0:
            await self.sleep(delay)
            return 0.0
        return -delay


def idempotency_prefix(seed: int, visitor_id: str) -> str:
    return f"sim{seed}-{stable_hash(visitor_id):016x}"


class Player:
    """Plays visitors against the API (one :class:`httpx.AsyncClient`)."""

    def __init__(self, client: httpx.AsyncClient, *, seed: int, slots: int, clicks: ClickModel,
                 clock: Clock, in_flight: int, tally: Tally, feedback: bool = True,
                 on_step: Callable[[], None] = lambda: None) -> None:
        self.client = client
        self.feedback = feedback
        self.seed = seed
        self.slots = slots
        self.clicks = clicks
        self.clock = clock
        self.in_flight = asyncio.Semaphore(in_flight)
        self.tally = tally
        self.on_step = on_step

    async def post(self, path: str, body: dict, *, idempotent: bool) -> dict | None:
        """POST ``body``; retries transport errors (and 5xx for idempotent feedback)."""
        for attempt in range(RETRIES + 1):
            async with self.in_flight:
                t0 = time.perf_counter()
                try:
                    r = await self.client.post(path, json=body)
                except httpx.TransportError as err:
                    self.tally.errors[f"{path} {type(err).__name__}"] += 1
                    retry = idempotent or isinstance(err, httpx.ConnectError)
                else:
                    self.tally.observe(path, time.perf_counter() - t0)
                    if r.status_code < 300:
                        return r.json()
                    self.tally.errors[f"{path} {r.status_code}"] += 1
                    if r.status_code < 500:
                        log.debug("%s answered %s: %s", path, r.status_code, r.text[:300])
                        return None
                    retry = idempotent
            if not retry or attempt == RETRIES:
                return None
            await asyncio.sleep(0.05 * 2 ** attempt)
        return None

    async def play(self, visitor: Visitor) -> None:
        rng = visitor_rng(self.seed, visitor.visitor_id)
        prefix = idempotency_prefix(self.seed, visitor.visitor_id)
        steps = visitor.steps()
        for n, (index, step) in enumerate(steps):
            self.tally.max_lag_s = max(self.tally.max_lag_s, await self.clock.wait(step.ts))
            next_ts = steps[n + 1][1].ts if n + 1 < len(steps) else None
            if isinstance(step, View):
                await self.view(visitor, index, step, next_ts, rng, prefix)
            elif self.feedback:
                await self.order(visitor, step, prefix)
            self.on_step()

    async def view(self, visitor: Visitor, index: int, view: View, next_ts: float | None,
                   rng: np.random.Generator, prefix: str) -> None:
        uniforms = rng.random(self.slots)  # drawn for every view: see the clicks module
        body = {"session_id": view.session_id, "product_id": view.product_id,
                "timestamp": view.ts, "k": self.slots}
        if visitor.user_id is not None:
            body["user_id"] = visitor.user_id
        answer = await self.post(EVENTS, body, idempotent=False)
        if answer is None:
            return
        self.tally.sent["events"] += 1
        if answer.get("fallback"):
            self.tally.answers["fallback"] += 1
        rec_id = answer.get("recommendation_id")
        shown = list(answer.get("Predictions") or [])[:self.slots]
        if not rec_id or not shown:
            self.tally.answers[f"without_recommendation:{answer.get('variant')}"] += 1
            return
        self.tally.answers[f"variant:{answer.get('variant')}"] += 1
        if not self.feedback:
            return
        result = await self.post(IMPRESSIONS, {
            "idempotency_key": f"{prefix}-{index}-i", "recommendation_id": rec_id,
            "product_ids": shown, "timestamp": view.ts}, idempotent=True)
        self._count_feedback("impressions", result)
        relevant = [visitor.views_later(index, p, self.clicks.horizon_s) for p in shown]
        gap = self.clicks.delay_s if next_ts is None else min(self.clicks.delay_s,
                                                                (next_ts - view.ts) / 2)
        for pos in self.clicks.clicked(uniforms, relevant):
            result = await self.post(CLICKS, {
                "idempotency_key": f"{prefix}-{index}-c{pos}", "recommendation_id": rec_id,
                "product_id": shown[pos], "timestamp": view.ts + gap}, idempotent=True)
            self._count_feedback("clicks", result)
            if result is not None and relevant[pos]:
                self.tally.sent["clicks_on_later_views"] += 1

    async def order(self, visitor: Visitor, order: Order, prefix: str) -> None:
        body = {"idempotency_key": f"{prefix}-o-{order.order_id}", "order_id": order.order_id,
                "session_id": order.session_id, "product_ids": list(order.product_ids),
                "timestamp": order.ts}
        if visitor.user_id is not None:
            body["user_id"] = visitor.user_id
        if order.prices is not None:
            body["prices"] = list(order.prices)
        self._count_feedback("purchases", await self.post(PURCHASES, body, idempotent=True))

    def _count_feedback(self, kind: str, result: dict | None) -> None:
        if result is None:
            return
        self.tally.sent[kind] += 1
        for flag in ("duplicate", "orphan"):
            if result.get(flag):
                self.tally.feedback[f"{kind}:{flag}"] += 1


async def replay(visitors: list[Visitor], url: str, *, seed: int = 0, slots: int = 5,
                 clicks: ClickModel | None = None, concurrency: int = 8,
                 time_compression: float = 0.0, feedback: bool = True,
                 progress: bool = True) -> dict:
    """Play ``visitors`` against the API at ``url``; returns the run summary (see
    :func:`summary_of`). ``feedback=False`` sends the views only (no impressions, clicks or
    orders): the load of a shop that does not report back, for comparisons."""
    clicks = clicks or ClickModel()
    tally = Tally()
    n_steps = sum(len(v.views) + len(v.orders) for v in visitors)
    t0_sim = min((v.first_ts for v in visitors), default=0.0)
    bar = _progress_bar(n_steps, progress)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    timeout = httpx.Timeout(60.0, pool=None)
    started = time.perf_counter()
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=timeout) as client:
        clock = Clock(t0_sim, time_compression)
        player = Player(client, seed=seed, slots=slots, clicks=clicks, clock=clock,
                        in_flight=concurrency, tally=tally, feedback=feedback,
                        on_step=lambda: bar.update(1))
        if time_compression > 0:
            await _paced(visitors, player, clock)
        else:
            await _as_fast_as_possible(visitors, player, concurrency)
    wall = time.perf_counter() - started
    bar.close()
    return summary_of(tally, wall, n_visitors=len(visitors), n_steps=n_steps, seed=seed,
                      slots=slots, concurrency=concurrency, time_compression=time_compression,
                      clicks=clicks)


async def _as_fast_as_possible(visitors: list[Visitor], player: Player, workers: int) -> None:
    queue = iter(visitors)

    async def worker() -> None:
        for visitor in queue:  # the iterator is shared: each visitor goes to one worker
            await player.play(visitor)

    await asyncio.gather(*(worker() for _ in range(workers)))


async def _paced(visitors: list[Visitor], player: Player, clock: Clock) -> None:
    """Each visitor starts when its first step is due (requests stay bounded by the player)."""
    tasks: set[asyncio.Task] = set()
    for visitor in visitors:
        await clock.wait(visitor.first_ts)
        task = asyncio.create_task(player.play(visitor))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    while tasks:
        await asyncio.gather(*list(tasks))


def summary_of(tally: Tally, wall: float, **params) -> dict:
    requests = sum(v["n"] for v in tally.latency_ms().values())
    errors = sum(tally.errors.values())
    clicks: ClickModel = params.pop("clicks")
    return {
        **params,
        "clicks": {"base": clicks.base, "eta": clicks.eta, "noise": clicks.noise,
                   "horizon_days": clicks.horizon_days, "delay_s": clicks.delay_s},
        "sent": dict(sorted(tally.sent.items())),
        "answers": dict(sorted(tally.answers.items())),
        "feedback": dict(sorted(tally.feedback.items())),
        "requests": requests,
        "errors": errors,
        "error_kinds": dict(sorted(tally.errors.items())),
        "wall_s": round(wall, 3),
        "requests_per_s": round(requests / wall, 1) if wall > 0 else None,
        "latency_ms": tally.latency_ms(),
        "max_lag_s": round(tally.max_lag_s, 3),
    }


def _progress_bar(total: int, enabled: bool):
    """A bar on a terminal, periodic log lines otherwise (sessionrec.progress); or nothing."""
    from sessionrec import progress

    if not enabled:
        return _NoProgress()
    return progress.Progress(total, "replay", "steps")


class _NoProgress:
    def update(self, n: int = 1) -> None:
        pass

    def close(self) -> None:
        pass


def iso(ts: float | datetime) -> str:
    if isinstance(ts, datetime):
        return ts.astimezone(UTC).isoformat()
    return datetime.fromtimestamp(ts, UTC).isoformat()
