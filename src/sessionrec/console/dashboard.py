"""The experiment dashboard's numbers, aggregated server-side and cached.

The payload is :func:`sessionrec.experiments.report.analyse` — the very numbers of
``sessionrec experiment report`` (KPIs per variant, delta-method intervals, Holm-corrected
verdicts, SRM, always-valid p-values; the dashboard runs it without the bootstrap check,
``n_boot = 0``, which changes none of those numbers) — plus each variant's CTR and 14-day
conversion per day and cumulated up to each day, with delta-method intervals over units.

Analysing a large log takes seconds, so it runs in a thread and the page is answered from the
last result: a request starts a new analysis when the log's row counts changed and the last
one is older than ``refresh_s``; until the first one is done the answer says ``computing``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import polars as pl
from scipy import stats

from sessionrec.errors import SessionRecError
from sessionrec.experiments.kpis import compute_kpis
from sessionrec.experiments.report import KPI_LABELS, analyse
from sessionrec.experiments.stats import KPI_NUMERATORS, ratio_and_variance

log = logging.getLogger(__name__)

DASHBOARD_KPIS = ("ctr", "conversion")


def _interval(num, den, z: float) -> dict[str, Any] | None:
    """Ratio sum(num) / sum(den) over units with its delta-method interval (None: no data)."""
    if len(den) == 0 or float(den.sum()) <= 0:
        return None
    try:
        r, var = ratio_and_variance(num.to_numpy(), den.to_numpy())
    except SessionRecError:
        return None
    half = z * var ** 0.5 if var == var else float("nan")
    return {"value": r, "low": r - half, "high": r + half, "units": len(den)}


def kpi_series(unit_days: pl.DataFrame, variants: list[str],
               alpha: float = 0.05) -> list[dict[str, Any]]:
    """Per variant and day: impressions, then for each KPI the day's and the cumulative value
    (all days up to it) with ``(1 - alpha)`` delta-method intervals over units."""
    z = float(stats.norm.ppf(1 - alpha / 2))
    cols = ["impressions", *(KPI_NUMERATORS[k] for k in DASHBOARD_KPIS)]
    days = sorted(unit_days["day"].unique().to_list())
    rows = []
    for day in days:
        today = unit_days.filter(pl.col("day") == day)
        upto = (unit_days.filter(pl.col("day") <= day).group_by(["variant", "unit_id"])
                .agg(pl.col(cols).sum()))
        for variant in variants:
            row: dict[str, Any] = {"day": day, "variant": variant}
            for scope, table in (("day", today), ("cumulative", upto)):
                arm = table.filter(pl.col("variant") == variant)
                row[f"{scope}_impressions"] = int(arm["impressions"].sum())
                for kpi in DASHBOARD_KPIS:
                    row[f"{scope}_{kpi}"] = _interval(arm[KPI_NUMERATORS[kpi]],
                                                      arm["impressions"], z)
            rows.append(row)
    return rows


def analyse_log(frame: pl.DataFrame, config, alpha: float = 0.05) -> dict[str, Any]:
    """The dashboard payload of an event frame (see the module docstring)."""
    tables = compute_kpis(frame, config)
    payload = analyse(frame, config, alpha=alpha, n_boot=0, tables=tables)
    payload["series"] = kpi_series(tables.unit_days, list(config.variant_names()), alpha)
    payload["kpi_labels"] = KPI_LABELS
    return payload


class Dashboard:
    """The cached analysis of one experiment's event log (an ``EventLog``)."""

    def __init__(self, config, event_log, refresh_s: float = 5.0) -> None:
        self.config = config
        self.log = event_log
        self.refresh_s = refresh_s
        self.result: dict[str, Any] | None = None
        self.counts: dict[str, int] | None = None
        self.checked = 0.0
        self._task: asyncio.Task | None = None

    def _compute(self) -> None:
        counts = self.log.counts(self.config.name)
        if counts == self.counts and self.result is not None:
            return
        t0 = time.perf_counter()
        base = {"experiment": self.config.name, "counts_by_kind": counts,
                "computed_at": time.time()}
        if not any(counts.values()):
            result = {**base, "status": "empty",
                      "message": f"No events logged yet for experiment {self.config.name!r}: "
                                 "the dashboard fills in once the shop reports impressions, "
                                 "clicks and purchases (POST /v1/feedback/...)."}
        else:
            frame = self.log.read_frame(self.config.name)
            t_read = time.perf_counter() - t0
            try:
                result = {**base, "status": "ready", **analyse_log(frame, self.config)}
            except SessionRecError as err:
                result = {**base, "status": "error",
                          "message": f"The analysis cannot run yet: {err}"}
            result["read_seconds"] = round(t_read, 3)
        result["seconds"] = round(time.perf_counter() - t0, 3)
        self.counts, self.result = counts, result

    async def _refresh(self) -> None:
        try:
            await asyncio.to_thread(self._compute)
        except Exception as err:
            log.exception("console: experiment analysis failed")
            self.result = {"experiment": self.config.name, "status": "error",
                           "message": f"The analysis failed: {type(err).__name__}: {err}"}
        finally:
            self.checked = time.monotonic()
            self._task = None

    async def payload(self, wait: float = 1.0) -> dict[str, Any]:
        """The last result (starting a refresh when due; waits up to ``wait`` s for it)."""
        due = self.result is None or time.monotonic() - self.checked >= self.refresh_s
        if due and self._task is None:
            self._task = asyncio.create_task(self._refresh())
        if self._task is not None and wait > 0:
            await asyncio.wait([self._task], timeout=wait)
        if self.result is None:
            return {"experiment": self.config.name, "status": "computing",
                    "message": "Analysing the event log; this page updates when it is done."}
        return self.result
