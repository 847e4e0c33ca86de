"""Every committed simulation config loads, and --build would make what its experiment serves."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from sessionrec.experiments.config import load_experiment
from sessionrec.experiments.simulate import load_simulation

ROOT = Path(__file__).resolve().parents[2]
# Experiment configs have an [experiment] table; simulation configs name theirs.
CONFIGS = sorted(p for p in (ROOT / "configs" / "experiments").glob("*.toml")
                 if isinstance(tomllib.loads(p.read_text(encoding="utf-8")).get("experiment"),
                               str))


def test_there_are_simulations_of_real_and_synthetic_data() -> None:
    names = {p.stem for p in CONFIGS}
    assert {"synthetic", "diginetica", "taobao", "rees46"} <= names


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_simulation_config_loads_and_builds_what_it_serves(path: Path) -> None:
    cfg = load_simulation(path)
    base = path.parent
    experiment = load_experiment(base / cfg.experiment, check_models=False)
    built = {(base / name).resolve() for name in cfg.build.runs}
    served = {v.path.resolve() for v in experiment.variants if v.path is not None}
    if experiment.fallback is not None:
        served.add(experiment.fallback.resolve())
    if experiment.orders is not None:
        served.add(experiment.orders.resolve())
    if cfg.build.study:  # the study's runs: OUT/runs/<variant>/seed<S>
        study_runs = (base / cfg.build.study.out / "runs").resolve()
        served = {p for p in served if study_runs not in p.parents}
    assert served <= built, f"{path.name}: --build would not make {served - built}"
    assert cfg.build.prepare["split"]["method"] == "time"  # the simulated period is held out
    assert experiment.start is None and experiment.end is None  # replayed times are historic
