"""The index the session-kNN family (sknn, vsknn, stan) searches for neighbour sessions.

Training sessions are stored in *recency order*: row 0 is the session whose last event is the
most recent (ties: the session that comes later in the training data first). Each item's
postings list is therefore sorted with the most recent session first, and "the ``m`` most
recent sessions that share an item with the prefix" is the ``m`` smallest row numbers in the
union of the prefix items' postings, which only needs the first ``m`` entries of each list.

Building the index is a handful of array operations; searching it is vectorised over a whole
batch of prefixes: candidate (prefix, session) pairs come from the postings of the prefix
items (one sort, one ``reduceat``), the top ``k`` per prefix from two stable sorts, and only
those neighbours are expanded to their items. Nothing loops over prefixes or events.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import scipy.sparse as sp
import torch

from sessionrec.data.sessions import Sessions
from sessionrec.errors import SessionRecError
from sessionrec.models.baselines._sparse import (
    check_state_keys,
    flatten_prefixes,
    group_rank,
    incidence,
    ragged_ranges,
    run_starts,
)


@dataclass(frozen=True)
class SessionIndex:
    """Training sessions (recency order) with their item sets, postings and times.

    Attributes:
        items_indptr, items: CSR [n_sessions, n_items] of each session's distinct items.
        postings_indptr, postings: CSR [n_items, n_sessions]: the rows of the sessions that
            contain each item, ascending (most recent first).
        times: int64 [n_sessions], last event time (Unix s) of each session, non-increasing.
        seq_indptr, seq_items: every session's full event sequence in order (kept only when
            positions inside neighbour sessions matter, i.e. for STAN), else ``None``.
    """

    items_indptr: np.ndarray
    items: np.ndarray
    postings_indptr: np.ndarray
    postings: np.ndarray
    times: np.ndarray
    seq_indptr: np.ndarray | None = None
    seq_items: np.ndarray | None = None

    @classmethod
    def build(cls, train: Sessions, *, sequences: bool = False) -> SessionIndex:
        """Index the non-empty sessions of ``train``."""
        nonempty = np.flatnonzero(train.lengths > 0)
        # ts is ordered inside a session, but take the maximum rather than trust it
        last_ts = np.maximum.reduceat(train.ts, train.offsets[:-1][nonempty]) if len(
            nonempty) else np.zeros(0, dtype=np.int64)
        order = np.lexsort((-nonempty, -last_ts))
        ranked = train.subset(nonempty[order])
        b = incidence(ranked, binary=True)
        b.sort_indices()
        post = b.T.tocsr()
        post.sort_indices()
        return cls(
            items_indptr=b.indptr.astype(np.int64),
            items=b.indices.astype(np.int64),
            postings_indptr=post.indptr.astype(np.int64),
            postings=post.indices.astype(np.int64),
            times=last_ts[order].astype(np.int64),
            seq_indptr=ranked.offsets.astype(np.int64) if sequences else None,
            seq_items=ranked.items.astype(np.int64) if sequences else None,
        )

    @property
    def n_sessions(self) -> int:
        return len(self.times)

    @cached_property
    def n_distinct(self) -> np.ndarray:
        """int64 [n_sessions]: number of distinct items of each session."""
        return np.diff(self.items_indptr)

    @cached_property
    def incidence(self) -> sp.csr_matrix:
        """float64 CSR [n_sessions, n_items]: 1 where a session contains an item."""
        n_items = len(self.postings_indptr) - 1
        return sp.csr_matrix((np.ones(len(self.items)), self.items, self.items_indptr),
                             shape=(self.n_sessions, n_items))

    @cached_property
    def document_frequency(self) -> np.ndarray:
        """int64 [n_items]: number of sessions that contain each item."""
        return np.diff(self.postings_indptr)

    # -- persistence ------------------------------------------------------------------------
    _FIELDS = ("items_indptr", "items", "postings_indptr", "postings", "times")
    _SEQ_FIELDS = ("seq_indptr", "seq_items")

    def state(self) -> dict[str, torch.Tensor]:
        """All arrays as 1-d tensors named ``index_<field>``."""
        names = self._FIELDS + (self._SEQ_FIELDS if self.seq_items is not None else ())
        return {f"index_{n}": torch.from_numpy(np.ascontiguousarray(getattr(self, n)))
                for n in names}

    @classmethod
    def from_state(
        cls, owner: object, state: dict[str, torch.Tensor], *, sequences: bool
    ) -> SessionIndex:
        """Inverse of :meth:`state`; SessionRecError if the tensors do not match."""
        names = cls._FIELDS + (cls._SEQ_FIELDS if sequences else ())
        check_state_keys(owner, state, {f"index_{n}" for n in names})
        return cls(**{n: state[f"index_{n}"].numpy() for n in names})

    # -- search -----------------------------------------------------------------------------
    def candidates(
        self, query: PrefixBatch, sample_size: int, weights: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """The ``sample_size`` most recent sessions sharing an item with each prefix.

        ``weights`` has one value per distinct (prefix, item) entry of ``query``. Returns
        ``(prefix, session, dot, latest)``, each [n_pairs], sorted by prefix, then recency:
        ``dot`` sums the weights of the prefix items the session contains and ``latest`` is
        the largest ``query.last_position`` among them.

        Only the first ``sample_size`` sessions of each item's postings are read: a session
        among the ``sample_size`` most recent of the union is also among the ``sample_size``
        most recent of every list it is on, so it meets each of its shared items there and
        ``dot`` / ``latest`` need no second pass over the sessions' items.
        """
        starts = self.postings_indptr[query.item]
        lengths = np.minimum(self.postings_indptr[query.item + 1] - starts, sample_size)
        entry, idx = ragged_ranges(starts, lengths)
        n = max(self.n_sessions, 1)
        key = query.prefix[entry] * n + self.postings[idx]
        # runs are already sorted (each postings slice ascends), which a stable sort exploits
        order = np.argsort(key, kind="stable")
        key, entry = key[order], entry[order]
        first = run_starts(key)
        if len(first) == 0:
            empty = np.zeros(0, dtype=np.int64)
            return empty, empty, np.zeros(0), empty
        key = key[first]
        dot = np.add.reduceat(weights[entry], first)
        latest = np.maximum.reduceat(query.last_position[entry], first)
        prefix, session = key // n, key % n
        keep = group_rank(prefix) < sample_size
        return prefix[keep], session[keep], dot[keep], latest[keep]

    def expand_items(self, sessions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(pair, item)`` for every distinct item of every listed session (pair order)."""
        starts = self.items_indptr[sessions]
        owner, idx = ragged_ranges(starts, self.items_indptr[sessions + 1] - starts)
        return owner, self.items[idx]

    def expand_sequences(
        self, sessions: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(pair, item, position)`` for every event of every listed session (0-based)."""
        if self.seq_indptr is None or self.seq_items is None:
            raise SessionRecError("this session index was built without sequences")
        starts = self.seq_indptr[sessions]
        owner, idx = ragged_ranges(starts, self.seq_indptr[sessions + 1] - starts)
        return owner, self.seq_items[idx], idx - starts[owner]


@dataclass(frozen=True)
class PrefixBatch:
    """A batch of prefixes as flat arrays, with one entry per distinct (prefix, item).

    Attributes:
        size: number of prefixes B.
        n_items: catalogue size (for the composite keys).
        length: int64 [B] prefix lengths (events, repeats included).
        flat_items, flat_start: the concatenated prefixes and where each one starts.
        prefix, item, last_position: int64 [n_distinct]: for each distinct item of each
            prefix, the 1-based position of its latest occurrence; sorted by (prefix, item).
    """

    size: int
    n_items: int
    length: np.ndarray
    flat_items: np.ndarray
    flat_start: np.ndarray
    prefix: np.ndarray
    item: np.ndarray
    last_position: np.ndarray

    @classmethod
    def build(cls, prefixes: list[np.ndarray], n_items: int) -> PrefixBatch:
        items, owner, position, length = flatten_prefixes(prefixes)
        key = owner * n_items + items
        order = np.lexsort((position, key))
        key, position = key[order], position[order]
        last = np.ones(len(key), dtype=bool)
        last[:-1] = key[1:] != key[:-1]
        key = key[last]
        return cls(
            size=len(prefixes),
            n_items=n_items,
            length=length,
            flat_items=items,
            flat_start=np.cumsum(length) - length,
            prefix=key // n_items,
            item=key % n_items,
            last_position=position[last],
        )

    @property
    def n_distinct(self) -> np.ndarray:
        """int64 [B]: number of distinct items of each prefix."""
        return np.bincount(self.prefix, minlength=self.size)


def top_k_pairs(prefix: np.ndarray, session: np.ndarray, sim: np.ndarray, k: int) -> np.ndarray:
    """Boolean mask of the ``k`` most similar pairs per prefix (ties: more recent session).

    Pairs must come sorted by (prefix, session), as :meth:`SessionIndex.candidates` returns
    them: two stable sorts (by similarity, then by prefix) keep that order among ties.
    """
    by_sim = np.argsort(-sim, kind="stable")
    narrow = np.int16 if len(prefix) and prefix.max() < 2**15 else np.int64  # radix sort
    order = by_sim[np.argsort(prefix[by_sim].astype(narrow), kind="stable")]
    mask = np.zeros(len(prefix), dtype=bool)
    mask[order[group_rank(prefix[order]) < k]] = True
    return mask


def chunks(prefixes: list[np.ndarray], sample_size: int, budget: int = 2_000_000) -> list[slice]:
    """Split a batch so that each slice reads at most about ``budget`` postings entries.

    A prefix reads at most ``sample_size`` entries per item; slices hold at least one prefix.
    """
    cost = np.cumsum([len(p) * sample_size for p in prefixes])
    cuts, lo = [], 0
    while lo < len(prefixes):
        hi = max(int(np.searchsorted(cost, (cost[lo - 1] if lo else 0) + budget, "right")),
                 lo + 1)
        cuts.append(slice(lo, hi))
        lo = hi
    return cuts
