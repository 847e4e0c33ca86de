"""Training and evaluation runs: prepared data in, run directory with ``metrics.json`` out.

A run directory holds everything needed to trace a number in the docs back to its origin::

    RUN_DIR/
      config.toml      the resolved RunConfig
      metrics.json     dataset, model, protocol, ties, n_predictions, metrics, train timing
      ranks.parquet    per-prediction rank, target event and test session (for paired tests)
      model/           the fitted model (model.json + weights.pt)

These four are written together (:mod:`sessionrec.rundir`): readers see a whole run, the old
one until the new one is complete.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Literal

import numpy as np
import polars as pl

from sessionrec.config import dump_toml, load_config, to_dict
from sessionrec.data.io import atomic_write_text
from sessionrec.data.sessions import Sessions, event_type_names
from sessionrec.data.stats import read_splits
from sessionrec.errors import ConfigError, DataError, valid_choices
from sessionrec.evaluation import (
    EvalResult,
    compare_results,
    evaluate,
    markdown_table,
    write_results,
)
from sessionrec.jobs import run_tasks
from sessionrec.models.base import SessionRecommender, get_model_class
from sessionrec.models.capabilities import TakesItemTable, TakesItemVectors, UserHistory
from sessionrec.rundir import staged_run
from sessionrec.training.context import FitContext
from sessionrec.training.distributed import is_main

log = logging.getLogger(__name__)

RANKS_FILE = "ranks.parquet"


@dataclass(frozen=True)
class DataConfig:
    dataset: str = ""  # a name for reports; defaults to the prepared directory's name
    prepared: str = ""  # a prepared data directory (sessionrec prepare --out)
    source: str = ""  # or: a source adapter to prepare from (with `path` or ../shared/data)
    path: str = ""
    prepare: dict = field(default_factory=dict)  # PrepareConfig overrides for that case


@dataclass(frozen=True)
class ModelConfig:
    name: str = "pop"
    params: dict = field(default_factory=dict)
    # An embedding store (`sessionrec embed --out`, e.g. Meta-Prod2Vec) used as the input
    # embedding of a recurrent model (GRU4Rec, HGRU4Rec); "" for none.
    item_vectors: str = ""
    freeze_item_vectors: bool = True  # False: fine-tune them with the rest of the model
    # vocabulary items the store lacks: "error", or "random" / "zero" vectors for them
    missing_item_vectors: Literal["error", "random", "zero"] = "error"


@dataclass(frozen=True)
class EvalConfig:
    # candidate-ranking: click-probability models on exposure data (sessionrec.candidate_runs)
    protocol: Literal["next-item", "last-item", "candidate-ranking"] = "next-item"
    ties: Literal["pessimistic", "optimistic", "average"] = "pessimistic"
    ks: tuple[int, ...] = (1, 5, 10, 20)
    batch_size: int = 256
    fit_on: Literal["train", "train+valid"] = "train"
    threads: int = 0  # torch threads; 0 keeps torch's default


@dataclass(frozen=True)
class RunConfig:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    seed: int = 0


@dataclass(frozen=True)
class Splits:
    """Encoded sessions of a prepared directory."""

    train: Sessions
    valid: Sessions
    test: Sessions
    name: str
    items: pl.DataFrame | None = None  # the vocabulary (items.parquet), when read from disk


def vocab_fingerprint(items: pl.DataFrame) -> str:
    """A short hash of the item vocabulary (item ids in index order)."""
    col = "item_id" if "item_id" in items.columns else items.columns[0]
    digest = hashlib.sha256(items[col].cast(pl.String).str.join("\n").item().encode())
    return f"{items.height}:{digest.hexdigest()[:16]}"


def load_splits(data_dir: Path, name: str = "") -> Splits:
    """Read a prepared directory into :class:`Sessions` sharing one item index space."""
    data_dir = Path(data_dir)
    frames = read_splits(data_dir)
    items = pl.read_parquet(data_dir / "items.parquet")
    n_items = items.height
    vocab = vocab_fingerprint(items)
    names = event_type_names(tuple(frames[s] for s in ("train", "valid", "test")))
    out = {s: Sessions.from_frame(frames[s], n_items, vocab, names)
           for s in ("train", "valid", "test")}
    return Splits(out["train"], out["valid"], out["test"], name or data_dir.name, items)


def concat_sessions(a: Sessions, b: Sessions) -> Sessions:
    """``a`` followed by ``b`` (e.g. train + valid for the final fit)."""
    if (a.event_types is not None and b.event_types is not None
            and a.event_type_names != b.event_type_names):
        raise DataError(f"cannot join sessions with different behaviour codes "
                        f"({a.event_type_names} and {b.event_type_names}); load both splits "
                        "with load_splits")
    return Sessions(
        items=np.concatenate([a.items, b.items]),
        offsets=np.concatenate([a.offsets, b.offsets[1:] + a.offsets[-1]]),
        ts=np.concatenate([a.ts, b.ts]),
        users=np.concatenate([a.users, b.users]),
        session_ids=np.concatenate([a.session_ids, b.session_ids]),
        n_items=a.n_items,
        vocab=a.vocab,
        event_types=(None if a.event_types is None or b.event_types is None
                     else np.concatenate([a.event_types, b.event_types])),
        event_type_names=a.event_type_names,
    )


def model_param_names(cls: type[SessionRecommender]) -> list[str] | None:
    """The hyper-parameter names ``cls.__init__`` takes (None if it takes ``**kwargs``)."""
    params = list(inspect.signature(cls.__init__).parameters.values())[1:]  # after self
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        return None
    return [p.name for p in params if p.kind is not inspect.Parameter.VAR_POSITIONAL]


def check_model_params(cls: type[SessionRecommender], params: dict[str, Any]) -> None:
    """ConfigError naming the first parameter ``cls`` does not take, and the valid ones."""
    valid = model_param_names(cls)
    unknown = [k for k in params if valid is not None and k not in valid]
    if unknown:
        bad = unknown[0]
        raise ConfigError(f"model {cls.name!r} has no parameter {bad!r} (model.params.{bad} or "
                          f"--param {cls.name}.{bad}); {valid_choices(bad, valid or [])}")


def build_model(cfg: ModelConfig, items: pl.DataFrame | None = None) -> SessionRecommender:
    """An unfitted model from its registered name and hyper-parameters.

    With ``cfg.item_vectors`` the store's vectors, aligned to the vocabulary ``items``, become
    the model's input embedding (frozen unless ``freeze_item_vectors`` is false).
    """
    cls = get_model_class(cfg.name)
    check_model_params(cls, cfg.params)
    try:
        model = cls(**cfg.params)
    except TypeError as err:
        raise ConfigError(f"model {cfg.name!r}: {err}") from err
    if items is not None and isinstance(model, TakesItemTable):
        model.set_item_table(items)  # item metadata (p2v: Meta-Prod2Vec tokens)
    if cfg.item_vectors:
        if not isinstance(model, TakesItemVectors):
            raise ConfigError(f"model {cfg.name!r} takes no pre-trained item vectors "
                              "(model.item_vectors); gru4rec and hgru4rec do")
        if items is None:
            raise ConfigError("model.item_vectors needs the item vocabulary of the prepared "
                              "data to align the store's vectors to")
        from sessionrec.embeddings.store import load_item_vectors

        vectors = load_item_vectors(cfg.item_vectors, items, missing=cfg.missing_item_vectors,
                                    seed=int(cfg.params.get("seed", 0)))
        model.set_pretrained_items(vectors, freeze=cfg.freeze_item_vectors)
    return model


def peak_rss_mb() -> float:
    """This process's peak resident memory so far, in MiB (Linux reports KiB)."""
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def fit_evaluate(model: SessionRecommender, splits: Splits, cfg: EvalConfig,
                 context: FitContext | None = None,
                 ) -> tuple[EvalResult | None, dict[str, Any]]:
    """Fit on train (or train + valid), evaluate on test; returns result and train timing.

    In a distributed run only rank 0 evaluates; the other ranks return ``(None, timing)``
    after training.
    """
    train = splits.train if cfg.fit_on == "train" else concat_sessions(splits.train, splits.valid)
    valid = splits.valid if cfg.fit_on == "train" and splits.valid.n_events else None
    t0 = time.perf_counter()
    model.fit(train, valid, context)
    seconds = time.perf_counter() - t0
    peak = peak_rss_mb()  # after fitting: data + model + training (evaluation not counted)
    if not is_main():
        return None, {"seconds": seconds}
    extended = False
    if valid is not None and isinstance(model, UserHistory):
        # Validation sessions happened before the test sessions: a user-aware model carries
        # its users' states on through them (no training) so that test starts from the whole
        # history, as it would in the shop.
        model.extend_user_history(splits.valid)
        extended = True
    result = evaluate(model, train, splits.test, protocol=cfg.protocol, ties=cfg.ties,
                      ks=cfg.ks, batch_size=cfg.batch_size,
                      num_threads=cfg.threads or None)
    timing: dict[str, Any] = {"seconds": seconds, "events": int(train.n_events),
                              "events_per_s": train.n_events / seconds if seconds > 0 else None,
                              "user_history_through_valid": extended,
                              "peak_rss_mb": peak}
    # Iterative models report their own figures (epochs, events/s over all epochs, history).
    timing.update(getattr(model, "fit_stats_", {}))
    return result, timing


