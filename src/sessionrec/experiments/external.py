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
from dataclasses import dataclass

EXTERNAL = "external"
REQUEST_FIELDS = ("session_id", "user_id", "product_ids", "k")
EXTERNAL_KEYS = {"url", "auth_header", "auth_env", "timeout_s", "breaker_failures",
                 "breaker_reset_s", "request", "response", "response_item"}


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


def parse_external(table: dict, error) -> ExternalSpec:
    """An :class:`ExternalSpec` from a variant's table; ``error(key, message)`` builds the
    :class:`~sessionrec.errors.ConfigError` naming the file and key."""
    url = table.get("url")
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise error("url", f"expected an http:// or https:// URL, got {url!r}")
    texts = {}
    for key in ("auth_header", "auth_env", "response", "response_item"):
        value = table.get(key, "recommendations" if key == "response" else "")
        if not isinstance(value, str):
            raise error(key, f"expected a string, got {value!r}")
        texts[key] = value
    if texts["auth_header"] and not texts["auth_env"]:
        raise error("auth_env", "auth_header needs auth_env: the environment variable holding "
                                "its value (never the secret itself in the config)")
    if not texts["response"]:
        raise error("response", "must name the field holding the list of product ids")
    numbers = {}
    for key, default in (("timeout_s", 0.25), ("breaker_reset_s", 30.0)):
        value = table.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int | float) \
                or not math.isfinite(value) or value <= 0:
            raise error(key, f"expected a number > 0, got {value!r}")
        numbers[key] = value
    failures = table.get("breaker_failures", 5)
    if isinstance(failures, bool) or not isinstance(failures, int) or failures < 1:
        raise error("breaker_failures", f"expected an integer >= 1, got {failures!r}")
    numbers["breaker_failures"] = failures
    request = table.get("request", {})
    if not isinstance(request, dict):
        raise error("request", "expected a table: our field -> the service's field name")
    unknown = sorted(set(request) - set(REQUEST_FIELDS))
    if unknown:
        raise error(f"request.{unknown[0]}", f"unknown field (known: {', '.join(REQUEST_FIELDS)})")
    for key, value in request.items():
        if not isinstance(value, str) or not value:
            raise error(f"request.{key}", f"expected a field name, got {value!r}")
    mapping = tuple((f, request.get(f, f)) for f in REQUEST_FIELDS)
    return ExternalSpec(url=url, timeout_s=float(numbers["timeout_s"]),
                        breaker_failures=int(numbers["breaker_failures"]),
                        breaker_reset_s=float(numbers["breaker_reset_s"]), request=mapping,
                        **texts)


def check_no_external_keys(table: dict, error) -> None:
    """Model variants take none of the external keys."""
    stray = sorted(set(table) & EXTERNAL_KEYS)
    if stray:
        raise error(stray[0], f"only an external variant (model = \"{EXTERNAL}\") takes it")

