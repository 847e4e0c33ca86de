"""The ladder's MIDI and MAXI steps (seed 000, ch. 3.4 and Table 3.1) for HGRU4Rec.

    python scripts/ladder.py raw  --out runs/ladder/raw-maxi
    python scripts/ladder.py midi --raw runs/ladder/raw-maxi --out runs/ladder/midi \\
        [--hidden 50 100 200 500] [--embedding 0]
    python scripts/ladder.py maxi --raw runs/ladder/raw-maxi --out runs/ladder/maxi \\
        --hidden 100 --max-steps 20000

``raw`` writes a synthetic Galaxus-format log of MAXI's raw size (``sessionrec synth``, the
sizes of benchmarks/prepare_maxi.py). Both steps subsample that one log with
``sessionrec prepare --preset MIDI`` / ``--preset MAXI``, as the thesis subsamples its one
dataset. ``midi`` trains HGRU4Rec (configs/ladder/hgru4rec-thesis.toml: the thesis recipe,
one epoch) once per size with ``sessionrec train``, so every run writes its run directory
(config.toml, metrics.json), and writes the docs/results.md section ``ladder-midi`` from the
runs' metrics.json. ``maxi`` trains the chosen size on MAXI for ``--max-steps`` optimiser
steps (the model's ``max_steps``) in a child process (the ``fit`` step), projects the full
epoch from its events/s, runs the same bounded fit data-parallel in two processes
(``--nproc 2``) for the scaling, and writes the section ``ladder-maxi``. Every step skips
what its output directory already holds, so an interrupted sweep continues; ``--render``
only rewrites the section from what is there.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from _report import load_average, machine, update_section

ROOT = Path(__file__).resolve().parents[1]
CONFIG = Path("configs/ladder/hgru4rec-thesis.toml")
CLI = [sys.executable, "-m", "sessionrec.cli"]
MAXI_RAW = {"events": 34_500_000, "users": 240_000, "items": 470_000}  # prepare_maxi.py's
TABLE_3_1 = {"MIDI": {"users": 15_242, "items": 42_103, "events": 1_234_697,
                      "sessions": 250_187},
             "MAXI": {"users": 242_797, "items": 470_817, "events": 28_726_701,
                      "sessions": 4_652_496}}
SIDE = "ladder.json"  # beside a run's metrics.json: wall and CPU seconds, load, command


def children_cpu() -> float:
    """User + system CPU seconds of the waited-for child processes so far."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(cmd: list[str], **kwargs: Any) -> dict[str, Any]:
    """Run ``cmd`` in the repository root (check=True); its wall and CPU seconds and the load
    average before and after."""
    before, cpu, t0 = load_average(), children_cpu(), time.perf_counter()
    subprocess.run(cmd, check=True, cwd=ROOT, **kwargs)
    return {"wall_s": time.perf_counter() - t0, "cpu_s": children_cpu() - cpu,
            "load_before": before, "load_after": load_average()}


