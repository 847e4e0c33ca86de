"""Hybrids of fitted models: weighted and cascade combinations (seed 002; Jannach & Ludewig,
"When recurrent neural networks meet the neighborhood for session-based recommendation",
RecSys 2017).

A hybrid is a model like any other (fit, score, save/load, serving, configs). Its
``components`` are model specifications, each either

* ``{name = "vsknn", params = {...}}`` — fitted by the hybrid on its training data, or
* ``{run = "runs/narm"}`` — the fitted model of a run directory (or a saved model directory),
  loaded as it is. Its item vocabulary must be the training data's: a component fitted on
  another vocabulary is refused, naming both fingerprints.

Each may add ``normalise`` (``minmax``, ``max``, ``softmax``, ``none``; default the hybrid's
``normalise``). Scores are combined per case (see :mod:`sessionrec.models.combine`):

* ``method = "weighted"``: ``Σ w_k norm_k(s_k)``. Without ``weights`` the hybrid chooses them
  on the **valid split** given to ``fit`` (never the test split): every weight vector on the
  simplex with step ``1 / grid`` is scored on every valid case, and the best ``select``
  metric (``mrr@20`` by default; ``recall@20``, any ``@K``) wins, ties to the earlier vector.
  Without ``weights`` and without a valid split, fitting is refused.
* ``method = "cascade"``: the first component's ``depth`` best items first, the next
  component's order for the rest (weights are not used).

The chosen weights and each component's training time are in ``fit_stats_`` (and so in the
run's ``metrics.json``).
"""

from __future__ import annotations

import itertools
import json
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from sessionrec.data.sessions import Sessions
from sessionrec.errors import ConfigError, SessionRecError
from sessionrec.models.base import SessionRecommender, get_model_class, register_model
from sessionrec.models.combine import (
    NORMALISATIONS,
    cascade,
    normalise,
    pessimistic_ranks,
    weighted,
)
from sessionrec.training.context import FitContext

log = logging.getLogger(__name__)

METHODS = ("weighted", "cascade")
SPEC_KEYS = ("name", "params", "run", "normalise")
DEFAULT_PREFIX_LEN = 50


def _check_spec(i: int, spec: Any, default_norm: str) -> dict[str, Any]:
    where = f"hybrid component {i}"
    if not isinstance(spec, dict):
        raise ConfigError(f"{where}: expected a table {{name = ..., params = {{...}}}} or "
                          f"{{run = 'RUN_DIR'}}, got {spec!r}")
    unknown = sorted(set(spec) - set(SPEC_KEYS))
    if unknown:
        raise ConfigError(f"{where}: unknown key {unknown[0]!r}; valid keys: "
                          f"{', '.join(SPEC_KEYS)}")
    if ("name" in spec) == ("run" in spec):
        raise ConfigError(f"{where}: give exactly one of 'name' (fit it here) or 'run' (a "
                          "fitted run directory)")
    if "params" in spec and "run" in spec:
        raise ConfigError(f"{where}: 'params' go with 'name'; a run's model keeps its own")
    norm = spec.get("normalise", default_norm)
    if norm not in NORMALISATIONS:
        raise ConfigError(f"{where}: unknown normalise {norm!r}; valid: "
                          f"{', '.join(NORMALISATIONS)}")
    if "name" in spec:
        get_model_class(spec["name"])  # an unknown name fails here, with the choices
    return {**spec, "normalise": norm}


def simplex_grid(n: int, grid: int) -> list[tuple[float, ...]]:
    """Every weight vector of ``n`` non-negative multiples of ``1 / grid`` summing to 1."""
    return [tuple(c / grid for c in combo)
            for combo in itertools.product(range(grid + 1), repeat=n) if sum(combo) == grid]


def _model_dir(run: str) -> Path:
    path = Path(run)
    return path / "model" if (path / "model" / "model.json").is_file() else path


def _run_train_seconds(run: str) -> float | None:
    metrics = Path(run) / "metrics.json"
    if not metrics.is_file():
        return None
    train = json.loads(metrics.read_text(encoding="utf-8")).get("train", {})
    return train.get("train_seconds", train.get("seconds"))


