"""Data-parallel training with ``torch.distributed``: launching ranks and asking who we are.

``sessionrec train --nproc N`` starts ``N`` local processes with
:func:`torch.multiprocessing.start_processes` (spawn); under ``torchrun`` (several machines)
the processes already exist and :func:`init_from_env` joins them to the group from the
``RANK`` / ``WORLD_SIZE`` / ``MASTER_ADDR`` / ``MASTER_PORT`` environment torchrun sets.
Either way the backend is ``gloo`` on the CPU and ``nccl`` on CUDA, every rank trains on its
own share of the data (the neural core's models: their share of the cases,
:class:`~sessionrec.batching.prefixes.PrefixSource`, with gradients all-reduced by
:class:`torch.nn.parallel.DistributedDataParallel`; GRU4Rec / HGRU4Rec: their share of the
sessions / users, with row-sparse gradients exchanged by
:class:`~sessionrec.training.row_parallel.RowUpdates`), and rank 0 alone writes checkpoints,
metrics and the model. A rank that dies ends the job with an error naming it.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from sessionrec.errors import ConfigError, SessionRecError

log = logging.getLogger(__name__)

TIMEOUT = timedelta(minutes=30)


def world() -> tuple[int, int]:
    """(rank, world size) of this process; (0, 1) outside a process group."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def is_main() -> bool:
    """True on rank 0 (or without a process group): the process that writes outputs."""
    return world()[0] == 0


def backend_for(device: str) -> str:
    """``nccl`` for CUDA devices, ``gloo`` otherwise."""
    wants_cuda = device.startswith("cuda") or (device == "auto" and torch.cuda.is_available())
    return "nccl" if wants_cuda else "gloo"


def free_port() -> int:
    """A free TCP port on the loopback interface (for a local process group)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def init_from_env(device: str = "auto") -> bool:
    """Join the process group torchrun describes in the environment; False when not under
    torchrun (``WORLD_SIZE`` unset or 1) or already joined."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or dist.is_initialized():
        return False
    dist.init_process_group(backend_for(device), timeout=TIMEOUT)
    _pin_cuda(device)
    log.info("joined process group: rank %d of %d", dist.get_rank(), dist.get_world_size())
    return True


def _pin_cuda(device: str) -> None:
    if backend_for(device) == "nccl":
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", dist.get_rank()))
                              % torch.cuda.device_count())


def _rank_main(rank: int, nproc: int, port: int, device: str, fn: Callable[..., Any],
               args: tuple[Any, ...]) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank),
                      LOCAL_RANK=str(rank), WORLD_SIZE=str(nproc))
    dist.init_process_group(backend_for(device), rank=rank, world_size=nproc, timeout=TIMEOUT)
    if backend_for(device) == "gloo":
        # N ranks on one machine share its cores: more intra-op threads only oversubscribe.
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // nproc))
    try:
        _pin_cuda(device)
        fn(*args)
    finally:
        dist.destroy_process_group()


def launch(nproc: int, fn: Callable[..., Any], args: tuple[Any, ...] = (),
           device: str = "auto") -> None:
    """Run ``fn(*args)`` in ``nproc`` local processes joined in one process group.

    ``fn`` and ``args`` must be picklable (a module-level function). Raises
    :class:`SessionRecError` naming the rank when any process fails or dies.
    """
    if nproc < 1:
        raise ConfigError(f"--nproc must be at least 1, got {nproc}")
    if backend_for(device) == "nccl" and nproc > torch.cuda.device_count():
        raise ConfigError(f"--nproc {nproc} needs {nproc} CUDA devices, this machine has "
                          f"{torch.cuda.device_count()}")
    port = free_port()
    try:
        mp.start_processes(_rank_main, args=(nproc, port, device, fn, args), nprocs=nproc,
                           join=True, start_method="spawn")
    except mp.ProcessRaisedException as err:
        last = str(err).strip().splitlines()[-1] if str(err).strip() else repr(err)
        raise SessionRecError(f"training rank {err.error_index} of {nproc} failed: {last}; "
                              "the other ranks were stopped. Fix the cause and rerun with "
                              "--resume to continue from the last checkpoint") from err
    except mp.ProcessExitedException as err:
        raise SessionRecError(f"training rank {err.error_index} of {nproc} died (exit code "
                              f"{err.exit_code}); the other ranks were stopped. Rerun with "
                              "--resume to continue from the last checkpoint") from err


def broadcast_float(value: float | None) -> float:
    """Rank 0's ``value`` on every rank (identity without a process group)."""
    rank, size = world()
    if size == 1:
        return float(value if value is not None else 0.0)
    t = torch.tensor([float(value) if rank == 0 and value is not None else 0.0],
                     dtype=torch.float64)
    if dist.get_backend() == "nccl":
        t = t.cuda()
    dist.broadcast(t, 0)
    return float(t.item())


def all_sum(values: list[float]) -> list[float]:
    """Element-wise sums of ``values`` over all ranks."""
    _, size = world()
    if size == 1:
        return list(values)
    t = torch.tensor(values, dtype=torch.float64)
    if dist.get_backend() == "nccl":
        t = t.cuda()
    dist.all_reduce(t)
    return t.cpu().tolist()
