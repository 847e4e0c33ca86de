"""Full-ranking evaluation of a session recommender on a test split.

Every prediction ranks the *whole* training catalogue (no sampled negatives). Two protocols:

* ``next-item`` (GRU4Rec): every event after the first of a test session is a target,
  predicted from the events of its session before it;
* ``last-item`` (SR-GNN): only the last event of each session, from all events before it.

Sessions with fewer than two events give no target and are counted as ``skipped_sessions``.
Targets whose item the model does not know (index outside ``[0, n_items)`` of training) cannot
be ranked: they are dropped and counted as ``dropped_unknown_targets``, never silently.
Unknown items inside a prefix are the model's business (see ``models/base.py``).

Scores come from ``model.score_blocks`` (by default ``model.score_next``) in chunks of
``batch_size`` predictions, so memory is bounded by ``batch_size * n_items`` floats whatever the
test size; ranks and top-K lists are computed on row blocks of about 8 MB of each chunk. Models
that score few items per prefix (kNN, rules) or one vector for all (most-popular) yield
:class:`~sessionrec.models.scores.SparseScores` instead, ranked from their listed entries and
one sorted copy of the fill (:mod:`sessionrec.evaluation.sparse_ranks`) with the same ranks.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch

from sessionrec.data.sessions import Sessions
from sessionrec.errors import DataError, NotFittedError, SessionRecError
from sessionrec.evaluation.metrics import (
    RANK_METRICS,
    TieMode,
    check_ties,
    metric_values,
    ranks_from_scores,
)
from sessionrec.evaluation.sparse_ranks import sparse_ranks, sparse_top_k
from sessionrec.evaluation.top_lists import TopLists
from sessionrec.models.base import SessionRecommender
from sessionrec.models.scores import SparseScores
from sessionrec.progress import Progress
from sessionrec.torch_env import torch_threads

logger = logging.getLogger(__name__)

Protocol = Literal["next-item", "last-item"]
PROTOCOLS: tuple[str, ...] = ("next-item", "last-item")
# Scores per row block of the rank and top-K passes (float32: 8 MiB, about an L2/L3 slice).
_BLOCK_ELEMENTS = 1 << 21


@dataclass
class EvalResult:
    """Per-prediction ranks plus the catalogue-level figures of one evaluation.

    Predictions are ordered by their target's event index in the test :class:`Sessions`, so
    two models evaluated on the same split and protocol line up prediction by prediction.

    Attributes:
        ranks: float64 [N] rank of each target (1 = top).
        target_events: int64 [N] global event index of each target in the test split.
        sessions: int64 [N] test-session index of each prediction (cluster for bootstraps).
        positions: int64 [N] events before the target in its session (1 = predicting the
            second event from the first).
        coverage: K -> fraction of catalogue items in at least one top-K list.
        popularity: K -> mean training popularity (count / max count) of recommended items.
    """

    protocol: str
    ties: str
    ks: tuple[int, ...]
    ranks: np.ndarray
    target_events: np.ndarray
    sessions: np.ndarray
    positions: np.ndarray
    coverage: dict[int, float]
    popularity: dict[int, float]
    skipped_sessions: int
    dropped_unknown_targets: int
    seconds: float
    by_position_max: int = 10

    @property
    def n_predictions(self) -> int:
        return len(self.ranks)

    def values(self, metric: str) -> np.ndarray:
        """Per-prediction values of a rank metric such as ``"mrr@20"``: float64 [N]."""
        return metric_values(metric, self.ranks)

    def metrics(self) -> dict[str, float]:
        """Means of every rank metric, coverage and popularity at every K."""
        out: dict[str, float] = {}
        for k in self.ks:
            out.update(_rank_metric_means(self.ranks, (k,)))
            out[f"coverage@{k}"] = float(self.coverage[k])
            out[f"popularity@{k}"] = float(self.popularity[k])
        return out

    def by_position(self) -> dict[str, dict[str, float]]:
        """Rank metrics by target position: ``"1"``, ``"2"``, ..., ``"<by_position_max>+"``.

        Position ``p`` means the target had ``p`` events before it; empty buckets are left out.
        """
        top = self.by_position_max
        out: dict[str, dict[str, float]] = {}
        for p in range(1, top + 1):
            mask = self.positions >= p if p == top else self.positions == p
            n = int(mask.sum())
            if n:
                label = f"{p}+" if p == top else str(p)
                out[label] = {"n": n, **_rank_metric_means(self.ranks[mask], self.ks)}
        return out

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary (the content of ``metrics.json``)."""
        return {
            "protocol": self.protocol,
            "ties": self.ties,
            "n_predictions": self.n_predictions,
            "metrics": self.metrics(),
            "by_position": self.by_position(),
            "skipped_sessions": self.skipped_sessions,
            "dropped_unknown_targets": self.dropped_unknown_targets,
            "seconds": self.seconds,
            "predictions_per_s": self.n_predictions / self.seconds if self.seconds > 0 else None,
        }


