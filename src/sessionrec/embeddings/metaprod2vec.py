"""Meta-Prod2Vec: skip-gram product embeddings that also learn from item metadata.

Items ``0 .. n_items-1`` and metadata tokens (brand, product type, price class; see
:mod:`sessionrec.embeddings.metadata`) share one id space: token ``t`` has id ``n_items + t``.
Every id has an input vector ``u`` and an output vector ``v``; a positive pair (centre ``a``,
context ``b``) with ``k`` negatives ``n_1 .. n_k`` costs (skip-gram with negative sampling)::

    loss(a, b) = w * ( -log sigma(u_a . v_b) - sum_j log sigma(-u_a . v_{n_j}) )

Pairs come from the training sessions. For every two events of a session at most ``window``
apart, in both directions (centre item ``i``, context item ``j``, ``M(x)`` the tokens of ``x``):

=========  =====================================  =====================================
term       pairs                                  weight ``w``
=========  =====================================  =====================================
``I|I``    ``i -> j``                             1 (prod2vec)
``M|I``    ``i -> m`` for ``m`` in ``M(j)``       ``lambda_meta``
``J|M``    ``m -> j`` for ``m`` in ``M(i)``       ``lambda_meta``
``M|M``    ``m -> m'``, same field of i and j     ``lambda_meta``
``I|M``    ``m -> i`` for ``m`` in ``M(i)``       ``lambda_meta`` (once per event)
=========  =====================================  =====================================

This is the loss of Vasile et al. (2016), ``L = L_J|I + lambda (L_M|I + L_J|M + L_M|M +
L_I|M)``, with equal weights as in seed 000. Two choices are ours: ``M|M`` pairs only tokens of
the same field (brand -> brand, ...), not every field combination, and the same item at two
positions of a session makes no ``I|I`` pair. ``lambda_meta = 0`` is plain prod2vec (no token
pairs are generated at all).

**Negatives** are drawn per kind of context: an item context gets item negatives from the item
unigram distribution to the power 0.75 (with ``negatives_from="category"``, seed 004: from the
items of the context item's own product type only, so that the model must tell apart products
of one category rather than a dress from a drill); a token context gets tokens *of the same
field* (brand against other brands) from that field's unigram^0.75, where a token's count is
the number of training events whose item carries it. Contrasting a brand with product types
would teach nothing. Pairs are put in groups of ``group_size`` pairs with contexts of one kind,
and the pairs of a group share their ``negatives`` draws (every pair still meets ``negatives``
negatives; the scores are one small matrix product per group instead of a gather per pair).

**Training** is vectorised: pairs are generated with NumPy over session offset arrays (one step
per window offset, never per event), sessions are shuffled each epoch, pairs are shuffled
within chunks of about ``chunk_pairs``, and batches of ``batch_size`` pairs are processed with
hand-written gradients and row-wise Adagrad (one accumulator per vector, as in
PyTorch-BigGraph); the gradients of a row that occurs many times in a batch (a popular brand)
are summed before its one step, which keeps such rows from overshooting. The item embedding is
the input vector ``u`` of the item. Given ``seed`` and the thread count, training is
deterministic.
"""

from __future__ import annotations

import itertools
import logging
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import torch

from sessionrec.data.sessions import Sessions
from sessionrec.embeddings.metadata import MetadataTokens, item_metadata_tokens
from sessionrec.embeddings.store import METADATA_COLUMNS, EmbeddingStore
from sessionrec.errors import ConfigError, DataError, EmptyDataError
from sessionrec.progress import Progress
from sessionrec.torch_env import flush_denormal, torch_threads

log = logging.getLogger(__name__)

METHOD = "metaprod2vec"
TERMS: tuple[str, ...] = ("I|I", "M|I", "J|M", "M|M", "I|M")
META_TERMS: tuple[str, ...] = TERMS[1:]


