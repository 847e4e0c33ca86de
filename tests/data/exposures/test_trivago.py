"""trivago impression lists as exposures: rows by hand, bad input, counted drops, list split."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from sessionrec.data.exposures.dataset import load_exposures
from sessionrec.data.exposures.prepare import (
    ExposureConfig,
    get_exposure_source,
    prepare_exposures,
)
from sessionrec.data.exposures.trivago import item_features, read_exposures, read_items
from sessionrec.errors import ConfigError, DataError

COLUMNS = ["user_id", "session_id", "timestamp", "step", "action_type", "reference",
           "platform", "city", "device", "current_filters", "impressions", "prices"]
T0 = 1_541_599_553  # 2018-11-07 14:05:53 UTC


def row(user, step, reference, impressions, prices, t=T0, action="clickout item",
        city="Marseille, France", platform="FR"):
    return (user, f"s-{user}", t + step, step, action, reference, platform, city, "mobile",
            None, impressions, prices)


def write(folder: Path, rows) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "trivago_val_100k.parquet"
    pl.DataFrame(rows, schema=COLUMNS, orient="row").write_parquet(path)
    return path


# U1: an image interaction (not an exposure), then two clickouts; U2: one clickout.
HAND = [
    row("U1", 1, "10", None, None, action="interaction item image"),
    row("U1", 2, "20", "10|20|30", "100|50|70"),
    row("U1", 3, "30", "30|10", "70|100"),
    row("U2", 1, "40", "40", "9", city="Berlin, Germany", platform="DE"),
]


def test_exposure_rows_by_hand(tmp_path):
    got = read_exposures(write(tmp_path, HAND))
    # step 2 at T0 + 2 s + 2 µs; every row of one list shares the time; position = display order
    us = [(T0 + 2) * 1_000_000 + 2] * 3 + [(T0 + 3) * 1_000_000 + 3] * 2 + [(T0 + 1) * 10**6 + 1]
    assert got["user_id"].to_list() == ["U1"] * 5 + ["U2"]
    assert got["item_id"].to_list() == [10, 20, 30, 30, 10, 40]
    assert got["click"].to_list() == [0, 1, 0, 1, 0, 1]
    assert got["position"].to_list() == [1, 2, 3, 1, 2, 1]
    assert got["ts"].dt.epoch("us").to_list() == us
    assert got["like"].to_list() == [0] * 6 and got["follow"].to_list() == [0] * 6
    assert not got["click_not_shown"].any()


def test_item_features_by_hand(tmp_path):
    items = item_features(read_items(write(tmp_path, HAND))).to_dicts()
    by_id = {i["item_id"]: i for i in items}
    # cities rank densely: Berlin 1, Marseille 2; platforms DE 1, FR 2
    assert [by_id[i]["city"] for i in (10, 20, 30, 40)] == [2, 2, 2, 1]
    assert [by_id[i]["platform"] for i in (10, 20, 30, 40)] == [2, 2, 2, 1]
    # median price 100 -> log2 6.6 -> bucket 7; 50 -> 6; 70 -> 7; 9 -> 4
    assert [by_id[i]["price"] for i in (10, 20, 30, 40)] == [7, 6, 7, 4]
    # mean position 1.5 (10), 2 (20), 2 (30), 1 (40): all in the top five -> 1
    assert {by_id[i]["position"] for i in (10, 20, 30, 40)} == {1}
    # price rank within lists: 10 dearest twice (1.0 -> third 3), 20 cheapest (0 -> 1),
    # 30 mean of 0.5 and 0 -> 0.25 -> 1; 40 alone in its list: rank 0 -> 1
    assert [by_id[i]["price_rank"] for i in (10, 20, 30, 40)] == [3, 1, 1, 1]


@pytest.mark.parametrize(("bad", "message"), [
    (row("U1", 3, "30", "30|10", "70"), r"2 hotels in impressions but 1 prices.*'prices'.*row 3"),
    (row("U1", 3, "30", "30|x1", "70|100"), r"'x1' is not a number.*'impressions'.*row 3"),
    (row("U1", 3, "3a", "30|10", "70|100"), r"'3a' is not a whole number.*'reference'.*row 3"),
    (row("U1", 3, "30", "30|10|30", "70|100|70"),
     r"hotel 30 is shown twice in one impression list.*'impressions'.*row 3"),
    (row("U1", 3, "30", "30|10", "70|cheap"), r"'cheap' is not a number.*'prices'.*row 3"),
    (row("U1", 3, "30", None, None), r"clickout without impressions.*'impressions'.*row 3"),
])
def test_bad_input_names_file_column_and_row(tmp_path, bad, message):
    rows = [*HAND[:2], bad, HAND[3]]
    with pytest.raises(DataError, match=message) as err:
        read_exposures(write(tmp_path, rows))
    assert "trivago_val_100k.parquet" in str(err.value)


def user_lists(user, n, t=T0):
    """``n`` clickouts of ``user``, each showing 3 hotels and clicking the i-th mod 3."""
    hotels = [100, 200, 300]
    return [row(user, k + 1, str(hotels[k % 3]), "100|200|300", "80|60|40", t=t)
            for k in range(n)]


def test_click_not_shown_is_dropped_and_counted(tmp_path):
    rows = user_lists("U1", 5)
    rows.insert(2, row("U1", 9, "999", "100|200|300", "80|60|40"))  # 999 not shown: dropped
    m = prepare_exposures(get_exposure_source("trivago"), write(tmp_path / "raw", rows),
                          tmp_path / "out", ExposureConfig(split_unit="list", min_exposures=3))
    c = m["counts"]
    assert c["raw_exposures"] == 18
    assert (c["lists_click_not_shown_dropped"], c["exposures_click_not_shown_dropped"]) == (1, 3)
    assert c["exposures"] == 15 and c["lists"] == 5
    assert pl.read_parquet(tmp_path / "out" / "exposures.parquet")["click"].sum() == 5


def test_list_split_keeps_clickouts_whole_and_drops_short_users(tmp_path):
    rows = user_lists("U1", 10) + user_lists("U2", 2)  # U2: 2 clickouts < 3
    m = prepare_exposures(get_exposure_source("trivago"), write(tmp_path / "raw", rows),
                          tmp_path / "out", ExposureConfig(split_unit="list", min_exposures=3))
    c = m["counts"]
    assert (c["users_below_min_exposures"], c["lists_of_short_users"],
            c["exposures_of_short_users"]) == (1, 2, 6)
    assert (c["train_lists"], c["valid_lists"], c["test_lists"]) == (7, 1, 2)
    assert m["item_features"] == ["city", "price", "platform", "position", "price_rank"]
    data = load_exposures(tmp_path / "out")
    # 10 lists of 3: 7 train, 1 valid, 2 test, each list wholly in one split
    assert data.split.tolist() == [0] * 21 + [1] * 3 + [2] * 6
    # within a list the rows keep display order 100, 200, 300 (item_idx 0, 1, 2)
    assert data.item.tolist()[:3] == [0, 1, 2]
    assert data.click.tolist()[:6] == [1, 0, 0, 0, 1, 0]
    assert data.item_features.shape == (3, 5)


def test_exposure_split_would_cut_a_list(tmp_path):
    # the per-exposure split (kuairand's) cuts the last list apart: why trivago uses "list"
    rows = user_lists("U1", 5)
    prepare_exposures(get_exposure_source("trivago"), write(tmp_path / "raw", rows),
                      tmp_path / "out", ExposureConfig(split_unit="exposure", min_exposures=5))
    split = load_exposures(tmp_path / "out").split.tolist()
    assert split[9:12] == [0, 1, 1]  # the 4th list straddles train and valid


def test_source_defaults_to_list_split():
    assert get_exposure_source("trivago").defaults == {"split_unit": "list", "min_exposures": 3}
    with pytest.raises(ConfigError, match="split_unit"):
        ExposureConfig(split_unit="clickout")


def test_cli_exposures_flag(tmp_path, capsys):
    from sessionrec.cli import main

    raw = write(tmp_path / "raw", user_lists("U1", 4))
    assert main(["prepare", "--source", "trivago", "--exposures", "--input", str(raw),
                 "--out", str(tmp_path / "out")]) == 0
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["kind"] == "exposures" and manifest["config"]["split_unit"] == "list"
    assert "users below 3 lists dropped" in capsys.readouterr().out
    # without the flag the next-item pipeline runs: its session filter finds 4 clickouts of
    # 3 hotels too few (the exposure path would have succeeded, as above)
    assert main(["prepare", "--source", "trivago", "--input", str(raw),
                 "--out", str(tmp_path / "sessions")]) == 2
    assert "filtering removed every event" in capsys.readouterr().err
    assert not (tmp_path / "sessions").exists()


def test_item_features_come_from_the_training_lists_only(tmp_path):
    # 10 lists of U1: 7 train, 1 valid, 2 test. Hotel 100 is shown first in the training lists
    # but last in the test lists, and hotel 777 is shown only in the test lists: its features
    # must be unknown (0) and 100's position band must be the training one (top five, 1).
    rows = user_lists("U1", 7)
    rows += [row("U1", 8, "200", "200|300|100", "60|40|80")]
    rows += [row("U1", k, "300", "|".join(["300", *map(str, range(1, 24)), "100", "777"]),
                 "|".join(["40", *["50"] * 23, "80", "90"])) for k in (9, 10)]
    m = prepare_exposures(get_exposure_source("trivago"), write(tmp_path / "raw", rows),
                          tmp_path / "out", ExposureConfig(split_unit="list", min_exposures=3))
    assert (m["counts"]["train_lists"], m["counts"]["test_lists"]) == (7, 2)
    items = pl.read_parquet(tmp_path / "out" / "items.parquet")
    by_id = {r["item_id"]: r for r in items.to_dicts()}
    assert [by_id[777][f] for f in ("city", "price", "platform", "position", "price_rank")] \
        == [0, 0, 0, 0, 0]
    assert by_id[100]["position"] == 1  # position 1 in every training list (25 in test)
    # computed over every row instead, 100's mean position would be (7·1 + 3 + 2·25) / 10 = 6
    # (band 2), and 777 (position 26) would get band 5
    everything = {r["item_id"]: r for r in item_features(read_items(
        tmp_path / "raw" / "trivago_val_100k.parquet")).to_dicts()}
    assert everything[100]["position"] == 2 and everything[777]["position"] == 5
    assert m["counts"]["items_without_features"] == 23 + 1  # the 23 fillers and 777
