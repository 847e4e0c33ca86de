"""The shop's ProductIds <-> the model's item indices, from a prepared ``items.parquet``.

Ids are matched by their text: ``123`` and ``"123"`` name the same product, so clients may
send numeric ids as JSON numbers or strings. Recommendations come back in the vocabulary's
own type (numbers for a numeric ``item_id`` column, strings otherwise).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl

from sessionrec.errors import DataError
from sessionrec.runs import vocab_fingerprint

ITEMS_FILE = "items.parquet"
USERS_FILE = "users.parquet"


class Vocabulary:
    """Item index <-> ProductId mapping (``item_idx`` 0..n-1, ``item_id``)."""

    def __init__(self, item_ids: list, fingerprint: str, path: str = "") -> None:
        self.ids = list(item_ids)
        self.fingerprint = fingerprint
        self.path = path
        self._index = {str(pid): i for i, pid in enumerate(self.ids)}
        if len(self._index) != len(self.ids):
            raise DataError("the vocabulary lists a ProductId twice", path=path or None,
                            column="item_id")

    @classmethod
    def read(cls, path: str | Path) -> Vocabulary:
        """Read ``items.parquet`` (or a prepared directory holding one)."""
        path = Path(path)
        if path.is_dir():
            path = path / ITEMS_FILE
        if not path.is_file():
            raise DataError("vocabulary file not found", path=str(path),
                            hint="give a prepared data directory or its items.parquet")
        items = pl.read_parquet(path)
        for col in ("item_idx", "item_id"):
            if col not in items.columns:
                raise DataError(f"vocabulary has no {col!r} column (columns: "
                                f"{', '.join(items.columns)})", path=str(path), column=col)
        idx = items["item_idx"].to_numpy()
        wrong = np.flatnonzero(idx != np.arange(items.height))
        if len(wrong):
            raise DataError(f"item_idx must be 0, 1, 2, ... in file order; found "
                            f"{idx[wrong[0]]}", path=str(path), column="item_idx",
                            row=int(wrong[0]))
        if items["item_id"].null_count():
            row = int(items["item_id"].is_null().arg_max())
            raise DataError("missing ProductId", path=str(path), column="item_id", row=row)
        return cls(items["item_id"].to_list(), vocab_fingerprint(items), str(path))

    def __len__(self) -> int:
        return len(self.ids)

    def index_of(self, product_id: str | int) -> int:
        """The item index of ``product_id``; -1 when the model does not know it."""
        return self._index.get(str(product_id), -1)

    def products(self, indices) -> list:
        """ProductIds of item indices, in order."""
        ids = self.ids
        return [ids[i] for i in indices]


def read_users(path: str | Path) -> dict[str, int]:
    """The shop's user ids (as text) -> user indices, from a prepared ``users.parquet``."""
    path = Path(path)
    users = pl.read_parquet(path)
    for col in ("user_idx", "user_id"):
        if col not in users.columns:
            raise DataError(f"user table has no {col!r} column (columns: "
                            f"{', '.join(users.columns)})", path=str(path), column=col)
    users = users.drop_nulls(["user_idx", "user_id"])
    return dict(zip(users["user_id"].cast(pl.String).to_list(), users["user_idx"].to_list(),
                    strict=True))
