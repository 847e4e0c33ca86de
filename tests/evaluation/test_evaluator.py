"""The evaluator with fake models whose scores, and hence ranks, are known in advance."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator

import numpy as np
import pytest
import torch

from sessionrec.data.sessions import Sessions
from sessionrec.errors import DataError, NotFittedError, SessionRecError
from sessionrec.evaluation import evaluate, target_events
from sessionrec.models.base import SessionRecommender

N = 5
# Training counts: item 0 three times, item 1 twice, items 2-4 once.
# Popularity = counts / 3 = [1, 2/3, 1/3, 1/3, 1/3].
TRAIN = Sessions.from_lists([[0, 1, 2, 3, 4], [0, 1], [0]], N)
# Items 5 and 6 are unknown to the models (the test split's index space is larger).
TEST = Sessions.from_lists([[0, 1, 2], [3], [4, 0], [1, 6], [2, 5, 3]], N + 2)


class FixedScores(SessionRecommender):
    """Scores every (non-empty) prefix with the same vector."""

    name = "test-fixed-scores"

    def __init__(self, scores: list[float]) -> None:
        super().__init__(scores=list(scores))

    def _fit(self, train: Sessions, valid: Sessions | None) -> None:
        self.vector_ = torch.tensor(self.get_params()["scores"], dtype=torch.float32)

    def _score(self, prefixes: list[np.ndarray], users: np.ndarray | None) -> torch.Tensor:
        return self.vector_.expand(len(prefixes), -1).clone()


class NextIndex(SessionRecommender):
    """Item ``last + 1`` (mod n) scores best, then ``last + 2``, ...

    So a target's rank is ``(target - last - 1) mod n + 1``, with ``last`` the last *known*
    item of the prefix.
    """

    name = "test-next-index"

    def _fit(self, train: Sessions, valid: Sessions | None) -> None:
        pass

    def _score(self, prefixes: list[np.ndarray], users: np.ndarray | None) -> torch.Tensor:
        last = torch.tensor([int(p[-1]) for p in prefixes])
        cols = torch.arange(self.n_items_)
        return -((cols[None, :] - last[:, None] - 1) % self.n_items_).float()


DESCENDING = [0.5, 0.4, 0.3, 0.2, 0.1]  # rank of item i is i + 1
NAN = float("nan")


def fixed(scores: list[float]) -> FixedScores:
    return FixedScores(scores).fit(TRAIN)


def test_next_item_targets_ranks_and_counts() -> None:
    result = evaluate(fixed(DESCENDING), TRAIN, TEST, ks=(1, 2, 5))
    # Targets: session 0 -> items 1, 2; session 1 skipped (one event); session 2 -> item 0;
    # session 3 -> item 6 unknown, dropped; session 4 -> item 5 dropped, item 3.
    assert result.ranks.tolist() == [2.0, 3.0, 1.0, 4.0]
    assert result.target_events.tolist() == [1, 2, 5, 10]
    assert result.sessions.tolist() == [0, 0, 2, 4]
    assert result.positions.tolist() == [1, 2, 1, 2]
    assert result.skipped_sessions == 1
    assert result.dropped_unknown_targets == 2
    m = result.to_dict()["metrics"]
    assert m["recall@1"] == pytest.approx(1 / 4)
    assert m["recall@2"] == pytest.approx(2 / 4)
    assert m["hitrate@5"] == pytest.approx(1.0)
    assert m["mrr@2"] == pytest.approx((1 / 2 + 1) / 4)
    assert m["mrr@5"] == pytest.approx((1 / 2 + 1 / 3 + 1 + 1 / 4) / 4)
    assert m["ndcg@5"] == pytest.approx((1 / math.log2(3) + 1 / 2 + 1 + 1 / math.log2(5)) / 4)


def test_coverage_and_popularity() -> None:
    m = evaluate(fixed(DESCENDING), TRAIN, TEST, ks=(1, 2, 5)).metrics()
    # Every top-K list is items 0..K-1.
    assert m["coverage@1"] == pytest.approx(1 / 5)
    assert m["coverage@2"] == pytest.approx(2 / 5)
    assert m["coverage@5"] == pytest.approx(1.0)
    assert m["popularity@1"] == pytest.approx(1.0)
    assert m["popularity@2"] == pytest.approx((1 + 2 / 3) / 2)
    assert m["popularity@5"] == pytest.approx((1 + 2 / 3 + 1 / 3 + 1 / 3 + 1 / 3) / 5)


def test_coverage_counts_items_of_any_list() -> None:
    # Prefix-dependent top-1: after 0 -> 1, after 1 -> 2, after 4 -> 0, after [2, 5] -> 3.
    m = evaluate(NextIndex().fit(TRAIN), TRAIN, TEST, ks=(1, 20)).metrics()
    assert m["coverage@1"] == pytest.approx(4 / 5)
    assert m["coverage@20"] == pytest.approx(1.0)  # k clipped to the catalogue
    assert m["popularity@20"] == pytest.approx((1 + 2 / 3 + 1 / 3 + 1 / 3 + 1 / 3) / 5)


def test_last_item_protocol() -> None:
    result = evaluate(fixed(DESCENDING), TRAIN, TEST, protocol="last-item", ks=(5,))
    # Last events: item 2 (rank 3), item 0 (rank 1), item 6 dropped, item 3 (rank 4).
    assert result.ranks.tolist() == [3.0, 1.0, 4.0]
    assert result.positions.tolist() == [2, 1, 2]
    assert result.skipped_sessions == 1
    assert result.dropped_unknown_targets == 1
    assert result.n_predictions == 3


def test_prefixes_are_the_events_before_the_target() -> None:
    test = Sessions.from_lists([[0, 1, 2], [3, 1], [2, 5, 3]], N + 2)
    result = evaluate(NextIndex().fit(TRAIN), TRAIN, test, ks=(1,))
    # 0->1: rank 1; 1->2: rank 1; 3->1: (1-3-1) mod 5 + 1 = 3; [2, 5]->3: 5 dropped, rank 1.
    assert result.ranks.tolist() == [1.0, 1.0, 3.0, 1.0]


@pytest.mark.parametrize(
    ("ties", "expected"),
    [("pessimistic", [2.0, 5.0, 2.0]), ("optimistic", [1.0, 3.0, 1.0]),
     ("average", [1.5, 4.0, 1.5])],
)
def test_tie_modes(ties: str, expected: list[float]) -> None:
    test = Sessions.from_lists([[0, 1], [1, 4], [0, 0]], N)
    result = evaluate(fixed([0.5, 0.5, 0.3, 0.3, 0.3]), TRAIN, test, ties=ties)
    assert result.ranks.tolist() == expected
    assert result.to_dict()["ties"] == ties


def test_nan_scores_rank_last_and_are_never_recommended() -> None:
    test = Sessions.from_lists([[0, 1], [0, 2]], N)
    result = evaluate(fixed([NAN, 0.5, 0.4, NAN, 0.1]), TRAIN, test, ks=(1, 2))
    assert result.ranks.tolist() == [1.0, 2.0]
    assert result.metrics()["coverage@2"] == pytest.approx(2 / 5)  # items 1 and 2
    assert result.metrics()["popularity@1"] == pytest.approx(2 / 3)



def test_by_position_buckets() -> None:
    test = Sessions.from_lists([[0, 1, 2, 3, 4], [4, 1]], N)
    result = evaluate(fixed(DESCENDING), TRAIN, test, ks=(1, 4), by_position_max=3)
    # Positions 1, 2, 3, 4 with ranks 2, 3, 4, 5, then position 1 with rank 2.
    by_pos = result.by_position()
    assert list(by_pos) == ["1", "2", "3+"]
    assert by_pos["1"]["n"] == 2 and by_pos["1"]["mrr@4"] == pytest.approx(1 / 2)
    assert by_pos["2"]["n"] == 1 and by_pos["2"]["recall@1"] == 0.0
    assert by_pos["3+"]["n"] == 2
    assert by_pos["3+"]["recall@4"] == pytest.approx(1 / 2)
    assert by_pos["3+"]["mrr@4"] == pytest.approx((1 / 4 + 0) / 2)


def test_to_dict_keys_and_json() -> None:
    result = evaluate(fixed(DESCENDING), TRAIN, TEST, ks=(5, 1))
    d = result.to_dict()
    assert set(d) == {
        "protocol", "ties", "n_predictions", "metrics", "by_position", "skipped_sessions",
        "dropped_unknown_targets", "seconds", "predictions_per_s",
    }
    assert d["protocol"] == "next-item" and d["ties"] == "pessimistic"
    assert d["n_predictions"] == 4
    assert list(d["metrics"]) == [
        f"{m}@{k}" for k in (1, 5)
        for m in ("recall", "mrr", "ndcg", "hitrate", "coverage", "popularity")
    ]
    json.dumps(d, allow_nan=False)


def test_batch_size_does_not_change_results() -> None:
    model = NextIndex().fit(TRAIN)
    small = evaluate(model, TRAIN, TEST, batch_size=1)
    large = evaluate(model, TRAIN, TEST, batch_size=1000)
    np.testing.assert_array_equal(small.ranks, large.ranks)
    assert small.metrics() == pytest.approx(large.metrics())


class Reversed(NextIndex):
    """Yields the chunks in reverse order (the evaluator must not rely on the order)."""

    name = "test-reversed"

    def score_next(
        self, sessions: Sessions, targets: np.ndarray, batch_size: int = 512
    ) -> Iterator[tuple[np.ndarray, torch.Tensor]]:
        return reversed(list(super().score_next(sessions, targets, batch_size)))


def test_results_follow_target_order_whatever_the_chunk_order() -> None:
    expected = evaluate(NextIndex().fit(TRAIN), TRAIN, TEST, batch_size=1)
    got = evaluate(Reversed().fit(TRAIN), TRAIN, TEST, batch_size=1)
    np.testing.assert_array_equal(got.ranks, expected.ranks)
    np.testing.assert_array_equal(got.target_events, expected.target_events)


class DropsATarget(NextIndex):
    name = "test-drops"

    def score_next(self, sessions, targets, batch_size=512):
        yield from super().score_next(sessions, targets[1:], batch_size)


class WrongWidth(NextIndex):
    name = "test-wrong-width"

    def score_next(self, sessions, targets, batch_size=512):
        for chunk, scores in super().score_next(sessions, targets, batch_size):
            yield chunk, scores[:, :-1]


@pytest.mark.parametrize("model_cls", [DropsATarget, WrongWidth])
def test_broken_score_next_is_reported(model_cls: type[NextIndex]) -> None:
    with pytest.raises(SessionRecError, match="score_next"):
        evaluate(model_cls().fit(TRAIN), TRAIN, TEST)


@pytest.mark.parametrize(
    "sessions",
    [[], [[1], [2]], [[0, 5], [6, 6]]],
    ids=["no-sessions", "only-length-1", "only-unknown-targets"],
)
def test_nothing_to_predict_is_a_data_error(sessions: list[list[int]]) -> None:
    test = Sessions.from_lists(sessions, N + 2)
    with pytest.raises(DataError, match="nothing to predict"):
        evaluate(fixed(DESCENDING), TRAIN, test)


def test_unfitted_model_and_wrong_training_split() -> None:
    with pytest.raises(NotFittedError):
        evaluate(FixedScores(DESCENDING), TRAIN, TEST)
    with pytest.raises(DataError, match="ranks 5 items"):
        evaluate(fixed(DESCENDING), Sessions.from_lists([[0, 1]], N + 1), TEST)


def test_bad_arguments() -> None:
    model = fixed(DESCENDING)
    with pytest.raises(ValueError, match="protocol"):
        evaluate(model, TRAIN, TEST, protocol="random")
    with pytest.raises(ValueError, match="tie mode"):
        evaluate(model, TRAIN, TEST, ties="random")
    with pytest.raises(ValueError, match="ks"):
        evaluate(model, TRAIN, TEST, ks=(0, 5))


def test_num_threads_is_restored() -> None:
    before = torch.get_num_threads()
    evaluate(fixed(DESCENDING), TRAIN, TEST, num_threads=1)
    assert torch.get_num_threads() == before


def test_target_events() -> None:
    sessions = Sessions.from_lists([[0, 1, 2], [3], [4, 0]], N)
    targets, skipped = target_events(sessions, "next-item")
    assert targets.tolist() == [1, 2, 5] and skipped == 1
    targets, skipped = target_events(sessions, "last-item")
    assert targets.tolist() == [2, 5] and skipped == 1


def test_row_blocks_do_not_change_results(monkeypatch: pytest.MonkeyPatch) -> None:
    import sessionrec.evaluation.evaluator as evaluator

    model = NextIndex().fit(TRAIN)
    whole = evaluate(model, TRAIN, TEST, ks=(1, 2))
    monkeypatch.setattr(evaluator, "_BLOCK_ELEMENTS", 2 * N)  # two rows per block
    blocked = evaluate(model, TRAIN, TEST, ks=(1, 2))
    np.testing.assert_array_equal(blocked.ranks, whole.ranks)
    assert blocked.metrics() == pytest.approx(whole.metrics())


class EmptyChunks(NextIndex):
    """Yields an empty chunk before each real one."""

    name = "test-empty-chunks"

    def score_next(self, sessions, targets, batch_size=512):
        for chunk, scores in super().score_next(sessions, targets, batch_size):
            yield chunk[:0], scores[:0]
            yield chunk, scores


def test_empty_chunks_are_harmless() -> None:
    expected = evaluate(NextIndex().fit(TRAIN), TRAIN, TEST, batch_size=2)
    got = evaluate(EmptyChunks().fit(TRAIN), TRAIN, TEST, batch_size=2)
    np.testing.assert_array_equal(got.ranks, expected.ranks)
