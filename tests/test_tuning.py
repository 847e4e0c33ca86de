"""``sessionrec tune``: search-space parsing, sampling, the valid-only objective, outputs, CLI."""

from __future__ import annotations

import gzip
import json
import math
from pathlib import Path

import numpy as np
import pytest

from sessionrec.cli import main
from sessionrec.config import deep_merge, from_dict, load_config
from sessionrec.data.prepare import PrepareConfig
from sessionrec.data.sessions import Sessions
from sessionrec.data.sources import get_source
from sessionrec.errors import ConfigError, DataError, SessionRecError
from sessionrec.evaluation import evaluate
from sessionrec.runs import ModelConfig, RunConfig, Splits, build_model
from sessionrec.tuning import (
    BEST_FILE,
    SEARCH_FILE,
    TRIALS_FILE,
    Param,
    Search,
    check_space,
    load_space,
    parse_space,
    read_trials,
    run_search,
    sample_params,
    sample_value,
)

REPO = Path(__file__).resolve().parents[1]


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


# -- the search space --------------------------------------------------------------------------
@pytest.mark.parametrize("body, needle", [
    ('[params.k]\ntype = "uniform"\nlow = 1\nhigh = 2\n',
     "params.k.type: 'uniform' is not one of 'int', 'float', 'categorical'"),
    ('[params.k]\ntype = "int"\nlow = 9\nhigh = 2\n', "low 9 > high 2"),
    ('[params.k]\ntype = "categorical"\nvalues = []\n', "non-empty list"),
    ('[params.k]\ntype = "int"\nlow = 1\nhigh = 2\nlog = true\n',
     "unknown config key params.k.log (did you mean 'low'? valid: low, high, step, type)"),
    ('[params.k]\ntype = "int"\nlow = 1.5\nhigh = 2\n',
     "params.k.low: expected an integer, got 1.5"),
    ('[params.k]\ntype = "int"\nhigh = 2\n', "params.k.low: is missing"),
    ('[params.k]\ntype = "float"\nlow = 0.0\nhigh = 1.0\nlog = true\n', "log = true needs low > 0"),
    ('[params.k]\ntype = "float"\nlow = 0.1\nhigh = 1.0\nstep = 0.1\nlog = true\n',
     "either step or log"),
    ('[params.k]\ntype = "int"\nlow = 1\nhigh = 5\nstep = 0\n', "params.k: step must be > 0"),
    ('[params.k]\ntype = "int"\nlow = 1\nhigh = 5\nstep = 0.5\n',
     "params.k.step: expected an integer, got 0.5"),
    ('[fixed]\nk = 3\n[params.k]\ntype = "int"\nlow = 1\nhigh = 5\n', "both fixed and searched"),
])
def test_space_errors_name_the_parameter(tmp_path, body, needle):
    path = write(tmp_path / "space.toml", body)
    with pytest.raises(ConfigError) as err:
        load_space(path)
    assert needle in str(err.value)
    assert str(err.value).startswith(f"search space {path}: ")
    assert "params.k" in str(err.value)


def test_space_file_level_errors(tmp_path):
    with pytest.raises(ConfigError, match="nothing to search"):
        parse_space({"trials": 3})
    with pytest.raises(ConfigError, match=r"^search space: unknown config key trails \(did you "
                                          r"mean 'trials'\? valid: trials, "):
        parse_space({"trails": 3, "params": {"k": {"type": "int", "low": 1, "high": 2}}})
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_space(write(tmp_path / "bad.toml", "[params\n"))
    with pytest.raises(ConfigError, match="does not exist"):
        load_space(tmp_path / "missing.toml")


def test_parameter_must_be_accepted_by_the_model():
    space = parse_space({"fixed": {"steps": 3},
                         "params": {"nope": {"type": "categorical", "values": [1]}}})
    with pytest.raises(ConfigError, match="parameter 'nope' is not accepted by model 'sr'"):
        check_space(space, "sr")
    with pytest.raises(ConfigError, match="is for model 'vsknn'"):
        check_space(parse_space({"model": "vsknn", "params": {
            "k": {"type": "int", "low": 1, "high": 3}}}), "sr")


@pytest.mark.parametrize("name", ["gru4rec-xe", "gru4rec-bprmax"])
def test_committed_spaces_are_valid(name):
    space = load_space(REPO / "configs" / "search" / f"{name}.toml")
    check_space(space, "gru4rec")
    params = sample_params(space, 0, 1)
    assert params["loss"] == ("cross-entropy" if name.endswith("xe") else "bpr-max")
    assert len(params["layers"]) == 1 and 64 <= params["layers"][0] <= 512
    build_model(ModelConfig("gru4rec", params))  # the model accepts every drawn value


