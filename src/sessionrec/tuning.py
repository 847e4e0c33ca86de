"""``sessionrec tune``: seeded random search of hyper-parameters on the validation split.

Every trial takes the base :class:`~sessionrec.runs.RunConfig`, replaces some of
``model.params`` with values drawn from a search space, fits the model on the **train** split
(the validation split is handed to ``fit`` as ``sessionrec train`` does, for models that pick
their best epoch or stop early on it) and evaluates it on the **valid** split with the config's
protocol and ties. The test split is never read by a trial. ``eval.fit_on`` of the base config
is ignored during the search (trials always fit on train) and kept in ``best.toml``.

The data needs a validation split. Some sources (``yoochoose`` and ``retailrocket``, whose
split is given, and ``otto``) are prepared without one by default. When the config names a
``data.source``, ``--set data.prepare.split.valid=true`` carves one from the end of train (the
last ``data.prepare.split.valid_days``, default 1, of a given or time split; each user's
second-to-last session of a last-session split); for a prepared directory, run ``sessionrec
prepare ... --set split.valid=true`` again::

    sessionrec tune --config configs/yoochoose-100k/gru4rec-official-best.toml \\
        --space configs/search/gru4rec-xe.toml --trials 50 --out runs/tune-xe \\
        --set data.prepare.split.valid=true

**Search space** (TOML)::

    model = "gru4rec"    # optional: the model the space is for (checked against the config)
    trials = 50          # optional: default of --trials
    seed = 0             # optional: default of --seed

    [fixed]              # optional: model parameters set in every trial
    loss = "cross-entropy"

    [params.layers]      # one table per searched model parameter
    type = "int"         # int: low, high, optional step (default 1)
    low = 64
    high = 512
    step = 32

    [params.learning_rate]
    type = "float"       # float: low, high, optional step or log = true (log-uniform)
    low = 0.01
    high = 0.25
    step = 0.005

    [params.elu_param]
    type = "categorical" # categorical: values = [...] (any TOML values, e.g. [[100], [100, 100]])
    values = [0.5, 1.0, 0.0]

A stepped parameter is drawn uniformly from ``low, low + step, ...`` up to ``high``; a float
without step uniformly (or log-uniformly) from ``[low, high]``. ``layers`` drawn as an int ``n``
means the one-layer list ``[n]``. A fixed value can also be written as a categorical with one
value. Every name must be a parameter of the model's ``__init__``.

Trial ``i`` draws its values from a generator seeded with ``(seed, i)``: the same seed gives
the same trials, and a longer search extends a shorter one with the same seed.

**Outputs** in ``DIR`` (each file replaced atomically)::

    trials.jsonl   one JSON line per finished trial: number, status ("ok" or "failed"),
                   params, metric, value, metrics (every valid metric), n_predictions,
                   fit_seconds, eval_seconds; a failed trial has error instead of the figures
    search.json    base config, space, seed, trials, metric, command and the best trial
    best.toml      the base config with the best trial's parameters merged into model.params,
                   with a comment header recording the search
    data/          the prepared data, when the config names a source

``--resume`` skips the trials already in ``trials.jsonl`` (the search must be the same).
A trial that raises :class:`~sessionrec.errors.SessionRecError` (e.g. a diverged fit) is
recorded as failed and the search goes on; if every trial fails the search raises one error
listing the reasons. Models are not saved.
"""

from __future__ import annotations

import copy
import dataclasses
import inspect
import json
import math
import shlex
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from sessionrec.config import dump_toml, from_dict, load_config, to_dict
from sessionrec.data.io import atomic_write_text
from sessionrec.errors import ConfigError, DataError, SessionRecError, valid_choices
from sessionrec.runs import RunConfig, Splits, build_model

TRIALS_FILE = "trials.jsonl"
SEARCH_FILE = "search.json"
BEST_FILE = "best.toml"
OUTPUT_FILES = (TRIALS_FILE, SEARCH_FILE, BEST_FILE)
DEFAULT_METRIC = "mrr@20"

