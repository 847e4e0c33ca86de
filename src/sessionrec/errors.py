"""One exception hierarchy for the whole library.

Every error says what was wrong, where (file, column, row or config field) and, where it can,
what to do about it. Callers catch :class:`SessionRecError` to handle any of them.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class SessionRecError(Exception):
    """Base class of every error raised on purpose by sessionrec."""


class ConfigError(SessionRecError, ValueError):
    """A configuration file or override is invalid (unknown key, wrong type, bad value).

    ``key`` is the dotted config key at fault when one is known (``eval.protocol``), so that
    :func:`sessionrec.config.load_config` can say whether it came from the file or an override.
    """

    def __init__(self, message: str, key: str | None = None) -> None:
        super().__init__(message)
        self.key = key


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


def valid_choices(bad: str, valid: Iterable[str], close: int = 3) -> str:
    """``valid: a, b, c`` with the choices closest to ``bad`` first (and a "did you mean").

    For error messages about an unknown name, e.g. a misspelled model parameter::

        >>> valid_choices("n_epoch", ["layers", "n_epochs", "loss"])
        "did you mean 'n_epochs'? valid: n_epochs, layers, loss"
    """
    names = sorted(dict.fromkeys(str(v) for v in valid))
    nearest = difflib.get_close_matches(str(bad), names, n=close, cutoff=0.6)
    ordered = nearest + [n for n in names if n not in nearest]
    text = f"valid: {', '.join(ordered)}" if ordered else "there are no valid choices"
    return f"did you mean {nearest[0]!r}? {text}" if nearest else text
