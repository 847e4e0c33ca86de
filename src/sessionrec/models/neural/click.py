"""Click-probability models on the neural core: the shared layers, base class and registry.

A click-probability model scores (user, candidate) pairs given the user's behaviour
histories (:mod:`sessionrec.batching.behaviours`). It is a :class:`ClickNet` — an
``nn.Module`` whose ``logits(batch)`` gives one logit per target and whose ``forward(batch)``
is the mean training loss (sigmoid cross-entropy, seed 001 eq. 8, unless a model overrides
it) — trained by the one trainer (:func:`sessionrec.training.neural.train`: device, DDP,
checkpoints, early stopping on validation AUC). A model file holds its parameter dataclass,
its net and a :class:`ClickRecommender` subclass registered with
:func:`register_click_model`.

These models do not implement the next-item :class:`~sessionrec.models.base.SessionRecommender`
contract (they score given candidates, not the whole catalogue): they have their own registry
and protocol (``eval.protocol = "candidate-ranking"``).
"""

from __future__ import annotations

import json
import logging
from abc import abstractmethod
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import polars as pl
import torch
from torch import nn

from sessionrec.batching.behaviours import BehaviourBatch, BehaviourSource, UserRows, make_batch
from sessionrec.data.exposures.dataset import Exposures
from sessionrec.errors import ConfigError, NotFittedError, SessionRecError, valid_choices
from sessionrec.models.neural.params import (
    as_plain,
    param,
    parse_params,
    trajectory_fingerprint,
)
from sessionrec.models.neural.state_memo import weights_key
from sessionrec.torch_env import flush_denormal, torch_threads
from sessionrec.training import neural as neural_trainer
from sessionrec.training.context import FitContext
from sessionrec.training.distributed import world
from sessionrec.training.neural import TrainSettings
from sessionrec.training.trainer import epoch_seed

log = logging.getLogger(__name__)

MODEL_FILE, WEIGHTS_FILE, ITEMS_FILE, USERS_FILE = ("model.json", "weights.pt", "items.parquet",
                                                    "users.parquet")


@dataclass(frozen=True)
class ClickParams:
    """Parameters every click-probability model has."""

    n_epochs: int = param(10, low=1)
    patience: int = param(2, low=0)  # epochs without a better validation AUC before stopping
    batch_size: int = param(256, low=1)  # users per batch (~9 train exposures each on KuaiRand)
    max_len: int = param(300, low=1)  # events kept per behaviour sequence (seed 001: 300)
    learning_rate: float = param(1e-3, low=0.0)
    weight_decay: float = param(0.0, low=0.0)
    clip_grad: float = param(0.0, low=0.0)
    embedding: int = param(32, low=1)  # item vector width D
    hidden: int = param(32, low=1)  # recurrent / attention width d
    mlp: int = param(32, low=1)  # hidden width of the two-layer heads
    threads: int = param(1, low=0)
    seed: int = 0
    progress: bool = True


