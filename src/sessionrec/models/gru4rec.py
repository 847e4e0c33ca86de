"""GRU4Rec: a recurrent network over the clicks of a session (Hidasi et al. 2016, 2018).

Training follows the original's semantics exactly where they matter for accuracy:

* session-parallel mini-batches (:mod:`sessionrec.batching.session_parallel`), sessions in
  order of their first event, the hidden state of a lane reset when it takes a new session
  and detached between steps (one-step back-propagation, as the original);
* the output layer scores the batch's targets plus ``n_sample`` shared negatives drawn
  ∝ popularity^``sample_alpha`` (:mod:`sessionrec.batching.negatives`), with the losses of
  :mod:`sessionrec.training.losses` (loss divided by ``batch_size``);
* input: ``constrained_embedding`` (the input embedding *is* the output weight matrix), a
  separate ``embedding`` of the given size, or, with neither, the one-hot-equivalent input of
  the original (a per-item input projection straight into the first GRU layer's gates);
* dropout on the input embedding and on each layer's output (the dropped-out output is also
  the hidden state carried to the next step, as in the original); output bias per item;
* Adagrad with momentum (or Adam), updating only the rows of the item matrices a step touches.

The network is an ``nn.Module`` (:class:`~sessionrec.models.neural.gru4rec_net.GRU4RecNet`,
the fitted ``net_``): it owns the item tables and the GRU stack and computes one step. This
module holds the parameters, the session-parallel training walk and inference.

Speed comes from doing less, not from approximating: the item rows of a step are gathered
once into a small dense leaf tensor (:mod:`sessionrec.models.item_rows`; no sparse gradients
to coalesce), the GRU step is the fused ``torch.gru_cell`` kernel, one ``backward`` reaches
only the dense parameters and those leaves, the optimiser (:mod:`sessionrec.training.optim`,
``torch.optim`` 's ``step`` / ``zero_grad`` convention) updates the dense parameters and only
the touched item rows, and negatives are drawn in large blocks with Walker's alias method.

Parameter names follow the official implementation (``layers``, ``loss``, ``batch_size``,
``dropout_p_embed``, ``dropout_p_hidden``, ``learning_rate``, ``momentum``, ``n_sample``,
``sample_alpha``, ``embedding``, ``constrained_embedding``, ``n_epochs``, ``bpreg``,
``elu_param``, ``logq``) so its parameter files map one to one (see docs/gru4rec.md).
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import torch

from sessionrec.batching.negatives import NegativeSampler
from sessionrec.batching.session_parallel import (
    session_groups,
    session_order,
    session_parallel,
    trainable_sessions,
)
from sessionrec.data.sessions import Sessions
from sessionrec.errors import ConfigError, SessionRecError
from sessionrec.models.base import SessionRecommender, register_model
from sessionrec.models.item_rows import OutputLoss, gather_rows
from sessionrec.models.neural.gru4rec_net import GRU4RecNet
from sessionrec.models.professor import (
    PF_DEFAULTS,
    Adversary,
    check_rollout_fits,
    check_unroll_params,
)
from sessionrec.models.unroll import Stepped, WalkStep, unrolled_epoch, window_stepper
from sessionrec.torch_env import flush_denormal, torch_threads
from sessionrec.training import kernels
from sessionrec.training.context import FitContext, resolve_device
from sessionrec.training.distributed import all_sum, broadcast_float, world
from sessionrec.training.losses import LOSSES, get_loss
from sessionrec.training.optim import OPTIMIZERS, RowOptimizer
from sessionrec.training.row_parallel import RowUpdates
from sessionrec.training.trainer import EpochLoop, EpochStats, epoch_seed

log = logging.getLogger(__name__)

GIB = 1024**3
# Parameters that do not change what an epoch computes: a checkpoint written with other values
# may be resumed (e.g. more epochs after an interrupted or finished run).
ITEM_VECTORS = ("", "frozen", "fine-tune")
_NOT_TRAJECTORY = ("progress", "threads", "eval_lanes", "n_epochs", "patience", "max_memory_gb")
# Parameters added after checkpoints were first written: left out of a checkpoint's fingerprint
# while at their default, so older checkpoints still resume.
_LATER_DEFAULTS = {"bptt": 1, "grad_clip": 0.0, "max_steps": 0, **PF_DEFAULTS}


def available_memory() -> int:
    """Bytes of memory available to this process (Linux MemAvailable; else physical)."""
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 1 << 62


@register_model
class GRU4Rec(SessionRecommender):
    """GRU4Rec with session-parallel mini-batches, sampled negatives and its losses.

    Args:
        layers: hidden units per GRU layer, e.g. ``[100]``.
        loss: ``cross-entropy``, ``bpr-max``, ``top1-max``, ``bpr`` or ``top1``.
        batch_size: session-parallel lanes (data-parallel: in all, split among the ranks).
        dropout_p_embed / dropout_p_hidden: dropout on the input embedding / layer outputs.
        learning_rate, momentum: of the optimiser.
        optimizer: ``adagrad`` (with momentum, as the original) or ``adam``.
        n_sample: extra negatives shared by a step (0: in-batch negatives only).
        sample_alpha: negatives are drawn ∝ count^sample_alpha.
        embedding: size of a separate input embedding (0: none).
        constrained_embedding: tie the input embedding to the output weights.
        item_vectors: ``""`` (none), ``frozen`` or ``fine-tune``: the input embedding is the
            pre-trained item vectors given to :meth:`set_pretrained_items` (e.g. Meta-Prod2Vec;
            that method sets this, ``embedding`` and ``constrained_embedding``).
        n_epochs: epochs (the maximum, with early stopping).
        bpreg: score regularisation of ``bpr-max``.
        elu_param: ELU applied to scores for ``bpr-max`` (0: none).
        logq: weight of the log-Q correction of ``cross-entropy`` (0: none).
        init_scale: multiplies the ±sqrt(6 / (fan_in + fan_out)) uniform init range.
        patience: early stopping on validation MRR@20 (0: train all epochs, keep the best
            epoch when a validation split is given).
        sample_cache_size: negatives drawn per block.
        eval_lanes: sessions walked in parallel when scoring test sessions.
        seed: seeds init, dropout and sampling (runs are deterministic on the CPU).
        threads: torch threads while fitting (0: leave torch's setting).
        max_memory_gb: memory the model may plan for (0: what the machine has available).
        progress: show a progress bar with loss and events/s while fitting.
        bptt: steps per training window (1: one-step truncated back-propagation, the
            original; k > 1: windows of k walk steps; 0: whole sessions, groups of
            ``batch_size`` sessions unrolled from first to last click), see
            :mod:`sessionrec.models.unroll`.
        grad_clip: joint L2 norm of a window's gradients (0: no clipping).
        pf_weight, pf_rollout, pf_feed, pf_disc_hidden, pf_disc_steps, pf_disc_lr: professor
            forcing (:mod:`sessionrec.models.professor`; ``pf_weight = 0``: off).
        max_steps: stop training after this many optimiser steps in all, wherever in an
            epoch that falls (0: no limit); for measuring speed on a bounded part of a large
            epoch. The cut epoch is validated and checkpointed like a full one.
    """

    name = "gru4rec"
    # sessionrec train --nproc N: sessions shared among ranks, row gradients summed
    # (sessionrec.training.row_parallel).
    data_parallel = True

    def __init__(self, layers: list[int] | tuple[int, ...] = (100,), loss: str = "cross-entropy",
                 batch_size: int = 64, dropout_p_embed: float = 0.0,
                 dropout_p_hidden: float = 0.0, learning_rate: float = 0.05,
                 momentum: float = 0.0, optimizer: str = "adagrad", n_sample: int = 2048,
                 sample_alpha: float = 0.5, embedding: int = 0,
                 constrained_embedding: bool = True, item_vectors: str = "",
                 n_epochs: int = 10, bpreg: float = 1.0,
                 elu_param: float = 0.5, logq: float = 0.0, init_scale: float = 1.0,
                 patience: int = 0, sample_cache_size: int = 10_000_000,
                 eval_lanes: int = 512, seed: int = 0, threads: int = 0,
                 max_memory_gb: float = 0.0, progress: bool = True, bptt: int = 1,
                 grad_clip: float = 0.0, pf_weight: float = 0.0, pf_rollout: int = 0,
                 pf_feed: str = "weighted", pf_disc_hidden: int = 32, pf_disc_steps: int = 1,
                 pf_disc_lr: float = 0.001, max_steps: int = 0) -> None:
        layers = [int(h) for h in ([layers] if isinstance(layers, int) else layers)]
        super().__init__(
            layers=layers, loss=loss, batch_size=batch_size, dropout_p_embed=dropout_p_embed,
            dropout_p_hidden=dropout_p_hidden, learning_rate=learning_rate, momentum=momentum,
            optimizer=optimizer, n_sample=n_sample, sample_alpha=sample_alpha,
            embedding=embedding, constrained_embedding=constrained_embedding,
            item_vectors=item_vectors, n_epochs=n_epochs, bpreg=bpreg, elu_param=elu_param,
            logq=logq, init_scale=init_scale, patience=patience,
            sample_cache_size=sample_cache_size, eval_lanes=eval_lanes, seed=seed,
            threads=threads, max_memory_gb=max_memory_gb, progress=progress, bptt=bptt,
            grad_clip=grad_clip, pf_weight=pf_weight, pf_rollout=pf_rollout, pf_feed=pf_feed,
            pf_disc_hidden=pf_disc_hidden, pf_disc_steps=pf_disc_steps, pf_disc_lr=pf_disc_lr,
            max_steps=max_steps)
        self._validate_params()
        self._pretrained: torch.Tensor | None = None

    trains_in_context = True

    # -- configuration ------------------------------------------------------------------------
    def _validate_params(self) -> None:
        p = self._params
        if p["loss"] not in LOSSES:
            raise ConfigError(f"{self.name}: unknown loss {p['loss']!r}; valid losses: "
                              f"{', '.join(LOSSES)}")
        if p["optimizer"] not in OPTIMIZERS:
            raise ConfigError(f"{self.name}: unknown optimizer {p['optimizer']!r}; valid "
                              f"optimizers: {', '.join(OPTIMIZERS)}")
        if not p["layers"] or min(p["layers"]) < 1:
            raise ConfigError(f"{self.name}: layers must be positive sizes, got {p['layers']}")
        for key in ("batch_size", "n_epochs", "eval_lanes"):
            if int(p[key]) < 1:
                raise ConfigError(f"{self.name}: {key} must be at least 1, got {p[key]}")
        for key in ("n_sample", "embedding", "patience", "threads", "max_steps"):
            if int(p[key]) < 0:
                raise ConfigError(f"{self.name}: {key} must be >= 0, got {p[key]}")
        for key in ("dropout_p_embed", "dropout_p_hidden"):
            if not 0 <= float(p[key]) < 1:
                raise ConfigError(f"{self.name}: {key} must lie in [0, 1), got {p[key]}")
        if float(p["learning_rate"]) <= 0:
            raise ConfigError(f"{self.name}: learning_rate must be positive, got "
                              f"{p['learning_rate']}")
        if not 0 <= float(p["momentum"]) < 1:
            raise ConfigError(f"{self.name}: momentum must lie in [0, 1), got {p['momentum']}")
        if int(p["n_sample"]) == 0 and int(p["batch_size"]) < 2:
            raise ConfigError(f"{self.name}: with n_sample = 0 the other lanes' targets are the "
                              "only negatives, so batch_size must be at least 2")
        if p["item_vectors"] not in ITEM_VECTORS:
            raise ConfigError(f"{self.name}: item_vectors must be one of {ITEM_VECTORS}, got "
                              f"{p['item_vectors']!r}")
        if p["item_vectors"] and (p["constrained_embedding"] or int(p["embedding"]) < 1):
            raise ConfigError(f"{self.name}: item_vectors are the input embedding, so they "
                              "need constrained_embedding = false and embedding = their "
                              "dimension (set_pretrained_items sets both)")
        check_unroll_params(self.name, p)

    @property
    def unrolled(self) -> bool:
        """Trains in windows (:mod:`sessionrec.models.unroll`) instead of one-step BPTT."""
        p = self._params
        return int(p["bptt"]) != 1 or float(p["grad_clip"]) > 0 or float(p["pf_weight"]) > 0

    def set_pretrained_items(self, vectors: torch.Tensor | np.ndarray,
                             freeze: bool = True) -> GRU4Rec:
        """Use ``vectors`` (float [n_items, d], row = item index) as the input embedding.

        ``freeze``: keep them fixed while training (else they are fine-tuned). Sets the
        parameters ``item_vectors``, ``embedding = d`` and ``constrained_embedding = False``
        (so a saved model reloads with the same shapes; the vectors travel in its weights).
        Call before :meth:`fit`; the row count is checked against the catalogue there.
        """
        v = torch.as_tensor(np.asarray(vectors), dtype=torch.float32)
        if v.dim() != 2 or v.shape[0] < 1 or v.shape[1] < 1:
            raise ConfigError(f"{self.name}: pre-trained item vectors must be a non-empty "
                              f"[n_items, d] matrix, got shape {tuple(v.shape)}")
        bad = int((~torch.isfinite(v)).any(dim=1).sum())
        if bad:
            raise ConfigError(f"{self.name}: {bad} pre-trained item vectors hold NaN or inf")
        self._params.update(item_vectors="frozen" if freeze else "fine-tune",
                            embedding=int(v.shape[1]), constrained_embedding=False)
        self._validate_params()
        self._pretrained = v.clone()
        return self

    def _pretrained_for(self, n_items: int) -> torch.Tensor:
        v = self._pretrained
        if v is None:
            raise ConfigError(
                f"{self.name}: item_vectors = {self._params['item_vectors']!r} but no vectors "
                "were given: call set_pretrained_items(vectors, freeze) before fit")
        if v.shape[0] != n_items:
            raise SessionRecError(
                f"{self.name}: the pre-trained item vectors have {v.shape[0]:,} rows but the "
                f"training catalogue has {n_items:,} items; align them to the item index "
                "(one row per item, in item-index order)")
        return v

    def _pretrained_digest(self) -> str:
        """A hash of the pre-trained vectors (checkpoints of other vectors are refused)."""
        if self._pretrained is None:
            return ""
        return hashlib.sha256(self._pretrained.numpy().tobytes()).hexdigest()[:16]

    @property
    def input_mode(self) -> str:
        """``constrained``, ``embedding`` or ``onehot`` (see the module docstring)."""
        if self._params["constrained_embedding"]:
            return "constrained"
        return "embedding" if int(self._params["embedding"]) > 0 else "onehot"

    def _build_net(self, n_items: int, device: str | None = None) -> GRU4RecNet:
        """The network for ``n_items`` items (parameters zero; ``device="meta"``: shapes only)."""
        p = self._params
        return GRU4RecNet(n_items, p["layers"], self.input_mode, int(p["embedding"]),
                          dropout_p_embed=float(p["dropout_p_embed"]),
                          dropout_p_hidden=float(p["dropout_p_hidden"]), device=device)

    VALID_K = 20  # early stopping watches validation MRR@VALID_K

    def estimate_memory(self, n_items: int) -> dict[str, int]:
        """Bytes the fit needs, by part (weights, optimiser state, score matrices)."""
        p = self._params
        n_weights = sum(t.numel() for t in self._build_net(n_items, "meta").parameters())
        states = 1 if p["optimizer"] == "adagrad" else 2  # adagrad: acc (+ momentum); adam: m, v
        if p["optimizer"] == "adagrad" and float(p["momentum"]) > 0:
            states = 2
        b, s = int(p["batch_size"]), int(p["n_sample"])
        return {
            "weights": 4 * n_weights,
            "optimizer": 4 * n_weights * states,
            "best_copy": 4 * n_weights,
            "train_scores": 4 * 8 * b * (b + s),  # scores, softmax and their gradients
            "eval_scores": 4 * 3 * int(p["eval_lanes"]) * n_items,
            "samples": 8 * int(p["sample_cache_size"]) if s else 0,
        }

    def _check_memory(self, n_items: int) -> None:
        parts = self.estimate_memory(n_items)
        need = sum(parts.values())
        limit = float(self._params["max_memory_gb"]) * GIB or available_memory()
        if need > limit:
            detail = ", ".join(f"{k} {v / GIB:.2f}" for k, v in parts.items())
            raise SessionRecError(
                f"{self.name} with {n_items:,} items needs an estimated {need / GIB:.2f} GiB "
                f"({detail} GiB) but only {limit / GIB:.2f} GiB is available; lower "
                "layers, batch_size, n_sample, sample_cache_size or eval_lanes, or filter "
                "rare items out of the catalogue")

    # -- parameters ---------------------------------------------------------------------------
    def _init_net(self, n_items: int) -> None:
        """``net_``: a new network with the seeded uniform init (and pre-trained vectors)."""
        self.net_ = self._build_net(n_items)
        gen = torch.Generator().manual_seed(epoch_seed(self._params["seed"], -1, 1))
        self.net_.reset_parameters(gen, float(self._params["init_scale"]))
        if self._params["item_vectors"]:
            with torch.no_grad():
                self.net_.E.copy_(self._pretrained_for(n_items))

    def _weights(self) -> dict[str, torch.Tensor]:
        """The network's parameters as saved: ``w.<name>`` (views, no copies)."""
        return {f"w.{k}": v for k, v in self.net_.state_dict().items()}

    def _state(self) -> dict[str, torch.Tensor]:
        return self._weights()

    def _set_state(self, state: dict[str, torch.Tensor]) -> None:
        expected = {k: tuple(v.shape) for k, v in self._build_net(self.n_items_, "meta")
                    .state_dict().items()}
        got = {k[2:]: v for k, v in state.items() if k.startswith("w.")}
        if set(got) != set(expected) or any(tuple(got[k].shape) != expected[k] for k in got):
            raise SessionRecError(
                f"saved {self.name} weights do not fit this model ({self.n_items_:,} items, "
                f"layers {self._params['layers']}): the checkpoint comes from another "
                "vocabulary or other hyper-parameters")
        net = self._build_net(self.n_items_)
        net.load_state_dict({k: v.float() for k, v in got.items()})
        self.net_ = net.eval()

    @property
    def train_input(self) -> bool:
        """Whether training updates the input item table (not frozen pre-trained vectors)."""
        return self._params["item_vectors"] != "frozen"

    # -- training -----------------------------------------------------------------------------
    def _fit(self, train: Sessions, valid: Sessions | None) -> None:
        self._fit_in_context(train, valid, FitContext())

    def _fit_in_context(self, train: Sessions, valid: Sessions | None,
                        context: FitContext) -> None:
        p = self._params
        n_items = self.n_items_
        if resolve_device(context.device).type != "cpu":
            raise ConfigError(f"{self.name} trains on the CPU only (its row-sparse training "
                              "step is not on the neural core yet); use device = 'cpu' or "
                              "'auto'")
        self._check_data_parallel()
        if p["item_vectors"]:
            self._pretrained_for(n_items)  # fail before any work
        if train.n_sessions:
            check_rollout_fits(self.name, p, int(train.lengths.max()))
        self._check_memory(n_items)
        with torch_threads(int(p["threads"])), flush_denormal():
            self._train(train, valid, context)

    def _check_data_parallel(self) -> None:
        """Refuse what data-parallel training (:mod:`sessionrec.training.row_parallel`) does
        not do, naming the parameter, before any work (too little data to share: in
        :meth:`_train`, once the walk plan is built)."""
        size = world()[1]
        if size == 1:
            return
        p = self._params
        why = None
        if float(p["pf_weight"]) > 0:
            why = "pf_weight > 0 (professor forcing's discriminator is not synchronised)"
        elif int(p["batch_size"]) < size * (2 if int(p["n_sample"]) == 0 else 1):
            why = (f"batch_size {p['batch_size']}: every rank needs a lane (two with "
                   "n_sample = 0, whose negatives are the other lanes' targets)")
        if why:
            raise ConfigError(f"{self.name} cannot train data-parallel (--nproc {size}) with "
                              f"{why}; run it with one process")

    _shard_unit = "sessions"

    def _shard_units(self, plan: Any) -> int:
        """How many units (sessions; HGRU4Rec: users) the walk ``plan`` shares among ranks."""
        return len(plan)

    def _shard(self, plan: np.ndarray) -> np.ndarray:
        """This rank's share of the walk ``plan`` (every ``world``-th session from ``rank``:
        each share spans the whole time range)."""
        rank, size = world()
        return plan[rank::size] if size > 1 else plan

    @property
    def _lanes(self) -> int:
        """This rank's lanes: ``batch_size`` split among the ranks (all of it in one
        process)."""
        rank, size = world()
        b = int(self._params["batch_size"])
        return b // size + (rank < b % size)

    def _train(self, train: Sessions, valid: Sessions | None, context: FitContext) -> None:
        p = self._params
        if p["optimizer"] == "adagrad":  # start the compiled optimiser before the timer
            kernels.warm_up()
        t_setup = time.perf_counter()
        n_items = self.n_items_
        rank, world_size = world()
        sessions = trainable_sessions(train.offsets)
        self.skipped_sessions_ = int(train.n_sessions - len(sessions))
        if self.skipped_sessions_:
            log.info("%s: skipped %d training sessions of length 1 (no target)", self.name,
                     self.skipped_sessions_)
        if len(sessions) == 0:
            raise SessionRecError(f"{self.name}: no training session has two or more events")
        plan = self._walk_plan(train, sessions)
        units = self._shard_units(plan)
        if units < world_size:  # before any training work; the plan is built once
            raise ConfigError(f"{self.name}: {units} training {self._shard_unit} cannot be "
                              f"shared among {world_size} processes; use fewer processes "
                              "(--nproc) or more data")
        plan = self._shard(plan)
        counts = np.bincount(train.items, minlength=n_items).astype(np.float64)
        self._init_net(n_items)
        opt = RowOptimizer(dict(self.net_.named_parameters()), p["optimizer"],
                           p["learning_rate"], p["momentum"])
        net = self.net_
        tables = ["Wy", "By"] + ([net.input_name] if self.train_input
                                 and net.input_name != "Wy" else [])
        updater = RowUpdates(opt, net.dense_names(), tables, float(p["grad_clip"]),
                             int(p["max_steps"]))
        sampler = NegativeSampler(counts, p["n_sample"], p["sample_alpha"],
                                  p["sample_cache_size"], seed=p["seed"])
        log_counts = torch.from_numpy(np.log(np.maximum(counts, 1.0))).float()
        loss_fn = get_loss(p["loss"], p["bpreg"], p["elu_param"], p["logq"])
        items_t = torch.from_numpy(train.items)
        rows_total = int(train.lengths[sessions].sum())
        pairs_total = rows_total - len(sessions)
        pairs_here = pairs_total if world_size == 1 else self._plan_pairs(train, plan)
        # Negatives are drawn in blocks of this many steps; the block size changes the draws,
        # so it is the global batch's step count on every rank: all ranks share each step's
        # negatives, as one process's lanes do.
        steps_estimate = pairs_total // int(p["batch_size"]) + 1
        self._adversary = (Adversary(self, p["layers"][-1], epoch_seed(p["seed"], -1, 4))
                           if float(p["pf_weight"]) > 0 else None)
        epoch_steps = self._unrolled_epoch if self.unrolled else self._epoch_steps
        pf_history: list[dict[str, float]] = []
        setup_seconds = time.perf_counter() - t_setup
        epochs_done = [0.0]  # over all epochs (optimiser steps: updater.steps)

        def train_epoch(epoch: int) -> EpochStats:
            t0 = time.perf_counter()
            self.net_.train()
            # Dropout: each rank its own stream (one process: the stream it always had).
            torch.manual_seed(epoch_seed(p["seed"], epoch, 2 + 7 * rank))
            sampler.reseed(epoch_seed(p["seed"], epoch, 3), rows=steps_estimate)
            loss_sum, n_pairs = 0.0, 0
            show = p["progress"] if context.progress is None else context.progress
            bar = _progress(show and rank == 0, pairs_here, epoch, int(p["n_epochs"]),
                            self.name)
            try:
                for step, (loss, n) in enumerate(epoch_steps(
                        plan, train.offsets, items_t, sampler, updater, loss_fn, log_counts)):
                    loss_sum += loss
                    n_pairs += n
                    if updater.at_limit:  # max_steps: the same step on every rank
                        break
                    if bar is not None and step % 50 == 0:
                        bar.update(n_pairs - bar.n)
                        rate = n_pairs / max(time.perf_counter() - t0, 1e-9)
                        bar.set_postfix(loss=f"{loss_sum / max(n_pairs, 1):.4f}",
                                        ev_s=f"{rate:,.0f}", refresh=False)
                updater.finish()  # data-parallel: until every rank's walk has ended
            finally:
                if bar is not None:
                    bar.update(n_pairs - bar.n)
                    bar.set_postfix(loss=f"{loss_sum / max(n_pairs, 1):.4f}")
                    bar.close()
            cut = updater.at_limit
            if world_size > 1:
                loss_sum, n_pairs = all_sum([loss_sum, float(n_pairs)])
                n_pairs = int(n_pairs)
            seconds = time.perf_counter() - t0 + (setup_seconds if epoch == 0 else 0.0)
            if self._adversary is not None:
                pf_history.append(self._adversary.reset_stats())
            # A cut epoch counts its events pro rata of the (input, target) pairs it trained on.
            fraction = n_pairs / max(pairs_total, 1) if cut else 1.0
            epochs_done[0] += fraction
            return EpochStats(loss_sum / max(n_pairs, 1), round(rows_total * fraction), n_pairs,
                              seconds, stop=cut)

        validate = None
        if valid is not None and valid.n_events and len(trainable_sessions(valid.offsets)):
            def validate() -> float:  # rank 0 scores, every rank gets its score
                return broadcast_float(self._validation_mrr(train, valid) if rank == 0
                                       else None)
        fingerprint = {"model": self.name, "n_items": n_items, "vocab": self.vocab_,
                       "item_vectors": self._pretrained_digest(),
                       "params": {k: v for k, v in p.items() if k not in _NOT_TRAJECTORY
                                  and not (k in _LATER_DEFAULTS
                                           and v == _LATER_DEFAULTS[k])}}
        if world_size > 1:
            fingerprint["world_size"] = world_size
        loop = EpochLoop(
            int(p["n_epochs"]), int(p["patience"]), self._train_state, self._load_train_state,
            self._weights, validate,
            context.checkpoint_dir, context.resume, fingerprint=fingerprint,
            write_checkpoints=rank == 0)
        self._opt = opt
        try:
            history = loop.run(train_epoch)
        finally:
            self.net_.eval()
            del self._opt, self._adversary
        epochs_run = len(history.epochs)
        self.fit_stats_ = {
            "epochs": epochs_run,
            "events": int(train.n_events),
            "trainable_events": rows_total,
            "skipped_sessions": self.skipped_sessions_,
            "train_seconds": loop.train_seconds,
            "validation_seconds": loop.validation_seconds,
            "events_per_s": train.n_events * epochs_done[0] / max(loop.train_seconds, 1e-9),
            "steps": updater.steps,
            "epochs_walked": epochs_done[0],
            "world_size": world_size,
            "sampler_seconds": sampler.seconds,
            "history": history.to_dict(),
        }
        if pf_history:
            self.fit_stats_["professor_forcing"] = pf_history

    def _train_state(self) -> dict[str, torch.Tensor]:
        state = {k: v.clone() for k, v in self._weights().items()}
        state.update({f"opt.{k}": v.clone() for k, v in self._opt.state_dict().items()})
        if self._adversary is not None:
            state["pf"] = self._adversary.state_dict()
        return state

    def _load_train_state(self, state: dict[str, torch.Tensor]) -> None:
        self.net_.load_state_dict({k[2:]: v for k, v in state.items() if k.startswith("w.")})
        opt_state = {k[4:]: v for k, v in state.items() if k.startswith("opt.")}
        if opt_state:
            self._opt.load_state_dict(opt_state)
        if self._adversary is not None and "pf" in state:
            self._adversary.load_state_dict(state["pf"])

    def _walk_plan(self, train: Sessions, sessions: np.ndarray) -> np.ndarray:
        """What :meth:`_epoch_steps` walks: the trainable ``sessions`` by first-event time."""
        return session_order(train.offsets, train.ts[train.offsets[:-1]], sessions)

    def _plan_pairs(self, train: Sessions, plan: np.ndarray) -> int:
        """(input, target) pairs in the walk ``plan``."""
        return int(train.lengths[plan].sum()) - len(plan)

    def _row_stepper(self, updater: RowUpdates, loss_fn, log_counts: torch.Tensor,
                     ) -> Callable[..., tuple[float, Any]]:
        """The training step shared by the recurrent models: ``step(x_items, y_items,
        samples, forward) -> (summed loss, carry)``.

        The item rows the step touches (inputs, targets, samples) are gathered once into small
        leaf tensors; ``forward(x_rows)`` runs the model from the input rows and returns
        ``(output [m, out_width], carry)`` (``carry``: the new recurrent state, handed back
        as is). The output layer scores every lane against the batch's targets and samples,
        ``backward`` differentiates the loss, and ``updater`` updates the dense parameters
        and the touched item rows (summed over the ranks when data-parallel). Dense
        parameters a step does not use (e.g. a user GRU when no session starts) have no
        gradient and get no update.
        """
        p = self._params
        net, train_input = self.net_, self.train_input
        batch_size = float(p["batch_size"])
        output_loss = self._output_loss(loss_fn, log_counts)

        def step(x_items: torch.Tensor, y_items: torch.Tensor, samples: torch.Tensor,
                 forward: Callable[[torch.Tensor], tuple[torch.Tensor, Any]],
                 ) -> tuple[float, Any]:
            y_all = torch.cat([y_items, samples]) if len(samples) else y_items  # [m + S]
            rows = gather_rows(net, x_items, y_all, train_input)
            out, carry = forward(rows.x_in)  # [m, out_width]
            loss = output_loss(rows, out, rows.out_idx, y_all, len(x_items)) / batch_size
            loss.backward()
            # The dense parameters the step used (.grad; the others have none), then its rows.
            updater.apply(rows.row_updates(rows.grads()))
            updater.opt.zero_grad(set_to_none=True)
            return float(loss.detach()) * batch_size, carry

        return step

    def _output_loss(self, loss_fn, log_counts: torch.Tensor) -> OutputLoss:
        """The step loss on the gathered rows (:class:`~sessionrec.models.item_rows.OutputLoss`)."""
        p = self._params
        return OutputLoss(loss_fn, log_counts, float(p["sample_alpha"]),
                          p["loss"] == "cross-entropy", float(p["logq"]))

    def _epoch_steps(self, order: np.ndarray, offsets: np.ndarray, items: torch.Tensor,
                     sampler: NegativeSampler, updater: RowUpdates, loss_fn, log_counts,
                     ) -> Iterator[tuple[float, int]]:
        """Train one epoch; yields (summed loss, lanes) per step."""
        p = self._params
        step = self._row_stepper(updater, loss_fn, log_counts)
        hidden = [torch.zeros((min(self._lanes, len(order)), h)) for h in p["layers"]]
        min_lanes = 2 if int(p["n_sample"]) == 0 else 1
        for batch in session_parallel(offsets, order, self._lanes, min_lanes):
            if batch.keep is not None:
                keep = torch.from_numpy(batch.keep)
                hidden = [h.index_select(0, keep) for h in hidden]
            if batch.reset.any():
                reset = torch.from_numpy(batch.reset).unsqueeze(1)  # [lanes, 1]
                for h in hidden:
                    h.masked_fill_(reset, 0.0)
            x_items = items.index_select(0, torch.from_numpy(batch.inputs))
            y_items = items.index_select(0, torch.from_numpy(batch.targets))
            loss, new_hidden = step(
                x_items, y_items, sampler.draw(),
                lambda x_in, hidden=hidden: self.net_(x_in, hidden))
            hidden = [h.detach() for h in new_hidden]
            yield loss, len(x_items)

    # -- multi-step training (sessionrec.models.unroll) ---------------------------------------
    def _unrolled_epoch(self, plan, offsets: np.ndarray, items: torch.Tensor,
                        sampler: NegativeSampler, updater: RowUpdates, loss_fn, log_counts,
                        ) -> Iterator[tuple[float, int]]:
        """Train one epoch in windows of ``bptt`` steps (0: one window per group of whole
        sessions, :meth:`_whole_session_epoch`); yields (summed loss, pairs)."""
        step = window_stepper(self, updater, loss_fn, log_counts, self._adversary)
        if int(self._params["bptt"]) == 0:
            yield from self._whole_session_epoch(plan, offsets, items, step, sampler)
            return
        walk, state = self._unroll_walk(plan, offsets, items)
        yield from unrolled_epoch(walk, state, int(self._params["bptt"]), step, sampler)

    def _whole_session_epoch(self, order: np.ndarray, offsets: np.ndarray, items: torch.Tensor,
                             step, sampler: NegativeSampler) -> Iterator[tuple[float, int]]:
        """Whole-session unrolling (``bptt = 0``): ``batch_size`` sessions of similar length
        start together from zero states (:func:`session_groups`), run to their ends as one
        window (lanes drop out as their sessions end) and make one update, with gradients
        through every step of every session. Yields (summed loss, pairs) per group."""
        for group in session_groups(offsets, order, self._lanes):
            walk, state = self._unroll_walk(group, offsets, items)
            window = list(walk)
            if window:
                loss, _ = step(window, [sampler.draw() for _ in window], state)
                yield loss, sum(len(s.x_items) for s in window)

    def _unroll_walk(self, order: np.ndarray, offsets: np.ndarray, items: torch.Tensor,
                     ) -> tuple[Iterator[WalkStep], list[torch.Tensor]]:
        """The session-parallel walk as :class:`WalkStep` s, and the first carried state."""
        p = self._params
        hidden = [torch.zeros((min(self._lanes, len(order)), h)) for h in p["layers"]]
        min_lanes = 2 if int(p["n_sample"]) == 0 else 1

        def walk() -> Iterator[WalkStep]:
            for batch in session_parallel(offsets, order, self._lanes, min_lanes):
                keep = None if batch.keep is None else torch.from_numpy(batch.keep)
                reset = (torch.from_numpy(batch.reset).unsqueeze(1) if batch.reset.any()
                         else None)

                def advance(hidden: list[torch.Tensor], x_in: torch.Tensor, keep=keep,
                            reset=reset) -> Stepped:
                    if keep is not None:
                        hidden = [h.index_select(0, keep) for h in hidden]
                    if reset is not None:
                        hidden = [h.masked_fill(reset, 0.0) for h in hidden]
                    out, new = self.net_(x_in, hidden)
                    return Stepped(out, new, new[-1], hidden, None)

                yield WalkStep(items[torch.from_numpy(batch.inputs)],
                               items[torch.from_numpy(batch.targets)], advance, batch.reset,
                               keep)

        return walk(), hidden

    def free_step(self, x: torch.Tensor, hidden: list[torch.Tensor], context: Any,
                  ) -> tuple[torch.Tensor, list[torch.Tensor], torch.Tensor]:
        """One free-running training step from input rows ``x`` (professor forcing):
        (output layer input, new session layers, top layer)."""
        out, new = self.net_(x, hidden)
        return out, new, new[-1]

    def _validation_mrr(self, train: Sessions, valid: Sessions) -> float:
        from sessionrec.evaluation.evaluator import evaluate

        self.net_.eval()  # train_epoch sets train() again
        result = evaluate(self, train, valid, ks=(self.VALID_K,),
                          batch_size=int(self._params["eval_lanes"]))
        return result.metrics()[f"mrr@{self.VALID_K}"]

    # -- inference ----------------------------------------------------------------------------
    @property
    def state_size(self) -> int:
        """Floats in one session's recurrent state (all layers concatenated)."""
        return sum(self._params["layers"])

    def initial_state(self, n: int) -> torch.Tensor:
        """float32 [n, state_size] zeros: the state of a new session."""
        return torch.zeros((n, self.state_size))

    def _split_state(self, state: torch.Tensor) -> list[torch.Tensor]:
        return list(state.split(self._params["layers"], dim=1))

    @torch.no_grad()
    def advance(self, state: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """The states after clicking ``items``; unknown items leave a state unchanged."""
        self._check_fitted()
        items = torch.as_tensor(items, dtype=torch.int64).reshape(-1)
        known = (items >= 0) & (items < self.n_items_)
        if not bool(known.any()):
            return state.clone()
        rows = self.net_.input_rows(items.clamp(0, self.n_items_ - 1))
        return torch.where(known.unsqueeze(1), self._advance_rows(state, rows), state)

    def _advance_rows(self, state: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        """The states after a step whose input rows are ``rows`` (every item known)."""
        _, new = self.net_(rows, self._split_state(state))
        return torch.cat(new, dim=1)

    def item_embeddings(self) -> torch.Tensor:
        """float32 [n_items, d]: the output item vectors (``Wy``)."""
        self._check_fitted()
        return self.net_.Wy.detach()

    @torch.no_grad()
    def scores_from_state(self, state: torch.Tensor) -> torch.Tensor:
        """float32 [n, n_items] scores of every item from session states."""
        return self.net_.scores(self._output_input(state))

    def _output_input(self, state: torch.Tensor) -> torch.Tensor:
        """The output layer's input in a state: the last layer's part."""
        return state[:, state.shape[1] - self._params["layers"][-1]:]

    def _start_states(self, users: np.ndarray | None, n: int) -> torch.Tensor:
        """float32 [n, state_size] states of new sessions of ``users`` (GRU4Rec: zeros)."""
        return self.initial_state(n)

    def step(self, state: torch.Tensor, items: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One click per session: ``(scores [n, n_items], new_state)`` (stateless model step)."""
        new_state = self.advance(state, items)
        return self.scores_from_state(new_state), new_state

    def _score(self, prefixes: list[np.ndarray], users: np.ndarray | None) -> torch.Tensor:
        lengths = np.array([len(s) for s in prefixes])
        state = self._start_states(users, len(prefixes))
        for t in range(int(lengths.max())):
            active = np.flatnonzero(lengths > t)
            items = torch.tensor([int(prefixes[i][t]) for i in active], dtype=torch.int64)
            idx = torch.from_numpy(active)
            state[idx] = self.advance(state[idx], items)
        return self.scores_from_state(state)

    def score_next(self, sessions: Sessions, targets: np.ndarray,
                   batch_size: int = 512) -> Iterator[tuple[np.ndarray, torch.Tensor]]:
        """Walk the test sessions in parallel lanes, one step per event, each from the state
        :meth:`_start_states` gives its user (GRU4Rec: zeros)."""
        self._check_fitted()
        wanted = np.zeros(sessions.n_events + 1, dtype=bool)
        wanted[np.asarray(targets, dtype=np.int64)] = True
        walk = trainable_sessions(sessions.offsets)
        lanes = max(1, min(int(batch_size), int(self._params["eval_lanes"])))
        items = torch.from_numpy(sessions.items)
        state = self.initial_state(min(lanes, max(len(walk), 1)))
        fed = np.zeros(len(state), dtype=np.int64)  # known items fed in each lane's session
        for batch in session_parallel(sessions.offsets, walk, lanes):
            if batch.keep is not None:
                state = state.index_select(0, torch.from_numpy(batch.keep))
                fed = fed[batch.keep]
            if batch.reset.any():
                new = batch.sessions[batch.reset]
                state[torch.from_numpy(batch.reset)] = self._start_states(sessions.users[new],
                                                                          len(new))
                fed[batch.reset] = 0
            x = items[torch.from_numpy(batch.inputs)]
            state = self.advance(state, x)
            fed += ((x >= 0) & (x < self.n_items_)).numpy()
            emit = np.flatnonzero(wanted[batch.targets])
            if len(emit):
                scores = self.scores_from_state(state[torch.from_numpy(emit)])
                blind = fed[emit] == 0  # only unknown items so far: popularity, as score()
                if blind.any():
                    scores[torch.from_numpy(blind)] = self.popularity_
                yield batch.targets[emit], scores


def _progress(enabled: bool, total: int, epoch: int, n_epochs: int, name: str = "gru4rec"):
    """An epoch's progress over its training pairs (:mod:`sessionrec.progress`: a bar that
    stays on a terminal, periodic log records otherwise, a summary line at the end)."""
    if not enabled:
        return None
    from sessionrec.progress import Progress

    return Progress(total, f"{name} epoch {epoch + 1}/{n_epochs}", "events")
