"""SLIST: Session-aware Linear Item Similarity/Transition (Choi et al., WWW 2021).

A closed-form linear item-item model ``score(s) = Σ_i w_pred(i) · B[s_i, :]`` (§3):

* **SLIS** (§3.2): full sessions as rows of ``X`` (binary: a repeated item counts once, rows
  ``l1``/``l2``-normalised), target ``X`` itself; the diagonal of ``B`` is relaxed to
  ``diag(B) ≤ ξ`` (``epsilon``) instead of EASE's zero, which admits repeated items (eq. 6–8).
* **SLIT** (§3.3): every session ``s_1..s_n`` gives ``n − 1`` partial rows: input
  ``s_1..s_t`` with weights ``exp(−|t − j| / δ_pos)`` (``train_weight``), target
  ``s_{t+1}..s_n`` with ``exp(−|t + 1 − j| / δ_pos)`` (``direction = "part"``; ``"sr"``: only
  ``s_t`` as input; ``"all"``: the whole session on both sides).
* **SLIST** (§3.4, eq. 12): ``α ‖X − XB‖² + (1 − α) ‖T − SB‖² + λ‖B‖²`` with every row
  weighted by its session's recency ``exp((t_s − t_max) / δ_time)`` (``session_weight`` in
  days), solved in closed form: ``P = (Mᵀ W M + λ I)⁻¹``, ``B = P Mᵀ W T`` for the stacked,
  ``√α`` / ``√(1 − α)``-scaled inputs ``M`` and targets ``T``; with ``α = 1`` (SLIS alone)
  ``B = I − P diag(μ) + C``, ``C = −P Mᵀ W (M − T)``, ``μ_j = λ`` where ``1 − λ P_jj + C_jj
  < ξ`` and ``(1 − ξ + C_jj) / P_jj`` otherwise (the authors' code).
* Prediction (§3.5): the prefix's items weighted ``exp(−(n − i) / δ_inf)``
  (``predict_weight``; the last item 1). A non-positive ``*_weight`` turns that decay off.

``B``, ``P`` and the Gram matrix are dense ``n_items × n_items`` float32/float64 arrays, so the
model refuses catalogues whose matrices would exceed ``max_memory_gb`` and says how much they
would need (42,988 items: 7.4 GB per float32 matrix). ``ts`` on order-only data (e.g.
``diginetica-srgnn``) is the adapter's synthetic clock, so ``session_weight`` there decays
over session order, not real days.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch

from sessionrec.data.sessions import Sessions
from sessionrec.errors import ConfigError, SessionRecError
from sessionrec.models.base import SessionRecommender, register_model

DIRECTIONS = ("part", "sr", "all")
NORMS = ("l1", "l2", "none")
MATRICES = 3  # Gram / inverse / B held at once (float64 for the inverse: counted as float32 x2)


def dense_gb(n_items: int) -> float:
    """GB the closed form holds at its peak: Gram, inverse and B (float64 while solving)."""
    return MATRICES * n_items**2 * 8 / 1e9


def _slis_rows(train: Sessions) -> tuple[sp.csr_matrix, np.ndarray]:
    """Binary session x item matrix (repeats count once) and each row's session index."""
    owner = train.session_of_event()
    m = sp.csr_matrix((np.ones(train.n_events, dtype=np.float64), (owner, train.items)),
                      shape=(train.n_sessions, train.n_items))
    m.sum_duplicates()
    m.data[:] = 1.0
    return m, np.arange(train.n_sessions)


def _slit_rows(train: Sessions, direction: str, decay: float,
               ) -> tuple[sp.csr_matrix, sp.csr_matrix, np.ndarray]:
    """Partial-session inputs S, targets T (position-decayed) and each row's session."""
    rin, cin, vin, rout, cout, vout, owner = [], [], [], [], [], [], []
    row = 0
    for s in range(train.n_sessions):
        items = train.items[train.offsets[s]: train.offsets[s + 1]]
        n = len(items)
        for t in range(n - 1):
            if direction == "part":
                src, dst = np.arange(t + 1), np.arange(t + 1, n)
            elif direction == "sr":
                src, dst = np.array([t]), np.arange(t + 1, n)
            else:
                src, dst = np.arange(n), np.arange(n)
            rin.append(np.full(len(src), row))
            cin.append(items[src])
            vin.append(-np.abs(t - src).astype(np.float64))
            rout.append(np.full(len(dst), row))
            cout.append(items[dst])
            vout.append(-np.abs(t + 1 - dst).astype(np.float64))
            owner.append(s)
            row += 1
    shape = (row, train.n_items)

    def build(r: list, c: list, v: list) -> sp.csr_matrix:
        vals = np.concatenate(v) if v else np.zeros(0)
        vals = np.exp(vals / decay) if decay > 0 else np.ones_like(vals)
        rows = np.concatenate(r) if r else np.zeros(0, dtype=np.int64)
        cols = np.concatenate(c) if c else np.zeros(0, dtype=np.int64)
        return sp.csr_matrix((vals, (rows, cols)), shape=shape)

    return build(rin, cin, vin), build(rout, cout, vout), np.asarray(owner, dtype=np.int64)


