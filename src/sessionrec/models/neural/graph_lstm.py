"""Seed 001 §3.2: the temporal graph over a click sequence and the graph-based LSTM (eq. 2).

**Graph.** Node t (the t-th clicked item) has an edge from node t−1 and from its ``k`` most
similar *earlier* nodes (``k`` = L of seed 001 §4.6; their hidden states and memories are
averaged). The seed measures similarity on thumbnail visual features, which KuaiRand does not
ship; we use either

* ``features``: the weighted count of equal side features, 2·[same author] + [same tag] +
  [same music] + 0.5·[same duration bucket] (video kind is NORMAL for 99 % of videos and is
  left out) — fixed, explainable, and the same for every run; or
* ``vectors``: the cosine of the model's current item vectors (learned; no gradient flows
  through the choice of neighbours).

Among equally similar earlier nodes the most recent wins. Node 0 has no neighbour.

**Cell.** ``i, f, o, u`` from (x_t, h_{t−1}) as in a standard LSTM with c_t = i⊙u + f⊙c_{t−1};
a second gate set ``i*, f*, o*, u*`` from (x_t, h*) with c*_t = i*⊙u* + f*⊙c* where (h*, c*)
are the neighbours' mean state (zeros without a neighbour); h_t = o⊙tanh(c_t) +
o*⊙tanh(c*_t). With ``graph=False`` the second set is absent: a plain LSTM (ALPINE_umg).
"""

from __future__ import annotations

import torch
from torch import nn

# Weights of equal (author, tag, kind, music, duration) codes in the feature similarity.
FEATURE_WEIGHTS = (2.0, 1.0, 0.0, 1.0, 0.5)


def feature_similarity(codes: torch.Tensor, others: torch.Tensor | None = None,
                       weights=FEATURE_WEIGHTS) -> torch.Tensor:
    """codes int64 [B, n, F] (0 unknown) against ``others`` [B, L, F] (default: ``codes``)
    -> float [B, n, L] weighted count of equal codes."""
    others = codes if others is None else others
    w = torch.tensor(weights, dtype=torch.float32, device=codes.device)
    same = (codes.unsqueeze(2) == others.unsqueeze(1)) & (codes.unsqueeze(2) != 0)
    return (same.float() * w).sum(-1)


def vector_similarity(x: torch.Tensor) -> torch.Tensor:
    """x float [B, L, D] -> cosine similarity [B, L, L] (detached)."""
    x = nn.functional.normalize(x.detach(), dim=-1)
    return x @ x.transpose(1, 2)


