"""Where GRU4Rec's training time goes: each part of a step timed inside real training.

    python benchmarks/gru4rec_profile.py [--config CONFIG] [--epochs 1] [--threads 1]

(default config: configs/yoochoose-100k/gru4rec-official-best.toml)

Trains the config for ``--epochs`` epochs on its dataset (one warm-up fit of a few steps
first: the compiled optimiser's kernels load once per process) with a clock around each part
of the training step, as it runs: gathering the step's item rows (distinct rows, their leaf
copies), the GRU forward (dropout included), the output layer and loss forward, ``backward``
(everything's gradients), the optimiser update (dense GRU weights and item rows) and drawing
negatives. The rest of the measured training time is the walk's bookkeeping (batch indices,
hidden-state resets, Python). The parts do not nest. Writes the table into
docs/benchmarks.md (section ``gru4rec_profile``).
"""

from __future__ import annotations

import argparse
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from _report import load_average, machine, update_section

ROOT = Path(__file__).resolve().parents[1]


def clocked(owner: Any, name: str, part: str, spent: Counter) -> Callable[[], None]:
    """Wrap ``owner.name`` so that its wall time adds to ``spent[part]``; returns the undo."""
    original = getattr(owner, name)

    def wrapper(*args, **kwargs):
        t0 = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            spent[part] += time.perf_counter() - t0

    setattr(owner, name, wrapper)
    return lambda: setattr(owner, name, original)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="configs/yoochoose-100k/gru4rec-official-best.toml")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    import sessionrec.models.gru4rec as gru4rec_module
    from sessionrec.batching.negatives import NegativeSampler
    from sessionrec.cli import prepared_data
    from sessionrec.config import load_config
    from sessionrec.models.item_rows import OutputLoss
    from sessionrec.models.neural.gru4rec_net import GRU4RecNet
    from sessionrec.runs import RunConfig, build_model, load_splits
    from sessionrec.training.row_parallel import RowUpdates

    overrides = [f"model.params.n_epochs={args.epochs}", "model.params.progress=false",
                 f"model.params.threads={args.threads}", "model.params.patience=0"]
    cfg = load_config(RunConfig, ROOT / args.config, overrides)
    splits = load_splits(prepared_data(cfg, ROOT / "runs" / "profile", None))
    warm = load_config(RunConfig, ROOT / args.config, [*overrides, "model.params.max_steps=5"])
    build_model(warm.model).fit(splits.train)

    spent: Counter = Counter()
    parts = [(gru4rec_module, "gather_rows", "gather the step's item rows (distinct rows, leaves)"),
             (GRU4RecNet, "forward", "GRU forward (dropout included)"),
             (OutputLoss, "__call__", "output layer + loss forward"),
             (torch.Tensor, "backward", "backward (all gradients)"),
             (RowUpdates, "apply", "optimiser (dense GRU weights + item rows)"),
             (NegativeSampler, "draw", "drawing negatives (alias method, in blocks)")]
    undo = [clocked(owner, name, part, spent) for owner, name, part in parts]
    load_before = load_average()
    try:
        model = build_model(cfg.model)
        model.fit(splits.train)
    finally:
        for u in undo:
            u()
    stats = model.fit_stats_
    steps, total = stats["steps"], stats["train_seconds"]
    lines = ["| part of one training step | µs per step | share |", "|---|---:|---:|"]
    for _, _, part in parts:
        lines.append(f"| {part} | {spent[part] / steps * 1e6:,.0f} | {spent[part] / total:.0%} |")
    rest = total - sum(spent.values())
    lines.append(f"| rest: walk bookkeeping (batch indices, resets), Python | "
                 f"{rest / steps * 1e6:,.0f} | {rest / total:.0%} |")
    lines.append(f"| **whole step (training seconds / steps)** | **{total / steps * 1e6:,.0f}** "
                 "| 100% |")
    p = model.get_params()
    body = (f"## GRU4Rec: where a training step's time goes\n\nMachine: {machine()}; "
            f"torch threads: {args.threads}. Command: `python benchmarks/gru4rec_profile.py "
            f"--config {args.config} --epochs {args.epochs} --threads {args.threads}`. Config "
            f"`{args.config}` ({splits.train.n_items:,} items, batch {p['batch_size']}, "
            f"n_sample {p['n_sample']}, layers {p['layers']}, loss {p['loss']}); "
            f"{steps:,} steps at {stats['events_per_s']:,.0f} events/s; load average "
            f"{load_before} before, {load_average()} after. Each part is timed inside "
            "training (a clock around its function); the rest is the training time minus "
            "the parts.\n\n" + "\n".join(lines))
    update_section("gru4rec_profile", body)
    print(body)


if __name__ == "__main__":
    main()
