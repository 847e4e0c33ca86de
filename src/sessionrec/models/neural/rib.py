"""RIB: recommendation from the micro-behaviour perspective (Zhou et al., RecSys 2018).

Section 3 of the paper (and seed 002's walk-through of it), read top to bottom:

* **input and embedding layer** (§3.2): every click is ``x_t = (p_v, a_m, d_k)`` — the item,
  the micro-behaviour (here the event type: view, cart, fav, purchase, ... of
  :attr:`Sessions.event_types`) and a dwell-time bucket — embedded separately and
  concatenated, ``e_t = [W_p p_v ; W_A a_m ; W_D d_k]`` (``embedding``, ``behaviour_dim``,
  ``dwell_dim``; a width of 0 leaves that input out);
* **RNN layer** (§3.3): a GRU over ``e_1..e_T`` gives ``h_1..h_T``;
* **attention layer** (§3.4): ``a_t = vᵀ tanh(W_a h_t + b_a)``, ``α = softmax(a)`` over the
  prefix's real clicks, ``o = Σ_t α_t h_t`` (``attention = false``: ``o = h_T``);
* **output layer** (§3.5): ``o`` is scored against every item by the shared output layer
  (full softmax with cross-entropy, or sampled).

Dwell buckets are ``1 + floor(log2(1 + seconds to the next event))`` capped at
``dwell_buckets`` (:mod:`sessionrec.batching.micro`); the prefix's last click has no
known dwell (its next event is the one predicted) and gets bucket 0, as does data whose
timestamps only give an order. Behaviour codes are named by ``behaviours`` (taken from the
training data when empty, then saved with the model); codes of another data set are mapped by
name, unknown names to 0.

Prefixes scored without behaviours — :meth:`score` of item lists, which serving uses — get
behaviour 0 ("unknown") and dwell 0 everywhere: the model is then a GRU with attention over
items, and the behaviour input only helps where the data passes it (``score_next`` on
sessions with event types, i.e. evaluation).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from sessionrec.batching.micro import (
    MicroBatch,
    MicroSource,
    behaviour_rows,
    micro_batch,
)
from sessionrec.batching.prefixes import PrefixBatch, batch_from_lists
from sessionrec.data.sessions import Sessions
from sessionrec.models.base import register_model
from sessionrec.models.neural.base import NeuralParams, NeuralRecommender
from sessionrec.models.neural.output import ItemOutput
from sessionrec.models.neural.params import param
from sessionrec.training.context import FitContext

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RIBParams(NeuralParams):
    embedding: int = param(64, low=1)
    behaviour_dim: int = param(16, low=0)
    dwell_dim: int = param(8, low=0)
    dwell_buckets: int = param(12, low=1)
    hidden: int = param(100, low=1)
    attention: bool = True
    dropout_embed: float = param(0.0, low=0.0, high=1.0, open_high=True)
    dropout_hidden: float = param(0.0, low=0.0, high=1.0, open_high=True)
    behaviours: tuple[str, ...] = ()  # names of behaviour codes 1, 2, ...; () = from the data


def remap_codes(codes: np.ndarray, names: tuple[str, ...], to: tuple[str, ...]) -> np.ndarray:
    """Behaviour codes over ``names`` (0 unknown) as codes over ``to`` (names not in ``to``
    become 0)."""
    table = np.zeros(len(names) + 1, dtype=np.int64)
    for i, name in enumerate(names):
        table[i + 1] = to.index(name) + 1 if name in to else 0
    return table[codes]


class RIBEncoder(nn.Module):
    def __init__(self, p: RIBParams, n_items: int) -> None:
        super().__init__()
        self.items = nn.Embedding(n_items + 1, p.embedding, padding_idx=n_items)
        self.kinds = nn.Embedding(len(p.behaviours) + 1, p.behaviour_dim) \
            if p.behaviour_dim else None
        self.dwell = nn.Embedding(p.dwell_buckets + 1, p.dwell_dim) if p.dwell_dim else None
        width = p.embedding + p.behaviour_dim + p.dwell_dim
        self.drop_embed = nn.Dropout(p.dropout_embed)
        self.gru = nn.GRU(width, p.hidden, batch_first=True)
        self.attention = p.attention
        self.w_a = nn.Linear(p.hidden, p.hidden)
        self.v = nn.Linear(p.hidden, 1, bias=False)
        self.drop_hidden = nn.Dropout(p.dropout_hidden)

    def embed(self, batch: PrefixBatch) -> torch.Tensor:
        parts = [self.items(batch.items)]
        kinds = getattr(batch, "kinds", None)
        dwell = getattr(batch, "dwell", None)
        if self.kinds is not None:
            parts.append(self.kinds(kinds if kinds is not None
                                    else torch.zeros_like(batch.items)))
        if self.dwell is not None:
            parts.append(self.dwell(dwell if dwell is not None
                                    else torch.zeros_like(batch.items)))
        return self.drop_embed(torch.cat(parts, dim=2))             # [B, L, width]

    def forward(self, batch: PrefixBatch) -> torch.Tensor:
        x = self.embed(batch)
        packed = pack_padded_sequence(x, batch.lengths.cpu(), batch_first=True,
                                      enforce_sorted=False)
        h, _ = pad_packed_sequence(self.gru(packed)[0], batch_first=True,
                                   total_length=x.shape[1])          # [B, L, hid]
        if self.attention:
            a = self.v(torch.tanh(self.w_a(h))).squeeze(2)           # [B, L]
            a = a.masked_fill(~batch.mask, float("-inf"))
            o = (torch.softmax(a, dim=1).unsqueeze(2) * h).sum(1)    # [B, hid]
        else:
            last = (batch.lengths - 1).view(-1, 1, 1).expand(-1, 1, h.shape[2])
            o = h.gather(1, last).squeeze(1)
        return self.drop_hidden(o)


@register_model
class RIB(NeuralRecommender):
    """RIB (see the module docstring); parameters: :class:`RIBParams`."""

    name = "rib"
    Params = RIBParams

    def output_dim(self) -> int:
        return self.params.hidden

    def build_encoder(self, n_items: int, output: ItemOutput) -> nn.Module:
        return RIBEncoder(self.params, n_items)

    def batch_source(self, train: Sessions, rank: int, world_size: int) -> MicroSource:
        p = self.params
        return MicroSource(train, self._rank_batch(world_size), p.max_len,
                               p.dwell_buckets, p.seed, rank, world_size)

    # -- behaviour names -----------------------------------------------------------------------
    def _with_codes(self, sessions: Sessions) -> Sessions:
        """``sessions`` with behaviour codes over this model's ``behaviours``."""
        if sessions.event_types is None:
            return sessions
        to = self.params.behaviours
        if sessions.event_type_names == to:
            return sessions
        missing = sorted(set(sessions.event_type_names) - set(to))
        if missing:
            log.warning("%s: behaviours %s are not among the model's %s; they count as "
                        "unknown", self.name, missing, list(to))
        return dataclasses.replace(
            sessions, event_types=remap_codes(sessions.event_types,
                                              sessions.event_type_names, to),
            event_type_names=to)

    def _fit_in_context(self, train: Sessions, valid: Sessions | None,
                        context: FitContext) -> None:
        if not self.params.behaviours and train.event_type_names:
            self.params = dataclasses.replace(self.params,
                                              behaviours=tuple(train.event_type_names))
            self._params["behaviours"] = list(train.event_type_names)
        if train.event_types is None:
            log.warning("%s: the training data has no event types; every click's behaviour "
                        "is unknown", self.name)
        super()._fit_in_context(self._with_codes(train),
                                None if valid is None else self._with_codes(valid), context)

    # -- scoring with behaviours ---------------------------------------------------------------
    def score_next(self, sessions: Sessions, targets: np.ndarray, batch_size: int = 512
                   ) -> Iterator[tuple[np.ndarray, torch.Tensor]]:
        """Scores for the events ``targets`` from their prefixes with behaviours and dwell
        (sessions without event types: from the items alone, as :meth:`score`)."""
        if sessions.event_types is None:
            yield from super().score_next(sessions, targets, batch_size)
            return
        self._check_fitted()
        sessions = self._with_codes(sessions)
        p = self.params
        users_of = sessions.users[sessions.session_of_event()]
        for lo in range(0, len(targets), batch_size):
            chunk = np.asarray(targets[lo: lo + batch_size])
            items, kinds, dwell = behaviour_rows(sessions, chunk, self.n_items_, p.max_len,
                                                 p.dwell_buckets)
            out = self.popularity_.float().unsqueeze(0).repeat(len(chunk), 1)
            rows = [i for i, r in enumerate(items) if len(r)]
            if rows:
                out[rows] = self._score_rows([items[i] for i in rows], [kinds[i] for i in rows],
                                             [dwell[i] for i in rows], users_of[chunk[rows]])
            yield chunk, out

    @torch.inference_mode()
    def _score_rows(self, items: list[np.ndarray], kinds: list[np.ndarray],
                    dwell: list[np.ndarray], users: np.ndarray) -> torch.Tensor:
        self.net_.eval()
        device = self._device()
        out = []
        step = self.params.eval_batch
        for lo in range(0, len(items), step):
            base = batch_from_lists(items[lo: lo + step], self.n_items_, self.params.max_len,
                                    users[lo: lo + step])
            width = base.items.shape[1]
            batch: MicroBatch = micro_batch(
                base, _pad(kinds[lo: lo + step], width), _pad(dwell[lo: lo + step], width))
            out.append(self.net_.scores(batch.to(device)).float().cpu())
        return torch.cat(out)


def _pad(rows: list[np.ndarray], width: int) -> torch.Tensor:
    out = np.zeros((len(rows), width), dtype=np.int64)
    for i, r in enumerate(rows):
        out[i, : len(r)] = r
    return torch.from_numpy(out)
