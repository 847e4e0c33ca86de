"""trivago impression lists as exposures: one row per (clickout, shown hotel), click / not-click.

``path`` is the folder ``../shared/data/trivago`` or one session-log file (the same files as
the next-item adapter :mod:`sessionrec.data.sources.trivago`). Only ``clickout item`` rows are
read; each carries ``impressions`` (the ``|``-separated hotel ids shown, in display order),
``prices`` (aligned with them) and ``reference`` (the hotel clicked). Every shown hotel becomes
one exposure: ``click`` = 1 for the reference, 0 for the others; like / follow / comment do not
exist on trivago and are 0 (so ALPINE_m, without the like/follow branch, is the variant that
applies).

* ``user_id`` is trivago's user id; ``ts`` is the clickout's Unix second plus its ``step`` in
  microseconds: every exposure of one list shares one time (no hotel of a list is history for
  another hotel of the same list, whose click would give the label away), and two clickouts
  within one second keep their session order. ``position`` (1-based display order) orders the
  rows of a list.
* Errors (:class:`DataError` naming the file, column and 1-based row of the file, counting
  every row): a clickout without an impression list or prices, lists of different lengths in
  ``impressions`` and ``prices``, a non-numeric hotel id (``reference`` or ``impressions``) or
  price, and a hotel shown twice in one list.
* A clickout whose ``reference`` is not in its own list (1 of the 13,597 of the shared slice)
  has no shown click: its rows are flagged ``click_not_shown`` and the prepare step drops the
  list and counts it in the manifest (``lists_click_not_shown_dropped``).

Item side features (:data:`FEATURES`, dense codes, 0 unknown), each computed per hotel over
its rows in the *training* lists only (display-time facts, never a click label; a hotel first
shown in a valid or test list gets 0, unknown, so no statistic of those lists is used):

``city``        the city searched most often when the hotel was shown (a hotel is in one city)
``price``       log2 bucket of the hotel's median displayed price (1, 2, 4, ... 8192+)
``platform``    the country platform it was shown on most often
``position``    its mean display position in fifths of a 25-slot list (1 = top 5 ... 5)
``price_rank``  its mean price rank within its lists in thirds (1 = cheapest third)

The five fill the five slots of the temporal graph's feature similarity
(:data:`sessionrec.models.neural.graph_lstm.FEATURE_WEIGHTS`: 2·same city + same price bucket
+ same position band + 0.5·same price third; the platform only enters the item vector).
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from sessionrec.data.io import first_bad_row
from sessionrec.data.sources._common import read_columns, to_text
from sessionrec.data.sources.trivago import trivago_file
from sessionrec.errors import DataError

CLICKOUT = "clickout item"
COLUMNS = ("user_id", "session_id", "timestamp", "step", "action_type", "reference",
           "platform", "city", "impressions", "prices")
FEATURES = ("city", "price", "platform", "position", "price_rank")
SEPARATOR = "|"


def read_clickouts(path: Path) -> tuple[Path, pl.DataFrame]:
    """(file, its clickout rows) with ``row`` = the 1-based row of the file (every row counted)."""
    path = trivago_file(Path(path))
    df = read_columns(path, COLUMNS).with_row_index("row", offset=1)
    action = to_text(df, "action_type", path)
    return path, df.filter(action == CLICKOUT)


def _where(rows: pl.DataFrame, bad: pl.Series) -> int | None:
    """The file row of the first clickout flagged in ``bad``."""
    i = first_bad_row(rows, bad)
    return None if i is None else int(rows["row"][i - 1])


def _integers(path: Path, rows: pl.DataFrame, column: str) -> pl.Series:
    """``column`` of the clickout rows as Int64; a missing or non-integer value names its
    file row (``to_integer`` would count the clickout rows only)."""
    s = rows[column]
    parsed = (s.cast(pl.Int64, strict=False) if s.dtype.is_integer()
              else s.cast(pl.String).str.strip_chars().cast(pl.Int64, strict=False))
    bad = parsed.is_null()
    if bad.any():
        value = s[int(bad.arg_true()[0])]
        what = "value is missing" if value is None else f"{value!r} is not a whole number"
        raise DataError(what, path=str(path), column=column, row=_where(rows, bad))
    return parsed


def with_numbers(path: Path, rows: pl.DataFrame) -> pl.DataFrame:
    """Clickout rows with ``timestamp``, ``step`` and ``reference`` (the hotel) as Int64."""
    if rows.height == 0:
        raise DataError("no clickout item rows", path=str(path), column="action_type")
    if rows["user_id"].null_count():
        raise DataError("value is missing", path=str(path), column="user_id",
                        row=_where(rows, rows["user_id"].is_null()))
    return rows.with_columns(_integers(path, rows, c) for c in ("timestamp", "step", "reference"))


def _split_lists(path: Path, rows: pl.DataFrame) -> pl.DataFrame:
    """``impressions`` / ``prices`` as aligned lists; raises on a missing or unaligned list."""
    for column in ("impressions", "prices"):
        missing = rows[column].is_null() | (rows[column].cast(pl.String) == "")
        if missing.any():
            raise DataError(f"clickout without {column}", path=str(path), column=column,
                            row=_where(rows, missing),
                            hint="every clickout item row needs its impression list and prices")
    out = rows.with_columns(pl.col("impressions", "prices").cast(pl.String)
                            .str.split(SEPARATOR))
    shown, priced = out["impressions"].list.len(), out["prices"].list.len()
    bad = shown != priced
    if bad.any():
        i = bad.arg_true()[0]
        raise DataError(f"{shown[i]} hotels in impressions but {priced[i]} prices",
                        path=str(path), column="prices", row=int(out["row"][i]),
                        hint="impressions and prices must be aligned, one price per hotel")
    return out


def _parse(path: Path, long: pl.DataFrame, column: str, source_column: str,
           dtype: pl.DataType) -> pl.Series:
    """``column`` of the exploded frame as numbers; a bad value names the file's
    ``source_column`` and row."""
    parsed = long[column].str.strip_chars().cast(dtype, strict=False)
    bad = parsed.is_null()
    if bad.any():
        i = bad.arg_true()[0]
        raise DataError(f"{long[column][i]!r} is not a number", path=str(path),
                        column=source_column, row=int(long["row"][i]),
                        hint="hotel ids and prices are numbers")
    return parsed


def clickout_exposures(path: Path, rows: pl.DataFrame) -> pl.DataFrame:
    """Clickout rows of ``path`` -> one row per shown hotel (file order, display order)."""
    rows = _split_lists(path, with_numbers(path, rows))
    long = (rows.with_columns(position=pl.int_ranges(1, pl.col("impressions").list.len() + 1))
            .explode("impressions", "prices", "position")
            .rename({"impressions": "item_id", "prices": "price"}))
    long = long.with_columns(item_id=_parse(path, long, "item_id", "impressions", pl.Int64),
                             price=_parse(path, long, "price", "prices", pl.Float64))
    repeated = long.select(pl.struct("row", "item_id").is_duplicated()).to_series()
    if repeated.any():
        i = repeated.arg_true()[0]
        raise DataError(f"hotel {long['item_id'][i]} is shown twice in one impression list",
                        path=str(path), column="impressions", row=int(long["row"][i]),
                        hint="an impression list shows each hotel once")
    click = (pl.col("item_id") == pl.col("reference")).cast(pl.Int8)
    return long.with_columns(
        click=click,
        click_not_shown=(click.max().over("row") == 0),
        ts=(pl.from_epoch(pl.col("timestamp").cast(pl.Int64), time_unit="s")
            .dt.cast_time_unit("us") + pl.duration(microseconds=pl.col("step").cast(pl.Int64)))
        .dt.replace_time_zone("UTC"),
    )


def read_exposures(path: Path) -> pl.DataFrame:
    """Canonical exposures of every clickout's impression list (see the module docstring)."""
    long = clickout_exposures(*read_clickouts(path))
    zero = pl.lit(0, pl.Int8)
    return long.select(
        pl.col("user_id").cast(pl.String), "item_id", "ts", "click",
        like=zero, follow=zero, comment=zero, position="position",
        click_not_shown="click_not_shown")


