"""The thread count every heavy command uses: --threads, else $SESSIONREC_THREADS, else 1."""

from __future__ import annotations

import pytest
import torch

from sessionrec.errors import ConfigError
from sessionrec.torch_env import resolve_threads, torch_threads, use_threads


def test_resolve_threads_order() -> None:
    assert resolve_threads(None, {}) == 1
    assert resolve_threads(None, {"SESSIONREC_THREADS": " 3 "}) == 3
    assert resolve_threads(2, {"SESSIONREC_THREADS": "3"}) == 2
    assert resolve_threads(0, {}) == 0


@pytest.mark.parametrize("given, env, message", [
    (-1, {}, "--threads must be 0"),
    (None, {"SESSIONREC_THREADS": "two"}, "SESSIONREC_THREADS='two' is not a whole number"),
    (None, {"SESSIONREC_THREADS": "-2"}, "SESSIONREC_THREADS must be 0"),
])
def test_resolve_threads_refuses_bad_values(given, env, message) -> None:
    with pytest.raises(ConfigError, match=message):
        resolve_threads(given, env)


def test_use_threads_sets_the_process_setting() -> None:
    with torch_threads(1):  # restored afterwards whatever happens
        assert use_threads(2) == 2 == torch.get_num_threads()
        assert use_threads(0) == 2  # 0 leaves the setting alone
