"""The epoch loop of the neural models: validation, early stopping, checkpoints, resume.

A model hands :class:`EpochLoop` three callables — run one epoch, score the validation split,
and get/set its full training state (weights and optimiser) — and the loop does the rest:

* after each epoch it computes the validation score (MRR@20 by default) when there is a
  validation split, keeps the best epoch's weights, and stops after ``patience`` epochs
  without improvement (``patience = 0``: run every epoch);
* with a ``checkpoint_dir`` it writes ``last.pt`` (weights + optimiser + loop state) after
  every epoch and ``best.pt`` (weights only) when validation improves, each through a
  temporary file and a rename, and ``resume=True`` continues from ``last.pt``;
* epochs draw their randomness from ``(seed, epoch)`` (see :func:`epoch_seed`), so an
  interrupted run resumed from its last checkpoint ends with the same weights as an
  uninterrupted one.

Checkpoints are loaded with ``torch.load(weights_only=True)`` and carry the vocabulary
fingerprint and the hyper-parameters; a checkpoint written for another vocabulary or other
hyper-parameters is refused.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from sessionrec.errors import SessionRecError

log = logging.getLogger(__name__)

LAST = "last.pt"
BEST = "best.pt"


def epoch_seed(seed: int, epoch: int, stream: int = 0) -> int:
    """A seed for epoch ``epoch`` of a run seeded ``seed`` (``stream`` separates uses)."""
    return (int(seed) * 1_000_003 + int(epoch) * 7_919 + int(stream) * 104_729) % (2**63 - 1)


@dataclass
class EpochStats:
    """What one training epoch reports."""

    loss: float
    events: int  # training rows (events) walked
    predictions: int  # (input, target) pairs trained on
    seconds: float
    stop: bool = False  # the model's step limit cut this epoch: run no further epochs


@dataclass
class History:
    """The loop's record, written into ``metrics.json`` under ``train``."""

    epochs: list[dict[str, Any]] = field(default_factory=list)
    best_epoch: int | None = None
    best_score: float | None = None
    stopped_early: bool = False
    resumed_from_epoch: int | None = None
    stopped_at_step_limit: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"epochs": self.epochs, "best_epoch": self.best_epoch,
                "best_score": self.best_score, "stopped_early": self.stopped_early,
                "resumed_from_epoch": self.resumed_from_epoch,
                "stopped_at_step_limit": self.stopped_at_step_limit}


def _differences(saved: str, current: str) -> str:
    """The fingerprint fields that differ (``vocab``, ``world_size``, ``params.hidden``...)."""
    try:
        a, b = json.loads(saved), json.loads(current)
    except (TypeError, ValueError):
        return "settings (unreadable fingerprint)"
    keys = []
    for k in sorted(set(a) | set(b)):
        if k == "params" and isinstance(a.get(k), dict) and isinstance(b.get(k), dict):
            keys += [f"params.{p}" for p in sorted(set(a[k]) | set(b[k]))
                     if a[k].get(p) != b[k].get(p)]
        elif a.get(k) != b.get(k):
            keys.append(k)
    return ", ".join(keys) or "settings"