class ItemEmbedding(nn.Module):
    """x_v = id vector + Σ side-feature vectors (author, tag, kind, music, duration).

    The padding item (index ``n_items``) is the zero vector; an unknown feature code (0) adds
    nothing. Side features let an item rarely or never seen in training still get a vector.

    Under ``torch.inference_mode`` in eval mode the vectors are looked up in a table of the
    whole catalogue, composed once and kept until a weight changes (an optimiser step or
    ``load_state_dict`` bumps the parameters' version counters): the sum is the same for
    every request, so serving gathers rows instead of adding six embeddings per item.
    """

    def __init__(self, features: np.ndarray, sizes: tuple[int, ...], dim: int) -> None:
        super().__init__()
        n_items = len(features)
        table = np.vstack([features, np.zeros((1, features.shape[1]), dtype=np.int64)])
        self.register_buffer("features", torch.from_numpy(table))
        self.ids = nn.Embedding(n_items + 1, dim, padding_idx=n_items)
        self.side = nn.ModuleList(nn.Embedding(s + 1, dim, padding_idx=0) for s in sizes)
        for emb in (self.ids, *self.side):
            nn.init.normal_(emb.weight, std=0.05)
            with torch.no_grad():
                emb.weight[emb.padding_idx].zero_()
        self._table: tuple[tuple[int, ...], torch.Tensor] | None = None

    @property
    def pad(self) -> int:
        return self.ids.padding_idx

    def forward(self, items: torch.Tensor) -> torch.Tensor:
        """items int64 [...] -> float [..., dim]."""
        if not self.training and torch.is_inference_mode_enabled():
            return self.table()[items]
        return self.compose(items)

    def table(self) -> torch.Tensor:
        """float [n_items + 1, dim]: every item's vector (inference only; cached, see above)."""
        key = weights_key(self.weights())
        if self._table is None or self._table[0] != key:
            with torch.inference_mode():
                all_items = torch.arange(len(self.features), device=self.features.device)
                self._table = (key, self.compose(all_items))
        return self._table[1]

    def weights(self) -> list[torch.Tensor]:
        """The embedding tables (direct attribute reads: cheaper than ``parameters()``)."""
        return [self.ids.weight, *(emb.weight for emb in self.side)]

    def compose(self, items: torch.Tensor) -> torch.Tensor:
        """items int64 [...] -> id vector + Σ side vectors [..., dim] (no cache)."""
        x = self.ids(items)
        f = self.features[items]
        for j, emb in enumerate(self.side):
            x = x + emb(f[..., j])
        return x


def mlp_head(in_dim: int, hidden: int) -> nn.Module:
    """Seed 001 eq. 6: ŷ = W2 φ(W1 [f, x_new] + b1) + b2 (a logit)."""
    return nn.Sequential(nn.Linear(in_dim, hidden), nn.ReLU(), nn.Linear(hidden, 1))


def history_mask(ts: torch.Tensor, batch: BehaviourBatch) -> torch.Tensor:
    """bool [T, L]: which positions of each target's row are history (``ts < target ts``)."""
    return ts[batch.target_row] < batch.target_ts.unsqueeze(1)


