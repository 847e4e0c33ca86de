"""The ladder's MINI step (seed 000, ch. 3.4): HGRU4Rec must overfit MINI completely.

    python scripts/mini_overfit.py [--out runs/ladder/mini] [--epochs 150] [--events 60000]

Generates a synthetic Galaxus-format log (``sessionrec synth``), subsamples it to the MINI
preset (``sessionrec prepare --preset MINI``: about 20 users, 85 products, 600 events), trains
HGRU4Rec with both levels (session and user GRU) on train and measures, after every epoch, the
training loss and MRR@20 on the *training* sessions, walked as in training: each user's
sessions in time order, each session from the user state after the sessions before it, the
user state rolled on after each (public state API: ``session_start_state``, ``advance``,
``scores_from_state``, ``advance_user``). A model whose gradient reaches both levels drives the
loss towards 0 and the training MRR towards 1. Negatives are the other lanes' targets only
(``n_sample = 0``, the thesis's choice): with 84 items, sampled negatives would often be the
target itself and put a floor under the loss. Writes ``OUT/history.json``, the plot
``docs/ladder/mini_overfit.png`` and the docs/results.md section ``ladder-mini``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from ladder import prepare_preset, synth_raw

from _report import machine, update_section
from sessionrec.data.sessions import Sessions
from sessionrec.evaluation.metrics import mrr_at_k, ranks_from_scores, recall_at_k
from sessionrec.models.hgru4rec import HGRU4Rec
from sessionrec.runs import load_splits

ROOT = Path(__file__).resolve().parents[1]
PARAMS = {"layers": [100], "user_layers": [100], "loss": "cross-entropy", "optimizer": "adam",
          "learning_rate": 0.01, "batch_size": 8, "n_sample": 0, "dropout_p_hidden": 0.0,
          "dropout_p_init": 0.0, "dropout_p_hidden_usr": 0.0, "progress": False, "threads": 1,
          "seed": 0}


@torch.no_grad()
def train_walk_ranks(model: HGRU4Rec, train: Sessions) -> np.ndarray:
    """Ranks of every training target, each session from its user's state at that time."""
    ranks: list[float] = []
    first_ts = train.ts[train.offsets[:-1]]
    for user in np.unique(train.users):
        user_state = torch.zeros((1, model.user_state_size))
        for s in np.flatnonzero(train.users == user)[np.argsort(
                first_ts[train.users == user], kind="stable")]:
            items = torch.from_numpy(train.items[train.offsets[s]:train.offsets[s + 1]])
            state = model.session_start_state(user_state)
            for t in range(len(items)):
                state = model.advance(state, items[t:t + 1])
                if t + 1 < len(items):
                    ranks.append(float(ranks_from_scores(model.scores_from_state(state),
                                                         items[t + 1:t + 2])[0]))
            user_state = model.advance_user(user_state, state)
    return np.asarray(ranks)


class Tracked(HGRU4Rec):
    """HGRU4Rec whose per-epoch validation score is MRR@20 of the training walk."""

    def _validation_mrr(self, train: Sessions, valid: Sessions) -> float:
        return float(mrr_at_k(train_walk_ranks(self, train), 20).mean())


def prepare(out: Path, events: int) -> Path:
    """MINI data in ``out/data`` from a synthetic log of ``events`` in ``out/raw``."""
    return prepare_preset(synth_raw(out / "raw", events), out / "data", "MINI")[0]


