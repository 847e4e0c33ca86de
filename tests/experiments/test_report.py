"""The experiment report: files, numbers traced to the KPI tables, verdicts, the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from sessionrec.cli import main
from sessionrec.errors import DataError
from sessionrec.evaluation.significance import BootstrapCI
from sessionrec.experiments.eventlog import EVENT_SCHEMA, Event, open_event_log
from sessionrec.experiments.kpis import ExperimentParams, compute_kpis
from sessionrec.experiments.report import analyse, verdict, write_report
from sessionrec.experiments.stats import Comparison, RatioDiff
from tests.experiments.test_kpis import at, ev, make_frame

PARAMS = ExperimentParams(name="exp", control="control",
                          weights={"control": 0.5, "gru4rec": 0.5})


def synthetic_log(n_units: int = 40, days: int = 3, seed: int = 0,
                  variants: tuple[str, ...] = ("control", "gru4rec")) -> pl.DataFrame:
    """Units alternate between ``variants``; gru4rec clicks twice as often; a click leads to
    an order of the clicked product and an unclicked one (prices 10 and 3) half the time."""
    rng = np.random.default_rng(seed)
    events = []
    for u in range(n_units):
        variant, unit = variants[u % len(variants)], f"user:{u}"
        events.append(ev("assignment", at(), unit_id=unit, variant=variant))
        rate = 0.2 if variant == "gru4rec" else 0.1
        for d in range(days):
            base = {"unit_id": unit, "variant": variant, "session_id": f"s{u}-{d}",
                    "recommendation_id": f"r{u}-{d}"}
            events.append(ev("recommendation", at(days=d), **base, products=["a", "b"]))
            for k in range(int(rng.integers(1, 6))):
                events.append(ev("impression", at(days=d, seconds=k), **base, products=["a"]))
                if rng.random() < rate:
                    product = f"p{rng.integers(0, 4)}"
                    events.append(ev("click", at(days=d, hours=1, seconds=k), **base,
                                     products=[product]))
                    if rng.random() < 0.5:
                        events.append(ev("purchase", at(days=d, hours=2, seconds=k),
                                         unit_id=unit, variant=variant,
                                         session_id=f"s{u}-{d}", order_id=f"o{u}-{d}-{k}",
                                         products=[product, "z"], prices=[10.0, 3.0]))
    return make_frame(events)


def test_write_report_files_and_numbers(tmp_path):
    frame = synthetic_log()
    result = write_report(frame, PARAMS, tmp_path, n_boot=200)
    names = {Path(f).name for f in result["files"]}
    assert names == {"report.md", "metrics.json", "daily_ctr.png", "daily_conversion.png"}
    for name in names:
        assert (tmp_path / name).stat().st_size > 0
    assert not list(tmp_path.glob(".*.tmp"))  # temporary files were renamed away
    saved = json.loads((tmp_path / "metrics.json").read_text())
    tables = compute_kpis(frame, PARAMS)
    for row, expected in zip(saved["variants"], tables.variants.iter_rows(named=True),
                             strict=True):
        assert row["variant"] == expected["variant"]
        assert (row["impressions"], row["clicks"], row["sales"]) == (
            expected["impressions"], expected["clicks"], expected["sales"])
        assert row["ctr"] == pytest.approx(expected["clicks"] / expected["impressions"])
    assert [c["kpi"] for c in saved["comparisons"]] == ["ctr", "conversion",
                                                       "revenue_per_impression"]
    ctr = saved["comparisons"][0]
    assert ctr["variant"] == "gru4rec" and ctr["control"] == "control"
    assert ctr["bootstrap"]["n_boot"] == 200
    assert 0 <= ctr["p_value"] <= ctr["p_holm"] <= 1
    looks = [x["p_always_valid"] for x in ctr["sequential"]]
    assert len(looks) == 3 and looks == sorted(looks, reverse=True)  # one look a day, never up
    assert ctr["p_always_valid"] == looks[-1]
    assert saved["srm"]["observed"] == {"control": 20, "gru4rec": 20}
    assert not saved["srm"]["mismatch"]
    text = (tmp_path / "report.md").read_text()
    assert "| Variant | Units | Impressions |" in text
    assert ctr["verdict"] in text
    assert "![daily CTR](daily_ctr.png)" in text
    assert "no sample-ratio mismatch" in text


def test_html_format(tmp_path):
    write_report(synthetic_log(), PARAMS, tmp_path, fmt="html", n_boot=0, sequential=False)
    text = (tmp_path / "report.html").read_text()
    assert text.startswith("<!DOCTYPE html>") and "<table>" in text
    assert '<img src="daily_ctr.png"' in text
    assert not (tmp_path / "report.md").exists()


def _comparison(low, high, p, p_holm, significant, variant_value=0.112):
    delta = RatioDiff(control=0.10, variant=variant_value, diff=variant_value - 0.10, se=0.004,
                      low=low, high=high, rel_diff=0.12, rel_low=0.04, rel_high=0.2,
                      p_value=p, n_control=500, n_variant=500, alpha=0.05)
    boot = BootstrapCI(estimate=0.012, low=low, high=high, p_value=p, n=1000, n_clusters=1000,
                       n_boot=2000, alpha=0.05)
    return Comparison(kpi="ctr", variant="GRU4Rec", control="control", delta=delta,
                      bootstrap=boot, p_holm=p_holm, significant=significant)


def test_verdict_sentences():
    assert verdict(_comparison(0.004, 0.020, 0.003, 0.009, True)) == (
        "GRU4Rec raises CTR by 1.2 points (95% CI 0.4 to 2.0), significant after Holm "
        "correction (p = 0.003, Holm 0.009).")
    assert verdict(_comparison(-0.020, -0.004, 0.003, 0.009, True, variant_value=0.088)) == (
        "GRU4Rec lowers CTR by 1.2 points (95% CI -2.0 to -0.4), significant after Holm "
        "correction (p = 0.003, Holm 0.009).")
    assert verdict(_comparison(0.001, 0.023, 0.03, 0.09, False)) == (
        "GRU4Rec vs control: no significant difference in CTR: +1.2 points (95% CI 0.1 to "
        "2.3; p = 0.03, Holm 0.09) (significant alone, not after Holm correction).")
    assert verdict(_comparison(-0.002, 0.026, 0.4, 0.8, False)) == (
        "GRU4Rec vs control: no significant difference in CTR: +1.2 points (95% CI -0.2 to "
        "2.6; p = 0.4, Holm 0.8).")


def test_three_variants_are_holm_corrected_together():
    frame = synthetic_log(n_units=60, variants=("control", "gru4rec", "hgru4rec"))
    params = ExperimentParams(name="exp", control="control",
                              weights={"control": 1 / 3, "gru4rec": 1 / 3, "hgru4rec": 1 / 3})
    payload = analyse(frame, params, n_boot=0, sequential=False)
    rows = payload["comparisons"]
    assert [(c["variant"], c["kpi"]) for c in rows] == [
        ("gru4rec", "ctr"), ("gru4rec", "conversion"), ("gru4rec", "revenue_per_impression"),
        ("hgru4rec", "ctr"), ("hgru4rec", "conversion"), ("hgru4rec", "revenue_per_impression")]
    smallest = min(c["p_value"] for c in rows)
    assert min(c["p_holm"] for c in rows) == pytest.approx(min(1.0, 6 * smallest))


def test_skewed_assignment_raises_the_srm_alarm():
    events = [ev("assignment", at(), unit_id=f"u{i}", variant="control" if i < 70 else "gru4rec")
              for i in range(100)]
    for u in (0, 1, 70, 71):
        variant = "control" if u < 70 else "gru4rec"
        events += [ev("impression", at(), unit_id=f"u{u}", variant=variant),
                   ev("click", at(hours=1), unit_id=f"u{u}", variant=variant, products=["p"])]
    payload = analyse(make_frame(events), PARAMS, n_boot=0, sequential=False)
    assert payload["srm"]["observed"] == {"control": 70, "gru4rec": 30}
    assert payload["srm"]["chi2"] == pytest.approx(16.0)  # 2 * 20^2 / 50
    assert payload["srm"]["mismatch"]


def test_no_control_impressions_is_an_error_naming_control(tmp_path):
    frame = synthetic_log().filter(~((pl.col("variant") == "control")
                                     & (pl.col("kind") == "impression")))
    with pytest.raises(DataError, match="variant 'control' has no impressions"):
        write_report(frame, PARAMS, tmp_path, n_boot=0)
    assert not (tmp_path / "report.md").exists()


TOML = """
[experiment]
name = "exp"
salt = "s"
control = "control"

