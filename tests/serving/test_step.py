"""The model step, its batching and the fallback recommender, with hand-computed answers."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
import torch

from sessionrec.errors import SessionRecError
from sessionrec.models.baselines.pop import Popularity
from sessionrec.serving.batcher import StepBatcher
from sessionrec.serving.fallback import Fallback
from sessionrec.serving.step import ModelStep, SimilarItems

from .helpers import COOC, POPULARITY, E, TinyRNN, TinyUserRNN, run

NONE = np.zeros(0, dtype=np.int64)


def test_step_advances_and_ranks_by_hand():
    step = ModelStep(TinyRNN())
    states = np.zeros((2, 2), np.float32)
    states[1] = [1.0, 0.0]  # the second session clicked item 0 before
    new, top, scores = step.step(states, np.array([0, 1]), k=4, exclude=[NONE, NONE])
    np.testing.assert_allclose(new, [[1.0, 0.0], [0.5, 1.0]])
    assert top.tolist() == [[2, 0, 1, 3], [2, 1, 0, 3]]  # [1, .1, 1.2, -1], [.5, 1.1, 1.7, -.5]
    np.testing.assert_allclose(scores, [[1.2, 1.0, 0.1, -1.0], [1.7, 1.1, 0.5, -0.5]],
                               rtol=1e-6)


def test_step_without_click_keeps_the_state():
    step = ModelStep(TinyRNN())
    new, top, _ = step.step(np.array([[0.5, 1.0]], np.float32), np.array([-1]), k=2)
    assert new.tolist() == [[0.5, 1.0]] and top.tolist() == [[2, 1]]


def test_step_filters_blocked_and_seen_items():
    step = ModelStep(TinyRNN(), blocked=np.array([2]))
    _, top, scores = step.step(np.zeros((1, 2), np.float32), np.array([0]), k=4,
                               exclude=[np.array([0])])
    # scores [1, .1, 1.2, -1]: 2 is blocked, 0 was seen -> 1, 3, then two -inf slots
    assert top[0, :2].tolist() == [1, 3]
    assert np.isinf(scores[0, 2:]).all()


def test_step_clips_k_and_refuses_k_below_one():
    step = ModelStep(TinyRNN())
    _, top, _ = step.step(np.zeros((1, 2), np.float32), np.array([0]), k=50)
    assert top.shape == (1, 4)
    with pytest.raises(SessionRecError, match="k must be at least 1"):
        step.step(np.zeros((1, 2), np.float32), np.array([0]), k=0)


def test_models_without_recurrent_state_step_through_a_window_of_items():
    from sessionrec.data.sessions import Sessions

    pop = Popularity().fit(Sessions.from_lists([[0, 1, 1, 1], [2, 2]], 4))  # counts 1, 3, 2, 0
    step = ModelStep(pop, prefix_items=2)
    assert step.kind == "prefix" and step.state_size == 2
    states = step.start_states(None, 1)
    np.testing.assert_array_equal(states, [[-1.0, -1.0]])
    for item in (3, 2, 0):
        states, top, _ = step.step(states, np.array([item]), k=2)
    np.testing.assert_array_equal(states, [[2.0, 0.0]])
    assert top.tolist() == [[1, 2]]  # by popularity


def test_unservable_objects_are_refused():
    with pytest.raises(SessionRecError, match="cannot be served"):
        ModelStep(object())


def test_a_user_state_is_declared_by_the_whole_protocol():
    model = TinyRNN()
    model.user_state_size = 2  # but no session_start_state / advance_user: not UserStateful
    assert not ModelStep(model).has_user_state


def test_user_state_hooks():
    step = ModelStep(TinyUserRNN())
    assert step.has_user_state and step.user_state_size == 2
    assert not ModelStep(TinyRNN()).has_user_state
    users = np.array([[0.5, 1.0]], np.float32)
    assert step.start_states(users, 1).tolist() == [[0.5, 1.0]]
    assert step.start_states(None, 2).tolist() == [[0, 0], [0, 0]]
    after = step.advance_users(users, np.array([[1.0, -1.0]], np.float32))
    assert after.tolist() == [[1.25, -0.5]]  # 0.5 u + s


def test_similar_items_by_cosine():
    similar = SimilarItems(E, torch.tensor([], dtype=torch.int64))
    top, sims = similar.topk(0, 3)  # E0 = [1, 0]: cos with [0,1], [1,1], [-1,0] = 0, .707, -1
    assert top.tolist() == [2, 1, 3]
    np.testing.assert_allclose(sims, [2**-0.5, 0.0, -1.0], atol=1e-6)
    blocked = SimilarItems(E, torch.tensor([2]))
    assert blocked.topk(0, 5)[0].tolist() == [1, 3]  # never itself nor a blocked item


@pytest.mark.parametrize("threaded", [False, True])
def test_batcher_computes_concurrent_steps_together(threaded):
    sizes = []

    async def go():
        batcher = StepBatcher(max_batch=8, on_batch=sizes.append, threaded=threaded)
        step = ModelStep(TinyRNN())
        jobs = [batcher.submit(step, None, None, i % 4, 2, NONE) for i in range(5)]
        jobs.append(batcher.submit(step, np.array([1.0, 0.0], np.float32), None, 1, 3,
                                   np.array([0, 1])))
        results = await asyncio.gather(*jobs)
        batcher.close()
        return results

    results = run(go())
    assert sizes == [6]  # submitted before the loop ran the batch: one batch
    assert results[0].state.tolist() == [1.0, 0.0] and results[0].items.tolist() == [2, 0]
    assert results[3].state.tolist() == [-1.0, 0.0] and results[3].items.tolist() == [3, 1]
    last = results[5]  # state [0.5, 1]: scores [.5, 1.1, 1.7, -.5], items 0 and 1 excluded
    assert last.state.tolist() == [0.5, 1.0]
    assert last.items.tolist() == [2, 3]
    np.testing.assert_allclose(last.scores, [1.7, -0.5], rtol=1e-6)


def test_batcher_starts_user_sessions_from_the_user_state():
    async def go():
        batcher = StepBatcher()
        step = ModelStep(TinyUserRNN())
        result = await batcher.submit(step, None, np.array([0.5, 1.0], np.float32), 3, 2, NONE)
        batcher.close()
        return result

    # 0.5 * [0.5, 1] + E3 = [-0.75, 0.5]
    assert run(go()).state.tolist() == [-0.75, 0.5]


@pytest.mark.parametrize("threaded", [False, True])
def test_batcher_fails_the_batch_when_the_model_fails_and_keeps_running(threaded):
    async def go():
        batcher = StepBatcher(threaded=threaded)
        with pytest.raises(RuntimeError, match="told to fail"):
            await batcher.submit(ModelStep(TinyRNN(fail=True)), None, None, 0, 2, NONE)
        ok = await batcher.submit(ModelStep(TinyRNN()), None, None, 0, 2, NONE)
        batcher.close()
        return ok

    assert run(go()).items.tolist() == [2, 0]


def test_fallback_ranks_cooccurrence_then_popularity():
    fb = Fallback(POPULARITY.numpy(), COOC, name="cooc")
    # row 0: item 1 (3 sessions), item 3 (1); then popularity 11, 13, 10, 12 minus taken
    assert fb.topk(0, 4).tolist() == [1, 3, 2]  # never the item itself
    assert fb.topk(0, 1).tolist() == [1]
    assert fb.topk(2, 3, exclude=np.array([1])).tolist() == [3, 0]
    assert fb.topk(-1, 2).tolist() == [1, 3]  # no known item: popularity


def test_fallback_without_matrix_is_popularity_and_skips_blocked():
    fb = Fallback(POPULARITY.numpy(), None, blocked=np.array([3]))
    assert fb.name == "pop"
    assert fb.topk(0, 4).tolist() == [1, 2]  # 1 then (3 blocked) (0 is the item) 2
