"""``--source events``: a user's own log in CSV / Parquet / NDJSON with a column mapping."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest

from sessionrec.cli import main
from sessionrec.config import load_config
from sessionrec.data.prepare import PrepareConfig, prepare
from sessionrec.data.schema import TS_DTYPE, validate_schema
from sessionrec.data.sources import get_source
from sessionrec.data.sources.event_values import guess_unit
from sessionrec.data.sources.events import SourceConfig, bind, parse_maps, read_events
from sessionrec.errors import ConfigError, DataError

MAP = SourceConfig(session_id="sid", item_id="product", ts="time", event_type="kind")


def read(path: Path, cfg: SourceConfig = MAP) -> pl.DataFrame:
    lf = read_events(path, cfg)
    validate_schema(lf.collect_schema(), "events")
    return lf.collect()


def write(path: Path, text: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, str):
        text = text.encode()
    path.write_bytes(text)
    return path


def test_csv_with_mapping_and_iso_zones(tmp_path):
    f = write(tmp_path / "log.csv", "sid,product,time,kind,extra\n"
              "a,p1,2024-01-31T12:00:00Z,view,x\n"
              "a,p2,2024-01-31 13:30:00.25+01:00,cart,y\n"
              "b,p1,2024-01-31T12:00:00-0530,view,z\n")
    df = read(f)
    assert df.columns == ["item_id", "session_id", "user_id", "ts", "event_type"]
    assert df["session_id"].to_list() == ["a", "a", "b"]
    assert df["item_id"].to_list() == ["p1", "p2", "p1"]
    assert df["user_id"].null_count() == 3
    assert df["ts"].to_list() == [datetime(2024, 1, 31, 12, tzinfo=UTC),
                                  datetime(2024, 1, 31, 12, 30, 0, 250000, tzinfo=UTC),
                                  datetime(2024, 1, 31, 17, 30, tzinfo=UTC)]
    assert df["event_type"].to_list() == ["view", "cart", "view"]


def test_parquet_folder_epoch_ms_and_integer_ids(tmp_path):
    for i, start in enumerate((1_700_000_000_000, 1_700_000_060_000)):
        pl.DataFrame({"sid": [1, 1], "product": [10 + i, 20], "time": [start, start + 500],
                      "kind": ["view", "view"]}).write_parquet(tmp_path / f"part-{i}.parquet")
    df = read(tmp_path)
    assert df.schema["item_id"] == pl.Int64 and df.schema["session_id"] == pl.Int64
    assert df["item_id"].to_list() == [10, 20, 11, 20]
    assert df["ts"][1] == datetime(2023, 11, 14, 22, 13, 20, 500000, tzinfo=UTC)


@pytest.mark.parametrize(("value", "unit"), [(1_700_000_000, "s"), (1_700_000_000_000, "ms"),
                                             (1_700_000_000_000_000, "us")])
def test_unit_guess(value, unit):
    assert guess_unit(pl.Series([value, 5])) == unit


def test_ndjson_unmapped_canonical_names_and_explicit_unit(tmp_path):
    f = write(tmp_path / "log.ndjson",
              '{"session_id": "s1", "item_id": 7, "ts": 60, "price": 9.5, "brand": "Acme"}\n'
              '{"session_id": "s1", "item_id": 8, "ts": 120, "price": null, "brand": null}\n')
    df = read(f, SourceConfig(ts_unit="s"))
    assert df["ts"].to_list() == [datetime(1970, 1, 1, 0, 1, tzinfo=UTC),
                                  datetime(1970, 1, 1, 0, 2, tzinfo=UTC)]
    assert df["price"].to_list() == [9.5, None]
    assert df["brand"].to_list() == ["Acme", None]


def test_order_column_sorts_events_and_stands_in_for_time(tmp_path):
    f = write(tmp_path / "log.csv", "u,s,item,seq\n1,1,c,3\n1,1,a,1\n1,1,b,2\n")
    df = read(f, SourceConfig(user_id="u", session_id="s", item_id="item", order="seq"))
    assert df["item_id"].to_list() == ["a", "b", "c"]
    assert df["ts"].dt.epoch("us").to_list() == [1, 2, 3]
    assert df.schema["ts"] == TS_DTYPE


def test_ids_that_are_text_in_one_file_are_text_everywhere(tmp_path):
    write(tmp_path / "a.csv", "sid,product,time,kind\n1,100,0,view\n")
    write(tmp_path / "b.csv", "sid,product,time,kind\n1,X7,1,view\n")
    df = read(tmp_path)
    assert df["item_id"].to_list() == ["100", "X7"]
    assert df.schema["session_id"] == pl.Int64


def test_bind_derives_the_defaults_from_the_mapping(tmp_path):
    f = write(tmp_path / "log.csv", "u,item,t\n1,a,0\n")
    src = bind(get_source("events"), SourceConfig(user_id="u", item_id="item", ts="t"), f)
    assert (src.user_aware, src.session_key, src.split) == (True, "gap", "last_session")
    g = write(tmp_path / "g.csv", "session_id,item_id,seq\n1,a,0\n")
    with pytest.raises(ConfigError, match="without timestamps"):
        bind(get_source("events"), SourceConfig(order="seq"), g)
    with pytest.raises(ConfigError, match="--source events only"):
        bind(get_source("galaxus"), MAP, g)


def test_parse_maps():
    assert parse_maps(["item_id=product", "ts = time"]) == ['source.item_id="product"',
                                                            'source.ts="time"']
    with pytest.raises(ConfigError, match="unknown field 'product'"):
        parse_maps(["product=item_id"])
    with pytest.raises(ConfigError, match="FIELD=COLUMN"):
        parse_maps(["item_id"])


# -- bad input: every error names the file, the user's column and the row ----------------------
def error(path: Path, cfg: SourceConfig = MAP) -> DataError:
    with pytest.raises(DataError) as info:
        read(path, cfg)
    return info.value


def test_missing_mapped_column(tmp_path):
    err = error(write(tmp_path / "log.csv", "sid,item,time\n1,a,0\n"))
    assert err.path.endswith("log.csv") and err.column == "product"
    assert "--map item_id=COLUMN" in str(err)


def test_unparseable_timestamp(tmp_path):
    err = error(write(tmp_path / "log.csv", "sid,product,time,kind\n1,a,2024-01-01T00:00:00Z,v\n"
                      "1,b,2024-13-01T00:00:00Z,v\n"))
    assert (err.column, err.row) == ("time", 2)
    assert "2024-13-01" in str(err)


def test_mixed_time_zones(tmp_path):
    err = error(write(tmp_path / "log.csv", "sid,product,time,kind\n1,a,2024-01-01T00:00:00Z,v\n"
                      "1,b,2024-01-01T01:00:00+02:00,v\n1,c,2024-01-01T02:00:00,v\n"))
    assert (err.column, err.row) == ("time", 3)
    assert "mixed time zones" in str(err)


def test_out_of_range_epoch(tmp_path):
    err = error(write(tmp_path / "log.csv", "sid,product,time,kind\n1,a,1e30,v\n"),
                SourceConfig(session_id="sid", item_id="product", ts="time", ts_unit="s"))
    assert (err.column, err.row) == ("time", 1)


def test_empty_file_in_a_folder(tmp_path):
    write(tmp_path / "a.csv", "sid,product,time,kind\n1,a,0,v\n")
    write(tmp_path / "b.csv", "")
    err = error(tmp_path)
    assert err.path.endswith("b.csv") and "empty" in str(err)


def test_header_only_file(tmp_path):
    err = error(write(tmp_path / "log.csv", "sid,product,time,kind\n"))
    assert "no rows" in str(err)


def test_non_utf8_csv_and_ndjson(tmp_path):
    err = error(write(tmp_path / "log.csv", b"sid,product,time,kind\n1,a,0,v\n1,b\xff,1,v\n"))
    assert (err.column, err.row) == ("product", 2)
    err = error(write(tmp_path / "j" / "log.ndjson",
                      b'{"sid": 1, "product": "a", "time": 0}\n{"sid": 1, "product": "\xff"}\n'),
                SourceConfig(session_id="sid", item_id="product", ts="time"))
    assert err.row == 2 and "UTF-8" in str(err)


def test_duplicate_rows_across_files(tmp_path):
    write(tmp_path / "a.csv", "sid,product,time,kind\n1,a,0,v\n1,b,1,v\n")
    write(tmp_path / "b.csv", "sid,product,time,kind\n2,a,5,v\n1,b,1,v\n")
    err = error(tmp_path)
    assert err.path.endswith("b.csv") and err.row == 2
    assert "row 2 of" in str(err) and "a.csv" in str(err)


def test_missing_item_id_names_row(tmp_path):
    err = error(write(tmp_path / "log.csv", "sid,product,time,kind\n1,a,0,v\n1,,1,v\n"))
    assert (err.column, err.row) == ("product", 2)


# -- end to end ----------------------------------------------------------------------------------
def own_log(path: Path) -> None:
    """Two users, 3 sessions each (sessions cut by 30-minute gaps); items a, b, c, d."""
    rows = ["customer,product,time,kind"]
    for user in (1, 2):
        for day in (1, 2, 3):
            for minute, item in enumerate("abcd"[user - 1:user + 2]):
                rows.append(f"{user},{item},2024-03-0{day}T10:{minute:02d}:00+01:00,view")
    write(path, "\n".join(rows) + "\n")


SMALL = ["filter.min_item_support=1", "filter.min_user_sessions=2",
         "filter.min_session_length=2", "split.valid=false", "partitions=0"]


def test_prepare_end_to_end_with_a_source_table(tmp_path):
    own_log(tmp_path / "log.csv")
    conf = write(tmp_path / "prep.toml",
                 '[source]\nuser_id = "customer"\nitem_id = "product"\nts = "time"\n')
    cfg = load_config(PrepareConfig, conf, SMALL)
    m = prepare(get_source("events"), tmp_path / "log.csv", tmp_path / "out", cfg)
    assert (m["user_aware"], m["sessionize"], m["split_method"]) == (True, "gap", "last_session")
    assert m["splits"]["train"] == {"events": 12, "sessions": 4}
    assert m["splits"]["test"] == {"events": 6, "sessions": 2}
    assert m["config"]["source"]["user_id"] == "customer"
    test = pl.read_parquet(tmp_path / "out" / "test.parquet")
    assert test["user_id"].to_list() == [1, 1, 1, 2, 2, 2]


def test_cli_map_and_failed_run_leaves_nothing(tmp_path, capsys):
    own_log(tmp_path / "log.csv")
    args = ["prepare", "--source", "events", "--input", str(tmp_path / "log.csv"),
            "--map", "user_id=customer", "--map", "item_id=product", "--map", "ts=time"]
    sets = [x for s in SMALL for x in ("--set", s)]
    assert main([*args, "--out", str(tmp_path / "out"), *sets]) == 0
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["source"] == "events" and manifest["n_items"] == 4
    write(tmp_path / "bad" / "log.csv", "customer,product,time\n1,a,yesterday\n")
    bad = [*args[:4], str(tmp_path / "bad"), *args[5:]]
    assert main([*bad, "--out", str(tmp_path / "out2"), *sets]) != 0
    assert "yesterday" in capsys.readouterr().err
    assert not (tmp_path / "out2").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".out2")] == []
