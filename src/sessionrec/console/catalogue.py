"""The product catalogue of the console: search by id, name, category or brand, and lookups.

It is read from the served vocabulary's ``items.parquet`` (the prepared data), whose optional
columns ``name`` (or ``title``), ``category``, ``brand`` and ``price`` are shown when the
dataset has them; ``train_events`` orders search results (most clicked first) when present.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import polars as pl

from sessionrec.errors import DataError

NAME_COLUMNS = ("name", "title", "product_name")
TEXT_COLUMNS = ("category", "brand")
MAX_RESULTS = 50


@dataclass(frozen=True)
class Catalogue:
    """Products of one vocabulary: ``rows`` maps a ProductId's text to its fields."""

    rows: dict[str, dict]
    frame: pl.DataFrame  # columns id (text), search (lower-cased text), popularity
    fields: tuple[str, ...]  # which of name, category, brand, price the data has

    @classmethod
    def read(cls, path: str | Path) -> Catalogue:
        path = Path(path)
        if not path.is_file():
            raise DataError("catalogue: items file not found", path=str(path))
        items = pl.read_parquet(path)
        if "item_id" not in items.columns:
            raise DataError("catalogue: no item_id column", path=str(path), column="item_id")
        name = next((c for c in NAME_COLUMNS if c in items.columns), None)
        cols = {"id": pl.col("item_id").cast(pl.Utf8)}
        if name:
            cols["name"] = pl.col(name).cast(pl.Utf8)
        for c in TEXT_COLUMNS:
            if c in items.columns:
                cols[c] = pl.col(c).cast(pl.Utf8)
        if "price" in items.columns:
            cols["price"] = pl.col("price").cast(pl.Float64)
        pop = (pl.col("train_events").cast(pl.Int64) if "train_events" in items.columns
               else pl.lit(0, dtype=pl.Int64))
        table = items.select(**cols, popularity=pop)
        fields = tuple(c for c in ("name", "category", "brand", "price") if c in table.columns)
        text = [c for c in ("id", "name", "category", "brand") if c in table.columns]
        frame = table.select("id", "popularity", search=pl.concat_str(
            [pl.col(c).fill_null("") for c in text], separator="\u241f").str.to_lowercase())
        rows = {r["id"]: r for r in table.drop("popularity").iter_rows(named=True)}
        return cls(rows, frame, fields)

    def __len__(self) -> int:
        return len(self.rows)

    def get(self, product_id: str | int) -> dict | None:
        return self.rows.get(str(product_id))

    def describe(self, product_id: str | int) -> dict:
        """The product's fields, or just its id (``known: false``) when not in the catalogue."""
        row = self.rows.get(str(product_id))
        return {**row, "known": True} if row else {"id": str(product_id), "known": False}

    def search(self, query: str, limit: int = 20) -> list[dict]:
        """Products whose id equals ``query`` first, then those whose id, name, category or
        brand contains it (case-insensitive), most clicked first."""
        q = query.strip()
        if not q:
            return []
        limit = max(1, min(limit, MAX_RESULTS))
        exact = [q] if q in self.rows else []
        hits = (self.frame.filter(pl.col("search").str.contains(q.lower(), literal=True)
                                  & (pl.col("id") != q))
                .sort("popularity", descending=True, maintain_order=True)
                .head(limit - len(exact))["id"].to_list())
        return [self.rows[i] for i in exact + hits]

    def popular(self, n: int = 12) -> list[dict]:
        ids = self.frame.sort("popularity", descending=True, maintain_order=True).head(n)["id"]
        return [self.rows[i] for i in ids.to_list()]
