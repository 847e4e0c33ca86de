"""Is a loaded model fit to serve? Checked at start-up, at every reload, and on every answer.

At load (:func:`check_model`): every saved tensor is finite, and a smoke test scores all items
for a few sessions (fresh sessions after one click on each of a few items) and finds finite
scores and at least one item that may be recommended. A model that fails is refused with
:class:`ModelUnhealthy` naming what is wrong: ``sessionrec serve`` does not start, and
``/admin/reload`` answers 400 while the previous model keeps serving.

Live (:func:`answer_problem`): a step whose new state is not finite, or that ranks fewer items
than it could, is a degraded model: the middleware answers from the fallback
(``fallback: true``, ``reason: model_unhealthy``), keeps the session's previous state and marks
the bundle so that ``/readyz`` reports not ready until a healthy model is loaded.
"""

from __future__ import annotations

import numpy as np
import torch

from sessionrec.errors import SessionRecError

SMOKE_ITEMS = 8  # sessions of the smoke test (one click each)
MAX_CAUSE = 300  # characters of an underlying error quoted in a load error


class ModelUnhealthy(SessionRecError):
    """A model that loads but cannot answer: non-finite weights or scores, nothing to rank."""


class ModelLoadError(SessionRecError):
    """A model directory that cannot be loaded (truncated, wrong format, foreign params...)."""


def cause(err: BaseException) -> str:
    """``Type: message`` of an underlying error, shortened to one line."""
    text = " ".join(str(err).split())
    if len(text) > MAX_CAUSE:
        text = text[:MAX_CAUSE] + "..."
    return f"{type(err).__name__}: {text}" if text else type(err).__name__


def saved_tensors(model) -> dict[str, torch.Tensor]:
    """The model's learned tensors (popularity and what its ``_state()`` saves)."""
    out = {}
    popularity = getattr(model, "popularity_", None)
    if isinstance(popularity, torch.Tensor):
        out["popularity_"] = popularity
    state = getattr(model, "_state", None)
    if callable(state):
        out.update({k: v for k, v in state().items() if isinstance(v, torch.Tensor)})
    return out


def nonfinite_tensors(tensors: dict[str, torch.Tensor]) -> list[str]:
    """Names of the floating-point tensors holding NaN or an infinity, in name order."""
    return sorted(name for name, t in tensors.items()
                  if t.is_floating_point() and not bool(torch.isfinite(t).all()))


def smoke_items(popularity: np.ndarray, n: int = SMOKE_ITEMS) -> np.ndarray:
    """The items of the smoke test: the most popular ones and the first ones, ``n`` at most."""
    n_items = len(popularity)
    top = np.argsort(-np.asarray(popularity, dtype=np.float64), kind="stable")[: n // 2]
    first = np.arange(min(n_items, n - len(top)))
    return np.unique(np.concatenate([top, first]).astype(np.int64))


def check_model(step, popularity: np.ndarray, where: str) -> None:
    """Raise :class:`ModelUnhealthy` unless the model of ``step`` can answer (module doc)."""
    bad = nonfinite_tensors(saved_tensors(step.recommender))
    if bad:
        raise ModelUnhealthy(f"model in {where}: weights hold NaN or infinite values "
                             f"({', '.join(bad[:10])}); retrain it or load another run")
    if len(step.blocked) >= step.n_items:
        raise ModelUnhealthy(f"model in {where}: all {step.n_items} items are blocked, it "
                             "could never recommend anything")
    items = smoke_items(popularity)
    with torch.inference_mode():
        states = torch.from_numpy(step.start_states(None, len(items)))
        if step.has_user_state:
            zeros = np.zeros((len(items), step.user_state_size), dtype=np.float32)
            states = torch.cat([states, torch.from_numpy(step.start_states(zeros, len(items)))])
            items = np.concatenate([items, items])
        new = step.model.advance(states, torch.from_numpy(items))
        scores = step.model.scores_from_state(new)
    if not bool(torch.isfinite(new).all()):
        raise ModelUnhealthy(f"model in {where}: session states turn NaN or infinite after one "
                             "click (smoke test); the model cannot be served")
    finite = torch.isfinite(scores)
    if not bool(finite.all()):
        rows = int((~finite.all(dim=1)).sum())
        raise ModelUnhealthy(f"model in {where}: scores are NaN or infinite for {rows} of "
                             f"{len(items)} smoke-test sessions; the model cannot be served")


def answer_problem(state: np.ndarray, n_ranked: int, k: int, n_allowed: int) -> str | None:
    """Why one step's answer shows a degraded model (``None`` when it looks fine).

    ``n_ranked``: items with finite scores in the top-k; ``n_allowed``: items that were not
    excluded (blocked or seen), so ``min(k, n_allowed)`` is what a healthy model ranks.
    """
    if not np.isfinite(state).all():
        return "the session state became NaN or infinite"
    if n_ranked < min(k, n_allowed):
        return f"ranked {n_ranked} of {min(k, n_allowed)} items (non-finite scores)"
    return None
