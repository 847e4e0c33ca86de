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

from collections.abc import Callable
from dataclasses import dataclass

import torch

from sessionrec.models.neural.gru4rec_net import GRU4RecNet
from sessionrec.training import kernels
from sessionrec.training.losses import cross_entropy_rows, log_of_counts
from sessionrec.training.row_parallel import RowUpdate


@dataclass(frozen=True)
class ItemRows:
    """Leaf copies of the touched item rows, and where each input and output comes from.

    Attributes:
        rows: int64 [u] unique items of the output rows (constrained input: of all rows).
        wy / by: float32 [u, d] / [u, 1] leaves: the rows ``rows`` of ``Wy`` / ``By``.
        input_name: the input table's name; input_rows / input_leaf its unique rows and their
            leaf (constrained input: ``rows`` / ``wy`` themselves).
        x_in: float32 [n_x, d_in] the input row of every input item: a view of the input leaf,
            or (constrained input) a leaf of its own, the rows ``x_pos`` of ``wy``, whose
            gradient :meth:`grads` adds into ``wy`` 's (cheaper than differentiating a gather
            from ``wy``, which fills a gradient of ``wy`` 's size with zeros first).
        out_idx: int64 [n_y] position in ``wy`` / ``by`` of every output item.
        train_input: whether the input leaf gets its own gradient and update.
        n_out: ``rows[:n_out]`` are the output items; the rest (constrained input only) are
            items that are only inputs, whose bias gets no update.
        x_pos: int64 [n_x] (constrained input) position in ``rows`` of every input item.
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
    n_out: int
    x_pos: torch.Tensor | None = None

    def scores(self, out: torch.Tensor, out_idx: torch.Tensor) -> torch.Tensor:
        """float32 [m, len(out_idx)]: output layer inputs ``out`` [m, d] scored against the
        gathered output items ``out_idx`` (positions in ``wy``).

        With fewer gathered rows than output columns (repeated samples: on a small catalogue
        most of them), every row is scored once and the columns are copied from those scores:
        a smaller product, and a gather of scores instead of a gather of item rows (and of
        their gradients in ``backward``). Otherwise the columns' rows are gathered and scored.
        """
        if len(self.rows) < len(out_idx):
            return torch.addmm(self.by.view(1, -1), out, self.wy.t()).index_select(1, out_idx)
        return torch.addmm(self.by.index_select(0, out_idx).view(1, -1), out,
                           self.wy.index_select(0, out_idx).t())

    def leaves(self) -> list[torch.Tensor]:
        """The tensors to differentiate: ``wy``, ``by``, a separate trained input leaf, and
        (constrained input) the input rows ``x_in``."""
        return ([self.wy, self.by] + ([self.input_leaf] if self.train_input else [])
                + ([self.x_in] if self.x_pos is not None else []))

    @torch.no_grad()
    def grads(self) -> list[torch.Tensor]:
        """After ``backward``: the gradient of each gathered table's rows, ``Wy``, ``By``, then
        a separate trained input table (constrained input: the input rows' gradients added
        into ``Wy`` 's)."""
        g_wy = self.wy.grad
        if self.x_pos is not None and self.x_in.grad is not None:
            g_wy = (torch.zeros_like(self.wy) if g_wy is None else g_wy).index_add_(
                0, self.x_pos, self.x_in.grad)
        return [g_wy, self.by.grad] + ([self.input_leaf.grad] if self.train_input else [])

    @torch.no_grad()
    def row_updates(self, grads: list[torch.Tensor]) -> list[RowUpdate]:
        """``(table, rows, gradient rows)`` for the touched rows, from the table gradients
        (:meth:`grads`: ``Wy``, ``By``, then a separate trained input table)."""
        updates: list[RowUpdate] = [("Wy", self.rows, grads[0])]
        # the output rows come first; the input-only rows after them keep their bias
        updates.append(("By", self.rows[:self.n_out], grads[1][:self.n_out]))
        if self.train_input:
            updates.append((self.input_name, self.input_rows, grads[2]))
        return updates


def distinct_rows(outputs: torch.Tensor, inputs: torch.Tensor | None, n_items: int,
                  ) -> tuple[torch.Tensor, torch.Tensor, int]:
    """The distinct items of ``outputs`` then ``inputs``, the outputs' first.

    Returns ``(rows [u], inverse, n_out)``: ``rows[inverse]`` is ``outputs`` then ``inputs``;
    ``rows[:n_out]`` are the distinct output items and the rest the items that are only
    inputs. A one-pass lookup (:func:`~sessionrec.training.kernels.unique_first_seen`,
    rows in the order first seen) where Numba is installed, else ``torch.unique`` (sorted,
    then the output rows moved first).
    """
    items = outputs if inputs is None else torch.cat([outputs, inputs])
    found = kernels.unique_first_seen(items, len(outputs), n_items)
    if found is not None:
        return found
    rows, inverse = torch.unique(items, return_inverse=True)
    is_out = torch.zeros(len(rows), dtype=torch.bool)
    is_out[inverse[:len(outputs)]] = True
    order = torch.cat([is_out.nonzero().view(-1), (~is_out).nonzero().view(-1)])
    rank = torch.empty_like(order)
    rank[order] = torch.arange(len(order))
    return rows[order], rank[inverse], int(is_out.sum())


def gather_rows(net: GRU4RecNet, x_items: torch.Tensor, y_items: torch.Tensor,
                train_input: bool) -> ItemRows:
    """Gather the rows of input items ``x_items`` [n_x] and output items ``y_items`` [n_y].

    ``train_input``: the input table is trained (False: frozen pre-trained item vectors; no
    effect with the constrained input, which is ``Wy``).
    """
    n_y, n_items = len(y_items), net.Wy.shape[0]
    if net.input_mode == "constrained":  # one table: inputs and outputs share their rows
        rows, inv, n_out = distinct_rows(y_items, x_items, n_items)
        wy = net.Wy.index_select(0, rows).requires_grad_(True)
        by = net.By.index_select(0, rows).requires_grad_(True)
        x_in = net.Wy.index_select(0, x_items).requires_grad_(True)
        return ItemRows(rows, wy, by, "Wy", rows, wy, x_in, inv[:n_y], False, n_out,
                        inv[n_y:])
    rows, out_idx, n_out = distinct_rows(y_items, None, n_items)
    wy = net.Wy.index_select(0, rows).requires_grad_(True)
    in_rows, inv_x, _ = distinct_rows(x_items, None, n_items)
    in_leaf = net.input_table.index_select(0, in_rows).requires_grad_(train_input)
    by = net.By.index_select(0, rows).requires_grad_(True)
    return ItemRows(rows, wy, by, net.input_name, in_rows, in_leaf,
                    in_leaf.index_select(0, inv_x), out_idx, train_input, n_out)


@dataclass(frozen=True)
class OutputLoss:
    """A step's summed loss: the output layer's inputs scored against the step's targets and
    samples on the gathered rows, then ``loss_fn`` (:mod:`sessionrec.training.losses`).

    ``cross_entropy``: with fewer gathered rows than output columns, the loss is computed on
    the distinct rows with the repeated samples merged
    (:func:`~sessionrec.training.losses.cross_entropy_rows`, the same value as on the
    ``[m, m + S]`` layout with less work); ``logq`` > 0 adds the log-Q correction.
    """

    loss_fn: Callable[[torch.Tensor, torch.Tensor | None], torch.Tensor]
    log_counts: torch.Tensor  # float32 [n_items]: log of each item's training count
    sample_alpha: float
    cross_entropy: bool
    logq: float

    def __call__(self, rows: ItemRows, out: torch.Tensor, out_idx: torch.Tensor,
                 y_all: torch.Tensor, m: int) -> torch.Tensor:
        """Summed loss of outputs ``out`` [m, d] against the output items ``y_all`` (``m``
        targets, then the samples) at positions ``out_idx`` of the gathered rows."""
        use_logq = self.cross_entropy and self.logq > 0
        if self.cross_entropy and len(rows.rows) < len(out_idx):
            row_scores = torch.addmm(rows.by.view(1, -1), out, rows.wy.t())  # [m, u]
            mult = torch.bincount(out_idx[m:], minlength=len(rows.rows))
            log_mult = log_of_counts(len(out_idx) - m).index_select(0, mult)  # -inf: none
            if use_logq:
                return cross_entropy_rows(row_scores, out_idx[:m], log_mult,
                                          self.log_counts.index_select(0, rows.rows),
                                          self.sample_alpha, self.logq)
            return cross_entropy_rows(row_scores, out_idx[:m], log_mult)
        scores = rows.scores(out, out_idx)  # [m, m + S]
        log_q = output_log_q(self.log_counts, y_all, m, self.sample_alpha) if use_logq \
            else None
        return self.loss_fn(scores, log_q)


def output_log_q(log_counts: torch.Tensor, y_all: torch.Tensor, m: int,
                 sample_alpha: float) -> torch.Tensor:
    """float32 [n_y]: log Q of the output items ``y_all`` (``m`` targets, then samples) for
    the log-Q correction: log count of a target, ``sample_alpha`` × log count of a sample
    (the samples were drawn ∝ count^sample_alpha)."""
    log_q = log_counts.index_select(0, y_all)
    if len(y_all) > m:
        log_q = torch.cat([log_q[:m], log_q[m:] * sample_alpha])
    return log_q