[variants.control]
model = "often-bought-together"
weight = 0.5

[variants.gru4rec]
model = "runs/gru4rec"
weight = 0.5
"""


def test_cli_report_from_a_sqlite_log(tmp_path, capsys):
    toml = tmp_path / "exp.toml"
    toml.write_text(TOML)
    url = f"sqlite:///{tmp_path / 'events.db'}"
    fields = [f for f in EVENT_SCHEMA if f != "seq"]
    with open_event_log(url) as log:
        log.append([Event(**{f: row[f] for f in fields})
                    for row in synthetic_log(n_units=20, days=2).iter_rows(named=True)])
    out = tmp_path / "report"
    rc = main(["experiment", "report", str(toml), "--log", url, "--out", str(out),
               "--n-boot", "100", "--format", "html"])
    assert rc == 0
    printed = capsys.readouterr().out
    assert "gru4rec" in printed and "report.html" in printed
    assert json.loads((out / "metrics.json").read_text())["experiment"] == "exp"


def test_cli_power(capsys):
    assert main(["experiment", "power", "--baseline", "0.1", "--mde", "0.02", "--json"]) == 0
    assert json.loads(capsys.readouterr().out.splitlines()[-1]) == {"units_per_arm": 3841}
    assert main(["experiment", "power", "--baseline", "0.1"]) == 2  # neither --mde nor --units