@dataclass(frozen=True)
class MetaProd2VecConfig:
    dim: int = 64
    window: int = 3  # context: events at distance 1 .. window on both sides
    epochs: int = 2  # seed 000: a third pass did not lower the loss any more
    negatives: int = 5
    lambda_meta: float = 1.0  # weight of every metadata term; 0 is plain prod2vec
    terms: tuple[str, ...] = META_TERMS  # which metadata terms to use
    price_classes: int = 5  # price quantile buckets within a product type
    fields: tuple[str, ...] | None = None  # metadata fields; None: all the data has
    lr: float = 0.1  # row-wise Adagrad step size
    batch_size: int = 16_384  # positive pairs per step (a multiple of group_size, at least one)
    group_size: int = 256  # pairs with contexts of one kind that share one draw of negatives
    chunk_pairs: int = 2_000_000  # pairs generated and shuffled together
    seed: int = 0
    # Item negatives: "unigram" (unigram^0.75 over all items) or "category" (unigram^0.75 over
    # the items of the positive context's product type, seed 004; needs the ``type`` field).
    negatives_from: str = "unigram"
    # torch threads; 0 keeps torch's default. One is the default: a step is many small
    # memory-bound operations, and two threads on a shared 2-core machine were far slower.
    threads: int = 1

    def __post_init__(self) -> None:
        checks = {"dim": self.dim >= 1, "window": self.window >= 1, "epochs": self.epochs >= 0,
                  "negatives": self.negatives >= 1, "batch_size": self.batch_size >= 1,
                  "group_size": self.group_size >= 1,
                  "chunk_pairs": self.chunk_pairs >= 1, "price_classes": self.price_classes >= 1,
                  "lr": self.lr > 0, "threads": self.threads >= 0}
        for name, ok in checks.items():
            if not ok:
                raise ConfigError(f"metaprod2vec.{name} has an invalid value "
                                  f"{getattr(self, name)!r}")
        if not (self.lambda_meta >= 0 and math.isfinite(self.lambda_meta)):
            raise ConfigError(f"metaprod2vec.lambda_meta must be >= 0, got {self.lambda_meta}")
        if self.negatives_from not in ("unigram", "category"):
            raise ConfigError(f"metaprod2vec.negatives_from must be 'unigram' or 'category', "
                              f"got {self.negatives_from!r}")
        bad = [t for t in self.terms if t not in META_TERMS]
        if bad:
            raise ConfigError(f"metaprod2vec.terms: unknown term(s) {bad}; choose from "
                              f"{list(META_TERMS)}")


@dataclass
class MetaProd2Vec:
    """A trained model: the input vectors of items and tokens, and what training measured."""

    config: MetaProd2VecConfig
    n_items: int
    tokens: MetadataTokens
    vectors: torch.Tensor  # float32 [n_items + n_tokens, dim], input vectors
    history: list[dict[str, float]] = field(default_factory=list)

    def item_vectors(self) -> torch.Tensor:
        """float32 [n_items, dim], row ``i`` for ``item_idx`` i."""
        return self.vectors[: self.n_items]

    def token_vectors(self) -> torch.Tensor:
        """float32 [n_tokens, dim], row ``t`` for token ``tokens.names[t]``."""
        return self.vectors[self.n_items :]

    def params(self) -> dict[str, Any]:
        p = asdict(self.config)
        p["fields"] = list(self.tokens.fields)
        p["terms"] = list(self.config.terms) if self.tokens.fields and \
            self.config.lambda_meta > 0 else []
        return p