VALID_SPLIT_HINT = (
    "Tuning needs a validation split: when the config names data.source, pass --set "
    "data.prepare.split.valid=true (optionally --set data.prepare.split.valid_days=N: the last "
    "N days of train become valid for given and time splits, e.g. yoochoose); for a prepared "
    "directory, prepare it again with --set split.valid=true"
)



# -- search space ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Param:
    """One searched model parameter (see the module docstring for the TOML form)."""

    name: str
    type: str  # "int", "float" or "categorical"
    low: float = 0.0
    high: float = 0.0
    step: float | None = None
    log: bool = False
    values: tuple[Any, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """The TOML/JSON table of this parameter."""
        if self.type == "categorical":
            return {"type": self.type, "values": copy.deepcopy(list(self.values))}
        out: dict[str, Any] = {"type": self.type, "low": self.low, "high": self.high}
        if self.step is not None:
            out["step"] = self.step
        if self.log:
            out["log"] = True
        return out


@dataclass(frozen=True)
class SearchSpace:
    """Searched parameters (in file order), fixed parameters and the file's defaults."""

    params: tuple[Param, ...]
    fixed: dict[str, Any] = field(default_factory=dict)
    model: str = ""
    trials: int | None = None
    seed: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain data (as in the TOML file), for ``search.json``."""
        out: dict[str, Any] = {"model": self.model, "trials": self.trials, "seed": self.seed,
                               "fixed": copy.deepcopy(self.fixed),
                               "params": {p.name: p.to_dict() for p in self.params}}
        return {k: v for k, v in out.items() if v is not None}


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


# -- the file as written (keys and types checked by sessionrec.config.load_config) -------------
@dataclass(frozen=True)
class IntRange:
    """``type = "int"``: ``low``, ``high``, optional ``step``."""

    type: Literal["int"]
    low: int
    high: int
    step: int = 1


@dataclass(frozen=True)
class FloatRange:
    """``type = "float"``: ``low``, ``high``, optional ``step`` or ``log = true``."""

    type: Literal["float"]
    low: float
    high: float
    step: float | None = None
    log: bool = False


@dataclass(frozen=True)
class Categorical:
    """``type = "categorical"``: ``values = [...]`` (any TOML values)."""

    type: Literal["categorical"]
    values: tuple[Any, ...]


@dataclass(frozen=True)
class SpaceFile:
    """A search-space TOML as written."""

    model: str = ""
    trials: int | None = None
    seed: int | None = None
    fixed: dict[str, Any] = field(default_factory=dict)
    params: dict[str, IntRange | FloatRange | Categorical] = field(default_factory=dict)


def parse_param(name: str, table: IntRange | FloatRange | Categorical,
                where: str = "search space") -> Param:
    """A :class:`Param` from its ``[params.<name>]`` table; ConfigError naming it otherwise."""
    at = f"{where}: params.{name}"
    if isinstance(table, Categorical):
        if not table.values:
            raise ConfigError(f"{at} (categorical) needs a non-empty list: values = [...]")
        return Param(name, table.type, values=table.values)
    low, high, step = table.low, table.high, table.step
    if low > high:
        raise ConfigError(f"{at}: low {low} > high {high}")
    if step is not None and step <= 0:
        raise ConfigError(f"{at}: step must be > 0, got {step!r}")
    if isinstance(table, IntRange):
        return Param(name, table.type, low, high, step)
    if table.log and step is not None:
        raise ConfigError(f"{at}: use either step or log = true, not both")
    if table.log and low <= 0:
        raise ConfigError(f"{at}: log = true needs low > 0, got {low}")
    return Param(name, table.type, low, high, step, table.log)


def parse_space(data: Mapping[str, Any] | SpaceFile, where: str = "search space") -> SearchSpace:
    """A :class:`SearchSpace` from parsed TOML (or a loaded :class:`SpaceFile`); ConfigError
    naming the key otherwise."""
    if not isinstance(data, SpaceFile):
        try:
            data = from_dict(SpaceFile, data)
        except ConfigError as err:
            raise ConfigError(f"{where}: {err}", key=err.key) from None
    if not data.params:
        raise ConfigError(f"{where} has no [params.<name>] table: nothing to search")
    both = sorted(set(data.params) & set(data.fixed))
    if both:
        raise ConfigError(f"{where}: params.{both[0]}: parameter {both[0]!r} is both fixed "
                          "and searched")
    for key, value, least in (("trials", data.trials, 1), ("seed", data.seed, 0)):
        if value is not None and value < least:
            raise ConfigError(f"{where}: {key} must be an integer >= {least}, got {value!r}")
    return SearchSpace(params=tuple(parse_param(n, t, where) for n, t in data.params.items()),
                       fixed=dict(data.fixed), model=data.model, trials=data.trials,
                       seed=data.seed)


def load_space(path: str | Path) -> SearchSpace:
    """Read and validate a search-space TOML file."""
    data = load_config(SpaceFile, path, what="search space")
    return parse_space(data, where=f"search space {path}")


def model_parameters(model: str) -> set[str] | None:
    """Keyword parameters of the model's ``__init__`` (None if it takes ``**kwargs``)."""
    from sessionrec.models.base import get_model_class

    signature = inspect.signature(get_model_class(model).__init__)
    params = list(signature.parameters.values())[1:]  # drop self
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        return None
    return {p.name for p in params
            if p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)}


