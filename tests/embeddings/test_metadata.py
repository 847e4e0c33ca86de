"""Metadata tokens: brand, product type and price class within the type, hand-computed."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from sessionrec.embeddings.metadata import item_metadata_tokens, price_classes
from sessionrec.errors import ConfigError, DataError


def test_price_class_is_the_quantile_bucket_within_the_type() -> None:
    # type a: prices 10, 20, 30, 40 -> r = 0, 1, 2, 3 items strictly cheaper, n = 4;
    # with 2 classes floor(2 r / 4) = 0, 0, 1, 1. Type b: 5 and 500 -> floor(2 r / 2) = 0, 1:
    # classes compare within a type only, so 5 is class 0 though it is the cheapest overall.
    types = pl.Series(["a", "a", "a", "a", "b", "b"])
    prices = pl.Series([40.0, 10.0, 30.0, 20.0, 500.0, 5.0])
    assert price_classes(types, prices, 2).to_list() == [1, 0, 1, 0, 1, 0]


def test_equal_prices_share_a_class_and_bad_prices_have_none() -> None:
    # type a: valid prices 10, 10, 30 (n = 3); r = 0, 0, 2 -> floor(3 r / 3) = 0, 0, 2.
    # None, NaN, 0 and -5 have no class and are not counted in n.
    types = pl.Series(["a", "a", "a", "a", "a", "a", "a"])
    prices = pl.Series([10.0, 10.0, 30.0, None, float("nan"), 0.0, -5.0])
    assert price_classes(types, prices, 3).to_list() == [0, 0, 2, None, None, None, None]


def test_items_without_type_form_one_group() -> None:
    types = pl.Series(["a", None, None, "a"], dtype=pl.String)
    prices = pl.Series([1.0, 100.0, 200.0, 2.0])
    assert price_classes(types, prices, 2).to_list() == [0, 0, 1, 1]


def test_price_classes_must_be_positive() -> None:
    with pytest.raises(ConfigError, match="price_classes"):
        price_classes(pl.Series(["a"]), pl.Series([1.0]), 0)


def test_tokens_with_unknown_values() -> None:
    items = pl.DataFrame({
        "item_idx": [0, 1, 2, 3],
        "item_id": [10, 11, 12, 13],
        "brand": ["x", None, "y", "x"],
        "category": ["a", "a", "b", None],
        "price": [1.0, 2.0, None, 4.0],
    })
    t = item_metadata_tokens(items, n_price_classes=2)
    assert t.fields == ("brand", "type", "price")
    # per field: the unknown token first, then the values in order
    assert t.names == ("brand:?", "brand:x", "brand:y", "type:?", "type:a", "type:b",
                       "price:?", "price:0", "price:1")
    # item 3 has no type: its own group of one price, class 0
    expected = [[1, 4, 7], [0, 4, 8], [2, 5, 6], [1, 3, 7]]
    np.testing.assert_array_equal(t.item_tokens, expected)
    np.testing.assert_array_equal(t.field_of_token, [0, 0, 0, 1, 1, 1, 2, 2, 2])


def test_rows_follow_item_idx_and_absent_columns_are_left_out() -> None:
    items = pl.DataFrame({"item_idx": [1, 0], "item_id": [11, 10], "category": ["b", "a"]})
    t = item_metadata_tokens(items)
    assert t.fields == ("type",)
    assert t.names == ("type:a", "type:b")
    np.testing.assert_array_equal(t.item_tokens, [[0], [1]])  # item_idx 0 is category a


def test_no_metadata_gives_no_tokens() -> None:
    t = item_metadata_tokens(pl.DataFrame({"item_idx": [0, 1], "item_id": [5, 6]}))
    assert t.fields == () and t.n_tokens == 0 and t.item_tokens.shape == (2, 0)


def test_asking_for_an_absent_field_names_the_column() -> None:
    items = pl.DataFrame({"item_idx": [0], "item_id": [5]})
    with pytest.raises(DataError, match="'brand'"):
        item_metadata_tokens(items, fields=("brand",))
    with pytest.raises(ConfigError, match="colour"):
        item_metadata_tokens(items, fields=("colour",))


def test_text_price_is_rejected() -> None:
    items = pl.DataFrame({"item_idx": [0], "item_id": [5], "price": ["cheap"]})
    with pytest.raises(DataError, match="price has type"):
        item_metadata_tokens(items)
