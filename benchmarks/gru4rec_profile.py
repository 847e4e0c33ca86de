"""Where GRU4Rec's training time goes: one step split into its parts, on real shapes.

    python benchmarks/gru4rec_profile.py [--config CONFIG] [--epochs 1] [--threads 0]

(default config: configs/yoochoose-100k/gru4rec-official-best.toml)

Trains the config for ``--epochs`` epochs on its dataset to get the real per-step time and
the real numbers of distinct item rows per step, then times each part of a step alone on the
same shapes, many times: the GRU layer (forward + backward), the output scoring over the
B + n_sample sampled columns with the loss (forward + backward), the optimiser (row updates of
the item matrices + dense GRU weights) and drawing negatives. What is left of the measured step
time is the step's bookkeeping (batch indices, unique/gather of item rows, Python). Writes the
table into docs/benchmarks.md (section ``gru4rec_profile``).
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from _report import machine, timings, update_section
from sessionrec.batching.negatives import NegativeSampler
from sessionrec.training.losses import get_loss
from sessionrec.training.optim import RowOptimizer

ROOT = Path(__file__).resolve().parents[1]


def timed(fn, repeat: int) -> float:
    """Mean wall time of ``repeat`` runs (after one warm-up)."""
    return statistics.fmean(timings(fn, repeat))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="configs/yoochoose-100k/gru4rec-official-best.toml")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--repeat", type=int, default=300)
    args = parser.parse_args()
    from sessionrec.cli import prepared_data
    from sessionrec.config import load_config
    from sessionrec.models.gru4rec import GRU4Rec
    from sessionrec.runs import RunConfig, build_model, load_splits

    if args.threads:
        torch.set_num_threads(args.threads)
    cfg = load_config(RunConfig, ROOT / args.config,
                      [f"model.params.n_epochs={args.epochs}", "model.params.progress=false"])
    work = ROOT / "runs" / "profile"
    splits = load_splits(prepared_data(cfg, work, None))
    model: GRU4Rec = build_model(cfg.model)  # type: ignore[assignment]
    model.fit(splits.train)
    p = model.get_params()
    stats = model.fit_stats_
    b, s, h = int(p["batch_size"]), int(p["n_sample"]), int(p["layers"][-1])
    n_items = splits.train.n_items
    pairs = (stats["trainable_events"] - (splits.train.n_sessions - stats["skipped_sessions"]))
    steps = pairs * stats["epochs"] / b  # full-width steps (the narrowing tail is short)
    step_s = (stats["train_seconds"] - stats["sampler_seconds"]) / steps
    sample_s = stats["sampler_seconds"] / steps

    counts = np.bincount(splits.train.items, minlength=n_items)
    sampler = NegativeSampler(counts, s, float(p["sample_alpha"]), seed=1)
    cols = torch.cat([torch.from_numpy(splits.train.items[:b]), sampler.draw()])
    rows = torch.unique(torch.cat([torch.from_numpy(splits.train.items[b:2 * b]), cols]))
    torch.set_flush_denormal(True)
    w_ih = torch.randn(3 * h, h, requires_grad=True)
    w_hh = torch.randn(3 * h, h, requires_grad=True)
    b_ih = torch.zeros(3 * h, requires_grad=True)
    b_hh = torch.zeros(3 * h, requires_grad=True)
    x, hid = torch.randn(b, h) * 0.1, torch.randn(b, h) * 0.1

    def gru() -> None:
        out = torch.gru_cell(x, hid, w_ih, w_hh, b_ih, b_hh)
        out = F.dropout(out, float(p["dropout_p_hidden"]), True)
        torch.autograd.grad(out.sum(), [w_ih, w_hh, b_ih, b_hh])

    wy = (torch.randn(len(cols), h) * 0.1).requires_grad_(True)
    by = torch.zeros(len(cols), 1, requires_grad=True)
    xo = (torch.randn(b, h) * 0.1).requires_grad_(True)
    loss_fn = get_loss(p["loss"], p["bpreg"], p["elu_param"], p["logq"])
    log_q = torch.rand(len(cols))

    def output() -> None:
        scores = torch.addmm(by.view(1, -1), xo, wy.t())
        torch.autograd.grad(loss_fn(scores, log_q) / b, [xo, wy, by])

    big = {"Wy": torch.randn(n_items, h), "By": torch.zeros(n_items, 1),
           **{k: torch.randn(3 * h, h) for k in ("w_ih", "w_hh")},
           **{k: torch.zeros(3 * h) for k in ("b_ih", "b_hh")}}
    opt = RowOptimizer(big, p["optimizer"], p["learning_rate"], p["momentum"])
    g_rows, g_b = torch.randn(len(rows), h), torch.randn(len(rows), 1)

    def optimise() -> None:
        opt.step_rows("Wy", rows, g_rows)
        opt.step_rows("By", rows, g_b)
        for k in ("w_ih", "w_hh", "b_ih", "b_hh"):
            opt.step_dense(k, big[k])

    parts = {"GRU layer (forward + backward)": timed(gru, args.repeat),
             f"output scoring over {b}+{s} columns + loss (forward + backward)":
                 timed(output, args.repeat),
             f"optimiser ({len(rows):,} item rows + dense GRU weights)": timed(optimise,
                                                                                args.repeat)}
    total = step_s + sample_s
    lines = ["| part of one training step | µs | share |", "|---|---:|---:|"]
    for name, sec in parts.items():
        lines.append(f"| {name} | {sec * 1e6:,.0f} | {sec / total:.0%} |")
    lines.append(f"| drawing negatives (alias method, in blocks) | {sample_s * 1e6:,.0f} | "
                 f"{sample_s / total:.0%} |")
    rest = total - sum(parts.values()) - sample_s
    lines.append(f"| rest: batch indices, unique + gather of item rows, Python | "
                 f"{rest * 1e6:,.0f} | {rest / total:.0%} |")
    lines.append(f"| **whole step (measured in training)** | **{total * 1e6:,.0f}** | 100% |")
    body = (f"## GRU4Rec: where a training step's time goes\n\nMachine: {machine()}; "
            f"torch threads: {torch.get_num_threads()}. Command: `python "
            f"benchmarks/gru4rec_profile.py --config {args.config} --epochs {args.epochs}`. "
            f"Config `{args.config}` ({n_items:,} items, batch {b}, n_sample {s}, "
            f"hidden {h}); training ran at {stats['events_per_s']:,.0f} events/s. Each part "
            "is timed alone on the step's shapes; the rest is the measured step minus the "
            "parts.\n\n" + "\n".join(lines))
    update_section("gru4rec_profile", body)
    print(body)


if __name__ == "__main__":
    main()
