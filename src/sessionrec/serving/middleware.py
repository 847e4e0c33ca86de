"""The middleware: shop ProductIds and session/user ids in, ranked ProductIds out.

It maps ProductIds to item indices, keeps each session's (and user's) recurrent state in the
state store and runs the stateless model step in between::

    event(session, product) -> read the session record (version v)
                            -> new state, top-k = model step(state, item)     [batched]
                            -> write the record if the version is still v, else start over
                            -> ranked ProductIds

Sessions end explicitly (:meth:`Middleware.end_session`), after ``session_ttl_s`` without
events (collected by :meth:`Middleware.sweep`) or when a user's next session starts. With a
user-state model (HGRU4Rec) the ended session's final state then advances the user's state,
from which the user's next session starts.

It never fails a shop page: an unknown product leaves the state as it is and is answered by
the fallback recommender (co-occurrence with the session's last known product, then
popularity); so is every request while the state store is unreachable (retried after
``store_retry_s``), or when the model step itself fails or answers with non-finite numbers
(a degraded model, see :mod:`sessionrec.serving.health`: the session keeps its previous
state and ``/readyz`` reports not ready). Answers say so with ``fallback``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from dataclasses import dataclass

import numpy as np

from sessionrec.serving.batcher import StepBatcher
from sessionrec.serving.bundle import Bundle, load_bundle
from sessionrec.serving.continuity import Continuity
from sessionrec.serving.health import answer_problem
from sessionrec.serving.metrics import Metrics
from sessionrec.serving.records import SessionRecord, UserRecord
from sessionrec.serving.settings import ServeSettings
from sessionrec.serving.store import SessionRead, StateStore, StoreUnavailable

log = logging.getLogger(__name__)

NO_ITEMS = np.zeros(0, dtype=np.int64)


async def _backoff(attempt: int) -> None:
    """After a lost compare-and-set: a random pause that grows (to at most 5 ms), so that
    writers racing for one session from several workers stop colliding."""
    await asyncio.sleep(random.uniform(0, min(0.005, 0.0002 * 2**attempt)))


@dataclass(frozen=True)
class Answer:
    products: list  # ranked ProductIds
    model: str  # bundle tag, or "fallback:<name>"
    fallback: bool
    reason: str | None = None  # why the fallback answered
    scores: list[float] | None = None
    state_reset: bool = False  # the session's state was lost (store emptied, model swapped)
    cold_start: list[bool] | None = None  # per product: no views, placed from metadata


@dataclass(frozen=True)
class SessionView:
    """What ``GET /v1/sessions/{id}/recommendations`` reports besides the ranking."""

    answer: Answer
    n_events: int
    user_id: str | None


class Middleware:
    """ProductId mapping, state store and model step behind four async calls."""

    def __init__(self, bundle: Bundle, store: StateStore, settings: ServeSettings,
                 metrics: Metrics | None = None, clock=time.time,
                 batcher: StepBatcher | None = None) -> None:
        self.bundle = bundle  # replaced as a whole by reload(): requests keep the one they read
        self.store = store
        self.settings = settings
        self.metrics = metrics or Metrics()
        self.clock = clock
        self.batcher = batcher or StepBatcher(settings.max_batch, self.metrics.batch_size.observe,
                                              settings.compute_thread)
        self._store_down_until = 0.0
        self._store_failures = 0  # consecutive store errors
        self._reload_lock = asyncio.Lock()
        self._session_locks: dict[str, list] = {}  # id -> [lock, holders + waiters]
        self.continuity = Continuity(store, settings.session_ttl_s, clock=clock)

    @contextlib.asynccontextmanager
    async def _session_lock(self, session_id: str):
        """Events of one session are applied one at a time within this worker.

        Without it, concurrent clicks of one session would all read the same version and all
        but one would have to redo their step, round after round. Across workers the
        compare-and-set in the store keeps updates from being lost.
        """
        entry = self._session_locks.get(session_id)
        if entry is None:
            entry = self._session_locks[session_id] = [asyncio.Lock(), 0]
        entry[1] += 1
        try:
            async with entry[0]:
                yield
        finally:
            entry[1] -= 1
            if entry[1] == 0:
                del self._session_locks[session_id]

    # -- store health -------------------------------------------------------------------------
    def store_available(self) -> bool:
        return self.clock() >= self._store_down_until

    def _store_failed(self, err: StoreUnavailable, op: str) -> None:
        """Count the error; after ``store_failures`` in a row, skip the store for a while."""
        self.metrics.store_errors.labels(op).inc()
        self._store_failures += 1
        if self._store_failures >= self.settings.store_failures:
            if self.store_available():
                log.warning("state store unavailable, answering from the fallback for %.1f s: "
                            "%s", self.settings.store_retry_s, err)
            self._store_down_until = self.clock() + self.settings.store_retry_s

    def _store_ok(self) -> None:
        self._store_failures = 0

    # -- answers ------------------------------------------------------------------------------
    def _fallback(self, bundle: Bundle, item: int, k: int, reason: str,
                  exclude: np.ndarray | None = None) -> Answer:
        self.metrics.fallbacks.labels(reason).inc()
        top = bundle.fallback.topk(item, k, exclude)
        return Answer(bundle.vocab.products(top), f"fallback:{bundle.fallback.name}", True,
                      reason)

    def _exclude(self, seen: np.ndarray, item: int, exclude_seen: bool) -> np.ndarray:
        if not exclude_seen:
            return NO_ITEMS
        if item < 0:
            return seen.astype(np.int64)
        return np.append(seen, item).astype(np.int64)

    def _degraded(self, bundle: Bundle, result, k: int, exclude: np.ndarray,
                  session_id: str) -> bool:
        """Whether a step's result shows a degraded model (then marked on the bundle)."""
        step = bundle.step
        allowed = step.n_items  # the items not excluded: counted only when the list is short
        if len(result.items) < min(k, step.n_items):
            blocked = step.blocked.numpy()
            allowed -= len(blocked) + len(np.setdiff1d(exclude, blocked))
        problem = answer_problem(result.state, len(result.items), k, allowed)
        if problem is None:
            return False
        if bundle.degraded is None:
            log.error("model %s is degraded (session %r: %s): answering from the fallback, "
                      "/readyz reports not ready until a healthy model is loaded", bundle.tag,
                      session_id, problem)
        bundle.degraded = problem
        return True

    # -- events -------------------------------------------------------------------------------
    async def event(self, session_id: str, product_id: str | int, user_id: str | None = None,
                    timestamp: float | None = None, k: int | None = None,
                    exclude_seen: bool | None = None) -> Answer:
        """Apply a click of ``product_id`` to the session and rank products for it."""
        bundle = self.bundle
        k = k or self.settings.default_k
        exclude_seen = self.settings.exclude_seen if exclude_seen is None else exclude_seen
        item = bundle.vocab.index_of(product_id)
        if not self.store_available():
            return self._fallback(bundle, item, k, "store_unavailable")
        try:
            async with self._session_lock(session_id):
                for attempt in range(self.settings.max_retries):
                    answer = await self._try_event(bundle, session_id, item, user_id, timestamp,
                                                   k, exclude_seen)
                    if answer is not None:
                        self._store_ok()
                        return answer
                    self.metrics.conflicts.inc()
                    await _backoff(attempt)
        except StoreUnavailable as err:
            self._store_failed(err, "event")
            return self._fallback(bundle, item, k, "store_unavailable")
        except Exception:
            log.exception("model step failed for session %r", session_id)
            return self._fallback(bundle, item, k, "model_error")
        log.warning("session %r: gave up after %d conflicting concurrent updates",
                    session_id, self.settings.max_retries)
        return self._fallback(bundle, item, k, "contention")

    async def _try_event(self, bundle: Bundle, session_id: str, item: int, user_id: str | None,
                         timestamp: float | None, k: int, exclude_seen: bool) -> Answer | None:
        """One read-compute-write attempt; ``None`` when a concurrent write won."""
        now = self.clock()
        version, record, read = await self._read_session(bundle, session_id, now)
        if record is None and item < 0:
            # Unknown product in a new session: nothing to remember, nothing to score.
            return self._fallback(bundle, -1, k, "unknown_product")
        if record is not None and item < 0:
            exclude = record.seen if exclude_seen else None
            return self._fallback(bundle, record.last_item, k, "unknown_product", exclude)
        step = bundle.step
        user_state = None
        # version > 0 without a record: a state of another model; no version: new, or lost
        reset = record is None and (
            version > 0 or await self.continuity.lost_after_read(session_id, read))
        if record is None:
            seen = np.zeros(0, dtype=np.int32)
            user_state = await self._start_user_session(bundle, session_id, user_id, now)
        else:
            seen = record.seen
        exclude = self._exclude(seen, item, exclude_seen)
        result = await self.batcher.submit(
            step, None if record is None else record.state, user_state, item, k, exclude)
        if self._degraded(bundle, result, k, exclude, session_id):
            return self._fallback(bundle, item, k, "model_unhealthy", exclude)
        owner = record.user_id if record is not None and record.user_id else user_id
        seen = np.append(seen, np.int32(item))[-self.settings.max_seen:] if (
            self.settings.max_seen) else seen[:0]
        new = SessionRecord(
            state=result.state, seen=seen.astype(np.int32), last_item=item,
            n_events=1 + (record.n_events if record is not None else 0), user_id=owner,
            model_key=bundle.model_key,
            created_at=now if record is None else record.created_at, updated_at=now,
            last_event_at=now if timestamp is None else float(timestamp))
        track = bool(owner) and step.has_user_state
        if await self.store.put_session(session_id, version, new, track) is None:
            return None
        self.continuity.wrote(session_id)
        if reset and version == 0:  # a foreign state was counted by _read_session
            self.metrics.resets.labels("session_lost").inc()
        if record is None and track and user_id:
            await self._set_open_session(bundle, user_id, session_id, now)
        return Answer(bundle.vocab.products(result.items), bundle.tag, False, None,
                      result.scores.tolist(), state_reset=reset,
                      cold_start=bundle.cold_flags(result.items))

    async def _read_session(self, bundle: Bundle, session_id: str, now: float,
                            ) -> tuple[int, SessionRecord | None, SessionRead]:
        """(version, record, the store's read) with ended, foreign or unreadable states
        already dealt with; without a record the read brings what
        :meth:`Continuity.lost_after_read` needs."""
        while True:
            read = await self.store.read_session(session_id)
            got = read.got
            if got is None:
                return 0, None, read
            record = got.record
            if record is not None and record.updated_at + self.store.session_ttl_s < now:
                await self._end(bundle, session_id, "idle")  # ended; a new one starts
                continue
            if (record is None or record.model_key != bundle.model_key
                    or len(record.state) != bundle.step.state_size):
                self.metrics.resets.labels("session").inc()
                return got.version, None, read  # overwritten by a new session at this version
            return got.version, record, read

    # -- users --------------------------------------------------------------------------------
    async def _read_user(self, bundle: Bundle, user_id: str) -> tuple[int, UserRecord | None]:
        got = await self.store.get_user(user_id)
        if got is None:
            return 0, None
        record = got.record
        if (record is None or record.model_key != bundle.model_key
                or len(record.state) != bundle.step.user_state_size):
            self.metrics.resets.labels("user").inc()
            return got.version, None
        return got.version, record

    def _first_user_state(self, bundle: Bundle, user_id: str) -> np.ndarray:
        """A user without a record: the state learned in training, else zeros."""
        return bundle.step.first_user_state(bundle.user_index(user_id))

    async def _start_user_session(self, bundle: Bundle, session_id: str, user_id: str | None,
                                  now: float) -> np.ndarray | None:
        """The user state a new session starts from; ends the user's previous session."""
        if not user_id or not bundle.step.has_user_state:
            return None
        _, user = await self._read_user(bundle, user_id)
        if user is not None and user.open_session and user.open_session != session_id:
            await self._end(bundle, user.open_session, "next_session")
            _, user = await self._read_user(bundle, user_id)
        return user.state if user is not None else self._first_user_state(bundle, user_id)

    async def _update_user(self, bundle: Bundle, user_id: str, change) -> None:
        """Compare-and-set loop: ``change(current record or None) -> new record``."""
        for attempt in range(self.settings.max_retries):
            version, user = await self._read_user(bundle, user_id)
            new = await change(user)
            if await self.store.put_user(user_id, version, new) is not None:
                return
            self.metrics.conflicts.inc()
            await _backoff(attempt)
        log.warning("user %r: gave up after %d conflicting concurrent updates", user_id,
                    self.settings.max_retries)

    async def _set_open_session(self, bundle: Bundle, user_id: str, session_id: str,
                                now: float) -> None:
        async def change(user: UserRecord | None) -> UserRecord:
            state = user.state if user is not None else self._first_user_state(bundle, user_id)
            return UserRecord(state, session_id, user.n_sessions if user is not None else 0,
                              bundle.model_key, now)

        await self._update_user(bundle, user_id, change)

    async def _fold(self, bundle: Bundle, session_id: str, record: SessionRecord) -> None:
        """Advance the session's user state with the session's final state."""
        step = bundle.step
        if (not record.user_id or not step.has_user_state
                or record.model_key != bundle.model_key):
            return
        now = self.clock()

        async def change(user: UserRecord | None) -> UserRecord:
            before = (user.state if user is not None
                      else self._first_user_state(bundle, record.user_id))
            after = await self.batcher.run(step.advance_users, before[None], record.state[None])
            still_open = user.open_session if user is not None else None
            return UserRecord(after[0], None if still_open == session_id else still_open,
                              1 + (user.n_sessions if user is not None else 0),
                              bundle.model_key, now)

        await self._update_user(bundle, record.user_id, change)

    async def _end(self, bundle: Bundle, session_id: str, how: str) -> bool:
        self.continuity.ended(session_id)
        record = await self.store.take_session(session_id)
        if record is None:
            return False
        self.metrics.sessions_ended.labels(how).inc()
        await self._fold(bundle, session_id, record)
        return True

    async def end_session(self, session_id: str) -> bool:
        """End a session now (user state advanced); False when there was no such session."""
        return await self._end(self.bundle, session_id, "explicit")

    async def sweep(self, now: float | None = None, limit: int = 1000) -> int:
        """End the sessions idle for longer than the session TTL; returns how many."""
        bundle = self.bundle
        await self.continuity.check_epoch()  # a store that lost its contents: tell the others
        taken = await self.store.take_expired(self.clock() if now is None else now, limit)
        for session_id, record in taken:
            self.continuity.ended(session_id)
            self.metrics.sessions_ended.labels("idle").inc()
            await self._fold(bundle, session_id, record)
        return len(taken)

    # -- reads --------------------------------------------------------------------------------
    async def recommendations(self, session_id: str, k: int | None = None,
                              exclude_seen: bool | None = None) -> SessionView | None:
        """Ranking for a live session without a new click; ``None`` when it does not exist."""
        bundle = self.bundle
        k = k or self.settings.default_k
        exclude_seen = self.settings.exclude_seen if exclude_seen is None else exclude_seen
        if not self.store_available():
            return SessionView(self._fallback(bundle, -1, k, "store_unavailable"), 0, None)
        try:
            _, record, _ = await self._read_session(bundle, session_id, self.clock())
        except StoreUnavailable as err:
            self._store_failed(err, "read")
            return SessionView(self._fallback(bundle, -1, k, "store_unavailable"), 0, None)
        self._store_ok()
        if record is None:
            return None
        exclude = self._exclude(record.seen, -1, exclude_seen)
        try:
            result = await self.batcher.submit(bundle.step, record.state, None, -1, k, exclude)
            if self._degraded(bundle, result, k, exclude, session_id):
                answer = self._fallback(bundle, record.last_item, k, "model_unhealthy",
                                        exclude)
                return SessionView(answer, record.n_events, record.user_id)
        except Exception:
            log.exception("model scoring failed for session %r", session_id)
            exclude = record.seen if exclude_seen else None
            answer = self._fallback(bundle, record.last_item, k, "model_error", exclude)
            return SessionView(answer, record.n_events, record.user_id)
        answer = Answer(bundle.vocab.products(result.items), bundle.tag, False, None,
                        result.scores.tolist(), cold_start=bundle.cold_flags(result.items))
        return SessionView(answer, record.n_events, record.user_id)

    async def similar(self, product_id: str | int, k: int | None = None) -> Answer | None:
        """Products whose item embeddings are closest (cosine); ``None`` for unknown products."""
        bundle = self.bundle
        k = k or self.settings.default_k
        item = bundle.vocab.index_of(product_id)
        if item < 0:
            return None
        if bundle.similar is None:
            return self._fallback(bundle, item, k, "no_embeddings")
        top, scores = await self.batcher.run(bundle.similar.topk, item, k)
        return Answer(bundle.vocab.products(top), bundle.tag, False, None, scores.tolist(),
                      cold_start=bundle.cold_flags(top))

    # -- reload -------------------------------------------------------------------------------
    async def reload(self, model: str | None = None, vocab: str | None = None,
                     fallback: str | None = None) -> Bundle:
        """Load a model (default: the configured one, re-read) and swap it in atomically."""
        s = self.settings
        async with self._reload_lock:
            try:
                bundle = await asyncio.to_thread(
                    load_bundle, model or s.model, (vocab if model else (vocab or s.vocab)) or None,
                    fallback or s.fallback or None, s.blocked(),
                    None if model else (s.embeddings or None))
            except Exception:
                self.metrics.reloads.labels("failed").inc()
                raise
            self.bundle = bundle
            self.metrics.reloads.labels("ok").inc()
            log.info("serving %s from %s", bundle.tag, bundle.model_dir)
            return bundle

    async def close(self) -> None:
        self.batcher.close()
        await self.store.close()