# -- sampling ----------------------------------------------------------------------------------
def on_grid(value: float, low: float, step: float) -> bool:
    k = (value - low) / step
    return abs(k - round(k)) < 1e-6


def test_samples_respect_bounds_steps_and_log():
    rng = np.random.default_rng(0)
    lr = Param("learning_rate", "float", 0.01, 0.25, 0.005)
    layers = Param("layers", "int", 64, 512, 32)
    logp = Param("x", "float", 1e-4, 1.0, log=True)
    cat = Param("elu", "categorical", values=(0.5, 1, 0))
    lrs = [sample_value(lr, rng) for _ in range(300)]
    assert all(0.01 <= v <= 0.25 and on_grid(v, 0.01, 0.005) for v in lrs)
    assert {0.01, 0.25} <= set(lrs)  # both ends of the grid are reachable
    ints = [sample_value(layers, rng) for _ in range(300)]
    assert all(isinstance(v, int) and 64 <= v <= 512 and (v - 64) % 32 == 0 for v in ints)
    logs = np.array([sample_value(logp, rng) for _ in range(300)])
    assert logs.min() >= 1e-4 and logs.max() <= 1.0
    # log-uniform: about a quarter of the draws in each decade
    assert 0.15 < np.mean(logs < 1e-3) < 0.35 and 0.15 < np.mean(logs > 0.1) < 0.35
    assert {sample_value(cat, rng) for _ in range(100)} == {0.5, 1, 0}
    uniform = [sample_value(Param("p", "float", 0.0, 0.5), rng) for _ in range(100)]
    assert all(0.0 <= v <= 0.5 for v in uniform) and len(set(uniform)) == 100


def test_same_seed_same_params_and_layers_become_a_list():
    space = load_space(REPO / "configs" / "search" / "gru4rec-bprmax.toml")
    first = [sample_params(space, 7, i) for i in range(1, 6)]
    assert first == [sample_params(space, 7, i) for i in range(1, 6)]
    assert first != [sample_params(space, 8, i) for i in range(1, 6)]
    assert all(isinstance(p["layers"], list) for p in first)
    assert json.loads(json.dumps(first)) == first  # plain Python values only


# -- the objective and the outputs ------------------------------------------------------------
def sessions(rows: list[list[int]], n_items: int) -> Sessions:
    lengths = [len(r) for r in rows]
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    items = np.array([i for r in rows for i in r], dtype=np.int64)
    return Sessions(items=items, offsets=offsets, ts=np.arange(len(items), dtype=np.int64),
                    users=np.full(len(rows), -1, dtype=np.int64),
                    session_ids=np.arange(len(rows), dtype=np.int64), n_items=n_items)


@pytest.fixture
def splits() -> Splits:
    """Valid follows train's most frequent transitions; test the rarer ones."""
    train = sessions([[0, 1, 2]] * 3 + [[0, 2, 1]] + [[3, 4, 5]] * 3 + [[3, 5, 4]], 6)
    valid = sessions([[0, 1, 2], [3, 4, 5]], 6)
    test = sessions([[0, 2, 1], [3, 5, 4], [3, 5]], 6)
    return Splits(train, valid, test, "tiny")


def search_for(space: dict, trials: int = 3, seed: int = 0, model: str = "sr") -> Search:
    base = load_config(RunConfig, overrides=[f"model.name={model}", "eval.ks=[1, 5]"])
    return Search(base, parse_space(space), trials, seed, "mrr@5", "base.toml", "space.toml",
                  (), "sessionrec tune ...")


SR_SPACE = {"params": {"steps": {"type": "int", "low": 1, "high": 4},
                       "weighting": {"type": "categorical", "values": ["linear", "div"]}}}


def test_objective_is_evaluated_on_valid_not_test(splits, tmp_path):
    summary = run_search(search_for(SR_SPACE), splits, tmp_path)
    records = read_trials(tmp_path / TRIALS_FILE)
    assert [r["number"] for r in records] == [1, 2, 3]
    for record in records:
        model = build_model(ModelConfig("sr", record["params"])).fit(splits.train)
        on_valid = evaluate(model, splits.train, splits.valid, ks=(1, 5))
        on_test = evaluate(model, splits.train, splits.test, ks=(1, 5))
        assert record["value"] == pytest.approx(on_valid.metrics()["mrr@5"])
        assert record["value"] != pytest.approx(on_test.metrics()["mrr@5"])
        assert record["n_predictions"] == on_valid.n_predictions == 4
        assert record["metrics"]["recall@1"] == pytest.approx(on_valid.metrics()["recall@1"])
        assert record["fit_seconds"] >= 0
    assert summary["best"]["value"] == max(r["value"] for r in records)


