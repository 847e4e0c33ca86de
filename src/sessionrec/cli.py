"""The single command-line entry point: ``sessionrec <command> ...``.

Commands render progress and tables; the library underneath only logs.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from sessionrec.errors import SessionRecError

log = logging.getLogger("sessionrec")

QUICKSTART_DIR = Path("sessionrec-quickstart")


def shared_data_candidates() -> list[Path]:
    """Where a default dataset folder is looked for: ``shared/data`` here and a few levels up."""
    out: list[Path] = []
    for base in (Path.cwd(), *Path.cwd().parents[:2]):
        for candidate in (base / "shared" / "data", base.parent / "shared" / "data"):
            if candidate not in out:
                out.append(candidate)
    return out


def shared_data_dir() -> Path | None:
    """``../shared/data`` (or ``./shared/data``) if it exists, for default dataset paths."""
    return next((c for c in shared_data_candidates() if c.is_dir()), None)


# -- synth -----------------------------------------------------------------------------------
def cmd_synth(args: argparse.Namespace) -> int:
    from sessionrec.data.synth import generate

    t0 = time.perf_counter()
    summary = generate(Path(args.out), args.events, seed=args.seed, n_users=args.users,
                       n_items=args.items, events_per_shard=args.events_per_shard,
                       fmt=args.format, overwrite=args.overwrite, orders=args.orders)
    days = "day" if summary.shards == 1 else "days"
    print(f"wrote {summary.events:,} events to {args.out}: {summary.shards} simulated {days}, "
          f"one shard each of up to {args.events_per_shard:,} events (--events-per-shard) "
          f"({time.perf_counter() - t0:.1f} s)")
    return 0


# -- prepare ---------------------------------------------------------------------------------
def load_prepare_config(source_name: str, config: str | None, overrides: Sequence[str],
                        preset: str | None):
    from sessionrec.config import load_config
    from sessionrec.data.prepare import PrepareConfig, with_preset
    from sessionrec.data.sources import get_source

    source = get_source(source_name)
    cfg = load_config(PrepareConfig, config, overrides, base=source.defaults)
    return source, with_preset(cfg, preset)


def default_input(source) -> Path:
    """The source's folder in ../shared/data; an error naming where it looked otherwise."""
    if source.shared_dir is None:
        raise SessionRecError(f"source {source.name!r} has no default data folder: pass "
                              "--input PATH (a raw file or folder)")
    looked = [c / source.shared_dir for c in shared_data_candidates()]
    found = next((p for p in looked if p.exists()), None)
    if found is None:
        raise SessionRecError(
            f"no --input given and no {source.shared_dir}/ folder for source {source.name!r}; "
            f"looked in {', '.join(str(p) for p in looked)}. Pass --input "
            f"PATH/{source.shared_dir} (a file or folder in the dataset's own layout), or "
            "--data DIR for train/tune/study")
    return found


def cmd_prepare(args: argparse.Namespace) -> int:
    from sessionrec.data.exposures.prepare import EXPOSURE_SOURCES
    from sessionrec.data.prepare import prepare
    from sessionrec.data.sources import all_sources
    from sessionrec.data.sources.events import parse_maps

    # Exposure logs (click-probability models): a source that only has exposures (kuairand) is
    # chosen by name; one that also has a next-item adapter (trivago) with --exposures.
    if args.exposures or (args.source in EXPOSURE_SOURCES and args.source not in all_sources()):
        from sessionrec.candidate_commands import prepare_command

        return prepare_command(args, shared_data_candidates())

    engine = [f"engine={args.engine}"] if args.engine else []
    master = [f'spark.master="{args.master}"'] if args.master else []
    source, cfg = load_prepare_config(args.source, args.config,
                                      [*parse_maps(args.map), *engine, *master, *args.set],
                                      args.preset)
    path = Path(args.input) if args.input else default_input(source)
    t0 = time.perf_counter()
    manifest = prepare(source, path, Path(args.out), cfg, overwrite=args.overwrite)
    splits = manifest["splits"]
    print(f"prepared {args.source} -> {args.out} in {time.perf_counter() - t0:.1f} s: "
          + ", ".join(f"{k} {v['events']:,} events / {v['sessions']:,} sessions"
                      for k, v in splits.items())
          + f"; {manifest['n_items']:,} items")
    return 0


# -- stats -----------------------------------------------------------------------------------
def cmd_stats(args: argparse.Namespace) -> int:
    from sessionrec.data.stats import dataset_stats, markdown_table, read_splits

    stats = dataset_stats(Path(args.data_dir))
    if args.json:
        print(json.dumps(stats, indent=2))
    else:
        print(markdown_table(stats))
    if not args.no_plots:
        import polars as pl

        from sessionrec.reports.plots import long_tail_plots

        events = pl.concat(list(read_splits(Path(args.data_dir)).values()))
        plots = Path(args.plots) if args.plots else Path(args.data_dir) / "plots"
        for path in long_tail_plots(events, plots, Path(args.data_dir).name):
            print(f"wrote {path}", file=sys.stderr)
    return 0


