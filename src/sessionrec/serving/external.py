"""Calling an outside recommender over HTTP (an experiment's ``external`` variant).

:class:`ExternalRecommender` posts the session to the service of an
:class:`~sessionrec.experiments.external.ExternalSpec` (fields renamed by its ``request``
mapping, the auth header from its environment variable) and reads the product ids at its
``response`` path. Everything that can go wrong becomes :class:`ExternalFailed` with a short
``reason`` (``timeout``, ``unreachable``, ``http_<status>``, ``not_json``, ``bad_response``,
``empty``, ``circuit_open``): the router then answers from control with ``fallback: true``.

:class:`CircuitBreaker`: after ``breaker_failures`` failures in a row the circuit opens and no
call is made for ``breaker_reset_s`` (a slow or dead service costs nothing meanwhile); then
one trial call is let through (half open): success closes the circuit, failure opens it again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

import httpx

from sessionrec.experiments.external import ExternalSpec

log = logging.getLogger(__name__)

MAX_ID_LENGTH = 128


class ExternalFailed(Exception):
    """The external service gave no usable answer; ``reason`` says why (a metric label)."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


class CircuitBreaker:
    """Closed -> open after ``failures`` failures in a row -> half open after ``reset_s``."""

    def __init__(self, failures: int, reset_s: float, clock: Callable[[], float] = time.monotonic
                 ) -> None:
        self.failures = failures
        self.reset_s = reset_s
        self.clock = clock
        self.in_a_row = 0
        self.opened_at: float | None = None
        self.trial = False  # a half-open trial call is under way

    @property
    def state(self) -> str:
        if self.opened_at is None:
            return "closed"
        return "half_open" if self.clock() - self.opened_at >= self.reset_s else "open"

    def allow(self) -> bool:
        """Whether a call may go out now (in half-open state only one at a time)."""
        state = self.state
        if state == "closed":
            return True
        if state == "half_open" and not self.trial:
            self.trial = True
            return True
        return False

    def succeeded(self) -> None:
        self.in_a_row, self.opened_at, self.trial = 0, None, False

    def failed(self) -> None:
        self.in_a_row += 1
        if self.trial or self.in_a_row >= self.failures:
            if self.opened_at is None or self.trial:
                log.warning("external recommender: circuit opened after %d failure(s)",
                            self.in_a_row)
            self.opened_at = self.clock()
        self.trial = False


def _at(body, path: str):
    for part in path.split("."):
        if not isinstance(body, dict) or part not in body:
            raise ExternalFailed("bad_response", f"no field {path!r} in the answer")
        body = body[part]
    return body


def parse_ids(body, spec: ExternalSpec, k: int) -> list[int | str]:
    """The first ``k`` distinct product ids of an answer, or :class:`ExternalFailed`."""
    found = _at(body, spec.response)
    if not isinstance(found, list):
        raise ExternalFailed("bad_response", f"{spec.response!r} is not a list")
    ids: list[int | str] = []
    for entry in found:
        if spec.response_item:
            if not isinstance(entry, dict) or spec.response_item not in entry:
                raise ExternalFailed("bad_response", f"an entry lacks {spec.response_item!r}")
            entry = entry[spec.response_item]
        ok = (isinstance(entry, int) and not isinstance(entry, bool)) or (
            isinstance(entry, str) and 0 < len(entry) <= MAX_ID_LENGTH and "\x00" not in entry)
        if not ok:
            raise ExternalFailed("bad_response", f"{entry!r} is not a product id")
        if entry not in ids:
            ids.append(entry)
        if len(ids) == k:
            break
    if not ids:
        raise ExternalFailed("empty", "the service recommended nothing")
    return ids


class ExternalRecommender:
    """One outside service: an HTTP client with a timeout and a circuit breaker."""

    def __init__(self, spec: ExternalSpec, clock: Callable[[], float] = time.monotonic,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.spec = spec
        self.breaker = CircuitBreaker(spec.breaker_failures, spec.breaker_reset_s, clock)
        self.client = httpx.AsyncClient(timeout=spec.timeout_s, transport=transport,
                                        follow_redirects=False)

    def payload(self, session_id: str, user_id: str | None, product_ids: list,
                k: int) -> dict:
        names = dict(self.spec.request)
        return {names["session_id"]: session_id, names["user_id"]: user_id,
                names["product_ids"]: product_ids, names["k"]: k}

    async def recommend(self, session_id: str, user_id: str | None, product_ids: list,
                        k: int) -> list[int | str]:
        """Up to ``k`` product ids from the service, or :class:`ExternalFailed`."""
        if not self.breaker.allow():
            raise ExternalFailed("circuit_open")
        try:
            ids = await asyncio.wait_for(self._call(session_id, user_id, product_ids, k),
                                         self.spec.timeout_s)
        except ExternalFailed:
            self.breaker.failed()
            raise
        except (TimeoutError, httpx.TimeoutException):
            self.breaker.failed()
            raise ExternalFailed("timeout", f"no answer within {self.spec.timeout_s:g} s"
                                 ) from None
        except httpx.HTTPError as err:
            self.breaker.failed()
            raise ExternalFailed("unreachable", type(err).__name__) from None
        self.breaker.succeeded()
        return ids

    async def _call(self, session_id, user_id, product_ids, k) -> list[int | str]:
        headers = {}
        auth = self.spec.auth_value()
        if auth is not None:
            headers[self.spec.auth_header] = auth
        r = await self.client.post(self.spec.url, headers=headers,
                                   json=self.payload(session_id, user_id, product_ids, k))
        if not 200 <= r.status_code < 300:
            raise ExternalFailed(f"http_{r.status_code}")
        try:
            body = r.json()
        except ValueError:
            raise ExternalFailed("not_json", "the answer is not JSON") from None
        return parse_ids(body, self.spec, k)

    async def close(self) -> None:
        await self.client.aclose()
