"""ALPINE (Li et al., ACM MM 2019; seed 001 §3): click probability from click, not-click,
like and follow histories with temporal graph-guided LSTMs.

Three branches score a candidate x_new (an item vector, :class:`ItemEmbedding`):

* **interest** ŷ_in: graph LSTM over the click sequence (eq. 2), attention given x_new
  (eqs. 4–5), two-layer MLP on [f_in, x_new] (eq. 6);
* **uninterest** ŷ_un: the same with its own weights over the not-click sequence;
* **enhanced interest** ŷ_en: f_en = U[u] + w_l Σ x_l + w_f Σ x_f over the likes and
  follows before the candidate (eq. 3) — the seed's "user matrix updated in training" is read
  as a learned per-user vector U (zero-initialised) added to the like/follow sum;
  MLP on [f_en, x_new].

ŷ = α1 ŷ_in + α2 ŷ_un + α3 ŷ_en (eq. 7, logits; seed values 0.58/0.18/0.24), trained with
sigmoid cross-entropy (eq. 8). After training the α are re-chosen on the validation split (a
0.1-step grid over the weights of the enabled branches, best mean per-user AUC) unless
``tune_alpha`` is off. Ablations (Table 3): ``unclick = false`` (ALPINE_u), ``multilevel =
false`` (ALPINE_m), both (_um), both and ``graph = false`` (_umg: plain LSTMs);
``neighbours`` is L of Fig. 6.
"""

from __future__ import annotations

import itertools
import logging
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from sessionrec.batching.behaviours import BehaviourBatch
from sessionrec.data.exposures.dataset import Exposures
from sessionrec.models.neural.click import (
    CandidateAttention,
    ClickNet,
    ClickParams,
    ClickRecommender,
    ItemEmbedding,
    history_mask,
    mlp_head,
    register_click_model,
    target_mix,
)
from sessionrec.models.neural.graph_lstm import (
    GraphLSTM,
    feature_similarity,
    temporal_neighbours,
    vector_similarity,
)
from sessionrec.models.neural.params import param
from sessionrec.models.neural.state_memo import StateMemo, weights_key

log = logging.getLogger(__name__)

BRANCHES = ("in", "un", "en")


@dataclass(frozen=True)
class AlpineParams(ClickParams):
    neighbours: int = param(1, low=1, high=10)  # L: similar earlier clicks averaged (Fig. 6)
    graph: bool = True  # False: plain LSTMs (ALPINE_umg)
    unclick: bool = True  # False: no not-click branch (ALPINE_u)
    multilevel: bool = True  # False: no like/follow branch (ALPINE_m)
    similarity: str = param("features", choices=("features", "vectors"))
    alpha_in: float = param(0.58, low=0.0)
    alpha_un: float = param(0.18, low=0.0)
    alpha_en: float = param(0.24, low=0.0)
    w_like: float = param(1.0, low=0.0)
    w_follow: float = param(1.0, low=0.0)
    tune_alpha: bool = True