# -- train / evaluate ------------------------------------------------------------------------
def prepared_data(cfg, run_dir: Path, data_override: str | None) -> Path:
    """The prepared directory of a run: given, or prepared now from the source into run_dir."""
    from sessionrec.config import deep_merge, from_dict
    from sessionrec.data.prepare import PrepareConfig, prepare
    from sessionrec.data.sources import get_source

    if data_override and (Path(data_override) / "manifest.json").is_file():
        return Path(data_override)  # a prepared directory, whatever the config says
    if cfg.data.prepared and not data_override:
        if not (Path(cfg.data.prepared) / "manifest.json").is_file():
            raise SessionRecError(
                f"data.prepared = {cfg.data.prepared!r} is not a prepared data directory (no "
                "manifest.json there): make it with sessionrec prepare --out (or sessionrec "
                "quickstart for sessionrec-quickstart/data), or pass --data DIR")
        return Path(cfg.data.prepared)
    if not cfg.data.source:
        if data_override:
            raise SessionRecError(
                f"--data {data_override} is not a prepared data directory (no manifest.json) "
                "and the config names no data.source to prepare it with: prepare it first "
                "(sessionrec prepare --source NAME --input RAW --out DIR) or set data.source")
        raise SessionRecError("no data to train on: pass --data PREPARED_DIR, or a --config "
                              "whose [data] names prepared = DIR or source = NAME (e.g. "
                              "configs/quickstart/gru4rec.toml)")
    source = get_source(cfg.data.source)
    raw = Path(data_override or cfg.data.path or default_input(source))
    if (raw / "manifest.json").is_file():  # --data points at a prepared directory
        return raw
    prep = from_dict(PrepareConfig, deep_merge(source.defaults, cfg.data.prepare))
    out = run_dir / "data"
    prepare(source, raw, out, prep, overwrite=True)
    return out


def cmd_train(args: argparse.Namespace) -> int:
    from sessionrec.config import load_config
    from sessionrec.models.base import get_model_class
    from sessionrec.runs import (
        CHECKPOINTS,
        RunConfig,
        check_model_params,
        load_splits,
        run,
        run_rank,
        summary_line,
    )
    from sessionrec.training.distributed import init_from_env, is_main, launch

    if args.config is None and not any(s.startswith("model.name=") for s in args.set):
        from sessionrec.models.base import all_models

        raise SessionRecError(
            "train needs a model: pass --config FILE (a run config such as "
            "configs/quickstart/gru4rec.toml or configs/quickstart/vsknn.toml) or --set "
            f"model.name=NAME with --data DIR (models: {', '.join(sorted(all_models()))})")
    cfg = load_config(RunConfig, args.config, args.set)
    if cfg.eval.protocol == "candidate-ranking":  # click-probability models on exposures
        from sessionrec.candidate_commands import train_command

        return train_command(cfg, args, shared_data_candidates())
    check_model_params(get_model_class(cfg.model.name), cfg.model.params)  # before any data
    run_dir = Path(args.out)
    if run_dir.exists() and any(run_dir.iterdir()) and not (args.overwrite or args.resume):
        raise SessionRecError(f"run directory {run_dir} is not empty (pass --overwrite, or "
                              "--resume to continue an interrupted run)")
    started = run_dir.exists() and any(run_dir.iterdir())
    if args.resume and started and not (run_dir / CHECKPOINTS / "last.pt").is_file():
        raise SessionRecError(f"nothing to resume in {run_dir}: no {CHECKPOINTS}/last.pt "
                              "(start a new run, or pass --overwrite to replace this one)")
    if args.overwrite and not args.resume and (run_dir / CHECKPOINTS).is_dir():
        import shutil

        shutil.rmtree(run_dir / CHECKPOINTS)
    under_torchrun = init_from_env(args.device)
    if args.nproc > 1 or under_torchrun:
        check_data_parallel(cfg.model.name, args.nproc)
    if under_torchrun and not (args.data or cfg.data.prepared):
        raise SessionRecError("under torchrun every rank reads the same prepared data: run "
                              "`sessionrec prepare` first and pass the prepared directory "
                              "with --data (or data.prepared)")
    data_dir = prepared_data(cfg, run_dir, args.data)
    if args.nproc > 1:
        launch(args.nproc, run_rank, (cfg, str(data_dir), cfg.data.dataset, str(run_dir),
                                      args.resume, args.device), device=args.device)
        payload = json.loads((run_dir / "metrics.json").read_text(encoding="utf-8"))
    else:
        payload = run(cfg, load_splits(data_dir, cfg.data.dataset), run_dir,
                      resume=args.resume, device=args.device)
    if not is_main():
        return 0
    print(summary_line(payload))
    print(f"wrote {run_dir / 'metrics.json'}")
    return 0


def check_data_parallel(model: str, nproc: int) -> None:
    """Refuse --nproc > 1 for a model that cannot train data-parallel, before any work."""
    from sessionrec.errors import ConfigError
    from sessionrec.models.base import all_models, get_model_class

    if not get_model_class(model).data_parallel:
        able = sorted(n for n, c in all_models().items() if c.data_parallel)
        raise ConfigError(f"model {model!r} does not train data-parallel (--nproc {nproc}); "
                          f"models that do: {', '.join(able)}")


