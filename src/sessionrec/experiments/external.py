"""The config of an ``external`` variant: an outside recommender consumed over HTTP.

Seed 000 compares its model with a black-box recommendation service it calls over the
network. Such a service takes part in an experiment as a variant whose ``model`` is
``"external"``::

    [variants.outside]
    model = "external"
    weight = 0.5
    url = "http://127.0.0.1:9000/recommend"   # POST, JSON body
    auth_header = "Authorization"             # optional: header sent with every call ...
    auth_env = "OUTSIDE_AUTH"                 # ... its value from this environment variable
    timeout_s = 0.25                          # whole call: connect, send, answer
    breaker_failures = 5                      # failures in a row that open the circuit ...
    breaker_reset_s = 30                      # ... for this long (then one trial call)
    response = "recommendations"              # dotted path to the list in the answer's JSON
    response_item = "id"                      # entries are objects: the id field ("" : ids)
    [variants.outside.request]                # our field -> the service's field name
    session_id = "sessionId"
    user_id = "userId"
    product_ids = "itemIds"                   # the session's products, oldest first
    k = "count"

Any failure (timeout, refused connection, non-2xx, not JSON, no list at ``response``, ids
that are not text or integers, an empty list) or an open circuit makes control answer the
request, with ``fallback: true`` and the reason; the page never sees an error.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass, fields

EXTERNAL = "external"
REQUEST_FIELDS = ("session_id", "user_id", "product_ids", "k")


@dataclass(frozen=True)
class ExternalSpec:
    url: str
    auth_header: str = ""
    auth_env: str = ""
    timeout_s: float = 0.25
    breaker_failures: int = 5
    breaker_reset_s: float = 30.0
    request: tuple[tuple[str, str], ...] = tuple((f, f) for f in REQUEST_FIELDS)  # ours, theirs
    response: str = "recommendations"
    response_item: str = ""

    def auth_value(self) -> str | None:
        """The auth header's value from ``auth_env`` (read at each call: rotation works)."""
        if not self.auth_header:
            return None
        value = os.environ.get(self.auth_env, "")
        return value or None


@dataclass(frozen=True)
class RequestFields:
    """``[variants.NAME.request]``: our field -> the service's field name (default: ours)."""

    session_id: str = "session_id"
    user_id: str = "user_id"
    product_ids: str = "product_ids"
    k: str = "k"


@dataclass(frozen=True, kw_only=True)
class ExternalTable:
    """The keys only an external variant's table takes, as written (None: not given).

    Read by :func:`sessionrec.config.load_config` as part of a variant's table (types and
    unknown keys checked there); :func:`parse_external` checks the values.
    """

    url: str | None = None
    auth_header: str | None = None
    auth_env: str | None = None
    timeout_s: float | None = None
    breaker_failures: int | None = None
    breaker_reset_s: float | None = None
    request: RequestFields | None = None
    response: str | None = None
    response_item: str | None = None


EXTERNAL_KEYS = tuple(f.name for f in fields(ExternalTable))


def parse_external(table: ExternalTable, error: Callable[[str, str], Exception]) -> ExternalSpec:
    """An :class:`ExternalSpec` from a variant's table; ``error(key, message)`` builds the
    :class:`~sessionrec.errors.ConfigError` naming the file and key."""
    url = table.url
    if url is None or not url.startswith(("http://", "https://")):
        raise error("url", f"expected an http:// or https:// URL, got {url!r}")
    auth_header, auth_env = table.auth_header or "", table.auth_env or ""
    response = "recommendations" if table.response is None else table.response
    if auth_header and not auth_env:
        raise error("auth_env", "auth_header needs auth_env: the environment variable holding "
                                "its value (never the secret itself in the config)")
    if not response:
        raise error("response", "must name the field holding the list of product ids")
    numbers = {"timeout_s": 0.25 if table.timeout_s is None else table.timeout_s,
               "breaker_reset_s": 30.0 if table.breaker_reset_s is None
               else table.breaker_reset_s}
    for key, value in numbers.items():
        if not math.isfinite(value) or value <= 0:
            raise error(key, f"expected a number > 0, got {value!r}")
    failures = 5 if table.breaker_failures is None else table.breaker_failures
    if failures < 1:
        raise error("breaker_failures", f"expected an integer >= 1, got {failures!r}")
    request = table.request or RequestFields()
    for key in REQUEST_FIELDS:
        if not getattr(request, key):
            raise error(f"request.{key}", f"expected a field name, got {getattr(request, key)!r}")
    mapping = tuple((f, getattr(request, f)) for f in REQUEST_FIELDS)
    return ExternalSpec(url=url, auth_header=auth_header, auth_env=auth_env,
                        timeout_s=float(numbers["timeout_s"]), breaker_failures=failures,
                        breaker_reset_s=float(numbers["breaker_reset_s"]), request=mapping,
                        response=response, response_item=table.response_item or "")


def check_no_external_keys(table: ExternalTable, error: Callable[[str, str], Exception]) -> None:
    """Model variants take none of the external keys."""
    stray = [key for key in EXTERNAL_KEYS if getattr(table, key) is not None]
    if stray:
        raise error(stray[0], f"only an external variant (model = \"{EXTERNAL}\") takes it")
