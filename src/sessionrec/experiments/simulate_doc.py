"""docs/experiments.md: one section per simulated experiment, written by the simulate command.

Each section sits between ``<!-- BEGIN name -->`` / ``<!-- END name -->`` markers and is
replaced when the same dataset is simulated again; the method section above them is rewritten
each time. Tables come from the report's payload (``metrics.json``) and the run's
``summary.json``.
"""

from __future__ import annotations

import re
from pathlib import Path

from sessionrec.experiments.visitors import span_text

TITLE = "# Online experiments (simulated)\n"

METHOD = """
There is no live shop here, so each experiment below is *simulated*: `sessionrec experiment
simulate` starts the real API (`sessionrec serve --experiment ... --event-log sqlite:///...`)
on a loopback port and replays held-out real sessions against it. Each visitor (a user id where
the data has one, else a session) sends its product views in time order with their real
timestamps, is shown the top 5 recommendations (an impression), clicks a shown product with
probability `base / rank^eta` when it really views that product later in the held-out data (in
the same or a later session), or `noise / rank^eta` otherwise, and replays its real orders at
their real times. Only data after the variants' training data is replayed: the cut-off is the
last event of the train and valid splits the models were fitted on, and every variant's
vocabulary is checked to be that prepared data's. The API logs recommendations, impressions,
clicks and purchases; the report credits a sale to a variant with the thesis's rule (the unit
clicked the bought product in a recommendation less than 14 days before) and shows the naive
same-session figure beside it. Units are assigned per user (sessions for anonymous visitors),
so intervals and tests are over units (delta method, Holm correction).

The clicks are a model, not observed behaviour: absolute CTRs depend on its parameters (listed
per section); the comparison between variants is what the simulation measures — whether a
variant puts the products a visitor goes on to view (and buy) into the top slots. The same seed
gives the same visitors' decisions.

What each dataset allows (the simulated period is what follows the training data, so it can be
no longer than the data's tail):

{datasets}

Reproduce every section (each command builds what is missing under `runs/experiments/`):

<!-- readme-test: needs diginetica, taobao, rees46 -->
```bash
for d in synthetic diginetica taobao rees46; do
  sessionrec experiment simulate --config configs/experiments/$d.toml \\
      --out runs/experiments/$d/sim --build --doc docs/experiments.md
done
# rewrite the sections from finished runs without simulating again:
python -m sessionrec.experiments.simulate_doc docs/experiments.md runs/experiments/*/sim
```

Variants: "often bought together" (the control) and GRU4Rec everywhere. The control counts
products bought in the same *order* (seed 000's production baseline: the `obt` model over the
prepared data's `orders.parquet`, each config's `orders = ".../obt"`, orders up to the end of
the training data only); it ranks by popularity where an item has no co-purchases. On the
user-aware datasets (synthetic, Taobao) also the four variants of the thesis study
(OnlySession/WithUser × OneHot/Embedding HGRU4Rec), trained by `sessionrec study --data
<the same prepared data> --seeds 0` (`[build.study]`, 5 epochs) — the study configs' own split
(each user's last session) would let the models see the simulated period. There the control
gets 25% of the users and every other variant 15%; on Diginetica and REES46 (session-only
samples, no user histories) control and GRU4Rec get half each.

Offline accuracy and the simulated KPIs need not agree: the offline metrics score the *next*
view, the click model rewards a shown product the visitor views *at any later time*, and the
conversion needs that product bought too."""

# What each committed simulation config replays: (dataset, data, trained on, simulated).
DATASETS = (
    ("synthetic", "`sessionrec.data.synth` with orders, 35 days (about half of the purchased "
     "products are bought in a later session than the one they were viewed in: 2,228 of "
     "4,566 order lines)",
     "days 1-14 (15-21: validation)", "the last 14 days"),
    ("diginetica", "SR-GNN's view sample + `train-purchases`",
     "views before 2016-05-04 (the last 14 days of them: validation)",
     "28 days of views, and their visitors' purchases up to 45 days after the cut-off"),
    ("taobao", "UserBehavior extract: 9 days of pv + buy",
     "until 2017-11-29 16:00 UTC (the last day: validation)",
     "the last 4 days: **shorter than 14 days**"),
    ("rees46", "REES46 October 2019: the first 3 hours",
     "until 02:30 UTC", "the last 20 minutes: **far shorter than 14 days** (all there is)"),
)


def method() -> str:
    rows = ["| dataset | data | trained on | simulated |", "|---|---|---|---|"]
    rows += [f"| {' | '.join(r)} |" for r in DATASETS]
    return METHOD.replace("{datasets}", "\n".join(rows))