def cmd_tune(args: argparse.Namespace) -> int:
    from sessionrec.config import load_config
    from sessionrec.errors import ConfigError
    from sessionrec.runs import RunConfig, load_splits
    from sessionrec.tuning import (
        Search,
        check_search,
        load_space,
        prepare_out_dir,
        progress_line,
        run_search,
        tune_command,
    )

    cfg = load_config(RunConfig, args.config, args.set)
    space = load_space(args.space)
    trials = args.trials if args.trials is not None else space.trials
    if trials is None or trials < 1:
        raise ConfigError(f"no number of trials: pass --trials N (>= 1) or set trials in "
                          f"{args.space}")
    seed = args.seed if args.seed is not None else (space.seed or 0)
    command = tune_command(args.config, args.space, args.out, args.trials, args.seed,
                           args.metric, args.data, args.set)
    search = Search(cfg, space, trials, seed, args.metric, args.config, args.space,
                    tuple(args.set), command)
    check_search(search)  # before preparing any data
    out = Path(args.out)
    prepare_out_dir(out, overwrite=args.overwrite, resume=args.resume)
    splits = load_splits(prepared_data(cfg, out, args.data), cfg.data.dataset)
    check_search(search, splits)
    print(f"tuning {cfg.model.name} on the valid split of {splits.name}: {trials} trials, "
          f"seed {seed}, {args.metric}", flush=True)

    def on_trial(record: dict, best: dict | None) -> None:
        print(progress_line(record, trials, best, tuple(space.fixed)), flush=True)

    t0 = time.perf_counter()
    summary = run_search(search, splits, out, resume=args.resume, on_trial=on_trial)
    ran = summary["finished"] + summary["failed"]
    print(f"tune: {ran} trials in {time.perf_counter() - t0:.1f} s", flush=True)
    best = summary["best"]
    print(f"best: trial {best['number']}, {args.metric} {best['value']:.4f} on valid "
          f"({summary['finished']} finished, {summary['failed']} failed)")
    print(f"wrote {out / 'best.toml'}, {out / 'trials.jsonl'} and {out / 'search.json'}")
    return 0


def _print_run(payload: dict) -> None:
    from sessionrec.runs import summary_line

    print("  " + summary_line(payload), flush=True)


def cmd_evaluate(args: argparse.Namespace) -> int:
    from sessionrec.runs import compare_models

    if args.protocol == "candidate-ranking":
        from sessionrec.candidate_commands import evaluate_command

        return evaluate_command(args)

    t0 = time.perf_counter()
    text, _ = compare_models(Path(args.data), args.models, args.param, Path(args.out),
                             args.protocol, args.ties, args.baseline, args.dataset or "",
                             on_run=_print_run, jobs=args.jobs, threads=args.threads)
    print()
    print(text)
    print(f"wrote {Path(args.out) / 'results.md'} and one run directory per model "
          f"({len(args.models)} models in {time.perf_counter() - t0:.1f} s)")
    return 0


def cmd_next_n(args: argparse.Namespace) -> int:
    """The next-n protocol (issue 19) on a saved run: free-running predictions 1..n ahead."""
    from sessionrec.evaluation.next_n import next_n_run
    from sessionrec.modeldir import saved_prepared

    data = args.data
    if data is None:
        prepared = saved_prepared(Path(args.run))
        if not prepared:
            raise SessionRecError(f"next-n: {args.run}/config.toml names no prepared data "
                                  "directory; pass --data DIR (the data the run trained on)")
        data = prepared
    res = next_n_run(args.run, data, args.horizon, tuple(args.ks))
    m, k = res.metrics(), max(res.ks)
    for h in range(1, res.max_horizon + 1):
        if f"h{h}/recall@{k}" in m:
            print(f"h{h}: Recall@{k} {m[f'h{h}/recall@{k}']:.4f}  MRR@{k} "
                  f"{m[f'h{h}/mrr@{k}']:.4f}  ({res.counts()[f'h{h}']:,} cases)")
    print(f"wrote {Path(args.run) / 'next_n.json'}")
    return 0


# -- quickstart ------------------------------------------------------------------------------
def cmd_quickstart(args: argparse.Namespace) -> int:
    from sessionrec.config import load_config
    from sessionrec.data.prepare import PrepareConfig, prepare
    from sessionrec.data.sources import get_source
    from sessionrec.data.stats import dataset_stats, markdown_table
    from sessionrec.data.synth import generate
    from sessionrec.runs import compare_models

    t0 = time.perf_counter()
    out = Path(args.out)
    raw, data = out / "raw", out / "data"
    print(f"1/3 generating a synthetic Galaxus-format click log ({args.events:,} events) "
          f"in {raw}")
    generate(raw, args.events, seed=args.seed, events_per_shard=25_000, overwrite=True)
    print(f"2/3 preparing it (clean, sessionize, filter, split, encode) into {data}")
    cfg = load_config(PrepareConfig, overrides=QUICKSTART_PREPARE)
    manifest = prepare(get_source("galaxus"), raw, data, cfg, overwrite=True)
    print()
    print(markdown_table(dataset_stats(data)))
    print(f"\nfilter passes: {len(manifest['filter_passes'])}; "
          f"items: {manifest['n_items']:,}; users: {manifest['n_users']:,}")
    jobs = default_jobs() if args.jobs is None else args.jobs
    print(f"\n3/3 fitting and evaluating baselines (full ranking over all items) in {out}/runs"
          f" ({jobs} process{'es' if jobs > 1 else ''})")
    text, _ = compare_models(data, QUICKSTART_MODELS, QUICKSTART_PARAMS, out / "runs", "next-item",
                             "pessimistic", "pop", dataset="quickstart-synthetic",
                             on_run=_print_run, jobs=jobs, threads=args.threads)
    print()
    print(text)
    print(f"quickstart done in {time.perf_counter() - t0:.1f} s ({args.events:,} events, "
          f"{len(QUICKSTART_MODELS)} models, {jobs} process(es), "
          f"{args.threads or 'torch default'} torch thread(s) each); outputs in {out}/")
    return 0


