"""Optimisers for models whose big item matrices are updated a few rows at a time.

GRU4Rec touches only the rows of the items in a step (inputs, targets, samples) of its
``n_items x d`` matrices. Building a sparse gradient tensor for them and coalescing it costs
more than the arithmetic, so the models gather those rows into a small dense leaf tensor,
back-propagate into it, and hand the leaf's gradient to :meth:`RowOptimizer.step_rows`
together with the (unique) row indices. Dense parameters (the GRU weights) are updated as with
``torch.optim``: ``loss.backward()``, :meth:`RowOptimizer.step` (every parameter that has a
``.grad``), :meth:`RowOptimizer.zero_grad`. State is plain tensors, so a checkpoint is
``state_dict()`` (``{"<param>.<acc|mom|m|v|t>": tensor}``).

It is not a ``torch.optim.Optimizer`` subclass: measured on GRU4Rec (2 cores, 1 thread), the
subclass made a training epoch about 27% slower in CPU time although its row and dense
updates took the same time, so the class keeps ``torch.optim`` 's calling convention
(``step``, ``zero_grad``, ``state_dict``, ``load_state_dict``) without the base class.

* ``adagrad`` — Adagrad with momentum, GRU4Rec's optimiser:
  ``acc += g²;  m = μ·m − lr·g / sqrt(acc + ε);  p += m`` (no momentum: ``p −= lr·g/sqrt``).
  Rows not in a step keep their accumulators and momentum untouched.
* ``adam`` — Adam (Kingma & Ba); rows use a per-row step count (lazy Adam).

Where Numba is installed, Adagrad runs through compiled kernels instead
(:mod:`sessionrec.training.kernels`: one pass over each updated row or parameter, the same
arithmetic); ``fused=False`` keeps to the torch operations.
"""

from __future__ import annotations

import torch

from sessionrec.training import kernels

OPTIMIZERS = ("adagrad", "adam")


def _flat(p: torch.Tensor) -> torch.Tensor:
    """A 2-d view with one row per item row (a vector is one row)."""
    return p.view(p.shape[0], -1) if p.dim() > 1 else p.view(1, -1)