def check_space(space: SearchSpace, model: str, where: str = "search space") -> None:
    """ConfigError if the space is for another model or names a parameter it does not take."""
    if space.model and space.model != model:
        raise ConfigError(f"{where} is for model {space.model!r} but the config's model is "
                          f"{model!r}")
    accepted = model_parameters(model)
    if accepted is None:
        return
    for name in [*space.fixed, *(p.name for p in space.params)]:
        if name not in accepted:
            raise ConfigError(f"{where}: parameter {name!r} is not accepted by model {model!r}; "
                              f"{valid_choices(name, accepted)}")


# -- sampling ----------------------------------------------------------------------------------
def grid_size(param: Param) -> int | None:
    """Number of values on a stepped parameter's grid (None: continuous or categorical)."""
    if param.type == "categorical" or param.step is None:
        return None
    return math.floor((param.high - param.low) / param.step + 1e-9) + 1


def sample_value(param: Param, rng: np.random.Generator) -> Any:
    """One value of ``param`` as a plain Python value (int, float or the categorical value)."""
    if param.type == "categorical":
        return copy.deepcopy(param.values[int(rng.integers(len(param.values)))])
    n = grid_size(param)
    if n is not None:
        k = int(rng.integers(n))
        if param.type == "int":
            return int(param.low + k * param.step)
        return min(round(param.low + k * param.step, 10), param.high)
    if param.log:
        return float(math.exp(rng.uniform(math.log(param.low), math.log(param.high))))
    return float(rng.uniform(param.low, param.high))


def model_value(name: str, value: Any) -> Any:
    """A sampled value as the model takes it: ``layers = n`` is the one-layer list ``[n]``."""
    if name == "layers" and _is_int(value):
        return [value]
    return value


def sample_params(space: SearchSpace, seed: int, number: int) -> dict[str, Any]:
    """The model parameters of trial ``number``: fixed ones, then one draw of each searched one.

    The generator is seeded with ``(seed, number)``, so a trial does not depend on how many
    trials the search has.
    """
    rng = np.random.default_rng([seed, number])
    params = copy.deepcopy(space.fixed)
    for p in space.params:
        params[p.name] = model_value(p.name, sample_value(p, rng))
    return params


# -- the objective -----------------------------------------------------------------------------
def check_metric(metric: str) -> str:
    """The metric name if it is a rank metric such as ``mrr@20``; ConfigError otherwise."""
    from sessionrec.evaluation.metrics import parse_metric

    try:
        parse_metric(metric)
    except ValueError as err:
        raise ConfigError(f"--metric: {err}") from err
    return metric


