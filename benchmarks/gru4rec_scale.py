"""GRU4Rec at a 43k-item catalogue: training events/s with the official Diginetica parameters,
and the floor the matrix products of a step put under it.

    python benchmarks/gru4rec_scale.py --data DSD_PREPARED [--steps 150] [--threads 1 2]
    python benchmarks/gru4rec_scale.py --data DSD_PREPARED --before COMMIT [--pairs 3]

Trains GRU4Rec with the parameters of ``configs/diginetica/gru4rec-official-best.toml`` (the
official code's Diginetica parameters: 512 units, batch 128, 2,048 negatives, BPR-max) on the
train split of a prepared diginetica-srgnn-dev directory (42,988 items) for ``--steps``
optimiser steps (``max_steps``; the walk's first steps are all full width) with each number of
torch threads, and measures events/s (= steps x batch / training seconds) and CPU seconds.
Then it times, alone, on the same shapes and threads, the work a step cannot avoid whatever
the implementation: the GRU layer's forward and backward (``gru_cell`` on [batch, 512] with
the gradients of its weights and of its input rows) and the output layer's forward and
backward ([batch, 512] x [512, batch + 2,048] and both gradients). The step time over that
floor bounds what removing everything else (gathers, the row-wise optimiser, sampling,
Python) could still gain. Writes docs/benchmarks.md section ``gru4rec-scale``.

``--before COMMIT``: the same bounded training with the code of ``COMMIT`` (checked out into
a temporary git worktree) and with this tree, alternately, ``--pairs`` times, each in its own
process on one thread; writes section ``gru4rec-scale-before-after`` with the ratio of step
times (before / after) per pair.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import commit_checkout, load_average, machine, update_section

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "configs" / "diginetica" / "gru4rec-official-best.toml"


def _fit(data: Path, steps: int, threads: int) -> tuple[object, float, float]:
    """(fitted model, process CPU seconds of the fit, its training wall seconds)."""
    from sessionrec.config import load_config
    from sessionrec.runs import RunConfig, build_model, load_splits

    cfg = load_config(RunConfig, CONFIG, [
        "model.params.n_epochs=1", "model.params.progress=false",
        f"model.params.max_steps={steps}", f"model.params.threads={threads}"])
    splits = load_splits(data)
    model = build_model(cfg.model)
    cpu0 = time.process_time()
    model.fit(splits.train)
    return model, time.process_time() - cpu0, float(model.fit_stats_["train_seconds"])


def train(data: Path, steps: int, threads: int) -> dict:
    """A bounded training run: wall and CPU ms per step (the fit's set-up and first step
    subtracted: a 1-step fit is measured too) and events/s."""
    load = load_average()
    try:  # compiled optimiser kernels (where the code has them): loaded before both fits,
        from sessionrec.training import kernels  # so the subtraction does not remove them

        kernels.warm_up()
    except ImportError:
        pass
    _, cpu_one, wall_one = _fit(data, 1, threads)
    model, cpu, wall = _fit(data, steps, threads)
    p = model.get_params()
    step_cpu = (cpu - cpu_one) / (steps - 1)
    step_wall = (wall - wall_one) / (steps - 1)
    return {"threads": threads, "steps": steps, "step_cpu_ms": 1000 * step_cpu,
            "step_ms": 1000 * step_wall, "events_per_s": int(p["batch_size"]) / step_wall,
            "items": model.n_items_, "params": p, "load": load}


def floor_ms(batch: int, hidden: int, n_sample: int, threads: int, repeats: int) -> dict:
    """Median wall and CPU milliseconds of a step's unavoidable products on these shapes."""
    torch.set_num_threads(threads)
    gen = torch.Generator().manual_seed(0)

    def leaf(*shape: int) -> torch.Tensor:
        return (torch.randn(*shape, generator=gen) * 0.05).requires_grad_(True)

    x, h = leaf(batch, hidden), torch.randn(batch, hidden, generator=gen) * 0.05
    w_ih, w_hh = leaf(3 * hidden, hidden), leaf(3 * hidden, hidden)
    b_ih, b_hh = leaf(3 * hidden), leaf(3 * hidden)
    out, wy = leaf(batch, hidden), leaf(batch + n_sample, hidden)

    def gru() -> None:
        y = torch.gru_cell(x, h, w_ih, w_hh, b_ih, b_hh)
        torch.autograd.grad(y.sum(), [x, w_ih, w_hh, b_ih, b_hh])

    def output() -> None:
        scores = out @ wy.t()  # [batch, batch + n_sample]
        torch.autograd.grad(scores.sum(), [out, wy])

    result = {}
    for name, fn in (("gru", gru), ("output", output)):
        fn()
        walls, cpus = [], []
        for _ in range(repeats):
            w0, c0 = time.perf_counter(), time.process_time()
            fn()
            walls.append(time.perf_counter() - w0)
            cpus.append(time.process_time() - c0)
        result[name] = 1000 * statistics.median(walls)
        result[f"{name}_cpu"] = 1000 * statistics.median(cpus)
    return result


