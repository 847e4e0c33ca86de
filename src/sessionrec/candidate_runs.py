"""Runs of click-probability models: exposure data in, run directory with metrics out.

The candidate-ranking counterpart of :mod:`sessionrec.runs` (``eval.protocol =
"candidate-ranking"``). A run directory holds::

    RUN_DIR/
      config.toml      the resolved RunConfig
      metrics.json     dataset, model, params, protocol, metrics (AUC, P/R/F@K), counts, train
      users.parquet    per-user test AUC (user_idx, auc) for paired t-tests / bootstraps
      scores.parquet   every test exposure: exposure, user_idx, item_idx, click, score
      model/           the fitted model (model.json, weights.pt, items/users.parquet)

written together by :func:`sessionrec.rundir.staged_run`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import polars as pl

from sessionrec.config import deep_merge, dump_toml, from_dict, to_dict
from sessionrec.data.exposures.dataset import Exposures, load_exposures
from sessionrec.data.exposures.prepare import (
    ExposureConfig,
    get_exposure_source,
    is_exposure_dir,
    prepare_exposures,
)
from sessionrec.errors import ConfigError, SessionRecError
from sessionrec.evaluation.candidates import evaluate_candidates
from sessionrec.evaluation.paired_users import compare_users
from sessionrec.evaluation.report import write_results
from sessionrec.models.neural.click import ClickRecommender, get_click_model
from sessionrec.rundir import staged_run
from sessionrec.runs import RunConfig, model_configs, run_each, write_comparison
from sessionrec.training.context import FitContext
from sessionrec.training.distributed import is_main

log = logging.getLogger(__name__)

PROTOCOL = "candidate-ranking"
USERS_FILE, SCORES_FILE = "users.parquet", "scores.parquet"


def exposure_data(cfg: RunConfig, run_dir: Path, data_override: str | None,
                  default_dir: Path | None) -> Path:
    """The prepared exposure directory of a run: given, or prepared now into ``run_dir/data``.

    ``default_dir`` is the source's folder in ../shared/data when no path is configured.
    """
    for given in (data_override, cfg.data.prepared):
        if given and is_exposure_dir(Path(given)):
            return Path(given)
        if given and given == cfg.data.prepared:
            raise SessionRecError(f"data.prepared = {given!r} is not a prepared exposure "
                                  "directory: make it with sessionrec prepare --source kuairand")
    if not cfg.data.source:
        raise SessionRecError("no exposure data: pass --data PREPARED_DIR or set data.source "
                              "(e.g. kuairand) in the config")
    source = get_exposure_source(cfg.data.source)
    raw = Path(data_override or cfg.data.path or (default_dir or ""))
    if not str(raw) or not raw.exists():
        raise SessionRecError(f"no input for source {source.name!r}: pass --data RAW_FOLDER or "
                              f"set data.path (default ../shared/data/{source.shared_dir})")
    out = run_dir / "data"
    prepare_exposures(source, raw, out,
                      from_dict(ExposureConfig, deep_merge(source.defaults, cfg.data.prepare)),
                      overwrite=True)
    return out


def build_click_model(cfg: RunConfig) -> ClickRecommender:
    cls = get_click_model(cfg.model.name)
    return cls(**cfg.model.params)


def fit_score(model: ClickRecommender, data: Exposures, ks: Sequence[int],
              context: FitContext | None = None):
    """Fit on train (valid for early stopping), score test; (result, scores frame, timing)."""
    model.fit(data, context)
    if not is_main():
        return None, None, {}
    rows, scores = model.score_split(data, "test")
    users, labels = data.user[rows], data.click[rows]
    result = evaluate_candidates(users, scores, labels, ks)
    frame = pl.DataFrame({"exposure": rows, "user_idx": users, "item_idx": data.item[rows],
                          "click": labels, "score": scores})
    return result, frame, dict(model.fit_stats_)


def write_candidate_run(run_dir: Path, cfg: RunConfig, model: ClickRecommender, data: Exposures,
                        result, frame: pl.DataFrame, timing: dict[str, Any]) -> dict[str, Any]:
    payload = {"dataset": data.name, "model": model.name, "params": model.get_params(),
               "protocol": PROTOCOL, "ties": "pessimistic", "metrics": result.metrics(),
               "counts": result.counts(), "n_predictions": result.n_exposures,
               "train": timing}
    with staged_run(run_dir) as stage:
        (stage / "config.toml").write_text(dump_toml(to_dict(cfg)), encoding="utf-8")
        model.save(stage / "model")
        result.auc_frame().write_parquet(stage / USERS_FILE)
        frame.write_parquet(stage / SCORES_FILE)
        write_results(stage, payload)
    return payload


def run_candidates(cfg: RunConfig, data_dir: Path, run_dir: Path, resume: bool = False,
                   device: str = "auto") -> dict[str, Any]:
    """Build, fit, evaluate and write one click-probability run; returns its payload."""
    import torch

    torch.manual_seed(cfg.seed)
    model = build_click_model(cfg)
    data = load_exposures(data_dir, cfg.data.dataset)
    context = FitContext(Path(run_dir) / "checkpoints", resume=resume, device=device)
    result, frame, timing = fit_score(model, data, cfg.eval.ks, context)
    if result is None:
        return {}
    return write_candidate_run(Path(run_dir), cfg, model, data, result, frame, timing)


def summary_line(payload: dict[str, Any]) -> str:
    m = payload["metrics"]
    return (f"{payload['model']} on {payload['dataset']}: AUC {m['auc']:.4f}, P@50 "
            f"{m.get('p@50', float('nan')):.4f}, R@50 {m.get('r@50', float('nan')):.4f} over "
            f"{payload['counts']['auc_users']:,} users; fit "
            f"{payload['train']['train_seconds']:.1f} s")


def read_user_auc(run_dir: Path) -> pl.DataFrame:
    return pl.read_parquet(Path(run_dir) / USERS_FILE)


def compare_runs(runs: dict[str, Path], baseline: str) -> dict[str, dict[str, Any]]:
    """Paired t-test + bootstrap of each run's per-user AUC minus ``baseline``'s."""
    if baseline not in runs:
        raise ConfigError(f"baseline {baseline!r} is not one of the runs {list(runs)}")
    base = read_user_auc(runs[baseline])
    return {name: compare_users(read_user_auc(d), base).to_dict()
            for name, d in runs.items() if name != baseline}


def evaluate_models(data_dir: Path, models: Sequence[str], params: Sequence[str], out: Path,
                    baseline: str | None, on_run=None) -> tuple[str, list[dict[str, Any]]]:
    """``sessionrec evaluate --protocol candidate-ranking``: fit several click models on one
    prepared exposure directory, write ``out/<model>/`` runs and ``out/results.md``."""
    for name in models:
        get_click_model(name)
    configs = model_configs(models, params, [f"eval.protocol={PROTOCOL}",
                                             "eval.ks=[10,20,30,40,50,60,70,80,90,100]"])
    payloads = run_each(configs, lambda name, cfg: run_candidates(cfg, data_dir, out / name),
                        on_run)
    dirs = {name: out / name for name, _ in configs}
    base = baseline or models[0]
    tests = compare_runs(dirs, base) if len(dirs) > 1 else {}
    lines = ["| Model | AUC | P@50 | R@50 | F@50 | users (AUC) |", "|---|---:|---:|---:|---:|---:|"]
    for p in payloads:
        m = p["metrics"]
        lines.append(f"| {p['model']} | {m['auc']:.4f} | {m['p@50']:.4f} | {m['r@50']:.4f} | "
                     f"{m['f@50']:.4f} | {p['counts']['auc_users']:,} |")
    if tests:
        lines += ["", f"Per-user AUC minus `{base}` (paired t-test; paired bootstrap 95% CI):",
                  "", "| Model | Δ AUC | t | p | bootstrap CI |", "|---|---:|---:|---:|---:|"]
        for name, t in tests.items():
            lines.append(f"| {name} | {t['difference']:+.4f} | {t['t']:.2f} | {t['p_value']:.2g}"
                         f" | [{t['boot_low']:+.4f}, {t['boot_high']:+.4f}] |")
    text = "\n".join(lines) + "\n"
    write_comparison(out, text, {"runs": payloads, "paired_vs": base, "tests": tests})
    return text, payloads
