"""Benchmark: what the event archive costs ``POST /v1/events``, and whether a SIGKILL loses
acknowledged events.

Served model: a small GRU4Rec (one GRU layer of 32 units, 2,000 items, fitted for one epoch on
random sessions: the archive's cost does not depend on what it learned). One ``sessionrec
serve`` worker, in-process state store, on loopback.

* **latency** — an open-loop client (``_loadgen.open_loop_requests``: raw asyncio HTTP/1.1 on
  32 keep-alive connections; request ``i`` is due at ``t0 + i / rate``, latency counted from
  that moment, so a slow server cannot hide its queue) offers
  ``--rate`` views per second for ``--duration`` seconds, with the archive off and then on
  (``--archive sqlite:///...``: WAL, synchronous=FULL, group commit), in the same script so
  that the ratio compares like with like. The achieved rate is reported beside the target:
  on a shared 2-core machine the client and the server compete for the same cores.
* **SIGKILL** — 32 concurrent clients send views as fast as the server answers; after
  ``--kill-after`` seconds the server's process group gets SIGKILL. Every answer that came
  back with ``Sessionrec-Archived: true`` is an acknowledged event (its session id is
  unique); the archive file is then opened and every acknowledged session id must be in it.

    python benchmarks/archive.py                    # about 2 minutes
    python benchmarks/archive.py --rate 500 --duration 10
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _loadgen import open_loop_requests
from _report import machine, update_section
from serve import build_run, free_port, product_ids
from sessionrec.archive.log import open_archive

N_ITEMS, HIDDEN = 2_000, 32  # the archive's cost does not depend on the model's size


class Server:
    def __init__(self, run_dir: Path, archive: str | None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        cmd = [sys.executable, "-m", "sessionrec.cli", "serve", "--model", str(run_dir),
               "--port", str(self.port)]
        if archive:
            cmd += ["--archive", archive]
        env = {k: v for k, v in os.environ.items() if not k.startswith("SESSIONREC_")}
        self.proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.2)
        raise RuntimeError("server did not become ready")

    def kill(self, sig=signal.SIGTERM) -> None:
        os.killpg(self.proc.pid, sig)
        self.proc.wait(30)


def make_bodies(products: list, seed: int):
    """Request ``i``'s body: a view of a skewed-popularity product, 5 views per session."""
    rng = np.random.default_rng(seed)

    def body(i: int) -> bytes:
        product = products[int(len(products) * rng.random() ** 3)]
        return json.dumps({"session_id": f"b{i // 5}", "product_id": product}).encode()

    return body


def open_loop(server: Server, products: list, rate: float, seconds: float, seed: int) -> dict:
    """``_loadgen.open_loop_requests`` (raw asyncio HTTP/1.1, 32 keep-alive connections)."""
    r = asyncio.run(open_loop_requests("127.0.0.1", server.port, "/v1/events",
                                       make_bodies(products, seed), rate, seconds,
                                       count_header="sessionrec-archived: true"))
    return {"target": rate, "achieved": r["achieved"], "n": r["requests"],
            "errors": r["errors"], "archived": r["with_header"], "p50": r["p50"],
            "p99": r["p99"]}


async def until_killed(url: str, products: list, server: Server, after_s: float) -> set[str]:
    acknowledged: set[str] = set()
    stop = time.monotonic() + after_s
    counter = iter(range(10**9))
    async with httpx.AsyncClient(base_url=url, timeout=5) as client:
        async def worker() -> None:
            while True:
                i = next(counter)
                sid = f"kill-{i}"
                try:
                    r = await client.post("/v1/events", json={"session_id": sid,
                                                              "product_id": products[i % 100]})
                except httpx.HTTPError:
                    return  # the server is gone
                if r.status_code == 200 and r.headers.get("sessionrec-archived") == "true":
                    acknowledged.add(sid)

        async def killer() -> None:
            await asyncio.sleep(max(0.0, stop - time.monotonic()))
            os.killpg(server.proc.pid, signal.SIGKILL)

        await asyncio.gather(killer(), *(worker() for _ in range(32)))
    server.proc.wait(30)
    return acknowledged


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rate", type=float, default=1000.0)
    ap.add_argument("--duration", type=float, default=15.0)
    ap.add_argument("--kill-after", type=float, default=5.0)
    ap.add_argument("--section", default="archive", help="docs/benchmarks.md section")
    args = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="archive-bench-"))
    run_dir = build_run(root, n_items=N_ITEMS, hidden=HIDDEN)
    products = [json.loads(p) for p in product_ids(run_dir, None)]
    rows = {}
    loads = {}
    for name, archive in (("off", None), ("on", f"sqlite:///{root}/archive-lat.db")):
        server = Server(run_dir, archive)
        try:
            open_loop(server, products, min(args.rate, 200), 3, seed=1)  # warm-up
            loads[name] = os.getloadavg()
            rows[name] = open_loop(server, products, args.rate, args.duration, seed=2)
        finally:
            server.kill()
        print(name, rows[name], "load", loads[name], flush=True)
    db = root / "archive-kill.db"
    server = Server(run_dir, f"sqlite:///{db}")
    kill_load = os.getloadavg()
    acknowledged = asyncio.run(until_killed(server.url, products, server, args.kill_after))
    with open_archive(f"sqlite:///{db}") as archive:
        stored = set(archive.read_frame()["session_id"].to_list())
    lost = acknowledged - stored
    print(f"SIGKILL: {len(acknowledged)} acknowledged, {len(stored)} archived, {len(lost)} lost",
          flush=True)
    off, on = rows["off"], rows["on"]
    fmt = "| {} | {:,.0f} | {:,.0f} | {:.1f} | {:.1f} | {} | {:.2f} {:.2f} {:.2f} |"

    def row(name: str, r: dict, load) -> str:
        return fmt.format(name, r["target"], r["achieved"], r["p50"], r["p99"], r["errors"],
                          *load)

    command = f"python benchmarks/archive.py --rate {args.rate:g} --duration {args.duration:g}"
    body_md = f"""## Event archive (`{command}`)

{machine()}; the machine is shared with other sessions (load average: 1, 5, 15 minutes
when each run started). One `sessionrec serve` worker, in-process store, GRU4Rec 32 units,
2,000 items; open-loop client on the same cores (latency from each request's due time).

| archive | target req/s | achieved req/s | p50 ms | p99 ms | errors | load |
|---|---|---|---|---|---|---|
{row("off", off, loads["off"])}
{row("on (SQLite)", on, loads["on"])}

p99 with the archive on / off: **{on["p99"] / off["p99"]:.2f}x**
(p50 {on["p50"] / off["p50"]:.2f}x);
{on["archived"]:,} of {on["n"]:,} answers carried `Sessionrec-Archived: true`.

SIGKILL under load (32 concurrent clients, killed after {args.kill_after:g} s; load
{kill_load[0]:.2f} {kill_load[1]:.2f} {kill_load[2]:.2f}): **{len(acknowledged):,} acknowledged,
{len(stored):,} archived, {len(lost)} acknowledged events lost** (archived but unanswered
events may exist: their answer did not reach the client before the kill).
"""
    update_section(args.section, body_md)
    print(body_md)


if __name__ == "__main__":
    main()
