"""Benchmark: latency and throughput of ``POST /v1/events`` on loopback, and a Redis outage.

The served model is a GRU4Rec with the issue's shape (one GRU layer of 100 units, 40,000
items), fitted for one short epoch on random sessions: latency depends on the shapes, not on
what the weights learned. Its sibling ``cooc`` run is the fallback. ``--model RUN_DIR`` serves
a real run instead.

The load generator is ``wrk`` (closed loop: each connection sends its next request when the
previous answer arrives). Two kinds of runs:

* max: 16 connections as fast as they go (throughput; queueing inflates the tail);
* paced: each connection waits between requests so that the offered load is ``--rate`` per
  second (latency at that load; wrk measures from send to answer, so client-side queueing
  is not counted: check that the achieved rate matches the target).

Requests click products into 20,000 random sessions; product ``floor(n u^3)`` in vocabulary
order for uniform ``u`` (a skewed popularity), and 3% of clicks go to products the model does
not know (fallback answers). Scenarios: in-process store with one worker; Redis
with one and two workers; Redis stopped during a paced run and restarted (5xx, fallbacks and
recovery counted by the wrk script). Component timings (model step, top-k, store round
trips) are measured in-process. Results go to docs/benchmarks.md (section "serve").

    python benchmarks/serve.py                    # about 6 minutes
    python benchmarks/serve.py --duration 20      # shorter paced runs
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import polars as pl
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import machine, update_section
from sessionrec.data.sessions import Sessions
from sessionrec.models.baselines.cooc import Cooccurrence
from sessionrec.models.gru4rec import GRU4Rec
from sessionrec.runs import vocab_fingerprint

N_ITEMS = 40_000
HIDDEN = 100
N_SESSIONS = 20_000
UNKNOWN_SHARE = 0.03

WRK_SCRIPT = r"""
local products = {%(products)s}
local n_products = #products
local n_sessions = %(sessions)d
local unknown_share = %(unknown)f
local pause = %(pause)f
local counts = {}
local threads = {}

