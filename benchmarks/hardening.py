"""Benchmark: the outside probe of issue 24, re-run against real servers.

* fuzz: invalid-but-parseable JSON (``NaN``, ``Infinity``, ``-Infinity``, ``1e400``, a
  5000-digit integer, 50,000-deep nesting, a 300 kB string, 1000 overflowing floats) in every
  field of every body, and one unknown field, on ``sessionrec serve`` (``/v1/events``,
  ``/admin/reload``) and ``sessionrec serve --experiment`` (``/v1/events`` and the three
  feedback endpoints): the count of 5xx answers, and the longest answer (no echo);
* memory: the worker's RSS idle, and its peak (sampled every 5 ms) while four clients send
  100 MB bodies at once, with ``Content-Length`` and chunked, while a fifth client keeps
  clicking (its slowest answer is reported);
* NaN model: a run whose weights hold NaN is served (the command must refuse to start; how
  often ``/readyz`` answered ready is counted) and hot-reloaded (must be 400);
* kills: ``benchmarks/kill_run_write.py --kills 20`` (partial run directories).

The served model is a small GRU4Rec (2,000 items, 32 units) with its cooc sibling. Figures go
to docs/benchmarks.md (section "hardening") with the load average and the machine.

    python benchmarks/hardening.py          # about a minute
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
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

N_ITEMS = 2000
TOKEN = "bench-token"
POISON = ["NaN", "Infinity", "-Infinity", "1e400", "-1e400", "1" + "0" * 5000,
          "[" * 50_000 + "]" * 50_000, '{"a":' * 30_000 + "1" + "}" * 30_000,
          json.dumps("x" * 300_000), "[" + ",".join(["1e999"] * 1000) + "]"]
BIG = 100 * 2**20


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def build_runs(root: Path) -> Path:
    rng = np.random.default_rng(0)
    items = pl.DataFrame({"item_idx": pl.Series(range(N_ITEMS), dtype=pl.Int32),
                          "item_id": pl.Series(range(1000, 1000 + N_ITEMS), dtype=pl.Int64)})
    (root / "data").mkdir(parents=True)
    items.write_parquet(root / "data" / "items.parquet")
    lists = [rng.integers(0, N_ITEMS, int(n)).tolist() for n in rng.integers(2, 8, 3000)]
    lists += [list(range(i, min(i + 4, N_ITEMS))) for i in range(0, N_ITEMS, 4)]
    base = Sessions.from_lists(lists, N_ITEMS)
    train = Sessions(base.items, base.offsets, base.ts, base.users, base.session_ids, N_ITEMS,
                     vocab_fingerprint(items))
    GRU4Rec(layers=[32], n_epochs=1, n_sample=64, sample_cache_size=10_000,
            progress=False).fit(train).save(root / "runs" / "gru4rec" / "model")
    Cooccurrence().fit(train).save(root / "runs" / "cooc" / "model")
    nan = root / "runs" / "nan"
    shutil.copytree(root / "runs" / "gru4rec", nan)
    state = torch.load(nan / "model" / "weights.pt", weights_only=True)
    name = sorted(k for k in state if k != "popularity_" and state[k].is_floating_point())[0]
    state[name] = torch.full_like(state[name], float("nan"))
    torch.save(state, nan / "model" / "weights.pt")
    (root / "exp.toml").write_text(f"""[experiment]
