"""HGRU4Rec: session recommendations personalised by a user-level GRU (Quadrana et al. 2017).

Two recurrent levels, trained jointly:

* the **session GRU** (``layers``) is GRU4Rec's network, reused from
  :mod:`sessionrec.models.gru4rec`: input modes, output layer, losses, popularity-sampled
  negatives, row-wise optimiser, one-step detached back-propagation;
* the **user GRU** (``user_layers``) steps once per session: when a session of a user ends,
  its final state (the top session layer after the session's *last* click) is the input of
  one user GRU step, ``u_m = GRU_u(s_{m-1}^final, u_{m-1})``, and the user's next session
  starts from ``s_m^0 = tanh(W_init u_m + b_init)`` (all session layers at once; dropout
  ``dropout_p_init``). A user's first session starts from ``u = 0``.

Options: ``user_propagation = "all"`` also joins the user state (top user layer) to every
session step's input; ``user_to_output`` joins it to the output layer's input; dropout on the
user layers' outputs (``dropout_p_hidden_usr``) and on the session initialisation
(``dropout_p_init``), besides GRU4Rec's ``dropout_p_embed`` / ``dropout_p_hidden``. With
``user_layers = []`` there is no user level: sessions start from zeros as in GRU4Rec, but the
training walk, optimiser and early stopping are HGRU4Rec's (the "OnlySession" ablation).

Training walks users in parallel lanes (:mod:`sessionrec.batching.user_parallel`). Gradients
reach the user GRU and ``W_init`` through the steps that start a session (and, with ``all``
or ``user_to_output``, through every step of it), exactly one step deep as for the session
GRU. Early stopping watches validation MRR@10 (the thesis's rule).

Scoring needs the users' pasts: at the end of ``fit`` the model walks every training user's
history with the final weights and stores the user state after their last training session
(``user_ids_`` sorted, ``user_states_`` [n_users, user_state_size]). A test session starts
from its user's stored state (users unknown to training: zero user state); test sessions do
not update it, so a prediction depends only on its prefix and its user (as ``score``).
:meth:`HGRU4Rec.extend_user_history` rolls the stored states on through more sessions (e.g.
the validation split) without training.

Input: one-hot-equivalent, learned embedding or constrained, as GRU4Rec; or pre-trained item
vectors (:meth:`HGRU4Rec.set_pretrained_items`, frozen or fine-tuned) as the input embedding.

The network (both levels) is :class:`~sessionrec.models.neural.gru4rec_net.HGRU4RecNet`
(the fitted ``net_``); this module holds the user-parallel walk and the user histories.

Session states follow GRU4Rec's conventions (float32 [n, state_size]); an HGRU4Rec session
state is the session layers followed by the user state's top layer, so ``advance`` and
``scores_from_state`` need nothing else. User states are float32 [n, user_state_size] (all user
layers).
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import numpy as np
import torch

from sessionrec.batching.negatives import NegativeSampler
from sessionrec.batching.user_parallel import UserSchedule, user_parallel, user_schedule
from sessionrec.data.sessions import Sessions
from sessionrec.errors import ConfigError, SessionRecError
from sessionrec.models.base import SessionRecommender, register_model
from sessionrec.models.gru4rec import GRU4Rec
from sessionrec.models.neural.gru4rec_net import HGRU4RecNet
from sessionrec.models.unroll import Stepped, WalkStep
from sessionrec.training.context import FitContext
from sessionrec.training.distributed import world
from sessionrec.training.row_parallel import RowUpdates

PROPAGATIONS = ("init", "all")

Layers = list[torch.Tensor]


def _sizes(value: int | list[int] | tuple[int, ...]) -> list[int]:
    return [int(h) for h in ([value] if isinstance(value, int) else value)]


@register_model
class HGRU4Rec(GRU4Rec):
    """HGRU4Rec: GRU4Rec's session GRU plus a user-level GRU across a user's sessions.

    Args (beyond :class:`~sessionrec.models.gru4rec.GRU4Rec`'s, which keep their meaning):
        user_layers: hidden units per user GRU layer, e.g. ``[100]`` (``[]``: no user level).
        user_propagation: ``init`` (the user state initialises each session) or ``all``
            (also joined to every session step's input).
        user_to_output: join the user state to the output layer's input.
        dropout_p_hidden_usr: dropout on the user layers' outputs.
        dropout_p_init: dropout on the session states initialised from the user state.
        optimizer: default ``adam`` (the thesis's choice), learning_rate default 0.01.
        patience: early stopping on validation MRR@10.
        eval_lanes: users (and test sessions) walked in parallel when not training.
    """

    name = "hgru4rec"
    VALID_K = 10

    def __init__(self, layers: list[int] | tuple[int, ...] = (100,),
                 user_layers: list[int] | tuple[int, ...] = (100,),
                 user_propagation: str = "init", user_to_output: bool = False,
                 loss: str = "cross-entropy", batch_size: int = 64,
                 dropout_p_embed: float = 0.0, dropout_p_hidden: float = 0.0,
                 dropout_p_hidden_usr: float = 0.0, dropout_p_init: float = 0.0,
                 learning_rate: float = 0.01, momentum: float = 0.0, optimizer: str = "adam",
                 n_sample: int = 2048, sample_alpha: float = 0.5, embedding: int = 0,
                 constrained_embedding: bool = True, item_vectors: str = "",
                 n_epochs: int = 10, bpreg: float = 1.0, elu_param: float = 0.5,
                 logq: float = 0.0, init_scale: float = 1.0, patience: int = 0,
                 sample_cache_size: int = 10_000_000, eval_lanes: int = 512, seed: int = 0,
                 threads: int = 0, max_memory_gb: float = 0.0, progress: bool = True,
                 bptt: int = 1, grad_clip: float = 0.0, pf_weight: float = 0.0,
                 pf_rollout: int = 0, pf_feed: str = "weighted", pf_disc_hidden: int = 32,
                 pf_disc_steps: int = 1, pf_disc_lr: float = 0.001, max_steps: int = 0) -> None:
        # GRU4Rec.__init__ validates a fixed parameter set, so this sets all of them itself
        # and repeats its two attributes below.
        SessionRecommender.__init__(
            self, layers=_sizes(layers), user_layers=_sizes(user_layers),
            user_propagation=user_propagation, user_to_output=bool(user_to_output), loss=loss,
            batch_size=batch_size, dropout_p_embed=dropout_p_embed,
            dropout_p_hidden=dropout_p_hidden, dropout_p_hidden_usr=dropout_p_hidden_usr,
            dropout_p_init=dropout_p_init, learning_rate=learning_rate, momentum=momentum,
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
        self._pretrained: torch.Tensor | None = None  # see GRU4Rec.set_pretrained_items

    # -- configuration ------------------------------------------------------------------------
    def _validate_params(self) -> None:
        super()._validate_params()
        p = self._params
        if int(p["bptt"]) == 0:
            raise ConfigError("hgru4rec: bptt = 0 (whole-session unrolling) is GRU4Rec's only: "
                              "HGRU4Rec's user-parallel lanes carry user states across session "
                              "boundaries, so sessions cannot be regrouped; use bptt = k > 1")
        if any(h < 1 for h in p["user_layers"]):
            raise ConfigError(f"hgru4rec: user_layers must be positive sizes, got "
                              f"{p['user_layers']}")
        if p["user_propagation"] not in PROPAGATIONS:
            raise ConfigError(f"hgru4rec: unknown user_propagation {p['user_propagation']!r}; "
                              f"valid: {', '.join(PROPAGATIONS)}")
        if not p["user_layers"] and (p["user_propagation"] == "all" or p["user_to_output"]):
            raise ConfigError("hgru4rec: user_propagation = 'all' and user_to_output need a "
                              "user level (user_layers is empty)")
        for key in ("dropout_p_hidden_usr", "dropout_p_init"):
            if not 0 <= float(p[key]) < 1:
                raise ConfigError(f"hgru4rec: {key} must lie in [0, 1), got {p[key]}")

    @property
    def _user_width(self) -> int:
        """Width of the user state's top layer (what sessions and the output see)."""
        user_layers = self._params["user_layers"]
        return user_layers[-1] if user_layers else 0

    def _build_net(self, n_items: int, device: str | None = None) -> HGRU4RecNet:
        p = self._params
        return HGRU4RecNet(n_items, p["layers"], p["user_layers"], self.input_mode,
                           int(p["embedding"]), user_to_output=bool(p["user_to_output"]),
                           propagate_all=p["user_propagation"] == "all",
                           dropout_p_embed=float(p["dropout_p_embed"]),
                           dropout_p_hidden=float(p["dropout_p_hidden"]),
                           dropout_p_hidden_usr=float(p["dropout_p_hidden_usr"]),
                           dropout_p_init=float(p["dropout_p_init"]), device=device)

    # -- the two levels (HGRU4RecNet; dropout follows its train() / eval() mode) --------------
    def _feed(self, hidden: Layers, user: Layers, items: torch.Tensor) -> Layers:
        """Session layers after clicking ``items`` (items unknown to the model: unchanged)."""
        known = (items >= 0) & (items < self.n_items_)
        all_known = bool(known.all())
        rows = self.net_.input_rows(items if all_known
                                    else items.clamp(0, self.n_items_ - 1))
        _, new = self.net_.session_step(rows, hidden, user)
        if all_known:
            return new
        return [torch.where(known.unsqueeze(1), a, b) for a, b in zip(new, hidden, strict=True)]

    def _start_sessions(self, hidden: Layers, user: Layers, session_start: np.ndarray,
                        user_start: np.ndarray, closing: torch.Tensor,
                        fresh_users: torch.Tensor | None) -> tuple[Layers, Layers]:
        """States after a step's session boundaries, before its input.

        A lane starting another session of its user first finishes the previous one: its last
        item ``closing[lane]`` is fed (no gradient), and the final top session layer goes
        through one user GRU step (with gradient). A lane starting a new user takes its row of
        ``fresh_users`` [n_user_start, user_state_size] (None: zeros). Every starting lane's
        session state then comes from its user state.
        """
        if not session_start.any():
            return hidden, user
        if user:
            carry_on = np.flatnonzero(session_start & ~user_start)
            if len(carry_on):
                idx = torch.from_numpy(carry_on)
                rows = [u.index_select(0, idx) for u in user]
                with torch.no_grad():
                    final = self._feed([h.index_select(0, idx) for h in hidden], rows,
                                       closing.index_select(0, idx))
                new = self.net_.user_step(final[-1], rows)
                user = [u.index_put((idx,), v) for u, v in zip(user, new, strict=True)]
            if user_start.any():
                idx = torch.from_numpy(np.flatnonzero(user_start))
                if fresh_users is None:
                    user = [u.index_fill(0, idx, 0.0) for u in user]
                else:
                    fresh = fresh_users.split(self._params["user_layers"], dim=1)
                    user = [u.index_put((idx,), v) for u, v in zip(user, fresh, strict=True)]
        idx = torch.from_numpy(np.flatnonzero(session_start))
        top = user[-1].index_select(0, idx) if user else torch.zeros((len(idx), 0))
        init = self.net_.session_init(top)
        hidden = [h.index_put((idx,), v) for h, v in zip(hidden, init, strict=True)]
        return hidden, user

    # -- training -----------------------------------------------------------------------------
    def _walk_plan(self, train: Sessions, sessions: np.ndarray) -> UserSchedule:
        return user_schedule(train.offsets, train.users, train.ts[train.offsets[:-1]])

    _shard_unit = "users"

    def _shard_units(self, plan: UserSchedule) -> int:
        return plan.n_users

    def _shard(self, plan: UserSchedule) -> UserSchedule:
        """This rank's share of the users (every ``world``-th user from ``rank``, users in
        order of their first session: each share spans the whole time range)."""
        rank, size = world()
        return plan.take(np.arange(rank, plan.n_users, size)) if size > 1 else plan

    def _plan_pairs(self, train: Sessions, plan: UserSchedule) -> int:
        return int(train.lengths[plan.sessions].sum()) - len(plan.sessions)

    def _train(self, train: Sessions, valid: Sessions | None, context: FitContext) -> None:
        super()._train(train, valid, context)
        t0 = time.perf_counter()
        self._remember_users(train)
        self.fit_stats_["users"] = len(self.user_ids_)
        self.fit_stats_["user_state_seconds"] = time.perf_counter() - t0

    def _epoch_steps(self, schedule: UserSchedule, offsets: np.ndarray, items: torch.Tensor,
                     sampler: NegativeSampler, updater: RowUpdates, loss_fn, log_counts,
                     ) -> Iterator[tuple[float, int]]:
        """Train one epoch over the users' histories; yields (summed loss, lanes) per step."""
        p = self._params
        step = self._row_stepper(updater, loss_fn, log_counts)
        n = min(self._lanes, schedule.n_users)
        hidden = [torch.zeros((n, h)) for h in p["layers"]]
        user = [torch.zeros((n, h)) for h in p["user_layers"]]
        closing = torch.zeros(n, dtype=torch.int64)  # each lane's previous target item
        min_lanes = 2 if int(p["n_sample"]) == 0 else 1
        for batch in user_parallel(offsets, schedule, self._lanes, min_lanes):
            if batch.keep is not None:
                keep = torch.from_numpy(batch.keep)
                hidden = [h.index_select(0, keep) for h in hidden]
                user = [u.index_select(0, keep) for u in user]
                closing = closing.index_select(0, keep)
            x_items = items[torch.from_numpy(batch.inputs)]
            y_items = items[torch.from_numpy(batch.targets)]

            def forward(x_in, hidden=hidden, user=user, batch=batch, closing=closing):
                hidden, user = self._start_sessions(hidden, user, batch.session_start,
                                                    batch.user_start, closing, None)
                out, new_hidden = self.net_.session_step(x_in, hidden, user)
                return out, (new_hidden, user)

            loss, (new_hidden, new_user) = step(x_items, y_items, sampler.draw(), forward)
            hidden = [h.detach() for h in new_hidden]
            user = [u.detach() for u in new_user]
            closing = y_items
            yield loss, len(x_items)

    def _unroll_walk(self, schedule: UserSchedule, offsets: np.ndarray, items: torch.Tensor,
                     ) -> tuple[Iterator[WalkStep], tuple[Layers, Layers, torch.Tensor]]:
        """The user-parallel walk as :class:`WalkStep` s (see :mod:`sessionrec.models.unroll`);
        the carried state is (session layers, user layers, each lane's previous target)."""
        p = self._params
        n = min(self._lanes, schedule.n_users)
        state = ([torch.zeros((n, h)) for h in p["layers"]],
                 [torch.zeros((n, h)) for h in p["user_layers"]],
                 torch.zeros(n, dtype=torch.int64))
        min_lanes = 2 if int(p["n_sample"]) == 0 else 1

        def walk() -> Iterator[WalkStep]:
            for batch in user_parallel(offsets, schedule, self._lanes, min_lanes):
                keep = None if batch.keep is None else torch.from_numpy(batch.keep)
                y_items = items[torch.from_numpy(batch.targets)]

                def advance(state, x_in: torch.Tensor, keep=keep, batch=batch,
                            y_items=y_items) -> Stepped:
                    hidden, user, closing = state
                    if keep is not None:
                        hidden = [h.index_select(0, keep) for h in hidden]
                        user = [u.index_select(0, keep) for u in user]
                        closing = closing.index_select(0, keep)
                    hidden, user = self._start_sessions(hidden, user, batch.session_start,
                                                        batch.user_start, closing, None)
                    out, new = self.net_.session_step(x_in, hidden, user)
                    return Stepped(out, (new, user, y_items), new[-1], hidden, user)

                yield WalkStep(items[torch.from_numpy(batch.inputs)], y_items, advance,
                               batch.session_start, keep)

        return walk(), state

    def free_step(self, x: torch.Tensor, hidden: Layers, context: Layers,
                  ) -> tuple[torch.Tensor, Layers, torch.Tensor]:
        out, new = self.net_.session_step(x, hidden, context)
        return out, new, new[-1]

    def _validation_mrr(self, train: Sessions, valid: Sessions) -> float:
        self.net_.eval()  # train_epoch sets train() again
        self._remember_users(train)  # validation sessions continue the training histories
        return super()._validation_mrr(train, valid)

    # -- user histories -----------------------------------------------------------------------
    def _remember_users(self, sessions: Sessions) -> None:
        ids, states = self._walk_histories(sessions, None)
        self.user_ids_, self.user_states_ = torch.from_numpy(ids), states

    @torch.no_grad()
    def _walk_histories(self, sessions: Sessions, known: tuple[np.ndarray, torch.Tensor] | None,
                        ) -> tuple[np.ndarray, torch.Tensor]:
        """User states after every known user's sessions in ``sessions`` (time order).

        Starts each user from zero, or from ``known`` (sorted ids, states) where listed.
        Returns sorted user ids and their states [n, user_state_size].
        """
        p = self._params
        uss = self.user_state_size
        first_ts = sessions.ts[sessions.offsets[:-1]] if sessions.n_sessions else None
        schedule = user_schedule(sessions.offsets, sessions.users, first_ts,
                                 known_users_only=True)
        if not p["user_layers"] or schedule.n_users == 0:
            ids = np.unique(schedule.users)
            return ids, torch.zeros((len(ids), uss))
        items = torch.from_numpy(sessions.items)
        n = min(int(p["eval_lanes"]), schedule.n_users)
        hidden = [torch.zeros((n, h)) for h in p["layers"]]
        user = [torch.zeros((n, h)) for h in p["user_layers"]]
        closing = torch.zeros(n, dtype=torch.int64)
        lane_users = np.zeros(n, dtype=np.int64)
        out_ids: list[np.ndarray] = []
        out_states: list[torch.Tensor] = []

        def finish(lanes: np.ndarray) -> None:
            """Store the user state of ``lanes`` after their user's last session."""
            if len(lanes):
                idx = torch.from_numpy(lanes)
                rows = [u.index_select(0, idx) for u in user]
                final = self._feed([h.index_select(0, idx) for h in hidden], rows,
                                   closing.index_select(0, idx))
                out_ids.append(lane_users[lanes])
                out_states.append(torch.cat(self.net_.user_step(final[-1], rows), dim=1))

        for step, batch in enumerate(user_parallel(sessions.offsets, schedule, n)):
            if batch.keep is not None:
                finish(np.setdiff1d(np.arange(len(lane_users)), batch.keep))
                keep = torch.from_numpy(batch.keep)
                hidden = [h.index_select(0, keep) for h in hidden]
                user = [u.index_select(0, keep) for u in user]
                closing = closing.index_select(0, keep)
                lane_users = lane_users[batch.keep]
            if step:
                finish(np.flatnonzero(batch.user_start))
            fresh = None
            if known is not None and batch.user_start.any():
                fresh = _lookup(known, batch.users[batch.user_start], uss)
            hidden, user = self._start_sessions(hidden, user, batch.session_start,
                                                batch.user_start, closing, fresh)
            hidden = self._feed(hidden, user, items[torch.from_numpy(batch.inputs)])
            closing = items[torch.from_numpy(batch.targets)]
            lane_users = batch.users
        finish(np.arange(len(lane_users)))
        ids = np.concatenate(out_ids)
        order = np.argsort(ids, kind="stable")
        return ids[order], torch.cat(out_states)[torch.from_numpy(order)]

    def extend_user_history(self, sessions: Sessions) -> HGRU4Rec:
        """Roll the stored user states on through ``sessions`` without training.

        Each known user's sessions (two or more events, in time order) are walked from the
        user's stored state (zeros for a new user), e.g. the validation split after a fit on
        train, so that test sessions start from the complete history. Returns ``self``.
        """
        self._check_fitted()
        known = (self.user_ids_.numpy(), self.user_states_)
        ids, states = self._walk_histories(sessions, known)
        if len(ids):
            old_ids, old_states = known
            stays = ~np.isin(old_ids, ids)
            all_ids = np.concatenate([old_ids[stays], ids])
            all_states = torch.cat([old_states[torch.from_numpy(stays)], states])
            order = np.argsort(all_ids, kind="stable")
            self.user_ids_ = torch.from_numpy(all_ids[order])
            self.user_states_ = all_states[torch.from_numpy(order)]
        return self

    def user_state_of(self, users: np.ndarray | list[int] | None, n: int = 0) -> torch.Tensor:
        """float32 [n, user_state_size]: the stored states of ``users`` (zeros for users not
        seen in training, for -1, and for all ``n`` rows when ``users`` is None)."""
        self._check_fitted()
        if users is None:
            return torch.zeros((n, self.user_state_size))
        return _lookup((self.user_ids_.numpy(), self.user_states_),
                       np.asarray(users, dtype=np.int64).reshape(-1), self.user_state_size)

    # -- persistence --------------------------------------------------------------------------
    def _state(self) -> dict[str, torch.Tensor]:
        return {**super()._state(), "users.ids": self.user_ids_,
                "users.states": self.user_states_}

    def _set_state(self, state: dict[str, torch.Tensor]) -> None:
        super()._set_state(state)
        ids, states = state.get("users.ids"), state.get("users.states")
        if (ids is None or states is None or states.dim() != 2 or len(ids) != len(states)
                or states.shape[1] != self.user_state_size):
            raise SessionRecError(
                "saved hgru4rec user states are missing or do not fit this model "
                f"(user_layers {self._params['user_layers']})")
        self.user_ids_ = ids.long()
        self.user_states_ = states.float().contiguous()

    # -- inference ----------------------------------------------------------------------------
    @property
    def state_size(self) -> int:
        """Floats in a session state: all session layers, then the top user layer."""
        return sum(self._params["layers"]) + self._user_width

    @property
    def user_state_size(self) -> int:
        """Floats in a user state (all user layers concatenated; 0 without a user level)."""
        return sum(self._params["user_layers"])

    def _split_session_state(self, state: torch.Tensor) -> tuple[Layers, torch.Tensor]:
        parts = state.split([*self._params["layers"], self._user_width], dim=1)
        return list(parts[:-1]), parts[-1]

    def initial_state(self, n: int) -> torch.Tensor:
        """float32 [n, state_size]: new sessions of users without history (zero user state)."""
        return self.session_start_state(torch.zeros((n, self.user_state_size)))

    @torch.no_grad()
    def session_start_state(self, user_state: torch.Tensor) -> torch.Tensor:
        """float32 [n, state_size]: the first state of a new session of each user."""
        self._check_fitted()
        user = list(user_state.float().split(self._params["user_layers"], dim=1))
        top = user[-1] if user else torch.zeros((len(user_state), 0))
        return torch.cat([*self.net_.session_init(top), top], dim=1)

    @torch.no_grad()
    def advance_user(self, user_state: torch.Tensor, session_state: torch.Tensor) -> torch.Tensor:
        """float32 [n, user_state_size]: user states after sessions that ended in
        ``session_state`` (the state after the session's last click)."""
        self._check_fitted()
        if not self._params["user_layers"]:
            return user_state.clone()
        hidden, _ = self._split_session_state(session_state.float())
        user = list(user_state.float().split(self._params["user_layers"], dim=1))
        return torch.cat(self.net_.user_step(hidden[-1], user), dim=1)

    def _advance_rows(self, state: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        hidden, top = self._split_session_state(state)
        user = [top] if self._user_width else []
        _, new = self.net_.session_step(rows, hidden, user)
        return torch.cat([*new, top], dim=1)

    def _output_input(self, state: torch.Tensor) -> torch.Tensor:
        layers = self._params["layers"]
        end = sum(layers) + (self._user_width if self._params["user_to_output"] else 0)
        return state[:, sum(layers) - layers[-1]:end]

    def _start_states(self, users: np.ndarray | None, n: int) -> torch.Tensor:
        return self.session_start_state(self.user_state_of(users, n))


def _lookup(known: tuple[np.ndarray, torch.Tensor], users: np.ndarray,
            size: int) -> torch.Tensor:
    """Rows of ``known`` = (sorted ids, states) for ``users``; zeros where not listed."""
    ids, states = known
    out = torch.zeros((len(users), size))
    if len(ids) and len(users):
        pos = np.searchsorted(ids, users).clip(max=len(ids) - 1)
        hit = np.flatnonzero((ids[pos] == users) & (users >= 0))
        if len(hit):
            out[torch.from_numpy(hit)] = states[torch.from_numpy(pos[hit])]
    return out