# A small log has few users with 5+ sessions; these keep enough of it to be useful.
QUICKSTART_PREPARE = ("filter.min_user_sessions=3", "filter.min_item_support=5")
QUICKSTART_MODELS = ("pop", "cooc", "markov", "sr", "vsknn", "gru4rec")
# GRU4Rec kept short for a first run: 2 epochs of 256 session-parallel lanes with 512 shared
# negatives and a learning rate of 0.1 (official defaults: 64 lanes, 2,048 negatives, 0.05).
# On the quickstart's data this trains about 4x faster than 3 epochs at the official
# defaults, for Recall@20 0.838 against 0.841 (docs/benchmarks.md, quickstart section).
QUICKSTART_PARAMS = ("gru4rec.n_epochs=2", "gru4rec.batch_size=256", "gru4rec.n_sample=512",
                     "gru4rec.learning_rate=0.1")


# -- serve -----------------------------------------------------------------------------------
def cmd_serve(args: argparse.Namespace) -> int:
    from sessionrec.serving.server import run_server
    from sessionrec.serving.settings import ServeSettings

    if args.admin_token is not None:
        raise SessionRecError("--admin-token is no longer accepted: a token on the command "
                              "line is visible to every user in the process list (ps). Set "
                              "SESSIONREC_ADMIN_TOKEN, or pass --admin-token-file FILE")
    settings = ServeSettings.from_env(
        model=args.model, vocab=args.vocab, fallback=args.fallback, store=args.store,
        blocked_file=args.blocked, admin_token_file=args.admin_token_file,
        session_ttl_s=args.session_ttl, user_ttl_s=args.user_ttl, experiment=args.experiment,
        event_log=args.event_log, archive=args.archive, basket_model=args.basket_model,
        ui=False if args.no_ui else None,
        ui_private=True if args.ui_private else None, ui_compare=args.ui_compare,
        embeddings=args.embeddings)
    what = settings.model
    if settings.experiment:
        url = settings.event_log_url(settings.experiment)
        shown = url if url.startswith("sqlite") else url.partition("://")[0]  # no password
        what = f"experiment {settings.experiment} (event log {shown})"

    def announce() -> None:
        print(f"serving {what} on http://{args.host}:{args.port} (store {settings.store}, "
              f"{args.workers} worker(s)); API docs at /docs", flush=True)

    run_server(settings, args.host, args.port, args.workers, args.log_level, on_loaded=announce)
    return 0


# -- study ---------------------------------------------------------------------------------
def cmd_study(args: argparse.Namespace) -> int:
    from sessionrec.config import load_config
    from sessionrec.runs import load_splits
    from sessionrec.study import (
        StudyConfig,
        check_out_dir,
        run_study,
        write_markdown,
        write_plots,
    )

    overrides = list(args.set)
    if args.seeds:
        overrides.append(f"study.seeds=[{', '.join(str(s) for s in args.seeds)}]")
    cfg = load_config(StudyConfig, args.config, overrides)
    out = Path(args.out)
    check_out_dir(cfg, out)
    if (out / "data" / "manifest.json").is_file() and not args.data and not cfg.data.prepared:
        data_dir = out / "data"  # a continued study keeps its prepared data
    else:
        data_dir = prepared_data(cfg, out, args.data)
    splits = load_splits(data_dir, cfg.data.dataset)
    n_runs = len(cfg.study.seeds) * len(cfg.study.variants)
    done = [0]

    def on_run(variant: str, seed: int, payload: dict) -> None:
        done[0] += 1
        m = payload["metrics"]
        print(f"[{done[0]}/{n_runs}] {variant} seed {seed}: recall@20 {m['recall@20']:.4f}, "
              f"mrr@20 {m['mrr@20']:.4f} ({payload['train']['epochs']} epochs, "
              f"{payload['train']['seconds']:.1f} s)", flush=True)

    t0 = time.perf_counter()
    summary = run_study(cfg, splits, data_dir, out, on_run)
    print(f"study: {done[0]} runs in {time.perf_counter() - t0:.1f} s "
          f"({n_runs - done[0]} already done)", flush=True)
    plots = write_plots(cfg, summary, out, splits)
    path = write_markdown(out, summary, [str(p.relative_to(out)) for p in plots])
    print(path.read_text(encoding="utf-8"))
    print(f"wrote {path}, {out / 'study.json'} and {len(plots)} plots in {out / 'plots'}")
    return 0


