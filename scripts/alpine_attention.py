"""Seed 001 Fig. 7: ALPINE's attention over a few test users' click histories, with tags.

    python scripts/alpine_attention.py --run runs/kuairand/alpine/seed0 --data runs/kuairand/data

For the first ``--users`` test users with at least ``--min-clicks`` history clicks and a
clicked test exposure, prints (and writes into docs/alpine.md between ``attention`` markers)
the attention weight of every history click when the model scores that test exposure, with the
videos' primary tag and author codes, so one can see whether the weight goes to clicks sharing
the candidate's tag or author.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from sessionrec.batching.behaviours import make_batch, user_rows  # noqa: E402
from sessionrec.data.exposures.dataset import load_exposures  # noqa: E402
from sessionrec.data.exposures.prepare import TEST  # noqa: E402
from sessionrec.models.neural.click import ClickRecommender  # noqa: E402


def section(run: Path, data_dir: Path, users: int, min_clicks: int) -> str:
    import torch

    model = ClickRecommender.load(run / "model")
    data = load_exposures(data_dir)
    author, tag = data.item_features[:, 0], data.item_features[:, 1]
    out = [f"`python scripts/alpine_attention.py --run {run} --data {data_dir}`: attention "
           "of the click branch (eqs. 4–5) over each history click when scoring a clicked "
           "test exposure. Codes are dense ids of the video's author and primary tag.", ""]
    shown = 0
    for u in range(data.n_users):
        rows = user_rows(data, u, TEST)
        clicked = np.flatnonzero(rows.labels == 1)
        if len(rows.click[0]) < min_clicks or not len(clicked):
            continue
        batch = make_batch([rows], data.n_items, model.params.max_len)
        with torch.inference_mode():
            alpha = model.net_.click_attention(batch)[clicked[0]].numpy()
        cand = rows.target_items[clicked[0]]
        out += [f"**User {data.user_ids[u]}**, candidate video {data.item_ids[cand]} (author "
                f"{author[cand]}, tag {tag[cand]}), clicked:", "",
                "| history click | video | author | tag | same author | same tag | α |",
                "|---:|---:|---:|---:|:---:|:---:|---:|"]
        for j, item in enumerate(rows.click[0]):
            out.append(f"| {j + 1} | {data.item_ids[item]} | {author[item]} | {tag[item]} | "
                       f"{'✓' if author[item] == author[cand] else ''} | "
                       f"{'✓' if tag[item] == tag[cand] else ''} | {alpha[j]:.3f} |")
        out.append("")
        shown += 1
        if shown == users:
            break
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, required=True)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--users", type=int, default=3)
    parser.add_argument("--min-clicks", type=int, default=6)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "alpine.md")
    args = parser.parse_args()
    body = section(args.run, args.data, args.users, args.min_clicks)
    text = args.out.read_text(encoding="utf-8")
    block = f"<!-- BEGIN attention -->\n{body.rstrip()}\n<!-- END attention -->"
    pattern = re.compile(r"<!-- BEGIN attention -->.*?<!-- END attention -->", re.S)
    text = pattern.sub(lambda _: block, text) if pattern.search(text) else (
        text.rstrip() + "\n\n## Attention over click histories (Fig. 7)\n\n" + block + "\n")
    args.out.write_text(text, encoding="utf-8")
    print(body)


if __name__ == "__main__":
    main()
