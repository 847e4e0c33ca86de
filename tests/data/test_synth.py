"""The synthetic Galaxus-format generator: format, determinism, and learnable structure."""

from __future__ import annotations

from pathlib import Path

import crawleruseragents
import polars as pl
import pytest

from sessionrec.data.sources.galaxus import read_events, read_items
from sessionrec.data.synth import BROWSER_USER_AGENTS, SynthSummary, generate
from sessionrec.errors import ConfigError, DataError

EVENT_SCHEMA = {
    "ProductId": pl.Int64,
    "LastLoggedInUserId": pl.Int64,
    "UserId": pl.Int64,
    "SessionId": pl.Int64,
    "UserAgent": pl.String,
    "Timestamp": pl.Datetime("ms", "UTC"),
}
ITEM_SCHEMA = {"ProductId": pl.Int64, "Brand": pl.String, "ProductType": pl.String,
               "Price": pl.Float64}


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, SynthSummary]:
    out = tmp_path_factory.mktemp("synth") / "raw"
    return out, generate(out, 5_000, seed=7, events_per_shard=2_000)


@pytest.fixture(scope="module")
def medium(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, SynthSummary]:
    out = tmp_path_factory.mktemp("synth") / "raw"
    return out, generate(out, 50_000, seed=1, events_per_shard=20_000)


def shards(out: Path) -> list[pl.DataFrame]:
    return [pl.read_parquet(p) for p in sorted((out / "events").iterdir())]


def all_events(out: Path) -> pl.DataFrame:
    return pl.concat([df.with_columns(shard=pl.lit(i)) for i, df in enumerate(shards(out))])


def test_layout_schema_and_dtypes(small: tuple[Path, SynthSummary]) -> None:
    out, summary = small
    names = sorted(p.name for p in (out / "events").iterdir())
    assert names == ["part-00000.parquet", "part-00001.parquet", "part-00002.parquet"]
    for df in shards(out):
        assert dict(df.schema) == EVENT_SCHEMA
        assert 1_666 <= df.height <= 1_667  # 5,000 events spread evenly over 3 shards
    items = pl.read_parquet(out / "items.parquet")
    assert dict(items.schema) == ITEM_SCHEMA
    assert items.height == summary.items and items["ProductId"].is_unique().all()
    assert items["Price"].min() > 0 and items.null_count().sum_horizontal().item() == 0
    assert "synthetic" in (out / "README.md").read_text().lower()
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".")]  # no temp leftovers


def test_summary_matches_files(small: tuple[Path, SynthSummary]) -> None:
    out, summary = small
    ev = all_events(out)
    assert (summary.events, summary.shards) == (5_000, 3)
    assert ev.height == summary.events
    assert ev["SessionId"].n_unique() == summary.sessions
    assert ev.filter(pl.col("LastLoggedInUserId") >= 1_000_000)[
        "LastLoggedInUserId"].n_unique() == summary.users
    bots = ev["UserAgent"].map_elements(crawleruseragents.is_crawler, return_dtype=pl.Boolean)
    assert bots.sum() == summary.bot_events


def test_same_seed_same_data_other_seed_other_data(small: tuple[Path, SynthSummary],
                                                    tmp_path: Path) -> None:
    out, _ = small
    again = generate(tmp_path / "again", 5_000, seed=7, events_per_shard=2_000)
    other = generate(tmp_path / "other", 5_000, seed=8, events_per_shard=2_000)
    assert again.sessions > 0
    for a, b in zip(shards(out), shards(tmp_path / "again"), strict=True):
        assert a.equals(b)
    assert pl.read_parquet(out / "items.parquet").equals(
        pl.read_parquet(tmp_path / "again" / "items.parquet"))
    assert not shards(out)[0].equals(shards(tmp_path / "other")[0])
    assert other.events == 5_000


def test_galaxus_adapter_reads_it(small: tuple[Path, SynthSummary]) -> None:
    out, summary = small
    events = read_events(out).collect()
    items = read_items(out)
    assert items is not None
    items = items.collect()
    assert events.height == summary.events and items.height == summary.items
    assert set(events["item_id"]) <= set(items["item_id"])
    assert events["ts"].min().year == 2024


