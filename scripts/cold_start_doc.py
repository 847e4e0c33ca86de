"""Cold start, hide and recover: the cold-start section of docs/results.md.

    python scripts/cold_start_doc.py [--runs runs/p2v] [--share 0.1] [--seed 0]

For each prepared dataset (from ``scripts/p2v_doc.py``'s RUNS/<dataset>/data) a share of the
training products with at least two training clicks is hidden: every click on them is
removed from the training sessions and their metadata is withheld from the token vocabulary
(brand, type and price-class tokens and price classes come from the visible products only).
Meta-Prod2Vec is trained on what is left, and each hidden product gets a vector from its
metadata alone (``average`` of its token vectors, or the ``learned`` ridge projection; see
sessionrec.embeddings.coldstart). Two questions per hidden product, answered among the
visible products only:

* **neighbours**: recall@10 of its 10 nearest products in a model trained on all the data
  (which saw the product);
* **next clicks**: for every training click on it followed by a click on a visible product,
  is that product among its 20 nearest (hit@20)? These clicks were hidden from the model.

Baselines: random visible products, and same-category popularity (the most clicked visible
products of its category, then the most clicked overall). "Full model" is the model that saw
the product (an upper reference for next clicks; its neighbour recall is 1 by definition).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np
import polars as pl
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from _report import update_section
from sessionrec.embeddings.bounces import keep_events
from sessionrec.embeddings.coldstart import catalog_tokens, cold_vectors, fit_projection
from sessionrec.embeddings.metadata import item_metadata_tokens
from sessionrec.embeddings.metaprod2vec import MetaProd2VecConfig, train
from sessionrec.runs import load_splits

ROOT = Path(__file__).resolve().parents[1]
DATASETS = ("rees46", "taobao", "diginetica-srgnn-dev", "yoochoose-100k")
META = ("brand", "category", "price")


def topk_visible(queries: np.ndarray, vectors: np.ndarray, visible: np.ndarray, k: int
                 ) -> np.ndarray:
    """Rows of the ``k`` visible products nearest (cosine) to each query vector."""
    v = torch.nn.functional.normalize(torch.from_numpy(vectors[visible]).float(), dim=1)
    q = torch.nn.functional.normalize(torch.from_numpy(queries).float(), dim=1)
    return visible[torch.topk(q @ v.T, k, dim=1).indices.numpy()]


def category_popularity(hidden: np.ndarray, items: pl.DataFrame, counts: np.ndarray,
                        visible: np.ndarray, k: int) -> np.ndarray:
    cats = items["category"].to_list() if "category" in items.columns else [None] * len(counts)
    by_pop = visible[np.argsort(-counts[visible], kind="stable")]
    groups: dict[object, list[int]] = {}
    for i in by_pop:
        if cats[i] is not None and len(groups.setdefault(cats[i], [])) < k:
            groups[cats[i]].append(int(i))
    out = []
    for h in hidden:
        own = groups.get(cats[h], []) if cats[h] is not None else []
        rest = [int(i) for i in by_pop[: 2 * k] if int(i) not in own]
        out.append((own + rest)[:k])
    return np.asarray(out, dtype=np.int64)


def next_clicks(sessions, hidden_set: set[int], visible_mask: np.ndarray) -> list[tuple]:
    """(hidden product, the visible product clicked right after it) pairs of ``sessions``."""
    same = np.diff(sessions.session_of_event()) == 0
    a, b = sessions.items[:-1][same], sessions.items[1:][same]
    return [(int(x), int(y)) for x, y in zip(a, b, strict=True)
            if int(x) in hidden_set and visible_mask[y] and x != y]


def experiment(data: Path, share: float, seed: int) -> tuple[list[str], dict]:
    splits = load_splits(data)
    items, trn = splits.items.sort("item_idx"), splits.train
    n = trn.n_items
    counts = np.bincount(trn.items, minlength=n)
    rng = np.random.default_rng(seed)
    candidates = np.flatnonzero(counts >= 2)
    hidden = np.sort(rng.choice(candidates, int(share * len(candidates)), replace=False))
    hidden_mask = np.zeros(n, dtype=bool)
    hidden_mask[hidden] = True
    visible = np.flatnonzero(~hidden_mask & (counts > 0))
    cfg = MetaProd2VecConfig(seed=seed)
    if not item_metadata_tokens(items).fields:
        return [], {"no_metadata": True}
    full = train(trn, item_metadata_tokens(items), cfg).item_vectors().numpy()
    meta_cols = [c for c in META if c in items.columns]
    masked = items.with_columns([pl.when(pl.Series(hidden_mask)).then(None).otherwise(
        pl.col(c)).alias(c) for c in meta_cols])
    tokens = item_metadata_tokens(masked)
    reduced = train(keep_events(trn, ~hidden_mask[trn.items]), tokens, cfg)
    cat = catalog_tokens(tokens, masked.filter(~pl.Series(hidden_mask)), items[hidden])
    tv, iv = reduced.token_vectors().numpy(), reduced.item_vectors().numpy()
    projection = fit_projection(tv, tokens.item_tokens[visible], iv[visible])
    k_nb, k_nc = 10, 20
    truth = topk_visible(full[hidden], full, visible, k_nb)
    clicks = next_clicks(trn, set(hidden.tolist()), ~hidden_mask & (counts > 0))
    pos = {int(h): j for j, h in enumerate(hidden)}
    preds = {
        "full model (saw the product)": topk_visible(full[hidden], full, visible, k_nc),
        "cold start: average of token vectors": topk_visible(
            cold_vectors(tv, cat.tokens, "average"), iv, visible, k_nc),
        "cold start: learned projection": topk_visible(
            cold_vectors(tv, cat.tokens, "learned", projection), iv, visible, k_nc),
        "same-category popularity": category_popularity(hidden, items, counts, visible, k_nc),
        "random": np.stack([rng.choice(visible, k_nc, replace=False) for _ in hidden]),
    }
    rows = []
    for name, pred in preds.items():
        nb = np.mean([len(set(p[:k_nb]) & set(t)) / k_nb for p, t in zip(pred, truth,
                                                                          strict=True)])
        hits = np.mean([y in set(pred[pos[h]].tolist()) for h, y in clicks]) if clicks else 0.0
        rows.append(f"| {name} | {nb:.3f} | {hits:.3f} |")
    info = {"hidden": len(hidden), "visible": len(visible), "clicks": len(clicks),
            "covered": int(cat.covered.sum()), "unknown": cat.unknown,
            "fields": list(tokens.fields)}
    return rows, info


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=Path, default=ROOT / "runs" / "p2v")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "results.md")
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS))
    parser.add_argument("--share", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(1)
    parts = ["## Cold start: products placed from their metadata (hide and recover)", "",
             f"Generated by `python scripts/cold_start_doc.py --share {args.share} --seed "
             f"{args.seed}` ({os.cpu_count()} cores shared, CPU). "
             + " ".join(__doc__.split("\n\n")[1:3]).replace("\n", " "), ""]
    for name in args.datasets:
        data = args.runs / name / "data"
        if not (data / "items.parquet").is_file():
            parts += [f"### {name}", "", f"not measured: {data} is missing (run "
                      "scripts/p2v_doc.py first)", ""]
            continue
        rows, info = experiment(data, args.share, args.seed)
        if info.get("no_metadata"):
            parts += [f"### {name}", "", "not applicable: the prepared items have no brand, "
                      "category or price, so there is nothing to place a product from.", ""]
            continue
        unknown = ", ".join(f"{f} {c}" for f, c in info["unknown"].items()) or "none"
        parts += [f"### {name}", "",
                  f"{info['hidden']:,} hidden of {info['hidden'] + info['visible']:,} trained "
                  f"products; metadata fields {', '.join(info['fields']) or 'none'}; "
                  f"{info['covered']:,} hidden products had a usable token; values never seen "
                  f"in the visible products' metadata (mapped to the unknown token or left "
                  f"out): {unknown}; {info['clicks']:,} next clicks.", "",
                  "| method | neighbour recall@10 | next-click hit@20 |", "|---|---:|---:|",
                  *rows, ""]
        print("\n".join(parts[-len(rows) - 6:]), flush=True)
    update_section("cold-start", "\n".join(parts), doc=args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
