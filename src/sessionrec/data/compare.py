"""Comparing two prepared directories (the Polars and the Spark engine's, say).

``digest`` is a checksum of a Parquet file's rows sorted by every column, so row order and
file chunking do not matter but every value and dtype does. ``differences`` lists what
differs: manifest counts, filter passes, split sizes, vocabulary sizes, and each output file.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import polars as pl

MANIFEST_KEYS = ("user_aware", "sessionize", "split_method", "counts", "splits", "n_items",
                 "n_users", "filter_passes")


def digest(path: Path) -> str:
    """SHA-256 of the rows of a Parquet file sorted by all columns (and of its schema)."""
    df = pl.read_parquet(path)
    df = df.sort(df.columns, nulls_last=True) if df.columns else df
    h = hashlib.sha256(str(list(df.schema.items())).encode())
    rows = df.select(pl.struct(df.columns).hash(seed=0).alias("h"))["h"] if len(df) else []
    h.update(b"".join(int(v).to_bytes(8, "little") for v in rows))
    return h.hexdigest()[:16]


def output_files(directory: Path) -> list[str]:
    """Relative paths of the Parquet outputs of a prepared directory, sorted."""
    return sorted(str(p.relative_to(directory)) for p in Path(directory).rglob("*.parquet"))


def digests(directory: Path) -> dict[str, str]:
    return {name: digest(Path(directory) / name) for name in output_files(directory)}


def differences(a: Path, b: Path) -> list[str]:
    """Human-readable differences between prepared directories ``a`` and ``b`` (empty: same)."""
    out = []
    ma = json.loads((Path(a) / "manifest.json").read_text())
    mb = json.loads((Path(b) / "manifest.json").read_text())
    for key in MANIFEST_KEYS:
        if ma.get(key) != mb.get(key):
            out.append(f"manifest {key}: {ma.get(key)} != {mb.get(key)}")
    da, db = digests(a), digests(b)
    if sorted(da) != sorted(db):
        out.append(f"files: {sorted(da)} != {sorted(db)}")
    for name in sorted(set(da) & set(db)):
        if da[name] != db[name]:
            out.append(f"{name}: checksum {da[name]} != {db[name]}")
    return out
