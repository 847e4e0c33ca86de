"""Dataset statistics in the shape of seed 000's Table 3.1, per split."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from sessionrec.data.schema import SPLITS
from sessionrec.errors import DataError


def split_stats(df: pl.DataFrame) -> dict[str, float | int | None]:
    """Users, items, events, sessions and the three per-entity means ± standard deviations."""
    if len(df) == 0:
        return {"users": 0, "items": 0, "events": 0, "sessions": 0}
    per_session = df.group_by("session_id").len()["len"]
    per_item = df.group_by("item_id").len()["len"]
    has_users = "user_id" in df.columns and df["user_id"].null_count() < len(df)
    out: dict[str, float | int | None] = {
        "users": df["user_id"].drop_nulls().n_unique() if has_users else None,
        "items": df["item_id"].n_unique(),
        "events": len(df),
        "sessions": df["session_id"].n_unique(),
        "events_per_session_mean": per_session.mean(),
        "events_per_session_std": per_session.std(),
        "events_per_item_mean": per_item.mean(),
        "events_per_item_std": per_item.std(),
    }
    if has_users:
        per_user = df.drop_nulls("user_id").group_by("user_id").agg(pl.col("session_id")
                                                                    .n_unique())["session_id"]
        out["sessions_per_user_mean"] = per_user.mean()
        out["sessions_per_user_std"] = per_user.std()
    return out


def read_splits(data_dir: Path) -> dict[str, pl.DataFrame]:
    """The train/valid/test frames of a prepared directory."""
    data_dir = Path(data_dir)
    if not (data_dir / "train.parquet").is_file():
        raise DataError("not a prepared data directory (train.parquet missing)",
                        path=str(data_dir), hint="run `sessionrec prepare` first")
    return {name: pl.read_parquet(data_dir / f"{name}.parquet") for name in SPLITS
            if (data_dir / f"{name}.parquet").is_file()}


def dataset_stats(data_dir: Path) -> dict[str, dict[str, float | int | None]]:
    """Statistics for each split and for all splits together ("all")."""
    splits = read_splits(data_dir)
    out = {name: split_stats(df) for name, df in splits.items()}
    out["all"] = split_stats(pl.concat(list(splits.values())))
    return out


ROWS = (
    ("#Users", "users", None),
    ("#Products", "items", None),
    ("#Events", "events", None),
    ("#Sessions", "sessions", None),
    ("#Sessions per User", "sessions_per_user_mean", "sessions_per_user_std"),
    ("#Events per Product", "events_per_item_mean", "events_per_item_std"),
    ("#Events per Session", "events_per_session_mean", "events_per_session_std"),
)


def _cell(stats: dict, key: str, sd_key: str | None) -> str:
    value = stats.get(key)
    if value is None:
        return "—"
    if sd_key is None:
        return f"{int(value):,}"
    sd = stats.get(sd_key)
    return f"{value:.2f} ± {sd:.2f}" if sd is not None else f"{value:.2f}"


def markdown_table(stats: dict[str, dict]) -> str:
    """A Table-3.1-style Markdown table: one row per property, one column per split."""
    cols = [c for c in ("all", *SPLITS) if c in stats]
    lines = ["| Property | " + " | ".join(cols) + " |", "|---" * (len(cols) + 1) + "|"]
    for label, key, sd_key in ROWS:
        lines.append(f"| {label} | " + " | ".join(_cell(stats[c], key, sd_key) for c in cols)
                     + " |")
    return "\n".join(lines)
