"""Who may use the console: the admin bearer token, sent as a header or kept in a cookie.

Actions that change the server (reload) always need the token; the read-only pages need it
only with ``ui_private``. A browser cannot send an ``Authorization`` header on a page load, so
``/ui/login`` takes the token once and keeps it in an HttpOnly, SameSite=Strict cookie.
"""

from __future__ import annotations

import hmac

from fastapi import Request

from sessionrec.serving.settings import ServeSettings

COOKIE = "sessionrec_console_token"


def _same(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode(), expected.encode())


def has_token(request: Request, settings: ServeSettings) -> bool:
    """Whether the request carries the admin token (header or cookie); never without one."""
    if not settings.admin_token:
        return False
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and _same(token, settings.admin_token):
        return True
    cookie = request.cookies.get(COOKIE)
    return cookie is not None and _same(cookie, settings.admin_token)


def may_read(request: Request, settings: ServeSettings) -> bool:
    return not settings.ui_private or has_token(request, settings)
