"""Professor forcing for the session RNNs (Lamb et al., NeurIPS 2016).

Teacher forcing trains the session GRU on the true clicks only, but predicting several clicks
ahead feeds it its own predictions, whose hidden-state dynamics it never saw in training.
Professor forcing adds a discriminator that learns to tell the two regimes apart from the
sequence of hidden states, and trains the RNN so that its free-running dynamics fool it.

Inside a training window of ``bptt`` steps (:mod:`sessionrec.models.unroll`) the lanes that
stay in one session for ``pf_rollout`` steps are rolled out twice from the same state:

* **teacher-forced**: the window's own steps (inputs = the true clicks);
* **free-running**: the first input is the same true click, each later input is the model's
  own prediction from the previous step, fed as the **score-weighted item embedding**
  ``softmax(scores) @ E_in`` (``pf_feed = "weighted"``, the default) or as the top-1 item's
  embedding (``"top1"``). We chose the score-weighted embedding because it is differentiable
  and deterministic: the adversarial gradient reaches the GRU through the fed inputs as well
  as through the recurrence, with no sampling variance (Lamb et al. sampled, which leaves only
  the recurrence path). The item matrices are read detached in the free-running feed (the
  adversarial term updates the GRU and output bias path, not every item row: a dense update
  of all items per step would cost as much as a full softmax's gradient).

The discriminator (:class:`Discriminator`) is a bidirectional GRU of ``pf_disc_hidden`` units
over the top session layer's states, then an MLP to one logit ("teacher-forced"). It is
trained with binary cross-entropy, ``pf_disc_steps`` Adam updates (``pf_disc_lr``) per
generator update, on detached sequences. The generator's loss is the next-item loss plus
``pf_weight`` × BCE(D(free-running), teacher-forced), the mean over the rolled-out lanes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from sessionrec.errors import ConfigError
from sessionrec.models.capabilities import RecurrentStep

FEEDS = ("weighted", "top1")
# Parameters of the option, their defaults (off) and the check of each value.
PF_DEFAULTS: dict[str, Any] = {"pf_weight": 0.0, "pf_rollout": 0, "pf_feed": "weighted",
                               "pf_disc_hidden": 32, "pf_disc_steps": 1, "pf_disc_lr": 0.001}


def check_unroll_params(name: str, p: dict[str, Any]) -> None:
    """Validate ``bptt``, ``grad_clip`` and the ``pf_*`` parameters of model ``name``."""
    if int(p["bptt"]) < 0:
        raise ConfigError(f"{name}: bptt must be >= 0 (1: one-step truncated "
                          f"back-propagation, k > 1: windows of k steps, 0: whole sessions), "
                          f"got {p['bptt']}")
    if float(p["grad_clip"]) < 0:
        raise ConfigError(f"{name}: grad_clip must be >= 0 (0: no clipping), got "
                          f"{p['grad_clip']}")
    if float(p["pf_weight"]) < 0:
        raise ConfigError(f"{name}: pf_weight (the adversarial weight of professor forcing) "
                          f"must be >= 0, got {p['pf_weight']}")
    if p["pf_feed"] not in FEEDS:
        raise ConfigError(f"{name}: pf_feed must be one of {FEEDS}, got {p['pf_feed']!r}")
    for key in ("pf_disc_hidden", "pf_disc_steps"):
        if int(p[key]) < 1:
            raise ConfigError(f"{name}: {key} must be at least 1, got {p[key]}")
    if float(p["pf_disc_lr"]) <= 0:
        raise ConfigError(f"{name}: pf_disc_lr must be positive, got {p['pf_disc_lr']}")
    if int(p["pf_rollout"]) < 0:
        raise ConfigError(f"{name}: pf_rollout must be >= 0 (0: the whole bptt window), got "
                          f"{p['pf_rollout']}")
    if float(p["pf_weight"]) > 0:
        rollout = rollout_length(p)
        if int(p["bptt"]) == 0 and int(p["pf_rollout"]) == 0:
            raise ConfigError(f"{name}: with whole-session unrolling (bptt = 0) professor "
                              "forcing needs an explicit pf_rollout (>= 2): sessions have no "
                              "common length")
        if rollout < 2:
            raise ConfigError(f"{name}: professor forcing (pf_weight > 0) compares rollouts of "
                              f"at least 2 steps; pf_rollout is {rollout} (set bptt >= 2 and "
                              "pf_rollout = 0 or >= 2)")
        if int(p["bptt"]) > 0 and rollout > int(p["bptt"]):
            raise ConfigError(f"{name}: pf_rollout = {rollout} is longer than the training "
                              f"window bptt = {p['bptt']}; rollouts run inside the window")


def rollout_length(p: dict[str, Any]) -> int:
    """Steps of a professor-forcing rollout (``pf_rollout``, 0: the whole ``bptt`` window)."""
    return int(p["pf_rollout"]) or int(p["bptt"])


def check_rollout_fits(name: str, p: dict[str, Any], longest_session: int) -> None:
    """Refuse a rollout longer than any training session can give (before any work)."""
    if float(p["pf_weight"]) > 0 and rollout_length(p) > longest_session - 1:
        raise ConfigError(
            f"{name}: pf_rollout = {rollout_length(p)} steps is longer than the longest "
            f"training session allows ({longest_session} events give {longest_session - 1} "
            "targets); lower pf_rollout (or bptt)")


def lanes_through(steps: list) -> list[torch.Tensor] | None:
    """The lanes of ``steps[0]`` that stay in their session through every step, as their
    position at each step (int64 [n] per step, same lane order), or None when no lane does.

    A lane leaves when a step drops it (``keep`` without it) or starts a new session in it
    (``starts``) after the first step; dropping earlier lanes moves the later ones down.
    """
    pos = torch.arange(len(steps[0].x_items))
    alive = torch.ones(len(pos), dtype=torch.bool)
    history = [pos]
    for s in steps[1:]:
        if s.keep is not None:
            keep = torch.as_tensor(s.keep)
            if len(keep) == 0:
                return None
            idx = torch.searchsorted(keep, pos).clamp(max=len(keep) - 1)
            alive &= keep.index_select(0, idx) == pos  # still there after the drop
            pos = torch.where(alive, idx, 0)
        alive &= ~torch.from_numpy(np.asarray(s.starts, dtype=bool)).index_select(0, pos)
        history.append(pos)
    if not bool(alive.any()):
        return None
    lanes = alive.nonzero().squeeze(1)
    return [p.index_select(0, lanes) for p in history]


class Discriminator(nn.Module):
    """Bidirectional GRU + MLP: hidden-state sequences [T, n, d] -> logits [n]."""

    def __init__(self, d_in: int, hidden: int) -> None:
        super().__init__()
        self.gru = nn.GRU(d_in, hidden, bidirectional=True)
        self.mlp = nn.Sequential(nn.Linear(2 * hidden, hidden), nn.ReLU(),
                                 nn.Linear(hidden, 1))

    def forward(self, seq: torch.Tensor) -> torch.Tensor:
        _, h_n = self.gru(seq)  # [2, n, hidden]: the last state of each direction
        return self.mlp(torch.cat([h_n[0], h_n[1]], dim=1)).squeeze(1)


@dataclass
class Fight:
    """One window's rollouts: the generator's adversarial loss and the sequences for D."""

    generator_loss: torch.Tensor
    teacher: torch.Tensor  # [T, n, d]
    free: torch.Tensor  # [T, n, d]


class Adversary:
    """The discriminator, its optimiser and the free-running rollouts of one model's fit."""

    def __init__(self, model: Any, top_width: int, seed: int) -> None:
        if not isinstance(model, RecurrentStep):
            raise ConfigError(f"{getattr(model, 'name', type(model).__name__)}: pf_weight > 0 "
                              "(professor forcing) needs a model with a recurrent session "
                              "state; this model has none")
        p = model._params
        self.weight = float(p["pf_weight"])
        self.rollout = rollout_length(p)
        self.feed = p["pf_feed"]
        self.disc_steps = int(p["pf_disc_steps"])
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            self.disc = Discriminator(top_width, int(p["pf_disc_hidden"]))
        self.opt = torch.optim.Adam(self.disc.parameters(), lr=float(p["pf_disc_lr"]))
        self.stats = {"windows": 0, "lanes": 0, "generator_loss": 0.0, "disc_loss": 0.0,
                      "disc_accuracy": 0.0}

    def reset_stats(self) -> dict[str, float]:
        """The epoch's means so far, then zero the counters."""
        n = max(self.stats["windows"], 1)
        out = {"pf_windows": self.stats["windows"], "pf_lanes": self.stats["lanes"],
               "pf_generator_loss": self.stats["generator_loss"] / n,
               "pf_disc_loss": self.stats["disc_loss"] / n,
               "pf_disc_accuracy": self.stats["disc_accuracy"] / n}
        self.stats = dict.fromkeys(self.stats, 0)
        return out

    def engage(self, model: Any, window: list, first: Any, x_rows: torch.Tensor,
               tops: list[torch.Tensor]) -> Fight | None:
        """Roll the eligible lanes of a window out free-running; None when none is.

        A lane is eligible when it stays in its session for the rollout's steps: it is not
        dropped and starts no new session at steps 2..T (lanes dropped meanwhile are followed
        through the narrowing, :func:`lanes_through`).
        """
        t_len = self.rollout
        if len(window) < t_len:
            return None
        positions = lanes_through(window[:t_len])
        if positions is None:
            return None
        lanes = positions[0]
        teacher = torch.stack([t.index_select(0, pos) for t, pos in zip(tops[:t_len], positions,
                                                                        strict=True)])
        hidden = [h.index_select(0, lanes) for h in first.start]
        context = _select(first.context, lanes)
        x = x_rows.index_select(0, lanes)
        net = model.net_
        w_in = net.input_table.detach()
        free = []
        for t in range(t_len):
            out, hidden, top = model.free_step(x, hidden, context)
            free.append(top)
            if t + 1 < t_len:
                scores = net.scores(out)  # the item tables need no gradient: not leaves
                if self.feed == "weighted":
                    x = torch.softmax(scores, dim=1) @ w_in
                else:
                    x = w_in.index_select(0, scores.argmax(dim=1))
        free_seq = torch.stack(free)
        logits = self.disc(free_seq)
        g_loss = F.binary_cross_entropy_with_logits(logits, torch.ones_like(logits))
        self.stats["windows"] += 1
        self.stats["lanes"] += len(lanes)
        self.stats["generator_loss"] += float(g_loss.detach())
        return Fight(g_loss, teacher.detach(), free_seq.detach())

    def train_discriminator(self, fight: Fight) -> None:
        """``pf_disc_steps`` updates of D: teacher-forced = 1, free-running = 0."""
        n = fight.teacher.shape[1]
        seqs = torch.cat([fight.teacher, fight.free], dim=1)
        labels = torch.cat([torch.ones(n), torch.zeros(n)])
        for _ in range(self.disc_steps):
            logits = self.disc(seqs)
            loss = F.binary_cross_entropy_with_logits(logits, labels)
            self.opt.zero_grad(set_to_none=True)
            loss.backward()
            self.opt.step()
        with torch.no_grad():
            self.stats["disc_loss"] += float(loss)
            self.stats["disc_accuracy"] += float(((logits > 0).float() == labels)
                                                 .float().mean())

    def state_dict(self) -> dict[str, Any]:
        return {"disc": self.disc.state_dict(), "opt": self.opt.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.disc.load_state_dict(state["disc"])
        self.opt.load_state_dict(state["opt"])


def _select(context: Any, lanes: torch.Tensor) -> Any:
    """Rows ``lanes`` of a context (None, a tensor or a list of tensors)."""
    if context is None:
        return None
    if isinstance(context, torch.Tensor):
        return context.index_select(0, lanes)
    return [c.index_select(0, lanes) for c in context]