def _rank_metric_means(ranks: np.ndarray, ks: Sequence[int]) -> dict[str, float]:
    return {
        f"{name}@{k}": float(fn(ranks, k).mean())
        for k in ks
        for name, fn in RANK_METRICS.items()
    }


def target_events(sessions: Sessions, protocol: Protocol) -> tuple[np.ndarray, int]:
    """Global event indices to predict under ``protocol``, and the number of skipped sessions.

    Returns int64 [n_targets] (increasing) and the count of sessions shorter than two events.
    """
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown protocol {protocol!r}; valid protocols: {', '.join(PROTOCOLS)}")
    lengths = sessions.lengths
    skipped = int((lengths < 2).sum())
    if protocol == "next-item":
        targets = np.flatnonzero(sessions.position_in_session() >= 1)
    else:
        targets = sessions.offsets[1:][lengths >= 2] - 1
    return targets.astype(np.int64), skipped


def validation_mrr(model: SessionRecommender, train: Sessions, valid: Sessions, k: int,
                   batch_size: int = 128) -> float:
    """MRR@k of ``model`` on ``valid`` (next-item, pessimistic ties, full ranking): the figure
    early stopping and best-epoch selection watch."""
    result = evaluate(model, train, valid, ks=(k,), batch_size=batch_size)
    return result.metrics()[f"mrr@{k}"]


