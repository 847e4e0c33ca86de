"""The experiment config (TOML): which models share the traffic, how, and for how long.

::

    [experiment]
    name = "thesis-2026"            # [A-Za-z0-9_.-]+
    salt = "any-text"               # part of the assignment hash
    unit = "user"                   # "user" (device/session id for anonymous visitors) | "session"
    start = "2026-01-01T00:00:00Z"  # optional; outside [start, end) no assignment -> control
    end = "2026-02-01T00:00:00Z"    # optional
    attribution_window_days = 14
    holdout = 0.0                   # share of units that get no recommendation at all
    control = "control"             # the control variant (must exist)
    recommendation_ttl_days = 30    # feedback on older recommendation_ids is an orphan
    fallback = "runs/cooc"          # optional: the cooc run that serves baseline variants
    orders = "runs/obt"             # optional: an obt run (often bought together counted
                                    # over orders); often-bought-together is served from it

    [variants.control]
    model = "often-bought-together" # a baseline name, or a run/model directory
    weight = 0.5
    [variants.gru4rec]
    model = "runs/gru4rec"
    weight = 0.5
    placements = ["product_page", "home"]   # optional (default: all): where this variant's
                                            # model answers; control answers its units on the
                                            # others (logged under gru4rec, with placement)
    rank_model = "runs/kuairand/alpine"     # optional: the click-probability run that ranks
                                            # this variant's POST /v1/rank candidates, or
                                            # "request-order" (no ranking: a control); default:
                                            # the server's SESSIONREC_RANK_MODEL

An outside recommender called over HTTP is a variant with ``model = "external"`` (its keys:
:mod:`sessionrec.experiments.external`); control answers whenever it fails. Paths are
relative to the TOML file's folder. Baselines: ``often-bought-together`` (alias
``cooc``) and ``popular`` (alias ``pop``); both are served from a co-occurrence run, the
experiment's ``fallback`` or else the sibling ``RUN_DIR/../cooc`` of a model variant's run.
When orders exist (an ``obt`` run: ``sessionrec orders`` + ``train model.name=obt``), ``orders``
names it and ``often-bought-together`` counts products bought in the same order (seed 000's
production baseline) instead of products viewed in the same session.
:func:`load_experiment` refuses a config that does not validate with a :class:`ConfigError`
naming the file and the key.
"""

from __future__ import annotations

import math
import re
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Literal

from sessionrec.config import load_config
from sessionrec.errors import ConfigError, SessionRecError
from sessionrec.experiments.eventlog import PLACEMENTS
from sessionrec.experiments.external import (
    EXTERNAL,
    ExternalSpec,
    ExternalTable,
    check_no_external_keys,
    parse_external,
)

NAME = re.compile(r"[A-Za-z0-9_.-]+")
UNITS = ("user", "session")
HOLDOUT = "holdout"  # the pseudo-variant of held-out units
BASELINES = {"often-bought-together": "cooc", "cooc": "cooc", "popular": "pop", "pop": "pop"}
WEIGHT_TOLERANCE = 1e-9
REQUEST_ORDER = "request-order"  # a rank_model that keeps the candidates in request order


# -- the file as written (keys and types checked by sessionrec.config.load_config) --------------
@dataclass(frozen=True)
class ExperimentTable:
    """``[experiment]`` as written."""

    name: str
    salt: str
    unit: Literal["user", "session"] = "user"
    start: datetime | date | str | None = None  # a TOML date-time or date, or RFC 3339 text
    end: datetime | date | str | None = None
    attribution_window_days: float = 14.0
    holdout: float = 0.0
    control: str = "control"
    recommendation_ttl_days: float = 30.0
    fallback: str | None = None
    orders: str | None = None


@dataclass(frozen=True, kw_only=True)
class VariantTable(ExternalTable):
    """``[variants.NAME]`` as written; an external variant also takes the keys of
    :class:`~sessionrec.experiments.external.ExternalTable`."""

    model: str
    weight: float
    placements: tuple[str, ...] = PLACEMENTS
    rank_model: str | None = None


@dataclass(frozen=True)
class ExperimentFile:
    """The experiment TOML as written."""

    experiment: ExperimentTable | None = None
    variants: dict[str, VariantTable] = field(default_factory=dict)


@dataclass(frozen=True)
class VariantSpec:
    """One arm: ``model`` as written (a baseline name, a directory or ``"external"``), its
    traffic weight, for a directory the resolved path, for an external service its spec."""

    name: str
    model: str
    weight: float
    path: Path | None = None
    external: ExternalSpec | None = None
    placements: tuple[str, ...] = PLACEMENTS  # where this variant's model answers
    rank_model: str | None = None  # /v1/rank: a click-model run as written, REQUEST_ORDER or
    #                                None (the server's rank model)
    rank_path: Path | None = None  # the click-model run, resolved (None: not a directory)

    @property
    def baseline(self) -> str | None:
        """``"cooc"`` or ``"pop"`` for a baseline variant, else None."""
        return BASELINES.get(self.model)


