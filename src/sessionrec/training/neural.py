"""The one trainer of the neural models: any device, one process or many, checkpoints.

A model hands :func:`train` its network (an ``nn.Module`` whose ``forward(batch)`` returns
the batch's mean loss), a batch source, its :class:`TrainSettings`, the run's
:class:`~sessionrec.training.context.FitContext` and a validation callback. The trainer

* puts the network on the context's device (``auto``: CUDA when present) and, on CUDA with
  ``amp``, runs the forward pass in bfloat16/float16 autocast with a gradient scaler;
* inside a ``torch.distributed`` process group wraps it in
  :class:`~torch.nn.parallel.DistributedDataParallel` (gradients all-reduced; each rank's
  batch source yields its own share of the cases), lets rank 0 validate and broadcasts the
  score so every rank makes the same early-stopping decision, and lets rank 0 alone write
  checkpoints;
* uses a standard ``torch.optim`` optimiser (``adam``, ``adamw``, ``adagrad``, ``sgd``) with
  optional step decay of the learning rate and gradient-norm clipping;
* runs epochs through :class:`~sessionrec.training.trainer.EpochLoop` (early stopping on the
  validation score, ``best.pt`` / ``last.pt``, resume with the same result), with every
  epoch's randomness derived from (seed, epoch, rank).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from sessionrec.errors import ConfigError
from sessionrec.training.context import FitContext, resolve_device
from sessionrec.training.distributed import all_sum, broadcast_float, world
from sessionrec.training.trainer import EpochLoop, EpochStats, epoch_seed

log = logging.getLogger(__name__)

OPTIMIZERS = ("adam", "adamw", "adagrad", "sgd")


class BatchSource(Protocol):
    """Batches of one epoch, this rank's share (see :mod:`sessionrec.batching`)."""

    def __len__(self) -> int: ...

    @property
    def n_cases(self) -> int: ...

    def epoch(self, epoch: int) -> Iterator[Any]: ...


@dataclass(frozen=True)
class TrainSettings:
    """Optimisation settings shared by the neural models (a subset of their parameters)."""

    n_epochs: int = 10
    patience: int = 0
    optimizer: str = "adam"
    learning_rate: float = 1e-3
    weight_decay: float = 0.0
    momentum: float = 0.0
    lr_decay: float = 1.0
    lr_decay_every: int = 1
    clip_grad: float = 0.0
    amp: bool = False
    seed: int = 0
    progress: bool = True


def make_optimizer(settings: TrainSettings, params) -> torch.optim.Optimizer:
    """The ``torch.optim`` optimiser ``settings.optimizer`` over ``params``."""
    lr, wd = settings.learning_rate, settings.weight_decay
    if settings.optimizer == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=wd)
    if settings.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=wd)
    if settings.optimizer == "adagrad":
        return torch.optim.Adagrad(params, lr=lr, weight_decay=wd)
    if settings.optimizer == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=settings.momentum, weight_decay=wd)
    raise ConfigError(f"unknown optimizer {settings.optimizer!r}; valid optimizers: "
                      f"{', '.join(OPTIMIZERS)}")


def _progress(enabled: bool, total: int, desc: str):
    """An epoch's progress over its batches (:mod:`sessionrec.progress`)."""
    if not enabled:
        return None
    from sessionrec.progress import Progress

    return Progress(total, desc, "batches")


