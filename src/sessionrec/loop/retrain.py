"""One retrain and one rollback, each recorded in a run directory of its own.

``retrain``: under the loop's lock, ask the server which model is live, prepare the latest
window, fit the configured model on its training days (and a co-occurrence fallback in the
same vocabulary), score the candidate and the live model on the same held-out days
(:mod:`sessionrec.loop.shadow`), and promote the candidate over ``/admin/reload`` only if
``candidate >= live - margin`` on the decision metric. Every outcome is written to
``ROOT/runs/<UTC time>/``::

    config.toml     the resolved loop config
    metrics.json    decision, reason, window, live_model (what /admin/model named), both
                    metric sets (candidate, live), the paired difference of the decision
                    metric (or why there was nothing to compare)
    data/           the prepared window          (when it was not empty)
    candidate/      the candidate's run directory (config.toml, metrics.json, ranks, model/)
    cooc/           its fallback (item-to-item, same vocabulary)
    error.txt       the traceback of a failed step

An empty window, a failed fit, a failed live evaluation or a refused reload leave the live
model untouched, and the decision says why.
"""

from __future__ import annotations

import logging
import math
import traceback
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl

from sessionrec.config import dump_toml, to_dict
from sessionrec.errors import EmptyDataError, SessionRecError
from sessionrec.evaluation import EvalResult, write_results
from sessionrec.evaluation.metrics import parse_metric
from sessionrec.loop.admin import AdminChannel
from sessionrec.loop.config import LoopConfig
from sessionrec.loop.history import fallback_of, read_history, served, write_history
from sessionrec.loop.lock import loop_lock
from sessionrec.loop.shadow import KS, comparison, score_live
from sessionrec.loop.window import prepare_window
from sessionrec.models.base import SessionRecommender
from sessionrec.runs import (
    DataConfig,
    EvalConfig,
    RunConfig,
    build_model,
    fit_evaluate,
    load_splits,
    write_run,
)
from sessionrec.vocab import Vocabulary

log = logging.getLogger(__name__)

PROMOTED, REFUSED, SHADOW = "promoted", "refused", "shadow_only"
# Outcomes that leave the live model untouched because a step failed (CLI exit code 3).
EMPTY, FAILED_FIT, FAILED_LIVE, FAILED_RELOAD, NO_SERVER = (
    "empty_window", "failed_fit", "failed_live_evaluation", "failed_reload", "no_server")
DECIDED = (PROMOTED, REFUSED, SHADOW)
ROLLED_BACK = "rolled_back"


@dataclass(frozen=True)
class Outcome:
    decision: str
    reason: str
    run_dir: Path
    record: dict[str, Any]


def new_run_dir(root: Path, suffix: str = "") -> Path:
    """``ROOT/runs/<UTC time><suffix>``, made fresh (``-2``, ``-3`` ... on a clash)."""
    base = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ") + suffix
    (root / "runs").mkdir(parents=True, exist_ok=True)
    for n in range(1, 1000):
        path = root / "runs" / (base if n == 1 else f"{base}-{n}")
        try:
            path.mkdir()
            return path
        except FileExistsError:
            continue
    raise SessionRecError(f"cannot make a run directory under {root / 'runs'}")


def _finite(value: Any) -> Any:
    """JSON-safe: non-finite floats (a p-value of identical models) become None."""
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _finish(run_dir: Path, decision: str, reason: str, record: dict[str, Any],
            error: BaseException | None = None) -> Outcome:
    if error is not None:
        (run_dir / "error.txt").write_text("".join(traceback.format_exception(error)),
                                           encoding="utf-8")
    record = _finite({"decision": decision, "reason": reason, **record,
                      "finished_at": datetime.now(UTC).isoformat()})
    write_results(run_dir, record)
    (log.info if decision in (*DECIDED, ROLLED_BACK) else log.warning)(
        "loop: %s: %s (%s)", decision, reason, run_dir)
    return Outcome(decision, reason, run_dir, record)


def fit_candidate(cfg: LoopConfig, data_dir: Path, run_dir: Path
                  ) -> tuple[EvalResult, dict[str, Any]]:
    """Fit the configured model on the window's training days, evaluate it on the held-out
    days (full ranking, pessimistic ties), write ``candidate/``; also fit ``cooc/``."""
    import torch

    from sessionrec.models.baselines.cooc import Cooccurrence

    torch.manual_seed(cfg.seed)
    _, k = parse_metric(cfg.decision.metric)
    run_cfg = RunConfig(data=DataConfig(prepared=str(data_dir.resolve())), model=cfg.model,
                        eval=EvalConfig(protocol=cfg.decision.protocol, ties="pessimistic",
                                        ks=tuple(sorted({*KS, k})), fit_on="train"),
                        seed=cfg.seed)
    splits = load_splits(data_dir)
    model = build_model(cfg.model, splits.items)
    result, timing = fit_evaluate(model, splits, run_cfg.eval)
    assert result is not None  # one process: it evaluates
    payload = write_run(run_dir / "candidate", run_cfg, model, splits, result, timing)
    Cooccurrence().fit(splits.train).save(run_dir / "cooc" / "model")
    return result, payload


