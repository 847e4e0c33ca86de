"""The item rows one GRU4Rec / HGRU4Rec training update touches, gathered once.

A training update (one step of the session-parallel walk, or a window of ``bptt`` steps,
:mod:`sessionrec.models.unroll`) reads a few rows of the item tables of a
:class:`~sessionrec.models.neural.gru4rec_net.GRU4RecNet`: the input rows of its input items
and the output rows (``Wy``, ``By``) of its targets and sampled negatives. :func:`gather_rows`
copies each of those rows once into a small leaf tensor (no sparse gradient to coalesce),
the step scores against them (:meth:`ItemRows.scores`), back-propagates into the leaves
(:meth:`ItemRows.leaves`), and :meth:`ItemRows.row_updates` pairs the leaves' gradients
with their row indices for the row-wise optimiser
(:class:`~sessionrec.training.row_parallel.RowUpdates`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from sessionrec.models.neural.gru4rec_net import GRU4RecNet
from sessionrec.training.row_parallel import RowUpdate


@dataclass(frozen=True)
class ItemRows:
    """Leaf copies of the touched item rows, and where each input and output comes from.

    Attributes:
        rows: int64 [u] unique items of the output rows (constrained input: of all rows).
        wy / by: float32 [u, d] / [u, 1] leaves: the rows ``rows`` of ``Wy`` / ``By``.
        input_name: the input table's name; input_rows / input_leaf its unique rows and their
            leaf (constrained input: ``rows`` / ``wy`` themselves).
        x_in: float32 [n_x, d_in] the input row of every input item (a view of the leaf).
        out_idx: int64 [n_y] position in ``wy`` / ``by`` of every output item.
        train_input: whether the input leaf gets its own gradient and update.
    """

    rows: torch.Tensor
    wy: torch.Tensor
    by: torch.Tensor
    input_name: str
    input_rows: torch.Tensor
    input_leaf: torch.Tensor
    x_in: torch.Tensor
    out_idx: torch.Tensor
    train_input: bool

    def scores(self, out: torch.Tensor, out_idx: torch.Tensor) -> torch.Tensor:
        """float32 [m, len(out_idx)]: output layer inputs ``out`` [m, d] scored against the
        gathered output items ``out_idx`` (positions in ``wy``)."""
        return torch.addmm(self.by.index_select(0, out_idx).view(1, -1), out,
                           self.wy.index_select(0, out_idx).t())

    def leaves(self) -> list[torch.Tensor]:
        """The tensors to differentiate: ``wy``, ``by`` (and a separate trained input leaf)."""
        return [self.wy, self.by] + ([self.input_leaf] if self.train_input else [])

    @torch.no_grad()
    def row_updates(self, grads: list[torch.Tensor]) -> list[RowUpdate]:
        """``(table, rows, gradient rows)`` for the touched rows, from the gradients of
        :meth:`leaves` (in that order): ``Wy``, ``By``, then a separate trained input table."""
        updates: list[RowUpdate] = [("Wy", self.rows, grads[0])]
        if self.input_leaf is self.wy:  # rows also holds input-only items: their bias stays
            touched = torch.zeros(len(self.rows), dtype=torch.bool)
            touched[self.out_idx] = True
            updates.append(("By", self.rows[touched], grads[1][touched]))
        else:
            updates.append(("By", self.rows, grads[1]))
        if self.train_input:
            updates.append((self.input_name, self.input_rows, grads[2]))
        return updates


def gather_rows(net: GRU4RecNet, x_items: torch.Tensor, y_items: torch.Tensor,
                train_input: bool) -> ItemRows:
    """Gather the rows of input items ``x_items`` [n_x] and output items ``y_items`` [n_y].

    ``train_input``: the input table is trained (False: frozen pre-trained item vectors; no
    effect with the constrained input, which is ``Wy``).
    """
    n_x = len(x_items)
    if net.input_mode == "constrained":  # one table: inputs and outputs share their rows
        rows, inv = torch.unique(torch.cat([x_items, y_items]), return_inverse=True)
        wy = net.Wy.index_select(0, rows).requires_grad_(True)
        by = net.By.index_select(0, rows).requires_grad_(True)
        return ItemRows(rows, wy, by, "Wy", rows, wy, wy.index_select(0, inv[:n_x]),
                        inv[n_x:], False)
    rows, out_idx = torch.unique(y_items, return_inverse=True)
    wy = net.Wy.index_select(0, rows).requires_grad_(True)
    in_rows, inv_x = torch.unique(x_items, return_inverse=True)
    in_leaf = net.input_table.index_select(0, in_rows).requires_grad_(train_input)
    by = net.By.index_select(0, rows).requires_grad_(True)
    return ItemRows(rows, wy, by, net.input_name, in_rows, in_leaf,
                    in_leaf.index_select(0, inv_x), out_idx, train_input)


def output_log_q(log_counts: torch.Tensor, y_all: torch.Tensor, m: int,
                 sample_alpha: float) -> torch.Tensor:
    """float32 [n_y]: log Q of the output items ``y_all`` (``m`` targets, then samples) for
    the log-Q correction: log count of a target, ``sample_alpha`` × log count of a sample
    (the samples were drawn ∝ count^sample_alpha)."""
    log_q = log_counts[y_all]
    if len(y_all) > m:
        log_q = torch.cat([log_q[:m], log_q[m:] * sample_alpha])
    return log_q