def train(net: nn.Module, source: BatchSource, settings: TrainSettings, context: FitContext,
          validate: Callable[[], float] | None, fingerprint: dict[str, Any], name: str,
          on_epoch_start: Callable[[int], None] | None = None) -> dict[str, Any]:
    """Train ``net`` (``forward(batch) -> mean loss``) in place; returns the fit statistics.

    ``validate`` is called on rank 0 after each epoch (higher is better); ``on_epoch_start``
    reseeds anything of the model's own (e.g. a negative sampler) at each epoch.
    Leaves the best epoch's weights in ``net`` (on the training device).
    """
    device = resolve_device(context.device)
    rank, world_size = world()
    net.to(device)
    ddp = world_size > 1
    model: nn.Module = net
    if ddp:
        model = DistributedDataParallel(
            net, device_ids=[device.index or 0] if device.type == "cuda" else None)
    opt = make_optimizer(settings, net.parameters())
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=max(1, settings.lr_decay_every),
                                            gamma=settings.lr_decay)
    amp = bool(settings.amp) and device.type == "cuda"
    if settings.amp and not amp:
        log.info("%s: amp applies on CUDA only; training in float32 on %s", name, device)
    amp_dtype = torch.bfloat16 if amp and torch.cuda.is_bf16_supported() else torch.float16
    scaler = torch.amp.GradScaler("cuda", enabled=amp and amp_dtype == torch.float16)
    progress = settings.progress if context.progress is None else context.progress

    def train_epoch(epoch: int) -> EpochStats:
        t0 = time.perf_counter()
        torch.manual_seed(epoch_seed(settings.seed, epoch, 2 + 7 * rank))
        if on_epoch_start is not None:
            on_epoch_start(epoch)
        net.train()
        loss_sum = torch.zeros((), dtype=torch.float64, device=device)
        n_cases = 0
        bar = _progress(progress and rank == 0, len(source),
                        f"{name} epoch {epoch + 1}/{settings.n_epochs}")
        try:
            for batch in source.epoch(epoch):
                batch = batch.to(device)
                with torch.autocast(device.type, dtype=amp_dtype, enabled=amp):
                    loss = model(batch)
                opt.zero_grad(set_to_none=True)
                scaler.scale(loss).backward()
                if settings.clip_grad > 0:
                    scaler.unscale_(opt)
                    nn.utils.clip_grad_norm_(net.parameters(), settings.clip_grad)
                scaler.step(opt)
                scaler.update()
                n = len(batch.targets)
                loss_sum += loss.detach().double() * n
                n_cases += n
                if bar is not None:
                    bar.update(1)
        finally:
            if bar is not None:
                bar.set_postfix(loss=f"{float(loss_sum) / max(n_cases, 1):.4f}")
                bar.close()
        sched.step()
        total_loss, total_cases = all_sum([float(loss_sum), float(n_cases)])
        seconds = time.perf_counter() - t0
        return EpochStats(total_loss / max(total_cases, 1), int(total_cases),
                          int(total_cases), seconds)

    def get_state() -> dict[str, Any]:
        state: dict[str, Any] = {f"net.{k}": v.detach().clone()
                                 for k, v in net.state_dict().items()}
        state["opt"] = opt.state_dict()
        state["sched"] = sched.state_dict()
        return state

    def set_state(state: dict[str, Any]) -> None:
        net.load_state_dict({k[4:]: v for k, v in state.items() if k.startswith("net.")})
        if "opt" in state:
            opt.load_state_dict(state["opt"])
            sched.load_state_dict(state["sched"])

    def weights() -> dict[str, torch.Tensor]:
        return {f"net.{k}": v.detach() for k, v in net.state_dict().items()}

    def validate_all() -> float:
        score = None
        if rank == 0:
            net.eval()
            score = validate()
        return broadcast_float(score)

    loop = EpochLoop(settings.n_epochs, settings.patience, get_state, set_state, weights,
                     validate_all if validate is not None else None, context.checkpoint_dir,
                     context.resume, fingerprint={**fingerprint, "world_size": world_size},
                     write_checkpoints=rank == 0)
    history = loop.run(train_epoch)
    net.eval()
    epochs = len(history.epochs)
    cases = source.n_cases * world_size
    return {
        "epochs": epochs,
        "device": str(device),
        "world_size": world_size,
        "cases": cases,
        "train_seconds": loop.train_seconds,
        "validation_seconds": loop.validation_seconds,
        "cases_per_s": cases * epochs / max(loop.train_seconds, 1e-9),
        "history": history.to_dict(),
    }