def check_valid_split(splits: Splits, protocol: str) -> None:
    """DataError (saying how to get one) if the valid split has nothing to predict."""
    from sessionrec.evaluation import target_events

    if splits.valid.n_events == 0:
        raise DataError(f"the prepared data {splits.name!r} has an empty validation split",
                        hint=VALID_SPLIT_HINT)
    if len(target_events(splits.valid, protocol)[0]) == 0:
        raise DataError(f"the validation split of {splits.name!r} has no session with two or "
                        "more events, so nothing to predict", hint=VALID_SPLIT_HINT)


def trial_config(base: RunConfig, params: Mapping[str, Any]) -> RunConfig:
    """``base`` with ``params`` merged into ``model.params``."""
    model = dataclasses.replace(base.model, params={**base.model.params, **params})
    return dataclasses.replace(base, model=model)


def evaluate_on_valid(cfg: RunConfig, splits: Splits, metric: str) -> dict[str, Any]:
    """Fit ``cfg``'s model on train, evaluate it on valid; the objective of one trial.

    Returns ``value`` (the mean of ``metric``), ``metrics`` (every metric of the evaluation),
    ``n_predictions``, ``fit_seconds`` and ``eval_seconds``.
    """
    import torch

    from sessionrec.evaluation import evaluate
    from sessionrec.evaluation.metrics import metric_values

    torch.manual_seed(cfg.seed)
    if cfg.eval.threads:
        torch.set_num_threads(cfg.eval.threads)
    model = build_model(cfg.model, splits.items)
    t0 = time.perf_counter()
    model.fit(splits.train, splits.valid)
    fit_seconds = time.perf_counter() - t0
    result = evaluate(model, splits.train, splits.valid, protocol=cfg.eval.protocol,
                      ties=cfg.eval.ties, ks=cfg.eval.ks, batch_size=cfg.eval.batch_size,
                      num_threads=cfg.eval.threads or None)
    value = float(metric_values(metric, result.ranks).mean())
    if not math.isfinite(value):
        raise SessionRecError(f"{metric} on valid is {value}")
    return {"value": value, "metrics": {metric: value, **result.metrics()},
            "n_predictions": result.n_predictions, "fit_seconds": fit_seconds,
            "eval_seconds": result.seconds}


Objective = Callable[[RunConfig, Splits, str], dict[str, Any]]


def run_trial(number: int, params: dict[str, Any], cfg: RunConfig, splits: Splits,
              metric: str, objective: Objective = evaluate_on_valid) -> dict[str, Any]:
    """The ``trials.jsonl`` record of one trial; a SessionRecError makes it a failed one."""
    record: dict[str, Any] = {"number": number, "params": params, "metric": metric}
    try:
        return {**record, "status": "ok", **objective(cfg, splits, metric)}
    except SessionRecError as err:
        return {**record, "status": "failed", "error": str(err)}


