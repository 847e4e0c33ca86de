"""The base of every neural session model: an encoder, the shared output layer, one trainer.

A model file (e.g. :mod:`sessionrec.models.neural.narm`) holds only

* a parameter dataclass extending :class:`NeuralParams` (typed, range-checked at
  construction, see :mod:`sessionrec.models.neural.params`), and
* an ``nn.Module`` encoder: ``__init__(params, output)`` and ``forward(batch) -> h [B, d]``,
  where ``output`` is the shared :class:`~sessionrec.models.neural.output.ItemOutput` whose
  item table the encoder may use as its input embedding;

and a :class:`NeuralRecommender` subclass naming them (``Params``, ``build_encoder``,
``output_dim``). Everything else — batching (padded prefixes by default), the training
objective (full softmax or sampled negatives with any of the losses), the trainer (device,
mixed precision, torch.distributed, early stopping, checkpoints, resume), scoring, saving and
loading — is shared and lives here and in :mod:`sessionrec.training.neural`.
"""

from __future__ import annotations

from abc import abstractmethod
from dataclasses import dataclass, fields
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from sessionrec.batching.prefixes import PrefixBatch, PrefixSource, batch_from_lists
from sessionrec.data.sessions import Sessions
from sessionrec.errors import ConfigError, SessionRecError
from sessionrec.models.base import SessionRecommender
from sessionrec.models.neural.output import ItemOutput, Objective, OutputLoss
from sessionrec.models.neural.params import (
    as_plain,
    param,
    parse_params,
    trajectory_fingerprint,
)
from sessionrec.torch_env import flush_denormal, torch_threads
from sessionrec.training import neural as neural_trainer
from sessionrec.training.context import FitContext
from sessionrec.training.distributed import world
from sessionrec.training.losses import LOSSES
from sessionrec.training.neural import OPTIMIZERS, TrainSettings
from sessionrec.training.trainer import epoch_seed


@dataclass(frozen=True)
class NeuralParams:
    """Parameters every neural model has (training, objective, batching, scoring)."""

    n_epochs: int = param(10, low=1)
    patience: int = param(0, low=0)
    batch_size: int = param(512, low=1)
    max_len: int = param(50, low=1)
    optimizer: str = param("adam", choices=OPTIMIZERS)
    learning_rate: float = param(1e-3, low=0.0)
    weight_decay: float = param(0.0, low=0.0)
    momentum: float = param(0.0, low=0.0, high=1.0, open_high=True)
    lr_decay: float = param(1.0, low=0.0, high=1.0)
    lr_decay_every: int = param(1, low=1)
    clip_grad: float = param(0.0, low=0.0)
    loss: str = param("cross-entropy", choices=LOSSES)
    n_sample: int = param(-1, low=-1)
    sample_alpha: float = param(0.75, low=0.0)
    logq: float = param(0.0, low=0.0)
    bpreg: float = param(1.0, low=0.0)
    elu_param: float = param(0.0, low=0.0)
    amp: bool = False
    eval_batch: int = param(256, low=1)
    threads: int = param(1, low=0)  # torch intra-op threads while fitting (0: torch default)
    seed: int = 0
    progress: bool = True


class SessionNet(nn.Module):
    """Encoder + shared output layer + objective; ``forward(batch)`` is the mean loss."""

    def __init__(self, encoder: nn.Module, output: ItemOutput) -> None:
        super().__init__()
        self.encoder = encoder
        self.output = output
        self.objective: OutputLoss | None = None  # set for training only

    def forward(self, batch: PrefixBatch) -> torch.Tensor:
        if self.objective is None:
            raise SessionRecError("SessionNet.forward computes the training loss; use scores()")
        return self.objective(self.output, self.encoder(batch), batch.targets)

    def scores(self, batch: PrefixBatch) -> torch.Tensor:
        """float [B, n_items]: every item's score after each prefix."""
        return self.output.full(self.encoder(batch))


