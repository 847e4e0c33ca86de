"""The experiment report: KPI table, comparisons with control, verdicts in plain words, SRM,
data-quality counts and daily plots, as Markdown (or HTML) plus ``metrics.json``.

:func:`analyse` turns an event frame into one JSON-able payload (everything the report shows);
:func:`write_report` writes ``report.md`` / ``report.html``, ``metrics.json`` and the PNGs,
each atomically (a temporary file renamed over the target).
"""

from __future__ import annotations

import html
import math
import os
import tempfile
from collections.abc import Sequence
from datetime import date
from pathlib import Path
from typing import Any

import polars as pl

from sessionrec.errors import DataError
from sessionrec.evaluation.report import write_results
from sessionrec.experiments.kpis import (
    ExperimentParams,
    KpiTables,
    compute_kpis,
    experiment_events,
    experiment_params,
)
from sessionrec.experiments.lag import click_to_sale_lags, lag_summary, lag_text
from sessionrec.experiments.placement_kpis import placement_kpis
from sessionrec.experiments.rank_kpis import rank_summary
from sessionrec.experiments.stats import (
    KPI_NUMERATORS,
    Comparison,
    compare_to_control,
    delta_method_diff,
    msprt_p_values,
    srm_check,
)

KPI_LABELS = {"ctr": "CTR", "conversion": "14-day conversion",
              "revenue_per_impression": "revenue per impression",
              "same_session_conversion": "same-session conversion",
              "rank_list_ctr": "ranked-list CTR",
              "rank_mean_reciprocal_position": "mean reciprocal position of clicked candidates"}
# mSPRT mixture scale: effects of about this share of the control rate are expected.
MSPRT_RELATIVE_TAU = 0.1


def _finite(value: Any) -> Any:
    """JSON-safe: non-finite floats become None, dates ISO strings, containers recursively."""
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, date):
        return value.isoformat()
    return value


def _always_valid(tables: KpiTables, params: ExperimentParams, variant: str,
                  kpi: str) -> list[dict[str, Any]]:
    """Daily cumulative delta-method looks at ``kpi`` and their always-valid p-values.

    The mixture scale is ``MSPRT_RELATIVE_TAU`` times control's rate at the last look: a mild
    use of the data (strictly, tau should be fixed before the experiment starts).
    """
    column = KPI_NUMERATORS[kpi]
    days = sorted(tables.unit_days["day"].unique().to_list())
    looks = []
    for day in days:
        cum = (tables.unit_days.filter(pl.col("day") <= day)
               .group_by(["variant", "unit_id"]).agg(pl.col("impressions", column).sum())
               .filter((pl.col("impressions") + pl.col(column)) > 0))
        arms = [cum.filter(pl.col("variant") == v) for v in (variant, params.control)]
        try:
            d = delta_method_diff(arms[0][column], arms[0]["impressions"],
                                  arms[1][column], arms[1]["impressions"])
        except DataError:  # too early: an arm has no impressions or a single unit
            continue
        if d.se > 0:
            looks.append({"day": day, "diff": d.diff, "variance": d.se**2, "control": d.control})
    if not looks:
        return []
    tau = MSPRT_RELATIVE_TAU * max(looks[-1]["control"], 1e-12)
    p = msprt_p_values([x["diff"] for x in looks], [x["variance"] for x in looks], tau**2)
    return [{"day": x["day"], "diff": x["diff"], "p_always_valid": float(q)}
            for x, q in zip(looks, p, strict=True)]


