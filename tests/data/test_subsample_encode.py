from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from sessionrec.data.encode import (
    check_encoded,
    first_appearance_index,
    item_metadata_from_events,
    item_vocab,
    user_vocab,
)
from sessionrec.data.filter import EventCodes
from sessionrec.data.split import TRAIN
from sessionrec.data.subsample import (
    PRESETS,
    preset,
    subsample,
    weighted_sample_without_replacement,
)
from sessionrec.errors import ConfigError, DataError


def test_presets_match_thesis_table():
    assert (PRESETS["MINI"].users, PRESETS["MINI"].items) == (23, 161)
    assert (PRESETS["MIDI"].users, PRESETS["MIDI"].items) == (15_242, 42_103)
    assert PRESETS["MAXI"].users is None and preset("maxi").items is None
    with pytest.raises(ConfigError, match="MINI"):
        preset("HUGE")


def test_weighted_sampling_prefers_heavy_items_and_never_zero_weight():
    rng = np.random.default_rng(0)
    weights = np.array([1000.0, 1.0, 0.0, 1.0])
    hits = np.zeros(4)
    for _ in range(200):
        hits[weighted_sample_without_replacement(weights, 2, rng)] += 1
    assert hits[0] == 200  # the heavy item is (practically) always drawn
    assert hits[2] == 0  # zero weight is never drawn while positive weights remain
    assert sorted(weighted_sample_without_replacement(weights, 9, rng)) == [0, 1, 2, 3]


def make_codes():
    sessions, users = [], []
    for user in range(20):
        for s in range(3):
            sessions.append([(user + s + k) % 8 for k in range(3)])
            users.append(user)
    session = np.repeat(np.arange(len(sessions)), 3)
    item = np.array([i for s in sessions for i in s])
    return EventCodes(session, item, np.array(users), len(sessions), 8)


def test_subsample_is_deterministic_and_respects_sizes():
    codes = make_codes()
    alive = np.ones(len(codes.item), dtype=bool)
    labels = np.full(codes.n_sessions, TRAIN, dtype=np.int8)
    args = dict(n_users=5, n_items=6, min_session_length=2, min_user_sessions=2, seed=3)
    a = subsample(codes, alive, labels, **args)
    b = subsample(codes, alive, labels, **args)
    assert (a == b).all() and a.any()
    users = codes.session_user[codes.session[a]]
    assert len(np.unique(users)) <= 5 and len(np.unique(codes.item[a])) <= 6
    assert np.bincount(codes.session[a])[np.unique(codes.session[a])].min() >= 2
    assert not (subsample(codes, alive, labels, **{**args, "seed": 4}) == a).all()


def test_first_appearance_index():
    assert first_appearance_index(np.array([3, 1, 3, 0]), 5).tolist() == [2, 1, -1, 0, -1]


def test_item_vocab_from_train_in_first_appearance_order():
    item_ids = pl.Series([10, 20, 30])  # codes 0, 1, 2
    meta = pl.DataFrame({"item_id": [10, 20, 30], "brand": ["a", None, "c"]})
    vocab, index = item_vocab(item_ids, np.array([2, 0, 2, 1]), meta)
    assert vocab.rows() == [(0, 30, 2, "c"), (1, 10, 1, "a"), (2, 20, 1, None)]
    assert vocab.schema["item_idx"] == pl.Int32
    assert index.tolist() == [1, 2, 0]


def test_unknown_items_are_refused():
    with pytest.raises(DataError, match="outside the training vocabulary"):
        check_encoded(np.array([0, -1]))


def test_user_vocab_by_first_appearance():
    table, index = user_vocab(pl.Series([3, 5, 7]), np.array([2, 2, 0, 2]))
    assert table.rows() == [(0, 7), (1, 3)]
    assert index.tolist() == [1, -1, 0]


def test_metadata_from_events_takes_first_non_null(make_events):
    df = make_events([(0, 1, 1, 0), (0, 1, 1, 1)]).with_columns(
        brand=pl.Series([None, "acme"]), price=pl.Series([2.0, 3.0]))
    assert item_metadata_from_events(df).rows() == [(1, "acme", 2.0)]
    assert item_metadata_from_events(df.drop("brand", "price")) is None


def test_lookup_chains_tables_block_by_block_with_an_offset(monkeypatch):
    import numpy as np

    from sessionrec.data import encode

    monkeypatch.setattr(encode, "BLOCK", 2)  # several blocks for five keys
    keys = np.array([12, 10, 11, 12, 10])
    first = np.array([2, 0, 1])  # indexed by key - 10
    second = np.array([7, 8, 9], dtype=np.int32)
    out = encode.lookup(keys, first, second, offset=10)
    # 12 -> first[2] = 1 -> 8; 10 -> first[0] = 2 -> 9; 11 -> first[1] = 0 -> 7
    assert out.tolist() == [8, 9, 7, 8, 9] and out.dtype == np.int32
    assert encode.lookup(np.array([1, 0]), np.array([5, 6])).tolist() == [6, 5]