function setup(thread)
  thread:set("id", #threads)
  table.insert(threads, thread)
end

function init(args)
  math.randomseed(id * 7919 + os.time())
  counts = {ok = 0, fallback = 0, store = 0, s5xx = 0, other = 0}
end

function delay()
  if pause <= 0 then return 0 end
  return -pause * math.log(1 - math.random())  -- exponential gaps: Poisson arrivals
end

request = function()
  local s = math.random(n_sessions)
  local p = products[math.floor(n_products * math.random() ^ 3) + 1]
  if math.random() < unknown_share then
    p = string.format('"unknown-%%d"', math.random(1000))
  end
  local body = string.format('{"session_id":"s%%d","product_id":%%s}', s, p)
  return wrk.format("POST", "/v1/events", {["Content-Type"] = "application/json"}, body)
end

response = function(status, headers, body)
  if status >= 500 then counts.s5xx = counts.s5xx + 1
  elseif status ~= 200 then counts.other = counts.other + 1
  elseif string.find(body, '"reason":"store_unavailable"', 1, true) then
    counts.store = counts.store + 1
  elseif string.find(body, '"fallback":true', 1, true) then
    counts.fallback = counts.fallback + 1
  else counts.ok = counts.ok + 1 end
end

function done(summary, latency, requests)
  local total = {ok = 0, fallback = 0, store = 0, s5xx = 0, other = 0}
  for _, t in ipairs(threads) do
    for k, _ in pairs(total) do total[k] = total[k] + (t:get("c_" .. k) or 0) end
  end
  io.write(string.format("RESULT %%d %%d %%d %%d %%d %%d %%.1f %%.1f %%.1f %%.1f\n",
    summary.requests, summary.errors.connect + summary.errors.read + summary.errors.write
    + summary.errors.timeout, summary.errors.status, total.s5xx, total.store,
    total.fallback, latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    latency:percentile(99.9) / 1000, latency.max / 1000))
end
"""
# wrk keeps per-thread Lua states: counters reach done() through thread:get, so each
# response also mirrors them into the thread's globals.
WRK_MIRROR = r"""
local respond = response
response = function(status, headers, body)
  respond(status, headers, body)
  c_ok, c_fallback, c_store = counts.ok, counts.fallback, counts.store
  c_s5xx, c_other = counts.s5xx, counts.other
end
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# -- the served model -------------------------------------------------------------------------
def build_run(root: Path, n_items: int = N_ITEMS, hidden: int = HIDDEN) -> Path:
    """A GRU4Rec run (``hidden`` units, ``n_items`` items; default 100 and 40k) and a cooc
    sibling, quickstart layout."""
    rng = np.random.default_rng(0)
    ids = rng.choice(10_000_000, n_items, replace=False) + 1_000_000
    items = pl.DataFrame({"item_idx": pl.Series(range(n_items), dtype=pl.Int32),
                          "item_id": ids.astype(np.int64)})
    (root / "data").mkdir(parents=True)
    items.write_parquet(root / "data" / "items.parquet")
    lengths = rng.integers(2, 8, 6000)
    pop = 1.0 / np.arange(1, n_items + 1) ** 0.8
    lists = [rng.choice(n_items, n, p=pop / pop.sum()).tolist() for n in lengths]
    every = rng.permutation(n_items)  # every item in training, in short sessions
    lists += [every[i:i + 4].tolist() for i in range(0, n_items, 4)]
    base = Sessions.from_lists(lists, n_items)
    train = Sessions(base.items, base.offsets, base.ts, base.users, base.session_ids, n_items,
                     vocab_fingerprint(items))
    model = GRU4Rec(layers=[hidden], n_epochs=1, n_sample=256, sample_cache_size=100_000,
                    progress=False).fit(train)
    model.save(root / "runs" / "gru4rec" / "model")
    Cooccurrence().fit(train).save(root / "runs" / "cooc" / "model")
    return root / "runs" / "gru4rec"


def product_ids(run_dir: Path, vocab: str | None) -> list[str]:
    """The served model's ProductIds (JSON literals), in vocabulary order."""
    from sessionrec.modeldir import find_vocab, model_directory

    model_dir, run = model_directory(run_dir)
    return [json.dumps(p) for p in find_vocab(model_dir, run, vocab).ids]


# -- processes ----------------------------------------------------------------------------------
class Server:
    def __init__(self, run_dir: Path, store: str, workers: int, vocab: str | None) -> None:
        self.port = free_port()
        cmd = [sys.executable, "-m", "sessionrec.cli", "serve", "--model", str(run_dir),
               "--store", store, "--workers", str(workers), "--port", str(self.port),
               "--session-ttl", "1800"]
        if vocab:
            cmd += ["--vocab", vocab]
        env = {k: v for k, v in os.environ.items() if not k.startswith("SESSIONREC_")}
        env["SESSIONREC_STORE_RETRY_S"] = "0.5"
        self._start(cmd, env)

    def _start(self, cmd: list[str], env: dict[str, str] | None = None) -> None:
        """Run ``cmd`` (a server listening on ``self.port``) in its own process group."""
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, start_new_session=True)

    def wait(self, seconds: float = 120.0) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited: {self.proc.stderr.read().decode()[-2000:]}")
            try:
                if httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        raise RuntimeError("server did not become ready")

    def metrics(self) -> str:
        return httpx.get(f"{self.url}/metrics", timeout=5).text

    def stop(self) -> None:
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


class RedisServer:
    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no"], stdout=subprocess.DEVNULL)
        for _ in range(100):
            if subprocess.run(["redis-cli", "-p", str(self.port), "ping"],
                              capture_output=True).stdout.strip() == b"PONG":
                return
            time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(10)
            self.proc = None


def wrk(url: str, products: list[str], seconds: float, connections: int,
        rate: float = 0.0, path: str = "/v1/events", pause_ms: float | None = None) -> dict:
    """Run wrk; ``rate`` > 0 paces the connections to about ``rate`` requests/s in total."""
    if pause_ms is None:
        pause_ms = 1000.0 * connections / rate if rate else 0.0
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as fh:
        fh.write(WRK_SCRIPT % {"products": ",".join(json.dumps(p) for p in products),
                               "sessions": N_SESSIONS, "unknown": UNKNOWN_SHARE,
                               "pause": pause_ms})
        fh.write(WRK_MIRROR)
        script = fh.name
    try:
        target = url if path == "/v1/events" else url + path
        cmd = ["wrk", "-t1", f"-c{connections}", f"-d{int(seconds)}s", "--timeout", "2s",
               "--latency"]
        if path == "/v1/events":
            cmd += ["-s", script]
        out = subprocess.run([*cmd, target], capture_output=True, text=True, check=True).stdout
    finally:
        os.unlink(script)
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    result = {"rps": rps, "seconds": seconds, "connections": connections, "pause_ms": pause_ms}
    line = re.search(r"RESULT (.*)", out)
    if line:
        f = line.group(1).split()
        result.update(requests=int(f[0]), socket_errors=int(f[1]), non_2xx=int(f[2]),
                      s5xx=int(f[3]), store_fallbacks=int(f[4]), other_fallbacks=int(f[5]),
                      p50=float(f[6]), p99=float(f[7]), p999=float(f[8]), max=float(f[9]))
    else:  # plain GET: wrk's own latency table
        def ms(label):
            m = re.search(rf"{label}%\s+([\d.]+)(us|ms|s)", out)
            value = float(m.group(1))
            return value / 1000 if m.group(2) == "us" else value * (
                1000 if m.group(2) == "s" else 1)
        result.update(p50=ms("50"), p99=ms("99"), requests=int(re.search(
            r"(\d+) requests in", out).group(1)))
    return result


