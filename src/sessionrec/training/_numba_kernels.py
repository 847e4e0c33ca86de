"""The Numba kernels behind :mod:`sessionrec.training.kernels` (imported only from there).

float32 throughout: the scalars arrive as ``np.float32``, so no operation is widened to
float64. ``error_model="numpy"``: a division by zero gives inf / nan as in torch instead of
raising, which also lets LLVM vectorise the inner loop. ``lr_neg`` is ``−lr``.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, nogil=True, error_model="numpy")
def adagrad_momentum_rows(param, acc, mom, rows, grad, lr_neg, momentum, eps):  # pragma: no cover
    # param, acc, mom: float32 [n, d]; rows: int64 [u] unique; grad: float32 [u, d]
    d = param.shape[1]
    for i in range(rows.shape[0]):
        r = rows[i]
        for j in range(d):
            g = grad[i, j]
            a = acc[r, j] + g * g
            acc[r, j] = a
            m = mom[r, j] * momentum + (lr_neg * g) / np.sqrt(a + eps)
            mom[r, j] = m
            param[r, j] = param[r, j] + m


@njit(cache=True, nogil=True, error_model="numpy")
def adagrad_rows(param, acc, rows, grad, lr_neg, eps):  # pragma: no cover
    d = param.shape[1]
    for i in range(rows.shape[0]):
        r = rows[i]
        for j in range(d):
            g = grad[i, j]
            a = acc[r, j] + g * g
            acc[r, j] = a
            param[r, j] = param[r, j] + (lr_neg * g) / np.sqrt(a + eps)


@njit(cache=True, nogil=True)
def unique_first_seen(items, split, slot, rows, inverse):  # pragma: no cover
    # items: int64 [k]; slot: int64 [n_items], all -1 on entry (and on return);
    # rows, inverse: int64 [k] outputs. Returns (distinct items, distinct among the first
    # `split` items), or (-1, -1) when an item is outside [0, n_items).
    n = slot.shape[0]
    u = 0
    u_split = 0
    for i in range(items.shape[0]):
        if i == split:
            u_split = u
        it = items[i]
        if it < 0 or it >= n:
            for k in range(u):
                slot[rows[k]] = -1
            return -1, -1
        s = slot[it]
        if s < 0:
            s = u
            slot[it] = u
            rows[u] = it
            u += 1
        inverse[i] = s
    if split >= items.shape[0]:
        u_split = u
    for k in range(u):
        slot[rows[k]] = -1
    return u, u_split


@njit(cache=True, nogil=True, error_model="numpy")
def adagrad_momentum_dense(params, accs, moms, grads, lr_neg, momentum, eps):  # pragma: no cover
    # tuples of float32 [1, n_k] arrays: several whole parameters in one call, each its one
    # row through the row kernel
    row0 = np.zeros(1, dtype=np.int64)
    for k in range(len(params)):
        adagrad_momentum_rows(params[k], accs[k], moms[k], row0, grads[k], lr_neg, momentum,
                              eps)


@njit(cache=True, nogil=True, error_model="numpy")
def adagrad_dense(params, accs, grads, lr_neg, eps):  # pragma: no cover
    row0 = np.zeros(1, dtype=np.int64)
    for k in range(len(params)):
        adagrad_rows(params[k], accs[k], row0, grads[k], lr_neg, eps)
