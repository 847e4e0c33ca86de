"""Kill a training run's final write again and again; count partial run directories.

A small model (``pop``, 50 items, 200 sessions) is fitted and evaluated once; then, for each
kill, a forked child writes the run (``runs.write_run``) into the same run directory, over
the previous run, and the parent SIGKILLs it at a random moment within the write. Each write
is slowed by a random pause of up to ``--pause`` seconds before each of its files (config,
model, ranks, metrics, the swap), so that kills land in every stage of it. After each kill
the run directory must hold one complete run, the previous or the new one: config.toml,
metrics.json (same dataset name: each write has its own), ranks.parquet and a loadable model.

Forking from one process that imported everything keeps each kill a few milliseconds
(torch and polars stay single-threaded before the fork, so the children cannot inherit a
locked thread pool). Prints one JSON line; exit status 1 when a partial run was found.

    python benchmarks/kill_run_write.py --kills 20
    python benchmarks/kill_run_write.py --kills 20 --in-place   # the old way, for comparison
"""

from __future__ import annotations

import os

os.environ.setdefault("POLARS_MAX_THREADS", "1")

import argparse
import contextlib
import json
import random
import signal
import sys
import tempfile
import time
import tomllib
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from sessionrec import rundir, runs
from sessionrec.data.sessions import Sessions


def tiny_splits(seed: int = 0) -> runs.Splits:
    rng = np.random.default_rng(seed)

    def sessions(n: int) -> Sessions:
        lengths = rng.integers(2, 6, n)
        items = rng.integers(0, 50, int(lengths.sum()))
        offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        return Sessions(items.astype(np.int64), offsets, np.arange(len(items), dtype=np.int64),
                        np.full(n, -1, dtype=np.int64), np.arange(n), 50, "50:kill")

    return runs.Splits(sessions(200), sessions(20), sessions(50), "gen0")


def check_run(run_dir: Path) -> str | None:
    """Why ``run_dir`` is not one complete run (None when it is)."""
    try:
        config = tomllib.loads((run_dir / "config.toml").read_text(encoding="utf-8"))
        metrics = json.loads((run_dir / "metrics.json").read_text(encoding="utf-8"))
        ranks = runs.read_ranks(run_dir)
        model = runs.SessionRecommender.load(run_dir / "model")
        if config["data"]["dataset"] != metrics["dataset"]:
            return (f"config of {config['data']['dataset']} beside metrics of "
                    f"{metrics['dataset']}")
        if ranks.height != metrics["n_predictions"] or model.n_items_ != 50:
            return "ranks or model do not match the metrics"
    except Exception as err:  # any unreadable or missing part is a partial run
        return f"{type(err).__name__}: {str(err)[:200]}"
    return None


def slow(fn, pause: float):
    def wrapped(*args, **kwargs):
        time.sleep(random.uniform(0, pause))
        return fn(*args, **kwargs)

    return wrapped


def child_write(run_dir: Path, cfg, model, splits, result, timing, pause: float,
                seed: int) -> None:
    random.seed(seed)
    runs.write_results = slow(runs.write_results, pause)
    rundir.publish = slow(rundir.publish, pause)
    model.save = slow(model.save, pause)
    runs.pl.DataFrame.write_parquet = slow(runs.pl.DataFrame.write_parquet, pause)
    runs.write_run(run_dir, cfg, model, splits, result, timing)


@contextlib.contextmanager
def in_place(run_dir):
    """The write before issue 24: each file straight into the run directory."""
    Path(run_dir).mkdir(parents=True, exist_ok=True)
    yield Path(run_dir)


def kill_loop(run_dir: Path, kills: int, pause: float, seed: int,
              naive: bool = False) -> dict:
    if naive:
        runs.staged_run = in_place
    torch.set_num_threads(1)
    rng = random.Random(seed)
    splits = tiny_splits()
    cfg = runs.RunConfig(data=runs.DataConfig(dataset="gen0"))
    model = runs.build_model(cfg.model)
    result, timing = runs.fit_evaluate(model, splits, cfg.eval)
    runs.write_run(run_dir, cfg, model, splits, result, timing)  # the first, complete run
    partial, killed_alive, finished, problems = 0, 0, 0, []
    for i in range(1, kills + 1):
        name = f"gen{i}"
        pid = os.fork()
        if pid == 0:  # the child: write run i over run i-1
            try:
                child_write(run_dir, replace(cfg, data=runs.DataConfig(dataset=name)), model,
                            replace(splits, name=name), result, timing, pause, seed + i)
            finally:
                os._exit(0)
        time.sleep(rng.uniform(0, 5 * pause))  # five slowed steps: kills land anywhere
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        _, status = os.waitpid(pid, 0)
        if os.WIFSIGNALED(status):
            killed_alive += 1
        else:
            finished += 1
        why = check_run(run_dir)
        if why is not None:
            partial += 1
            problems.append(f"kill {i}: {why}")
    runs.write_run(run_dir, cfg, model, splits, result, timing)  # cleans up leftovers
    return {"kills": kills, "killed_during_write": killed_alive, "finished_first": finished,
            "partial_run_dirs": partial, "problems": problems[:5],
            "leftovers_after_next_write": len(rundir.leftovers(run_dir)),
            "exchange": rundir._LIBC is not None}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--kills", type=int, default=20)
    ap.add_argument("--pause", type=float, default=0.01, help="max seconds before each step")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--in-place", action="store_true",
                    help="write each file in place (the old way) to show what the check finds")
    ap.add_argument("--out", default=None, help="parent of the run directory (default: temp)")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(dir=args.out) as tmp:
        t0 = time.perf_counter()
        report = kill_loop(Path(tmp) / "run", args.kills, args.pause, args.seed,
                           args.in_place)
        report["mode"] = "in-place" if args.in_place else "staged"
        report["seconds"] = round(time.perf_counter() - t0, 2)
    print(json.dumps(report))
    return 1 if report["partial_run_dirs"] else 0


if __name__ == "__main__":
    sys.exit(main())
