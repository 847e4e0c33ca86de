"""The live model and the candidate scored on the same held-out targets.

The held-out split is encoded in the candidate's vocabulary (the window's training items).
For the live model it is re-encoded by ProductId into the live vocabulary; events of items
the live model does not know are dropped from its prefixes (as serving does: an unknown
product leaves the state unchanged). Every candidate target is scored for both models:
a target the live model does not know, or one left without a known item before it, counts
as a miss for the live model (rank = its catalogue size + 1). Full ranking over each
model's own catalogue, pessimistic ties, the same targets: the two metric sets and the
paired bootstrap of their difference line up prediction by prediction.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from sessionrec.data.sessions import Sessions
from sessionrec.evaluation import EvalResult, compare_results, evaluate
from sessionrec.models.base import SessionRecommender
from sessionrec.vocab import USERS_FILE, Vocabulary

log = logging.getLogger(__name__)

KS = (1, 5, 10, 20)


@dataclass(frozen=True)
class Reencoded:
    """A split in the live vocabulary: the kept events, and where they were in the split."""

    sessions: Sessions
    kept: np.ndarray  # int64 [n kept events]: event index in the original split


def live_item_index(frame: pl.DataFrame, vocab: Vocabulary) -> np.ndarray:
    """int64 [rows]: each row's ``item_id`` as a live item index, -1 when unknown."""
    lookup = pl.DataFrame({"key": [str(p) for p in vocab.ids],
                           "live": np.arange(len(vocab), dtype=np.int64)})
    keys = frame.select(key=pl.col("item_id").cast(pl.String))
    joined = keys.join(lookup, on="key", how="left", maintain_order="left")
    return joined["live"].fill_null(-1).to_numpy().astype(np.int64)


def live_user_index(frame: pl.DataFrame, users_file: Path) -> pl.Series | None:
    """Each row's user as a live user index (-1 unknown); None without users on either side."""
    if "user_id" not in frame.columns or not users_file.is_file():
        return None
    users = pl.read_parquet(users_file).select(key=pl.col("user_id").cast(pl.String),
                                               live=pl.col("user_idx").cast(pl.Int64))
    keys = frame.select(key=pl.col("user_id").cast(pl.String))
    return keys.join(users, on="key", how="left", maintain_order="left")["live"].fill_null(-1)


def reencode(frame: pl.DataFrame, vocab: Vocabulary) -> Reencoded:
    """A prepared split (rows in canonical order) in the live vocabulary, unknown items out."""
    live = live_item_index(frame, vocab)
    kept = np.flatnonzero(live >= 0).astype(np.int64)
    out = frame.with_columns(item_idx=pl.Series(live))
    users = live_user_index(frame, Path(vocab.path).parent / USERS_FILE)
    out = out.drop("user_idx", strict=False)
    if users is not None:
        out = out.with_columns(user_idx=users)
    out = out[kept]
    return Reencoded(Sessions.from_frame(out, len(vocab), vocab.fingerprint), kept)


def score_live(model: SessionRecommender, vocab: Vocabulary, train: pl.DataFrame,
               test: pl.DataFrame, candidate: EvalResult, batch_size: int = 256
               ) -> tuple[EvalResult, dict[str, int]]:
    """The live model's result on exactly the candidate's targets (module docstring).

    ``train``/``test``: the window's prepared splits (their frames); ``train`` gives the
    popularity figures in the live vocabulary. Returns the result and the counts of targets
    the live model could not rank (``unknown_targets``, ``no_known_prefix``).
    """
    test_live = reencode(test, vocab)
    train_live = reencode(train, vocab).sessions
    targets = candidate.target_events
    miss = float(len(vocab) + 1)
    ranks = np.full(len(targets), miss)
    coverage = {k: 0.0 for k in candidate.ks}
    popularity = {k: 0.0 for k in candidate.ks}
    seconds = 0.0
    scored = 0
    if test_live.sessions.n_events and (test_live.sessions.lengths >= 2).any():
        result = evaluate(model, train_live, test_live.sessions, protocol=candidate.protocol,
                          ties=candidate.ties, ks=candidate.ks, batch_size=batch_size)
        original = test_live.kept[result.target_events]
        where = np.searchsorted(targets, original)
        found = (where < len(targets)) & (targets[np.minimum(where, len(targets) - 1)]
                                          == original)
        ranks[where[found]] = result.ranks[found]
        coverage, popularity, seconds = result.coverage, result.popularity, result.seconds
        scored = int(found.sum())
    known = np.isin(targets, test_live.kept)
    counts = {"unknown_targets": int((~known).sum()),
              "no_known_prefix": int(known.sum()) - scored}
    live = replace(candidate, ranks=ranks, coverage=coverage, popularity=popularity,
                   seconds=seconds, dropped_unknown_targets=counts["unknown_targets"])
    return live, counts


def comparison(candidate: EvalResult, live: EvalResult, metric: str) -> dict[str, Any]:
    """Both metric sets and the paired bootstrap (by session) of candidate minus live."""
    ci = compare_results(candidate, live, metric)
    return {"metric": metric, "candidate": candidate.metrics(), "live": live.metrics(),
            "difference": ci.to_dict(), "n_predictions": candidate.n_predictions}