def plot(history: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [h["epoch"] for h in history]
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot(epochs, [h["loss"] for h in history], color="tab:red", label="train loss")
    ax.set_xlabel("epoch")
    ax.set_ylabel("train loss (cross-entropy per event)", color="tab:red")
    ax2 = ax.twinx()
    ax2.plot(epochs, [h["valid_score"] for h in history], color="tab:blue",
             label="train MRR@20")
    ax2.set_ylim(0, 1.02)
    ax2.set_ylabel("MRR@20 on the training sessions", color="tab:blue")
    ax.set_title("HGRU4Rec on MINI: overfit check (both levels)")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("runs/ladder/mini"))
    parser.add_argument("--epochs", type=int, default=150)
    parser.add_argument("--events", type=int, default=60000)
    parser.add_argument("--doc", type=Path, default=ROOT / "docs" / "results.md")
    parser.add_argument("--lr", type=float, default=PARAMS["learning_rate"])
    parser.add_argument("--render", action="store_true",
                        help="only rewrite the section and plot from OUT/history.json")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    splits = load_splits(prepare(args.out, args.events))
    train = splits.train
    if args.render:
        saved = json.loads((args.out / "history.json").read_text(encoding="utf-8"))
        PARAMS.update(saved["params"])
        args.epochs, args.lr = saved["epochs"], saved["params"]["learning_rate"]
        history, final, seconds = saved["history"], saved["final_train"], saved["train_seconds"]
        load = saved.get("load", "?")
    else:
        PARAMS["learning_rate"] = args.lr
        model = Tracked(**PARAMS, n_epochs=args.epochs)
        t0 = time.perf_counter()
        model.fit(train, train)  # "validation" on train: the memorisation curve
        seconds = time.perf_counter() - t0
        history = model.fit_stats_["history"]["epochs"]
        ranks = train_walk_ranks(model, train)
        final = {"recall@20": float(recall_at_k(ranks, 20).mean()),
                 "mrr@20": float(mrr_at_k(ranks, 20).mean()),
                 "recall@1": float(recall_at_k(ranks, 1).mean())}
        load = " / ".join(f"{x:.1f}" for x in os.getloadavg())
        (args.out / "history.json").write_text(json.dumps(
            {"params": PARAMS, "epochs": args.epochs, "history": history, "final_train": final,
             "train_seconds": seconds, "load": load}, indent=1), encoding="utf-8")
    plot(history, args.doc.parent / "ladder" / "mini_overfit.png")
    first, last = history[0], history[-1]
    body = "\n".join([
        "## The ladder, MINI: HGRU4Rec overfits (seed 000, ch. 3.4)", "",
        f"`python scripts/mini_overfit.py --epochs {args.epochs} --lr {args.lr}` on "
        f"{machine()}; load average after the run {load} (shared machine), {seconds:.0f} s. "
        "Data: `sessionrec synth "
        f"--events {args.events}` subsampled with `sessionrec prepare --preset MINI`: "
        f"{train.n_events} training events, {train.n_sessions} sessions, {train.n_items} "
        "items. HGRU4Rec with session and user GRU (100 + 100 units), Adam 0.01, "
        f"cross-entropy over the batch's targets only (n_sample = 0), batch "
        f"{PARAMS['batch_size']}, learning rate {PARAMS['learning_rate']}, no dropout; after "
        "each epoch MRR@20 on the training sessions themselves, walked as in training (each "
        "session from its user's state after the sessions before it; full ranking, "
        "pessimistic ties).", "",
        "| epoch | train loss | train MRR@20 |", "|---:|---:|---:|",
        f"| {first['epoch']} | {first['loss']:.4f} | {first['valid_score']:.4f} |",
        *[f"| {h['epoch']} | {h['loss']:.4f} | {h['valid_score']:.4f} |"
          for h in history if h["epoch"] in (10, 25, 50, 100, 200) and h is not last],
        f"| {last['epoch']} | {last['loss']:.4f} | {last['valid_score']:.4f} |", "",
        "With the weights of the epoch of the best training MRR@20 (what fit keeps), on the "
        "training walk: "
        f"Recall@20 {final['recall@20']:.4f}, MRR@20 {final['mrr@20']:.4f}, "
        f"Recall@1 {final['recall@1']:.4f}.", "",
        "![MINI overfit](ladder/mini_overfit.png)"])
    update_section("ladder-mini", body, doc=args.doc)
    print(body)


if __name__ == "__main__":
    main()