def write_json(path: Path, payload: dict[str, Any]) -> None:
    """Write ``payload`` to ``path`` through a temporary file and a rename."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(payload, indent=1), encoding="utf-8")
    tmp.replace(path)


def synth_raw(out: Path, events: int, users: int | None = None,
              items: int | None = None) -> Path:
    """A synthetic Galaxus-format raw log in ``out`` (kept if already there)."""
    if out.is_dir():
        return out
    sizes = [*(["--users", str(users)] if users else []),
             *(["--items", str(items)] if items else [])]
    subprocess.run([*CLI, "synth", "--events", str(events), *sizes, "--seed", "0",
                    "--out", str(out)], check=True, cwd=ROOT, capture_output=True)
    return out


def prepare_preset(raw: Path, out: Path, preset: str) -> tuple[Path, dict[str, Any]]:
    """``sessionrec prepare --source galaxus --preset PRESET`` of ``raw`` into ``out`` (kept
    if already prepared); returns the directory and its manifest, with the prepare's timing
    under ``ladder`` when this call ran it."""
    side = out.parent / f"{out.name}.{SIDE}"
    if not (out / "manifest.json").is_file():
        timing = timed([*CLI, "prepare", "--source", "galaxus", "--input", str(raw), "--out",
                        str(out), "--preset", preset, "--overwrite"], capture_output=True)
        write_json(side, timing)
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    if side.is_file():
        manifest["ladder"] = json.loads(side.read_text(encoding="utf-8"))
    return out, manifest


def size_sets(hidden: int, embedding: int) -> list[str]:
    """``--set`` overrides of one size: session and user GRU ``hidden`` units, and a separate
    item embedding of ``embedding`` (0: the output weights are the input embedding)."""
    sets = [f"model.params.layers=[{hidden}]", f"model.params.user_layers=[{hidden}]"]
    if embedding:
        sets += [f"model.params.embedding={embedding}",
                 "model.params.constrained_embedding=false"]
    return sets


def train_run(data: Path, run_dir: Path, sets: list[str]) -> None:
    """One ``sessionrec train`` run (skipped when ``run_dir`` already holds a finished one);
    its timing goes to ``run_dir/ladder.json``."""
    if (run_dir / "metrics.json").is_file() and (run_dir / SIDE).is_file():
        return
    cmd = [*CLI, "train", "--config", str(CONFIG), "--data", str(data), "--out", str(run_dir),
           "--overwrite", "--threads", "1", *[a for s in sets for a in ("--set", s)]]
    timing = timed(cmd)
    write_json(run_dir / SIDE, {**timing, "sets": sets})


def midi_row(run_dir: Path) -> dict[str, Any]:
    """The table row of one MIDI run, from its metrics.json and ladder.json."""
    metrics = json.loads((run_dir / "metrics.json").read_text(encoding="utf-8"))
    side = json.loads((run_dir / SIDE).read_text(encoding="utf-8"))
    p, train = metrics["params"], metrics["train"]
    epochs = train["history"]["epochs"]
    return {"run": run_dir.name, "hidden": p["layers"][0], "user": p["user_layers"][0],
            "embedding": int(p["embedding"]) or p["layers"][0], "epochs": len(epochs),
            "valid_mrr10": epochs[-1].get("valid_score"),
            "recall20": metrics["metrics"]["recall@20"], "mrr20": metrics["metrics"]["mrr@20"],
            "s_epoch": sum(e["seconds"] for e in epochs) / len(epochs),
            "events_s": train["events_per_s"], "peak_rss_mb": train["peak_rss_mb"],
            "n_predictions": metrics["n_predictions"], **side}


def choose(rows: list[dict[str, Any]], within: float = 0.05) -> dict[str, Any]:
    """The size for MAXI: the cheapest (fewest CPU seconds for its whole run) of the runs
    whose validation MRR@10 is within ``within`` (relative) of the best one's. Validation, not
    test, so the test split stays unseen by the choice; cost breaks near-ties because MAXI is
    about 20x MIDI; CPU seconds, because wall seconds follow the shared machine's load."""
    best = max(r["valid_mrr10"] for r in rows)
    return min((r for r in rows if r["valid_mrr10"] >= (1 - within) * best),
               key=lambda r: r["cpu_s"])


def data_table(name: str, manifest: dict[str, Any]) -> list[str]:
    """Table 3.1's row for ``name`` beside what the prepare produced."""
    t = TABLE_3_1[name]
    counts = manifest["counts"]
    events = counts.get("subsampled_events", counts.get("filtered_events"))
    sessions = sum(s["sessions"] for s in manifest["splits"].values())
    return ["| | users | products | events | sessions |", "|---|---:|---:|---:|---:|",
            f"| seed 000, Table 3.1 ({name}) | {t['users']:,} | {t['items']:,} | "
            f"{t['events']:,} | {t['sessions']:,} |",
            f"| this data | {manifest['n_users']:,} | {manifest['n_items']:,} | {events:,} | "
            f"{sessions:,} |"]


def prepare_line(manifest: dict[str, Any]) -> str:
    side = manifest.get("ladder")
    if not side:
        return ""
    return (f" The prepare took {side['wall_s']:.0f} s wall, {side['cpu_s']:.0f} s CPU (load "
            f"{side['load_before']} before).")