@register_model
class SLIST(SessionRecommender):
    """SLIST (see the module docstring)."""

    name = "slist"

    def __init__(self, reg: float = 10.0, alpha: float = 0.5, direction: str = "part",
                 normalise: str = "l1", epsilon: float = 10.0, session_weight: float = -1.0,
                 train_weight: float = -1.0, predict_weight: float = -1.0,
                 max_memory_gb: float = 4.0) -> None:
        super().__init__(reg=reg, alpha=alpha, direction=direction, normalise=normalise,
                         epsilon=epsilon, session_weight=session_weight,
                         train_weight=train_weight, predict_weight=predict_weight,
                         max_memory_gb=max_memory_gb)
        if reg <= 0:
            raise ConfigError(f"slist: reg must be > 0, got {reg}")
        if not 0.0 <= alpha <= 1.0:
            raise ConfigError(f"slist: alpha must lie in [0, 1], got {alpha}")
        if direction not in DIRECTIONS:
            raise ConfigError(f"slist: direction {direction!r} is not one of {DIRECTIONS}")
        if normalise not in NORMS:
            raise ConfigError(f"slist: normalise {normalise!r} is not one of {NORMS}")
        self.reg, self.alpha, self.direction = float(reg), float(alpha), direction
        self.normalise, self.epsilon = normalise, float(epsilon)
        self.session_weight, self.train_weight = float(session_weight), float(train_weight)
        self.predict_weight, self.max_memory_gb = float(predict_weight), float(max_memory_gb)

    def _rows(self, train: Sessions) -> tuple[sp.csr_matrix, sp.csr_matrix, np.ndarray]:
        """Stacked, scaled inputs M, targets T and row weights W (eq. 12)."""
        # scikit-learn takes ~3 s to import on a 2-core machine: only SLIST's fit pays it.
        from sklearn.preprocessing import normalize as row_normalize

        parts_in, parts_out, owners = [], [], []
        if self.alpha > 0:
            x, owner = _slis_rows(train)
            xin = x if self.normalise == "none" else row_normalize(x, self.normalise)
            parts_in.append(np.sqrt(self.alpha) * xin)
            parts_out.append(np.sqrt(self.alpha) * x)
            owners.append(owner)
        if self.alpha < 1:
            s, t, owner = _slit_rows(train, self.direction, self.train_weight)
            sin = s if self.normalise == "none" else row_normalize(s, self.normalise)
            parts_in.append(np.sqrt(1 - self.alpha) * sin)
            parts_out.append(np.sqrt(1 - self.alpha) * t)
            owners.append(owner)
        owner = np.concatenate(owners)
        w = np.ones(len(owner))
        if self.session_weight > 0:
            starts = train.offsets[:-1]
            ends = train.offsets[1:] - 1
            last_ts = train.ts[np.maximum(ends, starts)].astype(np.float64)
            age_days = (last_ts - last_ts.max()) / 86_400.0
            w = np.exp(age_days[owner] / self.session_weight)
        return sp.vstack(parts_in).tocsr(), sp.vstack(parts_out).tocsr(), w

    def _fit(self, train: Sessions, valid: Sessions | None) -> None:
        n = train.n_items
        need = dense_gb(n)
        if need > self.max_memory_gb:
            raise SessionRecError(
                f"slist: {n:,} items need dense {n:,} x {n:,} matrices, about {need:,.1f} GB "
                f"at the peak of the closed-form solve ({n**2 * 4 / 1e9:,.1f} GB per float32 "
                f"matrix), more than max_memory_gb = {self.max_memory_gb:g}. Use a smaller "
                "catalogue (e.g. filter rare items) or raise max_memory_gb on a machine with "
                "that much memory")
        m, t, w = self._rows(train)
        mw = (m.T @ sp.diags(w)).tocsr()
        gram = (mw @ m).toarray()
        gram[np.diag_indices(n)] += self.reg
        p = np.linalg.inv(gram)
        del gram
        if self.alpha == 1.0:
            c = -p @ (mw @ (m - t)).toarray()
            diag_p, diag_c = np.diag(p), np.diag(c)
            mu = np.full(n, self.reg)
            relax = 1 - self.reg * diag_p + diag_c >= self.epsilon
            mu[relax] = ((1 - self.epsilon + diag_c) / diag_p)[relax]
            b = np.eye(n) - p * mu[None, :] + c
        else:
            b = p @ (mw @ t).toarray()
        self.weights_ = torch.from_numpy(b.astype(np.float32))

    def _score(self, prefixes: list[np.ndarray], users: np.ndarray | None) -> torch.Tensor:
        out = torch.zeros((len(prefixes), self.n_items_), dtype=torch.float32)
        for row, prefix in enumerate(prefixes):
            n = len(prefix)
            w = np.ones(n, dtype=np.float32)
            if self.predict_weight > 0:
                w = np.exp(-(n - 1 - np.arange(n)) / self.predict_weight).astype(np.float32)
            out[row] = torch.from_numpy(w) @ self.weights_[torch.from_numpy(prefix)]
        return out

    def _state(self) -> dict[str, torch.Tensor]:
        return {"weights_": self.weights_}

    def _set_state(self, state: dict[str, torch.Tensor]) -> None:
        state = dict(state)
        self.weights_ = state.pop("weights_")
        super()._set_state(state)
