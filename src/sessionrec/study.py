"""The four-variant study of seed 000 (chapters 4–5): does the user's history help, and do
Meta-Prod2Vec item embeddings beat one-hot inputs?

Variants (all :class:`~sessionrec.models.hgru4rec.HGRU4Rec`, so that the training walk over
users, the optimiser and early stopping on validation MRR@10 are the same for all four and only
the factor under study changes):

=========================  ================================  =================================
variant                    user level                        item input
=========================  ================================  =================================
``OnlySession-OneHot``     none (sessions start from zero)   one-hot (GRU4Rec's equivalent)
``OnlySession-Embedding``  none                              Meta-Prod2Vec vectors
``WithUser-OneHot``        user GRU initialises sessions     one-hot
``WithUser-Embedding``     user GRU initialises sessions     Meta-Prod2Vec vectors
=========================  ================================  =================================

Every variant runs once per seed on the same prepared data (same splits, usually each user's
last session as test and the one before as valid). For each seed, Meta-Prod2Vec is trained on
the train split with that seed. Each run is an ordinary run directory (``config.toml``,
``metrics.json``, ``ranks.parquet``, ``model/``), so a killed study resumes by skipping the runs
already finished.

Comparisons are paired: per test prediction the metric is averaged over seeds, then a paired
bootstrap over test sessions (clusters) gives the difference of two variants with its 95%
interval. "WithUser beats OnlySession" means the interval lies above zero.

Layout of ``OUT``::

    study.toml        the resolved configuration (a different one in OUT is refused)
    data/             the prepared data (unless data.prepared is given)
    embeddings/       seed<S>.parquet: the Meta-Prod2Vec store of each seed
    runs/<variant>/seed<S>/   one run directory per variant and seed
    study.json        every number of the tables below, machine-readable
    study.md          results table, comparisons, timing, plots
    plots/            bar plot per metric, PCA of item embeddings and of user states
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from sessionrec.config import dump_toml, to_dict
from sessionrec.data.io import atomic_write_text
from sessionrec.embeddings.metaprod2vec import MetaProd2VecConfig
from sessionrec.errors import ConfigError, DataError
from sessionrec.evaluation.metrics import metric_values
from sessionrec.evaluation.significance import paired_bootstrap
from sessionrec.runs import (
    RANKS_FILE,
    DataConfig,
    EvalConfig,
    ModelConfig,
    RunConfig,
    Splits,
    run,
)

log = logging.getLogger(__name__)

# variant -> (user level, pre-trained item vectors)
VARIANTS: dict[str, tuple[bool, bool]] = {
    "OnlySession-OneHot": (False, False),
    "OnlySession-Embedding": (False, True),
    "WithUser-OneHot": (True, False),
    "WithUser-Embedding": (True, True),
}
METRIC_KS = (5, 10, 20)
STUDY_FILE = "study.toml"


@dataclass(frozen=True)
class StudySettings:
    seeds: tuple[int, ...] = (0, 1, 2)
    variants: tuple[str, ...] = tuple(VARIANTS)
    user_layers: tuple[int, ...] = (100,)  # the user GRU of the WithUser variants
    freeze_item_vectors: bool = True  # Embedding variants: keep Meta-Prod2Vec vectors fixed
    n_boot: int = 2000  # bootstrap replicates of each comparison
    pca_items: int = 3000  # most frequent items drawn in the embedding PCA plot
    pca_types: int = 8  # product types with a colour of their own in the PCA plots


@dataclass(frozen=True)
class StudyModelConfig(ModelConfig):
    name: str = "hgru4rec"  # the only model the study runs (shared params below)


@dataclass(frozen=True)
class StudyConfig:
    data: DataConfig = field(default_factory=DataConfig)
    model: StudyModelConfig = field(default_factory=StudyModelConfig)
    embedding: MetaProd2VecConfig = field(default_factory=MetaProd2VecConfig)
    eval: EvalConfig = field(default_factory=lambda: EvalConfig(ks=(1, 5, 10, 20)))
    study: StudySettings = field(default_factory=StudySettings)

    def __post_init__(self) -> None:
        s = self.study
        if self.model.name != "hgru4rec":
            raise ConfigError(f"study: model.name must be 'hgru4rec' (its user level is what "
                              f"the study switches on and off), got {self.model.name!r}")
        if self.model.item_vectors:
            raise ConfigError("study: leave model.item_vectors empty; the Embedding variants "
                              "train their own Meta-Prod2Vec vectors ([embedding] settings)")
        unknown = [v for v in s.variants if v not in VARIANTS]
        if unknown or not s.variants or len(set(s.variants)) != len(s.variants):
            raise ConfigError(f"study.variants: unknown or repeated {unknown or s.variants}; "
                              f"choose from {list(VARIANTS)}")
        if len(s.seeds) < 1 or len(set(s.seeds)) != len(s.seeds):
            raise ConfigError(f"study.seeds must be distinct and non-empty, got {s.seeds}")
        if any(h < 1 for h in s.user_layers) or not s.user_layers:
            raise ConfigError(f"study.user_layers must be positive sizes, got {s.user_layers}")
        if s.n_boot < 100:
            raise ConfigError(f"study.n_boot must be at least 100, got {s.n_boot}")
        missing = [k for k in METRIC_KS if k not in self.eval.ks]
        if missing:
            raise ConfigError(f"eval.ks must include {list(METRIC_KS)} (the study's table); "
                              f"missing {missing}")


def variant_params(cfg: StudyConfig, variant: str, seed: int) -> dict[str, Any]:
    """The hgru4rec parameters of one variant and seed (shared params + the variant's)."""
    user, embedded = VARIANTS[variant]
    params = dict(cfg.model.params)
    params["seed"] = seed
    if user:
        params["user_layers"] = list(cfg.study.user_layers)
    else:
        params.update(user_layers=[], user_propagation="init", user_to_output=False)
    if not embedded:  # one-hot-equivalent input
        params.update(constrained_embedding=False, embedding=0, item_vectors="")
    return params


def variant_config(cfg: StudyConfig, variant: str, seed: int, data_dir: Path,
                   store: Path | None) -> RunConfig:
    """The run configuration of one variant and seed."""
    embedded = VARIANTS[variant][1]
    if embedded and store is None:
        raise ConfigError(f"study: variant {variant} needs the seed's embedding store")
    model = ModelConfig(name="hgru4rec", params=variant_params(cfg, variant, seed),
                        item_vectors=str(store) if embedded else "",
                        freeze_item_vectors=cfg.study.freeze_item_vectors)
    data = DataConfig(dataset=cfg.data.dataset, prepared=str(data_dir))
    return RunConfig(data=data, model=model, eval=cfg.eval, seed=seed)


# -- running ---------------------------------------------------------------------------------
def run_dir(out: Path, variant: str, seed: int) -> Path:
    return out / "runs" / variant / f"seed{seed}"


def _is_done(path: Path) -> bool:
    return (path / "metrics.json").is_file() and (path / RANKS_FILE).is_file()


def train_embeddings(cfg: StudyConfig, data_dir: Path, out: Path, seed: int) -> Path:
    """The seed's Meta-Prod2Vec store (trained on the train split), reused when present."""
    from sessionrec.embeddings.metaprod2vec import to_store, train_prepared
    from sessionrec.embeddings.store import write_store

    path = out / "embeddings" / f"seed{seed}.parquet"
    if path.is_file():
        return path
    model, items = train_prepared(data_dir, dataclasses.replace(cfg.embedding, seed=seed))
    path.parent.mkdir(parents=True, exist_ok=True)
    write_store(path, to_store(model, items, source=str(data_dir)), overwrite=True)
    return path


def run_study(cfg: StudyConfig, splits: Splits, data_dir: Path, out: Path,
              on_run: Callable[[str, int, dict[str, Any]], None] | None = None,
              ) -> dict[str, Any]:
    """Run every variant for every seed (skipping finished runs), then summarise.

    Returns the summary written to ``OUT/study.json``.
    """
    out = Path(out)
    embed_seconds: dict[int, float] = {}
    for seed in cfg.study.seeds:
        store = None
        if any(VARIANTS[v][1] for v in cfg.study.variants):
            t0 = time.perf_counter()
            store = train_embeddings(cfg, data_dir, out, seed)
            embed_seconds[seed] = time.perf_counter() - t0
        for variant in cfg.study.variants:
            where = run_dir(out, variant, seed)
            if _is_done(where):
                log.info("study: %s seed %d already done", variant, seed)
                payload = json.loads((where / "metrics.json").read_text(encoding="utf-8"))
            else:
                payload = run(variant_config(cfg, variant, seed, data_dir, store), splits, where)
            if on_run is not None:
                on_run(variant, seed, payload)
    summary = summarise(cfg, out, splits)
    summary["embedding_seconds"] = {str(k): v for k, v in embed_seconds.items()}
    atomic_write_text(out / "study.json", json.dumps(summary, indent=2))
    return summary


# -- summarising -----------------------------------------------------------------------------
def table_metrics() -> list[str]:
    return [f"{m}@{k}" for m in ("recall", "mrr") for k in METRIC_KS]


def _per_prediction(path: Path, metric: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(target_event, session, metric value) of a run's predictions, sorted by target event."""
    ranks = pl.read_parquet(path / RANKS_FILE).sort("target_event")
    return (ranks["target_event"].to_numpy(), ranks["session"].to_numpy(),
            metric_values(metric, ranks["rank"].to_numpy()))


def seed_values(out: Path, variant: str, seeds: tuple[int, ...],
                metric: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-prediction ``metric`` of every seed: (target events, sessions, values [seeds, n])."""
    target = session = None
    rows = []
    for seed in seeds:
        t, s, v = _per_prediction(run_dir(out, variant, seed), metric)
        if target is None:
            target, session = t, s
        elif not np.array_equal(t, target):
            raise DataError(f"study: {variant} seed {seed} was evaluated on other predictions "
                            f"than seed {seeds[0]}; the runs do not share one test split",
                            path=str(run_dir(out, variant, seed)))
        rows.append(v)
    assert target is not None and session is not None
    return target, session, np.stack(rows)


def seed_mean_values(out: Path, variant: str, seeds: tuple[int, ...],
                     metric: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-prediction ``metric`` averaged over seeds: (target events, sessions, values)."""
    target, session, values = seed_values(out, variant, seeds, metric)
    return target, session, values.mean(axis=0)


def comparisons(cfg: StudyConfig) -> list[tuple[str, str]]:
    """(variant, baseline) pairs: user level at each input, embedding at each level."""
    have = set(cfg.study.variants)
    pairs = [("WithUser-OneHot", "OnlySession-OneHot"),
             ("WithUser-Embedding", "OnlySession-Embedding"),
             ("OnlySession-Embedding", "OnlySession-OneHot"),
             ("WithUser-Embedding", "WithUser-OneHot")]
    return [(a, b) for a, b in pairs if a in have and b in have]


def compare(out: Path, cfg: StudyConfig, a: str, b: str, metric: str) -> dict[str, Any]:
    """Paired cluster bootstrap of ``a - b`` on seed-averaged per-prediction ``metric``."""
    ta, sa, va = seed_values(out, a, cfg.study.seeds, metric)
    tb, _, vb = seed_values(out, b, cfg.study.seeds, metric)
    if not np.array_equal(ta, tb):
        raise DataError(f"study: {a} and {b} were evaluated on different predictions")
    ci = paired_bootstrap(va.mean(axis=0), vb.mean(axis=0), n_boot=cfg.study.n_boot, seed=0,
                          cluster=sa).to_dict()
    ci["per_seed"] = [float(x) for x in va.mean(axis=1) - vb.mean(axis=1)]
    ci["verdict"] = ("higher" if ci["low"] > 0 else "lower" if ci["high"] < 0
                     else "no significant difference")
    return ci


def _mean_std(values: list[float]) -> dict[str, float]:
    arr = np.asarray(values, dtype=np.float64)
    return {"mean": float(arr.mean()), "std": float(arr.std(ddof=1)) if len(arr) > 1 else 0.0,
            "values": [float(x) for x in arr]}


def summarise(cfg: StudyConfig, out: Path, splits: Splits) -> dict[str, Any]:
    """Mean ± std over seeds per variant, timing, and the paired comparisons."""
    variants: dict[str, Any] = {}
    for variant in cfg.study.variants:
        payloads = [json.loads((run_dir(out, variant, s) / "metrics.json").read_text("utf-8"))
                    for s in cfg.study.seeds]
        train = [p["train"] for p in payloads]
        per_epoch = [t["train_seconds"] / max(t["epochs"], 1) for t in train]
        variants[variant] = {
            "metrics": {m: _mean_std([p["metrics"][m] for p in payloads])
                        for m in table_metrics()},
            "epochs": _mean_std([t["epochs"] for t in train]),
            "seconds_per_epoch": _mean_std(per_epoch),
            "events_per_s": _mean_std([t["events_per_s"] for t in train]),
            "fit_seconds": _mean_std([t["seconds"] for t in train]),
            "best_valid_mrr@10": _mean_std([t["history"]["best_score"] for t in train
                                            if t["history"].get("best_score") is not None]
                                           or [float("nan")]),
            "n_predictions": payloads[0]["n_predictions"],
            "item_input": payloads[0]["params"].get("item_vectors") or "onehot",
        }
    diffs = {f"{a} vs {b}": {m: compare(out, cfg, a, b, m) for m in ("mrr@20", "recall@20",
                                                                       "mrr@10", "recall@10")}
             for a, b in comparisons(cfg)}
    users = splits.test.users
    return {
        "dataset": splits.name,
        "seeds": list(cfg.study.seeds),
        "data": {"train_events": int(splits.train.n_events),
                 "train_sessions": int(splits.train.n_sessions),
                 "valid_sessions": int(splits.valid.n_sessions),
                 "test_sessions": int(splits.test.n_sessions),
                 "test_users": len(np.unique(users[users >= 0])),
                 "items": int(splits.train.n_items),
                 "item_metadata": _metadata_fields(splits.items)},
        "protocol": cfg.eval.protocol, "ties": cfg.eval.ties,
        "variants": variants,
        "comparisons": diffs,
        "config": to_dict(cfg),
    }


def _metadata_fields(items: pl.DataFrame | None) -> list[str]:
    if items is None:
        return []
    return [c for c in ("brand", "category", "price")
            if c in items.columns and items[c].null_count() < items.height]


# -- the Markdown summary --------------------------------------------------------------------
def _cell(stat: dict[str, float], digits: int = 4) -> str:
    return f"{stat['mean']:.{digits}f} ± {stat['std']:.{digits}f}"


def markdown(summary: dict[str, Any], plots: list[str] | None = None) -> str:
    """The study's tables in Markdown (from ``study.json``'s content)."""
    d = summary["data"]
    meta = ", ".join(d["item_metadata"]) or "none (Meta-Prod2Vec = plain prod2vec here)"
    seeds = summary["seeds"]
    lines = [f"Dataset `{summary['dataset']}`: {d['train_events']:,} train events in "
             f"{d['train_sessions']:,} sessions, {d['items']:,} items, "
             f"{d['test_sessions']:,} test sessions of {d['test_users']:,} users; item "
             f"metadata: {meta}. Seeds {seeds} (mean ± std over seeds); "
             f"{summary['protocol']} protocol, {summary['ties']} ties, full ranking.", "",
             "| Variant | " + " | ".join(m.replace("recall", "Recall").replace("mrr", "MRR")
                                        for m in table_metrics()) + " |",
             "|---|" + "---:|" * len(table_metrics())]
    for name, v in summary["variants"].items():
        lines.append(f"| {name} | " + " | ".join(_cell(v["metrics"][m])
                                                  for m in table_metrics()) + " |")
    lines += ["", "Training (per variant, mean ± std over seeds):", "",
              "| Variant | epochs (early stop) | s / epoch | events/s | best valid MRR@10 |",
              "|---|---:|---:|---:|---:|"]
    for name, v in summary["variants"].items():
        lines.append(f"| {name} | {_cell(v['epochs'], 1)} | {_cell(v['seconds_per_epoch'], 2)} "
                     f"| {v['events_per_s']['mean']:,.0f} ± {v['events_per_s']['std']:,.0f} | "
                     f"{_cell(v['best_valid_mrr@10'])} |")
    if summary["comparisons"]:
        lines += ["", "Paired differences (per-prediction metric averaged over seeds, cluster "
                      "bootstrap over test sessions, 95% CI):", "",
                  "| Comparison | metric | difference [95% CI] | per seed | verdict |",
                  "|---|---|---:|---|---|"]
        for name, per in summary["comparisons"].items():
            for metric, c in per.items():
                seeds_txt = ", ".join(f"{x:+.4f}" for x in c["per_seed"])
                lines.append(f"| {name} | {metric} | {c['estimate']:+.4f} "
                             f"[{c['low']:+.4f}, {c['high']:+.4f}] | {seeds_txt} | "
                             f"{c['verdict']} |")
    if plots:
        lines += [""] + [f"![{Path(p).stem}]({p})" for p in plots]
    return "\n".join(lines) + "\n"


def write_markdown(out: Path, summary: dict[str, Any], plots: list[str]) -> Path:
    path = Path(out) / "study.md"
    atomic_write_text(path, markdown(summary, plots))
    return path


# Settings that do not change what a finished run computed: a study may go on with more seeds
# or variants, or other report settings, in the same OUT.
_NOT_IDENTITY = ("seeds", "variants", "n_boot", "pca_items", "pca_types")


def _identity(cfg: StudyConfig) -> dict[str, Any]:
    d = to_dict(cfg)
    d["study"] = {k: v for k, v in d["study"].items() if k not in _NOT_IDENTITY}
    return d


def check_out_dir(cfg: StudyConfig, out: Path) -> None:
    """Write ``OUT/study.toml``, or refuse an ``OUT`` holding a different study.

    A study may be continued (killed runs are redone, finished ones kept) or extended with
    more seeds or variants; any other change of configuration needs a new ``OUT``.
    """
    from sessionrec.config import load_config

    path = Path(out) / STUDY_FILE
    if path.is_file():
        try:
            old = load_config(StudyConfig, path, what="study configuration")
        except ConfigError as err:
            raise ConfigError(f"{out} holds no study this version can read: {err}; choose "
                              "another --out") from err
        if _identity(old) != _identity(cfg):
            raise ConfigError(f"{out} holds a study with another configuration ({path}); "
                              "choose another --out, or delete it to start over")
        atomic_write_text(path, dump_toml(to_dict(cfg)))
        return
    if Path(out).is_dir() and any(Path(out).iterdir()):
        raise ConfigError(f"{out} is not empty and holds no study; choose another --out")
    Path(out).mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, dump_toml(to_dict(cfg)))


# -- figures ---------------------------------------------------------------------------------
def _item_types(items: pl.DataFrame | None, n_items: int) -> np.ndarray | None:
    """The product type (``category``) of each item index, or None without that column."""
    if items is None or "category" not in items.columns:
        return None
    col = items.sort("item_idx")["category"] if "item_idx" in items.columns else \
        items["category"]
    if col.null_count() == len(col) or len(col) != n_items:
        return None
    return np.asarray(col.cast(pl.String).to_list(), dtype=object)


def _user_types(splits: Splits, types: np.ndarray, user_ids: np.ndarray) -> np.ndarray:
    """Each user's most viewed product type in train (ties: the first type in sort order)."""
    s = splits.train
    lengths = np.diff(s.offsets)
    event_user = np.repeat(s.users, lengths)
    known = event_user >= 0
    frame = pl.DataFrame({"user": event_user[known],
                          "type": types[s.items[known]].astype(str)})
    top = (frame.group_by("user", "type").len()
           .sort(["user", "len", "type"], descending=[False, True, False])
           .group_by("user", maintain_order=True).first())
    lookup = dict(zip(top["user"].to_list(), top["type"].to_list(), strict=True))
    return np.asarray([lookup.get(int(u)) for u in user_ids], dtype=object)


def write_plots(cfg: StudyConfig, summary: dict[str, Any], out: Path,
                splits: Splits) -> list[Path]:
    """Bar plots per metric, PCA of the first seed's item embeddings and of user states."""
    from sessionrec.embeddings.store import load_item_vectors
    from sessionrec.models.base import SessionRecommender
    from sessionrec.reports.study_plots import bar_plots, pca_scatter

    plots = Path(out) / "plots"
    written = bar_plots(summary, table_metrics(), plots)
    seed = cfg.study.seeds[0]
    n_items = splits.train.n_items
    types = _item_types(splits.items, n_items)
    type_note = "" if types is not None else " (no product types in this dataset)"
    store = Path(out) / "embeddings" / f"seed{seed}.parquet"
    if store.is_file() and splits.items is not None:
        vectors = load_item_vectors(store, splits.items).numpy()
        counts = np.bincount(splits.train.items, minlength=n_items)
        top = np.argsort(-counts, kind="stable")[: cfg.study.pca_items]
        written.append(pca_scatter(
            vectors[top], None if types is None else types[top],
            f"{summary['dataset']}: Meta-Prod2Vec item vectors\n{len(top):,} most viewed "
            f"items{type_note}", plots / "pca_items.png", cfg.study.pca_types))
    for variant in ("WithUser-Embedding", "WithUser-OneHot"):
        where = run_dir(out, variant, seed) / "model"
        if variant in cfg.study.variants and where.is_dir():
            model = SessionRecommender.load(where)
            ids = model.user_ids_.numpy()
            states = model.user_states_.numpy()
            labels = None if types is None else _user_types(splits, types, ids)
            written.append(pca_scatter(
                states, labels, f"{summary['dataset']}: user states of {variant}\n"
                f"{len(ids):,} users, coloured by their most viewed type{type_note}",
                plots / "pca_users.png", cfg.study.pca_types))
            break
    return written
