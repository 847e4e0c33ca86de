"""The shared definition of prepare's steps, run against both engines (docs/prepare-spec.md).

Every test is parametrised over ``engine``: the Polars engine always runs; the Spark engine
needs PySpark and Java and shares one local SparkSession for the whole test session. Without
them the Spark cases skip — unless ``SESSIONREC_REQUIRE_SPARK=1`` (CI), where they fail.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import polars as pl
import pytest
from tests.data.test_prepare import SMALL, write_log

from sessionrec.config import load_config
from sessionrec.data.compare import differences
from sessionrec.data.prepare import PrepareConfig, prepare
from sessionrec.data.sources import get_source
from sessionrec.data.synth import generate
from sessionrec.errors import ConfigError, DataError, EmptyDataError


def _unavailable(reason: str) -> None:
    if os.environ.get("SESSIONREC_REQUIRE_SPARK") == "1":
        pytest.fail(f"SESSIONREC_REQUIRE_SPARK=1 but {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def spark():
    """One local SparkSession (2 cores, 2 shuffle partitions) for every Spark test."""
    from sessionrec.data.spark.session import SparkConfig, get_session, spark_available

    if not spark_available():
        _unavailable('PySpark is not installed (pip install -e ".[spark]")')
    try:
        session = get_session(SparkConfig(master="local[2]", shuffle_partitions=2))
    except ConfigError as err:
        _unavailable(str(err))
    yield session
    session.stop()


@pytest.fixture(params=["polars", "spark"])
def engine(request) -> str:
    if request.param == "spark":
        request.getfixturevalue("spark")
    return request.param


def run(source: str, raw: Path, out: Path, engine: str, overrides=SMALL, **kw) -> dict:
    cfg = load_config(PrepareConfig, overrides=[*overrides, f"engine={engine}",
                                                "spark.shuffle_partitions=2"])
    return prepare(get_source(source), raw, out, cfg, **kw)


def test_galaxus_steps(tmp_path, engine):
    """Hand-computed: fill from LastLoggedInUserId, bot and anonymous removal, item support
    counted in train, last-session split, first-appearance vocabulary, user % N partitions."""
    raw, out = tmp_path / "raw", tmp_path / "data"
    write_log(raw)
    m = run("galaxus", raw, out, engine)
    assert m["engine"] == engine
    assert m["counts"] == {"raw_events": 35, "bot_user_agents": 1, "clean_events": 19,
                           "filtered_events": 18}
    assert m["filter_passes"][0]["item_support_eval"] == 1  # product 999, only in test
    test = pl.read_parquet(out / "test.parquet")
    assert test.filter(pl.col("user_id") == 1)["item_id"].to_list() == [101, 102, 100]
    assert test.filter(pl.col("user_id") == 2)["item_id"].to_list() == [103, 100, 101]
    assert test.columns == ["session_id", "user_id", "item_id", "ts", "item_idx", "user_idx"]
    items = pl.read_parquet(out / "items.parquet")
    assert items["item_id"].to_list() == [100, 101, 102, 103]
    assert items["item_idx"].to_list() == [0, 1, 2, 3]
    users = pl.read_parquet(out / "users.parquet")
    assert users.rows() == [(0, 1), (1, 2)]
    part1 = pl.read_parquet(out / "sessions" / "part-00001.parquet")
    assert part1["user_id"].unique().to_list() == [1]
    assert part1["session_id"].to_list() == sorted(part1["session_id"].to_list())


def test_failed_run_leaves_no_output(tmp_path, engine):
    raw, out = tmp_path / "raw", tmp_path / "data"
    write_log(raw)
    with pytest.raises(EmptyDataError, match="filtering removed every event"):
        run("galaxus", raw, out, engine, overrides=("filter.min_item_support=50",))
    assert list(tmp_path.iterdir()) == [raw]


def test_bad_input_is_the_same_data_error(tmp_path, engine):
    bad = tmp_path / "log.csv"
    bad.write_text("sid,product,time\n1,a,2024-01-01T00:00:00Z\n1,b,not-a-time\n")
    with pytest.raises(DataError) as err:
        run("events", bad, tmp_path / "out", engine,
            overrides=("source.session_id='sid'", "source.item_id='product'",
                       "source.ts='time'"))
    assert (err.value.column, err.value.row) == ("time", 2)
    assert [p.name for p in tmp_path.iterdir()] == ["log.csv"]


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory) -> Path:
    raw = tmp_path_factory.mktemp("synth") / "raw"
    generate(raw, 6000, seed=3, events_per_shard=2500)
    return raw


EQUIVALENCE = {
    # user-aware, given sessions, last-session split, subsample to a user and item target
    "galaxus-subsample": ("galaxus", ["filter.min_item_support=2", "filter.min_user_sessions=2",
                                      "subsample.items=120", "subsample.users=40",
                                      "subsample.seed=5", "partitions=3"]),
    # session-only, given sessions cut by a 10-minute gap, time split, repeats dropped
    "session-time-gap": ("galaxus", ["clean.user_aware=false", "sessionize.method='gap'",
                                     "sessionize.gap_minutes=10.0", "split.method='time'",
                                     "clean.drop_repeats=true", "filter.min_item_support=2",
                                     "filter.min_session_length=2", "partitions=2"]),
}


@pytest.mark.slow
@pytest.mark.parametrize("case", sorted(EQUIVALENCE))
def test_spark_equals_polars(tmp_path, spark, synthetic, case):
    """Same counts after every step, passes, split membership, vocabularies, encoded rows."""
    source, overrides = EQUIVALENCE[case]
    a = run(source, synthetic, tmp_path / "polars", "polars", overrides)
    b = run(source, synthetic, tmp_path / "spark", "spark", overrides)
    assert a["counts"]["filtered_events"] > 100
    assert differences(tmp_path / "polars", tmp_path / "spark") == []
    saved = json.loads((tmp_path / "spark" / "manifest.json").read_text())
    assert saved["engine"] == "spark" and saved["counts"] == a["counts"] == b["counts"]
