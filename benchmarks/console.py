"""The web console's dashboard on a large experiment log: analysis time and page render.

    python benchmarks/console.py --events 1000000     # updates docs/benchmarks.md ("console")

Builds a cooc run on a synthetic vocabulary (two baseline variants, so nothing heavy is
trained), writes a synthetic event log of about ``--events`` rows
(:mod:`sessionrec.experiments.synthetic_log`) into SQLite, serves the experiment under uvicorn
on 127.0.0.1 and measures (1) the server-side analysis (read the log + ``analyse`` + daily /
cumulative series: what a refresh costs, done in a thread), (2) ``GET /ui/api/experiment``
answered from the cache, and (3) in headless Chromium, navigation start to the dashboard
drawn (``body[data-ready=1]``), the render the issue budgets at < 2 s. The playground's click
-> all strips figure comes from the browser test (``tests/console/test_browser.py``). The
machine is shared: the load average is printed beside every figure.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._report import load_average, machine, update_section

from sessionrec.data.sessions import Sessions
from sessionrec.experiments.config import load_experiment
from sessionrec.experiments.eventlog import open_event_log
from sessionrec.experiments.synthetic_log import synthetic_events, write_log
from sessionrec.models.baselines.cooc import Cooccurrence
from sessionrec.runs import vocab_fingerprint

EVENTS_PER_UNIT = 29.5  # synthetic_events' average with 14 days and active share 0.5


def load() -> str:
    return "load average " + load_average(", ")


def build(folder: Path, n_events: int) -> tuple[Path, str, int]:
    n_items = 500
    items = pl.DataFrame({"item_idx": pl.Series(range(n_items), dtype=pl.Int32),
                          "item_id": [f"p{i}" for i in range(n_items)]})
    (folder / "data").mkdir()
    items.write_parquet(folder / "data" / "items.parquet")
    rng = np.random.default_rng(0)
    lists = [list(rng.integers(0, n_items, rng.integers(2, 6))) for _ in range(2000)]
    base = Sessions.from_lists(lists, n_items)
    train = Sessions(base.items, base.offsets, base.ts, base.users, base.session_ids, n_items,
                     vocab_fingerprint(items))
    Cooccurrence().fit(train).save(folder / "runs" / "cooc" / "model")
    toml = folder / "exp.toml"
    toml.write_text('[experiment]\nname = "bench"\nsalt = "s"\nfallback = "runs/cooc"\n'
                    '[variants.control]\nmodel = "often-bought-together"\nweight = 0.5\n'
                    '[variants.popular]\nmodel = "popular"\nweight = 0.5\n')
    config = load_experiment(toml)
    frame = synthetic_events(config, max(10, int(n_events / EVENTS_PER_UNIT)), days=14,
                             ctr={"popular": 0.055}, seed=0)
    url = f"sqlite:///{(folder / 'events.db').as_posix()}"
    with open_event_log(url) as log:
        write_log(log, frame)
    return toml, url, len(frame)


def measure(toml: Path, url: str) -> dict:
    import httpx
    from tests.console.browser import ServerThread, chromium, wait_for

    from sessionrec.serving.app import create_app
    from sessionrec.serving.settings import ServeSettings
    from sessionrec.serving.store import MemoryStore

    app = create_app(ServeSettings(experiment=str(toml), event_log=url), store=MemoryStore())
    out: dict = {}
    with ServerThread(app) as server:
        t0 = time.perf_counter()
        while httpx.get(server.url + "/ui/api/experiment", timeout=600).json()["status"] != \
                "ready":
            time.sleep(0.5)
        out["first_analysis_s"] = time.perf_counter() - t0
        payload = httpx.get(server.url + "/ui/api/experiment", timeout=60).json()
        out["analysis_s"], out["read_s"] = payload["seconds"], payload["read_seconds"]
        out["load_analysis"] = load()
        t0 = time.perf_counter()
        for _ in range(5):
            httpx.get(server.url + "/ui/api/experiment", timeout=60)
        out["cached_json_ms"] = 1000 * (time.perf_counter() - t0) / 5
        driver = chromium()
        try:
            renders = []
            for _ in range(3):
                driver.get(server.url + "/ui/experiment")
                wait_for(driver, "return document.body.dataset.ready === '1'", 120)
                renders.append(driver.execute_script(
                    "return performance.getEntriesByName('dashboard-drawn')[0].startTime"))
            out["render_ms"] = renders
            out["load_render"] = load()
        finally:
            driver.quit()
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--no-doc", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="sessionrec-console-bench-") as tmp:
        t0 = time.perf_counter()
        toml, url, n = build(Path(tmp), args.events)
        built = time.perf_counter() - t0
        print(f"{n:,} events generated and logged in {built:.0f} s ({load()})", flush=True)
        m = measure(toml, url)
    render = ", ".join(f"{r:.0f}" for r in m["render_ms"])
    rows = [
        (f"server-side analysis (read log {m['read_s']:.1f} s + `analyse` + daily/cumulative "
         "series), in a thread", f"{m['analysis_s']:.1f} s", m["load_analysis"]),
        ("`GET /ui/api/experiment` answered from the cached analysis",
         f"{m['cached_json_ms']:.0f} ms", m["load_analysis"]),
        ("dashboard page: navigation start to everything drawn (headless Chromium, 3 loads)",
         f"{render} ms", m["load_render"]),
    ]
    table = "\n".join(f"| {a} | {b} | {c} |" for a, b, c in rows)
    command = f"python benchmarks/console.py --events {args.events}"
    body = f"""## Web console: experiment dashboard (`{command}`)

{machine()}; CPU only, shared with other sessions. {n:,} logged events (synthetic, 14 days,
two variants), SQLite event log.

| step | time | load |
|---|---:|---|
{table}

The analysis runs when the log has grown and the last one is older than 5 s; pages are answered
from the last result meanwhile, so the render time does not grow with the log, the analysis
does. Playground: click to all four models' strips updated is measured by the browser test
(Performance API), see the README's console section.
"""
    print(body)
    if not args.no_doc:
        update_section("console", body)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