def evaluate(
    model: SessionRecommender,
    train: Sessions,
    test: Sessions,
    protocol: Protocol = "next-item",
    ties: TieMode = "pessimistic",
    ks: Sequence[int] = (1, 5, 10, 20),
    batch_size: int = 128,
    by_position_max: int = 10,
    num_threads: int | None = None,
) -> EvalResult:
    """Rank every test target against the full training catalogue.

    Args:
        model: a fitted recommender; its ``score_blocks`` (``score_next``) supplies the scores.
        train: the split the model was fitted on (catalogue size and item popularity).
        test: test sessions in the same item index space as ``train``.
        protocol: ``"next-item"`` or ``"last-item"`` (see the module docstring).
        ties: tie mode of the ranks (see :mod:`sessionrec.evaluation.metrics`).
        ks: cut-offs of the metrics.
        batch_size: predictions scored at once (memory ~ ``batch_size * n_items`` floats).
        by_position_max: last position bucket of :meth:`EvalResult.by_position` (``"10+"``).
        num_threads: torch intra-op threads for the run (restored afterwards); None keeps them.

    Raises:
        DataError: no target is left to predict, or ``train`` and the model disagree on the
            catalogue size.
        NotFittedError: the model is not fitted.
    """
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown protocol {protocol!r}; valid protocols: {', '.join(PROTOCOLS)}")
    check_ties(ties)
    ks = tuple(sorted({int(k) for k in ks}))
    if not ks or ks[0] < 1:
        raise ValueError(f"cut-offs ks must be integers >= 1, got {ks}")
    if int(batch_size) < 1 or int(by_position_max) < 1:
        raise ValueError("batch_size and by_position_max must be at least 1")
    n_items = getattr(model, "n_items_", None)
    if n_items is None:
        raise NotFittedError(f"{type(model).__name__} is not fitted: call fit() or load()")
    if train.n_items != n_items:
        raise DataError(
            f"the model ranks {n_items} items but the training split has {train.n_items}",
            hint="evaluate with the training split the model was fitted on",
        )

    targets, skipped = target_events(test, protocol)
    target_items = test.items[targets]
    known = (target_items >= 0) & (target_items < n_items)
    dropped = int((~known).sum())
    targets = targets[known]
    if len(targets) == 0:
        raise DataError(
            f"the test split gives nothing to predict under the {protocol!r} protocol: "
            f"{test.n_sessions} sessions ({skipped} shorter than two events), "
            f"{dropped} targets with items unknown to the model",
            hint="check that the test split is not empty and shares the training vocabulary",
        )
    if dropped:
        logger.warning("dropped %d of %d targets whose item is unknown to the model",
                       dropped, dropped + len(targets))

    item_of_event = torch.from_numpy(test.items)
    counts = np.bincount(train.items, minlength=n_items).astype(np.float64)
    stats = TopLists(n_items, ks, counts / max(counts.max(), 1.0))
    # Rank and top-K passes run on row blocks of ~8 MB so the second pass reads from cache.
    rows = max(1, _BLOCK_ELEMENTS // n_items)
    chunks: list[np.ndarray] = []
    rank_parts: list[np.ndarray] = []

    start = time.perf_counter()
    bar = Progress(len(targets), f"evaluate {getattr(model, 'name', type(model).__name__)}",
                   "predictions")
    with torch.no_grad(), torch_threads(num_threads), bar:
        for chunk, scores in model.score_blocks(test, targets, batch_size):
            chunk = np.asarray(chunk, dtype=np.int64)
            if tuple(scores.shape) != (len(chunk), n_items):
                raise SessionRecError(
                    f"{type(model).__name__}.score_next (score_blocks) yielded scores of shape "
                    f"{tuple(scores.shape)} for {len(chunk)} targets; expected "
                    f"({len(chunk)}, {n_items})"
                )
            chunks.append(chunk)
            if len(chunk) == 0:
                continue
            if isinstance(scores, SparseScores):
                rank_parts.append(sparse_ranks(scores, test.items[chunk], ties))
                if len(scores.indices) == 0:  # one vector for every row: one top list
                    stats.add_top(sparse_top_k(scores.head(1), stats.k_top), len(scores))
                else:
                    stats.add_top(sparse_top_k(scores, stats.k_top))
                bar.update(len(chunk))
                continue
            tgt = item_of_event[torch.from_numpy(chunk)].to(scores.device)
            step = -(-len(chunk) // -(-len(chunk) // rows))  # equal blocks of <= rows rows
            for lo in range(0, len(chunk), step):
                block = scores[lo : lo + step]
                rank_parts.append(ranks_from_scores(block, tgt[lo : lo + step], ties).cpu().numpy())
                stats.add(block)
            bar.update(len(chunk))
    seconds = time.perf_counter() - start

    yielded = np.concatenate(chunks) if chunks else np.empty(0, dtype=np.int64)
    order = np.argsort(yielded, kind="stable")
    if not np.array_equal(yielded[order], targets):
        raise SessionRecError(
            f"{type(model).__name__}.score_next (score_blocks) did not yield every requested "
            f"target exactly once ({len(yielded)} yielded, {len(targets)} requested)"
        )
    ranks = np.concatenate(rank_parts)[order]
    n = len(ranks)
    result = EvalResult(
        protocol=protocol,
        ties=ties,
        ks=ks,
        ranks=ranks,
        target_events=targets,
        sessions=test.session_of_event()[targets],
        positions=test.position_in_session()[targets],
        coverage=stats.coverage(),
        popularity=stats.mean_popularity(),
        skipped_sessions=skipped,
        dropped_unknown_targets=dropped,
        seconds=seconds,
        by_position_max=int(by_position_max),
    )
    logger.info("evaluated %d predictions (%s, %s ties) in %.1f s", n, protocol, ties, seconds)
    return result