def test_best_toml_loads_back_with_the_best_params(splits, tmp_path):
    summary = run_search(search_for(SR_SPACE, trials=4, seed=5), splits, tmp_path)
    best = summary["best"]
    text = (tmp_path / BEST_FILE).read_text()
    assert text.startswith("# ") and "space.toml" in text and "seed 5" in text
    assert f"mrr@5 = {best['value']:.6f}" in text
    cfg = load_config(RunConfig, tmp_path / BEST_FILE)
    assert cfg.model.name == "sr" and cfg.model.params == best["params"]
    assert cfg.eval.ks == (1, 5)
    search = json.loads((tmp_path / SEARCH_FILE).read_text())
    assert search["seed"] == 5 and search["trials"] == 4 and search["metric"] == "mrr@5"
    assert search["best"]["number"] == best["number"] and search["finished"] == 4


def test_failed_trials_are_recorded_and_all_failed_is_an_error(splits, tmp_path):
    space = {"params": {"steps": {"type": "categorical", "values": [0, 2]}}}
    summary = run_search(search_for(space, trials=6), splits, tmp_path / "some")
    records = read_trials(tmp_path / "some" / TRIALS_FILE)
    failed = [r for r in records if r["status"] == "failed"]
    assert failed and all("steps must be > 0" in r["error"] for r in failed)
    assert summary["failed"] == len(failed) and summary["best"]["params"]["steps"] == 2
    only_bad = {"params": {"steps": {"type": "categorical", "values": [0, -1]}}}
    with pytest.raises(SessionRecError, match=r"all 2 trials failed.*trial 1: steps must be"):
        run_search(search_for(only_bad, trials=2), splits, tmp_path / "none")
    assert not (tmp_path / "none" / BEST_FILE).exists()
    assert len(read_trials(tmp_path / "none" / TRIALS_FILE)) == 2


def test_resume_skips_finished_trials(splits, tmp_path):
    run_search(search_for(SR_SPACE, trials=2, seed=1), splits, tmp_path)
    before = read_trials(tmp_path / TRIALS_FILE)
    seen = []
    run_search(search_for(SR_SPACE, trials=4, seed=1), splits, tmp_path, resume=True,
               on_trial=lambda record, best: seen.append(record["number"]))
    assert seen == [3, 4]
    after = read_trials(tmp_path / TRIALS_FILE)
    assert after[:2] == before and [r["number"] for r in after] == [1, 2, 3, 4]
    fresh = tmp_path / "fresh"
    run_search(search_for(SR_SPACE, trials=4, seed=1), splits, fresh)
    assert [r["params"] for r in read_trials(fresh / TRIALS_FILE)] == [
        r["params"] for r in after]
    with pytest.raises(ConfigError, match=r"cannot --resume.*seed differs"):
        run_search(search_for(SR_SPACE, trials=4, seed=2), splits, tmp_path, resume=True)


def test_an_interrupted_search_keeps_its_finished_trials(splits, tmp_path):
    from sessionrec.tuning import evaluate_on_valid

    calls = []

    def interrupted(cfg, data, metric):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return evaluate_on_valid(cfg, data, metric)

    with pytest.raises(KeyboardInterrupt):
        run_search(search_for(SR_SPACE, trials=4), splits, tmp_path, objective=interrupted)
    assert [r["number"] for r in read_trials(tmp_path / TRIALS_FILE)] == [1, 2]
    assert not (tmp_path / BEST_FILE).exists()
    run_search(search_for(SR_SPACE, trials=4), splits, tmp_path, resume=True)
    assert [r["number"] for r in read_trials(tmp_path / TRIALS_FILE)] == [1, 2, 3, 4]


def test_empty_valid_split_says_how_to_get_one(splits, tmp_path):
    no_valid = Splits(splits.train, sessions([], 6), splits.test, "tiny")
    hint = r"empty validation split.*data\.prepare\.split\.valid=true"
    with pytest.raises(DataError, match=hint):
        run_search(search_for(SR_SPACE), no_valid, tmp_path)
    with pytest.raises(ConfigError, match="unknown metric"):
        run_search(Search(search_for(SR_SPACE).base, parse_space(SR_SPACE), 2, 0, "mrr20"),
                   splits, tmp_path)


def test_valid_override_turns_on_a_valid_split_for_yoochoose():
    cfg = load_config(RunConfig, overrides=["data.source=yoochoose",
                                            "data.prepare.split.valid=true"])
    source = get_source("yoochoose")
    assert source.split == "given" and source.defaults["split"]["valid"] is False
    prep = from_dict(PrepareConfig, deep_merge(source.defaults, cfg.data.prepare))
    assert prep.split.valid is True and prep.split.valid_days == 1.0