def analyse(frame: pl.DataFrame, config: Any, *, alpha: float = 0.05, n_boot: int = 2000,
            seed: int = 0, holm_family: str = "all", sequential: bool = True,
            tables: KpiTables | None = None,
            lag_window_days: float | None = None) -> dict[str, Any]:
    """Everything the report shows, as one JSON-able dict.

    Args:
        frame: the event log's frame (EVENT_SCHEMA), e.g. ``EventLog.read_frame(name)``.
        config: an ``ExperimentConfig`` or :class:`ExperimentParams`.
        alpha: level of every interval and test; ``n_boot`` unit-bootstrap replicates
            (0: none); ``seed`` of the bootstrap; ``holm_family`` ``"all"`` or ``"kpi"``.
        sequential: add always-valid (mSPRT) p-values from daily cumulative looks.
        tables: the frame's :func:`compute_kpis` when the caller already has them.
        lag_window_days: the window whose share of click-linked sales the click-to-sale lag
            reports (default: the attribution window).

    Returns:
        ``{"experiment", "settings", "variants", "daily", "comparisons", "srm", "counts",
        "period", "rank"}``; every comparison carries its ``verdict`` sentence. ``rank`` (null
        without ``/v1/rank`` answers in the log): ``{"variants", "comparisons", "skipped"}`` of
        :mod:`sessionrec.experiments.rank_kpis`.
    """
    params = experiment_params(config)
    tables = compute_kpis(frame, params) if tables is None else tables
    variants = tables.variants
    has_prices = variants["revenue_per_impression"].drop_nulls().len() > 0
    kpis = ["ctr", "conversion"] + (["revenue_per_impression"] if has_prices else [])
    # a variant without traffic (weight 0) has nothing to compare
    tested = [v for v in params.variant_names if params.weights[v] > 0 or v == params.control]
    # a log of /v1/rank answers alone has no impressions: its lists are compared below
    shown = int(variants["impressions"].sum()) > 0
    comparisons = compare_to_control(tables.units, params.control, tested, kpis,
                                     alpha=alpha, n_boot=n_boot, seed=seed,
                                     holm_family=holm_family) if shown else []
    rows = []
    for c in comparisons:
        row = c.to_dict()
        row["verdict"] = verdict(c)
        if sequential:
            looks = _always_valid(tables, params, c.variant, c.kpi)
            row["sequential"] = looks
            row["p_always_valid"] = looks[-1]["p_always_valid"] if looks else None
        rows.append(row)
    observed = dict(zip(variants["variant"], variants["units"], strict=True))
    srm = srm_check({v: n for v, n in observed.items() if n > 0}, params.expected_shares())
    ts = frame.filter(pl.col("experiment") == params.name)["ts"]
    lags = lag_summary(click_to_sale_lags(experiment_events(frame, params)),
                       lag_window_days or params.attribution_window_days)
    return _finite({
        "click_to_sale_lag": lags,
        "experiment": params.name,
        "settings": {"control": params.control, "weights": dict(params.weights),
                     "holdout": params.holdout,
                     "attribution_window_days": params.attribution_window_days,
                     "alpha": alpha, "n_boot": n_boot, "seed": seed, "holm_family": holm_family,
                     "kpis_tested": kpis, "msprt_relative_tau": MSPRT_RELATIVE_TAU},
        "period": {"events": len(ts), "first": ts.min(), "last": ts.max()},
        "variants": variants.to_dicts(),
        "placements": placement_kpis(experiment_events(frame, params), tables.sales,
                                     params.arms).to_dicts(),
        "daily": tables.daily.to_dicts(),
        "comparisons": rows,
        "rank": _rank_payload(experiment_events(frame, params), params, alpha),
        "srm": srm.to_dict(),
        "counts": tables.counts,
    })


def _rank_payload(events: pl.DataFrame, params: ExperimentParams,
                  alpha: float) -> dict[str, Any] | None:
    """The re-ranked lists' KPIs and comparisons (see :mod:`.rank_kpis`), or None."""
    got = rank_summary(events, params.control, params.arms, alpha)
    if got is None:
        return None
    table, comparisons, skipped = got
    return {"variants": table.to_dicts(),
            "comparisons": [{**c.to_dict(), "verdict": verdict(c)} for c in comparisons],
            "skipped": skipped}


def _decimals(half_width: float) -> int:
    """Decimals that show about two significant digits of an interval's half-width."""
    if not half_width > 0:
        return 2
    return max(1, min(6, -math.floor(math.log10(half_width / 2))))


def _fixed(x: float, k: int, sign: bool = False) -> str:
    text = f"{x:+.{k}f}" if sign else f"{x:.{k}f}"
    return text.replace("-", "", 1) if float(text) == 0 and text.startswith("-") else text


def verdict(c: Comparison) -> str:
    """The comparison in one plain sentence, e.g. "gru4rec raises CTR by 1.2 points (95% CI
    0.4 to 2.0), significant after Holm correction (p = 0.001, Holm 0.004)."."""
    d = c.delta
    label = KPI_LABELS.get(c.kpi, c.kpi)
    points = c.kpi != "revenue_per_impression"
    scale = 100.0 if points else 1.0
    unit = " points" if points else " per impression"
    diff, low, high = d.diff * scale, d.low * scale, d.high * scale
    k = _decimals((high - low) / 2)
    level = f"{(1 - d.alpha) * 100:g}% CI {_fixed(low, k)} to {_fixed(high, k)}"
    tests = f"p = {d.p_value:.2g}, Holm {c.p_holm:.2g}"
    if c.significant:
        direction = "raises" if diff > 0 else "lowers"
        return (f"{c.variant} {direction} {label} by {_fixed(abs(diff), k)}{unit} ({level}), "
                f"significant after Holm correction ({tests}).")
    alone = " (significant alone, not after Holm correction)" if d.p_value < d.alpha else ""
    return (f"{c.variant} vs {c.control}: no significant difference in {label}: "
            f"{_fixed(diff, k, sign=True)}{unit} ({level}; {tests}){alone}.")


