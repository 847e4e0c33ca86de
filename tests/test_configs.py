"""Every committed run config loads, names a registered model and builds it."""

from __future__ import annotations

from pathlib import Path

import pytest

from sessionrec.config import load_config
from sessionrec.runs import ModelConfig, RunConfig, build_model

ROOT = Path(__file__).resolve().parents[1]
# Run configs; search spaces, studies and experiments have configs of their own kinds.
OTHER_KINDS = ("search", "study", "experiments", "loop")
# configs/quickstart/ holds one of each kind for the quickstart's data.
QUICKSTART_STUDY = ROOT / "configs" / "quickstart" / "study.toml"
QUICKSTART_SPACE = ROOT / "configs" / "quickstart" / "tune-space.toml"
RUN_CONFIGS = sorted(p for p in (ROOT / "configs").rglob("*.toml")
                     if p.relative_to(ROOT / "configs").parts[0] not in OTHER_KINDS
                     and p not in (QUICKSTART_STUDY, QUICKSTART_SPACE))
STUDY_CONFIGS = sorted((ROOT / "configs" / "study").glob("*.toml"))

# The official GRU4Rec parameter files (hidasib/GRU4Rec_PyTorch_Official, paramfiles/ and the
# GRU4Rec class defaults); our configs must reproduce them exactly.
OFFICIAL = {
    "yoochoose-100k/gru4rec-official-best.toml": dict(
        loss="cross-entropy", constrained_embedding=True, embedding=0, elu_param=0.0,
        layers=[100], n_epochs=10, batch_size=32, dropout_p_embed=0.0, dropout_p_hidden=0.4,
        learning_rate=0.2, momentum=0.2, n_sample=2048, sample_alpha=0.5, bpreg=0.0, logq=1.0),
    "yoochoose-100k/gru4rec-official-default.toml": dict(
        loss="cross-entropy", constrained_embedding=True, embedding=0, elu_param=0.5,
        layers=[100], n_epochs=10, batch_size=64, dropout_p_embed=0.0, dropout_p_hidden=0.0,
        learning_rate=0.05, momentum=0.0, n_sample=2048, sample_alpha=0.5, bpreg=1.0, logq=0.0),
    "retailrocket-hgru4rec/gru4rec-official-best.toml": dict(
        loss="bpr-max", constrained_embedding=True, embedding=0, elu_param=0.5, layers=[224],
        n_epochs=10, batch_size=80, dropout_p_embed=0.5, dropout_p_hidden=0.05,
        learning_rate=0.05, momentum=0.4, n_sample=2048, sample_alpha=0.4, bpreg=1.95,
        logq=0.0),
}


@pytest.mark.parametrize("path", RUN_CONFIGS, ids=lambda p: str(p.relative_to(ROOT)))
def test_config_builds(path):
    cfg = load_config(RunConfig, path)
    if cfg.eval.protocol == "candidate-ranking":  # click-probability models (exposure data)
        from sessionrec.candidate_runs import build_click_model

        build_click_model(cfg)
        return
    build_model(cfg.model)


@pytest.mark.parametrize("name", sorted(OFFICIAL))
def test_official_parameter_sets_are_reproduced(name):
    cfg = load_config(RunConfig, ROOT / "configs" / name)
    assert cfg.model.name == "gru4rec"
    assert cfg.model.params == OFFICIAL[name]
    assert cfg.eval.protocol == "next-item"


@pytest.mark.parametrize("path", STUDY_CONFIGS, ids=lambda p: p.name)
def test_study_config_loads_and_builds_every_variant(path):
    from sessionrec.study import StudyConfig, variant_params

    cfg = load_config(StudyConfig, path)
    assert len(cfg.study.seeds) >= 3
    for variant in cfg.study.variants:
        params = variant_params(cfg, variant, cfg.study.seeds[0])
        build_model(ModelConfig("hgru4rec", params))


def test_quickstart_study_and_space_load() -> None:
    from sessionrec.study import StudyConfig, variant_params
    from sessionrec.tuning import load_space

    cfg = load_config(StudyConfig, QUICKSTART_STUDY)
    assert cfg.data.prepared == "sessionrec-quickstart/data"
    for variant in cfg.study.variants:
        build_model(ModelConfig("hgru4rec", variant_params(cfg, variant, cfg.study.seeds[0])))
    space = load_space(QUICKSTART_SPACE)
    assert space.model == "gru4rec"
    assert {p.name for p in space.params} == {"layers", "learning_rate"}
