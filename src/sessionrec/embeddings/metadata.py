"""Metadata tokens of items: brand, product type and price class, for Meta-Prod2Vec.

Every item gets one token per field, taken from the prepared ``items.parquet``:

===========  ==================  ==========================================================
field        column              token
===========  ==================  ==========================================================
``brand``    ``brand``           ``brand:<value>``
``type``     ``category``        ``type:<value>`` (the product type / leaf category)
``price``    ``price``           ``price:<q>``, the price class ``q`` in ``0 .. n_classes-1``
===========  ==================  ==========================================================

A missing value becomes the field's unknown token (``brand:?``, ``type:?``, ``price:?``). A
field whose column the dataset does not have at all is left out (a token shared by every item
would only pull all items together).

**Price class** (seed 000, chapter 4.1.2): prices are compared only with the prices of items of
the same product type, so ``price:4`` means "among the most expensive of its type" whatever the
type costs. For an item with price ``p`` in a type with ``n`` known prices, of which ``r`` are
strictly lower than ``p``, the class is ``floor(n_classes * r / n)``: the empirical quantile
bucket of ``p`` within its type (equal prices share a class). Items without a type form one
group of their own. Missing, non-finite and non-positive prices get ``price:?`` and do not count
in ``n``. The class ids are global, so premium items of different types share ``price:4``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from sessionrec.errors import ConfigError, DataError

UNKNOWN = "?"
# field -> the items.parquet column it comes from
FIELD_COLUMNS: dict[str, str] = {"brand": "brand", "type": "category", "price": "price"}


@dataclass(frozen=True)
class MetadataTokens:
    """The metadata token vocabulary and each item's tokens.

    Attributes:
        fields: the fields used, in order (a subset of ``brand``, ``type``, ``price``).
        names: token names; token ``t`` is ``names[t]``, e.g. ``"brand:Nemika"``.
        item_tokens: int64 [n_items, n_fields], the token of item ``i`` for each field.
        field_of_token: int64 [n_tokens], the position in ``fields`` of each token's field.
    """

    fields: tuple[str, ...]
    names: tuple[str, ...]
    item_tokens: np.ndarray
    field_of_token: np.ndarray

    @property
    def n_tokens(self) -> int:
        return len(self.names)

    @property
    def n_items(self) -> int:
        return int(self.item_tokens.shape[0])

    @classmethod
    def empty(cls, n_items: int) -> MetadataTokens:
        """No metadata at all (plain prod2vec)."""
        return cls((), (), np.zeros((n_items, 0), dtype=np.int64), np.zeros(0, dtype=np.int64))


def price_classes(types: pl.Series, prices: pl.Series, n_classes: int) -> pl.Series:
    """Price class (Int64, null when unknown) of each item within its product type.

    ``types`` may hold nulls (they form one group); a price that is null, NaN, infinite or
    ``<= 0`` has no class. See the module docstring for the rule.
    """
    if n_classes < 1:
        raise ConfigError(f"price_classes must be >= 1, got {n_classes}")
    if len(types) != len(prices):
        raise DataError("types and prices differ in length", column="price")
    price = prices.cast(pl.Float64)
    df = pl.DataFrame({"t": types.cast(pl.String).fill_null("\x00unknown"), "p": price})
    valid = pl.col("p").is_finite().fill_null(False) & (pl.col("p") > 0).fill_null(False)
    df = df.with_columns(p=pl.when(valid).then(pl.col("p")))
    out = df.select(
        ((pl.col("p").rank("min").over("t") - 1) * n_classes // pl.col("p").count().over("t"))
        .cast(pl.Int64)
        .alias("price_class")
    )
    return out["price_class"]


def item_metadata_tokens(items: pl.DataFrame, *, n_price_classes: int = 5,
                         fields: tuple[str, ...] | None = None) -> MetadataTokens:
    """Tokens of the items of a vocabulary table (``items.parquet``), in ``item_idx`` order.

    ``fields`` selects fields (default: every field whose column ``items`` has). Asking for a
    field whose column is absent raises :class:`DataError`. Rows are taken in ``item_idx``
    order when that column exists, else in row order.
    """
    if "item_idx" in items.columns:
        idx = items["item_idx"].to_numpy()
        if not np.array_equal(idx, np.arange(len(items))):
            items = items.sort("item_idx")
            if not np.array_equal(items["item_idx"].to_numpy(), np.arange(len(items))):
                raise DataError("item_idx is not 0 .. n_items-1", column="item_idx",
                                hint="pass the items.parquet written by sessionrec prepare")
    if fields is None:
        fields = tuple(f for f, c in FIELD_COLUMNS.items() if c in items.columns)
    for f in fields:
        if f not in FIELD_COLUMNS:
            raise ConfigError(f"unknown metadata field {f!r}; choose from {list(FIELD_COLUMNS)}")
        if FIELD_COLUMNS[f] not in items.columns:
            raise DataError(f"metadata field {f!r} needs column {FIELD_COLUMNS[f]!r}; the item "
                            f"table has {items.columns}", column=FIELD_COLUMNS[f])
    if not fields:
        return MetadataTokens.empty(len(items))
    values: list[pl.Series] = []
    for f in fields:
        col = FIELD_COLUMNS[f]
        if f == "price":
            types = items["category"] if "category" in items.columns else pl.Series(
                [None] * len(items), dtype=pl.String)
            raw = items[col]
            if not raw.dtype.is_numeric():
                raise DataError(f"price has type {raw.dtype}, expected a number", column=col)
            v = price_classes(types, raw, n_price_classes).cast(pl.String)
        else:
            v = items[col].cast(pl.String)
        values.append(v.fill_null(UNKNOWN))
    names: list[str] = []
    field_of_token: list[int] = []
    item_tokens = np.zeros((len(items), len(fields)), dtype=np.int64)
    for j, (f, v) in enumerate(zip(fields, values, strict=True)):
        distinct = v.unique()
        # The unknown token first, then values in a stable order (numeric for price classes).
        key = distinct.cast(pl.Int64, strict=False) if f == "price" else distinct
        order = pl.DataFrame({"v": distinct, "unknown": distinct != UNKNOWN, "k": key}).sort(
            ["unknown", "k", "v"], nulls_last=True)["v"]
        base = len(names)
        names += [f"{f}:{x}" for x in order]
        field_of_token += [j] * len(order)
        code = v.replace_strict(order, pl.int_range(len(order), eager=True), return_dtype=pl.Int64)
        item_tokens[:, j] = base + code.to_numpy()
    return MetadataTokens(tuple(fields), tuple(names), item_tokens,
                          np.asarray(field_of_token, dtype=np.int64))
