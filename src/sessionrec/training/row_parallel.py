"""Applying a row-wise training update in one process, or summed over the ranks of a group.

GRU4Rec and HGRU4Rec train with :class:`~sessionrec.training.optim.RowOptimizer`: after
``backward`` the dense parameters (the GRU weights) hold ``.grad`` and the item tables get
*row updates* ``(table, unique rows, gradient rows)`` for the few rows a step touched. A
:class:`RowUpdates` applies them.

* **One process**: ``opt.step()`` for the dense parameters, then ``opt.step_rows`` for each
  row update, in that order (exactly what the models did before data parallelism).
* **Data-parallel** (inside a ``torch.distributed`` process group, ``sessionrec train
  --nproc N`` or torchrun): every rank walks its own share of the sessions (or users) with
  ``batch_size / N`` lanes, and the item tables are replicated. Before the optimiser runs, the
  step's gradients are **summed over the ranks** so that every replica makes the same update:

  1. one ``all_reduce`` (sum) of a flat buffer holding every dense gradient (zeros where
     this rank has none), one "had a gradient" flag per dense parameter (a parameter no rank
     used keeps no gradient, as in one process), this rank's "still walking" flag and the
     number of rows it updates in each table (at slot ``rank``, so the sum carries every
     rank's count);
  2. one ``all_gather`` of the row indices and one of the gradient rows, padded to the
     longest rank;
  3. every rank merges the gathered updates of each table — rows touched by several ranks
     get the sum of their gradients — and applies them in the same order, so the replicas
     stay bit-identical.

  Each model divides its loss by the *global* ``batch_size``, so the summed gradient is the
  gradient of the global batch's loss, as in one process with ``batch_size`` lanes. The walks
  of the ranks end after different numbers of steps; a rank whose walk has ended calls
  :meth:`RowUpdates.finish`, which keeps taking part in the collectives with nothing to add
  until every rank's walk has ended. This is the row-sparse counterpart of
  :class:`~torch.nn.parallel.DistributedDataParallel` (which all-reduces whole gradients: for
  GRU4Rec that would be a dense ``n_items x d`` tensor per table and step).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.distributed as dist

from sessionrec.training.distributed import world
from sessionrec.training.optim import RowOptimizer, clip_total_norm

# (item table, unique int64 rows [u], gradient rows [u, ...]) for RowOptimizer.step_rows.
RowUpdate = tuple[str, torch.Tensor, torch.Tensor]
_EXACT = 2**24  # integers a float32 holds exactly: bound for the counts in the buffer


class RowUpdates:
    """Apply one training update (see the module docstring).

    Args:
        opt: the row-wise optimiser over the model's parameters.
        dense: names of the parameters updated as a whole (with ``.grad``), in a fixed order.
        tables: names of the item tables that get row updates, in a fixed order.
        grad_clip: > 0: in a process group, scale the summed gradients (dense and rows
            together) to at most this L2 norm before the update. (One process clips before
            calling :meth:`apply`, on the same gradients.)
        max_steps: > 0: :meth:`finish` stops at this many updates in all (the ranks' walks
            are cut there; every rank sees the same count, :attr:`steps`).
    """

    def __init__(self, opt: RowOptimizer, dense: Sequence[str], tables: Sequence[str],
                 grad_clip: float = 0.0, max_steps: int = 0) -> None:
        self.opt = opt
        self.dense = list(dense)
        self.tables = list(tables)
        self.grad_clip = float(grad_clip)
        self.max_steps = int(max_steps)
        self.rank, self.world_size = world()
        self.steps = 0  # updates applied so far, the same count on every rank

    @property
    def at_limit(self) -> bool:
        """True once ``max_steps`` updates have been applied."""
        return self.steps == self.max_steps > 0

    @property
    def parallel(self) -> bool:
        return self.world_size > 1

    def apply(self, updates: list[RowUpdate]) -> None:
        """Apply this rank's step: the dense ``.grad`` s and ``updates`` (rows of
        :attr:`tables`), summed over the ranks in a process group."""
        if not self.parallel:
            self.opt.step()
            for key, rows, grad in updates:
                self.opt.step_rows(key, rows, grad)
            self.steps += 1
            return
        self._round(updates, walking=True)

    def finish(self) -> None:
        """Called when this rank's walk has ended: take part in the other ranks' remaining
        updates (contributing nothing) until every rank's walk has ended, or until
        ``max_steps``."""
        if self.parallel:
            while not self.at_limit and self._round([], walking=False):
                pass

    # -- one collective round ------------------------------------------------------------------
    @torch.no_grad()
    def _round(self, updates: list[RowUpdate], walking: bool) -> bool:
        """Sum this rank's step with the others' and apply it; False when no rank walked."""
        params = self.opt.params
        by_table = {key: (rows, grad) for key, rows, grad in updates}
        unknown = set(by_table) - set(self.tables)
        if unknown:
            raise ValueError(f"row updates for {sorted(unknown)}: not among {self.tables}")
        n_dense = sum(params[k].numel() for k in self.dense)
        n_tables, size = len(self.tables), self.world_size
        meta = len(self.dense) + 1 + size * n_tables
        buf = torch.zeros(n_dense + meta)
        at = 0
        for i, key in enumerate(self.dense):
            p = params[key]
            if p.grad is not None:
                buf[at:at + p.numel()] = p.grad.reshape(-1)
                buf[n_dense + i] = 1.0
            at += p.numel()
        buf[n_dense + len(self.dense)] = float(walking)
        counts = [len(by_table[k][0]) if k in by_table else 0 for k in self.tables]
        if max(counts, default=0) >= _EXACT:
            raise ValueError(f"a step updates {max(counts):,} rows of one table; the "
                             f"data-parallel exchange handles fewer than {_EXACT:,}")
        slot = n_dense + len(self.dense) + 1 + self.rank * n_tables
        buf[slot:slot + n_tables] = torch.tensor(counts, dtype=torch.float32)
        dist.all_reduce(buf)
        if buf[n_dense + len(self.dense)] == 0:  # no rank walked: the epoch is over
            return False
        self.steps += 1
        all_counts = buf[n_dense + len(self.dense) + 1:].round().long().view(size, n_tables)

        at = 0  # the summed dense gradients, where some rank had one
        for i, key in enumerate(self.dense):
            p = params[key]
            p.grad = (buf[at:at + p.numel()].view_as(p).clone() if buf[n_dense + i] > 0
                      else None)
            at += p.numel()

        merged = self._merge_rows(by_table, all_counts)
        if self.grad_clip > 0:
            clip_total_norm([params[k].grad for k in self.dense]
                            + [grad for _, _, grad in merged], self.grad_clip)
        self.opt.step()
        for key, rows, grad in merged:
            self.opt.step_rows(key, rows, grad)
        self.opt.zero_grad(set_to_none=True)
        return True

    def _merge_rows(self, by_table: dict[str, tuple[torch.Tensor, torch.Tensor]],
                    all_counts: torch.Tensor) -> list[RowUpdate]:
        """Gather every rank's row updates and sum them per row, table by table."""
        params = self.opt.params
        width = [params[k][0].numel() for k in self.tables]  # floats per row
        rows_per_rank = all_counts.sum(1)  # [world]
        floats_per_rank = (all_counts * torch.tensor(width)).sum(1)
        idx = torch.full((int(rows_per_rank.max()),), -1, dtype=torch.int64)
        val = torch.zeros(int(floats_per_rank.max()))
        r_at = f_at = 0
        for key, w in zip(self.tables, width, strict=True):
            if key in by_table:
                rows, grad = by_table[key]
                idx[r_at:r_at + len(rows)] = rows
                val[f_at:f_at + len(rows) * w] = grad.reshape(-1)
                r_at += len(rows)
                f_at += len(rows) * w
        idx_all = [torch.empty_like(idx) for _ in range(self.world_size)]
        val_all = [torch.empty_like(val) for _ in range(self.world_size)]
        dist.all_gather(idx_all, idx)
        dist.all_gather(val_all, val)

        merged: list[RowUpdate] = []
        offsets = [(0, 0)] * self.world_size  # per rank: (rows, floats) consumed so far
        for t, (key, w) in enumerate(zip(self.tables, width, strict=True)):
            parts_idx, parts_val = [], []
            for r in range(self.world_size):
                n = int(all_counts[r, t])
                ri, fi = offsets[r]
                parts_idx.append(idx_all[r][ri:ri + n])
                parts_val.append(val_all[r][fi:fi + n * w].view(n, w))
                offsets[r] = (ri + n, fi + n * w)
            rows_cat = torch.cat(parts_idx)
            if len(rows_cat) == 0:
                continue
            rows, inverse = torch.unique(rows_cat, return_inverse=True)
            grad = torch.zeros(len(rows), w).index_add_(0, inverse, torch.cat(parts_val))
            merged.append((key, rows, grad.view((len(rows), *params[key].shape[1:]))))
        return merged