# -- pairs -----------------------------------------------------------------------------------
def window_pairs(offsets: np.ndarray, window: int) -> tuple[np.ndarray, np.ndarray]:
    """Event positions ``(centre, context)`` of every two events of a session at most
    ``window`` apart, both directions. One vectorised step per distance ``1 .. window``."""
    offsets = np.asarray(offsets, dtype=np.int64)
    lengths = np.diff(offsets)
    n = int(offsets[-1] - offsets[0])
    # events after each event in its own session
    after = np.repeat(offsets[1:] - offsets[0], lengths) - np.arange(n, dtype=np.int64) - 1
    centres, contexts = [], []
    for d in range(1, window + 1):
        first = np.flatnonzero(after >= d)
        centres += [first, first + d]
        contexts += [first + d, first]
    if not centres:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    return np.concatenate(centres), np.concatenate(contexts)


def build_pairs(items: np.ndarray, offsets: np.ndarray, item_tokens: np.ndarray, n_items: int,
                window: int, terms: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Positive pairs ``(centre, context, term)`` of the sessions ``offsets`` over ``items``.

    ``item_tokens`` [n_items, n_fields] are token indices (ids ``n_items + token``); ``term``
    is the index into :data:`TERMS`. Pairs of the ``I|I`` term come first, then per term.
    """
    ce, xe = window_pairs(offsets, window)
    ci, xi = items[offsets[0] + ce], items[offsets[0] + xe]
    keep = ci != xi
    ci, xi = ci[keep], xi[keep]
    centre, context, term = [ci], [xi], [np.zeros(len(ci), np.int8)]
    n_fields = item_tokens.shape[1]
    if n_fields:
        ct = item_tokens[ci] + n_items  # [pairs, fields]
        xt = item_tokens[xi] + n_items
        k = {t: np.int8(TERMS.index(t)) for t in META_TERMS}
        if "M|I" in terms:
            centre.append(np.repeat(ci, n_fields))
            context.append(xt.ravel())
            term.append(np.full(xt.size, k["M|I"]))
        if "J|M" in terms:
            centre.append(ct.ravel())
            context.append(np.repeat(xi, n_fields))
            term.append(np.full(ct.size, k["J|M"]))
        if "M|M" in terms:
            centre.append(ct.ravel())
            context.append(xt.ravel())
            term.append(np.full(ct.size, k["M|M"]))
        if "I|M" in terms:
            own = items[offsets[0] : offsets[-1]]
            centre.append(item_tokens[own].ravel() + n_items)
            context.append(np.repeat(own, n_fields))
            term.append(np.full(own.size * n_fields, k["I|M"]))
    return np.concatenate(centre), np.concatenate(context), np.concatenate(term)


# -- negatives -------------------------------------------------------------------------------
class NegativeSampler:
    """Draws negatives of one kind (items, or the tokens of one field) by unigram^power."""

    def __init__(self, counts: np.ndarray, kind: np.ndarray, power: float = 0.75) -> None:
        """``counts`` [V] occurrences of each id; ``kind`` [V] the kind code of each id."""
        kind = np.asarray(kind, dtype=np.int64)
        order = np.argsort(kind, kind="stable")  # ids grouped by kind
        self.ids = torch.from_numpy(order)
        self.n_kinds = int(kind.max()) + 1 if len(kind) else 0
        self.kind = torch.from_numpy(kind)
        kind = kind[order]
        weights = np.asarray(counts, dtype=np.float64)[order] ** power
        cdf = np.zeros(len(counts), dtype=np.float64)
        first = np.searchsorted(kind, np.arange(self.n_kinds))
        last = np.searchsorted(kind, np.arange(self.n_kinds), side="right") - 1
        for k in range(self.n_kinds):
            w = weights[first[k] : last[k] + 1]
            if not len(w):
                continue
            w = w if w.sum() > 0 else np.ones_like(w)
            c = np.cumsum(w) / w.sum()
            c[-1] = 1.0
            cdf[first[k] : last[k] + 1] = k + c  # kind k's distribution lives in (k, k + 1]
        self.cdf = torch.from_numpy(cdf)
        self.first, self.last = torch.from_numpy(first), torch.from_numpy(last)

    def sample(self, kinds: torch.Tensor, n: int, gen: torch.Generator) -> torch.Tensor:
        """int64 [len(kinds), n]: ``n`` ids of kind ``kinds[g]`` for every row ``g``."""
        u = torch.rand((len(kinds), n), generator=gen, dtype=torch.float64) + kinds[:, None]
        pos = torch.searchsorted(self.cdf, u, right=True)
        return self.ids[torch.minimum(torch.maximum(pos, self.first[kinds][:, None]),
                                      self.last[kinds][:, None])]


def negative_groups(kinds: torch.Tensor, n_kinds: int, group_size: int
                    ) -> tuple[torch.Tensor, torch.Tensor]:
    """Groups of at most ``group_size`` pairs whose contexts are of one kind.

    Returns ``slots`` int64 [G, group_size], the pair index in each slot (-1: padding), and
    ``group_kind`` int64 [G]. The pairs of one group share their negatives.
    """
    order = torch.argsort(kinds, stable=True)
    counts = torch.bincount(kinds, minlength=n_kinds)
    n_groups = (counts + group_size - 1) // group_size
    group_start = torch.cumsum(n_groups, 0) - n_groups
    kind_start = torch.cumsum(counts, 0) - counts
    sorted_kind = kinds[order]
    local = torch.arange(len(kinds)) - kind_start[sorted_kind]
    group = group_start[sorted_kind] + local // group_size
    slots = torch.full((int(n_groups.sum()), group_size), -1, dtype=torch.int64)
    slots[group, local % group_size] = order
    group_kind = torch.repeat_interleave(torch.arange(n_kinds), n_groups)
    return slots, group_kind


# -- training --------------------------------------------------------------------------------
class _RowAdagrad:
    """Row-wise Adagrad on a table: one squared-gradient accumulator per row.

    The gradients of a row that occurs several times in a batch are summed first, so a token
    seen thousands of times per batch takes one normalised step, not thousands.
    """

    def __init__(self, table: torch.Tensor, lr: float, eps: float = 1e-10) -> None:
        self.table, self.lr, self.eps = table, lr, eps
        self.state = torch.zeros(table.shape[0], dtype=table.dtype)
        self._slot = torch.zeros(table.shape[0], dtype=torch.int64)  # scratch row -> position

    def step(self, parts: list[tuple[torch.Tensor, torch.Tensor]]) -> None:
        """Apply gradients given as ``(rows [n], grad [n, d])`` parts."""
        idx = torch.cat([i for i, _ in parts]) if len(parts) > 1 else parts[0][0]
        # Distinct rows without sorting: each row keeps one of its positions (whichever write
        # lands last); the positions that kept themselves are the distinct rows. The sums do
        # not depend on which position represents a row.
        pos = torch.arange(len(idx))
        self._slot[idx] = pos
        rep = self._slot[idx]
        first = rep == pos
        compact = torch.cumsum(first, 0) - 1
        rows = idx[first]
        target = compact[rep]
        acc = torch.zeros(len(rows), self.table.shape[1], dtype=self.table.dtype)
        start = 0
        for i, grad in parts:
            acc.index_add_(0, target[start : start + len(i)], grad)
            start += len(i)
        s = self.state[rows] + torch.linalg.vector_norm(acc, dim=1).square_() / acc.shape[1]
        self.state[rows] = s
        acc.mul_((self.lr / (s + self.eps).sqrt())[:, None])
        self.table.index_add_(0, rows, acc, alpha=-1.0)


def _sgns_step(w_in: _RowAdagrad, w_out: _RowAdagrad, centre: torch.Tensor,
               context: torch.Tensor, negatives: torch.Tensor, weight: torch.Tensor) -> float:
    """One step of skip-gram with negative sampling over groups sharing negatives.

    ``centre``, ``context``, ``weight`` are [G, C] (padding slots have weight 0),
    ``negatives`` [G, N]. Returns the summed weighted loss.
    """
    g_, c_ = centre.shape
    c = w_in.table[centre.reshape(-1)].reshape(g_, c_, -1)  # [G, C, d]
    o = w_out.table[context.reshape(-1)].reshape(g_, c_, -1)  # [G, C, d]
    n = w_out.table[negatives.reshape(-1)].reshape(g_, negatives.shape[1], -1)  # [G, N, d]
    s_pos = torch.bmm(c.reshape(-1, 1, c.shape[2]), o.reshape(-1, c.shape[2], 1)).reshape(g_, c_)
    s_neg = torch.bmm(c, n.transpose(1, 2))  # [G, C, N]
    loss = -(weight * (torch.nn.functional.logsigmoid(s_pos)
                       + torch.nn.functional.logsigmoid(-s_neg).sum(2))).sum()
    g_pos = ((torch.sigmoid(s_pos) - 1.0) * weight)[:, :, None]  # d loss / d s_pos
    g_neg = torch.sigmoid(s_neg) * weight[:, :, None]  # d loss / d s_neg
    grad_c = torch.baddbmm(g_pos * o, g_neg, n)  # [G, C, d]
    grad_n = torch.bmm(g_neg.transpose(1, 2), c)  # [G, N, d]
    dim = c.shape[2]
    w_out.step([(context.reshape(-1), (c.mul_(g_pos)).reshape(-1, dim)),
                (negatives.reshape(-1), grad_n.reshape(-1, dim))])
    w_in.step([(centre.reshape(-1), grad_c.reshape(-1, dim))])
    return float(loss)


def item_kinds(tokens: MetadataTokens | None, n_items: int, cfg: MetaProd2VecConfig
               ) -> np.ndarray:
    """The negative-sampling kind of every item: 0, or with ``negatives_from="category"`` one
    kind per product type (``type`` token; items without a type share the unknown one)."""
    if cfg.negatives_from != "category":
        return np.zeros(n_items, np.int64)
    if tokens is None or "type" not in tokens.fields:
        raise ConfigError("metaprod2vec.negatives_from='category' needs the item category "
                          "(the 'type' metadata field); this data has fields "
                          f"{list(tokens.fields) if tokens is not None else 'none'}")
    col = tokens.item_tokens[:, tokens.fields.index("type")]
    return np.unique(col, return_inverse=True)[1].astype(np.int64).reshape(-1)


def negative_kinds(item_kind: np.ndarray, tokens: MetadataTokens) -> np.ndarray:
    """The kind of every id (negatives are drawn within the context's kind): the items' kinds,
    then one kind per metadata field for the tokens."""
    n_item_kinds = int(item_kind.max()) + 1 if len(item_kind) else 1
    return np.concatenate([item_kind, tokens.field_of_token + n_item_kinds])


def unigram_counts(train: Sessions, tokens: MetadataTokens) -> np.ndarray:
    """Occurrences of every id of the joint space in the training events."""
    item = np.bincount(train.items, minlength=train.n_items).astype(np.float64)
    token = np.zeros(tokens.n_tokens, dtype=np.float64)
    for j in range(len(tokens.fields)):
        token += np.bincount(tokens.item_tokens[:, j], weights=item, minlength=tokens.n_tokens)
    return np.concatenate([item, token])


def train(sessions: Sessions, tokens: MetadataTokens | None = None,
          config: MetaProd2VecConfig | None = None) -> MetaProd2Vec:
    """Fit Meta-Prod2Vec (prod2vec when ``tokens`` is None or ``lambda_meta`` is 0)."""
    cfg = config or MetaProd2VecConfig()
    n_items = sessions.n_items
    item_kind = item_kinds(tokens, n_items, cfg)
    if tokens is None or cfg.lambda_meta == 0:
        tokens = MetadataTokens.empty(n_items)
    if tokens.n_items != n_items:
        raise DataError(f"metadata covers {tokens.n_items} items, the sessions {n_items}",
                        column="item_idx")
    if sessions.n_events == 0:
        raise EmptyDataError("no training events to learn embeddings from")
    terms = cfg.terms if tokens.fields else ()
    # Adagrad steps of rarely-updated rows produce subnormal floats, which are very slow.
    with torch_threads(cfg.threads), flush_denormal():
        return _train(sessions, tokens, cfg, terms, item_kind)


def _train(sessions: Sessions, tokens: MetadataTokens, cfg: MetaProd2VecConfig,
           terms: tuple[str, ...], item_kind: np.ndarray) -> MetaProd2Vec:
    n_items, dim = sessions.n_items, cfg.dim
    vocab = n_items + tokens.n_tokens
    gen = torch.Generator().manual_seed(cfg.seed)
    w_in = torch.empty(vocab, dim).uniform_(-0.5 / dim, 0.5 / dim, generator=gen)
    w_out = torch.zeros(vocab, dim)
    opt_in, opt_out = _RowAdagrad(w_in, cfg.lr), _RowAdagrad(w_out, cfg.lr)
    sampler = NegativeSampler(unigram_counts(sessions, tokens),
                              negative_kinds(item_kind, tokens))
    weights = torch.tensor([1.0] + [cfg.lambda_meta] * len(META_TERMS))
    n_fields = len(tokens.fields)
    per_event = 2 * cfg.window * (1 + n_fields * len(terms)) + n_fields
    chunk_events = max(1, cfg.chunk_pairs // per_event)
    groups_per_step = max(1, cfg.batch_size // cfg.group_size)
    rng = np.random.default_rng(cfg.seed)
    history: list[dict[str, float]] = []
    bar = Progress(cfg.epochs * sessions.n_events, "metaprod2vec", "events")
    for epoch in range(cfg.epochs):
        t0, cpu0 = time.perf_counter(), time.process_time()
        order = sessions.subset(rng.permutation(sessions.n_sessions))
        bounds = _chunk_bounds(order.offsets, chunk_events)
        n_pairs = np.zeros(len(TERMS), dtype=np.int64)
        loss = 0.0
        for lo, hi in itertools.pairwise(bounds):
            centre, context, term = build_pairs(order.items, order.offsets[lo : hi + 1],
                                                tokens.item_tokens, n_items, cfg.window, terms)
            n_pairs += np.bincount(term, minlength=len(TERMS))
            # Groups of pairs whose contexts are of one kind share negatives; pairs are
            # shuffled within their kind, then the groups are shuffled.
            centre_t, context_t = torch.from_numpy(centre), torch.from_numpy(context)
            perm = torch.randperm(len(centre), generator=gen)
            slots, group_kind = negative_groups(sampler.kind[context_t[perm]], sampler.n_kinds,
                                                cfg.group_size)
            shuffle = torch.randperm(len(slots), generator=gen)
            slots, group_kind = slots[shuffle], group_kind[shuffle]
            pad = slots < 0
            pair = perm[slots.clamp_(min=0)]  # [G, C]
            centre_g, context_g = centre_t[pair], context_t[pair]
            weight_g = weights[torch.from_numpy(term.astype(np.int64))[pair]].masked_fill_(pad, 0)
            negatives = sampler.sample(group_kind, cfg.negatives, gen)  # [G, N]
            for g in range(0, len(slots), groups_per_step):
                sl = slice(g, g + groups_per_step)
                loss += _sgns_step(opt_in, opt_out, centre_g[sl], context_g[sl], negatives[sl],
                                   weight_g[sl])
            bar.update(int(order.offsets[hi] - order.offsets[lo]))
        seconds = time.perf_counter() - t0
        total = int(n_pairs.sum())
        stats = {"epoch": epoch + 1, "seconds": seconds,
                 "cpu_seconds": time.process_time() - cpu0, "pairs": total,
                 "item_pairs": int(n_pairs[0]), "pairs_per_s": total / max(seconds, 1e-9),
                 "loss": loss / max(total, 1)}
        stats.update({f"pairs[{t}]": int(c) for t, c in zip(TERMS, n_pairs, strict=True)})
        history.append(stats)
        log.info("metaprod2vec epoch %d: %s pairs in %.1f s (%.0f pairs/s), loss %.4f",
                 epoch + 1, f"{total:,}", seconds, stats["pairs_per_s"], stats["loss"])
        if not math.isfinite(stats["loss"]):
            raise DataError(f"training diverged in epoch {epoch + 1} (loss {stats['loss']})",
                            hint="lower metaprod2vec.lr")
    bar.close()
    return MetaProd2Vec(cfg, n_items, tokens, w_in, history)


def _chunk_bounds(offsets: np.ndarray, chunk_events: int) -> np.ndarray:
    """Session indices cutting the sessions into chunks of about ``chunk_events`` events."""
    n_sessions = len(offsets) - 1
    targets = np.arange(chunk_events, int(offsets[-1]), chunk_events)
    cuts = np.searchsorted(offsets, targets)
    return np.unique(np.concatenate([[0], cuts, [n_sessions]])).astype(np.int64)


# -- prepared data ---------------------------------------------------------------------------
def train_prepared(data_dir: Path, config: MetaProd2VecConfig | None = None,
                   min_dwell: float = 0.0) -> tuple[MetaProd2Vec, pl.DataFrame]:
    """Train on the TRAIN split of a prepared directory; returns the model and items table.

    ``min_dwell`` > 0 first drops the clicks followed by a quick bounce (seconds; see
    :mod:`sessionrec.embeddings.bounces`)."""
    data_dir = Path(data_dir)
    cfg = config or MetaProd2VecConfig()
    for name in ("train.parquet", "items.parquet"):
        if not (data_dir / name).is_file():
            raise DataError(f"not a prepared data directory ({name} missing)",
                            path=str(data_dir), hint="run `sessionrec prepare` first")
    items = pl.read_parquet(data_dir / "items.parquet")
    for col in ("item_idx", "item_id"):
        if col not in items.columns:
            raise DataError(f"item vocabulary lacks column {col!r}",
                            path=str(data_dir / "items.parquet"), column=col)
    items = items.sort("item_idx")
    train_file = pl.scan_parquet(data_dir / "train.parquet")
    wanted = [c for c in ("session_id", "item_idx", "ts") if c in train_file.collect_schema()]
    try:
        sessions = Sessions.from_frame(train_file.select(wanted).collect(), items.height)
    except DataError as err:
        raise DataError(str(err), path=str(data_dir / "train.parquet")) from err
    if min_dwell > 0:
        from sessionrec.embeddings.bounces import drop_quick_bounces

        sessions, _ = drop_quick_bounces(sessions, min_dwell)
    tokens = item_metadata_tokens(items, n_price_classes=cfg.price_classes, fields=cfg.fields)
    if cfg.lambda_meta > 0 and not tokens.fields:
        log.warning("%s has no item metadata (brand, category, price): training plain "
                    "prod2vec", data_dir)
    return train(sessions, tokens, cfg), items


def to_store(model: MetaProd2Vec, items: pl.DataFrame, *, source: str = "") -> EmbeddingStore:
    """The model's item vectors keyed by ``items.item_id`` (``items`` in item_idx order)."""
    method = METHOD if model.tokens.fields and model.config.lambda_meta > 0 else "prod2vec"
    history = [{k: (round(v, 4) if isinstance(v, float) else v) for k, v in h.items()}
               for h in model.history]
    meta = {"method": method, "params": model.params(), "n_tokens": model.tokens.n_tokens,
            "source": source, "history": history}
    extra = [c for c in METADATA_COLUMNS if c in items.columns]
    return EmbeddingStore(items["item_id"], model.item_vectors().numpy().copy(), meta,
                          items.select(extra) if extra else None)