@dataclass(frozen=True)
class ExperimentConfig:
    name: str
    salt: str
    unit: str
    start: datetime | None
    end: datetime | None
    attribution_window_days: float
    holdout: float
    control: str
    recommendation_ttl_days: float
    variants: tuple[VariantSpec, ...]
    fallback: Path | None = None  # the cooc run serving baseline variants (resolved)
    source: Path | None = field(default=None, compare=False)  # the TOML file
    orders: Path | None = None  # the obt run serving often-bought-together (resolved)

    def weights(self) -> dict[str, float]:
        """Variant name -> share of the non-holdout traffic, in file order."""
        return {v.name: v.weight for v in self.variants}

    def variant_names(self) -> list[str]:
        return [v.name for v in self.variants]

    def variant(self, name: str) -> VariantSpec:
        for v in self.variants:
            if v.name == name:
                return v
        raise KeyError(name)

    def active(self, when: datetime) -> bool:
        """Whether ``when`` (aware) lies in ``[start, end)``."""
        return ((self.start is None or when >= self.start)
                and (self.end is None or when < self.end))


class _Where:
    """Error messages that name the file and the key."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def error(self, key: str, message: str) -> ConfigError:
        return ConfigError(f"experiment config {self.path}: {key}: {message}")


def _finite(value: float, key: str, where: _Where) -> float:
    if not math.isfinite(value):
        raise where.error(key, f"must be finite, got {value!r}")
    return value


def _moment(value: datetime | date | str | None, key: str, where: _Where) -> datetime | None:
    """A TOML offset date-time, a date (midnight UTC) or an RFC 3339 string with offset."""
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = (datetime.fromisoformat(value) if "T" in value.upper() or " " in value
                     else date.fromisoformat(value))
        except ValueError:
            raise where.error(f"experiment.{key}", f"{value!r} is not a date-time; write e.g. "
                                                   '"2026-01-01T00:00:00Z"') from None
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise where.error(f"experiment.{key}", f"{value.isoformat()} has no UTC offset; "
                                                   "add one, e.g. 2026-01-01T00:00:00Z")
        return value.astimezone(UTC)
    return datetime(value.year, value.month, value.day, tzinfo=UTC)


def _reword_toml_error(text: str, err: tomllib.TOMLDecodeError, where: _Where) -> ConfigError:
    """TOML's own wording for a repeated table or key names neither the variant nor the key."""
    headers: dict[str, int] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        m = re.fullmatch(r"\s*\[\s*variants\s*\.\s*\"?([^\]\"]+?)\"?\s*\]\s*(#.*)?", line)
        if m:
            name = m.group(1).strip()
            if name in headers:
                return where.error(f"variants.{name}", f"duplicate variant name {name!r} "
                                                       f"(lines {headers[name]} and {number})")
            headers[name] = number
    m = re.search(r"at line (\d+)", str(err))
    if m and "overwrite" in str(err):
        lines = text.splitlines()[:int(m.group(1))]
        key = lines[-1].split("=", 1)[0].strip()
        tables = [t.group(1).strip() for t in (re.fullmatch(r"\s*\[([^\]]+)\].*", line)
                                               for line in lines) if t]
        if tables:
            key = f"{tables[-1]}.{key}"
        return where.error(key, f"set twice (line {m.group(1)}): each variant and key may "
                                "appear only once")
    return ConfigError(f"experiment config {where.path}: not valid TOML: {err}")


def _variant(name: str, table: VariantTable, base: Path, where: _Where) -> VariantSpec:
    prefix = f"variants.{name}."
    if not NAME.fullmatch(name) or name == HOLDOUT:
        raise where.error(f"variants.{name}", f"variant names use [A-Za-z0-9_.-] and are not "
                                              f"{HOLDOUT!r}")
    if not table.model:
        raise where.error(f"{prefix}model", f"expected a baseline name "
                                            f"({', '.join(BASELINES)}) or a run directory, got "
                                            f"{table.model!r}")
    weight = _finite(table.weight, f"{prefix}weight", where)
    if weight < 0:
        raise where.error(f"{prefix}weight", f"must not be negative, got {weight!r}")

    def error(key: str, message: str) -> ConfigError:
        return where.error(f"{prefix}{key}", message)

    placements = _placements(table.placements, error)
    rank_model = table.rank_model
    if rank_model is not None and not rank_model:
        raise error("rank_model", f"expected a click-probability run directory or "
                                  f"{REQUEST_ORDER!r}, got {rank_model!r}")
    rank_path = None if rank_model in (None, REQUEST_ORDER) else base / rank_model
    ranking = {"rank_model": rank_model, "rank_path": rank_path}
    if table.model == EXTERNAL:
        return VariantSpec(name, table.model, weight, None, parse_external(table, error),
                           placements, **ranking)
    check_no_external_keys(table, error)
    path = None if table.model in BASELINES else (base / table.model)
    return VariantSpec(name, table.model, weight, path, None, placements, **ranking)


