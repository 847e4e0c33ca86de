from __future__ import annotations

import polars as pl

from sessionrec.data import clean


def test_fill_user_from_last_logged_in(make_events):
    df = make_events([(1, None, 10, 0), (1, 7, 11, 1), (2, None, 12, 2)]).with_columns(
        last_logged_in_user_id=pl.Series([5, 7, None], dtype=pl.Int64)
    )
    out = clean.fill_user_from_last_logged_in(df.lazy()).collect()
    assert out["user_id"].to_list() == [5, 7, None]
    assert "last_logged_in_user_id" not in out.columns


def test_drop_anonymous_keeps_only_known_users(make_events):
    df = make_events([(1, None, 10, 0), (1, 7, 11, 1)])
    assert clean.drop_anonymous(df.lazy()).collect()["item_id"].to_list() == [11]


def test_bots_are_removed_by_crawler_patterns(make_events):
    agents = [
        "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/120.0 Safari/537.36",
        "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
        None,
    ]
    df = make_events([(1, 1, 10, 0), (2, 2, 11, 1), (3, 3, 12, 2), (4, 4, 13, 3)])
    df = df.with_columns(user_agent=pl.Series(agents, dtype=pl.String))
    bots = clean.bot_user_agents(df.lazy())
    assert sorted(bots.to_list()) == sorted([agents[0], agents[2]])
    out = clean.drop_bots(df.lazy(), bots).collect()
    assert out["item_id"].to_list() == [11, 13]  # a missing user agent is not a bot


def test_crawler_pattern_agrees_with_package_on_its_own_examples():
    import crawleruseragents

    instances = [i for e in crawleruseragents.CRAWLER_USER_AGENTS_DATA for i in e["instances"]]
    matched = pl.Series(instances).str.contains(clean.crawler_pattern())
    assert matched.all()
    expected = [crawleruseragents.is_crawler(i) for i in instances]
    assert matched.to_list() == expected


def test_keep_event_types(make_events):
    df = make_events([(1, 1, 10, 0), (1, 1, 11, 1)]).with_columns(
        event_type=pl.Series(["view", "purchase"]))
    out = clean.keep_event_types(df.lazy(), ["view"]).collect()
    assert out["item_id"].to_list() == [10]
    assert clean.keep_event_types(df.lazy(), []).collect().height == 2


def test_drop_immediate_repeats_only_within_a_session(make_events):
    df = make_events([(1, 1, 10, 0), (1, 1, 10, 1), (1, 1, 11, 2), (1, 1, 10, 3), (2, 1, 10, 4)])
    out = clean.drop_immediate_repeats(df.lazy()).collect()
    assert out["item_id"].to_list() == [10, 11, 10, 10]
