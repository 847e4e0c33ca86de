"""Where recommendations are shown: ``product_page`` (after a view), ``basket`` (after a basket
add) and ``home`` ("for you", before any click of the visit).

* ``product_page`` — the served model ranks what follows the viewed product (``/v1/events``).
* ``basket`` — a basket add (``/v1/events`` with ``placement: "basket"``) moves the session
  like a view; the answer is "often bought together" with the added product: the basket
  recommender (``--basket-model``: an ``obt`` run counting orders, or a ``cooc`` run), else
  the served model's fallback (its sibling cooc run), then popularity.
* ``home`` — ``GET /v1/users/{user_id}/recommendations``: from the user's state before any
  click of the new visit: with a user-state model (HGRU4Rec) the first session state its user
  state gives (``session_start_state``, the model's public state API; a user the store does
  not know starts from the state learned in training); else the user's last session's last
  product ("often bought together" with it, its products excluded); else popularity. The
  answer's ``reason`` says which (``user_state``, ``last_items``, ``popular``).

The user's last session is remembered in the state store's links (``last-session:USER``),
written whenever an event names its user.
"""

from __future__ import annotations

import logging

import numpy as np
import torch

from sessionrec.serving.bundle import Bundle
from sessionrec.serving.middleware import Answer, Middleware
from sessionrec.serving.store import StoreUnavailable

log = logging.getLogger(__name__)

PLACEMENTS = ("product_page", "basket", "home")
LAST_SESSION = "last-session:"


async def remember_session(mw: Middleware, user_id: str | None, session_id: str) -> None:
    """Link the user to this (their latest) session; a store outage only loses the link."""
    if not user_id:
        return
    try:
        await mw.store.put_link(LAST_SESSION + user_id, session_id)
    except StoreUnavailable as err:
        mw.metrics.store_errors.labels("last_session").inc()
        log.debug("last session of %r not remembered: %s", user_id, err)


def basket_answer(basket: Bundle | None, mw: Middleware, product_id, k: int | None) -> Answer:
    """"Often bought together" with ``product_id`` (the basket recommender, else the served
    model's fallback), filled up by popularity."""
    source = basket if basket is not None else mw.bundle
    k = k or mw.settings.default_k
    top = source.fallback.topk(source.vocab.index_of(product_id), k)
    name = f"basket:{source.tag}" if basket is not None else f"basket:{source.fallback.name}"
    return Answer(source.vocab.products(top), name, False, None)


async def _user_state_answer(mw: Middleware, user_id: str, k: int) -> Answer | None:
    bundle = mw.bundle
    step = bundle.step
    if not step.has_user_state:
        return None
    _, user = await mw._read_user(bundle, user_id)
    if user is None and bundle.user_index(user_id) < 0:
        return None  # nothing known of this user
    state = user.state if user is not None else mw._first_user_state(bundle, user_id)
    start = step.start_states(state[None, :], 1)
    with torch.inference_mode():
        scores = bundle.model.scores_from_state(torch.from_numpy(start))
    values, indices = step._topk(scores, k, None)
    return Answer(bundle.vocab.products(indices[0].tolist()), bundle.tag, False, "user_state",
                  values[0].tolist())


async def _last_items(mw: Middleware, user_id: str) -> np.ndarray:
    session_id = await mw.store.get_link(LAST_SESSION + user_id)
    if session_id is None:
        return np.zeros(0, dtype=np.int64)
    got = await mw.store.get_session(session_id)
    if got is None or got.record is None or got.record.model_key != mw.bundle.model_key:
        return np.zeros(0, dtype=np.int64)
    return got.record.seen.astype(np.int64)


async def home_answer(mw: Middleware, user_id: str, k: int | None) -> Answer:
    """"For you" (see the module docstring); never raises for a store outage."""
    k = k or mw.settings.default_k
    bundle = mw.bundle
    try:
        got = await _user_state_answer(mw, user_id, k)
        if got is not None:
            return got
        seen = await _last_items(mw, user_id)
    except StoreUnavailable as err:
        mw.metrics.store_errors.labels("home").inc()
        log.debug("home of %r from popularity, store unavailable: %s", user_id, err)
        seen = np.zeros(0, dtype=np.int64)
    if len(seen):
        top = bundle.fallback.topk(int(seen[-1]), k, seen)
        return Answer(bundle.vocab.products(top), f"fallback:{bundle.fallback.name}", True,
                      "last_items")
    top = bundle.fallback.topk(-1, k)
    return Answer(bundle.vocab.products(top), "fallback:pop", True, "popular")