# -- embed / similar -------------------------------------------------------------------------
def cmd_embed(args: argparse.Namespace) -> int:
    from sessionrec.embeddings.ann import EXACT_BELOW, index_for_store
    from sessionrec.embeddings.metaprod2vec import MetaProd2VecConfig, to_store, train_prepared
    from sessionrec.embeddings.store import write_store

    out = Path(args.out)
    if out.exists() and not args.overwrite:
        raise SessionRecError(f"embedding store {out} already exists (pass --overwrite)")
    if args.tsne and args.plots is None:
        raise SessionRecError("--tsne adds t-SNE maps to --plots: pass --plots too")
    if args.from_run:
        return _embed_from_run(args, out)
    if not args.data:
        raise SessionRecError("embed needs --data DIR (train embeddings) or --from-run RUN_DIR "
                              "(a p2v run's vectors)")
    cfg = MetaProd2VecConfig(dim=args.dim, window=args.window, epochs=args.epochs,
                             negatives=args.negatives, lambda_meta=args.lambda_meta,
                             price_classes=args.price_classes, lr=args.lr, seed=args.seed,
                             threads=args.threads, negatives_from=args.negatives_from)
    model, items = train_prepared(Path(args.data), cfg, min_dwell=args.min_dwell)
    store = to_store(model, items, source=str(args.data))
    if args.catalog:
        from sessionrec.embeddings.coldstart import add_cold_start, read_catalog

        store, info = add_cold_start(store, model.tokens, model.token_vectors().numpy(), items,
                                     read_catalog(Path(args.catalog)),
                                     method=args.cold_start_method,
                                     n_price_classes=args.price_classes)
        unknown = ", ".join(f"{f} {n}" for f, n in info["unknown"].items())
        print(f"cold start ({args.cold_start_method}): {info['added']:,} catalogue products "
              f"without views placed from their metadata; {info['no_usable_token']:,} without "
              f"any known token left out; values never seen in training (-> unknown token): "
              f"{unknown}")
    write_store(out, store, overwrite=args.overwrite)
    pairs = sum(h["pairs"] for h in model.history)
    seconds = sum(h["seconds"] for h in model.history)
    fields = ", ".join(model.tokens.fields) or "none"
    print(f"{store.meta['method']}: {len(store):,} items x {store.dim} dims, metadata fields: "
          f"{fields} ({model.tokens.n_tokens:,} tokens); {pairs:,} pairs in {seconds:.1f} s "
          f"({pairs / max(seconds, 1e-9):,.0f} pairs/s); final loss "
          f"{model.history[-1]['loss'] if model.history else float('nan'):.4f}")
    print(f"wrote {out}")
    if len(store) >= EXACT_BELOW or args.index:
        ann = index_for_store(out, store.vectors, store.product_ids, rebuild=True,
                              target_recall=args.index_recall)
        print(f"wrote the ANN index {out.name}.ann.npz (efSearch {ann.ef_search}, recall@10 "
              f"{ann.meta['calibration_recall']:.3f} vs exact)")
    if args.plots is not None:
        from sessionrec.embeddings.plots import write_plots

        plots = write_plots(store, Path(args.plots) if args.plots else
                            out.with_name(out.stem + "-plots"), seed=args.seed, tsne=args.tsne)
        print("wrote " + ", ".join(str(p) for p in plots))
    return 0


def _embed_from_run(args: argparse.Namespace, out: Path) -> int:
    """A p2v run's vectors as a store, with the catalogue's unseen products (cold start)."""
    import polars as pl

    from sessionrec.embeddings.store import write_store
    from sessionrec.modeldir import find_vocab, model_directory
    from sessionrec.models.base import SessionRecommender
    from sessionrec.models.p2v_coldstart import store_of_model, store_with_catalog

    model_dir, run_dir = model_directory(args.from_run)
    vocab = find_vocab(model_dir, run_dir, args.data)
    model = SessionRecommender.load(model_dir, vocab=vocab.fingerprint)
    items = pl.read_parquet(vocab.path)
    if args.catalog:
        from sessionrec.embeddings.coldstart import read_catalog

        store, info = store_with_catalog(model, items, read_catalog(Path(args.catalog)),
                                         method=args.cold_start_method, source=str(run_dir))
        unknown = ", ".join(f"{f} {n}" for f, n in info["unknown"].items())
        print(f"cold start ({args.cold_start_method}): {info['added']:,} catalogue products "
              f"without views placed from their metadata; {info['no_usable_token']:,} without "
              f"any known token left out; values never seen in training (-> unknown token): "
              f"{unknown}")
    else:
        store = store_of_model(model, items, source=str(run_dir))
    write_store(out, store, overwrite=args.overwrite)
    print(f"wrote {out}: {len(store):,} products x {store.dim} dims from the p2v run "
          f"{args.from_run} (serve it with: sessionrec serve --model RUN_DIR --embeddings "
          f"{out})")
    if args.plots is not None:
        from sessionrec.embeddings.plots import write_plots

        plots = write_plots(store, Path(args.plots) if args.plots else
                            out.with_name(out.stem + "-plots"), seed=args.seed, tsne=args.tsne)
        print("wrote " + ", ".join(str(p) for p in plots))
    return 0


def cmd_similar(args: argparse.Namespace) -> int:
    from sessionrec.embeddings.ann import EXACT_BELOW, index_for_store
    from sessionrec.embeddings.similar import similar_products
    from sessionrec.embeddings.store import read_store

    store = read_store(Path(args.store))
    ann = None
    if not args.exact and (len(store) >= EXACT_BELOW or args.rebuild_index):
        ann = index_for_store(Path(args.store), store.vectors, store.product_ids,
                              rebuild=args.rebuild_index, target_recall=args.index_recall)
    table = similar_products(store, args.product, k=args.k, ann=ann)
    for query, part in table.group_by("query", maintain_order=True):
        about = ""
        if store.metadata is not None:
            row = store.metadata.row(int(store.index_of([query[0]])[0]))
            about = " [" + ", ".join(str(v) for v in row) + "]"
        print(f"products similar to {query[0]}{about} ({store.meta.get('method', '?')}, "
              f"cosine, {'ANN' if ann is not None else 'exact'}):")
        cols = [c for c in ("rank", "product_id", "cosine", "brand", "category", "price")
                if c in part.columns]
        for row in part.iter_rows(named=True):
            extra = "  ".join(str(row[c]) for c in cols[3:])
            cold = "  cold_start" if row.get("cold_start") else ""
            print(f"  {row['rank']:>3}  {row['product_id']!s:<20} {row['cosine']:.4f}  {extra}"
                  f"{cold}".rstrip())
    return 0


# -- parser ----------------------------------------------------------------------------------
def default_jobs() -> int:
    """Quickstart's processes: 2 where the machine has 2+ cores (GRU4Rec trains in one while
    the cheap baselines run in the other), else 1."""
    return 2 if (os.cpu_count() or 1) >= 2 else 1


