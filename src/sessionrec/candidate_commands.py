"""The CLI side of click-probability models: ``prepare`` / ``train`` / ``evaluate`` for
exposure data (``--source kuairand``, ``--source trivago --exposures``,
``eval.protocol = "candidate-ranking"``)."""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence
from pathlib import Path

from sessionrec.errors import SessionRecError


def _shared_dir(name: str, candidates: Sequence[Path]) -> Path | None:
    return next((c / name for c in candidates if (c / name).exists()), None)


def prepare_command(args: argparse.Namespace, shared: Sequence[Path]) -> int:
    from sessionrec.config import load_config
    from sessionrec.data.exposures.prepare import (
        ExposureConfig,
        get_exposure_source,
        prepare_exposures,
    )

    source = get_exposure_source(args.source)
    cfg = load_config(ExposureConfig, args.config, args.set, base=source.defaults)
    path = Path(args.input) if args.input else _shared_dir(source.shared_dir, shared)
    if path is None:
        raise SessionRecError(f"no --input given and no {source.shared_dir}/ folder in "
                              f"{', '.join(map(str, shared))}: pass --input FOLDER")
    t0 = time.perf_counter()
    c = prepare_exposures(source, path, Path(args.out), cfg, overwrite=args.overwrite)["counts"]
    print(f"prepared {source.name} -> {args.out} in {time.perf_counter() - t0:.1f} s: "
          f"{c['raw_exposures']:,} exposures read, {c['exact_duplicates_dropped']:,} exact "
          f"duplicates and {c['canonical_duplicates_dropped']:,} repeats dropped, "
          + (f"{c['lists_click_not_shown_dropped']:,} lists whose click was not shown "
             "dropped, " if "lists_click_not_shown_dropped" in c else "")
          + f"{c['users_below_min_exposures']:,} users below {cfg.min_exposures} "
          f"{cfg.split_unit}s dropped; train/valid/test {c['train_exposures']:,} / "
          f"{c['valid_exposures']:,} / {c['test_exposures']:,} exposures of {c['users']:,} "
          f"users, {c['items']:,} items")
    return 0


def train_command(cfg, args: argparse.Namespace, shared: Sequence[Path]) -> int:
    from sessionrec.candidate_runs import exposure_data, run_candidates, summary_line
    from sessionrec.data.exposures.prepare import EXPOSURE_SOURCES
    from sessionrec.models.neural.click import get_click_model
    from sessionrec.training.distributed import launch

    get_click_model(cfg.model.name)(**cfg.model.params)  # bad names fail before any data
    run_dir = Path(args.out)
    if run_dir.exists() and any(run_dir.iterdir()) and not (args.overwrite or args.resume):
        raise SessionRecError(f"run directory {run_dir} is not empty (pass --overwrite, or "
                              "--resume to continue an interrupted run)")
    src = EXPOSURE_SOURCES.get(cfg.data.source)
    default = _shared_dir(src.shared_dir, shared) if src else None
    data_dir = exposure_data(cfg, run_dir, args.data, default)
    if args.nproc > 1:
        launch(args.nproc, run_candidates_rank,
               (cfg, str(data_dir), str(run_dir), args.resume, args.device), device=args.device)
        payload = json.loads((run_dir / "metrics.json").read_text(encoding="utf-8"))
    else:
        payload = run_candidates(cfg, data_dir, run_dir, resume=args.resume, device=args.device)
    if payload:
        print(summary_line(payload))
        print(f"wrote {run_dir / 'metrics.json'}")
    return 0


def run_candidates_rank(cfg, data_dir: str, run_dir: str, resume: bool, device: str) -> None:
    """One rank of ``sessionrec train --nproc N`` for a click-probability model."""
    from sessionrec.candidate_runs import run_candidates

    run_candidates(cfg, Path(data_dir), Path(run_dir), resume=resume, device=device)


def evaluate_command(args: argparse.Namespace) -> int:
    from sessionrec.candidate_runs import evaluate_models, summary_line

    t0 = time.perf_counter()
    text, _ = evaluate_models(Path(args.data), args.models, args.param, Path(args.out),
                              args.baseline,
                              on_run=lambda p: print("  " + summary_line(p), flush=True))
    print()
    print(text)
    print(f"wrote {Path(args.out) / 'results.md'} ({len(args.models)} models in "
          f"{time.perf_counter() - t0:.1f} s)")
    return 0
