"""What a training run hands a model besides the data: the explicit fit context.

Hyper-parameters live in the model (they define what is learned); where checkpoints go,
whether to resume, which device to use and whether to draw progress are properties of one
run, so they travel in a :class:`FitContext` given to ``fit`` — never set as attributes on a
model after construction.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch

from sessionrec.errors import ConfigError

DEVICES = ("auto", "cpu", "cuda")
Device = Literal["auto", "cpu", "cuda"]


@dataclass(frozen=True)
class FitContext:
    """One run's training settings.

    Attributes:
        checkpoint_dir: where ``last.pt`` / ``best.pt`` go (None: no checkpoints).
        resume: continue from ``checkpoint_dir/last.pt`` when it exists.
        device: ``auto`` (CUDA when present, else CPU), ``cpu`` or ``cuda``.
        progress: draw progress bars (None: the model's own ``progress`` parameter).
    """

    checkpoint_dir: Path | None = None
    resume: bool = False
    device: str = "auto"
    progress: bool | None = None

    def __post_init__(self) -> None:
        if self.device not in DEVICES and not str(self.device).startswith("cuda:"):
            raise ConfigError(f"unknown device {self.device!r}; valid devices: "
                              f"{', '.join(DEVICES)} (or cuda:N)")
        if self.resume and self.checkpoint_dir is None:
            raise ConfigError("resume needs a checkpoint directory")


def resolve_device(name: str) -> torch.device:
    """The torch device for ``auto`` / ``cpu`` / ``cuda[:N]``; a CUDA request without CUDA is
    an error naming what this torch build has (``auto`` falls back to the CPU)."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cpu":
        return torch.device("cpu")
    if str(name).startswith("cuda"):
        if not torch.cuda.is_available():
            raise ConfigError(
                f"device {name!r} was requested but CUDA is not available (torch "
                f"{torch.__version__}, {torch.cuda.device_count()} CUDA devices); use "
                "device = 'auto' (falls back to the CPU) or 'cpu'")
        return torch.device(name)
    raise ConfigError(f"unknown device {name!r}; valid devices: {', '.join(DEVICES)}")