class NeuralRecommender(SessionRecommender):
    """A session recommender made of an ``nn.Module`` encoder and the shared output layer."""

    Params: ClassVar[type[NeuralParams]] = NeuralParams
    trains_in_context: ClassVar[bool] = True
    data_parallel: ClassVar[bool] = True
    VALID_K: ClassVar[int] = 20  # early stopping watches validation MRR@VALID_K
    output_bias: ClassVar[bool] = False

    def __init__(self, **params: Any) -> None:
        self.params = parse_params(self.Params, params, self.name)
        super().__init__(**as_plain(self.params))

    @classmethod
    def parameter_names(cls) -> list[str]:
        return sorted(f.name for f in fields(cls.Params))

    # -- what a model file provides ------------------------------------------------------------
    @abstractmethod
    def output_dim(self) -> int:
        """Width of the session representation (= the item table's width)."""

    @abstractmethod
    def build_encoder(self, n_items: int, output: ItemOutput) -> nn.Module:
        """The encoder: ``forward(batch) -> h [B, output_dim()]``."""

    def batch_source(self, train: Sessions, rank: int, world_size: int) -> PrefixSource:
        """Training batches (padded prefixes; override for another batch source)."""
        return PrefixSource(train, self._rank_batch(world_size), self.params.max_len,
                            self.params.seed, rank, world_size)

    def collate(self, batch: PrefixBatch) -> Any:
        """The encoder's input for a scoring batch of padded prefixes (the same kind of batch
        :meth:`batch_source` yields; e.g. session graphs for the GNN models)."""
        return batch

    def make_objective(self, counts: np.ndarray) -> OutputLoss:
        """The training loss of ``(output, h, targets)`` (override for another objective);
        ``counts`` are the training item counts."""
        p = self.params
        objective = Objective(p.loss, p.n_sample, p.sample_alpha, p.logq, p.bpreg, p.elu_param)
        if p.n_sample < 0 and p.loss != "cross-entropy":
            raise ConfigError(f"{self.name}: n_sample = -1 trains a full softmax, which needs "
                              f"loss = 'cross-entropy' (got {p.loss!r}); set n_sample >= 0 to "
                              "train with sampled negatives")
        return OutputLoss(objective, counts, seed=p.seed)

    # -- building ------------------------------------------------------------------------------
    def _build_net(self, n_items: int) -> SessionNet:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(epoch_seed(self.params.seed, -1, 1))
            output = self.build_output(n_items)
            return SessionNet(self.build_encoder(n_items, output), output)

    def build_output(self, n_items: int) -> ItemOutput:
        """The shared item output layer (override for another scoring of the items)."""
        return ItemOutput(n_items, self.output_dim(), bias=self.output_bias)

    def _rank_batch(self, world_size: int) -> int:
        b = self.params.batch_size
        if b % world_size:
            raise ConfigError(f"{self.name}: batch_size {b} is the global batch and must be "
                              f"divisible by the number of processes ({world_size})")
        return b // world_size

    # -- training ------------------------------------------------------------------------------
    def _fit(self, train: Sessions, valid: Sessions | None) -> None:
        self._fit_in_context(train, valid, FitContext())

    def _fit_in_context(self, train: Sessions, valid: Sessions | None,
                        context: FitContext) -> None:
        p = self.params
        rank, world_size = world()
        source = self.batch_source(train, rank, world_size)
        net = self._build_net(self.n_items_)
        counts = np.bincount(train.items, minlength=self.n_items_).astype(np.float64)
        net.objective = self.make_objective(counts)
        self.net_ = net
        validate = None
        if valid is not None and valid.n_events and (np.diff(valid.offsets) >= 2).any():
            validate = lambda: self._validation_mrr(train, valid)  # noqa: E731
        settings = TrainSettings(p.n_epochs, p.patience, p.optimizer, p.learning_rate,
                                 p.weight_decay, p.momentum, p.lr_decay, p.lr_decay_every,
                                 p.clip_grad, p.amp, p.seed, p.progress)
        fingerprint = trajectory_fingerprint(self.name, self.get_params(),
                                             n_items=self.n_items_, vocab=self.vocab_)
        try:
            with torch_threads(p.threads), flush_denormal():
                stats = neural_trainer.train(
                    net, source, settings, context, validate, fingerprint, self.name,
                    on_epoch_start=lambda e: net.objective.reseed(
                        epoch_seed(p.seed, e, 3 + 7 * rank)))
        finally:
            net.objective = None
        epochs = stats["epochs"]
        self.fit_stats_ = {**stats, "events": int(train.n_events),
                           "events_per_s": train.n_events * epochs
                           / max(stats["train_seconds"], 1e-9)}

    def _validation_mrr(self, train: Sessions, valid: Sessions) -> float:
        from sessionrec.evaluation.evaluator import validation_mrr

        return validation_mrr(self, train, valid, self.VALID_K)

    # -- scoring -------------------------------------------------------------------------------
    @property
    def prefix_len(self) -> int:
        """The most recent items a prediction looks at (serving keeps this many)."""
        return self.params.max_len

    def _device(self) -> torch.device:
        return next(self.net_.parameters()).device

    @torch.inference_mode()
    def _score(self, prefixes: list[np.ndarray], users: np.ndarray | None) -> torch.Tensor:
        self.net_.eval()
        device = self._device()
        out = []
        step = self.params.eval_batch
        for lo in range(0, len(prefixes), step):
            rows = prefixes[lo: lo + step]
            u = None if users is None else users[lo: lo + step]
            batch = batch_from_lists(rows, self.n_items_, self.params.max_len, u)
            out.append(self.net_.scores(self.collate(batch).to(device)).float().cpu())
        return torch.cat(out)

    def item_embeddings(self) -> torch.Tensor:
        """float32 [n_items, d]: the output item vectors."""
        self._check_fitted()
        return self.net_.output.weight.detach().float().cpu()

    # -- persistence ---------------------------------------------------------------------------
    def _state(self) -> dict[str, torch.Tensor]:
        return {f"net.{k}": v.detach().cpu() for k, v in self.net_.state_dict().items()}

    def _set_state(self, state: dict[str, torch.Tensor]) -> None:
        net = self._build_net(self.n_items_)
        got = {k[4:]: v for k, v in state.items() if k.startswith("net.")}
        expected = net.state_dict()
        if set(got) != set(expected) or any(got[k].shape != expected[k].shape for k in got):
            raise SessionRecError(
                f"saved {self.name} weights do not fit this model ({self.n_items_:,} items, "
                f"parameters {self.get_params()}): they come from another model, vocabulary "
                "or other hyper-parameters")
        net.load_state_dict(got)
        net.eval()
        self.net_ = net
