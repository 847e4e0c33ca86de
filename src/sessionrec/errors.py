"""One exception hierarchy for the whole library.

Every error says what was wrong, where (file, column, row or config field) and, where it can,
what to do about it. Callers catch :class:`SessionRecError` to handle any of them.
"""

from __future__ import annotations


class SessionRecError(Exception):
    """Base class of every error raised on purpose by sessionrec."""


class ConfigError(SessionRecError, ValueError):
    """A configuration file or override is invalid (unknown key, wrong type, bad value)."""


class DataError(SessionRecError, ValueError):
    """Input data is unusable: missing columns, wrong types, unparsable values, empty files.

    ``path``, ``column`` and ``row`` are kept as attributes so that tools can point at the place.
    """

    def __init__(
        self,
        message: str,
        *,
        path: str | None = None,
        column: str | None = None,
        row: int | None = None,
        hint: str | None = None,
    ) -> None:
        self.path = path
        self.column = column
        self.row = row
        self.hint = hint
        where = []
        if path is not None:
            where.append(f"file {path}")
        if column is not None:
            where.append(f"column {column!r}")
        if row is not None:
            where.append(f"row {row}")
        text = message
        if where:
            text = f"{message} ({', '.join(where)})"
        if hint:
            text = f"{text}. {hint}"
        super().__init__(text)


class EmptyDataError(DataError):
    """A step left no data (e.g. filtering removed every event)."""


class NotFittedError(SessionRecError, RuntimeError):
    """A model was used before ``fit`` (or ``load``)."""