def update_section(doc: Path, name: str, body: str) -> None:
    """Replace the text between the ``name`` markers of ``doc`` (or append it), atomically."""
    text = doc.read_text(encoding="utf-8") if doc.exists() else TITLE
    block = f"<!-- BEGIN {name} -->\n{body.rstrip()}\n<!-- END {name} -->"
    pattern = re.compile(rf"<!-- BEGIN {re.escape(name)} -->.*?<!-- END {re.escape(name)} -->",
                         re.S)
    text = pattern.sub(lambda _: block, text) if pattern.search(text) else (
        text.rstrip() + "\n\n" + block + "\n")
    doc.parent.mkdir(parents=True, exist_ok=True)
    tmp = doc.with_suffix(doc.suffix + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(doc)


def _pct(x, digits: int = 2) -> str:
    return "n/a" if x is None else f"{100 * x:.{digits}f}%"


def _num(x, digits: int = 4) -> str:
    if x is None:
        return "n/a"
    return f"{x:,}" if isinstance(x, int) else f"{x:,.{digits}f}"


def section(summary: dict, payload: dict) -> str:
    """The Markdown section of one simulation (``summary.json`` + the report's payload)."""
    s, clicks = summary, summary["clicks"]
    sim = s["simulated"]
    window = f"{payload['settings']['attribution_window_days']:g}"
    asked = sim.get("days_asked") or 0
    short = (f" **Shorter than the {asked:g} days asked: the data after the cut-off spans only "
             "this much.**" if asked and sim["days"] < asked - 0.5 else "")
    lines = [
        f"## {s['dataset']}: experiment `{s['experiment']}`", "",
        f"`{s['command']}` — {s['machine']}, run {s['started'][:10]}.", "",
        f"Replayed {s['visitors']:,} visitors ({s['held_out']['visitors']:,} held out), "
        f"{s['views']:,} views and {s['orders']:,} orders from {sim['first'][:16]} to "
        f"{sim['last'][:16]} UTC: **{span_text(sim['days'])} simulated** after the training "
        f"cut-off {s['cutoff'][:19]} (prepared split: {s['prepared_split']}).{short} "
        f"Clicks: base {clicks['base']:g}, eta {clicks['eta']:g}, noise {clicks['noise']:g}, "
        f"{s['slots']} slots, seed {s['seed']}.", "",
        f"| variant | model | offline MRR@20 | units | impressions | clicks | CTR | "
        f"conversion ({window} d) | same-session conv. | revenue / impression |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    offline = s.get("offline", {})
    for v in payload["variants"]:
        off = offline.get(v["variant"], {})
        mrr = off.get("mrr@20")
        lines.append(
            f"| {v['variant']} | {off.get('model', '')} | {_num(mrr)} | {_num(v['units'])} | "
            f"{_num(v['impressions'])} | {_num(v['clicks'])} | {_pct(v['ctr'])} | "
            f"{_pct(v['conversion'], 3)} | {_pct(v['same_session_conversion'], 3)} | "
            f"{_num(v['revenue_per_impression'])} |")
    lines += ["", "| KPI | variant vs control | difference (95% CI) | p | Holm p |",
              "|---|---|---:|---:|---:|"]
    for c in payload["comparisons"]:
        rate = c["kpi"] != "revenue_per_impression"
        f = (lambda x: f"{100 * x:+.3f} pts") if rate else (lambda x: f"{x:+.4f}")
        lines.append(f"| {c['kpi']} | {c['variant']} vs {c['control']} | {f(c['diff'])} "
                     f"({f(c['low'])} to {f(c['high'])}) | {c['p_value']:.3g} | "
                     f"{c['p_holm']:.3g} |")
    lines += [""] + [f"- {c['verdict']}" for c in payload["comparisons"]]
    srm = payload["srm"]
    lat = s["latency_ms"].get("/v1/events", {})
    lines += ["", f"Sample-ratio check: p = {srm['p_value']:.3g}"
              f"{' — **mismatch**' if srm['mismatch'] else ' (no mismatch)'}. "
              f"Replay: {s['requests']:,} requests in {s['wall_s']:.0f} s "
              f"({s['requests_per_s']:,.0f}/s, concurrency {s['concurrency']}), "
              f"{s['errors']} errors; `POST /v1/events` p50 {lat.get('p50', 0):.1f} ms, "
              f"p99 {lat.get('p99', 0):.1f} ms (client side). Logged: "
              + ", ".join(f"{k} {n:,}" for k, n in sorted(s["logged"].items())) + "."]
    return "\n".join(lines)


def write_section(doc: Path, summary: dict, payload: dict) -> None:
    """Write the method section and this simulation's section into ``doc``."""
    update_section(doc, "method", "## How\n" + method())
    update_section(doc, f"simulate:{summary['dataset']}", section(summary, payload))


def write_from_runs(doc: Path, run_dirs: list[Path]) -> None:
    """Rewrite the sections of finished simulations from their ``summary.json`` and
    ``metrics.json`` (what ``simulate --doc`` writes, without simulating again)."""
    import json

    for run in run_dirs:
        summary = json.loads((run / "summary.json").read_text(encoding="utf-8"))
        payload = json.loads((run / "metrics.json").read_text(encoding="utf-8"))
        write_section(doc, summary, payload)


if __name__ == "__main__":
    import sys

    if len(sys.argv) < 3:
        sys.exit("usage: python -m sessionrec.experiments.simulate_doc DOC.md SIM_OUT_DIR...")
    write_from_runs(Path(sys.argv[1]), [Path(p) for p in sys.argv[2:]])