def paced(url: str, products: list[str], seconds: float, rate: float) -> dict:
    """A short run measures the latency, the long one subtracts it from the pause."""
    connections = 16
    probe = wrk(url, products, 5, connections, rate)
    pause = max(0.0, 1000.0 * connections / rate - probe["p50"])
    return wrk(url, products, seconds, connections, pause_ms=pause)


# -- in-process component timings ---------------------------------------------------------------
def components(run_dir: Path, redis_url: str, vocab: str | None) -> dict:
    from sessionrec.serving.bundle import load_bundle
    from sessionrec.serving.records import SessionRecord
    from sessionrec.serving.redis_store import RedisStore
    from sessionrec.serving.store import MemoryStore

    torch.set_num_threads(1)
    bundle = load_bundle(run_dir, vocab)
    step = bundle.step
    out = {}

    def clock(fn, n=300):
        fn()
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        return (time.perf_counter() - t0) / n * 1e6

    for b in (1, 8, 32):
        states = np.random.default_rng(0).standard_normal((b, HIDDEN)).astype(np.float32)
        items = np.arange(b, dtype=np.int64)
        exclude = [np.array([i], dtype=np.int64) for i in range(b)]
        out[f"step_b{b}_us"] = clock(lambda s=states, i=items, e=exclude: step.step(
            s, i, 20, e)) / b
    state = torch.zeros((1, HIDDEN))
    with torch.inference_mode():
        scores = bundle.model.scores_from_state(state)
        out["advance_us"] = clock(lambda: bundle.model.advance(state, torch.tensor([1])))
        out["scores_us"] = clock(lambda: bundle.model.scores_from_state(state))
        out["topk_us"] = clock(lambda: torch.topk(scores, 20, dim=1))
    out["fallback_us"] = clock(lambda: bundle.fallback.topk(0, 20))
    out["vocab_us"] = clock(lambda: (bundle.vocab.index_of("1234567"),
                                     bundle.vocab.products(list(range(20)))))
    record = SessionRecord(np.zeros(HIDDEN, np.float32), np.arange(20, dtype=np.int32), 1, 20,
                           None, bundle.model_key, 0.0, 1e12, 1e12)
    out["pack_us"] = clock(lambda: SessionRecord.unpack(record.pack()))

    async def store_round_trips(store) -> float:
        await store.put_session("bench", 0, record)
        n = 500
        t0 = time.perf_counter()
        for _ in range(n):
            got = await store.get_session("bench")
            await store.put_session("bench", got.version, record)
        await store.close()
        return (time.perf_counter() - t0) / n * 1e6

    out["memory_rw_us"] = asyncio.run(store_round_trips(MemoryStore()))
    out["redis_rw_us"] = asyncio.run(store_round_trips(
        RedisStore(redis_url, prefix="bench:", timeout_s=1.0)))
    return out


def server_side_ms(metrics: str) -> float | None:
    """Mean time inside the app (after HTTP parsing) for POST /v1/events."""
    total = re.search(r'sessionrec_request_seconds_sum\{endpoint="/v1/events"\} ([\d.e+-]+)',
                      metrics)
    count = re.search(r'sessionrec_request_seconds_count\{endpoint="/v1/events"\} ([\d.e+-]+)',
                      metrics)
    if not total or not count or float(count.group(1)) == 0:
        return None
    return 1000 * float(total.group(1)) / float(count.group(1))


