"""The experiment config: a valid file read back, and every kind of bad input refused with the
file and the key named."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from sessionrec.errors import ConfigError
from sessionrec.experiments.config import ExperimentConfig, VariantSpec, load_experiment

HEADER = """[experiment]
name = "thesis-2026"
salt = "pepper"
"""

TWO_BASELINES = """
[variants.control]
model = "often-bought-together"
weight = 0.5
[variants.popular]
model = "popular"
weight = 0.5
"""


def fake_run(root: Path, name: str) -> Path:
    """A run directory as `sessionrec train` leaves it (only what the config looks at)."""
    model = root / "runs" / name / "model"
    model.mkdir(parents=True)
    (model / "model.json").write_text("{}")
    return model.parent


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "exp.toml"
    path.write_text(text)
    return path


def test_a_full_config(tmp_path):
    fake_run(tmp_path, "gru4rec")
    fake_run(tmp_path, "cooc")
    path = write(tmp_path, """[experiment]
name = "thesis-2026"
salt = "pepper"
unit = "session"
start = "2026-01-01T00:00:00Z"
end = 2026-02-01T01:00:00+01:00
attribution_window_days = 7
holdout = 0.1
control = "obt"
recommendation_ttl_days = 3

[variants.obt]
model = "cooc"
weight = 0.25
[variants.gru]
model = "runs/gru4rec"
weight = 0.75
""")
    cfg = load_experiment(path)
    assert cfg == ExperimentConfig(
        "thesis-2026", "pepper", "session", datetime(2026, 1, 1, tzinfo=UTC),
        datetime(2026, 2, 1, tzinfo=UTC), 7.0, 0.1, "obt", 3.0,
        (VariantSpec("obt", "cooc", 0.25), VariantSpec("gru", "runs/gru4rec", 0.75,
                                                      tmp_path / "runs/gru4rec")),
        tmp_path / "runs" / "cooc")  # the sibling of runs/gru4rec serves the baseline
    assert cfg.weights() == {"obt": 0.25, "gru": 0.75}
    assert cfg.variant_names() == ["obt", "gru"]
    assert cfg.variant("obt").baseline == "cooc" and cfg.variant("gru").baseline is None
    assert cfg.active(datetime(2026, 1, 1, tzinfo=UTC))
    assert not cfg.active(datetime(2026, 2, 1, tzinfo=UTC))  # end is exclusive


def test_defaults_and_an_explicit_fallback(tmp_path):
    fake_run(tmp_path, "my-cooc")
    path = write(tmp_path, HEADER + 'fallback = "runs/my-cooc"\n' + TWO_BASELINES)
    cfg = load_experiment(path)
    assert (cfg.unit, cfg.start, cfg.end, cfg.attribution_window_days, cfg.holdout,
            cfg.control, cfg.recommendation_ttl_days) == ("user", None, None, 14.0, 0.0,
                                                          "control", 30.0)
    assert cfg.fallback == tmp_path / "runs" / "my-cooc"
    assert [v.baseline for v in cfg.variants] == ["cooc", "pop"]


def test_without_checking_models(tmp_path):
    path = write(tmp_path, HEADER + '[variants.control]\nmodel = "runs/absent"\nweight = 1\n')
    assert load_experiment(path, check_models=False).variants[0].path == (
        tmp_path / "runs" / "absent")
    with pytest.raises(ConfigError, match=r"variants\.control\.model"):
        load_experiment(path)


VARIANTS_OK = '[variants.control]\nmodel = "cooc"\nweight = 1\n'
BAD = [
    (HEADER + '[variants.control]\nmodel = "cooc"\nweight = 0.6\n'
              '[variants.b]\nmodel = "pop"\nweight = 0.3\n',
     r"variants.\*.weight: weights must sum to 1, got 0.9 \(control=0.6, b=0.3\)"),
    (HEADER + '[variants.control]\nmodel = "cooc"\nweight = 1.5\n'
              '[variants.b]\nmodel = "pop"\nweight = -0.5\n',
     "variants.b.weight: must not be negative, got -0.5"),
    (HEADER + '[variants.control]\nmodel = "runs/nope"\nweight = 1\n',
     r"variants.control.model: 'runs/nope': no such directory .*runs[/\\]nope"),
    (HEADER + '[variants.control]\nmodel = "cooc"\nweight = 0.5\n'
              '[variants.control]\nmodel = "pop"\nweight = 0.5\n',
     r"variants.control: duplicate variant name 'control' \(lines 4 and 7\)"),
    (HEADER + '[variants]\ncontrol = {model = "cooc", weight = 0.5}\n'
              'control = {model = "pop", weight = 0.5}\n',
     r"variants.control: set twice \(line 6\)"),
    (HEADER + '[variants.control]\nmodel = "cooc"\nweight = 0.5\n'
              '[variants.Control]\nmodel = "pop"\nweight = 0.5\n',
     "variants.Control: duplicate variant name: 'Control' and 'control' differ only in case"),
    (HEADER + 'control = "treatment"\n' + VARIANTS_OK,
     r"experiment.control: 'treatment' is not among the variants \(control\)"),
    (HEADER + "holdout = 1.0\n" + VARIANTS_OK, r"experiment.holdout: must lie in \[0, 1\)"),
    (HEADER + "holdout = -0.1\n" + VARIANTS_OK, r"experiment.holdout: must lie in \[0, 1\)"),
    (HEADER + 'start = "2026-02-01T00:00:00Z"\nend = "2026-01-01T00:00:00Z"\n' + VARIANTS_OK,
     "experiment.end: 2026-01-01T00:00:00[+]00:00 is not after start"),
    (HEADER + 'start = "2026-02-01T00:00:00Z"\nend = "2026-02-01T00:00:00Z"\n' + VARIANTS_OK,
     "experiment.end: .* is not after start"),
    (HEADER + 'start = "next monday"\n' + VARIANTS_OK,
     "experiment.start: 'next monday' is not a date-time"),
    (HEADER + "start = 2026-01-01T00:00:00\n" + VARIANTS_OK,
     "experiment.start: 2026-01-01T00:00:00 has no UTC offset"),
    (HEADER + "start = 20260101\n" + VARIANTS_OK, "experiment.start: expected a date-time"),
    (HEADER + "atribution_window_days = 7\n" + VARIANTS_OK,
     r"unknown config key experiment.atribution_window_days \(did you mean "
     r"'attribution_window_days'\? valid: attribution_window_days, control, end, "),
    (HEADER + VARIANTS_OK + "wieght = 1\n",
     r"unknown config key variants.control.wieght \(did you mean 'weight'\? valid: weight, "
     r"auth_env"),
    (HEADER + VARIANTS_OK + "[variant.b]\nmodel = 'pop'\n",
     r"unknown config key variant \(did you mean 'variants'\? valid: variants, experiment\)"),
    (HEADER + 'holdout = "10%"\n' + VARIANTS_OK,
     "experiment.holdout: expected a number, got '10%'"),
    (HEADER + "attribution_window_days = true\n" + VARIANTS_OK,
     "experiment.attribution_window_days: expected a number"),
    (HEADER + "attribution_window_days = 0\n" + VARIANTS_OK,
     "experiment.attribution_window_days: must be positive"),
    (HEADER + "recommendation_ttl_days = -1\n" + VARIANTS_OK,
     "experiment.recommendation_ttl_days: must be positive"),
    (HEADER + 'unit = "device"\n' + VARIANTS_OK,
     "experiment.unit: 'device' is not one of 'user', 'session'"),
    (HEADER + "salt = 5\n" + VARIANTS_OK, r"experiment.salt: set twice \(line 4\)"),
    ('[experiment]\nname = "x"\n' + VARIANTS_OK, "experiment.salt: is missing"),
    ('[experiment]\nname = "a b"\nsalt = "s"\n' + VARIANTS_OK,
     "experiment.name: 'a b': use letters, digits"),
    ('[experiment]\nname = "x"\nsalt = ""\n' + VARIANTS_OK, "experiment.salt: must not be empty"),
    (VARIANTS_OK, r"experiment: the \[experiment\] table is missing"),
    (HEADER, "variants: no variants"),
    (HEADER + '[variants.control]\nmodel = "cooc"\nweight = "half"\n',
     "variants.control.weight: expected a number, got 'half'"),
    (HEADER + '[variants.control]\nmodel = "cooc"\n', "variants.control.weight: is missing"),
    (HEADER + '[variants.control]\nmodel = 3\nweight = 1\n',
     "variants.control.model: expected a string, got 3"),
    (HEADER + '[variants.holdout]\nmodel = "cooc"\nweight = 1\n',
     "variants.holdout: variant names use"),
    (HEADER + "[variants]\ncontrol = 1\n", "variants.control: expected a table"),
    (HEADER + "fallback = 3\n" + VARIANTS_OK, "experiment.fallback: expected a string, got 3"),
    (HEADER + 'fallback = ""\n' + VARIANTS_OK, "experiment.fallback: expected a cooc run"),
    (HEADER + '[variants.control]\nmodel = ""\nweight = 1\n',
     "variants.control.model: expected a baseline name"),
    (HEADER + "attribution_window_days = inf\n" + VARIANTS_OK,
     "experiment.attribution_window_days: must be finite, got inf"),
    (HEADER + 'fallback = "runs/none"\n' + VARIANTS_OK,
     "experiment.fallback: no saved model in"),
    (HEADER + VARIANTS_OK, r"variants.control.model: the baseline 'cooc' is served from a "
                           r"co-occurrence run and none was found: set fallback = \"runs/cooc\""),
    ("[experiment\n", "not valid TOML"),
]


@pytest.mark.parametrize(("text", "message"), BAD)
def test_bad_configs_are_refused_naming_file_and_key(tmp_path, text, message):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError, match=message) as info:
        load_experiment(path)
    assert str(info.value).startswith(f"experiment config {path}")


def test_a_directory_without_a_model_is_refused(tmp_path):
    (tmp_path / "runs" / "empty").mkdir(parents=True)
    path = write(tmp_path, HEADER + '[variants.control]\nmodel = "runs/empty"\nweight = 1\n')
    with pytest.raises(ConfigError, match=r"variants\.control\.model: no saved model in"):
        load_experiment(path)


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError, match=r"experiment config .*nope.toml does not exist"):
        load_experiment(tmp_path / "nope.toml")