class SequenceBranch(nn.Module):
    """One behaviour sequence -> graph LSTM states -> attention given the candidate -> ŷ.

    Serving one user (a batch of one row, eval mode, ``torch.inference_mode``) the states
    are memoised by item sequence (:class:`StateMemo`, LRU, 64 MiB at d = 32): a repeated
    history costs nothing and a grown one runs only its new events. Only where that is
    exact: the neighbour choice of ``similarity = "features"`` (or no graph) depends on the
    earlier items alone; the ``vectors`` cosine ties are broken with the padded width and
    are always recomputed.
    """

    def __init__(self, p: AlpineParams, memo_positions: int = 262_144) -> None:
        super().__init__()
        self.p = p
        self.lstm = GraphLSTM(p.embedding, p.hidden, graph=p.graph)
        self.attention = CandidateAttention(p.hidden, p.embedding)
        self.head = mlp_head(p.hidden + p.embedding, p.mlp)
        exact = not p.graph or p.similarity == "features"
        self.memo = StateMemo(memo_positions) if exact and memo_positions else None

    def states(self, emb: ItemEmbedding, items: torch.Tensor) -> torch.Tensor:
        """items [B, L] -> hidden states [B, L, d]."""
        if (self.memo is None or items.shape[0] != 1 or self.training
                or not torch.is_inference_mode_enabled()):
            return torch.stack(self.run(emb, items, [], [])[0], dim=1)
        seq = items[0].cpu().numpy()
        weights = weights_key(emb.weights() + self.lstm.weights())
        hit = self.memo.lookup(seq, weights)
        if hit is not None and hit[0].shape[1] == len(seq):
            return hit[0]
        done = ([], []) if hit is None else (list(hit[0].unbind(1)), list(hit[1].unbind(1)))
        hs, cs = self.run(emb, items, *done)
        h = torch.stack(hs, dim=1)
        self.memo.store(seq, (h, torch.stack(cs, dim=1)))
        return h

    def run(self, emb: ItemEmbedding, items: torch.Tensor, hs: list[torch.Tensor],
            cs: list[torch.Tensor]) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """The LSTM states of positions 0..L-1 of items [B, L], resumed after the ``len(hs)``
        positions whose states ``hs``, ``cs`` are given (lists of [B, d])."""
        s = len(hs)
        x = emb(items[:, s:])
        if not self.p.graph:
            return self.lstm.run(x, hs=hs, cs=cs)
        valid = items != emb.pad
        if self.p.similarity == "features":
            codes = emb.features[items]
            sim = feature_similarity(codes[:, s:], codes)
        else:  # only from the start (see the class docstring)
            sim = vector_similarity(x)
        idx, has = temporal_neighbours(sim, valid, self.p.neighbours, first=s)
        return self.lstm.run(x, idx, has, hs, cs)

    def attend(self, emb: ItemEmbedding, items: torch.Tensor, ts: torch.Tensor,
               batch: BehaviourBatch, x_new: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(f [T, d], α [T, L]): the attended history of each target and its weights."""
        h = self.states(emb, items)  # [B, L, d]: once per user, shared by the user's targets
        return self.attention(h, batch.target_row, history_mask(ts, batch), x_new)

    def forward(self, emb: ItemEmbedding, items: torch.Tensor, ts: torch.Tensor,
                batch: BehaviourBatch, x_new: torch.Tensor) -> torch.Tensor:
        f, _ = self.attend(emb, items, ts, batch, x_new)
        return self.head(torch.cat([f, x_new], dim=-1)).squeeze(-1)


class AlpineNet(ClickNet):
    def __init__(self, p: AlpineParams, features: np.ndarray, sizes: tuple[int, ...],
                 n_users: int) -> None:
        super().__init__()
        self.p = p
        self.items = ItemEmbedding(features, sizes, p.embedding)
        self.interest = SequenceBranch(p)
        self.uninterest = SequenceBranch(p) if p.unclick else None
        if p.multilevel:
            self.users = nn.Embedding(n_users + 1, p.embedding, padding_idx=n_users)
            nn.init.zeros_(self.users.weight)
            self.enhanced = mlp_head(2 * p.embedding, p.mlp)
        enabled = torch.tensor([1.0, float(p.unclick), float(p.multilevel)])
        alpha = torch.tensor([p.alpha_in, p.alpha_un, p.alpha_en]) * enabled
        self.register_buffer("alpha", alpha / alpha.sum().clamp(min=1e-12))

    def enhanced_interest(self, batch: BehaviourBatch) -> torch.Tensor:
        """f_en [T, D] (eq. 3 plus the learned user vector)."""
        n_users = self.users.num_embeddings - 1
        users = batch.users.masked_fill(batch.users < 0, n_users)[batch.target_row]
        f = self.users(users)
        for name, w in (("like", self.p.w_like), ("follow", self.p.w_follow)):
            items, ts = batch.sequence(name)
            mask = history_mask(ts, batch).to(f.dtype)  # [T, L]
            f = f + w * target_mix(mask, self.items(items), batch.target_row)
        return f

    def branch_logits(self, batch: BehaviourBatch) -> torch.Tensor:
        """float [T, 3]: ŷ_in, ŷ_un, ŷ_en (zeros for a disabled branch)."""
        x_new = self.items(batch.target_item)
        zero = x_new.new_zeros(len(x_new))
        y_in = self.interest(self.items, batch.click_items, batch.click_ts, batch, x_new)
        y_un = (self.uninterest(self.items, batch.skip_items, batch.skip_ts, batch, x_new)
                if self.uninterest is not None else zero)
        y_en = (self.enhanced(torch.cat([self.enhanced_interest(batch), x_new], -1)).squeeze(-1)
                if self.p.multilevel else zero)
        return torch.stack([y_in, y_un, y_en], dim=1)

    def logits(self, batch: BehaviourBatch) -> torch.Tensor:
        return fuse(self.branch_logits(batch), self.alpha)

    def click_attention(self, batch: BehaviourBatch) -> torch.Tensor:
        """float [T, L_click]: each target's attention over the click history (Fig. 7)."""
        x_new = self.items(batch.target_item)
        return self.interest.attend(self.items, batch.click_items, batch.click_ts, batch,
                                    x_new)[1]


def fuse(branch_logits: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    """Eq. 7: ŷ = α1 ŷ_in + α2 ŷ_un + α3 ŷ_en for branch logits [T, 3] and α [3]."""
    return branch_logits @ alpha.to(branch_logits.dtype)


def alpha_grid(enabled: tuple[bool, bool, bool], step: float = 0.1) -> list[tuple[float, ...]]:
    """Weights on the simplex over the enabled branches, ``step`` apart (disabled: 0)."""
    n = round(1 / step)
    out = []
    for a in itertools.product(range(n + 1), repeat=3):
        if sum(a) == n and all(e or v == 0 for e, v in zip(enabled, a, strict=True)):
            out.append(tuple(v / n for v in a))
    return out


@register_click_model
class Alpine(ClickRecommender):
    name = "alpine"
    Params = AlpineParams

    def build_net(self, features, sizes, n_users) -> AlpineNet:
        return AlpineNet(self.params, features, sizes, n_users)

    def after_fit(self, data: Exposures) -> dict:
        p = self.params
        enabled = (True, p.unclick, p.multilevel)
        if not p.tune_alpha or sum(enabled) < 2:
            return {"alpha": self.net_.alpha.tolist()}
        from sessionrec.evaluation.candidates import per_user_auc

        valid = self.source(data, "valid")
        rows, parts = [], []
        self.net_.eval()
        with torch.inference_mode():
            for batch in valid.ordered():
                rows.append(batch.exposure.numpy())
                parts.append(self.net_.branch_logits(batch).numpy())
        if not rows:
            return {"alpha": self.net_.alpha.tolist()}
        exp, logits = np.concatenate(rows), np.concatenate(parts)
        users, labels = data.user[exp], data.click[exp]
        best, best_auc = None, -1.0
        for alpha in alpha_grid(enabled):
            _, auc = per_user_auc(users, logits @ np.asarray(alpha), labels)
            if len(auc) and auc.mean() > best_auc:
                best, best_auc = alpha, float(auc.mean())
        if best is not None:
            self.net_.alpha.copy_(torch.tensor(best))
            log.info("alpine: alpha tuned on valid to %s (AUC %.4f)", best, best_auc)
        return {"alpha": self.net_.alpha.tolist(), "alpha_valid_auc": best_auc}
