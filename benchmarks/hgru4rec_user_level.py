"""Why does (or doesn't) the user level help? HGRU4Rec ablations on a study's prepared data.

    python benchmarks/hgru4rec_user_level.py runs/study-retailrocket [--seeds 0 1 2]

Takes the prepared data and the seed-0 Meta-Prod2Vec store of a ``sessionrec study`` output and
fits HGRU4Rec with and without the user level under several settings: learning rate, dropout
on the user level, user-state propagation (``init`` / ``all`` / ``user_to_output``), frozen or
fine-tuned item vectors. Each setting reports the best validation MRR@10 (what early stopping
and model selection see) and test MRR@20 / Recall@20 (user states rolled through valid first),
and test MRR@20 with the user states zeroed (what the user level adds at test time). Also
reports how much of the test set the user's history could explain: the share of test targets
that the user viewed before (train + valid), and of test transitions (a -> b) that occurred in
the user's own history or anyone's. Writes the "hgru4rec-user-level" section of
docs/results.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import itertools

from _report import update_section
from sessionrec.embeddings.store import load_item_vectors
from sessionrec.evaluation import evaluate
from sessionrec.models.hgru4rec import HGRU4Rec
from sessionrec.runs import load_splits

ROOT = Path(__file__).resolve().parents[1]
BASE = dict(layers=[100], loss="cross-entropy", optimizer="adagrad", learning_rate=0.1,
            batch_size=32, n_sample=512, dropout_p_hidden=0.2, dropout_p_hidden_usr=0.5,
            dropout_p_init=0.5, n_epochs=20, patience=3, progress=False, threads=1,
            constrained_embedding=False, embedding=0, user_layers=[100])
# (label, parameter changes, item vectors: "" one-hot, "frozen", "fine-tune")
SETTINGS = [
    ("one-hot, lr 0.1, user dropout 0.5 (study)", {}, ""),
    ("one-hot, lr 0.05", {"learning_rate": 0.05}, ""),
    ("one-hot, no dropout on the user level", {"dropout_p_hidden_usr": 0.0,
                                               "dropout_p_init": 0.0}, ""),
    ("one-hot, user state joined to every step (all)", {"user_propagation": "all"}, ""),
    ("one-hot, user state to the output layer", {"user_to_output": True}, ""),
    ("item vectors frozen", {}, "frozen"),
    ("item vectors fine-tuned (study)", {}, "fine-tune"),
]


def history_reach(splits) -> dict[str, float]:
    """Shares of test targets / transitions already in the user's (or anyone's) history."""
    seen: dict[int, set] = {}
    pairs: dict[int, set] = {}
    anyone: set = set()
    for part in (splits.train, splits.valid):
        for s in range(part.n_sessions):
            items = part.items[part.offsets[s]:part.offsets[s + 1]].tolist()
            user = int(part.users[s])
            seen.setdefault(user, set()).update(items)
            for a, b in itertools.pairwise(items):
                pairs.setdefault(user, set()).add((a, b))
                anyone.add((a, b))
    test = splits.test
    n = in_history = own = any_pair = 0
    for s in range(test.n_sessions):
        items = test.items[test.offsets[s]:test.offsets[s + 1]].tolist()
        user = int(test.users[s])
        for a, b in itertools.pairwise(items):
            n += 1
            in_history += b in seen.get(user, ())
            own += (a, b) in pairs.get(user, ())
            any_pair += (a, b) in anyone
    return {"test_transitions": n, "target_in_user_history": in_history / max(n, 1),
            "transition_in_user_history": own / max(n, 1),
            "transition_in_any_history": any_pair / max(n, 1)}


def fit_one(splits, params: dict, vectors: torch.Tensor | None, freeze: bool) -> dict:
    model = HGRU4Rec(**params)
    if vectors is not None:
        model.set_pretrained_items(vectors, freeze=freeze)
    model.fit(splits.train, splits.valid)
    model.extend_user_history(splits.valid)
    m = evaluate(model, splits.train, splits.test, ks=(20,)).metrics()
    out = {"valid_mrr@10": model.fit_stats_["history"]["best_score"],
           "test_mrr@20": m["mrr@20"], "test_recall@20": m["recall@20"],
           "epochs": model.fit_stats_["epochs"]}
    if params["user_layers"]:
        model.user_states_ = torch.zeros_like(model.user_states_)
        out["test_mrr@20_zero_users"] = evaluate(model, splits.train, splits.test,
                                                 ks=(20,)).metrics()["mrr@20"]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("study", type=Path, help="a sessionrec study --out directory")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--no-doc", action="store_true", help="print only")
    args = parser.parse_args()
    torch.set_num_threads(1)
    splits = load_splits(args.study / "data")
    store = args.study / "embeddings" / "seed0.parquet"
    vectors = load_item_vectors(store, splits.items) if store.is_file() else None
    reach = history_reach(splits)
    rows = []
    for label, change, item_vectors in SETTINGS:
        if item_vectors and vectors is None:
            continue
        row = {"setting": label}
        for level, users in (("WithUser", [100]), ("OnlySession", [])):
            results = []
            for seed in args.seeds:
                params = {**BASE, **change, "seed": seed, "user_layers": users}
                if not users:
                    params.update(user_propagation="init", user_to_output=False)
                results.append(fit_one(splits, params, vectors if item_vectors else None,
                                       item_vectors == "frozen"))
            row[level] = {k: float(np.mean([r[k] for r in results])) for k in results[0]}
        print(json.dumps(row), flush=True)
        rows.append(row)
    lines = [f"## HGRU4Rec: what the user level adds on `{splits.name}`", "",
             f"`python benchmarks/hgru4rec_user_level.py {args.study.as_posix()}` on "
             f"{platform.system()} {platform.machine()}, {os.cpu_count()} cores, torch 1 "
             f"thread; mean over seeds {args.seeds}. Test = each user's last session.", "",
             f"Of {reach['test_transitions']:,} test predictions, "
             f"{reach['target_in_user_history']:.1%} have a target the user viewed before "
             f"(train + valid), {reach['transition_in_user_history']:.1%} repeat a transition "
             f"(a → b) of the user's own history and {reach['transition_in_any_history']:.1%} "
             "one of anyone's.", "",
             "| Setting | valid MRR@10 WithUser / OnlySession | test MRR@20 WithUser / "
             "OnlySession | test MRR@20 WithUser, user states zeroed | test Recall@20 "
             "WithUser / OnlySession |", "|---|---:|---:|---:|---:|"]
    for row in rows:
        w, o = row["WithUser"], row["OnlySession"]
        lines.append(f"| {row['setting']} | {w['valid_mrr@10']:.4f} / {o['valid_mrr@10']:.4f} "
                     f"| {w['test_mrr@20']:.4f} / {o['test_mrr@20']:.4f} | "
                     f"{w['test_mrr@20_zero_users']:.4f} | {w['test_recall@20']:.4f} / "
                     f"{o['test_recall@20']:.4f} |")
    text = "\n".join(lines) + "\n"
    print(text)
    if not args.no_doc:
        update_section("hgru4rec-user-level", text, ROOT / "docs" / "results.md")


if __name__ == "__main__":
    main()
