"""The recommender contract every model implements (sklearn / implicit style).

* ``__init__`` stores hyper-parameters only (keyword arguments, JSON-serialisable).
* ``fit(train, valid=None) -> self`` learns attributes whose names end in ``_``.
* ``score(prefixes, users=None)`` gives a float32 score for *every* item for each session
  prefix: the evaluator ranks the full catalogue with it.
* ``recommend(prefixes, k)`` returns the top-k item indices and scores.
* optionally ``_score_sparse(prefixes, users)``: the same scores as ``_score`` as
  :class:`~sessionrec.models.scores.SparseScores` (a shared fill plus a few listed entries per
  prefix), for models that score few items (kNN, rules) or one vector for all (most-popular);
  the evaluator then ranks without dense score matrices (see :meth:`score_blocks`).
* ``save(dir)`` / ``load(dir)`` use JSON for the config and weights-only tensors
  (``torch.load(weights_only=True)``); never pickle.

Input handling, documented once for all models:

* item indices outside ``[0, n_items)`` in a prefix (unknown items) are dropped from it;
* an empty prefix (or one that only had unknown items) gets the training popularity scores;
* ``k`` larger than the catalogue is clipped to ``n_items``; ``k < 1`` is an error.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np
import torch

from sessionrec.data.sessions import Sessions
from sessionrec.errors import ConfigError, NotFittedError, SessionRecError, valid_choices
from sessionrec.models.scores import SparseScores
from sessionrec.training.context import FitContext

CONFIG_FILE = "model.json"
# Predictions per SparseScores block of score_blocks: memory follows the listed entries, not
# rows x n_items, and the kNN models search neighbours faster in large batches.
SPARSE_BATCH = 4096
WEIGHTS_FILE = "weights.pt"

_MODELS: dict[str, type[SessionRecommender]] = {}


def register_model(cls: type[SessionRecommender]) -> type[SessionRecommender]:
    """Class decorator: make ``cls`` available by its ``name`` to configs and ``load``."""
    if cls.name in _MODELS and _MODELS[cls.name] is not cls:
        raise ValueError(f"model name {cls.name!r} registered twice")
    _MODELS[cls.name] = cls
    return cls


def get_model_class(name: str) -> type[SessionRecommender]:
    """The model class registered as ``name``; ConfigError listing the choices otherwise."""
    import sessionrec.models.registry  # noqa: F401  (imports every model module)

    try:
        return _MODELS[name]
    except KeyError:
        raise ConfigError(f"unknown model {name!r}; {valid_choices(name, _MODELS)}") from None


def all_models() -> dict[str, type[SessionRecommender]]:
    import sessionrec.models.registry  # noqa: F401

    return dict(_MODELS)


class SessionRecommender(ABC):
    """Base class of all session recommenders.

    Subclasses set ``name``, implement ``_fit`` and ``_score``, and, if they learn anything
    beyond popularity, ``_state`` / ``_set_state`` (tensors to save) — the rest is shared.
    """

    name: ClassVar[str] = "base"
    # Trains data-parallel under torch.distributed (sessionrec train --nproc N).
    data_parallel: ClassVar[bool] = False

    def __init__(self, **params: Any) -> None:
        self._params = dict(params)

    # -- parameters -------------------------------------------------------------------------
    def get_params(self) -> dict[str, Any]:
        """The hyper-parameters given to ``__init__``."""
        return dict(self._params)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self._params.items())
        return f"{type(self).__name__}({args})"

    # -- fitting ----------------------------------------------------------------------------
    def fit(self, train: Sessions, valid: Sessions | None = None,
            context: FitContext | None = None) -> Self:
        """Learn from ``train`` (``valid`` only for early stopping); returns ``self``.

        ``context`` carries one run's settings (checkpoint directory, resume, device,
        progress) to models that train for epochs (:class:`~sessionrec.models.capabilities.
        TrainsInContext`); models that fit in one pass ignore it.
        """
        if train.n_events == 0:
            raise SessionRecError("cannot fit on an empty training set")
        counts = np.bincount(train.items, minlength=train.n_items).astype(np.float32)
        self.n_items_ = int(train.n_items)
        self.vocab_ = train.vocab
        self.popularity_ = torch.from_numpy(counts / max(counts.max(), 1.0))
        self._fit_in_context(train, valid, context or FitContext())
        return self

    @abstractmethod
    def _fit(self, train: Sessions, valid: Sessions | None) -> None:
        """Model-specific fitting; ``n_items_`` and ``popularity_`` are already set."""

    def _fit_in_context(self, train: Sessions, valid: Sessions | None,
                        context: FitContext) -> None:
        """Fit with a run's context; models that train for epochs override this (the
        default ignores the context)."""
        self._fit(train, valid)

    def _check_fitted(self) -> None:
        if not hasattr(self, "n_items_"):
            raise NotFittedError(f"{type(self).__name__} is not fitted: call fit() or load()")

    # -- scoring ----------------------------------------------------------------------------
    def score(
        self, prefixes: Sequence[Sequence[int]], users: Sequence[int] | None = None
    ) -> torch.Tensor:
        """Scores of all items after each prefix: float32 tensor [len(prefixes), n_items].

        Higher is better. Unknown items are dropped from prefixes; empty prefixes get the
        training popularity (see the module docstring).
        """
        self._check_fitted()
        clean = [self._sanitize(p) for p in prefixes]
        out = torch.empty((len(clean), self.n_items_), dtype=torch.float32)
        nonempty = [i for i, p in enumerate(clean) if len(p)]
        empty = [i for i, p in enumerate(clean) if not len(p)]
        if nonempty:
            u = None if users is None else np.asarray(users, dtype=np.int64)[nonempty]
            out[nonempty] = self._score([clean[i] for i in nonempty], u).float()
        if empty:
            out[empty] = self.popularity_
        return out

    def _sanitize(self, prefix: Sequence[int]) -> np.ndarray:
        arr = np.asarray(prefix, dtype=np.int64).reshape(-1)
        return arr[(arr >= 0) & (arr < self.n_items_)]

    @abstractmethod
    def _score(self, prefixes: list[np.ndarray], users: np.ndarray | None) -> torch.Tensor:
        """Scores [B, n_items] for non-empty, valid prefixes."""

    def _score_sparse(self, prefixes: list[np.ndarray], users: np.ndarray | None) -> SparseScores:
        """Optional: the scores of :meth:`_score` as SparseScores (non-empty, valid prefixes).

        A model implementing it gets sparse evaluation from :meth:`score_blocks`; its
        ``_score`` should then be ``self._score_sparse(prefixes, users).dense()`` so that the
        two can never disagree.
        """
        raise NotImplementedError(f"{type(self).__name__} has no sparse scores")

    @classmethod
    def has_sparse_scores(cls) -> bool:
        """Whether the class implements :meth:`_score_sparse`."""
        return cls._score_sparse is not SessionRecommender._score_sparse

    def score_sparse(
        self, prefixes: Sequence[Sequence[int]], users: Sequence[int] | None = None
    ) -> SparseScores:
        """The scores of :meth:`score` as :class:`SparseScores` (models with ``_score_sparse``).

        Empty prefixes (after dropping unknown items) get the training popularity, listed in
        full for their rows. Raises SessionRecError for a model without sparse scores.
        """
        self._check_fitted()
        if not self.has_sparse_scores():
            raise SessionRecError(f"{type(self).__name__} has no sparse scores; use score()")
        return self._sparse_of_clean([self._sanitize(p) for p in prefixes], users)

    def _sparse_of_clean(
        self, clean: list[np.ndarray], users: Sequence[int] | None
    ) -> SparseScores:
        """:meth:`score_sparse` of prefixes that hold only known items."""
        nonempty = np.array([i for i, p in enumerate(clean) if len(p)], dtype=np.int64)
        if len(nonempty) == 0:
            return SparseScores.broadcast(self.popularity_.float(), len(clean))
        u = None if users is None else np.asarray(users, dtype=np.int64)[nonempty]
        part = self._score_sparse([clean[i] for i in nonempty], u)
        if len(nonempty) == len(clean):
            return part
        n_empty = len(clean) - len(nonempty)
        return part.with_rows(nonempty, len(clean),
                              self.popularity_.float().unsqueeze(0).repeat(n_empty, 1))

    def _prefixes(
        self, sessions: Sessions, targets: np.ndarray, batch_size: int
    ) -> Iterator[tuple[np.ndarray, list[np.ndarray], np.ndarray]]:
        """``(target_chunk, prefixes, users)``: each target's session events before it."""
        session_of = sessions.session_of_event()
        starts = sessions.offsets[:-1]
        for lo in range(0, len(targets), batch_size):
            chunk = targets[lo : lo + batch_size]
            prefixes = [sessions.items[starts[session_of[t]] : t] for t in chunk]
            yield chunk, prefixes, sessions.users[session_of[chunk]]

    def score_next(
        self, sessions: Sessions, targets: np.ndarray, batch_size: int = 512
    ) -> Iterator[tuple[np.ndarray, torch.Tensor]]:
        """Scores for predicting the events at ``targets`` (global event indices).

        Each target ``t`` is predicted from the events of its session before ``t``. Yields
        ``(target_chunk, scores[len(chunk), n_items])``. The default builds prefixes and
        calls :meth:`score`; recurrent models override it to walk sessions step by step.
        """
        self._check_fitted()
        for chunk, prefixes, users in self._prefixes(sessions, targets, batch_size):
            yield chunk, self.score(prefixes, users)

    def score_blocks(
        self, sessions: Sessions, targets: np.ndarray, batch_size: int = 512
    ) -> Iterator[tuple[np.ndarray, torch.Tensor | SparseScores]]:
        """What the evaluator reads: ``(target_chunk, scores)`` for every target once.

        ``scores`` is a dense float tensor [len(chunk), n_items] (from :meth:`score_next`) or,
        for a model with ``_score_sparse`` that keeps the default ``score_next``,
        :class:`SparseScores` of up to ``max(batch_size, SPARSE_BATCH)`` targets. Both mean
        the same numbers; a model may override this to yield either kind.
        """
        cls = type(self)
        if not cls.has_sparse_scores() or cls.score_next is not SessionRecommender.score_next:
            yield from self.score_next(sessions, targets, batch_size)
            return
        self._check_fitted()
        known = bool(np.all((sessions.items >= 0) & (sessions.items < self.n_items_)))
        for chunk, prefixes, users in self._prefixes(sessions, targets,
                                                     max(batch_size, SPARSE_BATCH)):
            if known:  # nothing to drop from the prefixes: skip the per-prefix check
                yield chunk, self._sparse_of_clean(prefixes, users)
            else:
                yield chunk, self.score_sparse(prefixes, users)

    def recommend(
        self,
        prefixes: Sequence[Sequence[int]],
        k: int = 20,
        users: Sequence[int] | None = None,
        exclude_seen: bool = False,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-k items after each prefix: (int64 indices [B, k], float32 scores [B, k]).

        ``k`` is clipped to the catalogue size. With ``exclude_seen`` the prefix's own items
        are never recommended (their score is -inf, so they can only appear when k exceeds the
        number of other items).
        """
        if int(k) < 1:
            raise SessionRecError(f"k must be at least 1, got {k}")
        self._check_fitted()
        k = min(int(k), self.n_items_)
        if not exclude_seen and type(self).has_sparse_scores():
            # top-k from the listed entries: no dense row of n_items scores per request
            from sessionrec.evaluation.sparse_ranks import sparse_top_k  # import cycle

            sparse = self.score_sparse(prefixes, users)
            top = sparse_top_k(sparse, k)
            return top, sparse.gather(top)
        scores = self.score(prefixes, users)
        if exclude_seen:
            for row, prefix in enumerate(prefixes):
                seen = self._sanitize(prefix)
                if len(seen):
                    scores[row, torch.from_numpy(seen)] = float("-inf")
        values, indices = torch.topk(scores, k, dim=1)
        return indices.numpy().astype(np.int64), values.numpy().astype(np.float32)

    # -- persistence ------------------------------------------------------------------------
    def _state(self) -> dict[str, torch.Tensor]:
        """Learned tensors to save (beyond popularity). Override in subclasses."""
        return {}

    def _set_state(self, state: dict[str, torch.Tensor]) -> None:
        """Restore what :meth:`_state` returned. Override in subclasses."""
        if state:
            raise SessionRecError(
                f"saved weights hold tensors {sorted(state)} that {type(self).__name__} "
                "does not use: the directory was written by another model or version"
            )

    def save(self, directory: str | Path) -> Path:
        """Write ``model.json`` (name, params, n_items) and ``weights.pt`` into ``directory``."""
        self._check_fitted()
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        config = {"name": self.name, "params": self.get_params(), "n_items": self.n_items_,
                  "vocab": getattr(self, "vocab_", "")}
        state = {"popularity_": self.popularity_, **self._state()}
        tmp = directory / f".{WEIGHTS_FILE}.tmp"
        torch.save({k: v.contiguous() for k, v in state.items()}, tmp)
        tmp.replace(directory / WEIGHTS_FILE)
        tmp_cfg = directory / f".{CONFIG_FILE}.tmp"
        tmp_cfg.write_text(json.dumps(config, indent=2, sort_keys=True), encoding="utf-8")
        tmp_cfg.replace(directory / CONFIG_FILE)
        return directory

    @classmethod
    def load(cls, directory: str | Path, vocab: str | None = None) -> SessionRecommender:
        """Load a model saved by :meth:`save` (any registered class when called on the base).

        With ``vocab`` (a vocabulary fingerprint, see ``runs.vocab_fingerprint``) a model
        trained on another item vocabulary is refused: its item indices would mean other items.
        """
        directory = Path(directory)
        cfg_path = directory / CONFIG_FILE
        if not cfg_path.is_file():
            raise SessionRecError(f"no saved model in {directory} ({CONFIG_FILE} missing)")
        config = json.loads(cfg_path.read_text(encoding="utf-8"))
        saved_vocab = config.get("vocab", "")
        if vocab and saved_vocab and vocab != saved_vocab:
            raise SessionRecError(
                f"the model in {directory} was trained on another item vocabulary "
                f"({saved_vocab}) than the one given ({vocab}); its item indices would point "
                "at other products. Retrain it on this data, or serve it with its own vocabulary")
        model_cls = get_model_class(config["name"])
        if cls is not SessionRecommender and not issubclass(model_cls, cls):
            raise SessionRecError(f"{directory} holds a {config['name']!r} model, not {cls.name!r}")
        model = model_cls(**config["params"])
        state = torch.load(directory / WEIGHTS_FILE, weights_only=True, map_location="cpu")
        model.n_items_ = int(config["n_items"])
        model.vocab_ = saved_vocab
        model.popularity_ = state.pop("popularity_")
        model._set_state(state)
        return model
