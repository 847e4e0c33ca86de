"""sessionrec.jobs: tasks shared between this process (front) and spawned workers (back)."""

from __future__ import annotations

import os
import time
from functools import partial
from pathlib import Path

import pytest

from sessionrec.errors import SessionRecError
from sessionrec.jobs import run_tasks


def _setup() -> int:
    return os.getpid()


def _square(pid: int, i: int, marker: str = "") -> tuple[int, int]:
    if marker:
        Path(marker).touch()  # tells the test that a worker is running tasks
    return i * i, pid


def _fail_on(bad: int, marker: str, pid: int, i: int) -> tuple[int, int]:
    Path(marker).touch()
    if i == bad:
        raise ValueError(f"task {i} is bad")
    return i * i, pid


def _wait_for(marker: Path, timeout: float = 120.0) -> None:
    """Block until a worker has touched ``marker`` (so the test does not race its start)."""
    end = time.monotonic() + timeout
    while not marker.exists():
        assert time.monotonic() < end, "no worker started"
        time.sleep(0.02)


def _broken_setup(marker: str) -> int:
    Path(marker).touch()
    raise RuntimeError("no data here")


def _collector():
    got: list[tuple[int, tuple[int, int]]] = []
    return got, lambda i, value: got.append((i, value))


def test_every_task_runs_once_heaviest_here_and_lightest_in_a_worker(tmp_path):
    got, on_result = _collector()
    order = [4, 0, 1, 2, 3, 5, 6]  # task 4 is the "heaviest": this process starts with it
    marker = tmp_path / "worker-ran"

    def run_here(i: int) -> tuple[int, int]:
        if i == 4:
            _wait_for(marker)  # the heavy task lasts until a worker has helped
        return i * i, os.getpid()

    run_tasks(7, order, run_here, _setup, partial(_square, marker=str(marker)), jobs=2,
              on_result=on_result)
    assert sorted(i for i, _ in got) == list(range(7))
    assert all(value[0] == i * i for i, value in got)
    by_task = {i: pid for i, (_, pid) in got}
    assert by_task[4] == os.getpid()
    assert by_task[6] != os.getpid()  # the back of the list went to the worker


def test_one_job_runs_in_order_here():
    got, on_result = _collector()
    run_tasks(3, [2, 0, 1], lambda i: (i * i, os.getpid()), _setup, _square, jobs=1,
              on_result=on_result)
    assert [i for i, _ in got] == [2, 0, 1]
    assert {pid for _, (_, pid) in got} == {os.getpid()}


def test_a_failing_worker_task_is_raised_here_with_its_name(tmp_path):
    got, on_result = _collector()
    marker = tmp_path / "worker-ran"
    with pytest.raises(SessionRecError, match=r"t3 failed in a worker process: ValueError: "
                                              r"task 3 is bad"):
        run_tasks(4, [0, 1, 2, 3], lambda i: _wait_for(marker) or (i, 0), _setup,
                  partial(_fail_on, 3, str(marker)), jobs=2, on_result=on_result,
                  names=["t0", "t1", "t2", "t3"])
    # This process ran tasks from the front, in order, until the worker's error reached it
    # (on a busy machine that may be after task 1 or 2 too); the failed task gave no result.
    done = [i for i, _ in got]
    assert done == list(range(len(done))) and 3 not in done and 0 in done


def test_a_worker_that_cannot_start_is_an_error(tmp_path):
    _, on_result = _collector()
    marker = tmp_path / "worker-started"

    def run_here(i: int) -> tuple[int, int]:
        _wait_for(marker)
        time.sleep(1.0)  # time for the worker's error to reach the queue
        return i, 0

    with pytest.raises(SessionRecError, match=r"starting a worker failed.*no data here"):
        run_tasks(3, [0, 1, 2], run_here, partial(_broken_setup, str(marker)), _square,
                  jobs=2, on_result=on_result)


def test_order_must_name_each_task_once():
    with pytest.raises(ValueError, match="each of the 3 tasks once"):
        run_tasks(3, [0, 0, 1], lambda i: i, _setup, _square, jobs=2,
                  on_result=lambda i, v: None)


def _slow_setup() -> int:
    time.sleep(60)  # a worker that would still be starting long after the tasks are done
    return os.getpid()


def test_a_worker_still_starting_when_all_tasks_are_done_is_not_waited_for():
    got, on_result = _collector()
    t0 = time.monotonic()
    run_tasks(2, [0, 1], lambda i: (i, os.getpid()), _slow_setup, _square, jobs=2,
              on_result=on_result)
    assert sorted(i for i, _ in got) == [0, 1]
    assert time.monotonic() - t0 < 30  # not the worker's 60 s start-up
