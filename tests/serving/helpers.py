"""Helpers of the serving tests: hand-computable test models, bundles, a private Redis.

``TinyRNN`` has 4 items (ProductIds 10, 11, 12, 13) and a 2-float state::

    E  = [[1, 0], [0, 1], [1, 1], [-1, 0]]     item embeddings (also the output weights)
    b  = [0, 0.1, 0.2, 0]                      output bias
    advance(s, i)        = 0.5 s + E[i]        (unknown items: s unchanged)
    scores_from_state(s) = s E^T + b

so after clicking item 0 (ProductId 10) the state is [1, 0] and the scores [1, 0.1, 1.2, -1];
then item 1: state [0.5, 1], scores [0.5, 1.1, 1.7, -0.5]. ``TinyUserRNN`` adds a user
state: a session starts from its user's state and ``advance_user(u, s) = 0.5 u + s``.

Redis tests use ``SESSIONREC_TEST_REDIS`` (default ``redis://127.0.0.1:6379/15``) with a key
prefix of their own. Without a server they skip, unless ``SESSIONREC_REQUIRE_REDIS=1`` (CI),
where they fail.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from sessionrec.data.sessions import Sessions
from sessionrec.serving.bundle import Bundle
from sessionrec.serving.fallback import Fallback
from sessionrec.serving.settings import ServeSettings
from sessionrec.serving.step import ModelStep, SimilarItems
from sessionrec.serving.vocab import Vocabulary

with warnings.catch_warnings():  # starlette prefers httpx2 for its TestClient; httpx works
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient  # noqa: F401  (re-exported for the tests)

IDS = [10, 11, 12, 13]
E = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [-1.0, 0.0]])
B = torch.tensor([0.0, 0.1, 0.2, 0.0])
POPULARITY = torch.tensor([0.5, 1.0, 0.25, 0.75])  # popular order: 11, 13, 10, 12
# Sessions containing both items: 0-1 three times, 1-2 twice, 0-3 once.
COOC = sp.csr_matrix(np.array([[0, 3, 0, 1], [3, 0, 2, 0], [0, 2, 0, 0], [1, 0, 0, 0]],
                              dtype=np.float32))
REDIS_URL = os.environ.get("SESSIONREC_TEST_REDIS", "redis://127.0.0.1:6379/15")


class TinyRNN:
    """The hand-computable recurrent model of the module docstring."""

    name = "tiny-rnn"
    state_size = 2

    def __init__(self, fail: bool = False) -> None:
        self.n_items_ = 4
        self.popularity_ = POPULARITY.clone()
        self.fail = fail

    def initial_state(self, n: int) -> torch.Tensor:
        return torch.zeros((n, 2))

    def advance(self, state: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        if self.fail:
            raise RuntimeError("tiny-rnn was told to fail")
        known = (items >= 0) & (items < 4)
        new = 0.5 * state + E[items.clamp(0, 3)]
        return torch.where(known.unsqueeze(1), new, state)

    def scores_from_state(self, state: torch.Tensor) -> torch.Tensor:
        return state @ E.T + B

    def item_embeddings(self) -> torch.Tensor:
        return E


class TinyUserRNN(TinyRNN):
    """TinyRNN with a user state: sessions start from it, ended sessions advance it."""

    name = "tiny-user-rnn"
    user_state_size = 2

    def session_start_state(self, users: torch.Tensor) -> torch.Tensor:
        return users.clone()

    def advance_user(self, users: torch.Tensor, sessions: torch.Tensor) -> torch.Tensor:
        return 0.5 * users + sessions


class TinyTrainedUserRNN(TinyUserRNN):
    """TinyUserRNN that learned the state [2, 0] for its training user 0."""

    def user_state_of(self, users: np.ndarray) -> torch.Tensor:
        return torch.tensor([[2.0, 0.0] if u == 0 else [0.0, 0.0] for u in users])


def make_bundle(model=None, key: bytes = b"tinykey1", blocked: list[int] | None = None,
                cooc: bool = True, users: dict[str, int] | None = None) -> Bundle:
    model = model or TinyRNN()
    vocab = Vocabulary(IDS, "4:tiny")
    blocked_idx = np.asarray([vocab.index_of(b) for b in blocked or []], dtype=np.int64)
    step = ModelStep(model, blocked_idx)
    fallback = Fallback(model.popularity_.numpy(), COOC if cooc else None, blocked_idx,
                        name="cooc")
    return Bundle(model, step, vocab, fallback, SimilarItems(E, step.blocked), Path("."), key,
                  list(blocked or []), users or {})


def settings(**kw) -> ServeSettings:
    base = {"model": "in-memory", "store_retry_s": 0.0, "sweep_interval_s": 3600.0}
    base.update(kw)
    return ServeSettings(**base)


def run(coro):
    return asyncio.run(coro)


# -- on-disk runs -----------------------------------------------------------------------------
N_ITEMS = 12
PRODUCTS = [100 + i for i in range(N_ITEMS)]


N_USERS = 10
USERS = [1000 + u for u in range(N_USERS)]  # user_idx u is the shop's user 1000 + u


def cyclic_sessions(vocab: str) -> Sessions:
    """Sessions walking i, i+1, i+2, ... (mod 12), of users 0..9 in turn."""
    rng = np.random.default_rng(0)
    lists = []
    for _ in range(120):
        start, length = rng.integers(0, N_ITEMS), rng.integers(2, 6)
        lists.append([(start + j) % N_ITEMS for j in range(length)])
    base = Sessions.from_lists(lists, N_ITEMS, users=[i % N_USERS for i in range(len(lists))])
    return Sessions(base.items, base.offsets, base.ts, base.users, base.session_ids, N_ITEMS,
                    vocab)


# -- Redis ------------------------------------------------------------------------------------
def unavailable(reason: str) -> None:
    if os.environ.get("SESSIONREC_REQUIRE_REDIS") == "1":
        pytest.fail(f"SESSIONREC_REQUIRE_REDIS=1 but {reason}")
    pytest.skip(reason)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RedisServer:
    """A private redis-server process (for tests that stop and restart it)."""

    def __init__(self, binary: str) -> None:
        self.binary = binary
        self.port = free_port()
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        import redis

        self.proc = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            try:
                redis.Redis(port=self.port, socket_connect_timeout=0.1).ping()
                return
            except Exception:
                time.sleep(0.02)
        raise RuntimeError(f"redis-server did not start on port {self.port}")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(5)
            self.proc = None