def test_csv_round_trips_through_adapter(small: tuple[Path, SynthSummary],
                                         tmp_path: Path) -> None:
    out, _ = small
    generate(tmp_path / "csv", 5_000, seed=7, events_per_shard=2_000, fmt="csv")
    assert sorted(p.suffix for p in (tmp_path / "csv" / "events").iterdir()) == [".csv"] * 3
    assert read_events(tmp_path / "csv").collect().equals(read_events(out).collect())


def test_bots_have_crawler_agents_and_humans_do_not(medium: tuple[Path, SynthSummary]) -> None:
    out, summary = medium
    ev = all_events(out)
    agents = ev.group_by("UserAgent").len()
    is_bot = agents["UserAgent"].map_elements(crawleruseragents.is_crawler,
                                              return_dtype=pl.Boolean)
    bot_events = agents.filter(is_bot)["len"].sum()
    assert bot_events == summary.bot_events
    assert abs(bot_events / ev.height - 0.02) < 0.002
    humans = set(agents.filter(~is_bot)["UserAgent"])
    assert humans <= {ua for ua, _, _ in BROWSER_USER_AGENTS}
    bots = ev.filter(pl.col("UserAgent").is_in(agents.filter(is_bot)["UserAgent"].implode()))
    assert bots["UserId"].null_count() == bots.height
    per_session = bots.group_by("SessionId").len()["len"]
    assert per_session.mean() > 20  # long crawling sessions


def test_user_id_kinds(medium: tuple[Path, SynthSummary]) -> None:
    out, summary = medium
    ev = all_events(out)
    only_last = ev.filter(pl.col("UserId").is_null() & pl.col("LastLoggedInUserId").is_not_null())
    anonymous = ev.filter(pl.col("UserId").is_null() & pl.col("LastLoggedInUserId").is_null())
    logged_in = ev.filter(pl.col("UserId").is_not_null())
    assert (logged_in["UserId"] == logged_in["LastLoggedInUserId"]).all()
    human_only_last = only_last.filter(pl.col("LastLoggedInUserId") >= 1_000_000)
    assert human_only_last.height == summary.last_logged_in_only_events
    assert abs(human_only_last.height / ev.height - 0.25) < 0.03
    # Anonymous rows: the human visitors (5%, rounded per shard) plus bots without an account.
    assert abs(summary.anonymous_events - 2_500) <= summary.shards
    assert summary.anonymous_events <= anonymous.height
    assert anonymous.height <= summary.anonymous_events + summary.bot_events


def test_sessions_unique_across_shards_and_owned_by_one_user(
        medium: tuple[Path, SynthSummary]) -> None:
    out, _ = medium
    per_session = all_events(out).group_by("SessionId").agg(
        pl.col("shard").n_unique().alias("shards"),
        pl.col("LastLoggedInUserId").n_unique().alias("users"),
        pl.col("UserAgent").n_unique().alias("agents"),
    )
    assert per_session["shards"].max() == 1
    assert per_session["users"].max() == 1  # null counts as a value: never mixed
    assert per_session["agents"].max() == 1


def test_days_and_gaps(medium: tuple[Path, SynthSummary]) -> None:
    out, _ = medium
    for day, df in enumerate(shards(out)):
        assert df["Timestamp"].is_sorted()
        assert df["Timestamp"].dt.day().unique().to_list() == [1 + day]
    ev = all_events(out).filter(pl.col("LastLoggedInUserId") >= 1_000_000)
    sessions = ev.group_by("SessionId").agg(
        pl.col("LastLoggedInUserId").first().alias("user"),
        pl.col("Timestamp").min().alias("start"), pl.col("Timestamp").max().alias("end"),
        pl.col("Timestamp").diff().max().alias("max_gap"))
    assert (sessions["end"] - sessions["start"]).dt.total_minutes().max() < 60
    between = sessions.sort("user", "start").with_columns(
        gap=pl.col("start") - pl.col("end").shift(1).over("user")).drop_nulls("gap")
    assert between["gap"].dt.total_seconds().min() > 30 * 60
    assert sessions["max_gap"].drop_nulls().dt.total_seconds().max() <= 20 * 60