class RowOptimizer:
    """Adagrad-with-momentum or Adam over named parameters, dense or by rows."""

    def __init__(self, params: dict[str, torch.Tensor], name: str = "adagrad",
                 lr: float = 0.05, momentum: float = 0.0, eps: float = 1e-6,
                 betas: tuple[float, float] = (0.9, 0.999), adam_eps: float = 1e-8,
                 fused: bool | None = None) -> None:
        if name not in OPTIMIZERS:
            raise ValueError(f"unknown optimizer {name!r}; valid optimizers: "
                             f"{', '.join(OPTIMIZERS)}")
        if lr <= 0:
            raise ValueError(f"learning rate must be positive, got {lr}")
        if not 0 <= momentum < 1:
            raise ValueError(f"momentum must lie in [0, 1), got {momentum}")
        self.name, self.lr, self.momentum, self.eps = name, float(lr), float(momentum), eps
        self.betas, self.adam_eps = betas, adam_eps
        # Adagrad through the compiled kernels (sessionrec.training.kernels): None = where
        # Numba is installed; False = torch operations only.
        self.fused = name == "adagrad" and (kernels.available() if fused is None
                                            else bool(fused) and kernels.available())
        self.params = params
        self._views: dict[tuple[str, bool], kernels.RowState] = {}
        self._dense_views: dict[tuple[str, ...], list[kernels.RowState]] = {}
        if self.fused:  # the dense update's kernel, for as many parameters as usually step
            kernels.warm_dense(sum(p.requires_grad for p in params.values()),
                               self.momentum > 0)
        self.state: dict[str, dict[str, torch.Tensor]] = {}
        for key, p in params.items():
            st: dict[str, torch.Tensor] = {}
            if name == "adagrad":
                st["acc"] = torch.zeros_like(p)
                if self.momentum > 0:
                    st["mom"] = torch.zeros_like(p)
            else:
                st["m"] = torch.zeros_like(p)
                st["v"] = torch.zeros_like(p)
                st["t"] = torch.zeros(_flat(p).shape[0], dtype=torch.float32)  # steps per row
            self.state[key] = st

    def step(self) -> None:
        """Update every parameter that has a gradient (``.grad``) as a whole."""
        if self.fused and self._step_fused():
            return
        for key, p in self.params.items():
            if p.grad is not None:
                self.step_dense(key, p.grad)

    def _step_fused(self) -> bool:
        """:meth:`step` as one compiled kernel call over every parameter with a gradient;
        False (nothing done) where a tensor is not one the kernels take."""
        params = self.params
        keys = tuple(k for k, p in params.items() if p.grad is not None)
        if not keys:
            return True
        states = self._dense_views.get(keys)
        if states is None or not all(s.current(params[k])
                                     for s, k in zip(states, keys, strict=True)):
            made = [self._kernel_state(k, dense=True) for k in keys]
            if any(s is None for s in made):
                return False
            states = self._dense_views[keys] = made  # type: ignore[assignment]
        grads = [params[k].grad for k in keys]
        if not kernels.supports(*grads):
            return False
        kernels.update_dense_many(states, grads, self.lr, self.momentum, self.eps)
        return True

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Clear the parameters' gradients (``set_to_none = False``: fill them with zeros)."""
        for p in self.params.values():
            if p.grad is not None:
                if set_to_none:
                    p.grad = None
                else:
                    p.grad.zero_()

    @torch.no_grad()
    def step_dense(self, key: str, grad: torch.Tensor) -> None:
        """Update the whole parameter ``key`` with ``grad``."""
        p, st = self.params[key], self.state[key]
        fused = self._kernel_state(key, dense=True)
        if fused is not None and kernels.supports(grad):
            fused.update_dense(grad, self.lr, self.momentum, self.eps)
            return
        if self.name == "adagrad":
            st["acc"].add_(grad.square())
            denom = st["acc"].add(self.eps).sqrt_()
            if self.momentum > 0:
                st["mom"].mul_(self.momentum).addcdiv_(grad, denom, value=-self.lr)
                p.add_(st["mom"])
            else:
                p.addcdiv_(grad, denom, value=-self.lr)
            return
        st["t"].add_(1)
        flat = _flat(p)
        self._adam(flat, st["m"].view_as(flat), st["v"].view_as(flat), grad.reshape(flat.shape),
                   st["t"], None)

    def step_rows(self, key: str, rows: torch.Tensor, grad: torch.Tensor) -> None:
        """Update rows ``rows`` (unique int64 indices) of parameter ``key`` with ``grad``."""
        if self.fused:
            views = self._kernel_state(key, dense=False)
            if views is not None and kernels.supports(grad) and rows.dtype == torch.int64:
                views.update(rows.contiguous().numpy(), grad, self.lr, self.momentum, self.eps)
                return
        with torch.no_grad():
            self._step_rows_torch(key, rows, grad)

    def _step_rows_torch(self, key: str, rows: torch.Tensor, grad: torch.Tensor) -> None:
        p, st = self.params[key], self.state[key]
        flat = _flat(p)
        grad = grad.reshape(len(rows), -1)
        if self.name == "adagrad":
            acc = st["acc"].view_as(flat)
            # rows are unique: adding g² in place and reading the rows back is the same
            # arithmetic as gather, add, write back, with a cheaper write (index_add_)
            a = acc.index_add_(0, rows, grad.square()).index_select(0, rows)
            a.add_(self.eps).sqrt_()
            if self.momentum > 0:
                mom = st["mom"].view_as(flat)
                m = mom.index_select(0, rows).mul_(self.momentum).addcdiv_(grad, a, value=-self.lr)
                mom.index_copy_(0, rows, m)
                flat.index_add_(0, rows, m)
            else:
                flat.index_add_(0, rows, grad.div_(a).mul_(-self.lr))
            return
        st["t"].index_add_(0, rows, torch.ones(len(rows)))
        self._adam(flat, st["m"].view_as(flat), st["v"].view_as(flat), grad, st["t"], rows)

    def _kernel_state(self, key: str, dense: bool) -> kernels.RowState | None:
        """The compiled kernels' views of parameter ``key`` and its state (made once, made
        again if the parameter's storage was replaced), or None: torch path."""
        if not self.fused:
            return None
        p, st = self.params[key], self.state[key]
        views = self._views.get((key, dense))
        if views is None or not views.current(p):
            state = [st["acc"]] + ([st["mom"]] if "mom" in st else [])
            if not kernels.supports(p, *state):
                return None
            views = kernels.RowState.of(p, st["acc"], st.get("mom"), dense)
            self._views[(key, dense)] = views
        return views

    def _adam(self, flat: torch.Tensor, m_all: torch.Tensor, v_all: torch.Tensor,
              grad: torch.Tensor, t_all: torch.Tensor, rows: torch.Tensor | None) -> None:
        b1, b2 = self.betas
        if rows is None:
            m, v, t = m_all, v_all, t_all.unsqueeze(1)
            m.mul_(b1).add_(grad, alpha=1 - b1)
            v.mul_(b2).addcmul_(grad, grad, value=1 - b2)
        else:
            t = t_all.index_select(0, rows).unsqueeze(1)
            m = m_all.index_select(0, rows).mul_(b1).add_(grad, alpha=1 - b1)
            v = v_all.index_select(0, rows).mul_(b2).addcmul_(grad, grad, value=1 - b2)
            m_all.index_copy_(0, rows, m)
            v_all.index_copy_(0, rows, v)
        m_hat = m / (1 - b1 ** t)
        v_hat = v / (1 - b2 ** t)
        update = m_hat.div_(v_hat.sqrt_().add_(self.adam_eps)).mul_(-self.lr)
        if rows is None:
            flat.add_(update)
        else:
            flat.index_add_(0, rows, update)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {f"{k}.{name}": t for k, st in self.state.items() for name, t in st.items()}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        for k, st in self.state.items():
            for name in st:
                st[name].copy_(state[f"{k}.{name}"])


def clip_total_norm(grads: list[torch.Tensor | None], max_norm: float) -> float:
    """Scale ``grads`` in place so that their joint L2 norm is at most ``max_norm``.

    Returns the norm before clipping. ``max_norm <= 0``: no clipping (the norm is still
    returned).
    """
    present = [g for g in grads if g is not None]
    if not present:
        return 0.0
    norm = float(torch.linalg.vector_norm(
        torch.stack([torch.linalg.vector_norm(g) for g in present])))
    if max_norm > 0 and norm > max_norm:
        scale = max_norm / (norm + 1e-6)
        for g in present:
            g.mul_(scale)
    return norm