def render_midi(rows: list[dict[str, Any]], manifest: dict[str, Any],
                missing: list[str] = ()) -> str:
    """The docs/results.md section ``ladder-midi``; ``missing``: runs asked for, not there."""
    lines = [
        "## The ladder, MIDI: HGRU4Rec model-size sweep (seed 000, ch. 3.4)", "",
        f"`python scripts/ladder.py midi --raw RAW --out OUT` on {machine()}, **shared with "
        "other sessions** (load = 1, 5, 15-minute load average before each run; wall seconds "
        "stretch with it, CPU seconds much less). Data: the raw log of MAXI's size "
        f"(`sessionrec synth --events {MAXI_RAW['events']} --users {MAXI_RAW['users']} "
        f"--items {MAXI_RAW['items']} --seed 0`) subsampled with `sessionrec prepare --source "
        "galaxus --preset MIDI` (products drawn ∝ popularity, users taken until the target; "
        f"last session of each user is test, the one before valid).{prepare_line(manifest)}",
        "", *data_table("MIDI", manifest), "",
        "Model: HGRU4Rec, `configs/ladder/hgru4rec-thesis.toml`: the thesis recipe (Adam 0.01, "
        "TOP1-max, negatives only from the other lanes of the batch, n_sample = 0, batch 32; "
        "dropout 0.2 hidden / 0.5 user / 0.5 session init), **one epoch** per size (all this "
        "machine affords), one thread. The user GRU has the session GRU's size (as in "
        "Quadrana et al.'s HGRU4Rec: one model size, and the session state is initialised "
        "from the user state); item embedding = hidden means the output weights are the input "
        "embedding. Each row is a `sessionrec train` run directory. Test: every next click "
        "of each user's last session ranked against all items (full ranking, pessimistic "
        "ties), users' states carried through valid first. valid MRR@10 = what fit validates "
        "on. s/epoch and events/s are of training alone; wall / CPU s of the whole command "
        "(load, fit, validation, user states, test); peak RSS after fit.", "",
        "| hidden (session = user) | item embedding | epochs | valid MRR@10 | test Recall@20 "
        "| test MRR@20 | s/epoch | events/s | run wall s | run CPU s | peak RSS MB | load |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for r in sorted(rows, key=lambda r: (r["hidden"], r["embedding"])):
        lines.append(
            f"| {r['hidden']} | {r['embedding']} | {r['epochs']} | {r['valid_mrr10']:.4f} | "
            f"{r['recall20']:.4f} | {r['mrr20']:.4f} | {r['s_epoch']:.0f} | "
            f"{r['events_s']:,.0f} | {r['wall_s']:.0f} | {r['cpu_s']:.0f} | "
            f"{r['peak_rss_mb']:,.0f} | {r['load_before']} |")
    if rows:
        pick = choose(rows)
        lines += ["", f"{rows[0]['n_predictions']:,} test predictions per run. Chosen for "
                  f"MAXI (rule: the size with the fewest run CPU seconds whose valid MRR@10 is "
                  f"within 5 % of the best; validation, not test, chooses): **hidden "
                  f"{pick['hidden']}, item embedding {pick['embedding']}**."]
    if missing:
        lines += ["", f"Asked for but without a finished run: {', '.join(missing)}."]
    return "\n".join(lines)


def cmd_raw(args: argparse.Namespace) -> None:
    synth_raw(args.out, args.events, args.users, args.items)


def midi_runs(out: Path) -> list[dict[str, Any]]:
    """Rows of the finished runs under ``out/runs``."""
    runs = sorted(p for p in (out / "runs").glob("*") if (p / SIDE).is_file()
                  and (p / "metrics.json").is_file())
    return [midi_row(p) for p in runs]


def cmd_midi(args: argparse.Namespace) -> None:
    data, manifest = prepare_preset(args.raw, args.out / "data", "MIDI")
    names = {f"h{h}-e{e}": (h, e) for e in args.embedding for h in args.hidden}

    def missing() -> list[str]:
        done = {r["run"] for r in midi_runs(args.out)}
        return [f"hidden {h}" + (f" / embedding {e}" if e else "")
                for name, (h, e) in names.items() if name not in done]

    if not args.render:
        for name, (hidden, embedding) in names.items():
            train_run(data, args.out / "runs" / name, size_sets(hidden, embedding))
            # after every run, so that a sweep cut short still reports what it measured
            update_section("ladder-midi", render_midi(midi_runs(args.out), manifest,
                                                      missing()), doc=args.doc)
    body = render_midi(midi_runs(args.out), manifest, missing())
    update_section("ladder-midi", body, doc=args.doc)
    print(body)


def fit_bounded(data: str, config: str, out: str, sets: list[str]) -> None:
    """Fit the ladder's model on the train split of ``data`` (in this process, or as one rank
    of a ``torch.distributed`` group) and, on rank 0, write what the fit measured to ``out``
    (CPU seconds: this process's, i.e. rank 0's)."""
    import os

    from sessionrec.config import load_config
    from sessionrec.runs import RunConfig, build_model, load_splits
    from sessionrec.training.distributed import world

    t0 = time.perf_counter()
    splits = load_splits(Path(data))
    load_s = time.perf_counter() - t0
    model = build_model(load_config(RunConfig, config, sets).model, splits.items)
    load = " / ".join(f"{x:.1f}" for x in os.getloadavg())
    t0, cpu0 = time.perf_counter(), time.process_time()
    model.fit(splits.train)
    if world()[0] != 0:
        return
    stats = {k: v for k, v in model.fit_stats_.items() if k != "history"}
    stats["history"] = model.fit_stats_["history"]["epochs"]
    write_json(Path(out), {
        "fit_wall_s": time.perf_counter() - t0, "fit_cpu_s": time.process_time() - cpu0,
        "load_s": load_s, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        / 1024, "load_before": load,
        "load_after": " / ".join(f"{x:.1f}" for x in os.getloadavg()),
        "train_events": int(splits.train.n_events), "sets": sets, "fit": stats})


def cmd_fit(args: argparse.Namespace) -> None:
    """The ``fit`` step (run by ``maxi`` in a child process): :func:`fit_bounded`, in
    ``--nproc`` processes."""
    fit_args = (str(args.data), str(args.config), str(args.result), args.sets)
    if args.nproc > 1:
        from sessionrec.training.distributed import launch

        launch(args.nproc, fit_bounded, fit_args, device="cpu")
    else:
        fit_bounded(*fit_args)


def render_maxi(r: dict[str, Any], manifest: dict[str, Any], max_steps: int) -> str:
    """The docs/results.md section ``ladder-maxi``."""
    fit = r["fit"]
    full_s = r["train_events"] / fit["events_per_s"]
    hidden = r["sets"][0].split("=[")[1].rstrip("]")
    if isinstance(r.get("nproc2"), str):  # before HGRU4Rec trained data-parallel
        parallel = (f"`--nproc 2` for HGRU4Rec: refused, {r['nproc2']}. Its row-sparse "
                    "training step was not data-parallel then, so the 2 cores gave no second "
                    "training process.")
    else:
        two = r["nproc2"]["fit"]
        parallel = (
            f"The same bounded fit with `--nproc 2` (two processes, one thread each, "
            f"{two['world_size']} ranks sharing the users, global batch unchanged): "
            f"**{two['events_per_s']:,.0f} events/s in all**, "
            f"{two['events_per_s'] / fit['events_per_s']:.2f}x the one-process rate "
            f"(scaling efficiency {two['events_per_s'] / (2 * fit['events_per_s']):.2f}; "
            f"load {r['nproc2']['load_before']} before, {r['nproc2']['load_after']} after).")
    return "\n".join([
        "## The ladder, MAXI: the chosen size on MAXI-scale data, a bounded part of one epoch",
        "", f"`python scripts/ladder.py maxi --raw RAW --out OUT --hidden {hidden} --max-steps "
        f"{max_steps}` on {machine()}, **shared with other sessions**; CPU only (no GPU was "
        "lent to this session). Data: the same raw log as MIDI, `sessionrec prepare --source "
        f"galaxus --preset MAXI`.{prepare_line(manifest)}", "", *data_table("MAXI", manifest),
        "", f"HGRU4Rec, `configs/ladder/hgru4rec-thesis.toml` with session = user GRU "
        f"{hidden} units, trained on the train split ({r['train_events']:,} events, no "
        f"validation) in one process, one thread, stopped after `max_steps = {max_steps}` "
        f"optimiser steps (batch 32): {fit['epochs_walked']:.4f} of the epoch, "
        f"{fit['train_seconds']:.0f} s of training at **{fit['events_per_s']:,.0f} events/s "
        f"per process** (load {r['load_before']} before, {r['load_after']} after). Fit "
        f"wall {r['fit_wall_s']:.0f} s, CPU {r['fit_cpu_s']:.0f} s (training, then the walk "
        f"of every user's history for the stored user states: {fit['user_state_seconds']:.0f} "
        f"s); reading the splits {r['load_s']:.0f} s; peak RSS {r['peak_rss_mb']:,.0f} MB.",
        "", f"**Projected full epoch at this rate: {full_s:,.0f} s = {full_s / 3600:.1f} h** "
        f"(+ {fit['user_state_seconds']:.0f} s for the user states once per fit), a wall-clock "
        f"rate on the shared machine: the fit's CPU seconds were "
        f"{r['fit_cpu_s'] / r['fit_wall_s']:.0%} of its wall seconds. Events/s counts the "
        "cut epoch's events pro rata of the (input, target) pairs it trained on.", "",
        f"{parallel} GPU: none lent in this session, so no per-GPU figure."])


def cmd_maxi(args: argparse.Namespace) -> None:
    data, manifest = prepare_preset(args.raw, args.out / "data", "MAXI")
    result = args.out / f"fit-h{args.hidden}-{args.max_steps}.json"
    if not args.render:
        sets = [*size_sets(args.hidden, args.embedding), f"model.params.max_steps="
                f"{args.max_steps}"]
        parallel = args.out / f"fit-h{args.hidden}-{args.max_steps}-nproc2.json"
        for nproc, out in ((1, result), (2, parallel)):
            subprocess.run([sys.executable, str(Path(__file__).resolve()), "fit",
                            "--data", str(data), "--config", str(CONFIG), "--result", str(out),
                            "--nproc", str(nproc), *[f"--set={x}" for x in sets]],
                           check=True, cwd=ROOT)
        r = json.loads(result.read_text(encoding="utf-8"))
        r["nproc2"] = json.loads(parallel.read_text(encoding="utf-8"))
        write_json(result, r)
    r = json.loads(result.read_text(encoding="utf-8"))
    body = render_maxi(r, manifest, args.max_steps)
    update_section("ladder-maxi", body, doc=args.doc)
    print(body)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="step", required=True)
    p = sub.add_parser("raw", help="synthesise the raw log of MAXI's size")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--events", type=int, default=MAXI_RAW["events"])
    p.add_argument("--users", type=int, default=MAXI_RAW["users"])
    p.add_argument("--items", type=int, default=MAXI_RAW["items"])
    p.set_defaults(func=cmd_raw)
    p = sub.add_parser("fit", help="one bounded fit, as the maxi step runs it (internal)")
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--config", type=Path, default=CONFIG)
    p.add_argument("--result", type=Path, required=True)
    p.add_argument("--nproc", type=int, default=1)
    p.add_argument("--set", dest="sets", action="append", default=[])
    p.set_defaults(func=cmd_fit)
    for name, func in (("midi", cmd_midi), ("maxi", cmd_maxi)):
        p = sub.add_parser(name, help=f"the {name.upper()} step")
        p.add_argument("--raw", type=Path, required=True, help="raw log (the `raw` step)")
        p.add_argument("--out", type=Path, required=True)
        p.add_argument("--doc", type=Path, default=ROOT / "docs" / "results.md")
        p.add_argument("--render", action="store_true",
                       help="only rewrite the section from what OUT holds")
        p.set_defaults(func=func)
        if name == "midi":
            p.add_argument("--hidden", type=int, nargs="+", default=[50, 100, 200, 500])
            p.add_argument("--embedding", type=int, nargs="+", default=[0],
                           help="item embedding sizes (0: tied to the output weights)")
        else:
            p.add_argument("--hidden", type=int, default=100)
            p.add_argument("--embedding", type=int, default=0)
            p.add_argument("--max-steps", type=int, default=20_000)
    args = parser.parse_args()
    args.func(args)


if __name__ == "__main__":
    main()