def target_scores(h: torch.Tensor, target_row: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """hᵀq of every target with its row's positions: h [B, L, d], target_row [T], q [T, d]
    -> [T, L].

    One row (a served request: every candidate shares the user's history) is one matmul
    against the row; otherwise the row of each target is gathered ([T, L, d]).
    """
    if h.shape[0] == 1:
        return q @ h[0].T
    return torch.einsum("tld,td->tl", h[target_row], q)


def target_mix(w: torch.Tensor, h: torch.Tensor, target_row: torch.Tensor) -> torch.Tensor:
    """Σ_l w[t, l] h[row(t), l]: w [T, L], h [B, L, d], target_row [T] -> [T, d] (one row:
    a matmul, no [T, L, d] copy; see :func:`target_scores`)."""
    if h.shape[0] == 1:
        return w @ h[0]
    return torch.einsum("tl,tld->td", w, h[target_row])


class CandidateAttention(nn.Module):
    """Seed 001 eqs. 4–5: α_j = softmax_j(h_jᵀ W x_new) over visible positions; f = Σ α_j h_j.

    A target with no visible position gets f = 0.
    """

    def __init__(self, hidden: int, dim: int) -> None:
        super().__init__()
        self.W = nn.Linear(dim, hidden, bias=False)

    def forward(self, h: torch.Tensor, target_row: torch.Tensor, mask: torch.Tensor,
                x_new: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """h [B, L, d] (the batch rows' states), target_row [T], mask bool [T, L],
        x_new [T, D] -> (f [T, d], α [T, L])."""
        logits = target_scores(h, target_row, self.W(x_new))
        logits = logits.masked_fill(~mask, float("-inf"))
        alpha = torch.softmax(logits, dim=1).nan_to_num(0.0)  # all masked -> zeros
        return target_mix(alpha, h, target_row), alpha


class ClickNet(nn.Module):
    """Base of the nets: ``logits(batch) -> [T]``; ``forward(batch)`` = mean loss (eq. 8)."""

    @abstractmethod
    def logits(self, batch: BehaviourBatch) -> torch.Tensor: ...

    def forward(self, batch: BehaviourBatch) -> torch.Tensor:
        return nn.functional.binary_cross_entropy_with_logits(self.logits(batch), batch.targets)


_REGISTRY: dict[str, type[ClickRecommender]] = {}


def register_click_model(cls: type[ClickRecommender]) -> type[ClickRecommender]:
    if cls.name in _REGISTRY:
        raise ValueError(f"click model {cls.name!r} registered twice")
    _REGISTRY[cls.name] = cls
    return cls


def click_models() -> dict[str, type[ClickRecommender]]:
    import sessionrec.models.registry  # noqa: F401  (imports every model module)

    return dict(_REGISTRY)


def get_click_model(name: str) -> type[ClickRecommender]:
    models = click_models()
    if name not in models:
        raise ConfigError(f"unknown click-probability model {name!r}; "
                          f"{valid_choices(name, models)}")
    return models[name]


class ClickRecommender:
    """fit / score / save / load around a :class:`ClickNet` (sklearn-style: learned
    attributes end in ``_``)."""

    name: ClassVar[str] = ""
    Params: ClassVar[type[ClickParams]] = ClickParams
    data_parallel: ClassVar[bool] = True

    def __init__(self, **params: Any) -> None:
        self.params = parse_params(self.Params, params, self.name)
        self._eval_sources: dict[str, tuple[Exposures, BehaviourSource]] = {}

    @classmethod
    def parameter_names(cls) -> list[str]:
        return sorted(f.name for f in fields(cls.Params))

    def get_params(self) -> dict[str, Any]:
        return as_plain(self.params)

    @abstractmethod
    def build_net(self, features: np.ndarray, sizes: tuple[int, ...], n_users: int) -> ClickNet:
        """The net for items with side-feature codes ``features`` and ``n_users`` users."""

    def after_fit(self, data: Exposures) -> dict[str, Any]:
        """Hook run on the fitted net (e.g. tune fusion weights); returns figures to report."""
        return {}

    # -- fitting -------------------------------------------------------------------------------
    def _new_net(self, features: np.ndarray, sizes: tuple[int, ...], n_users: int) -> ClickNet:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(epoch_seed(self.params.seed, -1, 1))
            return self.build_net(features, sizes, n_users)

    def fit(self, data: Exposures, context: FitContext | None = None) -> ClickRecommender:
        p = self.params
        context = context or FitContext()
        rank, world_size = world()
        self.item_ids_, self.user_ids_ = data.item_ids, data.user_ids
        self.features_, self.sizes_ = data.item_features, data.feature_sizes
        self.net_ = self._new_net(data.item_features, data.feature_sizes, data.n_users)
        source = BehaviourSource(data, "train", p.batch_size // world_size, p.max_len, p.seed,
                                 rank, world_size)
        valid = self.source(data, "valid")
        validate = (lambda: self._valid_auc(data, valid)) if valid.n_cases_all else None
        settings = TrainSettings(p.n_epochs, p.patience, "adam", p.learning_rate,
                                 p.weight_decay, 0.0, 1.0, 1, p.clip_grad, False, p.seed,
                                 p.progress)
        fingerprint = trajectory_fingerprint(self.name, self.get_params(),
                                             n_items=data.n_items, n_users=data.n_users)
        with torch_threads(p.threads), flush_denormal():
            stats = neural_trainer.train(self.net_, source, settings, context, validate,
                                         fingerprint, self.name)
            self.net_.cpu()
            extra = self.after_fit(data)
        self.fit_stats_ = {**stats, "exposures_per_s": stats["cases_per_s"], **extra}
        return self

    def _valid_auc(self, data: Exposures, valid: BehaviourSource) -> float:
        from sessionrec.evaluation.candidates import per_user_auc

        rows, scores = self.score_source(valid)
        _, auc = per_user_auc(data.user[rows], scores, data.click[rows])
        return float(auc.mean()) if len(auc) else 0.0

    # -- scoring -------------------------------------------------------------------------------
    def _check_fitted(self) -> None:
        if not hasattr(self, "net_"):
            raise NotFittedError(f"{self.name} is not fitted: call fit() or load() first")

    @torch.inference_mode()
    def score_batch(self, batch: BehaviourBatch) -> np.ndarray:
        """float [T]: the click logit of every target of ``batch``."""
        self._check_fitted()
        if self.net_.training:  # eval() walks every submodule: not on each served request
            self.net_.eval()
        device = next(self.net_.parameters()).device
        return self.net_.logits(batch.to(device)).float().cpu().numpy()

    def score_source(self, source: BehaviourSource) -> tuple[np.ndarray, np.ndarray]:
        """(exposure indices, logits) of every target of ``source``."""
        rows, scores = [], []
        for batch in source.ordered():
            rows.append(batch.exposure.numpy())
            scores.append(self.score_batch(batch))
        if not rows:
            return np.zeros(0, np.int64), np.zeros(0)
        return np.concatenate(rows), np.concatenate(scores)

    def score_split(self, data: Exposures, split: str) -> tuple[np.ndarray, np.ndarray]:
        """(exposure indices, logits) of every exposure of ``split`` ('valid' or 'test')."""
        return self.score_source(self.source(data, split))

    def source(self, data: Exposures, split: str) -> BehaviourSource:
        """The (cached) evaluation batches of ``split``: built once per data set."""
        cached = self._eval_sources.get(split)
        if cached is None or cached[0] is not data:
            cached = (data, BehaviourSource(data, split, self.params.batch_size,
                                            self.params.max_len))
            self._eval_sources[split] = cached
        return cached[1]

    def score_rows(self, rows: list[UserRows]) -> np.ndarray:
        """Logits of the targets of hand-built rows (serving)."""
        return self.score_batch(make_batch(rows, len(self.item_ids_), self.params.max_len))

    # -- persistence ---------------------------------------------------------------------------
    def save(self, directory: str | Path) -> Path:
        self._check_fitted()
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        meta = {"model": self.name, "params": self.get_params(), "n_users": len(self.user_ids_),
                "feature_sizes": list(self.sizes_)}
        (directory / MODEL_FILE).write_text(json.dumps(meta, indent=2), encoding="utf-8")
        torch.save({k: v.detach().cpu() for k, v in self.net_.state_dict().items()},
                   directory / WEIGHTS_FILE)
        items = pl.DataFrame({"item_id": self.item_ids_})
        items = items.with_columns(pl.Series(f"f{j}", self.features_[:, j])
                                   for j in range(self.features_.shape[1]))
        items.write_parquet(directory / ITEMS_FILE)
        pl.DataFrame({"user_id": self.user_ids_}).write_parquet(directory / USERS_FILE)
        return directory

    @staticmethod
    def load(directory: str | Path) -> ClickRecommender:
        directory = Path(directory)
        if not (directory / MODEL_FILE).is_file():
            raise SessionRecError(f"no click-probability model in {directory} (no {MODEL_FILE})")
        meta = json.loads((directory / MODEL_FILE).read_text(encoding="utf-8"))
        model = get_click_model(meta["model"])(**meta["params"])
        items = pl.read_parquet(directory / ITEMS_FILE)
        model.item_ids_ = items["item_id"].to_numpy()
        model.features_ = items.drop("item_id").to_numpy().astype(np.int64)
        model.sizes_ = tuple(meta["feature_sizes"])
        model.user_ids_ = pl.read_parquet(directory / USERS_FILE)["user_id"].to_numpy()
        net = model._new_net(model.features_, model.sizes_, meta["n_users"])
        net.load_state_dict(torch.load(directory / WEIGHTS_FILE, weights_only=True,
                                       map_location="cpu"))
        net.eval()
        model.net_ = net
        return model
