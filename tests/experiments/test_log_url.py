"""One parser for the URLs of the event log and of the archive (which reuses its backends)."""

from __future__ import annotations

import pytest

from sessionrec.errors import ConfigError
from sessionrec.experiments.eventlog import parse_log_url


def test_the_url_forms() -> None:
    assert parse_log_url("sqlite:///runs/events.db") == ("sqlite", "runs/events.db")
    assert parse_log_url("sqlite:////var/lib/events.db") == ("sqlite", "/var/lib/events.db")
    assert parse_log_url("sqlite://:memory:") == ("sqlite", ":memory:")
    assert parse_log_url("sqlite:///:memory:") == ("sqlite", ":memory:")
    url = "postgresql://app:secret@db:5432/ab"
    assert parse_log_url(url) == ("postgresql", url)
    assert parse_log_url("postgres://db/ab") == ("postgresql", "postgres://db/ab")


def test_bad_urls_name_the_log_and_never_echo_a_password() -> None:
    with pytest.raises(ConfigError, match=r"^archive URL 'sqlite://x.db': expected "):
        parse_log_url("sqlite://x.db", "archive")
    with pytest.raises(ConfigError) as err:
        parse_log_url("mysql://app:secret@db/ab", "archive", "archive.db")
    assert str(err.value) == ("archive URL has scheme 'mysql'; supported: sqlite:///archive.db, "
                              "sqlite://:memory:, postgresql://user@host:port/db")
    with pytest.raises(ConfigError, match=r"^event log URL has no scheme; supported: "
                                          r"sqlite:///path.db"):
        parse_log_url("events.db")
