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

  1. each rank packs its step into one byte buffer — a header (still walking; which dense
     parameters have a gradient; rows per table), the dense gradients, the row indices and
     the gradient rows — and **one** ``all_gather`` exchanges the buffers (padded to a common
     capacity; a step that needs more first raises the capacity for every rank, which costs
     a second ``all_gather`` that once);
  2. every rank sums the dense gradients of the ranks that had one (a parameter no rank used
     keeps no gradient, as in one process) and, table by table, the gradient rows — rows
     touched by several ranks get the sum — in rank order, and applies them: the replicas
     stay bit-identical.

  One collective per step because on a small step the collective's latency, not its size,
  is the cost (gloo on loopback: ~1 ms per call whatever the size, measured on 2 cores).
  Each model divides its loss by the *global* ``batch_size``, so the summed gradient is the
  gradient of the global batch's loss, as in one process with ``batch_size`` lanes. The walks
  of the ranks end after different numbers of steps; a rank whose walk has ended calls
  :meth:`RowUpdates.finish`, which keeps taking part in the exchanges with nothing to add
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
        self._capacity = 0  # bytes every rank sends per exchange; grows with the largest step

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

    # -- one exchange ---------------------------------------------------------------------------
    @torch.no_grad()
    def _round(self, updates: list[RowUpdate], walking: bool) -> bool:
        """Sum this rank's step with the others' and apply it; False when no rank walked."""
        params = self.opt.params
        by_table = {key: (rows, grad) for key, rows, grad in updates}
        unknown = set(by_table) - set(self.tables)
        if unknown:
            raise ValueError(f"row updates for {sorted(unknown)}: not among {self.tables}")
        payload = self._pack(by_table, walking)
        parts = self._exchange(payload)
        headers = [part[:self._header_bytes].view(torch.int64) for part in parts]
        if not any(int(h[0]) for h in headers):  # no rank walked: the epoch is over
            return False
        self.steps += 1
        n_dense = len(self.dense)
        dense_bytes = 4 * sum(params[k].numel() for k in self.dense)
        at = 0  # the summed dense gradients, where some rank had one
        for i, key in enumerate(self.dense):
            p = params[key]
            size = 4 * p.numel()
            have = [part[self._header_bytes + at:self._header_bytes + at + size]
                    .view(torch.float32) for part, h in zip(parts, headers, strict=True)
                    if int(h[1 + i])]
            grad = None
            for g in have:
                grad = g.clone() if grad is None else grad.add_(g)
            p.grad = None if grad is None else grad.view_as(p)
            at += size
        counts = torch.stack([h[1 + n_dense:1 + n_dense + len(self.tables)] for h in headers])
        merged = self._merge_rows(parts, counts, self._header_bytes + _aligned(dense_bytes))
        if self.grad_clip > 0:
            clip_total_norm([params[k].grad for k in self.dense]
                            + [grad for _, _, grad in merged], self.grad_clip)
        self.opt.step()
        for key, rows, grad in merged:
            self.opt.step_rows(key, rows, grad)
        self.opt.zero_grad(set_to_none=True)
        return True

    @property
    def _header_bytes(self) -> int:
        """int64 header: walking, one flag per dense parameter, rows per table, payload size."""
        return 8 * (1 + len(self.dense) + len(self.tables) + 1)

    def _pack(self, by_table: dict[str, tuple[torch.Tensor, torch.Tensor]],
              walking: bool) -> torch.Tensor:
        """This rank's step as bytes: header, dense gradients, then per table the row
        indices (int64) and the gradient rows (float32), each part 8-byte aligned."""
        params = self.opt.params
        header = torch.zeros(1 + len(self.dense) + len(self.tables) + 1, dtype=torch.int64)
        header[0] = int(walking)
        chunks: list[torch.Tensor] = [header]
        dense = []
        for i, key in enumerate(self.dense):
            p = params[key]
            if p.grad is not None:
                header[1 + i] = 1
                dense.append(p.grad.reshape(-1).float())
            else:
                dense.append(torch.zeros(p.numel()))
        chunks += _floats(torch.cat(dense) if dense else torch.zeros(0))
        for t, key in enumerate(self.tables):
            if key in by_table:
                rows, grad = by_table[key]
                header[1 + len(self.dense) + t] = len(rows)
                chunks.append(rows.to(torch.int64).view(torch.uint8))
                chunks += _floats(grad.reshape(-1).float())
        payload = torch.cat([c.view(torch.uint8) for c in chunks])
        payload[8 * (len(header) - 1):8 * len(header)] = torch.tensor(
            [len(payload)], dtype=torch.int64).view(torch.uint8)
        return payload

    def _exchange(self, payload: torch.Tensor) -> list[torch.Tensor]:
        """Every rank's payload (as bytes, padded), by one ``all_gather`` (two when one
        rank's payload outgrows the common capacity, which then grows for good)."""
        need = len(payload)
        if need > self._capacity:  # tell the others, through a header-only first round
            header = payload[:self._header_bytes].clone()
            header.view(torch.int64)[-1] = need
            parts = self._gather(header)
        else:
            parts = self._gather(payload)
        sizes = [int(part[:self._header_bytes].view(torch.int64)[-1]) for part in parts]
        if max(sizes) > self._capacity:
            self._capacity = max(self._header_bytes, int(max(sizes) * 1.25) // 8 * 8 + 8)
            parts = self._gather(payload)
        return parts

    def _gather(self, data: torch.Tensor) -> list[torch.Tensor]:
        buf = torch.zeros(max(self._capacity, self._header_bytes), dtype=torch.uint8)
        n = min(len(data), len(buf))
        buf[:n] = data[:n]
        out = [torch.empty_like(buf) for _ in range(self.world_size)]
        dist.all_gather(out, buf)
        return out

    def _merge_rows(self, parts: list[torch.Tensor], counts: torch.Tensor,
                    start: int) -> list[RowUpdate]:
        """Every rank's row updates from the gathered ``parts`` (rows per table and rank in
        ``counts``, the table parts from byte ``start``), summed per row, table by table."""
        params = self.opt.params
        width = [params[k][0].numel() for k in self.tables]  # floats per row
        at = [start] * self.world_size
        merged: list[RowUpdate] = []
        for t, (key, w) in enumerate(zip(self.tables, width, strict=True)):
            parts_idx, parts_val = [], []
            for r, part in enumerate(parts):
                n = int(counts[r, t])
                if n == 0:
                    continue
                parts_idx.append(part[at[r]:at[r] + 8 * n].view(torch.int64))
                at[r] += 8 * n
                size = 4 * n * w
                parts_val.append(part[at[r]:at[r] + size].view(torch.float32).view(n, w))
                at[r] += _aligned(size)
            if not parts_idx:
                continue
            if len(parts_idx) == 1:  # one rank touched this table: its rows are unique
                rows, grad = parts_idx[0].clone(), parts_val[0].clone()
            else:
                rows, inverse = torch.unique(torch.cat(parts_idx), return_inverse=True)
                grad = torch.zeros(len(rows), w).index_add_(0, inverse, torch.cat(parts_val))
            merged.append((key, rows, grad.view((len(rows), *params[key].shape[1:]))))
        return merged


def _aligned(n_bytes: int) -> int:
    """``n_bytes`` rounded up to a multiple of 8."""
    return -(-n_bytes // 8) * 8


def _floats(values: torch.Tensor) -> list[torch.Tensor]:
    """float32 ``values`` as bytes, padded to a multiple of 8."""
    raw = values.contiguous().view(torch.uint8)
    pad = _aligned(len(raw)) - len(raw)
    return [raw] + ([torch.zeros(pad, dtype=torch.uint8)] if pad else [])