def _placements(value: tuple[str, ...],
                error: Callable[[str, str], ConfigError]) -> tuple[str, ...]:
    """A variant's ``placements``: a non-empty list of known placements, without repeats."""
    if not value or not all(p in PLACEMENTS for p in value):
        raise error("placements", f"expected a non-empty list of {', '.join(PLACEMENTS)}, "
                                  f"got {list(value)!r}")
    if len(set(value)) != len(value):
        raise error("placements", f"lists a placement twice: {list(value)!r}")
    return tuple(value)


def _check_model(spec: VariantSpec, where: _Where) -> Path | None:
    """The variant's run directory (for its sibling ``../cooc``), or None."""
    from sessionrec.modeldir import model_directory

    if spec.path is None:
        return None
    if not spec.path.exists():
        raise where.error(f"variants.{spec.name}.model", f"{spec.model!r}: no such directory "
                                                         f"{spec.path}; give a run directory "
                                                         "relative to this file or one of the "
                                                         f"baselines {', '.join(BASELINES)}")
    try:
        _, run_dir = model_directory(spec.path)
    except SessionRecError as err:
        raise where.error(f"variants.{spec.name}.model",
                          str(err).removeprefix("model: ")) from None
    return run_dir


def _check_rank_model(spec: VariantSpec, where: _Where) -> None:
    """The variant's ``rank_model`` must be a saved click-probability model (ALPINE, LSTM-R,
    ATRank, ...): a run directory holding ``model/model.json`` of one, or that folder."""
    import json

    if spec.rank_path is None:
        return
    key = f"variants.{spec.name}.rank_model"
    p = spec.rank_path
    if not p.is_dir():
        raise where.error(key, f"{spec.rank_model!r}: no such directory {p}; give a "
                               "click-probability run relative to this file (sessionrec train "
                               f"on exposures, e.g. runs/kuairand/alpine) or {REQUEST_ORDER!r}")
    meta_file = next((d / "model.json" for d in (p / "model", p)
                      if (d / "model.json").is_file()), None)
    meta = json.loads(meta_file.read_text(encoding="utf-8")) if meta_file else {}
    if "feature_sizes" not in meta or "model" not in meta:
        what = f"a {meta.get('name')!r} model" if meta.get("name") else "no saved model"
        raise where.error(key, f"{spec.rank_model!r} ({p}) holds {what}, not a "
                               "click-probability model: /v1/rank needs a run of alpine, "
                               "lstm-r, atrank or another click model")
    from sessionrec.models.neural.click import click_models

    if meta["model"] not in click_models():
        raise where.error(key, f"{spec.rank_model!r} ({p}) holds a {meta['model']!r} model, "
                               f"not a click-probability model ({', '.join(click_models())})")


def _baseline_source(variants: tuple[VariantSpec, ...], fallback: Path | None,
                     where: _Where) -> Path | None:
    """The cooc run that serves the baseline variants (checked), or None without baselines."""
    from sessionrec.modeldir import model_directory

    baselines = [v for v in variants if v.baseline]
    if fallback is not None:
        try:
            model_directory(fallback)
        except SessionRecError as err:
            raise where.error("experiment.fallback", str(err).removeprefix("model: ")) from None
        return fallback
    if not baselines:
        return None
    for v in variants:
        run_dir = _check_model(v, where)
        if run_dir is not None and (run_dir.parent / "cooc").is_dir():
            return run_dir.parent / "cooc"
    raise where.error(
        f"variants.{baselines[0].name}.model",
        f"the baseline {baselines[0].model!r} is served from a co-occurrence run and none was "
        "found: set fallback = \"runs/cooc\" in [experiment] (a `sessionrec train` run of the "
        "cooc model, relative to this file), or put a cooc run beside a model variant's run "
        "(RUN_DIR/../cooc)")


