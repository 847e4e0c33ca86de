"""What a simulation needs before it can start, made from its config (``simulate --build``).

In order, each only when missing: the raw data (the synthetic Galaxus-format generator with
orders, for ``[build.synth]``), the prepared data (``sessionrec prepare`` with the source's
defaults and ``[build.prepare]`` overrides: the split must hold out the simulated period by
time) and every run of ``[build.runs]`` (``sessionrec train`` on that prepared data, single
threaded). Also: the check that every served model was trained on the prepared data whose end
is the simulation's cut-off.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from sessionrec.errors import ConfigError, SessionRecError
from sessionrec.experiments.config import ExperimentConfig
from sessionrec.experiments.simulate import SimulationConfig

log = logging.getLogger(__name__)



def under(base: Path, relative: str | Path) -> Path:
    """``base / relative`` without ``dir/..`` detours (paths are shown to the user as is)."""
    return Path(os.path.normpath(base / relative))

def build(cfg: SimulationConfig, base: Path, say: Callable[[str], None] = log.info) -> None:
    """Make the raw data, prepared data and runs of ``cfg`` that do not exist yet.

    ``base`` is the simulation TOML's folder (paths in ``cfg`` are relative to it).
    """
    b = cfg.build
    if not b.source:
        raise ConfigError("--build needs build.source (the source adapter of the raw data) in "
                          "the simulation config")
    raw, prepared = raw_path(cfg, base), under(base, cfg.prepared)
    if not raw.exists():
        if b.synth.events <= 0:
            raise ConfigError(f"raw data {raw} does not exist and build.synth.events is not set")
        from sessionrec.data.synth import generate

        say(f"generating {b.synth.events:,} synthetic events with orders in {raw}")
        generate(raw, b.synth.events, seed=b.synth.seed, n_users=b.synth.users,
                 n_items=b.synth.items, events_per_shard=b.synth.events_per_shard, orders=True)
    if not (prepared / "manifest.json").is_file():
        from sessionrec.config import deep_merge, from_dict
        from sessionrec.data.prepare import PrepareConfig, prepare
        from sessionrec.data.sources import get_source

        source = get_source(b.source)
        prep = from_dict(PrepareConfig, deep_merge(source.defaults, b.prepare))
        say(f"preparing {raw} ({b.source}) into {prepared}")
        prepare(source, raw, prepared, prep, overwrite=prepared.exists())
    for name, spec in b.runs.items():
        run_dir = under(base, name)
        if (run_dir / "model").is_dir():
            continue
        params = dict(spec.params)
        if spec.model == "obt" and "orders" not in params:
            params["orders"] = str(orders_of(prepared, raw, say))
        train_run(run_dir, prepared, spec.model, params, spec.seed, cfg.dataset or b.source, say)
    if b.study and not (under(base, b.study.out) / "study.json").is_file():
        run_study(under(base, b.study.config), prepared, under(base, b.study.out),
                  b.study.seeds, b.study.set, say)


def orders_of(prepared: Path, raw: Path, say: Callable[[str], None] = log.info) -> Path:
    """``prepared/orders.parquet`` (written from ``raw``'s purchases when missing)."""
    from sessionrec.data.orders import ORDERS_FILE, write_orders

    path = prepared / ORDERS_FILE
    if not path.is_file():
        meta = write_orders(prepared, raw)
        say(f"wrote {meta['orders']:,} orders ({meta['lines']:,} lines) into {path}")
    return path


def raw_path(cfg: SimulationConfig, base: Path, given: str | None = None) -> Path:
    """The raw data to prepare and replay: ``given`` (``--data``), the config's ``raw``, the
    input recorded by the prepared data, or the source's folder in ``../shared/data``."""
    if given:
        return Path(given)
    if cfg.raw:
        return under(base, cfg.raw)
    manifest = under(base, cfg.prepared) / "manifest.json"
    if manifest.is_file():
        return Path(json.loads(manifest.read_text(encoding="utf-8"))["input"])
    if cfg.build.source:
        from sessionrec.cli import default_input
        from sessionrec.data.sources import get_source

        return default_input(get_source(cfg.build.source))
    raise ConfigError("no raw data: set raw in the simulation config or pass --data")


def train_run(run_dir: Path, prepared: Path, model: str, params: dict, seed: int,
              dataset: str, say: Callable[[str], None] = log.info) -> dict:
    """``sessionrec train`` of one model on ``prepared`` into ``run_dir`` (one torch thread)."""
    from sessionrec.runs import DataConfig, EvalConfig, ModelConfig, RunConfig, load_splits, run

    # Relative to the run, so the served model finds its vocabulary wherever the tree moves.
    data = DataConfig(dataset=dataset, prepared=os.path.relpath(prepared, run_dir))
    cfg = RunConfig(data=data, model=ModelConfig(name=model, params=dict(params)),
                    eval=EvalConfig(threads=1), seed=seed)
    say(f"training {model} on {prepared} into {run_dir}")
    run_dir.mkdir(parents=True, exist_ok=True)
    return run(cfg, load_splits(prepared, dataset), run_dir)


def run_study(config: Path, prepared: Path, out: Path, seeds, overrides,
              say: Callable[[str], None] = log.info) -> None:
    """``sessionrec study`` (a child process) on ``prepared`` into ``out``."""
    command = [sys.executable, "-m", "sessionrec.cli", "study", "--config", str(config),
               "--data", str(prepared.resolve()), "--out", str(out)]
    if seeds:
        command += ["--seeds", *(str(s) for s in seeds)]
    for text in overrides:
        command += ["--set", str(text)]
    say(f"running the study {config} on {prepared} into {out}")
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise SessionRecError(f"the study failed ({' '.join(command)}): "
                              f"{done.stderr[-2000:]}")


def check_trained_on(experiment: ExperimentConfig, prepared: Path) -> None:
    """Refuse variants whose model was trained on another vocabulary than ``prepared``'s.

    The cut-off is the end of ``prepared``'s train and valid data; a model fitted on other data
    may have seen the simulated period.
    """
    from sessionrec.modeldir import model_directory, saved_vocab
    from sessionrec.models.base import CONFIG_FILE
    from sessionrec.vocab import Vocabulary

    expected = Vocabulary.read(prepared).fingerprint
    dirs = {v.name: v.path for v in experiment.variants if v.path is not None}
    if any(v.baseline for v in experiment.variants) and experiment.fallback is not None:
        dirs["(baseline cooc run)"] = experiment.fallback
    if experiment.orders is not None:
        dirs["(often-bought-together orders run)"] = experiment.orders
    for name, path in dirs.items():
        model_dir, _ = model_directory(path)
        found = saved_vocab(model_dir)
        if found != expected:
            raise ConfigError(
                f"variant {name}: the model in {model_dir} was trained on vocabulary "
                f"{found or 'unknown'} ({model_dir / CONFIG_FILE}), not on the prepared data "
                f"{prepared} ({expected}) whose end is the simulation's cut-off; train it on "
                "that data (simulate --build does) so it has seen nothing of the simulated "
                "period")


def offline_metrics(experiment: ExperimentConfig) -> dict[str, dict]:
    """The offline test metrics of each variant's run (``metrics.json``), where there is one."""
    out = {}
    for v in experiment.variants:
        path = v.path if v.path is not None else experiment.fallback
        if path is None:
            continue
        run_dir = path if (path / "metrics.json").is_file() else path.parent
        f = run_dir / "metrics.json"
        if f.is_file():
            m = json.loads(f.read_text(encoding="utf-8"))
            out[v.name] = {"model": m.get("model"), **{k: m["metrics"][k] for k in (
                "recall@20", "mrr@20") if k in m.get("metrics", {})}}
    return out