def best_trial(records: Sequence[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    """The finished trial with the highest value (the earliest one among equals)."""
    ok = [r for r in records if r.get("status") == "ok"]
    return max(ok, key=lambda r: (r["value"], -r["number"])) if ok else None


# -- output ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Search:
    """Everything that defines a search (and is recorded in ``search.json``)."""

    base: RunConfig
    space: SearchSpace
    trials: int
    seed: int = 0
    metric: str = DEFAULT_METRIC
    base_path: str = ""
    space_path: str = ""
    overrides: tuple[str, ...] = ()
    command: str = ""

    def identity(self) -> dict[str, Any]:
        """What must not change when a search is resumed."""
        return {"base": to_dict(self.base), "space": self.space.to_dict(), "seed": self.seed,
                "metric": self.metric}


def tune_command(config: str, space: str, out: str, trials: int | None = None,
                 seed: int | None = None, metric: str = DEFAULT_METRIC,
                 data: str | None = None, overrides: Sequence[str] = ()) -> str:
    """The ``sessionrec tune`` command line of a search (for the header of ``best.toml``)."""
    argv = ["sessionrec", "tune", "--config", config, "--space", space]
    if trials is not None:
        argv += ["--trials", str(trials)]
    if seed is not None:
        argv += ["--seed", str(seed)]
    if metric != DEFAULT_METRIC:
        argv += ["--metric", metric]
    if data:
        argv += ["--data", data]
    for item in overrides:
        argv += ["--set", item]
    return shlex.join([*argv, "--out", out])


def format_params(params: Mapping[str, Any], skip: Sequence[str] = ()) -> str:
    """``a=1 b=0.25 layers=[96]`` (JSON values), leaving out ``skip``."""
    return " ".join(f"{k}={json.dumps(v)}" for k, v in params.items() if k not in skip)


def progress_line(record: Mapping[str, Any], n_trials: int, best: Mapping[str, Any] | None,
                  fixed: Sequence[str] = ()) -> str:
    """One line per trial: number, searched params, value (or the failure), best so far."""
    head = f"trial {record['number']}/{n_trials} {format_params(record['params'], fixed)}"
    if record["status"] == "ok":
        body = (f"{record['metric']} {record['value']:.4f} "
                f"(fit {record['fit_seconds']:.1f} s)")
    else:
        body = f"failed: {record['error']}"
    tail = (f"best {best['value']:.4f} (trial {best['number']})" if best is not None
            else "best -")
    return f"{head}: {body}; {tail}"


def trials_text(records: Sequence[Mapping[str, Any]]) -> str:
    """``trials.jsonl`` content: one JSON object per line, in trial order."""
    ordered = sorted(records, key=lambda r: r["number"])
    return "".join(json.dumps(r, sort_keys=False) + "\n" for r in ordered)


def read_trials(path: Path) -> list[dict[str, Any]]:
    """Records of ``trials.jsonl`` (empty when the file does not exist)."""
    path = Path(path)
    if not path.is_file():
        return []
    records = []
    for row, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            raise DataError(f"not a JSON line: {err}", path=str(path), row=row) from err
        if not isinstance(record, dict) or not _is_int(record.get("number")):
            raise DataError("a trial record needs a number", path=str(path), row=row)
        records.append(record)
    return records


def search_summary(search: Search, records: Sequence[Mapping[str, Any]],
                   dataset: str = "") -> dict[str, Any]:
    """The content of ``search.json``."""
    best = best_trial(records)
    return {
        "base_config": search.base_path, "overrides": list(search.overrides),
        "space_file": search.space_path, "command": search.command, "dataset": dataset,
        "split": "valid", **search.identity(), "trials": search.trials,
        "finished": sum(r.get("status") == "ok" for r in records),
        "failed": sum(r.get("status") == "failed" for r in records),
        "best": None if best is None else {k: best[k] for k in (
            "number", "params", "value", "metrics", "n_predictions", "fit_seconds")},
    }


def best_config_text(search: Search, best: Mapping[str, Any],
                     records: Sequence[Mapping[str, Any]], dataset: str = "") -> str:
    """``best.toml``: the base config with the best params merged in, under a comment header."""
    cfg = trial_config(search.base, best["params"])
    n_ok = sum(r.get("status") == "ok" for r in records)
    lines = [
        "Best of a seeded random search by `sessionrec tune` on the validation split"
        + (f" of {dataset}" if dataset else "") + ";",
        "the test split was not used.",
        f"  base config: {search.base_path or '-'}"
        + (f" with {len(search.overrides)} --set override(s), see the command" if
           search.overrides else ""),
        f"  space: {search.space_path or '-'}; {len(records)} trials ({n_ok} finished, "
        f"{len(records) - n_ok} failed), seed {search.seed}",
        f"  best: trial {best['number']}, {search.metric} = {best['value']:.6f} on valid "
        f"({cfg.eval.protocol}, {cfg.eval.ties} ties, {best['n_predictions']:,} predictions)",
        f"  params: {format_params(best['params'])}",
        f"  command: {search.command or '-'}",
        "For the final model, train on train + valid: --set eval.fit_on=train+valid",
    ]
    return "".join(f"# {line}\n" for line in lines) + "\n" + dump_toml(to_dict(cfg))


def prepare_out_dir(out: Path, overwrite: bool = False, resume: bool = False) -> None:
    """Refuse a non-empty ``out`` unless ``overwrite`` or ``resume``; clear old results."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out} is a file, not a directory")
    if out.is_dir() and any(out.iterdir()) and not (overwrite or resume):
        raise ConfigError(f"search directory {out} is not empty (pass --overwrite to start "
                          "again, or --resume to continue an interrupted search)")
    if overwrite and not resume:
        for name in OUTPUT_FILES:
            (out / name).unlink(missing_ok=True)
    out.mkdir(parents=True, exist_ok=True)


def _check_resumable(out: Path, search: Search) -> None:
    path = out / SEARCH_FILE
    if not path.is_file():
        return
    try:
        old = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise DataError(f"cannot resume: not valid JSON ({err})", path=str(path)) from err
    for key, value in search.identity().items():
        if json.loads(json.dumps(value)) != old.get(key):
            raise ConfigError(f"cannot --resume the search in {out}: its {key} differs from "
                              f"this one (start a new search or pass --overwrite)")


def check_search(search: Search, splits: Splits | None = None) -> None:
    """ConfigError or DataError for a bad metric, space or (given ``splits``) validation split.

    Called before any trial; without ``splits`` it checks what needs no data.
    """
    if search.trials < 1:
        raise ConfigError(f"the number of trials must be at least 1, got {search.trials}")
    check_metric(search.metric)
    check_space(search.space, search.base.model.name,
                f"search space {search.space_path}" if search.space_path else "search space")
    if splits is not None:
        check_valid_split(splits, search.base.eval.protocol)


def run_search(search: Search, splits: Splits, out: Path, resume: bool = False,
               on_trial: Callable[[Mapping[str, Any], Mapping[str, Any] | None], None]
               | None = None, objective: Objective = evaluate_on_valid) -> dict[str, Any]:
    """Run (or with ``resume`` continue) a search; writes the outputs and returns search.json.

    ``on_trial(record, best_so_far)`` is called after each trial run now. Raises ConfigError or
    DataError before any trial for a bad space, metric or validation split, and
    SessionRecError after the search when every trial failed.
    """
    out = Path(out)
    check_search(search, splits)
    if resume:
        _check_resumable(out, search)
    records = read_trials(out / TRIALS_FILE) if resume else []
    done = {r["number"] for r in records}
    atomic_write_text(out / SEARCH_FILE,
                      json.dumps(search_summary(search, records, splits.name), indent=2))
    for number in range(1, search.trials + 1):
        if number in done:
            continue
        params = sample_params(search.space, search.seed, number)
        records.append(run_trial(number, params, trial_config(search.base, params), splits,
                                 search.metric, objective))
        atomic_write_text(out / TRIALS_FILE, trials_text(records))
        atomic_write_text(out / SEARCH_FILE,
                          json.dumps(search_summary(search, records, splits.name), indent=2))
        if on_trial is not None:
            on_trial(records[-1], best_trial(records))
    best = best_trial(records)
    if best is None:
        reasons = "; ".join(f"trial {r['number']}: {r['error']}"
                            for r in sorted(records, key=lambda r: r["number"])[:5])
        more = f" (and {len(records) - 5} more)" if len(records) > 5 else ""
        raise SessionRecError(f"all {len(records)} trials failed, see {out / TRIALS_FILE}: "
                              f"{reasons}{more}")
    atomic_write_text(out / BEST_FILE, best_config_text(search, best, records, splits.name))
    return search_summary(search, records, splits.name)
