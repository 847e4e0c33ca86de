"""Every loaded model as a "lane" of the playground: each answers the same click side by side.

The lanes are the served model (``sessionrec serve --model``) or every variant of a running
experiment, plus the console's comparison models (``ui_compare = "NAME=RUN_DIR,..."``; a
baseline name ``often-bought-together`` / ``popular`` is served from the served model's cooc
run). A click goes through each lane's :class:`~sessionrec.serving.middleware.Middleware`
(the code behind ``POST /v1/events``) with the playground's own session id. Experiment
variants and comparison models keep their sessions in namespaces of the state store, and
nothing the console does is written to an experiment's event log (a console session is not
a visitor). A comparison model that fails to load becomes a lane with its error message.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from pathlib import Path

from sessionrec.errors import ConfigError
from sessionrec.experiments.config import BASELINES
from sessionrec.serving.middleware import Middleware
from sessionrec.serving.settings import ServeSettings

log = logging.getLogger(__name__)


@dataclass
class Lane:
    """One model shown in the playground (``mw`` None when it failed to load)."""

    name: str
    kind: str  # "served" | "variant" | "compare"
    mw: Middleware | None
    source: str = ""
    error: str | None = None

    def info(self) -> dict:
        out = {"name": self.name, "kind": self.kind, "source": self.source, "error": self.error}
        if self.mw is not None:
            b = self.mw.bundle
            out.update(model=b.name, tag=b.tag, n_items=len(b.vocab),
                       user_state=b.step.has_user_state)
        return out


def parse_compare(spec: str) -> list[tuple[str, str]]:
    """``"a=runs/x, b=often-bought-together"`` -> [(name, model)]; a bare path is named by
    its folder. Raises :class:`ConfigError` for an empty or repeated name."""
    out: list[tuple[str, str]] = []
    for part in (p.strip() for p in spec.split(",")):
        if not part:
            continue
        name, sep, model = part.partition("=")
        if not sep:
            name, model = Path(part.rstrip("/")).name, part
        name, model = name.strip(), model.strip()
        if not name or not model:
            raise ConfigError(f"ui_compare entry {part!r}: expected NAME=RUN_DIR")
        if name in (n for n, _ in out):
            raise ConfigError(f"ui_compare: the name {name!r} is given twice")
        out.append((name, model))
    return out


def _load(model: str, settings: ServeSettings, served_dir: Path | None):
    from sessionrec.serving.baseline import load_baseline_bundle
    from sessionrec.serving.bundle import load_bundle

    if model in BASELINES:
        cooc = settings.fallback or (served_dir.parent / "cooc" if served_dir else None)
        if cooc is None:
            raise ConfigError(f"baseline {model!r} is served from a cooc run: set --fallback")
        return load_baseline_bundle(BASELINES[model], cooc, settings.vocab or None,
                                    settings.blocked())
    return load_bundle(model, settings.vocab or None, settings.fallback or None,
                       settings.blocked())


class Lanes:
    """The lanes of one app; comparison models are loaded on first use (in a thread)."""

    def __init__(self, settings: ServeSettings, state: dict, metrics) -> None:
        self.settings = settings
        self.state = state
        self.metrics = metrics
        self._compare: list[Lane] | None = None
        self._lock = asyncio.Lock()

    @property
    def router(self):
        """The experiment router, or None when a single model is served."""
        reloader = self.state.get("reloader")
        return reloader if hasattr(reloader, "variants") else None

    def served(self) -> list[Lane]:
        router = self.router
        if router is not None:
            return [Lane(name, "variant", mw, str(mw.bundle.model_dir))
                    for name, mw in router.variants.items()]
        mw = self.state["mw"]
        return [Lane(mw.bundle.name, "served", mw, str(mw.bundle.model_dir))]

    async def all(self) -> list[Lane]:
        if self._compare is None:
            async with self._lock:
                if self._compare is None:
                    self._compare = await self._load_compare()
        taken = {lane.name for lane in self.served()}
        return self.served() + [
            lane if lane.name not in taken else Lane(f"{lane.name} (compare)", lane.kind,
                                                      lane.mw, lane.source, lane.error)
            for lane in self._compare]

    async def _load_compare(self) -> list[Lane]:
        spec = parse_compare(self.settings.ui_compare)
        store = self.state["reloader"].store
        served_dir = self.served()[0].mw.bundle.model_dir
        run_dir = served_dir.parent if served_dir.name == "model" else served_dir
        lanes = []
        for name, model in spec:
            try:
                bundle = await asyncio.to_thread(_load, model, self.settings, run_dir)
            except Exception as err:  # shown on the page: the console keeps working
                log.warning("console: comparison model %s (%s) failed to load: %s", name,
                            model, err)
                lanes.append(Lane(name, "compare", None, model, f"{type(err).__name__}: {err}"))
                continue
            mw = Middleware(bundle, store.namespace(f"ui:{name}"), self.settings, self.metrics)
            lanes.append(Lane(name, "compare", mw, model))
        return lanes

    async def get(self, name: str) -> Lane | None:
        return next((lane for lane in await self.all() if lane.name == name), None)


async def _user_cold(mw: Middleware, user_id: str | None) -> bool | None:
    """Whether a user-state model starts this user from scratch (None: not applicable)."""
    bundle = mw.bundle
    if not user_id or not bundle.step.has_user_state:
        return None
    if bundle.user_index(user_id) >= 0:
        return False
    try:
        return await mw.store.get_user(user_id) is None
    except Exception:
        return None


async def click_lane(lane: Lane, session_id: str, product_id: str, user_id: str | None,
                     k: int) -> dict:
    """Apply a click in one lane: its ranking, scores, flags and how long it took."""
    if lane.mw is None:
        return {"name": lane.name, "kind": lane.kind, "error": lane.error, "items": []}
    t0 = time.perf_counter()
    mw = lane.mw
    cold_user = await _user_cold(mw, user_id)
    known = mw.bundle.vocab.index_of(product_id) >= 0
    answer = await mw.event(session_id, product_id, user_id, None, k, None)
    scores = answer.scores or [None] * len(answer.products)
    cold = ([] if known else ["product"]) + (["user"] if cold_user else [])
    return {"name": lane.name, "kind": lane.kind, "model": answer.model,
            "fallback": answer.fallback, "reason": answer.reason, "cold_start": cold,
            "items": [{"id": str(p), "score": s} for p, s in
                      zip(answer.products, scores, strict=True)],
            "ms": round(1000 * (time.perf_counter() - t0), 2), "error": None}


async def click(lanes: list[Lane], session_id: str, product_id: str, user_id: str | None,
                k: int) -> list[dict]:
    """Every lane's answer to the click, concurrently (their model steps batch per lane)."""
    return list(await asyncio.gather(*(click_lane(lane, session_id, product_id, user_id, k)
                                       for lane in lanes)))


async def reset(lanes: list[Lane], session_id: str) -> int:
    """End the session in every lane; returns in how many it was live."""
    ended = await asyncio.gather(*(lane.mw.end_session(session_id) for lane in lanes
                                   if lane.mw is not None), return_exceptions=True)
    return sum(1 for e in ended if e is True)
