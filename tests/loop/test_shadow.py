"""The live model scored on the candidate's held-out targets, by ProductId."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import polars as pl

from sessionrec.data.sessions import Sessions
from sessionrec.evaluation import EvalResult
from sessionrec.loop.shadow import reencode, score_live
from sessionrec.models.baselines.markov import MarkovChain
from sessionrec.vocab import Vocabulary


def split_frame(sessions: list[list[int]], candidate_ids: list[int]) -> pl.DataFrame:
    rows = [(s, pid, candidate_ids.index(pid), datetime(2024, 1, 2, 0, i, tzinfo=UTC))
            for s, items in enumerate(sessions) for i, pid in enumerate(items)]
    return pl.DataFrame(rows, schema={"session_id": pl.Int64, "item_id": pl.Int64,
                                      "item_idx": pl.Int32, "ts": pl.Datetime("us", "UTC")},
                        orient="row")


def live_vocab(tmp_path, ids: list[int]) -> Vocabulary:
    path = tmp_path / "items.parquet"
    pl.DataFrame({"item_idx": np.arange(len(ids), dtype=np.int32), "item_id": ids}
                 ).write_parquet(path)
    return Vocabulary.read(path)


def test_reencode_drops_the_products_the_live_model_does_not_know(tmp_path):
    vocab = live_vocab(tmp_path, [11, 12, 14])
    out = reencode(split_frame([[10, 11, 12, 13], [14, 11]], [10, 11, 12, 13, 14]), vocab)
    assert out.kept.tolist() == [1, 2, 4, 5]
    assert out.sessions.items.tolist() == [0, 1, 2, 0]
    assert out.sessions.offsets.tolist() == [0, 2, 4]


def test_targets_the_live_model_cannot_rank_are_misses(tmp_path):
    candidate_ids = [10, 11, 12, 13]
    vocab = live_vocab(tmp_path, [11, 12, 14])
    # live: a Markov chain where 11 (index 0) is followed by 12 (index 1), 12 by 14 (index 2)
    live = MarkovChain().fit(Sessions.from_lists([[0, 1, 2], [0, 1]], 3))
    test = split_frame([[10, 11, 12, 13]], candidate_ids)
    train = split_frame([[11, 12], [12, 13]], candidate_ids)
    candidate = EvalResult(
        protocol="next-item", ties="pessimistic", ks=(1, 3), ranks=np.array([1.0, 2.0, 1.0]),
        target_events=np.array([1, 2, 3]), sessions=np.zeros(3, dtype=np.int64),
        positions=np.array([1, 2, 3]), coverage={1: 0.5, 3: 1.0},
        popularity={1: 1.0, 3: 1.0}, skipped_sessions=0, dropped_unknown_targets=0,
        seconds=0.0)
    result, counts = score_live(live, vocab, train, test, candidate)
    # event 1 (11): its prefix [10] holds nothing the live model knows -> miss (rank 3 + 1);
    # event 2 (12) after 11: the chain's top item -> rank 1; event 3 (13): unknown -> miss
    assert result.ranks.tolist() == [4.0, 1.0, 4.0]
    assert counts == {"unknown_targets": 1, "no_known_prefix": 1}
    assert result.target_events.tolist() == [1, 2, 3]
    assert result.metrics()["recall@1"] == 1 / 3
    assert result.metrics()["mrr@3"] == 1 / 3
