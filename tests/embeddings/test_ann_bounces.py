"""ANN index persistence and fingerprints; the quick-bounce filter; category negatives."""

from __future__ import annotations

import numpy as np
import pytest

from sessionrec.data.sessions import Sessions
from sessionrec.embeddings.ann import (
    build_index,
    calibrate,
    exact_search,
    fingerprint,
    index_for_store,
    index_path,
    load_index,
    recall_at,
    save_index,
    unit_rows,
)
from sessionrec.embeddings.bounces import drop_quick_bounces, dwell_times
from sessionrec.embeddings.metadata import MetadataTokens
from sessionrec.embeddings.metaprod2vec import (
    MetaProd2VecConfig,
    NegativeSampler,
    item_kinds,
    negative_kinds,
)
from sessionrec.errors import DataError


def vectors(n: int = 300, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, 8)).astype(np.float32)


def test_recall_by_hand() -> None:
    assert recall_at(np.array([[1, 2, 3], [4, 5, 6]]), np.array([[3, 2, 9], [7, 8, 9]])) == (
        pytest.approx((2 / 3 + 0) / 2))


def test_index_round_trip_and_another_store_is_refused(tmp_path) -> None:
    v = vectors()
    ann = build_index(v, calibration_queries=50)
    assert ann.meta["calibration_recall"] >= 0.95 and ann.meta["n"] == 300
    path = save_index(tmp_path / "x.ann.npz", ann)
    again = load_index(path, fingerprint(v))
    assert again.ef_search == ann.ef_search
    np.testing.assert_array_equal(again.search(v[:5], 3)[0], ann.search(v[:5], 3)[0])
    with pytest.raises(DataError, match="other vectors"):
        load_index(path, fingerprint(vectors(seed=1)))


def test_index_for_store_rebuilds_when_the_store_changes(tmp_path) -> None:
    store = tmp_path / "store.parquet"
    first = index_for_store(store, vectors(), calibration_queries=50)
    assert index_path(store).is_file()
    same = index_for_store(store, vectors(), calibration_queries=50)
    assert same.meta["fingerprint"] == first.meta["fingerprint"]
    changed = index_for_store(store, vectors(seed=2), calibration_queries=50)
    assert changed.meta["fingerprint"] == fingerprint(vectors(seed=2))


def test_dwell_and_quick_bounces_by_hand() -> None:
    s = Sessions(items=np.array([0, 1, 2, 3, 4]), offsets=np.array([0, 3, 5]),
                 ts=np.array([0, 5, 100, 200, 201]), users=np.array([-1, -1]),
                 session_ids=np.array([7, 8]), n_items=5)
    np.testing.assert_array_equal(dwell_times(s), [5, 95, np.inf, 1, np.inf])
    out, dropped = drop_quick_bounces(s, 10)
    assert dropped == 2  # item 0 (5 s) and item 3 (1 s)
    assert out.items.tolist() == [1, 2, 4] and out.offsets.tolist() == [0, 2, 3]
    out, dropped = drop_quick_bounces(s, 0)
    assert dropped == 0 and out is s


def test_bounce_filter_refuses_data_without_timestamps() -> None:
    s = Sessions(items=np.array([0, 1]), offsets=np.array([0, 2]), ts=np.array([5, 5]),
                 users=np.array([-1]), session_ids=np.array([0]), n_items=2)
    with pytest.raises(DataError, match="timestamps"):
        drop_quick_bounces(s, 3)


def test_category_negatives_stay_in_the_category() -> None:
    # items 0, 2 of type x (token 1), items 1, 3 of type y (token 2); one brand token 0
    tokens = MetadataTokens(("brand", "type"), ("brand:a", "type:x", "type:y"),
                            np.array([[0, 1], [0, 2], [0, 1], [0, 2]]), np.array([0, 1, 1]))
    kinds = item_kinds(tokens, 4, MetaProd2VecConfig(negatives_from="category"))
    assert kinds.tolist() == [0, 1, 0, 1]
    all_kinds = negative_kinds(kinds, tokens)
    assert all_kinds.tolist() == [0, 1, 0, 1, 2, 3, 3]
    sampler = NegativeSampler(np.ones(7), all_kinds)
    import torch

    draws = sampler.sample(torch.tensor([0, 1, 3]), 200, torch.Generator().manual_seed(0))
    assert set(draws[0].tolist()) == {0, 2}
    assert set(draws[1].tolist()) == {1, 3}
    assert set(draws[2].tolist()) == {5, 6}
    assert item_kinds(tokens, 4, MetaProd2VecConfig()).tolist() == [0, 0, 0, 0]


class ThresholdIndex:
    """A stand-in HNSW index: exact answers from ``efSearch`` >= ``threshold``, else the
    rows in reverse order (recall ~0)."""

    def __init__(self, unit: np.ndarray, threshold: int) -> None:
        self.unit, self.threshold = unit, threshold
        self.hnsw = type("Params", (), {"efSearch": 16})()
        self.tried: list[int] = []

    def search(self, queries: np.ndarray, k: int):
        self.tried.append(self.hnsw.efSearch)
        rows, sims = exact_search(self.unit, queries, k)
        if self.hnsw.efSearch < self.threshold:
            rows = (len(self.unit) - 1 - rows)
        return sims, rows


def test_calibration_bisects_between_the_powers_of_two():
    unit = unit_rows(vectors(200))
    index = ThresholdIndex(unit, threshold=100)
    ef, recall = calibrate(index, unit, 0.97, 10, 40, np.random.default_rng(0))
    # 16, 32, 64 miss and 128 reaches the target; then 96 misses, 112 and 104 reach it, and
    # the gap 96..104 is the step (max(8, 64 // 8)): 104 is the smallest value tried that works.
    assert (ef, recall) == (104, 1.0)
    assert list(dict.fromkeys(index.tried)) == [16, 32, 64, 128, 96, 112, 104]
    assert index.hnsw.efSearch == 104


def test_calibration_keeps_16_or_the_cap():
    unit = unit_rows(vectors(200))
    assert calibrate(ThresholdIndex(unit, 1), unit, 0.97, 10, 40,
                     np.random.default_rng(0))[0] == 16
    ef, recall = calibrate(ThresholdIndex(unit, 10**6), unit, 0.97, 10, 40,
                           np.random.default_rng(0), max_ef=64)
    assert ef == 64 and recall < 0.97
