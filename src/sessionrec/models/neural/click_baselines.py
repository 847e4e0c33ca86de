"""Seed 001's baselines (Table 2) as click-probability models on the neural core.

All use the same item vectors (:class:`ItemEmbedding`: id + side features) and, where they
predict with an MLP, the same two-layer head, so they differ from ALPINE only in how the user
is represented:

* ``bpr-mf`` — matrix factorisation ŷ = p_uᵀ q_i + b_i trained with the BPR loss on pairs of
  a clicked and a not-clicked exposure of the same user in the batch (true negatives);
* ``ncf`` — NeuMF (He et al. 2017): GMF (p_u ⊙ q_i) beside an MLP over [p'_u, q'_i], sigmoid
  cross-entropy;
* ``lstm-r`` — an LSTM over the click sequence; the state after the last click before the
  candidate goes through a fully connected layer, then the MLP head on [f, x_new];
* ``atrank`` — ATRank-style (Zhou et al. 2018): every behaviour (click, not-click, like,
  follow) as item vector + behaviour-type vector in one time-ordered sequence, one causal
  multi-head self-attention block, then attention given the candidate (eqs. 4–5, the
  prediction layer ALPINE uses) and the MLP head.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from sessionrec.batching.behaviours import BEHAVIOURS, NEVER, BehaviourBatch
from sessionrec.models.neural.click import (
    CandidateAttention,
    ClickNet,
    ClickParams,
    ClickRecommender,
    ItemEmbedding,
    history_mask,
    mlp_head,
    register_click_model,
)
from sessionrec.models.neural.params import param


def _user_index(users: torch.Tensor, n_users: int) -> torch.Tensor:
    return users.masked_fill(users < 0, n_users)


class BprNet(ClickNet):
    def __init__(self, p: ClickParams, features, sizes, n_users: int) -> None:
        super().__init__()
        self.items = ItemEmbedding(features, sizes, p.embedding)
        self.users = nn.Embedding(n_users + 1, p.embedding, padding_idx=n_users)
        nn.init.normal_(self.users.weight, std=0.05)
        self.bias = nn.Embedding(len(features) + 1, 1)
        nn.init.zeros_(self.bias.weight)

    def logits(self, batch: BehaviourBatch) -> torch.Tensor:
        u = self.users(_user_index(batch.users, self.users.num_embeddings - 1))
        u = u[batch.target_row]
        q = self.items(batch.target_item)
        return (u * q).sum(-1) + self.bias(batch.target_item).squeeze(-1)

    def forward(self, batch: BehaviourBatch) -> torch.Tensor:
        """Mean BPR loss over (clicked, not-clicked) pairs of the same user."""
        s = self.logits(batch)
        pos = batch.targets > 0.5
        same = batch.target_row.unsqueeze(1) == batch.target_row.unsqueeze(0)
        pairs = same & pos.unsqueeze(1) & ~pos.unsqueeze(0)  # [i pos, j neg]
        if not pairs.any():
            return s.sum() * 0.0
        diff = s.unsqueeze(1) - s.unsqueeze(0)
        return -nn.functional.logsigmoid(diff[pairs]).mean()


class NcfNet(ClickNet):
    def __init__(self, p: ClickParams, features, sizes, n_users: int) -> None:
        super().__init__()
        d = p.embedding
        self.items = ItemEmbedding(features, sizes, 2 * d)  # halves: GMF and MLP item vectors
        self.users = nn.Embedding(n_users + 1, 2 * d, padding_idx=n_users)
        nn.init.normal_(self.users.weight, std=0.05)
        self.mlp = nn.Sequential(nn.Linear(2 * d, p.mlp), nn.ReLU(), nn.Linear(p.mlp, p.mlp // 2),
                                 nn.ReLU())
        self.out = nn.Linear(d + p.mlp // 2, 1)
        self.d = d

    def logits(self, batch: BehaviourBatch) -> torch.Tensor:
        u = self.users(_user_index(batch.users, self.users.num_embeddings - 1))[batch.target_row]
        q = self.items(batch.target_item)
        d = self.d
        gmf = u[:, :d] * q[:, :d]
        deep = self.mlp(torch.cat([u[:, d:], q[:, d:]], -1))
        return self.out(torch.cat([gmf, deep], -1)).squeeze(-1)


class LstmRNet(ClickNet):
    def __init__(self, p: ClickParams, features, sizes, n_users: int) -> None:
        super().__init__()
        self.items = ItemEmbedding(features, sizes, p.embedding)
        self.lstm = nn.LSTM(p.embedding, p.hidden, batch_first=True)
        self.fc = nn.Linear(p.hidden, p.hidden)
        self.head = mlp_head(p.hidden + p.embedding, p.mlp)

    def logits(self, batch: BehaviourBatch) -> torch.Tensor:
        h, _ = self.lstm(self.items(batch.click_items))  # causal: padding at the end is harmless
        h = h[batch.target_row]  # [T, L, d]
        n_seen = history_mask(batch.click_ts, batch).sum(1)  # clicks before each target
        last = h.gather(1, (n_seen - 1).clamp(min=0).view(-1, 1, 1).expand(-1, 1, h.shape[-1]))
        f = torch.relu(self.fc(last.squeeze(1))) * (n_seen > 0).unsqueeze(1).to(h.dtype)
        x_new = self.items(batch.target_item)
        return self.head(torch.cat([f, x_new], -1)).squeeze(-1)


@dataclass(frozen=True)
class AtrankParams(ClickParams):
    heads: int = param(2, low=1)


class AtrankNet(ClickNet):
    def __init__(self, p: AtrankParams, features, sizes, n_users: int) -> None:
        super().__init__()
        if p.hidden % p.heads:
            from sessionrec.errors import ConfigError

            raise ConfigError(f"atrank: hidden {p.hidden} must be divisible by heads {p.heads}")
        self.items = ItemEmbedding(features, sizes, p.embedding)
        self.kinds = nn.Embedding(len(BEHAVIOURS), p.embedding)
        self.proj = nn.Linear(p.embedding, p.hidden)
        self.attn = nn.MultiheadAttention(p.hidden, p.heads, batch_first=True)
        self.ffn = nn.Sequential(nn.Linear(p.hidden, 2 * p.hidden), nn.ReLU(),
                                 nn.Linear(2 * p.hidden, p.hidden))
        self.norm1, self.norm2 = nn.LayerNorm(p.hidden), nn.LayerNorm(p.hidden)
        self.attention = CandidateAttention(p.hidden, p.embedding)
        self.head = mlp_head(p.hidden + p.embedding, p.mlp)

    def logits(self, batch: BehaviourBatch) -> torch.Tensor:
        items, ts, kinds = [], [], []
        for k, name in enumerate(BEHAVIOURS):
            it, t = batch.sequence(name)
            items.append(it)
            ts.append(t)
            kinds.append(torch.full_like(it, k))
        items, ts, kinds = torch.cat(items, 1), torch.cat(ts, 1), torch.cat(kinds, 1)
        order = ts.argsort(dim=1, stable=True)
        items, ts, kinds = (t.gather(1, order) for t in (items, ts, kinds))
        real = ts != NEVER
        x = self.proj(self.items(items) + self.kinds(kinds) * real.unsqueeze(-1))
        # event j may attend to event i when i happened no later (itself included)
        allowed = (ts.unsqueeze(2) >= ts.unsqueeze(1)) & real.unsqueeze(1)
        allowed = allowed | torch.eye(ts.shape[1], dtype=torch.bool, device=ts.device)
        mask = (~allowed).repeat_interleave(self.attn.num_heads, dim=0)
        a, _ = self.attn(x, x, x, attn_mask=mask, need_weights=False)
        h = self.norm1(x + a)
        h = self.norm2(h + self.ffn(h))
        x_new = self.items(batch.target_item)
        f, _ = self.attention(h, batch.target_row, history_mask(ts, batch), x_new)
        return self.head(torch.cat([f, x_new], -1)).squeeze(-1)


@register_click_model
class BprMf(ClickRecommender):
    name = "bpr-mf"

    def build_net(self, features, sizes, n_users):
        return BprNet(self.params, features, sizes, n_users)


@register_click_model
class Ncf(ClickRecommender):
    name = "ncf"

    def build_net(self, features, sizes, n_users):
        return NcfNet(self.params, features, sizes, n_users)


@register_click_model
class LstmR(ClickRecommender):
    name = "lstm-r"

    def build_net(self, features, sizes, n_users):
        return LstmRNet(self.params, features, sizes, n_users)


@register_click_model
class Atrank(ClickRecommender):
    name = "atrank"
    Params = AtrankParams

    def build_net(self, features, sizes, n_users):
        return AtrankNet(self.params, features, sizes, n_users)