def add_jobs(p: argparse.ArgumentParser, default: int | None, default_text: str) -> None:
    """``--jobs`` of a command that compares several models (see sessionrec.jobs)."""
    p.add_argument("--jobs", type=int, default=default, metavar="N",
                   help="processes fitting models at once: this one takes the models that "
                        "train for epochs, N - 1 workers (each with --threads torch threads "
                        f"and its own copy of the data) the others (default: {default_text})")


def add_threads(p: argparse.ArgumentParser) -> None:
    """``--threads`` of a command that trains or scores with torch (see sessionrec.torch_env)."""
    p.add_argument("--threads", type=int, default=None, metavar="N",
                   help="torch intra-op threads (default: $SESSIONREC_THREADS, else 1, which "
                        "is fastest on a busy machine; 0: torch's default, one per core)")


def add_index_recall(p: argparse.ArgumentParser) -> None:
    """``--index-recall``: the recall the ANN index's efSearch is calibrated to."""
    p.add_argument("--index-recall", type=float, default=0.95, metavar="R",
                   help="an ANN index (re)built here gets the smallest efSearch whose "
                        "recall@10 vs exact reaches R on stored and two-product-mean queries "
                        "(lower: faster queries)")


class HelpFormatter(argparse.HelpFormatter):
    """Plain help: docstring markup (````x````) shown as `x`, and each option's default."""

    def _format_text(self, text: str) -> str:
        return super()._format_text(text.replace("``", "`"))

    def _get_help_string(self, action: argparse.Action) -> str:
        text = (action.help or "").replace("``", "`")
        shown = action.default not in (None, False, [], argparse.SUPPRESS)
        if shown and action.option_strings and "%(default)" not in text and "default" not in text:
            text += " (default: %(default)s)"
        return text