def write_run(run_dir: Path, cfg: RunConfig, model: SessionRecommender, splits: Splits,
              result: EvalResult, timing: dict[str, Any]) -> dict[str, Any]:
    """Write config.toml, metrics.json, ranks.parquet and the model into ``run_dir``, as one
    unit (:func:`sessionrec.rundir.staged_run`): a kill at any moment leaves the previous
    outputs or all of the new ones, never a mix."""
    payload = {"dataset": splits.name, "model": model.name, "params": model.get_params(),
               **result.to_dict(), "train": timing}
    with staged_run(run_dir) as stage:
        (stage / "config.toml").write_text(dump_toml(to_dict(cfg)), encoding="utf-8")
        model.save(stage / "model")
        pl.DataFrame({"target_event": result.target_events, "session": result.sessions,
                      "position": result.positions, "rank": result.ranks}).write_parquet(
            stage / RANKS_FILE)
        write_results(stage, payload)
    return payload


def read_ranks(run_dir: Path) -> pl.DataFrame:
    path = Path(run_dir) / RANKS_FILE
    if not path.is_file():
        raise DataError("run directory has no per-prediction ranks", path=str(path))
    return pl.read_parquet(path)


CHECKPOINTS = "checkpoints"


def run(cfg: RunConfig, splits: Splits, run_dir: Path, resume: bool = False,
        device: str = "auto") -> dict[str, Any]:
    """Build, fit, evaluate and write one run; returns the metrics payload.

    Models that train for epochs write checkpoints to ``RUN_DIR/checkpoints``; with
    ``resume`` they continue from the last one (same result as an uninterrupted run).
    ``device``: ``auto``, ``cpu`` or ``cuda`` for models on the neural core. Inside a
    ``torch.distributed`` process group every rank trains and rank 0 alone evaluates and
    writes the run (the other ranks return an empty payload).
    """
    import torch

    torch.manual_seed(cfg.seed)
    if cfg.eval.threads:
        torch.set_num_threads(cfg.eval.threads)
    model = build_model(cfg.model, splits.items)
    context = FitContext(Path(run_dir) / CHECKPOINTS, resume=resume, device=device)
    result, timing = fit_evaluate(model, splits, cfg.eval, context)
    if result is None:
        return {}
    log.info("%s on %s: %s", model.name, splits.name, result.metrics())
    return write_run(Path(run_dir), cfg, model, splits, result, timing)


