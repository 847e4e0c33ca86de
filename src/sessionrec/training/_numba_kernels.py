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