def evaluate_live(live: dict[str, Any], data_dir: Path, candidate: EvalResult
                  ) -> tuple[EvalResult, dict[str, int]]:
    """The live model (paths from ``/admin/model``) on the candidate's held-out targets."""
    vocab = Vocabulary.read(live["vocab"])
    model = SessionRecommender.load(live["model_dir"], vocab=vocab.fingerprint)
    train = pl.read_parquet(data_dir / "train.parquet")
    test = pl.read_parquet(data_dir / "test.parquet")
    return score_live(model, vocab, train, test, candidate)


def decide(cfg: LoopConfig, compared: dict[str, Any]) -> tuple[bool, str]:
    """(promote?, why) from the two metric sets."""
    metric, margin = cfg.decision.metric, cfg.decision.margin
    new, old = compared["candidate"][metric], compared["live"][metric]
    if new >= old - margin:
        return True, (f"candidate {metric} {new:.4f} >= live {old:.4f} - margin {margin:g}")
    return False, (f"candidate {metric} {new:.4f} < live {old:.4f} - margin {margin:g}: "
                   "worse beyond the margin")


def retrain(cfg: LoopConfig, channel: AdminChannel, until: datetime | None = None) -> Outcome:
    """One retrain (module docstring); :class:`~sessionrec.loop.lock.LoopBusy` if another
    retrain or rollback of ``cfg.root`` is running."""
    root = Path(cfg.root)
    with loop_lock(root, "retrain"):
        run_dir = new_run_dir(root)
        (run_dir / "config.toml").write_text(dump_toml(to_dict(cfg)), encoding="utf-8")
        record: dict[str, Any] = {"started_at": datetime.now(UTC).isoformat(),
                                  "metric": cfg.decision.metric,
                                  "margin": cfg.decision.margin}
        try:
            live = channel.live()
        except SessionRecError as err:
            return _finish(run_dir, NO_SERVER, f"cannot ask the server which model is live, "
                           f"nothing done: {err}", record)
        record["live_model"] = served(live, None)
        try:
            data_dir, window, manifest = prepare_window(cfg.data, run_dir, until)
        except EmptyDataError as err:
            return _finish(run_dir, EMPTY, f"nothing to train on, the live model stays: {err}",
                           record)
        record["window"] = window.to_dict()
        record["splits"] = manifest["splits"]
        try:
            candidate, payload = fit_candidate(cfg, data_dir, run_dir)
        except Exception as err:  # any failure of the fit: recorded, the live model stays
            return _finish(run_dir, FAILED_FIT, f"the {cfg.model.name} model failed to train "
                           f"or evaluate, the live model stays: {err!r}", record, err)
        record["candidate_train"] = payload["train"]
        try:
            live_result, counts = evaluate_live(live, data_dir, candidate)
        except Exception as err:
            return _finish(run_dir, FAILED_LIVE, "the live model could not be scored on the "
                           f"held-out days, so nothing is promoted: {err!r}", record, err)
        compared = comparison(candidate, live_result, cfg.decision.metric)
        record.update(compared, live_could_not_rank=counts)
        promote, why = decide(cfg, compared)
        if not promote:
            return _finish(run_dir, REFUSED, why, record)
        if not cfg.decision.promote:
            return _finish(run_dir, SHADOW, f"{why}; decision.promote is false", record)
        model_dir = str((run_dir / "candidate").resolve())
        fallback = str((run_dir / "cooc").resolve())
        try:
            info = channel.reload(model_dir, str((data_dir / "items.parquet").resolve()),
                                  fallback)
        except SessionRecError as err:
            return _finish(run_dir, FAILED_RELOAD, f"{why}, but the server refused the "
                           f"reload: {err}", record, err)
        stack = read_history(root)
        previous = served(live, fallback_of(stack, live["model_dir"]))
        stack.append({"run": str(run_dir.resolve()), "at": datetime.now(UTC).isoformat(),
                      "promoted": served(info, fallback), "previous": previous})
        write_history(root, stack)
        record["promoted"] = served(info, fallback)
        return _finish(run_dir, PROMOTED, why, record)


def rollback(cfg: LoopConfig, channel: AdminChannel, force: bool = False) -> Outcome:
    """Serve again the model that the last promotion replaced; pops it from the history.

    Refuses (``SessionRecError``) when nothing was promoted, or when the live model is not
    the one the last promotion put there (someone reloaded by hand) unless ``force``.
    """
    root = Path(cfg.root)
    with loop_lock(root, "rollback"):
        stack = read_history(root)
        if not stack:
            raise SessionRecError(f"nothing to roll back: {root} records no promotion")
        last = stack[-1]
        live = channel.live()
        if live["model_dir"] != last["promoted"]["model_dir"] and not force:
            raise SessionRecError(
                f"the live model ({live['model_dir']}) is not the one the last promotion put "
                f"there ({last['promoted']['model_dir']}); nothing done. Pass --force to "
                f"serve {last['previous']['model_dir']} anyway")
        previous = last["previous"]
        run_dir = new_run_dir(root, "-rollback")
        (run_dir / "config.toml").write_text(dump_toml(to_dict(cfg)), encoding="utf-8")
        record = {"live_model": served(live, None), "undoes": last["run"], "restored": previous}
        try:
            info = channel.reload(previous["model_dir"], previous["vocab"], previous["fallback"])
        except SessionRecError as err:
            _finish(run_dir, FAILED_RELOAD, f"the server refused the previous model: {err}",
                    record, err)
            raise
        write_history(root, stack[:-1])
        return _finish(run_dir, ROLLED_BACK, f"serving {info['model_dir']} ({info['tag']}) "
                       f"again, as before {last['run']}", record)
