from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from sessionrec.data.encode import encode, item_metadata_from_events, item_vocab, user_vocab
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


def test_subsample_is_deterministic_and_respects_sizes(make_events):
    rows = []
    for user in range(20):
        for s in range(3):
            sid = user * 10 + s
            rows += [(sid, user, (user + s + k) % 8, s * 60 + k) for k in range(3)]
    df = make_events(rows).with_columns(split=pl.lit("train"))
    a = subsample(df, n_users=5, n_items=6, min_session_length=2, min_user_sessions=2,
                  user_aware=True, seed=3)
    b = subsample(df, n_users=5, n_items=6, min_session_length=2, min_user_sessions=2,
                  user_aware=True, seed=3)
    assert a.equals(b)
    assert a["user_id"].n_unique() <= 5 and a["item_id"].n_unique() <= 6
    assert a.group_by("session_id").len()["len"].min() >= 2


def test_item_vocab_from_train_in_first_appearance_order(make_events):
    train = make_events([(0, 1, 30, 0), (0, 1, 10, 1), (1, 1, 30, 60), (1, 1, 20, 61)])
    meta = pl.DataFrame({"item_id": [10, 20, 30], "brand": ["a", None, "c"]})
    vocab = item_vocab(train, meta)
    assert vocab.rows() == [(0, 30, 2, "c"), (1, 10, 1, "a"), (2, 20, 1, None)]
    assert vocab.schema["item_idx"] == pl.Int32


def test_encode_adds_indices_and_refuses_unknown_items(make_events):
    train = make_events([(0, 1, 30, 0), (0, 2, 10, 1)])
    vocab, users = item_vocab(train), user_vocab(train)
    out = encode(train, vocab, users)
    assert out["item_idx"].to_list() == [0, 1] and out["user_idx"].to_list() == [0, 1]
    with pytest.raises(DataError, match="outside the training vocabulary"):
        encode(make_events([(0, 1, 99, 0)]), vocab, users)


def test_metadata_from_events_takes_first_non_null(make_events):
    df = make_events([(0, 1, 1, 0), (0, 1, 1, 1)]).with_columns(
        brand=pl.Series([None, "acme"]), price=pl.Series([2.0, 3.0]))
    meta = item_metadata_from_events(df)
    assert meta.rows() == [(1, "acme", 2.0)]
    assert item_metadata_from_events(df.drop("brand", "price")) is None
