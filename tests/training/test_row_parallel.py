"""Row-wise updates summed over the ranks of a process group (gloo, two local processes)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from sessionrec.data.sessions import Sessions
from sessionrec.errors import SessionRecError
from sessionrec.models.gru4rec import GRU4Rec
from sessionrec.models.hgru4rec import HGRU4Rec
from sessionrec.training.distributed import launch, world
from sessionrec.training.optim import RowOptimizer
from sessionrec.training.row_parallel import RowUpdates
from tests.models.cyclic import cyclic


def _params() -> dict[str, torch.Tensor]:
    return {"D": torch.full((2, 2), 0.5), "U": torch.zeros(3),
            "T": torch.arange(15.0).view(5, 3)}


def _optimizer(params: dict[str, torch.Tensor]) -> RowOptimizer:
    return RowOptimizer(params, "adagrad", lr=0.1, momentum=0.5)


# Rank 0: D's gradient 1, rows 0 and 2 of T; rank 1: D's gradient 2, U's gradient, rows 2
# and 4 of T.
ROWS = {0: [0, 2], 1: [2, 4]}


def _row_grads(rank: int) -> torch.Tensor:
    return torch.arange(6.0).view(2, 3) + 10 * rank


def _two_ranks_apply(out: str) -> None:
    rank = world()[0]
    params = _params()
    opt = _optimizer(params)
    updater = RowUpdates(opt, ["D", "U"], ["T"])
    params["D"].grad = torch.full((2, 2), float(rank + 1))
    if rank == 1:
        params["U"].grad = torch.tensor([1.0, -1.0, 2.0])
    updater.apply([("T", torch.tensor(ROWS[rank]), _row_grads(rank))])
    if rank == 0:  # a second step on rank 0 alone: rank 1 has finished its walk
        params["D"].grad = torch.ones((2, 2))
        updater.apply([("T", torch.tensor([1]), torch.ones((1, 3)))])
    updater.finish()
    torch.save({"params": params, "opt": opt.state_dict(), "steps": updater.steps},
               Path(out) / f"rank{rank}.pt")


def test_ranks_apply_the_summed_update_and_a_finished_rank_follows(tmp_path):
    launch(2, _two_ranks_apply, (str(tmp_path),), device="cpu")
    got = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1)]
    for name in ("D", "U", "T"):  # replicas are identical
        assert torch.equal(got[0]["params"][name], got[1]["params"][name])
    assert got[0]["steps"] == got[1]["steps"] == 2

    # The same two updates in one process: step 1 with the sums (row 2 gets both ranks'
    # gradients; U only rank 1's), step 2 with rank 0's alone (U gets no update: no rank
    # had a gradient for it, so its momentum is not applied again).
    params = _params()
    opt = _optimizer(params)
    params["D"].grad = torch.full((2, 2), 3.0)
    params["U"].grad = torch.tensor([1.0, -1.0, 2.0])
    opt.step()
    g0, g1 = _row_grads(0), _row_grads(1)
    opt.step_rows("T", torch.tensor([0, 2, 4]), torch.stack([g0[0], g0[1] + g1[0], g1[1]]))
    opt.zero_grad()
    params["D"].grad = torch.ones((2, 2))
    opt.step()
    opt.step_rows("T", torch.tensor([1]), torch.ones((1, 3)))
    for name in ("D", "U", "T"):
        torch.testing.assert_close(got[0]["params"][name], params[name], rtol=0, atol=1e-6)
    for key, value in opt.state_dict().items():
        torch.testing.assert_close(got[1]["opt"][key], value, rtol=0, atol=1e-6)


def test_one_process_applies_the_dense_then_the_row_updates():
    params = _params()
    opt = _optimizer(params)
    params["D"].grad = torch.ones((2, 2))
    updater = RowUpdates(opt, ["D", "U"], ["T"])
    assert not updater.parallel
    updater.apply([("T", torch.tensor([3]), torch.ones((1, 3)))])
    updater.finish()  # nothing to wait for
    step = 0.1 / (1 + 1e-6) ** 0.5
    torch.testing.assert_close(params["D"], torch.full((2, 2), 0.5 - step))
    assert torch.equal(params["U"], torch.zeros(3))
    torch.testing.assert_close(params["T"][3], torch.tensor([9.0, 10.0, 11.0]) - step)
    assert torch.equal(params["T"][:3], torch.arange(9.0).view(3, 3))


def _sessions() -> Sessions:
    """60 cyclic sessions of 10 users (6 each, in time order)."""
    base = cyclic(60, seed=3)
    users = np.arange(60, dtype=np.int64) % 10
    return Sessions(base.items, base.offsets, base.ts, users, base.session_ids, base.n_items,
                    base.vocab)


GRU = dict(layers=[8], batch_size=4, n_sample=6, n_epochs=2, learning_rate=0.1, momentum=0.1,
           dropout_p_hidden=0.1, seed=3, threads=1, progress=False)


def _fit_on_two_ranks(cls_name: str, params: dict, out: str) -> None:
    cls = {"gru4rec": GRU4Rec, "hgru4rec": HGRU4Rec}[cls_name]
    model = cls(**params).fit(_sessions())
    torch.save({k: v.clone() for k, v in model._state().items()} | {
        "events": torch.tensor(model.fit_stats_["events"]),
        "world_size": torch.tensor(model.fit_stats_["world_size"])},
        Path(out) / f"rank{world()[0]}.pt")


@pytest.mark.parametrize("cls_name, extra", [
    ("gru4rec", {}),
    ("gru4rec", {"bptt": 3, "grad_clip": 1.0, "constrained_embedding": False,
                 "embedding": 6}),
    ("hgru4rec", {"user_layers": [8]}),
])
def test_data_parallel_fits_keep_every_replica_identical(tmp_path, cls_name, extra):
    launch(2, _fit_on_two_ranks, (cls_name, {**GRU, **extra}, str(tmp_path)), device="cpu")
    a, b = (torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1))
    assert set(a) == set(b)
    for key in a:
        assert torch.equal(a[key], b[key]), key
    assert int(a["world_size"]) == 2
    single = {"gru4rec": GRU4Rec, "hgru4rec": HGRU4Rec}[cls_name](**GRU, **extra)
    single.fit(_sessions())
    # Trained, and not the one-process trajectory (each rank sees half the lanes).
    assert any(not torch.equal(v, a[k]) for k, v in single._state().items())


def _first_negatives(params: dict, out: str) -> None:
    from sessionrec.batching.negatives import NegativeSampler

    drawn: list[torch.Tensor] = []
    draw = NegativeSampler.draw

    def record(self):
        sample = draw(self)
        drawn.append(sample.clone())
        return sample

    NegativeSampler.draw = record
    GRU4Rec(**params).fit(_sessions())
    torch.save(torch.stack(drawn[:5]), Path(out) / f"rank{world()[0]}.pt")


def test_every_rank_draws_the_same_negatives_at_each_step(tmp_path):
    # The ranks' walks differ in length; their negative samples must not (one shared set per
    # step, as in one process). max_steps keeps both ranks walking for every recorded step.
    launch(2, _first_negatives, ({**GRU, "max_steps": 5, "n_epochs": 1}, str(tmp_path)),
           device="cpu")
    a, b = (torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1))
    assert a.shape == (5, GRU["n_sample"]) and torch.equal(a, b)


def _fit_refused(params: dict) -> None:
    GRU4Rec(**params).fit(_sessions())


@pytest.mark.parametrize("extra, message", [
    ({"pf_weight": 0.5, "bptt": 3}, "pf_weight > 0"),
    ({"batch_size": 1}, "batch_size 1: every rank needs a lane"),
])
def test_what_data_parallel_training_does_not_do_is_refused_naming_it(extra, message):
    with pytest.raises(SessionRecError, match=message):
        launch(2, _fit_refused, ({**GRU, **extra},), device="cpu")


def _fit_for_steps(params: dict, out: str) -> None:
    model = GRU4Rec(**params).fit(_sessions())
    torch.save({"steps": torch.tensor(model.fit_stats_["steps"]),
                "epochs": torch.tensor(model.fit_stats_["epochs"]),
                "Wy": model._state()["w.Wy"]}, Path(out) / f"rank{world()[0]}.pt")


def test_max_steps_cuts_every_rank_at_the_same_update(tmp_path):
    # 60 sessions of 2-6 clicks, 2 lanes per rank: an epoch is fewer than 70 updates and two
    # are more, so the limit falls in the second epoch, on both ranks alike.
    launch(2, _fit_for_steps, ({**GRU, "max_steps": 70, "n_epochs": 5}, str(tmp_path)),
           device="cpu")
    a, b = (torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1))
    assert int(a["steps"]) == int(b["steps"]) == 70
    assert int(a["epochs"]) == int(b["epochs"]) == 2
    assert torch.equal(a["Wy"], b["Wy"])


def _fit_tiny(cls_name: str) -> None:
    # two sessions of one user: two ranks can share the sessions, not the users
    sessions = Sessions.from_lists([[0, 1, 2], [2, 3]], 4, users=[7, 7])
    {"gru4rec": GRU4Rec, "hgru4rec": HGRU4Rec}[cls_name](**GRU).fit(sessions)


def test_data_too_small_to_share_is_refused_naming_the_unit():
    launch(2, _fit_tiny, ("gru4rec",), device="cpu")  # 2 sessions for 2 ranks: fine
    with pytest.raises(SessionRecError, match="1 training users cannot be shared among 2 "
                                              "processes"):
        launch(2, _fit_tiny, ("hgru4rec",), device="cpu")


def test_a_user_schedule_is_shared_by_whole_users():
    from sessionrec.batching.user_parallel import user_schedule

    s = _sessions()
    schedule = user_schedule(s.offsets, s.users, s.ts[s.offsets[:-1]])
    halves = [schedule.take(np.arange(r, schedule.n_users, 2)) for r in (0, 1)]
    assert sorted(np.concatenate([h.sessions for h in halves]).tolist()) == \
        sorted(schedule.sessions.tolist())
    for h in halves:
        for u in range(h.n_users):
            mine = h.sessions[h.user_offsets[u]:h.user_offsets[u + 1]]
            assert (s.users[mine] == h.users[u]).all()
            assert (np.diff(s.ts[s.offsets[mine]]) >= 0).all()  # still in time order
