"""Settings of the serving app, from keyword arguments or ``SESSIONREC_*`` environment variables.

Every field ``name`` can be set as ``SESSIONREC_<NAME>`` (``SESSIONREC_STORE=redis://...``,
``SESSIONREC_SESSION_TTL_S=900``); that is how ``sessionrec serve --workers N`` hands them to
its worker processes. A wrong value raises :class:`ConfigError` naming the variable.

The admin token never travels on a command line or in the environment handed to workers:
give it as ``SESSIONREC_ADMIN_TOKEN`` or in a file (``admin_token_file``, read when the
settings are made; workers get the file's path, not the token).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from sessionrec.errors import ConfigError

ENV_PREFIX = "SESSIONREC_"


@dataclass(frozen=True)
class ServeSettings:
    model: str = ""  # run directory or model directory (not needed with an experiment)
    vocab: str = ""  # items.parquet or prepared directory ("": found from the run)
    fallback: str = ""  # item-to-item run for fallbacks ("": RUN_DIR/../cooc, or popularity)
    blocked_file: str = ""  # ProductIds never recommended, one per line
    store: str = "memory"  # "memory" or redis://host:port/db
    redis_prefix: str = "sessionrec:"
    session_ttl_s: float = 1800.0  # a session ends after 30 min without events
    user_ttl_s: float = 90 * 86400.0  # a user's state is kept 90 days after their last session
    max_sessions: int = 1_000_000  # memory store: LRU bound
    max_users: int = 1_000_000  # memory store: LRU bound
    store_timeout_s: float = 0.25  # Redis socket timeouts
    store_failures: int = 3  # store errors in a row that switch to the fallback ...
    store_retry_s: float = 1.0  # ... for this long, then try the store again
    max_retries: int = 50  # compare-and-set attempts per event (random backoff between)
    default_k: int = 20
    max_k: int = 100
    exclude_seen: bool = True  # never recommend the session's own items
    max_seen: int = 100  # seen items kept per session (for the filter and the fallback)
    admin_token: str = field(default="", repr=False)  # bearer token of /admin/*; "": off
    admin_token_file: str = ""  # or: a file holding it (read at start; workers get the path)
    max_body_bytes: int = 262_144  # larger request bodies get a 413 before they are parsed
    sweep_interval_s: float = 10.0  # how often ended sessions are collected
    reload_poll_s: float = 1.0  # Redis store: how often workers look for a reload
    max_batch: int = 64  # model steps computed together
    compute_thread: bool = False  # model steps on a thread of their own (default: event loop)
    torch_threads: int = 1  # per worker
    experiment: str = ""  # experiment TOML: serve its variants (A/B/n test) instead of model
    event_log: str = ""  # sqlite:///path.db | postgresql://... ("": events.db beside the TOML)
    event_log_timeout_s: float = 2.0  # longest wait for an event log write or lookup
    archive: str = ""  # event archive: sqlite:///archive.db | postgresql://... ("": off)
    ui: bool = True  # the web console under /ui (sessionrec.console)
    ui_private: bool = False  # console pages need the admin token too (else only its actions)
    ui_compare: str = ""  # extra models shown side by side in the console: NAME=RUN_DIR,...
    basket_model: str = ""  # basket placement: obt or cooc run ("": the served fallback)
    rank_model: str = ""  # click-probability run (ALPINE, ...) served on /v1/rank ("": off)
    max_candidates: int = 500  # /v1/rank: candidates per request
    embeddings: str = ""  # p2v: embedding store with cold-start products (embed --from-run)

    def __post_init__(self) -> None:
        checks = {
            "session_ttl_s": self.session_ttl_s > 0, "user_ttl_s": self.user_ttl_s > 0,
            "max_sessions": self.max_sessions >= 1, "max_users": self.max_users >= 1,
            "store_timeout_s": self.store_timeout_s > 0, "store_retry_s": self.store_retry_s >= 0,
            "store_failures": self.store_failures >= 1,
            "max_retries": self.max_retries >= 1, "default_k": 1 <= self.default_k <= self.max_k,
            "max_k": self.max_k >= 1, "max_seen": self.max_seen >= 0,
            "sweep_interval_s": self.sweep_interval_s > 0,
            "reload_poll_s": self.reload_poll_s > 0, "max_batch": self.max_batch >= 1,
            "torch_threads": self.torch_threads >= 1,
            "event_log_timeout_s": self.event_log_timeout_s > 0,
            "max_body_bytes": self.max_body_bytes >= 1024,
            "max_candidates": self.max_candidates >= 1,
        }
        for name, ok in checks.items():
            if not ok:
                raise ConfigError(f"serve setting {name} = {getattr(self, name)!r} is out of "
                                  f"range (SESSIONREC_{name.upper()})")
        if self.admin_token_file:
            if self.admin_token:
                raise ConfigError("serve settings admin_token and admin_token_file are both "
                                  "set: give the token one way (SESSIONREC_ADMIN_TOKEN or "
                                  "--admin-token-file)")
            object.__setattr__(self, "admin_token", read_token(self.admin_token_file))
        if self.ui_private and not self.admin_token:
            raise ConfigError("serve setting ui_private needs an admin token (SESSIONREC_ADMIN_"
                              "TOKEN or --admin-token-file): the console pages ask for it")
        if not self.model and not self.experiment:
            raise ConfigError("serve setting model is empty: give --model RUN_DIR "
                              "(or SESSIONREC_MODEL), or --experiment EXP.toml")

    def event_log_url(self, experiment_file: str | Path) -> str:
        """``event_log``, else an SQLite file ``events.db`` beside the experiment's TOML."""
        if self.event_log:
            return self.event_log
        return f"sqlite:///{Path(experiment_file).parent / 'events.db'}"

    def blocked(self) -> list[str]:
        """The ProductIds of ``blocked_file`` (empty lines and ``#`` comments skipped)."""
        if not self.blocked_file:
            return []
        path = Path(self.blocked_file)
        if not path.is_file():
            raise ConfigError(f"serve setting blocked_file: {path} does not exist")
        lines = path.read_text(encoding="utf-8").splitlines()
        return [s for s in (line.strip() for line in lines) if s and not s.startswith("#")]

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides) -> ServeSettings:
        """Settings from ``SESSIONREC_*`` variables, then ``overrides``."""
        environ = os.environ if environ is None else environ
        values: dict = {}
        for f in dataclasses.fields(cls):
            var = ENV_PREFIX + f.name.upper()
            if var in environ:
                values[f.name] = _parse(environ[var], f.type, var)
        values.update({k: v for k, v in overrides.items() if v is not None})
        if "model" not in values and not values.get("experiment"):
            raise ConfigError("serve setting model is missing: give --model RUN_DIR "
                              "(or SESSIONREC_MODEL), or --experiment EXP.toml")
        return cls(**values)

    def to_env(self) -> dict[str, str]:
        """The ``SESSIONREC_*`` variables that reproduce these settings, the admin token
        left out (it stays where it was given: the environment, or its file)."""
        return {ENV_PREFIX + f.name.upper(): str(getattr(self, f.name))
                for f in dataclasses.fields(self) if f.name != "admin_token"}


def read_token(path: str | Path) -> str:
    """The admin token in a file (surrounding whitespace and a final newline dropped)."""
    path = Path(path)
    try:
        token = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(f"serve setting admin_token_file: cannot read {path}: {err}") from None
    if not token:
        raise ConfigError(f"serve setting admin_token_file: {path} is empty")
    return token


def _parse(raw: str, tp: str, var: str):
    text = raw.strip()
    try:
        if tp == "bool":
            if text.lower() in ("1", "true", "yes", "on"):
                return True
            if text.lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError("expected true/false")
        if tp == "int":
            return int(text)
        if tp == "float":
            return float(text)
    except ValueError as err:
        raise ConfigError(f"{var}={raw!r} is not a valid {tp}: {err}") from None
    return raw
