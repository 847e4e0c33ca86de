"""Vectorised building blocks shared by the classical baselines.

Everything here works on whole arrays (numpy / scipy.sparse): no Python loop runs once per
event or per matrix entry. Loops that remain run over a small, bounded range (distances up to
a rule window, chunks of a scoring batch).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

import numpy as np
import scipy.sparse as sp
import torch

from sessionrec.data.sessions import Sessions
from sessionrec.errors import ConfigError, SessionRecError

# Weight of a pair of events ``d`` positions apart (d >= 1). Used by the rule baselines.
DISTANCE_WEIGHTS: dict[str, Callable[[int], float]] = {
    "same": lambda d: 1.0,
    "div": lambda d: 1.0 / d,
    "quadratic": lambda d: 1.0 / (d * d),
    "linear": lambda d: max(1.0 - 0.1 * (d - 1), 0.0),
}


def check_choice(name: str, value: str, choices: Sequence[str]) -> str:
    """``value`` if it is one of ``choices``; ConfigError naming the parameter otherwise."""
    if value not in choices:
        raise ConfigError(f"{name}={value!r} is not one of {', '.join(map(repr, choices))}")
    return value


def check_positive(name: str, value: float, *, allow_zero: bool = False) -> None:
    """ConfigError unless ``value`` > 0 (or >= 0 with ``allow_zero``)."""
    if value < 0 or (value == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise ConfigError(f"{name} must be {bound}, got {value!r}")


def ragged_ranges(starts: np.ndarray, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Concatenate the index ranges ``starts[r] : starts[r] + lengths[r]``.

    Returns ``(owner, index)``, both int64 [lengths.sum()]: ``owner`` is the range ``r`` each
    index came from, ranges in order and indices ascending inside a range.
    """
    lengths = np.asarray(lengths, dtype=np.int64)
    owner = np.repeat(np.arange(len(lengths), dtype=np.int64), lengths)
    first = np.cumsum(lengths) - lengths
    index = np.asarray(starts, dtype=np.int64)[owner] + (np.arange(len(owner)) - first[owner])
    return owner, index


def run_starts(values: np.ndarray) -> np.ndarray:
    """int64 indices where a run of equal values starts (``values`` sorted or grouped)."""
    if len(values) == 0:
        return np.zeros(0, dtype=np.int64)
    new = np.ones(len(values), dtype=bool)
    new[1:] = values[1:] != values[:-1]
    return np.flatnonzero(new)


def group_rank(groups: np.ndarray) -> np.ndarray:
    """0, 1, 2, ... inside each run of equal values of a sorted ``groups`` array."""
    starts = run_starts(groups)
    n = len(groups)
    return np.arange(n, dtype=np.int64) - np.repeat(starts, np.diff(np.append(starts, n)))


def incidence(sessions: Sessions, *, binary: bool) -> sp.csr_matrix:
    """Session × item matrix [n_sessions, n_items], float64: event counts or 0/1."""
    rows = sessions.session_of_event()
    m = sp.csr_matrix(
        (np.ones(sessions.n_events), (rows, sessions.items)),
        shape=(sessions.n_sessions, sessions.n_items),
    )
    m.sum_duplicates()
    if binary:
        m.data[:] = 1.0
    return m


def event_pairs_by_distance(
    sessions: Sessions, max_distance: int | None
) -> Iterator[tuple[np.ndarray, np.ndarray, int]]:
    """All pairs of events of one session that lie ``d`` positions apart, for d = 1, 2, ...

    Yields ``(earlier, later, d)`` where ``earlier`` and ``later`` are event indices into
    ``sessions.items``. The loop runs over distances (at most ``max_distance`` or the longest
    session), each step vectorised over every event that has a partner ``d`` steps ahead.
    """
    lengths = sessions.lengths
    if sessions.n_events == 0:
        return
    remaining = np.repeat(lengths, lengths) - 1 - sessions.position_in_session()
    order = np.argsort(-remaining, kind="stable")  # events with most partners ahead first
    n_with = np.bincount(remaining, minlength=int(lengths.max()) + 1)[::-1].cumsum()[::-1]
    longest = int(lengths.max()) - 1
    last = longest if max_distance is None else min(longest, int(max_distance))
    for d in range(1, last + 1):
        earlier = order[: n_with[d]]
        yield earlier, earlier + d, d


def keep_top_per_row(m: sp.csr_matrix, n: int) -> sp.csr_matrix:
    """Keep the ``n`` largest entries of every row (ties: smaller column index first)."""
    m = m.tocsr()
    counts = np.diff(m.indptr)
    if n <= 0 or counts.max(initial=0) <= n:
        return m
    rows = np.repeat(np.arange(m.shape[0], dtype=np.int64), counts)
    order = np.lexsort((m.indices, -m.data, rows))
    keep = order[group_rank(rows[order]) < n]
    keep.sort()  # back to (row, column) order
    out = sp.csr_matrix((m.data[keep], (rows[keep], m.indices[keep])), shape=m.shape)
    out.sort_indices()
    return out


def drop_diagonal(m: sp.spmatrix) -> sp.csr_matrix:
    """``m`` without its diagonal entries (self-pairs), as canonical CSR."""
    coo = m.tocoo()
    off = coo.row != coo.col
    out = sp.csr_matrix((coo.data[off], (coo.row[off], coo.col[off])), shape=m.shape)
    out.sum_duplicates()
    out.eliminate_zeros()
    return out


def csr_state(prefix: str, m: sp.csr_matrix) -> dict[str, torch.Tensor]:
    """A CSR matrix as three 1-d tensors ``{prefix}_indptr / _indices / _data``."""
    return {
        f"{prefix}_indptr": torch.from_numpy(np.ascontiguousarray(m.indptr, dtype=np.int64)),
        f"{prefix}_indices": torch.from_numpy(np.ascontiguousarray(m.indices, dtype=np.int64)),
        f"{prefix}_data": torch.from_numpy(np.ascontiguousarray(m.data)),
    }


def csr_from_state(
    state: dict[str, torch.Tensor], prefix: str, shape: tuple[int, int]
) -> sp.csr_matrix:
    """Inverse of :func:`csr_state`."""
    return sp.csr_matrix(
        (
            state[f"{prefix}_data"].numpy(),
            state[f"{prefix}_indices"].numpy(),
            state[f"{prefix}_indptr"].numpy(),
        ),
        shape=shape,
    )


def check_state_keys(owner: object, state: dict[str, torch.Tensor], expected: set[str]) -> None:
    """SessionRecError unless ``state`` holds exactly the tensors ``expected``."""
    if set(state) != expected:
        raise SessionRecError(
            f"saved weights hold tensors {sorted(state)} but {type(owner).__name__} expects "
            f"{sorted(expected)}: the directory was written by another model or version"
        )


def flatten_prefixes(
    prefixes: list[np.ndarray],
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Concatenate a batch of prefixes.

    Returns ``(items, owner, position, length)``: int64 [n_events] item, prefix index and
    1-based position of each event, and int64 [B] prefix lengths.
    """
    length = np.fromiter((len(p) for p in prefixes), dtype=np.int64, count=len(prefixes))
    items = np.concatenate(prefixes).astype(np.int64) if prefixes else np.zeros(0, np.int64)
    owner = np.repeat(np.arange(len(prefixes), dtype=np.int64), length)
    position = np.arange(len(items), dtype=np.int64) - np.repeat(np.cumsum(length) - length,
                                                                 length) + 1
    return items, owner, position, length