def _bucket(values: pl.Expr, low: float, high: float) -> pl.Expr:
    """log2 bucket of ``values`` clipped to [low, high]: low -> 1, 2·low -> 2, ...; null -> 0."""
    return ((values.clip(low, high) / low).log(2).floor().cast(pl.Int64) + 1).fill_null(0)


def _mode(column: str) -> pl.Expr:
    """The most frequent value of ``column`` per group (ties: the smallest)."""
    return pl.col(column).drop_nulls().mode().sort().first()


def read_items(path: Path) -> pl.DataFrame:
    """One row per shown hotel (``user_id``, ``ts`` as in :func:`read_exposures`) with what
    the item features are computed from: ``city``, ``platform``, ``price``, ``position`` and
    ``rank`` (price rank within its list, 0 = cheapest … 1 = dearest)."""
    long = clickout_exposures(*read_clickouts(path))
    return long.select(
        pl.col("user_id").cast(pl.String), "ts", "item_id", "city", "platform", "price",
        "position",
        rank=(pl.col("price").rank("average").over("row") - 1)
        / (pl.len().over("row") - 1).clip(1, None))


def item_features(shown: pl.DataFrame) -> pl.DataFrame:
    """``item_id`` + the :data:`FEATURES` codes, aggregated over the rows of ``shown``."""
    per_item = shown.group_by("item_id").agg(
        city=_mode("city"), platform=_mode("platform"),
        median_price=pl.col("price").median(), position=pl.col("position").mean(),
        rank=pl.col("rank").mean())
    dense = {c: pl.col(c).rank("dense").cast(pl.Int64).fill_null(0) for c in ("city", "platform")}
    return per_item.select(
        "item_id", dense["city"],
        price=_bucket(pl.col("median_price"), 1.0, 8192.0),
        platform=dense["platform"],
        position=((pl.col("position") - 1) / 5).floor().cast(pl.Int64).clip(0, 4) + 1,
        price_rank=(pl.col("rank") * 3).floor().cast(pl.Int64).clip(0, 2) + 1,
    ).sort("item_id")


def encode_items(items: pl.DataFrame | None, item_ids: pl.Series,
                 train: pl.DataFrame | None = None) -> pl.DataFrame:
    """Item vocabulary (``item_idx`` by sorted id) with the :data:`FEATURES` codes (0 unknown).

    ``items``: the shown rows of :func:`read_items`. ``train``: the training exposures
    (``user_id``, ``ts`` in epoch µs); when given, the features are computed from the training
    lists only, so no statistic of the valid or test lists reaches the model (a hotel first
    shown after training gets 0, unknown, in every feature).
    """
    vocab = pl.DataFrame({"item_id": item_ids.unique().sort()}).with_row_index("item_idx")
    vocab = vocab.with_columns(pl.col("item_idx").cast(pl.Int64))
    if items is None:
        return vocab.with_columns(pl.lit(0, pl.Int64).alias(f) for f in FEATURES)
    if train is not None:
        lists = train.select("user_id", "ts").unique()
        items = items.with_columns(pl.col("ts").dt.epoch("us")).join(
            lists, on=["user_id", "ts"], how="semi")
    features = item_features(items)
    return vocab.join(features.select("item_id", *FEATURES), on="item_id", how="left",
                      maintain_order="left").with_columns(pl.col(FEATURES).fill_null(0))