def before_after(args: argparse.Namespace) -> None:
    """This tree against ``args.before``, alternately, one process per run."""
    rows = []
    with commit_checkout(args.before) as old:
        for pair in range(args.pairs):
            runs = {}
            for name, src in (("before", old / "src"), ("after", ROOT / "src")):
                env = {**os.environ, "PYTHONPATH": str(src), "OMP_NUM_THREADS": "1"}
                out = subprocess.run(
                    [sys.executable, __file__, "--data", str(args.data), "--steps",
                     str(args.steps), "--worker"], env=env, check=True,
                    capture_output=True, text=True).stdout
                runs[name] = json.loads(out.strip().splitlines()[-1])
            b, a = runs["before"], runs["after"]
            rows.append((pair, b, a))
            print(f"pair {pair}: before {b['step_cpu_ms']:.1f} ms CPU / {b['step_ms']:.1f} "
                  f"wall, after {a['step_cpu_ms']:.1f} / {a['step_ms']:.1f}", flush=True)
    lines = [
        "## GRU4Rec at 43k items: before and after, side by side", "",
        f"Machine: {machine()}, CPU only, one torch thread per run. Command: `python "
        f"benchmarks/gru4rec_scale.py --data DSD --before {args.before} --steps {args.steps} "
        f"--pairs {args.pairs}`. The same bounded training as section `gru4rec-scale` "
        f"(`configs/diginetica/gru4rec-official-best.toml`, {args.steps} optimiser steps, a "
        "1-step fit subtracted) with the code of the commit before (its own process, from a "
        "git worktree) and with this tree, alternately. Ratio = before step time / after step "
        "time (> 1: faster now); load = 1/5/15-minute load average before each run.", "",
        "| pair | before ms CPU / wall | after ms CPU / wall | speed-up CPU | speed-up wall | "
        "events/s before → after | load before / after |",
        "|---:|---:|---:|---:|---:|---:|---|",
    ]
    for pair, b, a in rows:
        lines.append(f"| {pair} | {b['step_cpu_ms']:.1f} / {b['step_ms']:.1f} | "
                     f"{a['step_cpu_ms']:.1f} / {a['step_ms']:.1f} | "
                     f"{b['step_cpu_ms'] / a['step_cpu_ms']:.2f}x | "
                     f"{b['step_ms'] / a['step_ms']:.2f}x | {b['events_per_s']:,.0f} → "
                     f"{a['events_per_s']:,.0f} | {b['load']} / {a['load']} |")
    text = "\n".join(lines)
    print(text)
    if not args.no_doc:
        update_section("gru4rec-scale-before-after", text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True,
                        help="prepared diginetica-srgnn-dev (sessionrec prepare --source "
                             "diginetica-srgnn --out DIR)")
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--no-doc", action="store_true")
    parser.add_argument("--before", help="commit to compare with, side by side")
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:  # one bounded training, as JSON (run by --before, once per code)
        r = train(args.data, args.steps, 1)
        print(json.dumps({k: r[k] for k in ("step_cpu_ms", "step_ms", "events_per_s",
                                             "load")}))
        return
    if args.before:
        before_after(args)
        return
    rows = []
    for threads in args.threads:
        r = train(args.data, args.steps, threads)
        p = r["params"]
        r.update(floor_ms(int(p["batch_size"]), int(p["layers"][-1]), int(p["n_sample"]),
                          threads, args.repeats))
        r["floor"] = r["gru"] + r["output"]
        r["floor_cpu"] = r["gru_cpu"] + r["output_cpu"]
        rows.append(r)
        print(f"{threads} thread(s): {r['events_per_s']:,.0f} events/s, step {r['step_ms']:.1f} "
              f"ms wall / {r['step_cpu_ms']:.1f} ms CPU, floor {r['floor']:.1f} ms wall / "
              f"{r['floor_cpu']:.1f} ms CPU (load {r['load']})", flush=True)
    first = rows[0]
    p = first["params"]
    lines = [
        "## GRU4Rec at 43k items: official Diginetica parameters, and the matrix-product floor",
        "",
        f"Machine: {machine()}, CPU only, shared (load = 1/5/15-minute load average before "
        f"each run). Command: `python benchmarks/gru4rec_scale.py --data DSD --steps "
        f"{args.steps} --threads {' '.join(map(str, args.threads))}`. GRU4Rec with "
        f"`configs/diginetica/gru4rec-official-best.toml` ({p['layers'][0]} units, batch "
        f"{p['batch_size']}, {p['n_sample']} negatives, {p['loss']}) on the diginetica-srgnn-dev "
        f"train split ({first['items']:,} items), {args.steps} optimiser steps (`max_steps`; a "
        "1-step fit is subtracted, so set-up is not counted). events/s = batch / wall seconds "
        "per step. Floor = the median time of the GRU layer's forward + backward plus the "
        "output layer's forward + backward on the step's shapes, timed alone: what any "
        "implementation of this step computes. CPU ms are the process's CPU time, which the "
        "shared machine's load stretches much less than wall time.",
        "",
        "| torch threads | events/s | step ms wall | step ms CPU | floor ms wall | floor ms CPU "
        "| step / floor (CPU) | load |",
        "|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        lines.append(f"| {r['threads']} | {r['events_per_s']:,.0f} | {r['step_ms']:.1f} | "
                     f"{r['step_cpu_ms']:.1f} | {r['floor']:.1f} | {r['floor_cpu']:.1f} | "
                     f"{r['step_cpu_ms'] / r['floor_cpu']:.2f} | {r['load']} |")
    one = next((r for r in rows if r["threads"] == 1), first)
    bound = one["step_cpu_ms"] / one["floor_cpu"]
    lines += ["", f"On one thread a step costs {one['step_cpu_ms']:.1f} ms of CPU against "
              f"{one['floor_cpu']:.1f} ms for its matrix products alone: removing every other "
              f"cost (gathers, the row-wise optimiser, sampling, dropout, Python) would make "
              f"training at most {bound:.2f}x faster per core on this machine "
              f"({os.cpu_count()} cores)."]
    text = "\n".join(lines)
    print(text)
    if not args.no_doc:
        update_section("gru4rec-scale", text)


if __name__ == "__main__":
    main()
