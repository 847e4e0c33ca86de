"""The ``next-n`` protocol: predict the next ``n`` clicks of a session from a prefix.

For every prefix of a test session (its first ``t`` events, ``t >= 1``) the model is put in
the state after the prefix (true clicks) and then **runs free**: horizon 1 is the ordinary
next-item prediction; its top-1 item is fed back as the next click, and the scores after it
predict event ``t + 2`` (horizon 2), and so on up to ``max_horizon``. A case at horizon
``h`` exists when the session has an event ``t + h``; its rank is that event's item among
*all* training items (pessimistic ties by default, as the next-item protocol), so Recall@K and
MRR@K at each horizon are full-ranking figures. Nothing of the session after the prefix is fed
to the model: the future clicks are only targets.

Free-running needs a recurrent session state
(:class:`~sessionrec.models.capabilities.RecurrentStep`); a user-aware model
(:class:`~sessionrec.models.capabilities.UserStateful` with
:class:`~sessionrec.models.capabilities.LearnedUserStates`) starts each session from its user's
learned state, as the next-item protocol does. Items of a prefix unknown to the model leave the
state unchanged; targets unknown to the model cannot be ranked and are dropped (counted).

Results keep every case's rank, test session and prefix length, so two models line up case by
case for paired bootstraps, and accuracy by position (prefix length) comes for every horizon.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from sessionrec.data.sessions import Sessions
from sessionrec.errors import ConfigError, DataError
from sessionrec.evaluation.metrics import RANK_METRICS, TieMode, check_ties, ranks_from_scores
from sessionrec.models.capabilities import LearnedUserStates, RecurrentStep, UserStateful


@dataclass
class NextNResult:
    """Ranks of every (prefix, horizon) case of a next-n evaluation.

    Attributes:
        horizon: int64 [N] 1..max_horizon of each case.
        prefix_end: int64 [N] global test event index of the prefix's last event.
        sessions: int64 [N] test-session index (cluster for bootstraps).
        positions: int64 [N] prefix length (events fed before free-running).
        ranks: float64 [N] rank of the target (1 = top).
    """

    ks: tuple[int, ...]
    max_horizon: int
    ties: str
    horizon: np.ndarray
    prefix_end: np.ndarray
    sessions: np.ndarray
    positions: np.ndarray
    ranks: np.ndarray
    dropped_unknown_targets: int
    seconds: float
    by_position_max: int = 10

    def metrics(self) -> dict[str, float]:
        """``"h2/recall@20"`` etc.: means over the cases of each horizon."""
        out: dict[str, float] = {}
        for h in range(1, self.max_horizon + 1):
            out.update(_means(self.ranks[self.horizon == h], self.ks, f"h{h}/"))
        return out

    def counts(self) -> dict[str, int]:
        return {f"h{h}": int((self.horizon == h).sum()) for h in range(1, self.max_horizon + 1)}

    def by_position(self) -> dict[str, dict[str, dict[str, float]]]:
        """Per horizon, the metrics by prefix length ``"1"``, ..., ``"<max>+"``."""
        out: dict[str, dict[str, dict[str, float]]] = {}
        top = self.by_position_max
        for h in range(1, self.max_horizon + 1):
            at_h = self.horizon == h
            rows: dict[str, dict[str, float]] = {}
            for p in range(1, top + 1):
                mask = at_h & ((self.positions >= p) if p == top else (self.positions == p))
                if mask.any():
                    rows[f"{p}+" if p == top else str(p)] = {
                        "n": int(mask.sum()), **_means(self.ranks[mask], self.ks, "")}
            out[f"h{h}"] = rows
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"protocol": "next-n", "ties": self.ties, "max_horizon": self.max_horizon,
                "n_cases": self.counts(), "metrics": self.metrics(),
                "by_position": self.by_position(),
                "dropped_unknown_targets": self.dropped_unknown_targets,
                "seconds": self.seconds}


def _means(ranks: np.ndarray, ks: tuple[int, ...], prefix: str) -> dict[str, float]:
    if len(ranks) == 0:
        return {}
    return {f"{prefix}{name}@{k}": float(fn(ranks, k).mean())
            for k in ks for name, fn in RANK_METRICS.items() if name in ("recall", "mrr")}


def _start_states(model: Any, test: Sessions, sessions: np.ndarray) -> torch.Tensor:
    if isinstance(model, UserStateful) and isinstance(model, LearnedUserStates):
        return model.session_start_state(model.user_state_of(test.users[sessions]))
    return model.initial_state(len(sessions))


def prefix_cases(test: Sessions) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every prefix with at least one event after it: (last event index, session, length)."""
    pos = test.position_in_session()
    session = test.session_of_event()
    ends = np.flatnonzero(test.offsets[1:][session] - 1 > np.arange(test.n_events))
    return ends.astype(np.int64), session[ends].astype(np.int64), (pos[ends] + 1).astype(np.int64)


