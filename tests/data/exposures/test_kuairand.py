"""KuaiRand exposures: duplicates counted and dropped, labels checked, per-user split."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest

from sessionrec.data.exposures.dataset import load_exposures
from sessionrec.data.exposures.prepare import (
    ExposureConfig,
    get_exposure_source,
    prepare_exposures,
    split_positions,
)
from sessionrec.errors import ConfigError, DataError

LOG = ["user_id", "video_id", "time_ms", "is_click", "is_like", "is_follow", "is_comment",
       "play_time_ms"]


def write(folder, rows, videos=None):
    folder.mkdir(parents=True, exist_ok=True)
    pl.DataFrame(rows, schema=LOG, orient="row").write_parquet(folder / "log_a.parquet")
    if videos is not None:
        pl.DataFrame(videos, schema=["video_id", "author_id", "video_type", "music_id", "tag",
                                     "video_duration"], orient="row").write_csv(
            folder / "video_features_basic_pure.csv")
    return folder


def user_rows(user, n, start=0):
    return [(user, 10 + i % 3, 1000 * (start + i), i % 2, 0, 0, 0, 5) for i in range(n)]


def test_duplicates_are_counted_and_dropped(tmp_path):
    rows = user_rows(1, 5)
    rows += [rows[0], rows[0]]  # two exact copies of the first exposure
    rows.append((1, 10, 0, 0, 0, 0, 0, 99))  # same exposure, other play time: canonical copy
    rows.append((1, 11, 1000, 1, 1, 0, 0, 5))  # same (user, item, time), more labels: merged
    m = prepare_exposures(get_exposure_source("kuairand"), write(tmp_path / "raw", rows),
                          tmp_path / "out", ExposureConfig())
    c = m["counts"]
    assert c["raw_exposures"] == 9
    assert c["exact_duplicates_dropped"] == 2
    assert c["canonical_duplicates_dropped"] == 1
    assert c["conflicting_repeats_merged"] == 1
    assert c["exposures"] == 5
    df = pl.read_parquet(tmp_path / "out" / "exposures.parquet")
    second = df.row(1, named=True)
    assert (second["click"], second["like"]) == (1, 1)  # the merged row keeps the like


def test_missing_label_names_file_column_and_row(tmp_path):
    rows = user_rows(1, 5)
    rows[3] = (1, 10, 3000, None, 0, 0, 0, 5)
    with pytest.raises(DataError, match=r"label is missing.*log_a.parquet.*'is_click'.*row 4"):
        prepare_exposures(get_exposure_source("kuairand"), write(tmp_path / "raw", rows),
                          tmp_path / "out", ExposureConfig())
    assert not (tmp_path / "out").exists()


def test_label_outside_zero_one_is_refused(tmp_path):
    rows = user_rows(1, 5)
    rows[1] = (1, 10, 1000, 0, 2, 0, 0, 5)
    with pytest.raises(DataError, match=r"label 2 is not 0 or 1.*'is_like'.*row 2"):
        prepare_exposures(get_exposure_source("kuairand"), write(tmp_path / "raw", rows),
                          tmp_path / "out", ExposureConfig())


def test_split_positions_by_hand():
    n_test, n_valid = split_positions(np.array([5, 10, 7]), 0.2, 0.1)
    # 5: 1 test, 0.5 -> 1 valid; 10: 2 test, 1 valid; 7: 1.4 -> 1 test, 0.7 -> 1 valid
    assert n_test.tolist() == [1, 2, 1]
    assert n_valid.tolist() == [1, 1, 1]


def test_per_user_time_split_and_short_users(tmp_path):
    rows = user_rows(1, 10) + user_rows(2, 4)  # user 2 is below min_exposures = 5
    videos = [(10, 7, "NORMAL", 1, "39,68", 2000.0), (11, 7, "AD", 2, "3", None),
              (12, 7, "NORMAL", 1, "39", 70000.0)]
    m = prepare_exposures(get_exposure_source("kuairand"), write(tmp_path / "raw", rows, videos),
                          tmp_path / "out", ExposureConfig())
    assert m["counts"]["users_below_min_exposures"] == 1
    assert m["counts"]["exposures_of_short_users"] == 4
    data = load_exposures(tmp_path / "out")
    assert data.n_users == 1
    assert data.split.tolist() == [0] * 7 + [1] + [2, 2]
    assert np.all(np.diff(data.ts) > 0)
    f = data.item_features  # author, tag (first of "39,68"), kind, music, duration bucket
    assert f[0].tolist()[:2] == f[2].tolist()[:2]  # same author 7, same first tag 39
    assert f[0, 4] == 2 and f[1, 4] == 0 and f[2, 4] == 7  # 2 s -> log2 1 + 1; unknown 0; 70 s


def test_config_refuses_an_empty_training_part():
    with pytest.raises(ConfigError):
        ExposureConfig(test_fraction=0.6, valid_fraction=0.5)


def test_manifest_is_marked_as_exposures(tmp_path):
    prepare_exposures(get_exposure_source("kuairand"), write(tmp_path / "raw", user_rows(1, 5)),
                      tmp_path / "out", ExposureConfig())
    assert json.loads((tmp_path / "out" / "manifest.json").read_text())["kind"] == "exposures"