name = "bench"
salt = "s"
[variants.control]
model = "often-bought-together"
weight = 0.5
[variants.gru]
model = "{(root / 'runs' / 'gru4rec').as_posix()}"
weight = 0.5
""")
    return root / "runs" / "gru4rec"


class Server:
    def __init__(self, args: list[str], env: dict | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        full_env = {k: v for k, v in os.environ.items() if not k.startswith("SESSIONREC_")}
        full_env.update(env or {}, SESSIONREC_ADMIN_TOKEN=TOKEN)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "sessionrec.cli", "serve", *args, "--port", str(self.port)],
            env=full_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)

    def wait(self, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(self.proc.stdout.read().decode())
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise RuntimeError("server did not start")

    def rss_mb(self) -> float:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return float("nan")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


def poisoned(body: dict) -> list[str]:
    out = []
    for field in [*body, "unknown_field"]:
        for literal in POISON:
            out.append(json.dumps({**body, field: "@@"}).replace('"@@"', literal))
    return out


def fuzz(url: str, targets: dict[str, dict], auth: dict | None = None) -> dict:
    codes: dict[int, int] = {}
    longest = 0
    with httpx.Client(timeout=30) as client:
        for path, good in targets.items():
            bodies = poisoned(good) + POISON
            for body in bodies:
                r = client.post(url + path, content=body, headers={
                    "content-type": "application/json", **(auth or {})})
                codes[r.status_code] = codes.get(r.status_code, 0) + 1
                longest = max(longest, len(r.content))
    return {"requests": sum(codes.values()), "codes": codes,
            "5xx": sum(n for c, n in codes.items() if c >= 500), "longest_answer": longest}


def send_big(port: int, chunked: bool, out: list) -> None:
    """POST a 100 MB body; record what came back (the server may close early)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    status = None
    try:
        conn.putrequest("POST", "/v1/events")
        conn.putheader("Content-Type", "application/json")
        if chunked:
            conn.putheader("Transfer-Encoding", "chunked")
        else:
            conn.putheader("Content-Length", str(BIG))
        conn.endheaders()
        block = b"[" + b"1," * (2**19 - 1) + b"1"  # 1 MiB of a JSON array
        for _ in range(BIG // len(block)):
            conn.send(b"%x\r\n%s\r\n" % (len(block), block) if chunked else block)
        if chunked:
            conn.send(b"0\r\n\r\n")
        status = conn.getresponse().status
    except (BrokenPipeError, ConnectionResetError):
        try:
            status = conn.getresponse().status
        except Exception:
            status = "closed"
    except Exception as err:
        status = type(err).__name__
    finally:
        conn.close()
    out.append(status)


def memory(server: Server, chunked: bool) -> dict:
    for i in range(50):  # warm up
        httpx.post(f"{server.url}/v1/events", json={"session_id": f"w{i}", "product_id": 1000})
    time.sleep(0.5)
    idle = server.rss_mb()
    peak = [idle]
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            peak[0] = max(peak[0], server.rss_mb())
            time.sleep(0.005)

    slowest = [0.0]
    alone = [0.0]

    def shop_alone(seconds: float = 2.0) -> None:
        with httpx.Client(timeout=30) as c:
            end = time.perf_counter() + seconds
            i = 0
            while time.perf_counter() < end:
                t0 = time.perf_counter()
                c.post(f"{server.url}/v1/events", json={"session_id": f"a{i}", "product_id": 1001})
                alone[0] = max(alone[0], time.perf_counter() - t0)
                i += 1

    shop_alone()

    def shop() -> None:
        with httpx.Client(timeout=30) as c:
            i = 0
            while not stop.is_set():
                t0 = time.perf_counter()
                c.post(f"{server.url}/v1/events", json={"session_id": f"c{i}", "product_id": 1001})
                slowest[0] = max(slowest[0], time.perf_counter() - t0)
                i += 1

    statuses: list = []
    threads = [threading.Thread(target=send_big, args=(server.port, chunked, statuses))
               for _ in range(4)]
    watchers = [threading.Thread(target=sample), threading.Thread(target=shop)]
    for t in watchers + threads:
        t.start()
    for t in threads:
        t.join()
    time.sleep(0.3)
    stop.set()
    for t in watchers:
        t.join()
    return {"idle_mb": round(idle, 1), "peak_mb": round(peak[0], 1),
            "peak_minus_idle_mb": round(peak[0] - idle, 1), "statuses": statuses,
            "slowest_click_ms": round(slowest[0] * 1000, 1),
            "slowest_click_alone_ms": round(alone[0] * 1000, 1)}


def nan_model(root: Path, live: Server) -> dict:
    server = Server(["--model", str(root / "runs" / "nan")])
    ready, polls = 0, 0
    while server.proc.poll() is None and polls < 600:
        polls += 1
        try:
            if httpx.get(f"{server.url}/readyz", timeout=1).status_code == 200:
                ready += 1
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    code = server.proc.poll()
    message = server.proc.stdout.read().decode().strip().splitlines()[-1:] if code else []
    if code is None:
        server.stop()
    r = httpx.post(f"{live.url}/admin/reload", json={"model": str(root / "runs" / "nan")},
                   headers={"Authorization": f"Bearer {TOKEN}"}, timeout=60)
    def hide(text: str) -> str:  # no machine paths in the doc
        return text.replace(str(root), "$TMP")[:200]

    return {"start_exit_code": code, "start_message": hide(message[0]) if message else "",
            "readyz_ready_answers": ready, "reload_status": r.status_code,
            "reload_detail": hide(r.json().get("detail", ""))}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--kills", type=int, default=20)
    ap.add_argument("--no-doc", action="store_true", help="print only, do not write the doc")
    args = ap.parse_args(argv)
    load = [os.getloadavg()[0]]
    results: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        run = build_runs(root)
        plain = Server(["--model", str(run)])
        exp = Server(["--experiment", str(root / "exp.toml")])
        try:
            plain.wait()
            exp.wait()
            auth = {"Authorization": f"Bearer {TOKEN}"}
            event = {"session_id": "s", "product_id": 1000, "user_id": "u", "k": 2,
                     "timestamp": 1.7e9, "exclude_seen": True}
            results["fuzz_plain"] = fuzz(plain.url, {"/v1/events": event})
            results["fuzz_reload"] = fuzz(plain.url, {"/admin/reload": {
                "model": "a", "vocab": "b", "fallback": "c"}}, auth)
            results["fuzz_experiment"] = fuzz(exp.url, {
                "/v1/events": {**event, "device_id": "d"},
                "/v1/feedback/impressions": {"idempotency_key": "k", "recommendation_id": "r",
                                             "product_ids": [1], "timestamp": 1.7e9},
                "/v1/feedback/clicks": {"idempotency_key": "k", "recommendation_id": "r",
                                        "product_id": 1},
                "/v1/feedback/purchases": {"idempotency_key": "k", "order_id": 1,
                                           "user_id": "u", "product_ids": [1],
                                           "prices": [1.5]}})
            load.append(os.getloadavg()[0])
            results["memory_content_length"] = memory(plain, chunked=False)
            results["memory_chunked"] = memory(plain, chunked=True)
            load.append(os.getloadavg()[0])
            results["nan_model"] = nan_model(root, plain)
        finally:
            plain.stop()
            exp.stop()
    for key, extra in (("kills", []), ("kills_in_place", ["--in-place"])):
        kills = subprocess.run([sys.executable, str(Path(__file__).parent / "kill_run_write.py"),
                                "--kills", str(args.kills), *extra], capture_output=True,
                               text=True)
        results[key] = json.loads(kills.stdout.strip().splitlines()[-1])
    load.append(os.getloadavg()[0])
    results["load_average_1min"] = load
    print(json.dumps(results, indent=1))
    if not args.no_doc:
        update_section("hardening", report(results))
    return 0


def _fuzz_row(name: str, f: dict) -> tuple[str, str]:
    return (f"fuzz, {name}: {f['requests']} invalid-but-parseable bodies",
            f"{f['5xx']} × 5xx; codes {f['codes']}; longest answer {f['longest_answer']} bytes")


def _memory_row(name: str, m: dict) -> tuple[str, str]:
    return (f"4 concurrent 100 MB bodies, {name}",
            f"worker RSS {m['idle_mb']} MB idle, peak {m['peak_mb']} MB "
            f"(+{m['peak_minus_idle_mb']} MB); answers {m['statuses']}; slowest concurrent "
            f"click {m['slowest_click_ms']} ms (without uploads, same run: "
            f"{m['slowest_click_alone_ms']} ms)")


def report(r: dict) -> str:
    n, k, old = r["nan_model"], r["kills"], r["kills_in_place"]
    rows = [_fuzz_row("plain server `/v1/events`", r["fuzz_plain"]),
            _fuzz_row("`/admin/reload` (with the token)", r["fuzz_reload"]),
            _fuzz_row("experiment server (`/v1/events`, 3 feedback endpoints)",
                      r["fuzz_experiment"]),
            _memory_row("with Content-Length", r["memory_content_length"]),
            _memory_row("chunked", r["memory_chunked"]),
            ("NaN-weight model at start-up",
             f"exit code {n['start_exit_code']}, `/readyz` ready {n['readyz_ready_answers']} "
             f"times; \"{n['start_message']}\""),
            ("NaN-weight model by `/admin/reload`",
             f"HTTP {n['reload_status']}: \"{n['reload_detail']}\""),
            (f"{k['kills']} SIGKILLs during a run's final write (`kill_run_write.py`)",
             f"{k['partial_run_dirs']} partial run directories ({k['killed_during_write']} "
             f"killed mid-write, {k['finished_first']} finished first; rename exchange: "
             f"{k['exchange']})"),
            (f"the same {old['kills']} kills with the previous in-place write (`--in-place`)",
             f"{old['partial_run_dirs']} partial run directories, e.g. "
             f"{'; '.join(p.split(': ', 1)[1] for p in old['problems'][:2])}")]
    load = ", ".join(f"{x:.2f}" for x in r["load_average_1min"])
    table = "\n".join(f"| {a} | {b} |" for a, b in rows)
    return f"""## Hardening: the outside probe of issue 24, re-run

`python benchmarks/hardening.py` on {machine()}; CPU only; 1-minute load average at the
start / after the fuzz / after the memory runs / at the end: {load} (a machine shared with
other jobs: latencies are noisy, compare them only within the row; the four uploading
clients run in the benchmark's own process, on the same two cores). One worker
(`sessionrec serve`, in-process store), a GRU4Rec of 2,000 items, body limit 256 KiB (the
default). Paths in the messages are the script's temporary directory.

| Probe | Result |
|---|---|
{table}
"""


if __name__ == "__main__":
    sys.exit(main())
