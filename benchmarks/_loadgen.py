"""Open-loop HTTP load for the serving benchmarks: requests started on a fixed clock.

A closed-loop generator (each connection sends its next request when the previous answer
arrives) slows down with the server and so hides queueing ("coordinated omission"). Here
request ``i`` is due at ``start + i / rate`` whatever happened before, and its latency is
measured from that scheduled time, so a stalled server shows up in the tail.

The generator's own pauses would show up there too, as the server's. Python's cyclic garbage
collector is the large one: with thousands of request tasks alive, a full collection stops
the generator's event loop for tens of milliseconds, and every request due meanwhile starts
late. Measured against a do-nothing asyncio HTTP server at 1,000 req/s on the 2-core
development machine, two 10 s runs each: with the collector on, max 104 and 185 ms (p99.9 95
and 3.4 ms); with it off, max 22 and 33 ms (p99.9 4.7 and 3.6 ms). So the collector is paused
while requests are sent (:func:`paused_gc`); finished requests free their memory by reference
counting, and one collection runs afterwards.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import socket
import time


@contextlib.contextmanager
def paused_gc():
    """The cyclic garbage collector off (and the objects made so far frozen out of its
    reach) for the block; back as it was afterwards, followed by one collection. Objects the
    caller had frozen before stay frozen."""
    was_enabled = gc.isenabled()
    frozen_before = gc.get_freeze_count()
    gc.collect()
    gc.freeze()
    gc.disable()
    try:
        yield
    finally:
        if not frozen_before:
            gc.unfreeze()
        if was_enabled:
            gc.enable()
        gc.collect()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def connection(host: str, port: int):
    return await asyncio.open_connection(host, port)


async def post(conn, host: str, path: str, body: bytes) -> tuple[int, bytes]:
    """One keep-alive HTTP/1.1 POST on ``conn``; returns the status code and the head
    (status line and headers, lower-cased)."""
    reader, writer = conn
    writer.write(f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
                 f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    await reader.readexactly(length)
    return status, head.lower()


async def open_loop_requests(host: str, port: int, path: str, make_body, rate: float,
                             seconds: float, connections: int = 32,
                             count_header: str = "") -> dict:
    """``POST path`` with ``make_body(i)``, started on a fixed clock (i / rate); latency from
    the scheduled time. ``count_header`` (e.g. ``"sessionrec-archived: true"``): the result's
    ``with_header`` counts the answers that carry that header line.

    A plain asyncio HTTP/1.1 client over ``connections`` keep-alive connections (a request
    waits for a free one, and that wait counts in its latency), so the generator itself stays
    cheap at the offered rate. The garbage collector is paused meanwhile (module docstring).
    """
    with paused_gc():
        return await _open_loop(host, port, path, make_body, rate, seconds, connections,
                                count_header)


async def _open_loop(host: str, port: int, path: str, make_body, rate: float, seconds: float,
                     connections: int, count_header: str) -> dict:
    n = int(rate * seconds)
    pool: asyncio.Queue = asyncio.Queue()
    for _ in range(connections):
        pool.put_nowait(await connection(host, port))
    latencies: list[float] = []
    errors = with_header = 0
    wanted = b"\r\n" + count_header.lower().encode() + b"\r\n"

    async def one(i: int, scheduled: float) -> None:
        nonlocal errors, with_header
        body = make_body(i)
        conn = await pool.get()
        try:
            status, head = await post(conn, host, path, body)
            if status != 200:
                errors += 1
            with_header += bool(count_header) and wanted in head + b"\r\n"
        except (OSError, asyncio.IncompleteReadError, ValueError):
            errors += 1
            conn = await connection(host, port)
        pool.put_nowait(conn)
        latencies.append((time.perf_counter() - scheduled) * 1000)

    start = time.perf_counter() + 0.2
    running: set[asyncio.Task] = set()  # only the unfinished requests stay referenced
    for i in range(n):
        scheduled = start + i / rate
        delay = scheduled - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        task = asyncio.create_task(one(i, scheduled))
        running.add(task)
        task.add_done_callback(running.discard)
    await asyncio.gather(*running)
    wall = time.perf_counter() - start
    while not pool.empty():
        pool.get_nowait()[1].close()
    latencies.sort()
    q = lambda p: latencies[min(len(latencies) - 1, int(p * len(latencies)))]  # noqa: E731
    return {"requests": n, "achieved": n / wall, "errors": errors, "with_header": with_header,
            "p50": q(0.5),
            "p99": q(0.99), "p999": q(0.999), "max": latencies[-1]}
