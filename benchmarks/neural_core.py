"""The neural core: data-parallel scaling, and serving models without a recurrent state.

    python benchmarks/neural_core.py [--epochs 3] [--nproc 2] [--rate 500] [--seconds 20]
                                     [--runs runs/bench-neural-core] [--skip-ddp] [--skip-serve]
                                     [--config configs/yoochoose-100k/narm.toml] [--seeds 0]

1. **DDP**: a model (default NARM, configs/yoochoose-100k/narm.toml; ``--config`` another,
   e.g. GRU4Rec's official-best) trained by ``sessionrec train`` with one process and with
   ``--nproc N`` (gloo, same global batch, same epochs, no early stopping), alternately for
   each of ``--seeds``, each evaluated on the test split: Recall@20 / MRR@20, training
   events/s and the scaling efficiency (events/s with N processes / (N × events/s with one)),
   with the means over the seeds. Section ``neural-core`` (NARM) or ``neural-core-<model>``.
2. **Serving** (memory store, one uvicorn worker, loopback): ``POST /v1/events`` at a fixed
   offered rate for V-SKNN, NARM, GCE-GNN and SASRec, all served through the prefix step (the
   session's last items in the state record), beside GRU4Rec (recurrent state) as the baseline
   in the same script. Open loop: requests are scheduled on a fixed clock and latency is
   measured from the scheduled time, so a slow answer delays no later request's clock (no
   coordinated omission).

Figures go to docs/benchmarks.md (sections ``neural-core`` and ``neural-core-serve``) with
the machine and the load average, which matters: this machine is shared.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

from _loadgen import free_port, open_loop_requests
from _report import load_average, machine, update_section

ROOT = Path(__file__).resolve().parents[1]
CLI = [sys.executable, "-m", "sessionrec.cli"]


def train(config: str, out: Path, extra: list[str]) -> dict:
    if not (out / "metrics.json").is_file():
        subprocess.run([*CLI, "train", "--config", config, "--out", str(out), "--overwrite",
                        "--set", "model.params.progress=false", *extra], check=True)
    return json.loads((out / "metrics.json").read_text())


def model_name(config: str) -> str:
    import tomllib

    return tomllib.loads((ROOT / config).read_text(encoding="utf-8"))["model"]["name"]


def ddp_section(args) -> str:
    runs = Path(args.runs)
    name = model_name(args.config)
    common = ["--set", f"model.params.n_epochs={args.epochs}", "--set", "model.params.patience=0"]
    rows, results = [], {1: [], args.nproc: []}
    for seed in args.seeds:
        for nproc in (1, args.nproc):
            before = load_average()
            # the config and the epochs in the name: a run of another config or length is
            # never taken for this one (existing run directories are reused)
            tag = (f"{Path(args.config).stem}-e{args.epochs}-nproc{nproc}"
                   + (f"-seed{seed}" if args.seeds != [0] else ""))
            m = train(args.config, runs / tag,
                      [*common, "--nproc", str(nproc), "--set", f"seed={seed}",
                       "--set", f"model.params.seed={seed}"])
            results[nproc].append(m)
            rows.append(f"| {nproc} | {seed} | {m['metrics']['recall@20']:.4f} | "
                        f"{m['metrics']['mrr@20']:.4f} | {m['train']['epochs']} "
                        f"| {m['train']['events_per_s']:,.0f} "
                        f"| {m['train']['train_seconds']:.0f} | {before} → {load_average()} |")

    def mean(nproc: int, get) -> float:
        return sum(get(m) for m in results[nproc]) / len(results[nproc])

    for nproc in (1, args.nproc):
        rows.append(f"| {nproc} | mean | "
                    f"{mean(nproc, lambda m: m['metrics']['recall@20']):.4f} | "
                    f"{mean(nproc, lambda m: m['metrics']['mrr@20']):.4f} | | "
                    f"{mean(nproc, lambda m: m['train']['events_per_s']):,.0f} | "
                    f"{mean(nproc, lambda m: m['train']['train_seconds']):.0f} | |")
    one = mean(1, lambda m: m["train"]["events_per_s"])
    many = mean(args.nproc, lambda m: m["train"]["events_per_s"])
    d_recall = (mean(args.nproc, lambda m: m["metrics"]["recall@20"])
                - mean(1, lambda m: m["metrics"]["recall@20"]))
    batch = results[1][0]["params"].get("batch_size")
    return "\n".join([
        f"`{name}` on {results[1][0]['dataset']}, `sessionrec train --config {args.config} "
        f"--set model.params.n_epochs={args.epochs} --set model.params.patience=0 "
        f"--set seed=S --set model.params.seed=S [--nproc N]` (global batch {batch}: "
        f"{batch} / N lanes or cases per rank); gloo on the CPU, each rank 1 torch thread; "
        f"seeds {', '.join(map(str, args.seeds))}, one process and N processes alternately.",
        "", "| processes | seed | Recall@20 | MRR@20 | epochs | train events/s | train s | "
        "load avg (1/5/15 min, before → after) |", "|---:|---:|---:|---:|---:|---:|---:|---|",
        *rows, "",
        f"Scaling efficiency with {args.nproc} processes: {many / (args.nproc * one):.2f} "
        f"(mean events/s ×{many / one:.2f}); mean Recall@20 difference {d_recall:+.4f}."])


async def open_loop(host: str, port: int, products: list[str], rate: float,
                    seconds: float, connections: int = 32) -> dict:
    """``POST /v1/events`` clicks on a fixed clock (see :func:`open_loop_requests`)."""
    rng = random.Random(0)
    return await open_loop_requests(
        host, port, "/v1/events",
        lambda i: json.dumps({"session_id": f"s{i % 2000}",
                              "product_id": rng.choice(products)}).encode(),
        rate, seconds, connections)


def serve_one(run_dir: Path, vocab: Path, rate: float, seconds: float) -> dict:
    import polars as pl

    port = free_port()
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([*CLI, "serve", "--model", str(run_dir), "--vocab", str(vocab),
                             "--port", str(port), "--host", "127.0.0.1"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    try:
        import httpx

        for _ in range(600):
            try:
                if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        products = pl.read_parquet(vocab)["item_id"].cast(pl.Utf8).to_list()[:2000]
        asyncio.run(open_loop("127.0.0.1", port, products, rate, 3.0))  # warm-up, discarded
        return asyncio.run(open_loop("127.0.0.1", port, products, rate, seconds))
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def serve_section(args) -> str:
    runs = Path(args.runs)
    narm = runs / "narm-nproc1"
    vocab = narm / "data" / "items.parquet"
    vsknn = runs / "vsknn"
    train("configs/yoochoose-100k/narm.toml", narm,
          ["--set", f"model.params.n_epochs={args.epochs}", "--set", "model.params.patience=0"])
    train("configs/yoochoose-100k/gru4rec-official-best.toml", runs / "gru4rec",
          ["--set", "model.params.n_epochs=1", "--data", str(narm / "data")])
    train("configs/yoochoose-100k/narm.toml", vsknn,
          ["--set", "model.name=vsknn", "--set", "model.params={}", "--data", str(narm / "data")])
    one_epoch = ["--set", "model.params.n_epochs=1", "--set", "model.params.patience=0",
                 "--data", str(narm / "data")]
    # a graph model and a self-attention model (one epoch: serving cost, not accuracy)
    train("configs/yoochoose-100k/gcegnn.toml", runs / "gcegnn", one_epoch)
    train("configs/quickstart/sasrec.toml", runs / "sasrec",
          [*one_epoch, "--set", "data.dataset=yoochoose-100k", "--set", "model.params.max_len=50",
           "--set", "model.params.embedding=50", "--set", "model.params.blocks=2"])
    rows = []
    for name, run in (("GRU4Rec (recurrent state)", runs / "gru4rec"),
                      ("V-SKNN (prefix step)", vsknn), ("NARM (prefix step)", narm),
                      ("GCE-GNN (prefix step, session graph + global graph)", runs / "gcegnn"),
                      ("SASRec (prefix step, 2 self-attention blocks)", runs / "sasrec")):
        before = load_average()
        r = serve_one(run, vocab, args.rate, args.seconds)
        rows.append(f"| {name} | {args.rate:.0f} | {r['achieved']:,.0f} | {r['p50']:.1f} "
                    f"| {r['p99']:.1f} | {r['max']:.0f} | {r['errors']} | {before} → "
                    f"{load_average()} |")
    return "\n".join([
        f"`POST /v1/events` on yoochoose-100k models, memory store, one worker, loopback, "
        f"{args.seconds:.0f} s at a fixed offered rate per model after a 3 s warm-up (open "
        "loop, latency from the scheduled time; random products of the vocabulary, 2,000 "
        "sessions; the load generator runs on the same 2 cores).", "",
        "| model | offered req/s | achieved req/s | p50 ms | p99 ms | max ms | errors | "
        "load avg (before → after) |", "|---|---:|---:|---:|---:|---:|---:|---|", *rows])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--nproc", type=int, default=2)
    parser.add_argument("--rate", type=float, default=500.0)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--runs", default="runs/bench-neural-core")
    parser.add_argument("--skip-ddp", action="store_true")
    parser.add_argument("--skip-serve", action="store_true")
    parser.add_argument("--config", default="configs/yoochoose-100k/narm.toml",
                        help="the model trained with 1 and --nproc processes")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    args = parser.parse_args()
    os.chdir(ROOT)
    header = (f"Measured on {machine()}; `python benchmarks/neural_core.py --epochs "
              f"{args.epochs} --nproc {args.nproc} --rate {args.rate:.0f} --seconds "
              f"{args.seconds:.0f}"
              + (f" --config {args.config}" if args.config != parser.get_default("config")
                 else "")
              + (f" --seeds {' '.join(map(str, args.seeds))}" if args.seeds != [0] else "")
              + "`. The machine was shared with other work: the load average "
              "is given beside each figure.")
    if not args.skip_ddp:
        body = f"## Neural core: data-parallel training\n\n{header}\n\n{ddp_section(args)}"
        print(body)
        name = model_name(args.config)
        update_section("neural-core" if name == "narm" else f"neural-core-{name}", body)
    if not args.skip_serve:
        body = (f"## Neural core: serving models without a recurrent state\n\n{header}\n\n"
                f"{serve_section(args)}")
        print(body)
        update_section("neural-core-serve", body)


if __name__ == "__main__":
    main()