def test_popularity_is_heavy_tailed(tmp_path: Path) -> None:
    summary = generate(tmp_path / "raw", 200_000, seed=0)
    counts = pl.read_parquet(tmp_path / "raw" / "events").group_by("ProductId").len()
    top = counts.sort("len", descending=True).head(summary.items // 10)["len"].sum()
    assert top / summary.events > 0.40


def test_users_return_and_keep_their_tastes(medium: tuple[Path, SynthSummary]) -> None:
    out, _ = medium
    items = pl.read_parquet(out / "items.parquet").select("ProductId", "ProductType")
    ev = (all_events(out).filter(pl.col("LastLoggedInUserId") >= 1_000_000)
          .join(items, on="ProductId").sort("SessionId", "Timestamp"))
    sessions = ev.group_by("LastLoggedInUserId").agg(pl.col("SessionId").n_unique().alias("n"))
    assert (sessions["n"] >= 5).sum() > 100
    # Within sessions the next view mostly stays in the product type of the previous one.
    same_type = ev.with_columns(
        nxt=pl.col("ProductType").shift(-1).over("SessionId")).drop_nulls("nxt")
    assert (same_type["ProductType"] == same_type["nxt"]).mean() > 0.7
    # A user's favourite type in one shard is much more common in their views in later shards
    # than in views overall.
    fav = (ev.filter(pl.col("shard") == 0).group_by("LastLoggedInUserId", "ProductType").len()
           .sort("len", "ProductType", descending=True).group_by("LastLoggedInUserId").first()
           .select("LastLoggedInUserId", fav=pl.col("ProductType")))
    later = ev.filter(pl.col("shard") > 0).join(fav, on="LastLoggedInUserId")
    hit = (later["ProductType"] == later["fav"]).mean()
    base = ev.group_by("ProductType").len()["len"].pow(2).sum() / ev.height ** 2
    assert hit > 5 * base


def test_next_item_depends_on_previous_item(medium: tuple[Path, SynthSummary]) -> None:
    out, _ = medium
    ev = all_events(out).filter(pl.col("LastLoggedInUserId") >= 1_000_000).sort(
        "SessionId", "Timestamp").with_columns(nxt=pl.col("ProductId").shift(-1).over("SessionId"))
    pairs = ev.drop_nulls("nxt")
    best_successor = (pairs.group_by("ProductId", "nxt").len().sort("len", descending=True)
                      .group_by("ProductId").first()["len"].sum())
    most_popular = ev.group_by("ProductId").len()["len"].max()
    assert best_successor / pairs.height > 3 * most_popular / ev.height


def test_progress_and_overwrite(tmp_path: Path) -> None:
    calls: list[tuple[int, int]] = []
    generate(tmp_path / "raw", 3_000, events_per_shard=1_000, progress=lambda d, t: calls.append(
        (d, t)))
    assert calls == [(1_000, 3_000), (2_000, 3_000), (3_000, 3_000)]
    with pytest.raises(DataError, match="already exists"):
        generate(tmp_path / "raw", 1_000)
    summary = generate(tmp_path / "raw", 1_000, overwrite=True)
    assert summary.shards == 1 and len(list((tmp_path / "raw" / "events").iterdir())) == 1


@pytest.mark.parametrize("kwargs", [
    {"n_events": 0},
    {"events_per_shard": 0},
    {"fmt": "json"},
    {"bot_share": 0.5, "anonymous_share": 0.3, "last_logged_in_only_share": 0.3},
    {"bot_share": -0.1},
    {"n_users": 3},  # 3 users cannot hold ~900 sessions a day
])
def test_invalid_arguments(tmp_path: Path, kwargs: dict[str, object]) -> None:
    args: dict[str, object] = {"n_events": 5_000} | kwargs
    with pytest.raises(ConfigError):
        generate(tmp_path / "raw", **args)  # type: ignore[arg-type]
    assert not (tmp_path / "raw").exists()
