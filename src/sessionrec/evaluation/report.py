"""Writing evaluation results (``metrics.json``) and turning them into Markdown tables.

Tables in the docs are generated from ``metrics.json`` files with :func:`markdown_table`,
never typed by hand, so a number in the docs can always be traced to a run directory.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from sessionrec.errors import DataError

METRICS_FILE = "metrics.json"


def write_results(run_dir: str | Path, payload: Mapping[str, Any]) -> Path:
    """Write ``payload`` as ``run_dir/metrics.json`` atomically; returns the file's path.

    The JSON goes to a temporary file in ``run_dir`` that replaces ``metrics.json`` in one
    ``os.replace``: readers see the old file or the new one, never half of one. Numpy scalars
    and arrays are converted; NaN or infinite numbers raise :class:`DataError` (strict JSON
    has no place for them).
    """
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    text = json.dumps(_jsonable(payload, "payload"), indent=2, allow_nan=False) + "\n"
    target = run_dir / METRICS_FILE
    fd, tmp_name = tempfile.mkstemp(dir=run_dir, prefix=f".{METRICS_FILE}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp_name, target)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    return target


def read_results(path: str | Path) -> dict[str, Any]:
    """Read a ``metrics.json`` (``path`` may be the file or its run directory)."""
    path = Path(path)
    if path.is_dir():
        path = path / METRICS_FILE
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataError("results file does not exist", path=str(path)) from None
    except json.JSONDecodeError as err:
        raise DataError(f"results file is not valid JSON: {err}", path=str(path)) from err


def _jsonable(value: Any, where: str) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, np.ndarray):
        return _jsonable(value.tolist(), where)
    if isinstance(value, (list, tuple)):
        return [_jsonable(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        raise DataError(f"cannot write {value} to JSON at {where}")
    if isinstance(value, Path):
        return str(value)
    return value


def _label(result: Mapping[str, Any], i: int) -> str:
    model = result.get("model")
    if isinstance(model, Mapping):
        model = model.get("name")
    if model is None:
        model = result.get("name")
    return str(model) if model is not None else f"run {i + 1}"


def _interval(entry: Any) -> tuple[float, float]:
    if isinstance(entry, Mapping):
        return float(entry["low"]), float(entry["high"])
    low, high = entry
    return float(low), float(high)


def markdown_table(
    results: Sequence[Mapping[str, Any]],
    metrics: Sequence[str] = ("recall@20", "mrr@20"),
    ci: Mapping[str, Mapping[str, Any]] | None = None,
    digits: int = 4,
) -> str:
    """A Markdown table with one row per result and one column per metric.

    Args:
        results: ``metrics.json`` payloads; a row is labelled by the payload's ``"model"``
            (a name, or a mapping with ``"name"``), else ``"name"``, else ``run <i>``.
        metrics: keys of each payload's ``"metrics"``; a missing one shows as ``n/a``.
        ci: optional ``{label: {metric: (low, high)}}`` (or a mapping with ``low``/``high``,
            such as ``BootstrapCI.to_dict()``), shown as ``value [low, high]``.
        digits: decimals of every number.

    Returns:
        The table, ending in a newline.
    """
    header = ["Model", *metrics, "Predictions"]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] + ["---:"] * (
        len(header) - 1)) + "|"]
    for i, result in enumerate(results):
        label = _label(result, i)
        values = result.get("metrics", {})
        cells = [label]
        for m in metrics:
            if m not in values:
                cells.append("n/a")
                continue
            cell = f"{float(values[m]):.{digits}f}"
            if ci is not None and m in ci.get(label, {}):
                low, high = _interval(ci[label][m])
                cell += f" [{low:.{digits}f}, {high:.{digits}f}]"
            cells.append(cell)
        n = result.get("n_predictions")
        cells.append(f"{int(n):,}" if n is not None else "n/a")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