class Parser(argparse.ArgumentParser):
    """An argument parser (and subcommand parsers) with :class:`HelpFormatter`."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)


def build_parser() -> argparse.ArgumentParser:
    from sessionrec import __version__

    parser = Parser(prog="sessionrec", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"sessionrec {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0,
                        help="more log output (-v info, -vv debug)")
    parser.add_argument("-q", "--quiet", action="store_true",
                        help="no progress bars or progress lines (results and errors still "
                             "print)")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("synth", help="generate a synthetic Galaxus-format raw log")
    p.add_argument("--events", type=int, required=True, help="number of events")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True, help="output directory (RAW_DIR)")
    p.add_argument("--users", type=int, default=None, help="number of users (default: scaled)")
    p.add_argument("--items", type=int, default=None, help="number of products (default: scaled)")
    p.add_argument("--events-per-shard", type=int, default=1_000_000,
                   help="events per simulated day; each day is one shard")
    p.add_argument("--format", choices=("parquet", "csv"), default="parquet")
    p.add_argument("--orders", action="store_true", help="also write orders.parquet "
                                                         "(purchases of viewed products)")
    p.add_argument("--overwrite", action="store_true")
    p.set_defaults(func=cmd_synth)

    p = sub.add_parser("prepare", help="raw logs -> cleaned, filtered, split, encoded data")
    p.add_argument("--source", required=True, help="dataset adapter (galaxus, yoochoose, ...)")
    p.add_argument("--input", default=None,
                   help="raw file or folder (default: the dataset's folder in ../shared/data)")
    p.add_argument("--out", required=True, help="output data directory")
    p.add_argument("--preset", default=None, help="subsample preset: MINI, MIDI or MAXI")
    p.add_argument("--config", default=None, help="TOML file with a PrepareConfig")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config value, e.g. filter.min_item_support=10")
    p.add_argument("--map", action="append", default=[], metavar="FIELD=COLUMN",
                   help="--source events: the log's column for a field, e.g. item_id=product")
    p.add_argument("--engine", choices=("polars", "spark"), default=None,
                   help="run the steps on Polars (default) or Apache Spark (the [spark] extra)")
    p.add_argument("--master", default=None,
                   help="--engine spark: Spark master URL (default local[*])")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    p.add_argument("--exposures", action="store_true",
                   help="write exposure data (shown items with click / not-click labels, for "
                        "candidate ranking) instead of sessions: --source trivago keeps its "
                        "impression lists (kuairand is exposure data without the flag)")
    p.set_defaults(func=cmd_prepare)

    p = sub.add_parser("stats", help="statistics table (and long-tail plots) of prepared data")
    p.add_argument("data_dir")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--plots", default=None, metavar="DIR",
                   help="where the long-tail PNG histograms go (default: DATA_DIR/plots)")
    p.add_argument("--no-plots", action="store_true", help="only print the table")
    p.set_defaults(func=cmd_stats)

    p = sub.add_parser("train", help="fit one model on prepared data and evaluate it")
    p.add_argument("--config", default=None, help="TOML RunConfig (configs/<dataset>/<model>.toml)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config value, e.g. model.params.k=50")
    p.add_argument("--data", default=None,
                   help="dataset folder or prepared directory (default: from the config)")
    p.add_argument("--out", required=True, help="run directory")
    p.add_argument("--overwrite", action="store_true")
    p.add_argument("--resume", action="store_true",
                   help="continue an interrupted run from RUN_DIR/checkpoints/last.pt")
    add_threads(p)
    p.add_argument("--nproc", type=int, default=1,
                   help="data-parallel training processes (torch.distributed; gloo on CPU, "
                        "nccl on CUDA) for the neural-core models, GRU4Rec and HGRU4Rec "
                        "(default: 1)")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"],
                   help="training device of the neural-core models (default: auto = CUDA "
                        "when present, else CPU)")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("tune", help="random search of hyper-parameters on the valid split")
    p.add_argument("--config", required=True, help="TOML RunConfig the trials start from")
    p.add_argument("--space", required=True, help="search space TOML (configs/search/*.toml)")
    p.add_argument("--trials", type=int, default=None, help="number of trials (default: space)")
    p.add_argument("--out", required=True, help="search directory (trials.jsonl, best.toml)")
    p.add_argument("--data", default=None,
                   help="dataset folder or prepared directory (default: from the config)")
    p.add_argument("--seed", type=int, default=None, help="search seed (default: space or 0)")
    p.add_argument("--metric", default="mrr@20", help="metric to maximise on valid")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a base config value, e.g. data.prepare.split.valid=true")
    p.add_argument("--overwrite", action="store_true", help="start again in a non-empty --out")
    p.add_argument("--resume", action="store_true",
                   help="continue an interrupted search, skipping finished trials")
    add_threads(p)
    p.set_defaults(func=cmd_tune)

    p = sub.add_parser("evaluate", help="fit and compare several models on prepared data")
    p.add_argument("--data", required=True, help="prepared data directory")
    p.add_argument("--models", nargs="+", required=True, help="registered model names")
    p.add_argument("--param", action="append", default=[], metavar="MODEL.KEY=VALUE",
                   help="a hyper-parameter of one model, e.g. vsknn.k=50")
    p.add_argument("--out", required=True, help="output directory (one run per model)")
    p.add_argument("--protocol", choices=("next-item", "last-item", "candidate-ranking"),
                   default="next-item",
                   help="candidate-ranking: click-probability models on exposure data")
    p.add_argument("--ties", choices=("pessimistic", "optimistic", "average"),
                   default="pessimistic")
    p.add_argument("--baseline", default=None, help="model the others are compared with")
    p.add_argument("--dataset", default=None, help="dataset name for the tables")
    add_threads(p)
    add_jobs(p, 1, "1")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("next-n", help="predict the next 1..n clicks of test prefixes by "
                       "free-running a saved recurrent run (next-n protocol)")
    p.add_argument("run", help="run directory of sessionrec train (with model/)")
    p.add_argument("--data", default=None, help="prepared data (default: the run's config)")
    p.add_argument("--horizon", type=int, default=5, help="clicks ahead (max horizon)")
    p.add_argument("--ks", type=int, nargs="+", default=[5, 10, 20])
    add_threads(p)
    p.set_defaults(func=cmd_next_n)

    p = sub.add_parser("quickstart", help="the whole flow on a generated sample, no data needed")
    p.add_argument("--out", default=str(QUICKSTART_DIR),
                   help="output folder (raw/, data/, runs/)")
    p.add_argument("--events", type=int, default=200_000, help="synthetic events to generate")
    p.add_argument("--seed", type=int, default=0, help="seed of the synthetic log")
    add_threads(p)
    add_jobs(p, None, "2 on a machine with 2+ cores, else 1")
    p.set_defaults(func=cmd_quickstart)

    p = sub.add_parser("serve", help="serve live recommendations over HTTP (REST API)")
    p.add_argument("--model", default=None,
                   help="run directory (or its model/ folder); not needed with --experiment")
    p.add_argument("--experiment", default=None, metavar="EXP.toml",
                   help="serve an A/B/n experiment's variants (or SESSIONREC_EXPERIMENT)")
    p.add_argument("--event-log", default=None, metavar="URL",
                   help="experiment event log: sqlite:///events.db (default: events.db beside "
                        "EXP.toml) or postgresql://user@host:port/db (or SESSIONREC_EVENT_LOG)")
    p.add_argument("--archive", default=None, metavar="URL",
                   help="archive every event before answering: sqlite:///archive.db or "
                        "postgresql://... (or SESSIONREC_ARCHIVE; default: off)")
    p.add_argument("--basket-model", default=None, metavar="RUN_DIR",
                   help="basket placement: an obt (orders) or cooc run (default: fallback)")
    p.add_argument("--vocab", default=None,
                   help="items.parquet or prepared data directory (default: found from the run)")
    p.add_argument("--fallback", default=None,
                   help="cooc run for fallbacks (default: RUN_DIR/../cooc, else popularity)")
    p.add_argument("--store", default=None,
                   help="session/user state store: memory (default) or redis://HOST:PORT/DB")
    p.add_argument("--workers", type=int, default=1, help="API worker processes (> 1: Redis)")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (0.0.0.0: every interface)")
    p.add_argument("--port", type=int, default=8000, help="TCP port to listen on")
    p.add_argument("--blocked", default=None, metavar="FILE",
                   help="ProductIds never to recommend, one per line")
    p.add_argument("--admin-token-file", default=None, metavar="FILE",
                   help="file holding the bearer token of /admin/* (or set "
                        "SESSIONREC_ADMIN_TOKEN); never the token itself on the command line")
    p.add_argument("--admin-token", default=None, help=argparse.SUPPRESS)  # refused: see ps
    p.add_argument("--session-ttl", type=float, default=None, metavar="SECONDS",
                   help="a session ends after this long without events (default 1800)")
    p.add_argument("--user-ttl", type=float, default=None, metavar="SECONDS",
                   help="user state kept this long after the last session (default 90 days)")
    p.add_argument("--no-ui", action="store_true",
                   help="do not serve the web console under /ui (or SESSIONREC_UI=0)")
    p.add_argument("--ui-private", action="store_true",
                   help="console pages need the admin token too (or SESSIONREC_UI_PRIVATE=1)")
    p.add_argument("--ui-compare", default=None, metavar="NAME=RUN_DIR,...",
                   help="more models shown beside the served one(s) in the console playground "
                        "(a run directory or often-bought-together / popular)")
    p.add_argument("--log-level", default="warning",
                   choices=("critical", "error", "warning", "info", "debug"),
                   help="the server's (uvicorn's) log level")
    p.add_argument("--embeddings", default=None, metavar="STORE",
                   help="p2v: serve the cold-start products of this embedding store (written "
                        "by `sessionrec embed --from-run RUN_DIR --catalog ...`)")
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("study", help="the four-variant study: OnlySession/WithUser x "
                                     "OneHot/Meta-Prod2Vec HGRU4Rec over several seeds")
    p.add_argument("--config", required=True, help="study TOML (configs/study/*.toml)")
    p.add_argument("--out", required=True, help="study directory (continued if it exists)")
    p.add_argument("--data", help="raw data path, or a prepared directory")
    p.add_argument("--seeds", type=int, nargs="+", help="override study.seeds")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config value, e.g. model.params.n_epochs=5")
    add_threads(p)
    p.set_defaults(func=cmd_study)

    p = sub.add_parser("embed", help="train Meta-Prod2Vec product embeddings (train split)")
    p.add_argument("--data", help="prepared data directory (with --from-run: the run's "
                                  "vocabulary, default found from the run)")
    p.add_argument("--from-run", metavar="RUN_DIR",
                   help="no training: write a p2v run's vectors (plus --catalog's products "
                        "without views, placed with the run's metadata token vectors) for "
                        "`serve --embeddings`")
    p.add_argument("--out", required=True, help="embedding store to write (.parquet)")
    p.add_argument("--dim", type=int, default=64)
    p.add_argument("--window", type=int, default=3, help="context: events 1..WINDOW apart")
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--negatives", type=int, default=5, help="negatives per positive pair")
    p.add_argument("--lambda-meta", type=float, default=1.0,
                   help="weight of the metadata terms; 0 trains plain prod2vec")
    p.add_argument("--price-classes", type=int, default=5,
                   help="price quantile buckets within a product type")
    p.add_argument("--lr", type=float, default=0.1, help="row-wise Adagrad step size")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    p.add_argument("--negatives-from", choices=("unigram", "category"), default="unigram",
                   help="item negatives: unigram^0.75 over all items, or over the context "
                        "item's own category")
    p.add_argument("--min-dwell", type=float, default=0.0, metavar="SECONDS",
                   help="drop clicks followed by a quick bounce (dwell below SECONDS)")
    p.add_argument("--catalog", help="product catalogue (Parquet/CSV: product_id, brand, "
                                     "category, price): products without views are placed "
                                     "from their metadata (cold_start)")
    p.add_argument("--cold-start-method", choices=("average", "learned"), default="average")
    p.add_argument("--index", action="store_true",
                   help=f"build the ANN index beside the store even below {20_000:,} products")
    add_index_recall(p)
    p.add_argument("--plots", nargs="?", const="", default=None, metavar="DIR",
                   help="write PCA pictures (by category and brand) and a neighbours picture "
                        "(default DIR: <out stem>-plots)")
    p.add_argument("--tsne", action="store_true",
                   help="with --plots: t-SNE maps beside the PCA (needs scikit-learn: "
                        "pip install 'sessionrec[plots]')")
    add_threads(p)
    p.set_defaults(func=cmd_embed)

    p = sub.add_parser("similar", help="most similar products by cosine of their embeddings")
    p.add_argument("--store", required=True, help="embedding store (sessionrec embed --out)")
    p.add_argument("--product", required=True, nargs="+", help="ProductId(s) to query")
    p.add_argument("-k", type=int, default=10, help="neighbours per product")
    p.add_argument("--exact", action="store_true", help="exact search even for a large store")
    p.add_argument("--rebuild-index", action="store_true",
                   help="(re)build the ANN index beside the store and use it")
    add_index_recall(p)
    p.set_defaults(func=cmd_similar)

    from sessionrec.experiments.commands import add_parser as add_experiment_parser

    add_experiment_parser(sub)
    from sessionrec.archive.commands import add_parser as add_archive_parser

    add_archive_parser(sub)
    from sessionrec.loop.commands import add_parser as add_loop_parser

    add_loop_parser(sub)
    return parser


# Loggers whose INFO records are progress (per-epoch lines, step summaries): shown unless -q.
PROGRESS_LOGGERS = ("sessionrec.progress", "sessionrec.training.trainer",
                    "sessionrec.embeddings.metaprod2vec")


class StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is at the time of each record (tests swap it)."""

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stderr
        super().emit(record)


def setup_logging(verbose: int, quiet: bool) -> None:
    """Warnings (-v: info, -vv: debug) as ``LEVEL name: message``; progress as timed lines.

    Progress is a bar on a terminal and a one-line record every few seconds otherwise
    (sessionrec.progress); -q silences both.
    """
    from sessionrec import progress

    level = {0: logging.WARNING, 1: logging.INFO}.get(verbose, logging.DEBUG)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    progress.configure(progress.auto_mode(quiet))
    handler = StderrHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", datefmt="%H:%M:%S"))
    for name in PROGRESS_LOGGERS:
        logger = logging.getLogger(name)
        logger.handlers[:] = [handler]
        logger.propagate = False
        logger.setLevel(logging.WARNING if quiet else min(level, logging.INFO))


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    setup_logging(args.verbose, args.quiet)
    try:
        if hasattr(args, "threads"):
            from sessionrec.torch_env import resolve_threads, use_threads

            args.threads = resolve_threads(args.threads)
            use_threads(args.threads)
        return int(args.func(args) or 0)
    except SessionRecError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