# -- the command line --------------------------------------------------------------------------
SMALL = ["--set", "filter.min_user_sessions=2", "--set", "filter.min_item_support=2"]
CLI_SPACE = """model = "sr"
trials = 3
[params.steps]
type = "int"
low = 2
high = 8
step = 2
[params.weighting]
type = "categorical"
values = ["linear", "div", "quadratic"]
"""


@pytest.fixture(scope="module")
def prepared(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("tune")
    assert main(["synth", "--events", "8000", "--seed", "3", "--out", str(root / "raw"),
                 "--events-per-shard", "4000"]) == 0
    assert main(["prepare", "--source", "galaxus", "--input", str(root / "raw"),
                 "--out", str(root / "data"), *SMALL]) == 0
    return root / "data"


def test_cli_tune_end_to_end(prepared, tmp_path, capsys):
    base = write(tmp_path / "base.toml", f'[data]\nprepared = "{prepared.as_posix()}"\n'
                 'dataset = "synthetic"\n[model]\nname = "sr"\n[model.params]\npruning = 10\n')
    space = write(tmp_path / "space.toml", CLI_SPACE)
    out = tmp_path / "search"
    args = ["tune", "--config", str(base), "--space", str(space), "--out", str(out),
            "--seed", "4"]
    assert main(args) == 0
    stdout = capsys.readouterr().out
    assert [line.split(":")[0].split(" ")[:2] for line in stdout.splitlines()
            if line.startswith("trial ")] == [["trial", "1/3"], ["trial", "2/3"], ["trial", "3/3"]]
    assert "best " in stdout and "mrr@20" in stdout
    records = read_trials(out / TRIALS_FILE)
    assert len(records) == 3 and all(r["status"] == "ok" for r in records)
    assert all(r["params"]["steps"] in (2, 4, 6, 8) for r in records)
    assert all(math.isfinite(r["metrics"]["recall@20"]) for r in records)
    cfg = load_config(RunConfig, out / BEST_FILE)
    best = json.loads((out / SEARCH_FILE).read_text())["best"]
    assert cfg.model.params == {"pruning": 10, **best["params"]}
    assert "--seed 4" in (out / BEST_FILE).read_text()
    assert not list(out.glob("**/model*"))  # no models are saved

    assert main(args) == 2  # a finished search is not overwritten by accident
    assert "not empty" in capsys.readouterr().err
    assert main([*args, "--resume"]) == 0  # nothing left to do
    assert "trial " not in capsys.readouterr().out.replace("best: trial", "")
    assert read_trials(out / TRIALS_FILE) == records


def write_yoochoose(folder: Path) -> Path:
    """A tiny yoochoose-100k-style folder: train_full over three days, test on the fourth."""
    folder.mkdir()
    rng = np.random.default_rng(0)
    rows = {"train_full": [], "test": []}
    for s in range(120):
        day = s % 4
        split = "test" if day == 3 else "train_full"
        for j in range(int(rng.integers(2, 5))):
            item = int(rng.integers(0, 6)) + (s % 2) * 6
            rows[split].append(f"{s}\t{item}\t{1_700_000_000 + day * 86_400 + s * 60 + j}")
    for split, lines in rows.items():
        text = "SessionId\tItemId\tTime\n" + "\n".join(lines) + "\n"
        with gzip.open(folder / f"yoochoose-clicks-100k_{split}.tsv.gz", "wt") as fh:
            fh.write(text)
    return folder


def test_cli_yoochoose_needs_and_gets_a_valid_split(tmp_path, capsys):
    raw = write_yoochoose(tmp_path / "yc")
    base = write(tmp_path / "base.toml", '[data]\nsource = "yoochoose"\n[model]\nname = "sr"\n')
    space = write(tmp_path / "space.toml", CLI_SPACE)
    args = ["tune", "--config", str(base), "--space", str(space), "--data", str(raw),
            "--trials", "2"]
    assert main([*args, "--out", str(tmp_path / "a")]) == 2
    err = capsys.readouterr().err
    assert "empty validation split" in err and "--set data.prepare.split.valid=true" in err
    assert main([*args, "--out", str(tmp_path / "b"),
                 "--set", "data.prepare.split.valid=true"]) == 0
    manifest = json.loads((tmp_path / "b" / "data" / "manifest.json").read_text())
    assert manifest["splits"]["valid"]["events"] > 0
    cfg = load_config(RunConfig, tmp_path / "b" / BEST_FILE)
    assert cfg.data.prepare == {"split": {"valid": True}}
