"""Process-wide torch settings, changed for a block and restored afterwards."""

from __future__ import annotations

from collections.abc import Iterator
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
