"""What the API accepts before it looks at a request: body size, strict JSON, short errors.

* the body size limit itself is FastAPI's (``FastAPI(max_body_size=...)``, Starlette's
  ``RequestBodyLimitMiddleware``): ``413`` at once when ``Content-Length`` exceeds
  ``max_body_bytes``, else as soon as the bytes received pass it (chunked uploads), so
  nothing beyond the limit is ever buffered or parsed;
* :class:`StrictJSONRoute` parses request bodies as strict JSON (RFC 8259): the literals
  ``NaN``, ``Infinity`` and ``-Infinity`` and numbers that overflow a float (``1e400``) are
  refused with ``422`` instead of becoming non-finite floats that no answer could encode.
* :func:`invalid_request` answers a ``422`` with ``loc``, ``msg`` and ``type`` of each error
  only: never the input (which may be huge, or hold values JSON cannot encode).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute

MAX_ERRORS = 20  # errors listed in one 422 answer
MAX_MESSAGE = 300  # characters of one error message


class NonFiniteNumber(json.JSONDecodeError):
    """A JSON number that is not finite (``NaN``, ``Infinity``, ``1e400``)."""


def _constant(doc: str) -> Callable[[str], float]:
    def refuse(name: str) -> float:
        raise NonFiniteNumber(f"{name} is not a JSON number (non-finite numbers are refused)",
                              doc, max(doc.find(name), 0))

    return refuse


def _finite_float(doc: str) -> Callable[[str], float]:
    def parse(text: str) -> float:
        value = float(text)
        if not math.isfinite(value):
            raise NonFiniteNumber(f"number {text[:40]} is out of range (a float overflows)",
                                  doc, max(doc.find(text), 0))
        return value

    return parse


def _bounded_int(doc: str) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            return int(text)
        except ValueError:  # more digits than Python converts (sys.get_int_max_str_digits)
            raise NonFiniteNumber(f"integer of {len(text)} digits is out of range", doc,
                                  max(doc.find(text), 0)) from None

    return parse


def loads_strict(body: bytes | str):
    """``json.loads`` without non-finite numbers (:class:`NonFiniteNumber` instead), integers
    too long to convert, or nesting deeper than the interpreter's recursion limit."""
    doc = body.decode("utf-8") if isinstance(body, bytes) else body
    try:
        return json.loads(doc, parse_constant=_constant(doc), parse_float=_finite_float(doc),
                          parse_int=_bounded_int(doc))
    except RecursionError:
        raise json.JSONDecodeError("arrays or objects nested too deeply", doc, 0) from None


class StrictRequest(Request):
    async def json(self):
        if not hasattr(self, "_json"):
            self._json = loads_strict(await self.body())
        return self._json


class StrictJSONRoute(APIRoute):
    """A route whose JSON bodies are parsed by :func:`loads_strict`."""

    def get_route_handler(self) -> Callable:
        handler = super().get_route_handler()

        async def strict(request: Request) -> Response:
            return await handler(StrictRequest(request.scope, request.receive))

        return strict


def _short(error: dict) -> dict:
    msg = str(error.get("msg", ""))
    ctx = error.get("ctx") or {}
    if error.get("type") == "json_invalid" and "error" in ctx:
        msg = f"{msg}: {ctx['error']}"
    if len(msg) > MAX_MESSAGE:
        msg = msg[:MAX_MESSAGE] + "..."
    loc = [part if isinstance(part, int) else str(part)[:MAX_MESSAGE]
           for part in error.get("loc", ())]
    return {"loc": loc, "msg": msg, "type": str(error.get("type", ""))}


class AsciiJSONResponse(JSONResponse):
    """JSON with non-ASCII characters escaped: an error's ``loc`` may name an unknown field
    spelled with a lone surrogate (``"\\ud800"`` is valid JSON) that UTF-8 cannot encode."""

    def render(self, content) -> bytes:
        return json.dumps(content, ensure_ascii=True, allow_nan=False,
                          separators=(",", ":")).encode("ascii")


async def invalid_request(request: Request, exc: RequestValidationError) -> Response:
    """422 naming each field and what is wrong with it, without echoing the input."""
    errors = list(exc.errors())
    detail = [_short(e) for e in errors[:MAX_ERRORS]]
    if len(errors) > MAX_ERRORS:
        detail.append({"loc": [], "msg": f"... and {len(errors) - MAX_ERRORS} more errors",
                       "type": "too_many_errors"})
    return AsciiJSONResponse(status_code=422, content={"detail": detail})
