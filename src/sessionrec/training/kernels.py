"""Fused Adagrad-with-momentum updates, compiled with Numba.

:class:`~sessionrec.training.optim.RowOptimizer` updates GRU4Rec's touched item rows and its
dense GRU weights with Adagrad and momentum. Written with torch operations, one update is ten
passes over the rows (gather the state, square, add, sqrt, divide, write back, ...), and on
GRU4Rec's small steps these passes, not the products, were the largest part of a training
step (2 cores, one thread: about 0.9 of 3.1 ms per step with the yoochoose-100k best
parameters). Here each element is read and written once, in one compiled loop that LLVM
vectorises. The arithmetic is the torch path's, operation for operation, in float32
(``acc += g²``, ``m = μ·m + (−lr·g) / sqrt(acc + eps)``, ``p += m``); only the square root
can differ in the last bit (torch's vectorised ``sqrt`` is not always correctly rounded,
LLVM's is).

The arrays are NumPy views of the torch tensors (no copy). :class:`RowState` holds the views
of one parameter and its state, made once; a step converts only its gradient (and rows).
Numba compiles the kernels on first use (under a second; ``cache=True`` keeps the machine code
in a ``__pycache__`` folder for the next process). :func:`available` is False where Numba
cannot be imported; the optimiser then keeps to its torch path.
"""

from __future__ import annotations

import functools
import threading
from dataclasses import dataclass
from types import ModuleType

import numpy as np
import torch

_ROW0 = np.zeros(1, dtype=np.int64)


@functools.cache
def _compiled() -> ModuleType | None:
    """The module holding the compiled kernels, or None without Numba (imported lazily:
    importing Numba costs a few tenths of a second that most commands do not need)."""
    try:
        from sessionrec.training import _numba_kernels
    except ImportError:
        return None
    return _numba_kernels


def available() -> bool:
    """Whether the fused kernels can run here (Numba imports)."""
    return _compiled() is not None


@functools.cache
def warm_up() -> bool:
    """Load (or compile) the kernels now, once per process, and say whether they are
    available. The first call of a Numba function starts its JIT (about half a second even
    from the cache); trainers call this before their timer starts, like an import."""
    kernels = _compiled()
    if kernels is None:
        return False
    p = np.zeros((2, 1), dtype=np.float32)
    g = np.zeros((1, 1), dtype=np.float32)
    one = np.float32(1.0)
    kernels.adagrad_momentum_rows(p, p.copy(), p.copy(), _ROW0, g, one, one, one)
    kernels.adagrad_rows(p, p.copy(), _ROW0, g, one, one)
    unique_first_seen(torch.zeros(1, dtype=torch.int64), 1, 1)
    return True


@functools.cache
def warm_dense(n: int, momentum: bool) -> None:
    """Load (or compile) :func:`update_dense_many` 's kernel for ``n`` parameters now (its
    machine code depends on how many are passed)."""
    kernels = _compiled()
    if kernels is None or n < 1:
        return
    arrays = [tuple(np.zeros((1, 1), dtype=np.float32) for _ in range(n)) for _ in range(4)]
    one = np.float32(1.0)
    if momentum:
        kernels.adagrad_momentum_dense(*arrays, one, one, one)
    else:
        kernels.adagrad_dense(arrays[0], arrays[1], arrays[3], one, one)


def update_dense_many(states: list[RowState], grads: list[torch.Tensor], lr: float,
                      momentum: float, eps: float) -> None:
    """:meth:`RowState.update_dense` for several whole parameters in one kernel call (the
    call, not the arithmetic, is the cost of a small parameter). ``states`` made with
    ``dense=True``, all with momentum state or all without."""
    kernels = _compiled()
    assert kernels is not None
    params = tuple(s.p for s in states)
    accs = tuple(s.acc for s in states)
    gs = tuple(_rows_view(g, s.width) for s, g in zip(states, grads, strict=True))
    if states[0].mom is None:
        kernels.adagrad_dense(params, accs, gs, np.float32(-lr), np.float32(eps))
    else:
        kernels.adagrad_momentum_dense(params, accs, tuple(s.mom for s in states), gs,
                                       np.float32(-lr), np.float32(momentum),
                                       np.float32(eps))