def paired_intervals(results: dict[str, EvalResult], baseline: str,
                     metrics: tuple[str, ...] = ("recall@20", "mrr@20"),
                     n_boot: int = 1000) -> dict[str, dict[str, dict[str, float]]]:
    """Paired session-level bootstrap of each model minus ``baseline`` for each metric."""
    out: dict[str, dict[str, dict[str, float]]] = {}
    for name, result in results.items():
        if name == baseline:
            continue
        out[name] = {m: compare_results(result, results[baseline], m, n_boot=n_boot).to_dict()
                     for m in metrics}
    return out


def summary_line(payload: dict[str, Any]) -> str:
    """One line of a run's headline figures, for progress output."""
    m = payload["metrics"]
    return (f"{payload['model']} on {payload['dataset']}: recall@20 {m['recall@20']:.4f}, "
            f"mrr@20 {m['mrr@20']:.4f} over {payload['n_predictions']:,} predictions "
            f"({payload['protocol']}, {payload['ties']} ties); fit "
            f"{payload['train']['seconds']:.1f} s")


def model_configs(models: Sequence[str], params: Sequence[str],
                  eval_overrides: Sequence[str]) -> list[tuple[str, RunConfig]]:
    """One :class:`RunConfig` per model compared by ``sessionrec evaluate``, in order.

    Each has ``model.name``, the ``eval_overrides`` (``eval.protocol=...``) and the model's own
    ``--param MODEL.KEY=VALUE`` options as ``model.params.KEY=VALUE``. All are built before
    any model is fitted, so a bad value fails at once; a ``--param`` naming no model being
    compared is a :class:`ConfigError`.
    """
    stray = [p for p in params if p.split(".", 1)[0] not in models or "." not in p]
    if stray:
        raise ConfigError(f"--param {stray[0]!r} names no model being evaluated; write "
                          f"MODEL.KEY=VALUE with MODEL one of {', '.join(models)}")
    out = []
    for name in models:
        own = [f"model.params.{p.split('.', 1)[1]}" for p in params
               if p.split(".", 1)[0] == name]
        out.append((name, load_config(RunConfig, overrides=[f"model.name={name}",
                                                            *eval_overrides, *own])))
    return out


