"""Micro-batching of model steps: concurrent requests share one matrix product.

Scoring every item costs one pass over the output embeddings (40k x 100 floats = 16 MB) per
call, however many sessions it scores, so steps that wait while another batch computes are
gathered and computed together. Nothing waits on purpose: a lone request is computed at once;
under load, requests that arrived meanwhile form the next batch ("natural batching").

By default a batch is computed in the event loop itself. ``threaded=True`` computes on a
dedicated thread instead, so that the loop keeps parsing requests meanwhile; measured on two
cores (benchmarks/serve.py) that was slower: the two threads contend for the GIL, and every
hand-back waits for the loop to release it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from sessionrec.serving.step import ModelStep


@dataclass
class StepJob:
    step: ModelStep
    state: np.ndarray | None  # None: a new session
    user_state: np.ndarray | None  # a new session's user state (user-state models)
    item: int  # -1: score only, no click
    k: int
    exclude: np.ndarray
    future: asyncio.Future


@dataclass(frozen=True)
class StepResult:
    state: np.ndarray  # float32 [state_size], after the click
    items: np.ndarray  # int64 top-k item indices, excluded ones dropped
    scores: np.ndarray  # float32, same length


class StepBatcher:
    """Queue of step jobs computed in batches of up to ``max_batch``."""

    def __init__(self, max_batch: int = 64, on_batch: Callable[[int], None] | None = None,
                 threaded: bool = False) -> None:
        self.max_batch = max(1, int(max_batch))
        self.threaded = threaded
        self.on_batch = on_batch
        self._queue: list[StepJob] = []
        self._running = False
        self._task: asyncio.Task | None = None
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="sessionrec-step") if (
            threaded) else None

    async def submit(self, step: ModelStep, state: np.ndarray | None,
                     user_state: np.ndarray | None, item: int, k: int,
                     exclude: np.ndarray) -> StepResult:
        """Advance one session by ``item`` and rank; resolves when its batch is computed."""
        loop = asyncio.get_running_loop()
        job = StepJob(step, state, user_state, int(item), int(k), exclude, loop.create_future())
        self._queue.append(job)
        if not self._running:
            self._running = True
            self._task = loop.create_task(self._drain())  # keep a reference: no early GC
        return await job.future

    async def run(self, fn: Callable, *args):
        """Run ``fn(*args)`` where steps run (other model calls, e.g. user updates)."""
        if not self.threaded:
            return fn(*args)
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    async def _drain(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while self._queue:
                batch = self._queue[:self.max_batch]
                del self._queue[:self.max_batch]
                try:
                    if self.threaded:
                        results = await loop.run_in_executor(self._executor, compute, batch)
                    else:
                        await asyncio.sleep(0)  # let requests already read join the batch
                        if len(batch) < self.max_batch and self._queue:
                            extra = self.max_batch - len(batch)
                            batch += self._queue[:extra]
                            del self._queue[:extra]
                        results = compute(batch)
                except Exception as err:  # a model failure fails its batch, not the server
                    for job in batch:
                        if not job.future.done():
                            job.future.set_exception(err)
                    continue
                if self.on_batch is not None:
                    self.on_batch(len(batch))
                for job, result in zip(batch, results, strict=True):
                    if not job.future.done():
                        job.future.set_result(result)
        finally:
            self._running = False

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)


def compute(batch: list[StepJob]) -> list[StepResult]:
    """Compute a batch (jobs may belong to different models during a hot reload)."""
    out: list[StepResult | None] = [None] * len(batch)
    groups: dict[int, list[int]] = {}
    for i, job in enumerate(batch):
        groups.setdefault(id(job.step), []).append(i)
    for rows in groups.values():
        step = batch[rows[0]].step
        states = np.empty((len(rows), step.state_size), dtype=np.float32)
        new = [r for r, i in enumerate(rows) if batch[i].state is None]
        for r, i in enumerate(rows):
            if batch[i].state is not None:
                states[r] = batch[i].state
        with_user = [r for r in new if batch[rows[r]].user_state is not None]
        without = [r for r in new if batch[rows[r]].user_state is None]
        if with_user:
            users = np.stack([batch[rows[r]].user_state for r in with_user])
            states[with_user] = step.start_states(users, len(with_user))
        if without:
            states[without] = step.start_states(None, len(without))
        items = np.asarray([batch[i].item for i in rows], dtype=np.int64)
        k = max(batch[i].k for i in rows)
        new_states, top, scores = step.step(states, items, k, [batch[i].exclude for i in rows])
        for r, i in enumerate(rows):
            kk = batch[i].k
            keep = np.isfinite(scores[r, :kk])
            out[i] = StepResult(new_states[r].copy(), top[r, :kk][keep], scores[r, :kk][keep])
    return out  # type: ignore[return-value]