@register_model
class Hybrid(SessionRecommender):
    """Weighted or cascade hybrid of other models (see the module docstring)."""

    name = "hybrid"

    def __init__(self, components: list[dict[str, Any]] | None = None,
                 method: str = "weighted", weights: list[float] | None = None,
                 normalise: str = "minmax", select: str = "mrr@20", grid: int = 10,
                 depth: int = 0) -> None:
        components = list(components or [])
        super().__init__(components=components, method=method, weights=weights,
                         normalise=normalise, select=select, grid=grid, depth=depth)
        if len(components) < 2:
            raise ConfigError(f"a hybrid needs at least 2 components, got {len(components)}")
        if method not in METHODS:
            raise ConfigError(f"unknown hybrid method {method!r}; valid: {', '.join(METHODS)}")
        if normalise not in NORMALISATIONS:
            raise ConfigError(f"unknown normalise {normalise!r}; valid: "
                              f"{', '.join(NORMALISATIONS)}")
        self.specs = [_check_spec(i, s, normalise) for i, s in enumerate(components)]
        if weights is not None and len(weights) != len(components):
            raise ConfigError(f"hybrid: {len(weights)} weights for {len(components)} components")
        if weights is not None and (any(w < 0 for w in weights) or sum(weights) <= 0):
            raise ConfigError(f"hybrid weights must be >= 0 with a positive sum, got {weights}")
        metric, _, k = select.partition("@")
        if metric not in ("mrr", "recall", "hitrate") or not k.isdigit() or int(k) < 1:
            raise ConfigError(f"hybrid select must be mrr@K or recall@K, got {select!r}")
        if grid < 1:
            raise ConfigError(f"hybrid grid must be at least 1, got {grid}")
        if depth < 0:
            raise ConfigError(f"hybrid depth must be >= 0, got {depth}")
        self.method, self.weights, self.select = method, weights, select
        self.grid, self.depth = int(grid), int(depth)

    # -- fitting --------------------------------------------------------------------------
    def _fit(self, train: Sessions, valid: Sessions | None) -> None:
        self._fit_in_context(train, valid, FitContext())

    def _fit_in_context(self, train: Sessions, valid: Sessions | None,
                        context: FitContext) -> None:
        if self.method == "weighted" and self.weights is None and (
                valid is None or not valid.n_events):
            raise ConfigError("hybrid: no weights given and no valid split to choose them on; "
                              "set model.params.weights or prepare the data with "
                              "split.valid = true")
        models, stats = [], []
        loaded: list[tuple[int, SessionRecommender]] = []
        for i, spec in enumerate(self.specs):
            t0 = time.perf_counter()
            if "run" in spec:
                model = SessionRecommender.load(_model_dir(spec["run"]))
                self._check_vocab(i, model, loaded, train)
                loaded.append((i, model))
                seconds = _run_train_seconds(spec["run"])
            else:
                sub = context
                if context.checkpoint_dir is not None:
                    sub = FitContext(context.checkpoint_dir / f"component-{i}", context.resume,
                                     context.device, context.progress)
                cls = get_model_class(spec["name"])
                model = cls(**spec.get("params", {})).fit(train, valid, sub)
                seconds = time.perf_counter() - t0
            stats.append({"model": model.name, "run": spec.get("run", ""),
                          "train_seconds": seconds,
                          "epochs": getattr(model, "fit_stats_", {}).get("epochs")})
            models.append(model)
        self.components_ = models
        weights = self.weights
        if self.method == "weighted" and weights is None:
            weights, table = self._choose_weights(train, valid)
            self.fit_stats_ = {"weights_on_valid": table}
        else:
            self.fit_stats_ = {}
        self.weights_ = [float(w) for w in (weights or [1.0] * len(models))]
        self.fit_stats_.update({"weights": self.weights_, "components": stats,
                                "train_seconds": sum(s["train_seconds"] or 0.0 for s in stats)})

    def _check_vocab(self, i: int, model: SessionRecommender,
                     loaded: list[tuple[int, SessionRecommender]], train: Sessions) -> None:
        theirs = getattr(model, "vocab_", "")
        for j, other in loaded:
            ours = getattr(other, "vocab_", "")
            if other.n_items_ != model.n_items_ or (ours and theirs and ours != theirs):
                raise SessionRecError(
                    f"hybrid components {j} ({self.specs[j]['run']}) and {i} "
                    f"({self.specs[i]['run']}) were fitted on different item vocabularies: "
                    f"{ours or '?'} ({other.n_items_:,} items) and {theirs or '?'} "
                    f"({model.n_items_:,} items); an item index would mean different products "
                    "in the two models. Fit both on the same prepared data")
        if model.n_items_ != train.n_items or (theirs and train.vocab and theirs != train.vocab):
            raise SessionRecError(
                f"hybrid component {i} ({self.specs[i]['run']}) was fitted on item vocabulary "
                f"{theirs or '?'} ({model.n_items_:,} items), the training data has "
                f"{train.vocab or '?'} ({train.n_items:,} items): refit it on this data")

    def _normalised(self, prefixes: list[np.ndarray]) -> list[torch.Tensor]:
        return [normalise(m.score(prefixes), spec["normalise"])
                for m, spec in zip(self.components_, self.specs, strict=True)]

    def _choose_weights(self, train: Sessions, valid: Sessions,
                        ) -> tuple[list[float], list[dict[str, Any]]]:
        """The grid point with the best ``select`` metric over every valid case."""
        candidates = simplex_grid(len(self.components_), self.grid)
        metric, _, k = self.select.partition("@")
        k = int(k)
        sums = np.zeros(len(candidates))
        starts = valid.offsets[:-1]
        position = np.arange(valid.n_events) - np.repeat(starts, valid.lengths)
        targets = np.flatnonzero(position >= 1)
        n = 0
        for chunk, prefixes, _ in self._prefixes(valid, targets, 512):
            clean = [self._sanitize(p) for p in prefixes]
            y = valid.items[chunk]
            keep = [j for j, p in enumerate(clean) if len(p) and 0 <= y[j] < self.n_items_]
            if not keep:
                continue
            parts = self._normalised([clean[j] for j in keep])
            y_t = torch.from_numpy(y[keep].astype(np.int64))
            for c, w in enumerate(candidates):
                ranks = pessimistic_ranks(weighted(parts, w), y_t).double()
                hit = ranks <= k
                sums[c] += float((hit / ranks).sum() if metric == "mrr" else hit.sum())
            n += len(keep)
        if n == 0:
            raise SessionRecError("hybrid: the valid split has no case with a known prefix "
                                  "and target to choose weights on")
        best = int(np.argmax(sums))  # the first of equal maxima
        table = [{"weights": list(w), self.select: s / n} for w, s in zip(candidates, sums,
                                                                          strict=True)]
        log.info("hybrid weights chosen on %d valid cases: %s (%s %.4f)", n,
                 candidates[best], self.select, sums[best] / n)
        return list(candidates[best]), table

    # -- scoring --------------------------------------------------------------------------
    def _score(self, prefixes: list[np.ndarray], users: np.ndarray | None) -> torch.Tensor:
        if self.method == "cascade":
            return cascade([m.score(prefixes) for m in self.components_], self.depth).float()
        return weighted(self._normalised(prefixes), self.weights_).float()

    @property
    def prefix_len(self) -> int:
        """The longest window any component looks at (serving keeps this many items)."""
        return max(int(getattr(m, "prefix_len", DEFAULT_PREFIX_LEN))
                   for m in self.components_)

    # -- persistence ----------------------------------------------------------------------
    def _state(self) -> dict[str, torch.Tensor]:
        fitted = [{"name": m.name, "params": m.get_params(), "n_items": m.n_items_,
                   "vocab": getattr(m, "vocab_", "")} for m in self.components_]
        meta = json.dumps({"components": fitted, "weights": self.weights_}).encode()
        state = {"hybrid_meta": torch.frombuffer(bytearray(meta), dtype=torch.uint8).clone()}
        for i, m in enumerate(self.components_):
            sub = {"popularity_": m.popularity_, **m._state()}
            state.update({f"c{i}.{k}": v for k, v in sub.items()})
        return state

    def _set_state(self, state: dict[str, torch.Tensor]) -> None:
        state = dict(state)
        if "hybrid_meta" not in state:
            raise SessionRecError("saved hybrid weights lack their component list: the "
                                  "directory was written by another model or version")
        meta = json.loads(bytes(state.pop("hybrid_meta").tolist()).decode())
        models = []
        for i, cfg in enumerate(meta["components"]):
            prefix = f"c{i}."
            sub = {k[len(prefix):]: state.pop(k) for k in list(state) if k.startswith(prefix)}
            model = get_model_class(cfg["name"])(**cfg["params"])
            model.n_items_, model.vocab_ = int(cfg["n_items"]), cfg["vocab"]
            model.popularity_ = sub.pop("popularity_")
            model._set_state(sub)
            models.append(model)
        super()._set_state(state)
        self.components_ = models
        self.weights_ = [float(w) for w in meta["weights"]]