def batch_mean(metrics: str) -> float | None:
    total = re.search(r"sessionrec_step_batch_size_sum ([\d.e+-]+)", metrics)
    count = re.search(r"sessionrec_step_batch_size_count ([\d.e+-]+)", metrics)
    if not total or not count or float(count.group(1)) == 0:
        return None
    return float(total.group(1)) / float(count.group(1))


# -- scenarios ----------------------------------------------------------------------------------
def scenario(name: str, run_dir: Path, store: str, workers: int, products: list[str],
             duration: float, rate: float, vocab: str | None) -> dict:
    print(f"== {name}", flush=True)
    server = Server(run_dir, store, workers, vocab)
    try:
        server.wait()
        wrk(server.url, products, 3, 8)  # warm-up: first sessions, caches
        row = {"name": name, "store": "memory" if store == "memory" else "redis",
               "workers": workers}
        row["max"] = wrk(server.url, products, 10, 16)
        print(f"   max: {row['max']['rps']:.0f} req/s", flush=True)
        row["paced"] = paced(server.url, products, duration, rate)
        metrics = server.metrics()
        row["app_ms"] = server_side_ms(metrics)
        row["batch"] = batch_mean(metrics)
        p = row["paced"]
        print(f"   paced: {p['rps']:.0f} req/s, p50 {p['p50']:.2f} ms, p99 {p['p99']:.2f} ms, "
              f"5xx {p['s5xx']}, errors {p['socket_errors']}", flush=True)
        if store == "memory" and workers == 1:
            row["healthz"] = wrk(server.url, products, 10, 16, path="/healthz")
        return row
    finally:
        server.stop()


def outage(run_dir: Path, products: list[str], rate: float, vocab: str | None) -> dict:
    """Stop Redis 8 s into a 30 s paced run, start it again at 18 s."""
    print("== Redis outage", flush=True)
    redis = RedisServer()
    redis.start()
    server = Server(run_dir, redis.url, 1, vocab)
    try:
        server.wait()
        result: dict = {}

        def chaos() -> None:
            time.sleep(8)
            redis.stop()
            time.sleep(10)
            redis.start()

        t = threading.Thread(target=chaos)
        t.start()
        result["load"] = wrk(server.url, products, 30, 16, rate)
        t.join()
        after = [httpx.post(f"{server.url}/v1/events", json={
            "session_id": "after", "product_id": json.loads(products[0])}).json()
            for _ in range(5)]
        result["after_ok"] = sum(not a["fallback"] for a in after)
        metrics = server.metrics()
        m = re.search(r'sessionrec_fallbacks_total\{reason="store_unavailable"\} ([\d.e+]+)',
                      metrics)
        result["fallback_metric"] = float(m.group(1)) if m else 0.0
        m = re.findall(r'sessionrec_store_errors_total\{op="\w+"\} ([\d.e+]+)', metrics)
        result["store_errors_metric"] = sum(float(x) for x in m)
        print(f"   {result}", flush=True)
        return result
    finally:
        server.stop()
        redis.stop()


