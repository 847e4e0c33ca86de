"""Fit (and scoring) time of every classical baseline on ~1M synthetic click events.

The events are synthetic but shaped like a shop's logs: item popularity follows a power law
(Zipf exponent 1.0 over the catalogue), session lengths are 1 + Geometric(1/4) (mean 5,
minimum 2), sessions start at random times over 90 days and events follow 30-120 s apart.
Every baseline is fitted with its default hyper-parameters; the scoring column is the time to
score 2,048 prefixes (the first 1-6 events of random sessions) against the full catalogue.

Run from the repository root::

    python benchmarks/baselines_fit.py            # prints the table, updates docs/benchmarks.md
    python benchmarks/baselines_fit.py --no-write --events 100000

The table is written between the markers ``<!-- BEGIN baselines_fit -->`` and
``<!-- END baselines_fit -->`` of docs/benchmarks.md; the rest of the file is kept.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from sessionrec.data.sessions import Sessions
from sessionrec.models.base import all_models

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import DOC, machine, update_section

SECTION = "baselines_fit"
ORDER = ["pop", "spop", "cooc", "ar", "sr", "markov", "iknn", "sknn", "vsknn", "stan"]


def synthetic_sessions(n_events: int, n_items: int, seed: int = 0) -> Sessions:
    """About ``n_events`` events over ``n_items`` items with power-law popularity."""
    rng = np.random.default_rng(seed)
    lengths = 1 + rng.geometric(0.25, size=int(n_events / 5 * 1.1))
    lengths = lengths[: np.searchsorted(np.cumsum(lengths), n_events) + 1]
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    n = int(offsets[-1])
    popularity = 1.0 / np.arange(1, n_items + 1)
    items = rng.permutation(n_items)[
        rng.choice(n_items, size=n, p=popularity / popularity.sum())]
    start = np.sort(rng.integers(0, 90 * 86_400, size=len(lengths)))
    gaps = rng.integers(30, 121, size=n)
    gaps[offsets[:-1]] = 0
    within = np.cumsum(gaps) - np.repeat(np.cumsum(gaps)[offsets[:-1]], lengths)
    ts = np.repeat(start, lengths) + within
    return Sessions(items.astype(np.int64), offsets, ts.astype(np.int64),
                    np.full(len(lengths), -1, dtype=np.int64), np.arange(len(lengths)), n_items)


def sample_prefixes(sessions: Sessions, n: int, seed: int = 1) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    picked = rng.choice(sessions.n_sessions, size=n, replace=False)
    return [sessions.session(s)[: rng.integers(1, 7)] for s in picked]


def run(n_events: int, n_items: int) -> tuple[str, list[tuple[str, float, float]]]:
    train = synthetic_sessions(n_events, n_items)
    prefixes = sample_prefixes(train, 2048)
    models = all_models()
    rows = []
    for name in ORDER:
        model = models[name]()
        t0 = time.perf_counter()
        model.fit(train)
        fit_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        for lo in range(0, len(prefixes), 512):
            model.score(prefixes[lo : lo + 512])
        score_s = time.perf_counter() - t0
        rows.append((name, fit_s, score_s))
        print(f"{name:8s} fit {fit_s:7.2f} s   score 2048 prefixes {score_s:6.2f} s", flush=True)
    data = (f"{train.n_events:,} events, {train.n_sessions:,} sessions, {n_items:,} items "
            f"(mean session length {train.n_events / train.n_sessions:.2f})")
    return data, rows


def render(data: str, rows: list[tuple[str, float, float]], command: str) -> str:
    lines = [
        "## Classical baselines: fit time",
        "",
        f"Data: synthetic, {data}; power-law item popularity. Default hyper-parameters.",
        f"Machine: {machine()}.",
        f"Command: `{command}`",
        "",
        "| model | fit (s) | score 2,048 prefixes (s) |",
        "|---|---:|---:|",
    ]
    lines += [f"| {name} | {fit_s:.2f} | {score_s:.2f} |" for name, fit_s, score_s in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--items", type=int, default=40_000)
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args(argv)
    data, rows = run(args.events, args.items)
    command = " ".join(["python", "benchmarks/baselines_fit.py", *sys.argv[1:]])
    text = render(data, rows, command)
    print(text)
    if not args.no_write:
        update_section(SECTION, text)
        print(f"written to {DOC}")


if __name__ == "__main__":
    main()