def _atomic_save(obj: Any, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    torch.save(obj, tmp)
    tmp.replace(path)


class EpochLoop:
    """Run epochs with validation, early stopping and checkpoints (see the module docstring).

    Args:
        n_epochs: maximum number of epochs.
        patience: epochs without validation improvement before stopping (0 = never stop).
        get_state / set_state: the model's full training state (tensors only); ``set_state``
            must also accept the ``weights`` subset alone (the best epoch is restored so).
        weights: the subset of the state that is the model, with the same keys as in
            ``get_state`` (kept for the best epoch).
        validate: returns the validation score (higher is better), or None for no validation.
        checkpoint_dir: where ``last.pt`` / ``best.pt`` go (None = no checkpoints).
        resume: continue from ``checkpoint_dir/last.pt`` if it exists.
        fingerprint: identifies vocabulary and hyper-parameters; a checkpoint must match it.
        write_checkpoints: False on the ranks of a distributed run other than 0, which read
            ``last.pt`` to resume but leave writing it to rank 0.
    """

    def __init__(self, n_epochs: int, patience: int,
                 get_state: Callable[[], dict[str, torch.Tensor]],
                 set_state: Callable[[dict[str, torch.Tensor]], None],
                 weights: Callable[[], dict[str, torch.Tensor]],
                 validate: Callable[[], float] | None = None,
                 checkpoint_dir: Path | None = None, resume: bool = False,
                 fingerprint: dict[str, Any] | None = None,
                 write_checkpoints: bool = True) -> None:
        if n_epochs < 1:
            raise ValueError(f"n_epochs must be at least 1, got {n_epochs}")
        if patience < 0:
            raise ValueError(f"patience must be >= 0, got {patience}")
        self.n_epochs, self.patience = int(n_epochs), int(patience)
        self.get_state, self.set_state, self.weights = get_state, set_state, weights
        self.validate = validate
        self.checkpoint_dir = Path(checkpoint_dir) if checkpoint_dir else None
        self.resume = resume
        self.write_checkpoints = write_checkpoints
        self.fingerprint = json.dumps(fingerprint or {}, sort_keys=True, default=str)
        self.history = History()
        self.train_seconds = 0.0
        self.validation_seconds = 0.0

    # -- checkpoints --------------------------------------------------------------------------
    def _load_last(self) -> int:
        """Restore from ``last.pt``; returns the number of epochs already done (0 if none)."""
        if not (self.resume and self.checkpoint_dir and (self.checkpoint_dir / LAST).is_file()):
            return 0
        path = self.checkpoint_dir / LAST
        ckpt = torch.load(path, weights_only=True, map_location="cpu")
        saved = ckpt.get("fingerprint", "")
        if saved != self.fingerprint:
            raise SessionRecError(
                f"checkpoint {path} cannot be resumed: it was written with other "
                f"{_differences(saved, self.fingerprint)} (another vocabulary, model, "
                f"hyper-parameters or world size than this run):\n  checkpoint: {saved}\n"
                f"  this run:   {self.fingerprint}\n"
                "start a new run directory, or delete the checkpoint to train from scratch")
        self.set_state(ckpt["state"])
        loop = json.loads(ckpt["loop"])
        self.history = History(**loop["history"])
        self.history.resumed_from_epoch = loop["epochs_done"]
        self.train_seconds = loop["train_seconds"]
        self.validation_seconds = loop["validation_seconds"]
        self._best = None
        if self.history.best_epoch is not None and (self.checkpoint_dir / BEST).is_file():
            self._best = torch.load(self.checkpoint_dir / BEST, weights_only=True,
                                    map_location="cpu")["weights"]
        log.info("resumed from %s after epoch %d", path, loop["epochs_done"])
        return int(loop["epochs_done"])

    def _save(self, epochs_done: int, improved: bool) -> None:
        if self.checkpoint_dir is None or not self.write_checkpoints:
            return
        self.checkpoint_dir.mkdir(parents=True, exist_ok=True)
        if improved:
            _atomic_save({"weights": self.weights(), "fingerprint": self.fingerprint},
                         self.checkpoint_dir / BEST)
        loop = {"epochs_done": epochs_done, "history": self.history.to_dict(),
                "train_seconds": self.train_seconds,
                "validation_seconds": self.validation_seconds}
        _atomic_save({"state": self.get_state(), "fingerprint": self.fingerprint,
                      "loop": json.dumps(loop)}, self.checkpoint_dir / LAST)

    # -- the loop -----------------------------------------------------------------------------
    def run(self, train_epoch: Callable[[int], EpochStats]) -> History:
        """Run ``train_epoch(epoch)`` for the remaining epochs; leaves the best weights set."""
        self._best: dict[str, torch.Tensor] | None = None
        start = self._load_last()
        if self.history.stopped_early or self.history.stopped_at_step_limit:
            start = self.n_epochs
        for epoch in range(start, self.n_epochs):
            stats = train_epoch(epoch)
            self.train_seconds += stats.seconds
            record: dict[str, Any] = {"epoch": epoch + 1, "loss": stats.loss,
                                      "seconds": round(stats.seconds, 3),
                                      "events_per_s": stats.events / max(stats.seconds, 1e-9)}
            if stats.stop:
                record["cut_at_step_limit"] = True
                self.history.stopped_at_step_limit = True
            if not math.isfinite(stats.loss):
                raise SessionRecError(
                    f"training diverged in epoch {epoch + 1} (loss {stats.loss}); lower the "
                    "learning rate or the score regularisation")
            improved = False
            if self.validate is not None:
                t0 = time.perf_counter()
                score = float(self.validate())
                self.validation_seconds += time.perf_counter() - t0
                record["valid_score"] = score
                if self.history.best_score is None or score > self.history.best_score:
                    self.history.best_score, self.history.best_epoch = score, epoch + 1
                    self._best = {k: v.clone() for k, v in self.weights().items()}
                    improved = True
            self.history.epochs.append(record)
            log.info("epoch %d: %s", epoch + 1, record)
            best = self.history.best_epoch
            if self.patience and best is not None and epoch + 1 - best >= self.patience:
                self.history.stopped_early = True
            self._save(epoch + 1, improved)
            if self.history.stopped_early or stats.stop:
                break
        if self._best is not None:
            self.set_state(self._best)  # the best epoch's weights (a subset of the state)
        return self.history