def temporal_neighbours(sim: torch.Tensor, valid: torch.Tensor, k: int,
                        first: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``k`` most similar earlier valid nodes of every node.

    Args:
        sim: float [B, n, L], ``sim[b, r, j]`` the similarity of nodes ``first + r`` and j
            (``first`` = 0, n = L: every node).
        valid: bool [B, L], real (not padding) nodes.
    Returns:
        (idx int64 [B, n, k], has bool [B, n, k]): neighbour positions (each < t) and whether
        the slot holds one; ties go to the most recent node.
    """
    n, L = sim.shape[1], sim.shape[2]
    t = torch.arange(L, device=sim.device)
    rows = t[first:first + n]
    earlier = (t.unsqueeze(0) < rows.unsqueeze(1)).unsqueeze(0) & valid.unsqueeze(1)  # [B, n, j]
    recency = t.float() / (L * 1000.0)  # below any similarity step
    score = (sim + recency).masked_fill(~earlier, float("-inf"))
    kk = min(k, L)
    top, idx = score.topk(kk, dim=-1)
    has = torch.isfinite(top)
    if kk < k:
        pad = (0, k - kk)
        idx, has = nn.functional.pad(idx, pad), nn.functional.pad(has, pad, value=False)
    return idx.masked_fill(~has, 0), has


class GraphLSTM(nn.Module):
    """The temporal graph-based LSTM over a padded sequence (eq. 2; eq. 1 with graph=False)."""

    def __init__(self, dim: int, hidden: int, graph: bool = True) -> None:
        super().__init__()
        self.hidden, self.graph = hidden, graph
        self.wx = nn.Linear(dim, 4 * hidden)
        self.wh = nn.Linear(hidden, 4 * hidden, bias=False)
        if graph:
            self.wx_star = nn.Linear(dim, 4 * hidden)
            self.wh_star = nn.Linear(hidden, 4 * hidden, bias=False)

    def weights(self) -> list[torch.Tensor]:
        """Every weight (direct attribute reads: cheaper than ``parameters()``)."""
        layers = (self.wx, self.wh, *((self.wx_star, self.wh_star) if self.graph else ()))
        return [w for lin in layers for w in (lin.weight, lin.bias) if w is not None]

    @staticmethod
    def _gates(z: torch.Tensor):
        d = z.shape[-1] // 4
        i, f, o = torch.sigmoid(z[..., :3 * d]).chunk(3, dim=-1)  # one call for three gates
        return i, f, o, torch.tanh(z[..., 3 * d:])

    def forward(self, x: torch.Tensor, idx: torch.Tensor | None = None,
                has: torch.Tensor | None = None) -> torch.Tensor:
        """x [B, L, D], neighbours idx/has [B, L, k] (graph only) -> hidden states [B, L, d].

        Causal: h_t depends on x_0..x_t only, so right padding never changes a real state.
        """
        return torch.stack(self.run(x, idx, has)[0], dim=1)

    def run(self, x: torch.Tensor, idx: torch.Tensor | None = None,
            has: torch.Tensor | None = None, hs: list[torch.Tensor] | None = None,
            cs: list[torch.Tensor] | None = None) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """Continue the recurrence from the states of positions 0..s-1 (``hs``, ``cs``: s
        tensors [B, d] each; none: from the start) over x [B, n, D] = positions s..s+n-1,
        whose neighbours idx/has [B, n, k] index absolute positions. Returns the states of
        positions 0..s+n-1 (lists of [B, d]): h_t (the cell output) and c_t."""
        B, n, _ = x.shape
        d = self.hidden
        zx = self.wx(x)
        zx_star = self.wx_star(x) if self.graph else None
        hs = list(hs) if hs else []
        cs = list(cs) if cs else []
        h = hs[-1] if hs else x.new_zeros(B, d)
        c = cs[-1] if cs else x.new_zeros(B, d)
        if self.graph:
            assert idx is not None and has is not None and zx_star is not None
            # per position: neighbour weights [B, n, k], their count, gather index [B, n, k, d]
            w = has.to(x.dtype)
            denom = w.sum(2, keepdim=True).clamp(min=1.0)
            gather = idx.unsqueeze(-1).expand(-1, -1, -1, d)
            # one row, one neighbour (a served user): index the list, no stacking per step
            single = idx[0, :, 0].tolist() if B == 1 and idx.shape[-1] == 1 else None
        linear = nn.functional.linear  # the layers' own op, without a module call per step
        for r in range(n):
            i, f, o, u = self._gates(zx[:, r] + linear(h, self.wh.weight))
            c = i * u + f * c
            out = o * torch.tanh(c)
            if self.graph:
                if single is not None and hs:
                    j = single[r]
                    h_star, c_star = hs[j] * w[:, r], cs[j] * w[:, r]
                else:
                    h_star, c_star = self._neighbour_state(hs, cs, gather[:, r], w[:, r],
                                                           denom[:, r], c)
                i2, f2, o2, u2 = self._gates(zx_star[:, r] + linear(h_star, self.wh_star.weight))
                out = out + o2 * torch.tanh(i2 * u2 + f2 * c_star)
            h = out
            hs.append(h)
            cs.append(c)
        return hs, cs

    @staticmethod
    def _neighbour_state(hs: list[torch.Tensor], cs: list[torch.Tensor], gather: torch.Tensor,
                         w: torch.Tensor, denom: torch.Tensor,
                         like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(h*, c*) [B, d]: the mean state of the neighbours (gather [B, k, d] positions,
        each < len(hs); w [B, k] 1 where the slot holds one; denom [B, 1] their count, at
        least 1); zeros without any."""
        if not hs:
            zero = torch.zeros_like(like)
            return zero, zero
        H, C = torch.stack(hs, 1), torch.stack(cs, 1)  # [B, t, d]
        if w.shape[1] == 1:  # one slot: the mean is the state itself (x 1) or zeros (x 0)
            return H.gather(1, gather)[:, 0] * w, C.gather(1, gather)[:, 0] * w
        wk = w.unsqueeze(-1)
        return (H.gather(1, gather) * wk).sum(1) / denom, (C.gather(1, gather) * wk).sum(1) / denom