@torch.no_grad()
def evaluate_next_n(model: Any, test: Sessions, max_horizon: int = 5,
                    ks: tuple[int, ...] = (5, 10, 20), ties: TieMode = "pessimistic",
                    batch_size: int = 256, by_position_max: int = 10) -> NextNResult:
    """Evaluate ``model`` under the next-n protocol (see the module docstring).

    Raises:
        ConfigError: the model has no recurrent state, or ``max_horizon`` / ``ks`` are bad.
        DataError: no test session has two or more events.
    """
    if not isinstance(model, RecurrentStep):
        raise ConfigError(f"next-n needs a model with a recurrent session state to run free; "
                          f"{getattr(model, 'name', type(model).__name__)} has none")
    if int(max_horizon) < 1:
        raise ConfigError(f"next-n: max_horizon must be at least 1, got {max_horizon}")
    ks = tuple(sorted({int(k) for k in ks}))
    if not ks or ks[0] < 1:
        raise ConfigError(f"next-n: cut-offs ks must be integers >= 1, got {ks}")
    check_ties(ties)
    n_items = int(model.n_items_)
    ends, sess, length = prefix_cases(test)
    if len(ends) == 0:
        raise DataError("next-n: no test session has two or more events")
    t0 = time.perf_counter()
    # The state after every prefix, walking each test session once (session-major order).
    states = torch.empty((len(ends), model.state_size))
    items = torch.from_numpy(test.items)
    starts = test.offsets[:-1]
    for lo in range(0, test.n_sessions, batch_size):
        block = np.arange(lo, min(lo + batch_size, test.n_sessions))
        block = block[test.lengths[block] >= 2]
        if len(block) == 0:
            continue
        state = _start_states(model, test, block)
        for t in range(int(test.lengths[block].max()) - 1):
            live = np.flatnonzero(test.lengths[block] - 1 > t)
            idx = torch.from_numpy(live)
            ev = starts[block[live]] + t
            state[idx] = model.advance(state[idx], items[torch.from_numpy(ev)])
            states[torch.from_numpy(np.searchsorted(ends, ev))] = state[idx]
    out_h, out_i, out_r = [], [], []
    remaining = test.offsets[1:][sess] - 1 - ends  # events after each prefix
    dropped = 0
    for lo in range(0, len(ends), batch_size):
        sl = slice(lo, lo + batch_size)
        state, rem, end = states[sl], remaining[sl], ends[sl]
        case = np.arange(lo, lo + len(end))
        for h in range(1, int(max_horizon) + 1):
            live = np.flatnonzero(rem >= h)
            if len(live) == 0:
                break
            if len(live) < len(rem):
                state, rem, end, case = (state[torch.from_numpy(live)], rem[live], end[live],
                                         case[live])
            scores = model.scores_from_state(state)
            target = items[torch.from_numpy(end + h)]
            known = ((target >= 0) & (target < n_items)).numpy()
            dropped += int((~known).sum())
            if known.any():
                k = torch.from_numpy(np.flatnonzero(known))
                out_r.append(ranks_from_scores(scores[k], target[k], ties).numpy())
                out_h.append(np.full(int(known.sum()), h, dtype=np.int64))
                out_i.append(case[known])
            if h < max_horizon:
                state = model.advance(state, scores.argmax(dim=1))
    case_idx = np.concatenate(out_i)
    return NextNResult(ks=ks, max_horizon=int(max_horizon), ties=ties,
                       horizon=np.concatenate(out_h), prefix_end=ends[case_idx],
                       sessions=sess[case_idx], positions=length[case_idx],
                       ranks=np.concatenate(out_r).astype(np.float64),
                       dropped_unknown_targets=dropped, seconds=time.perf_counter() - t0,
                       by_position_max=int(by_position_max))


NEXT_N_JSON, NEXT_N_RANKS = "next_n.json", "next_n_ranks.parquet"


def next_n_run(run_dir: str | Path, data_dir: str | Path, max_horizon: int = 5,
               ks: tuple[int, ...] = (5, 10, 20)) -> NextNResult:
    """Evaluate the model saved in ``run_dir/model`` on the test split of ``data_dir`` and
    write ``next_n.json`` (metrics) and ``next_n_ranks.parquet`` (every case) beside the
    run's metrics, each written to a temporary file and renamed."""
    import polars as pl

    from sessionrec.models.base import SessionRecommender
    from sessionrec.runs import load_splits

    run_dir = Path(run_dir)
    if not (run_dir / "model").is_dir():
        raise DataError("not a run directory with a saved model (no model/ folder)",
                        path=str(run_dir))
    splits = load_splits(Path(data_dir))
    model = SessionRecommender.load(run_dir / "model", splits.train.vocab)
    res = evaluate_next_n(model, splits.test, max_horizon=max_horizon, ks=ks)
    tmp = run_dir / (NEXT_N_RANKS + ".tmp")
    pl.DataFrame({"horizon": res.horizon, "prefix_end": res.prefix_end,
                  "session": res.sessions, "position": res.positions,
                  "rank": res.ranks}).write_parquet(tmp)
    tmp.replace(run_dir / NEXT_N_RANKS)
    tmp = run_dir / (NEXT_N_JSON + ".tmp")
    tmp.write_text(json.dumps(res.to_dict(), indent=1), encoding="utf-8")
    tmp.replace(run_dir / NEXT_N_JSON)
    return res
