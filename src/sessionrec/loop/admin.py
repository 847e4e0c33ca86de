"""The server's admin channel as the loop uses it: which model is live, load another.

``GET /admin/model`` names the live model's directory and vocabulary; ``POST /admin/reload``
loads, health-checks and swaps a model (the old one keeps serving when that fails). Any
``httpx.Client`` works: a real one for ``serve.url``, or the tests' in-process client.
"""

from __future__ import annotations

import os
from typing import Any

import httpx

from sessionrec.errors import SessionRecError
from sessionrec.loop.config import ServeConfig


class AdminError(SessionRecError):
    """The server's admin channel could not be reached or refused a request."""


class AdminChannel:
    """Bearer-token calls to one server's ``/admin`` endpoints."""

    def __init__(self, client: httpx.Client, token: str) -> None:
        self.client = client
        self.headers = {"Authorization": f"Bearer {token}"}

    def _call(self, method: str, path: str, **kwargs: Any) -> dict:
        try:
            r = self.client.request(method, path, headers=self.headers, **kwargs)
        except httpx.HTTPError as err:
            raise AdminError(f"admin channel: {method} {path} at {self.client.base_url} "
                             f"failed: {err!r}; is the server running (serve.url)?") from err
        if r.status_code != 200:
            try:
                detail = r.json().get("detail", r.text)
            except ValueError:
                detail = r.text
            raise AdminError(f"admin channel: {method} {path} answered {r.status_code}: "
                             f"{detail}")
        return r.json()

    def live(self) -> dict:
        """The served model (``GET /admin/model``): model, tag, model_dir, vocab, ..."""
        return self._call("GET", "/admin/model")

    def reload(self, model: str, vocab: str, fallback: str | None = None) -> dict:
        """Serve ``model`` with ``vocab`` (``POST /admin/reload``); the new model's info."""
        body = {"model": model, "vocab": vocab}
        if fallback:
            body["fallback"] = fallback
        return self._call("POST", "/admin/reload", json=body)


def channel_for(cfg: ServeConfig) -> AdminChannel:
    """An :class:`AdminChannel` to ``cfg.url`` with the token from ``cfg.token_env``."""
    token = os.environ.get(cfg.token_env, "")
    if not token:
        raise AdminError(f"no admin token: set the environment variable {cfg.token_env} "
                         "(serve.token_env) to the server's admin token")
    return AdminChannel(httpx.Client(base_url=cfg.url, timeout=cfg.timeout_s), token)
