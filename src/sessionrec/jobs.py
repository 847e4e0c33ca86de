"""Run several independent tasks (model fits) on ``jobs`` processes: this one and spawned workers.

``sessionrec evaluate --jobs N`` and ``sessionrec quickstart`` compare several models on one
prepared directory. The fits are independent, and on a machine with free cores they can run at
once. The tasks come in an order from heaviest to lightest; **this process takes tasks from
the front** (it has everything imported and the data loaded already, so it starts the heavy
model at once) and **the workers take them from the back** (each first pays its own start-up:
imports and reading the data). Whoever finishes takes the next task from its end, so a short
task list needs no cost estimates and every core stays busy until the list is empty.

Workers are *spawned*, never forked: a fork of a process whose Polars or OpenMP thread pools
have run can deadlock. Each task's result comes back through a queue; the caller gets
``on_result(index, result)`` in this process, in completion order. A task that raises in a
worker is re-raised here (the other workers are stopped), naming the task.
"""

from __future__ import annotations

import multiprocessing as mp
import queue
import traceback
from collections.abc import Callable, Sequence
from typing import Any

from sessionrec.errors import SessionRecError

# How often the collector checks that the workers are still alive while it waits.
_POLL_S = 0.5


class TaskList:
    """Task indices shared by all processes: this process pops the front, workers the back.

    ``order`` is the list of task indices, heaviest first. The two cursors live in shared
    memory under one lock, so every task is taken exactly once.
    """

    def __init__(self, ctx: Any, order: Sequence[int]) -> None:
        self.order = ctx.Array("q", list(order), lock=False)
        self.front = ctx.Value("q", 0, lock=False)
        self.back = ctx.Value("q", len(order) - 1, lock=False)
        self.lock = ctx.Lock()

    def take(self, from_front: bool) -> int | None:
        """The next task index from one end, or None when none is left."""
        with self.lock:
            if self.front.value > self.back.value:
                return None
            if from_front:
                self.front.value += 1
                return int(self.order[self.front.value - 1])
            self.back.value -= 1
            return int(self.order[self.back.value + 1])

    def close(self) -> None:
        """Hand out no more tasks (after a failure)."""
        with self.lock:
            self.front.value, self.back.value = 1, 0


def _worker_main(tasks: TaskList, results: Any, setup: Callable[[], Any],
                 run_task: Callable[[Any, int], Any]) -> None:
    """A worker: ``state = setup()`` once, then ``run_task(state, i)`` for tasks off the back."""
    try:
        state = setup()
    except BaseException as exc:  # reported as the failure of the task it would have taken
        results.put(("error", -1, _describe(exc)))
        return
    while (i := tasks.take(from_front=False)) is not None:
        try:
            results.put(("ok", i, run_task(state, i)))
        except BaseException as exc:
            results.put(("error", i, _describe(exc)))
            return


def _describe(exc: BaseException) -> str:
    return "".join(traceback.format_exception_only(type(exc), exc)).strip() + "\n" + \
        "".join(traceback.format_tb(exc.__traceback__))


def run_tasks(n_tasks: int, order: Sequence[int], run_here: Callable[[int], Any],
              setup: Callable[[], Any], run_task: Callable[[Any, int], Any], jobs: int,
              on_result: Callable[[int, Any], None], names: Sequence[str] | None = None,
              ) -> None:
    """Run tasks ``0 .. n_tasks - 1`` on ``jobs`` processes.

    Args:
        order: every task index once, heaviest first.
        run_here: ``run_here(i)`` runs task ``i`` in this process and returns its result.
        setup / run_task: a worker calls ``state = setup()`` once and ``run_task(state, i)``
            per task; both must be picklable (module-level functions or
            :func:`functools.partial` of them) and ``run_task``'s result too.
        jobs: processes in all (this one included); 1 runs everything here, in ``order``.
        on_result: called here with ``(i, result)`` of each task as it is collected.
        names: a name per task for error messages (default ``task i``).

    Raises:
        SessionRecError: a worker's task raised or a worker died; names the task.
    """
    if sorted(order) != list(range(n_tasks)):
        raise ValueError(f"order must list each of the {n_tasks} tasks once, got {order}")
    label = (lambda i: names[i]) if names else (lambda i: f"task {i}")
    if jobs <= 1 or n_tasks <= 1:
        for i in order:
            on_result(i, run_here(i))
        return
    ctx = mp.get_context("spawn")
    tasks = TaskList(ctx, order)
    results = ctx.Queue()
    workers = [ctx.Process(target=_worker_main, args=(tasks, results, setup, run_task),
                           daemon=True, name=f"sessionrec-job-{k + 1}")
               for k in range(min(jobs, n_tasks) - 1)]
    for w in workers:
        w.start()
    done = 0

    def collect(block: bool) -> None:
        nonlocal done
        while True:
            try:
                status, i, value = results.get(timeout=_POLL_S) if block else \
                    results.get_nowait()
            except queue.Empty:
                if not block:
                    return
                if not any(w.is_alive() for w in workers):
                    try:  # a result may have arrived just before the last worker ended
                        status, i, value = results.get(timeout=_POLL_S)
                    except queue.Empty:
                        raise SessionRecError(
                            f"a worker process ended without returning a result "
                            f"({n_tasks - done} of {n_tasks} tasks unfinished; exit codes "
                            f"{[w.exitcode for w in workers]})") from None
                else:
                    continue
            if status == "error":
                what = "starting a worker" if i < 0 else label(i)
                raise SessionRecError(f"{what} failed in a worker process: {value}")
            on_result(i, value)
            done += 1
            if done == n_tasks:
                return

    try:
        while (i := tasks.take(from_front=True)) is not None:
            value = run_here(i)
            on_result(i, value)
            done += 1
            collect(block=False)
        while done < n_tasks:
            collect(block=True)
    finally:
        # Either every result is in (a worker still starting up has nothing left to do) or a
        # task failed: no more tasks for anyone, and no worker is waited for.
        tasks.close()
        for w in workers:
            if w.is_alive():
                w.terminate()
            w.join(timeout=10)
        results.close()