def load_experiment(path: str | Path, check_models: bool = True) -> ExperimentConfig:
    """Read and validate an experiment config.

    ``check_models``: also check that every model directory holds a saved model and that the
    baseline variants have a cooc run to be served from (what ``sessionrec serve`` needs;
    reading the config for a report does not). Raises :class:`ConfigError`.
    """
    path = Path(path)
    where = _Where(path)
    data = load_config(ExperimentFile, path, what="experiment config",
                       reword=lambda text, err: _reword_toml_error(text, err, where))
    exp = data.experiment
    if exp is None:
        raise where.error("experiment", "the [experiment] table is missing")
    base = path.parent
    name = exp.name
    if not NAME.fullmatch(name):
        raise where.error("experiment.name", f"{name!r}: use letters, digits and _ . - only")
    salt = exp.salt
    if not salt:
        raise where.error("experiment.salt", "must not be empty")
    unit = exp.unit
    start, end = _moment(exp.start, "start", where), _moment(exp.end, "end", where)
    if start is not None and end is not None and end <= start:
        raise where.error("experiment.end", f"{end.isoformat()} is not after start "
                                            f"{start.isoformat()}")
    window = _finite(exp.attribution_window_days, "experiment.attribution_window_days", where)
    ttl = _finite(exp.recommendation_ttl_days, "experiment.recommendation_ttl_days", where)
    for key, value in (("attribution_window_days", window), ("recommendation_ttl_days", ttl)):
        if value <= 0:
            raise where.error(f"experiment.{key}", f"must be positive, got {value!r}")
    holdout = _finite(exp.holdout, "experiment.holdout", where)
    if not 0 <= holdout < 1:
        raise where.error("experiment.holdout", f"must lie in [0, 1), got {holdout!r}")
    raw_variants = data.variants
    if not raw_variants:
        raise where.error("variants", "no variants: add [variants.NAME] tables with model and "
                                      "weight")
    variants = tuple(_variant(str(n), t, base, where) for n, t in raw_variants.items())
    folded: dict[str, str] = {}
    for v in variants:
        if v.name.lower() in folded:
            raise where.error(f"variants.{v.name}", f"duplicate variant name: {v.name!r} and "
                                                    f"{folded[v.name.lower()]!r} differ only "
                                                    "in case")
        folded[v.name.lower()] = v.name
    total = sum(v.weight for v in variants)
    if abs(total - 1.0) > WEIGHT_TOLERANCE:
        listed = ", ".join(f"{v.name}={v.weight:g}" for v in variants)
        raise where.error("variants.*.weight", f"weights must sum to 1, got {total:.12g} "
                                               f"({listed})")
    control = exp.control
    if control not in {v.name for v in variants}:
        raise where.error("experiment.control", f"{control!r} is not among the variants "
                                                f"({', '.join(v.name for v in variants)})")
    if next(v for v in variants if v.name == control).placements != PLACEMENTS:
        raise where.error(f"variants.{control}.placements", "control answers on every "
                                                           "placement (it stands in for the "
                                                           "variants that do not cover one); "
                                                           "leave placements out for it")
    if next(v for v in variants if v.name == control).external is not None:
        raise where.error("experiment.control", f"{control!r} is an external variant; control "
                                                "must be served here (it answers when the "
                                                "external service fails)")
    raw_fallback = exp.fallback
    if raw_fallback is not None and not raw_fallback:
        raise where.error("experiment.fallback", f"expected a cooc run directory, got "
                                                 f"{raw_fallback!r}")
    fallback = None if raw_fallback is None else base / raw_fallback
    raw_orders = exp.orders
    if raw_orders is not None and not raw_orders:
        raise where.error("experiment.orders", f"expected an obt run directory, got "
                                               f"{raw_orders!r}")
    orders = None if raw_orders is None else base / raw_orders
    if check_models:
        for v in variants:
            _check_model(v, where)
            _check_rank_model(v, where)
        fallback = _baseline_source(variants, fallback, where)
        if orders is not None:
            _check_orders_run(orders, where)
    return ExperimentConfig(name, salt, unit, start, end, window, holdout, control, ttl,
                            variants, fallback, path, orders)


def _check_orders_run(orders: Path, where: _Where) -> None:
    """The ``orders`` run must hold a saved ``obt`` model."""
    from sessionrec.modeldir import model_directory
    from sessionrec.models.base import CONFIG_FILE

    try:
        model_dir, _ = model_directory(orders)
    except SessionRecError as err:
        raise where.error("experiment.orders", str(err).removeprefix("model: ")) from None
    import json

    saved = json.loads((model_dir / CONFIG_FILE).read_text(encoding="utf-8")) \
        if (model_dir / CONFIG_FILE).is_file() else {}
    if saved.get("name", "obt") != "obt":
        raise where.error("experiment.orders", f"{orders} holds a {saved.get('name')!r} model, "
                                               "not obt (often bought together over orders)")