def run_each(configs: Sequence[tuple[str, RunConfig]],
             run_one: Callable[[str, RunConfig], dict[str, Any]],
             on_run: Callable[[dict[str, Any]], None] | None = None) -> list[dict[str, Any]]:
    """``run_one(name, cfg)`` for each model in order; ``on_run`` gets each run's payload as
    it finishes. Returns the payloads."""
    payloads = []
    for name, cfg in configs:
        payloads.append(run_one(name, cfg))
        if on_run is not None:
            on_run(payloads[-1])
    return payloads


def write_comparison(out: Path, text: str, summary: dict[str, Any]) -> None:
    """``out/results.md`` (``text``) and ``out/results.json`` (``summary``), each atomically."""
    atomic_write_text(out / "results.md", text)
    atomic_write_text(out / "results.json", json.dumps(summary, indent=2))


def compare_models(data_dir: Path, models: Sequence[str], params: Sequence[str], out: Path,
                   protocol: str, ties: str, baseline: str | None, dataset: str = "",
                   on_run: Callable[[dict[str, Any]], None] | None = None, jobs: int = 1,
                   threads: int = 1) -> tuple[str, list[dict[str, Any]]]:
    """Fit and evaluate several models on one prepared directory.

    ``params`` are ``model.key=value`` strings for single models. Writes ``out/<model>/`` run
    directories, ``out/results.md`` and ``out/results.json`` (with paired bootstrap intervals
    of each model minus ``baseline``, default the first model); ``on_run`` is called with
    each run's payload as it finishes. Returns the Markdown text and the payloads (in the
    order of ``models``).

    ``jobs`` > 1 fits the models on that many processes (:mod:`sessionrec.jobs`): this one
    takes the models that train for epochs first, spawned workers (each with ``threads``
    torch threads and its own copy of the data) the others. Every model is seeded from its
    config before it fits, so the metrics do not depend on ``jobs`` or on the order.
    """
    if jobs < 1:
        raise ConfigError(f"--jobs must be 1 or more, got {jobs}")
    for name in models:
        get_model_class(name)  # an unknown name fails before any data is read
    configs = model_configs(models, params, [f"eval.protocol={protocol}", f"eval.ties={ties}"])
    splits = load_splits(data_dir, dataset)
    results: dict[str, EvalResult] = {}
    payload_of: dict[str, dict[str, Any]] = {}

    def collect(i: int, value: tuple[dict[str, Any], EvalResult]) -> None:
        payload_of[configs[i][0]], results[configs[i][0]] = value
        if on_run is not None:
            on_run(value[0])

    run_tasks(len(configs), heavy_first([cfg for _, cfg in configs]),
              lambda i: _fit_write(splits, configs[i][1], out / configs[i][0]),
              partial(_worker_splits, str(data_dir), dataset, threads),
              partial(_worker_fit, configs=configs, out=str(out)), jobs, collect,
              names=[name for name, _ in configs])
    payloads = [payload_of[name] for name, _ in configs]
    results = {name: results[name] for name, _ in configs}  # the tables follow ``models``
    base = baseline or models[0]
    diffs = paired_intervals(results, base) if base in results else {}
    table = markdown_table(payloads, metrics=("recall@20", "mrr@20", "ndcg@20", "coverage@20"))
    lines = [f"Dataset `{splits.name}`: {splits.train.n_events:,} train events, "
             f"{splits.test.n_sessions:,} test sessions, {splits.train.n_items:,} items; "
             f"protocol {protocol}, {ties} ties, full ranking.", "", table]
    if diffs:
        lines += [f"Difference to `{base}` (paired bootstrap over test sessions, 95% CI):", "",
                  "| Model | Δ recall@20 [CI] | Δ mrr@20 [CI] |", "|---|---:|---:|"]
        for name, per in diffs.items():
            cells = [f"{d['estimate']:+.4f} [{d['low']:+.4f}, {d['high']:+.4f}]"
                     for d in per.values()]
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
    text = "\n".join(lines) + "\n"
    write_comparison(out, text, {"dataset": splits.name, "runs": payloads, "paired_vs": base,
                                 "differences": diffs})
    return text, payloads


