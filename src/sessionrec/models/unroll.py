"""Multi-step training of the session RNNs: windows of ``bptt`` steps of the parallel walk.

GRU4Rec and HGRU4Rec train by default with one-step truncated back-propagation (the
original's semantics): every step of the session-/user-parallel walk is one update and the
hidden state is detached between steps. With ``bptt = k > 1`` the lanes are kept for ``k``
consecutive steps of the same walk and unrolled together: the hidden state flows *with its
gradient* from step to step inside the window (a lane that starts a new session inside the
window starts from a fresh state, which cuts its gradient there; a lane dropped at the end
of the walk is dropped from the graph), the next-item losses of the ``k`` steps are summed,
one ``backward`` differentiates them through the recurrence, the gradients are
optionally clipped to a total norm (``grad_clip``), and the optimiser makes one update per
window. The state is detached between windows (truncated BPTT with ``k1 = k2 = k``).

The walk is the same as for one-step training, so every training pair is seen exactly once
per epoch whatever ``k``; ``k = 1`` through this path computes what the default path does
(tests/models/test_unroll.py checks it bit for bit), the default path itself is untouched.

A model supplies the walk as :class:`WalkStep` s (``_unroll_walk``): the items of a step and
an ``advance(state, x_rows)`` closure that applies the step's lane bookkeeping (narrowing,
session starts) to the carried state and runs the recurrent step. This module owns what is
shared: gathering the item rows of the whole window once, the losses, clipping, the row-wise
update and the professor-forcing hook (:mod:`sessionrec.models.professor`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from sessionrec.batching.negatives import NegativeSampler
from sessionrec.models.item_rows import gather_rows
from sessionrec.training.optim import clip_total_norm
from sessionrec.training.row_parallel import RowUpdates


@dataclass(frozen=True)
class Stepped:
    """What ``WalkStep.advance`` returns.

    Attributes:
        out: float32 [m, out_width] the output layer's input of every lane.
        state: the new carried state (opaque to this module).
        top: float32 [m, h] the top session layer (what the discriminator compares).
        start: session layers of every lane *before* the step's input (after its resets).
        context: what a free-running step needs besides the session layers (HGRU4Rec: the
            user layers; GRU4Rec: None).
    """

    out: torch.Tensor
    state: Any
    top: torch.Tensor
    start: list[torch.Tensor]
    context: Any


@dataclass(frozen=True)
class WalkStep:
    """One step of a parallel walk, ready to be unrolled.

    Attributes:
        x_items / y_items: int64 [m] input and target items of the live lanes.
        advance: ``advance(state, x_rows) -> Stepped``.
        starts: bool [m] lanes that start a new session at this step.
        keep: int64 lanes of the previous step still alive at this step (sorted), or None
            when none was dropped.
    """

    x_items: torch.Tensor
    y_items: torch.Tensor
    advance: Callable[[Any, torch.Tensor], Stepped]
    starts: np.ndarray
    keep: torch.Tensor | None

    @property
    def narrowed(self) -> bool:
        """Lanes of the previous step were dropped at this step."""
        return self.keep is not None


def window_stepper(model, updater: RowUpdates, loss_fn, log_counts: torch.Tensor,
                   adversary=None) -> Callable[..., tuple[float, Any]]:
    """``step(window, samples, state) -> (summed next-item loss, new state)`` for a window
    of :class:`WalkStep` s (see the module docstring); ``samples``: one draw per step.
    ``updater`` applies the window's update (summed over the ranks when data-parallel, and
    then clipped there, after the sum)."""
    p = model._params
    net, train_input = model.net_, model.train_input
    batch_size = float(p["batch_size"])
    output_loss = model._output_loss(loss_fn, log_counts)
    grad_clip = float(p["grad_clip"])
    dense_params = [net.get_parameter(k) for k in net.dense_names()]

    def step(window: list[WalkStep], samples: list[torch.Tensor],
             state: Any) -> tuple[float, Any]:
        ms = [len(s.x_items) for s in window]
        ys = [torch.cat([s.y_items, smp]) if len(smp) else s.y_items
              for s, smp in zip(window, samples, strict=True)]
        # Every item row of the window is gathered once; gradients land in these leaves.
        rows = gather_rows(net, torch.cat([s.x_items for s in window]), torch.cat(ys),
                           train_input)
        x_ins = rows.x_in.split(ms)  # per step [m_t, d_in]
        o_idxs = rows.out_idx.split([len(y) for y in ys])
        loss: torch.Tensor | None = None
        tops: list[torch.Tensor] = []
        first: Stepped | None = None
        for t, walk_step in enumerate(window):
            stepped = walk_step.advance(state, x_ins[t])
            state = stepped.state
            first = first or stepped
            tops.append(stepped.top)
            term = output_loss(rows, stepped.out, o_idxs[t], ys[t], ms[t]) / batch_size
            loss = term if loss is None else loss + term
        assert loss is not None and first is not None
        total = loss
        fight = None
        if adversary is not None:
            fight = adversary.engage(model, window, first, x_ins[0], tops)
            if fight is not None:
                total = loss + adversary.weight * fight.generator_loss
        total.backward()
        leaf_grads = rows.grads()
        if grad_clip > 0 and not updater.parallel:  # over the dense and row gradients together
            clip_total_norm([p.grad for p in dense_params] + leaf_grads, grad_clip)
        # The dense parameters the window used (.grad; the others have none), then its rows.
        updater.apply(rows.row_updates(leaf_grads))
        updater.opt.zero_grad(set_to_none=True)
        if fight is not None:
            adversary.train_discriminator(fight)
        return float(loss.detach()) * batch_size, state

    return step


def detach_state(state: Any) -> Any:
    """The carried state without its graph (tensors, lists and tuples of them)."""
    if isinstance(state, torch.Tensor):
        return state.detach()
    if isinstance(state, (list, tuple)):
        return type(state)(detach_state(s) for s in state)
    return state


def unrolled_epoch(walk: Iterator[WalkStep], state: Any, bptt: int,
                   step: Callable[..., tuple[float, Any]],
                   sampler: NegativeSampler) -> Iterator[tuple[float, int]]:
    """Train one epoch in windows of ``bptt`` walk steps; yields (summed loss, pairs)."""
    window: list[WalkStep] = []
    for walk_step in walk:
        window.append(walk_step)
        if len(window) == bptt:
            loss, state = step(window, [sampler.draw() for _ in window], state)
            state = detach_state(state)
            yield loss, sum(len(s.x_items) for s in window)
            window = []
    if window:
        loss, _ = step(window, [sampler.draw() for _ in window], state)
        yield loss, sum(len(s.x_items) for s in window)
