"""Process-wide torch settings, changed for a block and restored afterwards."""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

import torch


@contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """Run the block with ``n`` intra-op threads (None or 0: leave the setting alone)."""
    if not n:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(int(n))
    try:
        yield
    finally:
        torch.set_num_threads(before)


def flush_denormal_enabled() -> bool:
    """Whether denormal floats are flushed to zero now (torch has no getter for it)."""
    return (torch.tensor([1e-39], dtype=torch.float32) * 1.0).item() == 0.0


@contextmanager
def flush_denormal() -> Iterator[None]:
    """Flush denormal floats to zero in the block, then restore the previous setting.

    A well-trained softmax underflows into denormals, which a CPU handles ~100x slower;
    flushing them changes no result that matters.
    """
    before = flush_denormal_enabled()
    torch.set_flush_denormal(True)
    try:
        yield
    finally:
        torch.set_flush_denormal(before)


THREADS_ENV = "SESSIONREC_THREADS"
# One intra-op thread: the training loops run many small operations per mini-batch, which a
# second thread barely speeds up on an idle machine and slows down several-fold when another
# process competes for the cores (OpenMP workers spin-waiting for a descheduled sibling).
# Measured in benchmarks/threads.py (docs/benchmarks.md, "Torch threads").
DEFAULT_THREADS = 1


def resolve_threads(n: int | None, environ: Mapping[str, str] | None = None) -> int:
    """The thread count a command uses: ``n`` if given, else ``$SESSIONREC_THREADS``, else 1.

    0 means torch's own default (one thread per core). Raises ConfigError on a negative or
    non-integer value, naming where it came from.
    """
    from sessionrec.errors import ConfigError

    if n is None:
        raw = (os.environ if environ is None else environ).get(THREADS_ENV, "").strip()
        if not raw:
            return DEFAULT_THREADS
        try:
            n = int(raw)
        except ValueError:
            raise ConfigError(f"{THREADS_ENV}={raw!r} is not a whole number of threads "
                              "(0: torch's default)") from None
        source = THREADS_ENV
    else:
        source = "--threads"
    if n < 0:
        raise ConfigError(f"{source} must be 0 (torch's default) or more, got {n}")
    return n


def use_threads(n: int) -> int:
    """Set torch's process-wide intra-op threads (0: leave torch's default); the count in use.

    Every model whose own ``threads`` parameter is 0 (the default) trains and scores with it.
    """
    if n:
        torch.set_num_threads(n)
    return torch.get_num_threads()