def _fit_write(splits: Splits, cfg: RunConfig, run_dir: Path,
               ) -> tuple[dict[str, Any], EvalResult]:
    """Seed, build, fit, evaluate and write one model of :func:`compare_models`."""
    import torch

    torch.manual_seed(cfg.seed)
    model = build_model(cfg.model, splits.items)
    result, timing = fit_evaluate(model, splits, cfg.eval)
    assert result is not None  # a single process always evaluates
    return write_run(run_dir, cfg, model, splits, result, timing), result


def heavy_first(cfgs: Sequence[RunConfig]) -> list[int]:
    """Indices of ``cfgs``, models that train for epochs first (else in the given order)."""
    return sorted(range(len(cfgs)), key=lambda i: not getattr(
        get_model_class(cfgs[i].model.name), "trains_in_context", False))


def _worker_splits(data_dir: str, dataset: str, threads: int) -> Splits:
    """A :func:`compare_models` worker's start-up: its torch threads and its copy of the data."""
    from sessionrec.torch_env import use_threads

    use_threads(threads)
    return load_splits(Path(data_dir), dataset)


def _worker_fit(splits: Splits, i: int, configs: Sequence[tuple[str, RunConfig]],
                out: str) -> tuple[dict[str, Any], EvalResult]:
    name, cfg = configs[i]
    return _fit_write(splits, cfg, Path(out) / name)


def run_rank(cfg: RunConfig, data_dir: str, dataset: str, run_dir: str, resume: bool,
             device: str) -> None:
    """One rank of ``sessionrec train --nproc N`` (started by
    :func:`sessionrec.training.distributed.launch`): every rank reads the prepared data and
    trains on its share; rank 0 evaluates and writes the run directory."""
    run(cfg, load_splits(Path(data_dir), dataset), Path(run_dir), resume=resume, device=device)
