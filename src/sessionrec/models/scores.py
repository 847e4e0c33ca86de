"""Score rows that are mostly one value: a shared fill plus a few listed entries per row.

Most classical models score a prefix with a handful of items: a kNN model gives a score only
to the items of its neighbour sessions, a rule model to the successors of the last item, and
everything else gets exactly 0; most-popular gives every prefix the same vector. Writing such
scores out as a dense ``[rows, n_items]`` matrix costs far more than computing them, and the
evaluator would then read the whole matrix back. :class:`SparseScores` keeps them as

    row ``r`` = ``fill`` (a float32 vector [n_items] shared by all rows, or one number),
    except at ``indices[indptr[r]:indptr[r+1]]`` where the scores are ``values[...]``

so that ranks and top-k lists can be computed from the listed entries and one sorted copy of
the fill (:mod:`sessionrec.evaluation.sparse_ranks`). :meth:`SparseScores.dense` gives the same
numbers as a dense tensor.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch

from sessionrec.errors import SessionRecError


@dataclass(frozen=True)
class SparseScores:
    """Scores of ``rows`` prefixes over ``n_items`` items: a fill plus listed entries.

    Attributes:
        fill: the score of every unlisted item: a float32 tensor [n_items] shared by all
            rows, or a finite Python float.
        indptr: int64 [rows + 1], CSR row pointers into ``indices`` / ``values``.
        indices: int64 [nnz] item of each entry; distinct within a row.
        values: float32 [nnz] score of each entry (replaces the fill there).
        n_items: catalogue size.
    """

    fill: torch.Tensor | float
    indptr: np.ndarray
    indices: np.ndarray
    values: np.ndarray
    n_items: int

    def __post_init__(self) -> None:
        if isinstance(self.fill, torch.Tensor):
            if tuple(self.fill.shape) != (self.n_items,):
                raise SessionRecError(f"SparseScores fill has shape {tuple(self.fill.shape)}, "
                                      f"expected ({self.n_items},)")
        elif not np.isfinite(self.fill):
            raise SessionRecError(f"SparseScores fill must be finite, got {self.fill}")
        if len(self.indptr) < 1 or self.indptr[-1] != len(self.indices) or len(
                self.indices) != len(self.values):
            raise SessionRecError("SparseScores indptr, indices and values do not match")

    @property
    def rows(self) -> int:
        return len(self.indptr) - 1

    @property
    def shape(self) -> tuple[int, int]:
        return (self.rows, self.n_items)

    def __len__(self) -> int:
        return self.rows

    @property
    def lengths(self) -> np.ndarray:
        """int64 [rows]: listed entries per row."""
        return np.diff(self.indptr)

    def head(self, rows: int) -> SparseScores:
        """The first ``rows`` rows."""
        end = self.indptr[rows]
        return SparseScores(self.fill, self.indptr[: rows + 1], self.indices[:end],
                            self.values[:end], self.n_items)

    def gather(self, items: np.ndarray) -> np.ndarray:
        """float32 [rows, m]: the scores of ``items`` [rows, m] (item indices per row)."""
        items = np.asarray(items, dtype=np.int64)
        if isinstance(self.fill, torch.Tensor):
            out = self.fill.float().numpy()[items]
        else:
            out = np.full(items.shape, self.fill, dtype=np.float32)
        owner = np.repeat(np.arange(self.rows, dtype=np.int64), self.lengths)
        keys = owner * self.n_items + self.indices
        order = np.argsort(keys, kind="stable")
        probe = np.arange(self.rows, dtype=np.int64)[:, None] * self.n_items + items
        if len(keys):
            at = order[np.minimum(np.searchsorted(keys[order], probe), len(keys) - 1)]
            hit = keys[at] == probe
            out[hit] = self.values[at[hit]]
        return out.astype(np.float32)

    def fill_vector(self) -> torch.Tensor:
        """The fill as a float32 tensor [n_items]."""
        if isinstance(self.fill, torch.Tensor):
            return self.fill.float()
        return torch.full((self.n_items,), float(self.fill), dtype=torch.float32)

    def dense(self) -> torch.Tensor:
        """The scores as a float32 tensor [rows, n_items]."""
        out = self.fill_vector().unsqueeze(0).repeat(self.rows, 1)
        rows = np.repeat(np.arange(self.rows, dtype=np.int64), self.lengths)
        out[torch.from_numpy(rows), torch.from_numpy(self.indices.astype(np.int64))] = (
            torch.from_numpy(self.values.astype(np.float32)))
        return out

    # -- constructors -----------------------------------------------------------------------
    @classmethod
    def broadcast(cls, fill: torch.Tensor, rows: int) -> SparseScores:
        """``rows`` copies of one score vector ``fill`` [n_items] (no listed entries)."""
        return cls(fill=fill, indptr=np.zeros(rows + 1, dtype=np.int64),
                   indices=np.zeros(0, dtype=np.int64), values=np.zeros(0, dtype=np.float32),
                   n_items=int(fill.shape[0]))

    @classmethod
    def from_csr(cls, matrix: sp.csr_matrix, fill: float = 0.0) -> SparseScores:
        """Rows of a CSR matrix [rows, n_items] (stored entries listed, the rest ``fill``)."""
        m = matrix.tocsr()
        if not m.has_canonical_format:
            m = m.copy()
            m.sum_duplicates()
        return cls(fill=float(fill), indptr=m.indptr.astype(np.int64),
                   indices=m.indices.astype(np.int64), values=m.data.astype(np.float32),
                   n_items=int(m.shape[1]))

    @classmethod
    def from_triplets(cls, rows: np.ndarray, cols: np.ndarray, values: np.ndarray,
                      shape: tuple[int, int], fill: float = 0.0) -> SparseScores:
        """Sum ``values`` per (row, col) in float64, stored as float32; the rest ``fill``.

        The same numbers as the kNN models' dense scores (float64 sums, stored as float32).
        """
        m = sp.csr_matrix((np.asarray(values, dtype=np.float64), (rows, cols)), shape=shape)
        m.sum_duplicates()
        return cls.from_csr(m.astype(np.float32), fill)

    @staticmethod
    def concat(parts: list[SparseScores]) -> SparseScores:
        """The rows of ``parts`` (same fill and catalogue) one after the other."""
        first = parts[0]
        shifts = np.cumsum([0] + [len(p.indices) for p in parts[:-1]])
        indptr = np.concatenate([[0]] + [p.indptr[1:] + s for p, s in zip(parts, shifts,
                                                                            strict=True)])
        return SparseScores(first.fill, indptr.astype(np.int64),
                            np.concatenate([p.indices for p in parts]),
                            np.concatenate([p.values for p in parts]), first.n_items)

    def with_rows(self, positions: np.ndarray, total: int,
                  other: torch.Tensor) -> SparseScores:
        """These rows at ``positions`` of ``total`` rows; the others are the dense ``other``.

        ``other`` [total - rows, n_items] (e.g. popularity rows for empty prefixes) is listed
        in full, so the fill stays shared.
        """
        positions = np.asarray(positions, dtype=np.int64)
        lengths = np.full(total, self.n_items, dtype=np.int64)
        lengths[positions] = self.lengths
        indptr = np.concatenate(([0], np.cumsum(lengths)))
        indices = np.empty(indptr[-1], dtype=np.int64)
        values = np.empty(indptr[-1], dtype=np.float32)
        rest = np.setdiff1d(np.arange(total, dtype=np.int64), positions)
        owner = np.repeat(np.arange(self.rows, dtype=np.int64), self.lengths)
        at = indptr[positions[owner]] + (np.arange(len(owner)) - self.indptr[owner])
        indices[at], values[at] = self.indices, self.values
        if len(rest):
            at = (indptr[rest][:, None] + np.arange(self.n_items)).reshape(-1)
            indices[at] = np.tile(np.arange(self.n_items, dtype=np.int64), len(rest))
            values[at] = other.float().numpy().reshape(-1)
        return SparseScores(self.fill, indptr, indices, values, self.n_items)
