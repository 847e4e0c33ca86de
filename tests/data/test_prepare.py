"""End to end: Galaxus-format shards -> prepared directory, and the bad inputs."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from sessionrec.config import load_config
from sessionrec.data.prepare import PrepareConfig, prepare
from sessionrec.data.sources import get_source
from sessionrec.errors import DataError, EmptyDataError

HEADER = "ProductId,LastLoggedInUserId,UserId,SessionId,UserAgent,Timestamp\n"
BROWSER = "Mozilla/5.0 (X11; Linux x86_64) Firefox/120.0"
BOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"


def session(product_ids, user, last_user, sid, day, hour, agent=BROWSER):
    user_s = "" if user is None else str(user)
    last_s = "" if last_user is None else str(last_user)
    return [f"{p},{last_s},{user_s},{sid},{agent},2024-03-{day:02d}T{hour:02d}:{m:02d}:00Z\n"
            for m, p in enumerate(product_ids)]


def write_log(raw: Path) -> None:
    """User 1: 3 sessions; user 2: 3 sessions, one only with LastLoggedInUserId; a bot; an
    anonymous visitor. Products 100-103 are common, 999 appears only in a test session."""
    shard1 = [HEADER]
    shard1 += session([100, 101, 102], 1, 1, 11, 1, 8)
    shard1 += session([100, 101, 103], 1, 1, 12, 1, 12)
    shard1 += session([101, 102, 103], None, 2, 21, 1, 9)  # filled from LastLoggedInUserId
    shard1 += session([100, 100, 101, 102], None, None, 31, 1, 10)  # anonymous: dropped
    shard1 += session([100, 101, 102, 103] * 3, 7, 7, 41, 1, 11, agent=BOT)  # bot: dropped
    shard2 = [HEADER]
    shard2 += session([102, 103, 100], 2, 2, 22, 2, 9)
    shard2 += session([101, 999, 102, 100], 1, 1, 13, 2, 8)  # user 1's test session
    shard2 += session([103, 100, 101], 2, 2, 23, 2, 15)  # user 2's test session
    (raw / "events").mkdir(parents=True)
    (raw / "events" / "part-00000.csv").write_text("".join(shard1))
    (raw / "events" / "part-00001.csv").write_text("".join(shard2))


SMALL = ("filter.min_item_support=2", "filter.min_user_sessions=2",
         "filter.min_session_length=2", "split.valid=false", "partitions=2")


def run(raw: Path, out: Path, overrides=SMALL, **kw):
    cfg = load_config(PrepareConfig, overrides=overrides)
    return prepare(get_source("galaxus"), raw, out, cfg, **kw)


def test_galaxus_end_to_end(tmp_path):
    raw, out = tmp_path / "raw", tmp_path / "data"
    write_log(raw)
    manifest = run(raw, out)
    assert manifest["counts"]["raw_events"] == 3 + 3 + 3 + 4 + 12 + 3 + 4 + 3
    assert manifest["counts"]["bot_user_agents"] == 1
    assert manifest["counts"]["clean_events"] == 19  # minus 4 anonymous, 12 bot
    train = pl.read_parquet(out / "train.parquet")
    test = pl.read_parquet(out / "test.parquet")
    # user 1's test session loses product 999 (never in train): 101, 102, 100 remain
    assert test.filter(pl.col("user_id") == 1)["item_id"].to_list() == [101, 102, 100]
    assert test.filter(pl.col("user_id") == 2)["item_id"].to_list() == [103, 100, 101]
    assert train["user_id"].unique().sort().to_list() == [1, 2]  # user 2 filled from last-login
    assert train.height == 12 and test.height == 6
    assert manifest["filter_passes"][0]["item_support_eval"] == 1
    items = pl.read_parquet(out / "items.parquet")
    # vocabulary in first-appearance order in train: user 1's first session comes first
    assert items["item_id"].to_list() == [100, 101, 102, 103]
    assert set(test["item_idx"]) <= set(items["item_idx"])
    parts = sorted(p.name for p in (out / "sessions").iterdir())
    assert parts == ["part-00000.parquet", "part-00001.parquet"]
    in_part1 = pl.read_parquet(out / "sessions" / "part-00001.parquet")["user_id"].unique()
    assert in_part1.to_list() == [1]  # partitioned by user_id % 2
    saved = json.loads((out / "manifest.json").read_text())
    assert saved["config"]["filter"]["min_item_support"] == 2
    assert (out / "config.toml").is_file()


def test_existing_output_is_refused_and_kept(tmp_path):
    raw, out = tmp_path / "raw", tmp_path / "data"
    write_log(raw)
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(DataError, match="already exists"):
        run(raw, out)
    assert (out / "keep.txt").read_text() == "mine"


def test_failed_run_leaves_no_output(tmp_path):
    raw, out = tmp_path / "raw", tmp_path / "data"
    write_log(raw)
    with pytest.raises(EmptyDataError, match="filtering removed every event"):
        run(raw, out, overrides=("filter.min_item_support=50",))
    assert not out.exists()
    assert [p for p in tmp_path.iterdir() if p.name.startswith(".data")] == []


def test_failed_overwrite_keeps_previous_output(tmp_path):
    raw, out = tmp_path / "raw", tmp_path / "data"
    write_log(raw)
    run(raw, out)
    before = pl.read_parquet(out / "train.parquet")
    with pytest.raises(EmptyDataError):
        run(raw, out, overrides=("filter.min_item_support=50",), overwrite=True)
    assert pl.read_parquet(out / "train.parquet").equals(before)


def write_bad(raw: Path, body: str | bytes) -> Path:
    (raw / "events").mkdir(parents=True)
    path = raw / "events" / "part-00000.csv"
    if isinstance(body, bytes):
        path.write_bytes(body)
    else:
        path.write_text(body)
    return path


def test_missing_column_names_file_and_column(tmp_path):
    path = write_bad(tmp_path / "raw", "ProductId,UserId,SessionId,Timestamp\n1,2,3,2024-01-01\n")
    with pytest.raises(DataError) as err:
        run(tmp_path / "raw", tmp_path / "out")
    assert "LastLoggedInUserId" in str(err.value) and str(path) in str(err.value)
    assert not (tmp_path / "out").exists()


def test_unparsable_timestamp_names_row(tmp_path):
    rows = "".join(session([1, 2, 3], 1, 1, 5, 1, 8))
    rows += f"4,1,1,5,{BROWSER},yesterday-ish\n"
    write_bad(tmp_path / "raw", HEADER + rows)
    with pytest.raises(DataError, match=r"'yesterday-ish'.*column 'Timestamp', row 4"):
        run(tmp_path / "raw", tmp_path / "out")


def test_empty_file(tmp_path):
    write_bad(tmp_path / "raw", "")
    with pytest.raises(DataError, match="file is empty"):
        run(tmp_path / "raw", tmp_path / "out")


def test_non_utf8_user_agent_names_row(tmp_path):
    good = "".join(session([1, 2], 1, 1, 5, 1, 8)).encode()
    bad = b"3,1,1,5,Mozilla\xff\xfe,2024-03-01T08:05:00Z\n"
    write_bad(tmp_path / "raw", HEADER.encode() + good + bad)
    with pytest.raises(DataError, match=r"not valid UTF-8.*column 'UserAgent', row 3"):
        run(tmp_path / "raw", tmp_path / "out")


def test_missing_product_id_names_row(tmp_path):
    rows = "".join(session([1, 2], 1, 1, 5, 1, 8)) + f",1,1,5,{BROWSER},2024-03-01T09:00:00Z\n"
    write_bad(tmp_path / "raw", HEADER + rows)
    with pytest.raises(DataError, match=r"missing.*column 'ProductId', row 3"):
        run(tmp_path / "raw", tmp_path / "out")


def _codecs(path: Path) -> set[str]:
    import pyarrow.parquet as pq

    meta = pq.ParquetFile(path).metadata
    return {meta.row_group(g).column(c).compression
            for g in range(meta.num_row_groups) for c in range(meta.num_columns)}


@pytest.mark.parametrize(("overrides", "codec"), [
    ((), "ZSTD"),  # the default: zstd at level 1
    (("write.compression=snappy",), "SNAPPY"),  # no level: the default 1 is ignored
    (("write.compression=uncompressed",), "UNCOMPRESSED"),
    (("write.compression=gzip", "write.level=9"), "GZIP"),
])
def test_output_files_use_the_configured_codec_with_the_same_rows(tmp_path, overrides, codec):
    raw = tmp_path / "raw"
    write_log(raw)
    run(raw, tmp_path / "zstd3", (*SMALL, "write.level=3"))
    run(raw, tmp_path / "data", (*SMALL, *overrides))
    files = ["train.parquet", "test.parquet", "items.parquet", "users.parquet",
             "sessions/part-00000.parquet", "sessions/part-00001.parquet"]
    for name in files:
        assert _codecs(tmp_path / "data" / name) == {codec}, name
        assert pl.read_parquet(tmp_path / "data" / name).equals(
            pl.read_parquet(tmp_path / "zstd3" / name)), name


@pytest.mark.parametrize(("overrides", "message"), [
    (("write.level=0",), "1..22"),
    (("write.level=23",), "1..22"),
    (("write.compression=gzip", "write.level=10"), "0..9"),
])
def test_bad_write_settings_are_refused(overrides, message):
    from sessionrec.errors import ConfigError

    with pytest.raises(ConfigError, match=message):
        load_config(PrepareConfig, overrides=overrides)