_local = threading.local()


def _slots(n_items: int) -> np.ndarray:
    """int64 [n_items] of -1: :func:`unique_first_seen` 's scratch (left all -1 after use),
    one per thread (two trainings in threads of one process must not share it)."""
    slots = getattr(_local, "slots", None)
    if slots is None or len(slots) != n_items:
        slots = _local.slots = np.full(n_items, -1, dtype=np.int64)
    return slots


def unique_first_seen(items: torch.Tensor, split: int, n_items: int,
                      ) -> tuple[torch.Tensor, torch.Tensor, int] | None:
    """The distinct values of ``items`` (int64 in ``[0, n_items)``) in the order first seen.

    Returns ``(rows [u], inverse [k], u_split)``: ``rows[inverse] == items``, and the first
    ``u_split`` rows are the distinct values among ``items[:split]``. One pass with a lookup
    table, instead of the sort of ``torch.unique``. None where the kernels are unavailable.
    ValueError names a value outside ``[0, n_items)``.
    """
    kernels = _compiled()
    if kernels is None:
        return None
    values = items.contiguous().numpy()
    rows = np.empty(len(values), dtype=np.int64)
    inverse = np.empty(len(values), dtype=np.int64)
    u, u_split = kernels.unique_first_seen(values, int(split), _slots(int(n_items)), rows,
                                           inverse)
    if u < 0:
        bad = values[(values < 0) | (values >= n_items)][0]
        raise ValueError(f"item index {int(bad)} outside the catalogue [0, {n_items})")
    return torch.from_numpy(rows[:u]), torch.from_numpy(inverse), int(u_split)


def supports(*tensors: torch.Tensor) -> bool:
    """Whether the kernels can update these tensors in place: contiguous float32 on the CPU."""
    for t in tensors:
        if t.dtype != torch.float32 or not t.is_cpu or not t.is_contiguous():
            return False
    return True


def _rows_view(t: torch.Tensor, width: int) -> np.ndarray:
    """float32 [-1, width] NumPy view of ``t`` (shares its memory)."""
    return (t.detach() if t.requires_grad else t).view(-1, width).numpy()


@dataclass(frozen=True)
class RowState:
    """NumPy views of one parameter and its Adagrad state, as rows of ``width`` floats
    (an item table: its rows; a dense parameter: one row of all its elements)."""

    param: torch.Tensor
    width: int
    p: np.ndarray
    acc: np.ndarray
    mom: np.ndarray | None
    ptr: int  # param.data_ptr() when the views were made

    @classmethod
    def of(cls, param: torch.Tensor, acc: torch.Tensor, mom: torch.Tensor | None,
           dense: bool) -> RowState:
        width = param.numel() if dense or param.dim() < 2 else param[0].numel()
        return cls(param, width, _rows_view(param, width), _rows_view(acc, width),
                   None if mom is None else _rows_view(mom, width), param.data_ptr())

    def current(self, param: torch.Tensor) -> bool:
        """Whether the views still show ``param`` (False once its storage was replaced)."""
        return param is self.param and param.data_ptr() == self.ptr

    def update(self, rows: np.ndarray, grad: torch.Tensor, lr: float, momentum: float,
               eps: float) -> None:
        """Adagrad(-momentum) update of rows ``rows`` (unique int64 [u]; dense: ``[0]``)
        with ``grad`` [u, width] (float32, contiguous)."""
        kernels = _compiled()
        assert kernels is not None
        g = _rows_view(grad, self.width)
        if self.mom is None:
            kernels.adagrad_rows(self.p, self.acc, rows, g, np.float32(-lr), np.float32(eps))
        else:
            kernels.adagrad_momentum_rows(self.p, self.acc, self.mom, rows, g,
                                          np.float32(-lr), np.float32(momentum),
                                          np.float32(eps))

    def update_dense(self, grad: torch.Tensor, lr: float, momentum: float,
                     eps: float) -> None:
        """The whole parameter with ``grad`` (its shape)."""
        self.update(_ROW0, grad, lr, momentum, eps)