def report(rows: list[dict], comp: dict, out: dict, args, model_desc: str,
           loadavg: tuple[float, float]) -> str:
    lines = [
        f"`python benchmarks/serve.py --duration {args.duration:g} --rate {args.rate:g}` — "
        f"{machine()}. **Other processes shared the CPU cores during the run** (1-minute load "
        f"average {loadavg[0]:.1f} at the start, {loadavg[1]:.1f} at the end, this benchmark's own "
        "processes included), and wrk ran on the same machine: an idle machine gives better "
        "figures.", "",
        f"Model: {model_desc}. Requests: `POST /v1/events` on loopback from `wrk` (1 thread, "
        f"16 connections), {N_SESSIONS:,} sessions, skewed product popularity, "
        f"{UNKNOWN_SHARE:.0%} unknown products (fallback answers). Paced runs offer "
        f"~{args.rate:g} req/s with exponential gaps for {args.duration:g} s; wrk times each "
        "request from send to answer (closed loop, not corrected for coordinated omission: "
        "compare achieved and offered rate).", "",
        "| store | workers | max req/s | paced req/s | p50 ms | p99 ms | p99.9 ms | max ms "
        "| 5xx | socket errors | in-app mean ms | mean batch |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        p = r["paced"]
        app_ms = f"{r['app_ms']:.2f}" if r.get("app_ms") else "n/a (multi-process)"
        batch = f"{r['batch']:.2f}" if r.get("batch") else "n/a"
        lines.append(
            f"| {r['store']} | {r['workers']} | {r['max']['rps']:,.0f} | {p['rps']:,.0f} | "
            f"{p['p50']:.2f} | {p['p99']:.2f} | {p['p999']:.2f} | {p['max']:.1f} | "
            f"{p['s5xx']} | {p['socket_errors']} | {app_ms} | {batch} |")
    health = next((r["healthz"] for r in rows if "healthz" in r), None)
    lines += ["", "Where the time goes (one worker, in-process, single-threaded torch; µs per "
              "request):", "",
              "| part | µs |", "|---|---:|",
              f"| model step, batch 1 (GRU step + scores of all {N_ITEMS:,} items + top-20) | "
              f"{comp['step_b1_us']:.0f} |",
              f"| — of which GRU step / output layer (100 × {N_ITEMS:,}) / top-20 | "
              f"{comp['advance_us']:.0f} / {comp['scores_us']:.0f} / {comp['topk_us']:.0f} |",
              f"| model step per request in a batch of 8 / 32 | {comp['step_b8_us']:.0f} / "
              f"{comp['step_b32_us']:.0f} |",
              f"| state store read + compare-and-set, in-process / Redis (loopback) | "
              f"{comp['memory_rw_us']:.0f} / {comp['redis_rw_us']:.0f} |",
              f"| record pack + unpack / ProductId mapping / co-occurrence fallback | "
              f"{comp['pack_us']:.0f} / {comp['vocab_us']:.0f} / {comp['fallback_us']:.0f} |"]
    if health:
        lines.append(f"| HTTP + framework floor: `GET /healthz` at its maximum of "
                     f"{health['rps']:,.0f} req/s, per request | {1e6 / health['rps']:.0f} |")
    load = out["load"]
    lines += ["", f"Redis outage: a {load['seconds']:g} s paced run (~{args.rate / 2:g} req/s "
              "offered, one worker) with Redis stopped at 8 s and restarted at 18 s: "
              f"{load['requests']:,} requests, **{load['s5xx']} × 5xx**, {load['socket_errors']} "
              f"socket errors, {load['store_fallbacks']:,} answers with `fallback: true` "
              f"(`reason: store_unavailable`; metric `sessionrec_fallbacks_total` "
              f"{out['fallback_metric']:,.0f}, store errors {out['store_errors_metric']:,.0f}); "
              f"after the restart {out['after_ok']}/5 answers came from the model again. "
              f"p99 over the run {load['p99']:.1f} ms."]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="a run directory (default: build one)")
    parser.add_argument("--vocab", default=None)
    parser.add_argument("--duration", type=float, default=60.0, help="seconds per paced run")
    parser.add_argument("--rate", type=float, default=1000.0, help="offered req/s (paced runs)")
    parser.add_argument("--no-doc", action="store_true", help="print, do not write the doc")
    args = parser.parse_args()
    if shutil.which("wrk") is None or shutil.which("redis-server") is None:
        sys.exit("needs wrk and redis-server (apt-get install wrk redis-server)")
    load_start = os.getloadavg()[0]
    tmp = Path(tempfile.mkdtemp(prefix="sessionrec-serve-bench-"))
    try:
        if args.model:
            run_dir = Path(args.model)
            model_desc = f"`{run_dir}`"
        else:
            print("building the benchmark model ...", flush=True)
            run_dir = build_run(tmp)
            model_desc = (f"GRU4Rec, one layer of {HIDDEN} units, {N_ITEMS:,} items (fitted one "
                          "short epoch on random sessions: the shapes matter, not the weights), "
                          "co-occurrence fallback")
        products = product_ids(run_dir, args.vocab)
        redis = RedisServer()
        redis.start()
        try:
            comp = components(run_dir, redis.url, args.vocab)
            print(f"components: {comp}", flush=True)
            rows = [scenario("memory, 1 worker", run_dir, "memory", 1, products, args.duration,
                             args.rate, args.vocab),
                    scenario("redis, 1 worker", run_dir, redis.url, 1, products, args.duration,
                             args.rate, args.vocab),
                    scenario("redis, 2 workers", run_dir, redis.url, 2, products,
                             args.duration, args.rate, args.vocab)]
        finally:
            redis.stop()
        out = outage(run_dir, products, args.rate / 2, args.vocab)
        text = report(rows, comp, out, args, model_desc, (load_start, os.getloadavg()[0]))
        print(text)
        if not args.no_doc:
            update_section("serve", text)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