# -- rendering -------------------------------------------------------------------------------
def _pct(x: Any, digits: int = 2) -> str:
    return "n/a" if x is None else f"{x:.{digits}%}"


def _num(x: Any, digits: int = 4) -> str:
    if x is None:
        return "n/a"
    return f"{x:,}" if isinstance(x, int) else f"{x:,.{digits}f}"


def _kpi_table(payload: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    window = f"{payload['settings']['attribution_window_days']:g}"
    header = ["Variant", "Units", "Impressions", "Clicks", "CTR", f"Sales ({window} d)",
              f"Conversion ({window} d)", "Same-session conv.", "Revenue / impression",
              "Orders / unit", "Revenue / unit", "Fallbacks"]
    rows = [[v["variant"], _num(v["units"]), _num(v["impressions"]), _num(v["clicks"]),
             _pct(v["ctr"]), _num(v["sales"]), _pct(v["conversion"], 3),
             _pct(v["same_session_conversion"], 3), _num(v["revenue_per_impression"]),
             _num(v["orders_per_unit"], 3), _num(v["revenue_per_unit"], 2),
             _num(v["fallbacks"])] for v in payload["variants"]]
    return header, rows


def _placement_table(payload: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    window = f"{payload['settings']['attribution_window_days']:g}"
    header = ["Placement", "Variant", "Recommendations", "Impressions", "Clicks", "CTR",
              f"Sales ({window} d)", f"Conversion ({window} d)", "Credited revenue"]
    rows = [[p["placement"], p["variant"], _num(p["recommendations"]), _num(p["impressions"]),
             _num(p["clicks"]), _pct(p["ctr"]), _num(p["sales"]), _pct(p["conversion"], 3),
             _num(p["attributed_revenue"], 2)] for p in payload.get("placements", [])]
    return header, rows


def _rank_table(rank: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    header = ["Variant", "Models", "Lists", "Fallbacks", "Clicked lists", "Clicked candidates",
              "List CTR", "Mean reciprocal position"]
    rows = [[v["variant"], ", ".join(v["models"]) or "n/a", _num(v["lists"]),
             _num(v["fallbacks"]), _num(v["clicked_lists"]), _num(v["clicks"]),
             _pct(v["list_ctr"]), _num(v["mean_reciprocal_position"], 3)]
            for v in rank["variants"]]
    return header, rows


def _rank_blocks(rank: dict[str, Any] | None) -> list[tuple]:
    if rank is None:
        return []
    return [("h2", "Re-ranked lists (/v1/rank)"),
            ("p", "Each POST /v1/rank answer is a list; a clicked candidate is a click "
                  "behaviour on a product of the list (counted once per list). List CTR = "
                  "lists with a click / lists; mean reciprocal position = mean of 1 / position "
                  "over clicked candidates. Delta method over units, Holm over these "
                  "comparisons."),
            ("table", *_rank_table(rank)),
            ("ul", [c["verdict"] for c in rank["comparisons"]] + rank["skipped"])]


def _comparison_table(payload: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    level = f"{(1 - payload['settings']['alpha']) * 100:g}%"
    header = ["KPI", "Variant", "Control", "Variant value", f"Difference ({level} CI)",
              f"Relative ({level} CI)", f"Bootstrap {level} CI", "p", "Holm p", "Always-valid p"]
    rows = []
    for c in payload["comparisons"]:
        rate = c["kpi"] != "revenue_per_impression"
        fmt = (lambda x: _pct(x, 3)) if rate else (lambda x: _num(x, 4))
        dfmt = (lambda x: f"{100 * x:+.3f} pts") if rate else (lambda x: f"{x:+.4f}")
        boot = c["bootstrap"]
        rel = ("n/a" if c["rel_diff"] is None else
               f"{c['rel_diff']:+.1%} ({c['rel_low']:+.1%} to {c['rel_high']:+.1%})")
        rows.append([
            KPI_LABELS.get(c["kpi"], c["kpi"]), c["variant"], fmt(c["control_value"]),
            fmt(c["variant_value"]),
            f"{dfmt(c['diff'])} ({dfmt(c['low'])} to {dfmt(c['high'])})", rel,
            "n/a" if boot is None else f"{dfmt(boot['low'])} to {dfmt(boot['high'])}",
            f"{c['p_value']:.3g}", f"{c['p_holm']:.3g}",
            "n/a" if c.get("p_always_valid") is None else f"{c['p_always_valid']:.3g}",
        ])
    return header, rows


def _srm_text(srm: dict[str, Any]) -> str:
    arms = ", ".join(f"{a} {n:,} (expected {srm['expected'][a]:,.0f})"
                     for a, n in srm["observed"].items())
    chi2 = "inf" if srm["chi2"] is None else f"{srm['chi2']:.2f}"
    head = (f"Assigned units: {arms}. Chi-square = {chi2} ({srm['dof']} df), "
            f"p = {srm['p_value']:.3g} (alert at p < {srm['threshold']:g}): ")
    if srm["mismatch"]:
        return head + ("**sample-ratio mismatch** — the split does not follow the configured "
                       "weights; find the cause before trusting any result below.")
    return head + "no sample-ratio mismatch."


def _counts_items(payload: dict[str, Any]) -> list[str]:
    counts = payload["counts"]
    recs = {v["variant"]: v["recommendations"] for v in payload["variants"]}
    orphan = "; ".join(f"{kind}s {c['unknown'] + c['expired']:,} (unknown id {c['unknown']:,}, "
                       f"expired {c['expired']:,})" for kind, c in counts["orphans"].items())
    fallbacks = ", ".join(f"{v} {n:,} of {recs.get(v, 0):,} recommendations"
                          for v, n in counts["fallbacks"].items())
    return [f"Orphan feedback (kept, never attributed): {orphan}.",
            f"Fallbacks to control (still counted for their variant): {fallbacks}.",
            f"Duplicate orders ignored: {counts['duplicate_orders']:,}; purchases without a "
            f"variant: {counts['unassigned_purchases']:,}."]


def _blocks(payload: dict[str, Any], plots: Sequence[tuple[str, str]]) -> list[tuple]:
    s = payload["settings"]
    period = payload["period"]
    boot = (f"a unit-level Poisson bootstrap ({s['n_boot']:,} replicates, seed {s['seed']})"
            if s["n_boot"] else "no bootstrap")
    family = ("every variant x KPI comparison" if s["holm_family"] == "all"
              else "the variants of each KPI")
    first, last = (str(period[k])[:16].replace("T", " ") for k in ("first", "last"))
    intro = (f"{period['events']:,} events from {first} to {last} UTC. "
             f"Control: {s['control']}. A sale is credited to a recommendation when the unit "
             f"bought a product it had clicked in a recommendation less than "
             f"{s['attribution_window_days']:g} days before (the thesis's rule); the naive "
             f"same-session figure is shown beside it. Intervals and p-values: the delta "
             f"method over units (the unit, not the impression, is independent); {boot} as a "
             f"check; Holm correction over {family} at alpha {s['alpha']:g}.")
    blocks: list[tuple] = [("h1", f"Experiment {payload['experiment']}"), ("p", intro),
                           ("h2", "Verdicts"), ("ul", [c["verdict"] for c in
                                                        payload["comparisons"]]),
                           ("h2", "KPIs per variant"), ("table", *_kpi_table(payload)),
                           ("h2", "KPIs per placement"),
                           ("p", "Where the recommendations were shown; a credited sale "
                                 "counts on the placement of its credited click."),
                           ("table", *_placement_table(payload)),
                           *_rank_blocks(payload.get("rank")),
                           ("h2", "Comparisons with control"),
                           ("table", *_comparison_table(payload)),
                           ("h2", "Sample-ratio check"), ("p", _srm_text(payload["srm"])),
                           ("h2", "Click-to-sale lag"),
                           ("p", lag_text(payload["click_to_sale_lag"])),
                           ("h2", "Data quality"), ("ul", _counts_items(payload)),
                           ("h2", "Daily KPIs")]
    blocks += [("img", alt, src) for alt, src in plots]
    return blocks


def render_markdown(blocks: Sequence[tuple]) -> str:
    out = []
    for kind, *rest in blocks:
        if kind in ("h1", "h2"):
            out.append(f"{'#' if kind == 'h1' else '##'} {rest[0]}\n")
        elif kind == "p":
            out.append(rest[0] + "\n")
        elif kind == "ul":
            out.append("\n".join(f"- {item}" for item in rest[0]) + "\n")
        elif kind == "table":
            header, rows = rest
            lines = ["| " + " | ".join(header) + " |",
                     "|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|"]
            lines += ["| " + " | ".join(r) + " |" for r in rows]
            out.append("\n".join(lines) + "\n")
        elif kind == "img":
            out.append(f"![{rest[0]}]({rest[1]})\n")
    return "\n".join(out)


def render_html(blocks: Sequence[tuple]) -> str:
    e = html.escape
    out = ["<!DOCTYPE html>", '<html><head><meta charset="utf-8">',
           "<style>body{font-family:sans-serif;max-width:75em;margin:2em auto}"
           "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.2em .5em}"
           "td{text-align:right}td:first-child{text-align:left}</style></head><body>"]
    for kind, *rest in blocks:
        if kind in ("h1", "h2"):
            out.append(f"<{kind}>{e(rest[0])}</{kind}>")
        elif kind == "p":
            out.append(f"<p>{e(rest[0]).replace('**', '')}</p>")
        elif kind == "ul":
            out.append("<ul>" + "".join(f"<li>{e(i)}</li>" for i in rest[0]) + "</ul>")
        elif kind == "table":
            header, rows = rest
            out.append("<table><tr>" + "".join(f"<th>{e(h)}</th>" for h in header) + "</tr>"
                       + "".join("<tr>" + "".join(f"<td>{e(c)}</td>" for c in r) + "</tr>"
                                 for r in rows) + "</table>")
        elif kind == "img":
            out.append(f'<p><img src="{e(rest[1])}" alt="{e(rest[0])}"></p>')
    return "\n".join([*out, "</body></html>"]) + "\n"


# -- files -----------------------------------------------------------------------------------
def _replace_atomically(target: Path, write) -> None:
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; a report is meant to be read by others
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def plot_daily(daily: Sequence[dict[str, Any]], column: str, path: Path, title: str,
               dashed: str | None = None) -> Path:
    """A PNG of ``column`` per day, one line per variant (``dashed``: a second column drawn
    dashed in the same colour). Days without impressions are gaps."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 3.5), dpi=110)
    variants = list(dict.fromkeys(r["variant"] for r in daily))
    for i, variant in enumerate(variants):
        rows = [r for r in daily if r["variant"] == variant and r["impressions"] > 0]
        if not rows:
            continue
        days = [date.fromisoformat(r["day"]) if isinstance(r["day"], str) else r["day"]
                for r in rows]
        colour = f"C{i}"
        ax.plot(days, [100 * r[column] for r in rows], marker="o", ms=3, color=colour,
                label=variant)
        if dashed:
            ax.plot(days, [100 * r[dashed] for r in rows], ls="--", color=colour, alpha=0.6,
                    label=f"{variant} (same session)")
    ax.set_title(title)
    ax.set_ylabel("%")
    ax.grid(alpha=0.3)
    locator = mdates.AutoDateLocator(minticks=3, maxticks=10)
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
    if variants:
        ax.legend(fontsize=7)
    fig.tight_layout()
    _replace_atomically(path, lambda fh: fig.savefig(fh, format="png"))
    plt.close(fig)
    return path


def write_report(frame: pl.DataFrame, config: Any, out_dir: str | Path, *, fmt: str = "md",
                 alpha: float = 0.05, n_boot: int = 2000, seed: int = 0,
                 holm_family: str = "all", sequential: bool = True,
                 lag_window_days: float | None = None) -> dict[str, Any]:
    """Analyse the experiment (:func:`analyse`) and write into ``out_dir``: ``report.md`` (or
    ``report.html`` with ``fmt="html"``), ``metrics.json``, ``daily_ctr.png`` and
    ``daily_conversion.png``. Returns the payload of ``metrics.json`` plus ``"files"``."""
    if fmt not in ("md", "html"):
        raise ValueError(f"fmt must be 'md' or 'html', got {fmt!r}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    payload = analyse(frame, config, alpha=alpha, n_boot=n_boot, seed=seed,
                      holm_family=holm_family, sequential=sequential,
                      lag_window_days=lag_window_days)
    window = f"{payload['settings']['attribution_window_days']:g}"
    plot_daily(payload["daily"], "ctr", out / "daily_ctr.png", "Daily CTR per variant")
    plot_daily(payload["daily"], "conversion", out / "daily_conversion.png",
               f"Daily conversion ({window}-day rule; dashed: same session)",
               dashed="same_session_conversion")
    plots = [("daily CTR", "daily_ctr.png"), ("daily conversion", "daily_conversion.png")]
    blocks = _blocks(payload, plots)
    text = render_markdown(blocks) if fmt == "md" else render_html(blocks)
    report = out / f"report.{fmt}"
    _replace_atomically(report, lambda fh: fh.write(text.encode("utf-8")))
    os.chmod(write_results(out, payload), 0o644)
    files = [str(report), str(out / "metrics.json"), *(str(out / src) for _, src in plots)]
    return {**payload, "files": files}

