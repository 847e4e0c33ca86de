from __future__ import annotations

import numpy as np

from sessionrec.data.split import (
    TEST,
    TRAIN,
    US_PER_DAY,
    VALID,
    given_labels,
    last_session_labels,
    time_cutoffs,
    time_labels,
)


def test_last_session_out():
    # sessions 0,1,2 of user 0; 3,4 of user 1; 5 of user 2 (a single session stays in train)
    users = np.array([0, 0, 0, 1, 1, 2])
    alive = np.ones(6, dtype=bool)
    assert last_session_labels(users, alive, valid=True).tolist() == [
        TRAIN, VALID, TEST, TRAIN, TEST, TRAIN]
    assert last_session_labels(users, alive, valid=False).tolist() == [
        TRAIN, TRAIN, TEST, TRAIN, TEST, TRAIN]


def test_last_session_follows_the_alive_mask():
    users = np.array([0, 0, 0, 1, 1])
    alive = np.array([True, True, False, True, False])  # user 0's last and user 1's last gone
    assert last_session_labels(users, alive, valid=True).tolist() == [
        TRAIN, TEST, TRAIN, TRAIN, TRAIN]


def test_time_split_uses_session_end():
    ends = np.array([30, 70, 80, 59, 60])  # minutes
    labels = time_labels(ends, test_start=60, valid_start=25)
    assert labels.tolist() == [VALID, TEST, TEST, VALID, TEST]
    assert time_labels(ends, test_start=60, valid_start=None).tolist() == [
        TRAIN, TEST, TEST, TRAIN, TEST]


def test_time_cutoffs():
    max_ts = 10 * US_PER_DAY
    assert time_cutoffs(max_ts, 1.0, 2.0, True) == (9 * US_PER_DAY, 7 * US_PER_DAY)
    assert time_cutoffs(max_ts, 0.5, 2.0, False) == (9.5 * US_PER_DAY, None)


def test_given_labels_and_carved_validation():
    given = np.array([TRAIN, TRAIN, TRAIN, TEST])
    ends = np.array([0, 5, 10, 11]) * US_PER_DAY
    assert given_labels(given, ends, None).tolist() == [TRAIN, TRAIN, TRAIN, TEST]
    # train ends at day 10; valid_days=5 carves sessions ending at or after day 5
    assert given_labels(given, ends, 5.0).tolist() == [TRAIN, VALID, VALID, TEST]
