"""Professor forcing vs the same model without the adversarial term (issue 19).

    python scripts/pf_study.py --config configs/pf/yoochoose-100k-gru4rec.toml \
        --out runs/pf/yoochoose-100k --seeds 0 1 2 [--variants base pf] [--epochs N] [--jobs 2]

For every seed and variant it runs ``sessionrec train`` (the config plus the variant's
``--set`` overrides, one torch thread; run the script itself under ``nice -n 10``) into
``OUT/<variant>-s<seed>``, then the
next-n protocol (:mod:`sessionrec.evaluation.next_n`) on the saved model and the test split,
written beside the run's metrics as ``next_n.json`` and ``next_n_ranks.parquet``. The data are
prepared once into ``OUT/data``. ``scripts/pf_doc.py`` turns the run directories into the
docs/results.md section. Variants:

* ``onestep``: the config with ``bptt = 1`` and no adversarial term (the default training);
* ``base``: the config's ``bptt`` window, ``pf_weight = 0`` (teacher forcing only);
* ``pf``: the same window with the config's professor-forcing parameters;
* ``pf_top1``: ``pf`` with the top-1 feed and 3 discriminator updates per window (ablation).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


VARIANTS = {"onestep": ["model.params.bptt=1", "model.params.pf_weight=0.0"],
            "base": ["model.params.pf_weight=0.0"], "pf": [],
            # The ablation: free-running inputs that differ more from the true clicks (the
            # model's own top-1 item instead of the score-weighted embedding) and a
            # discriminator trained harder, to see whether a stronger adversarial signal helps.
            "pf_top1": ["model.params.pf_feed=\"top1\"", "model.params.pf_disc_steps=3"]}


def train(config: str, data: Path, run: Path, seed: int, sets: list[str],
          epochs: int | None) -> None:
    if (run / "metrics.json").is_file():
        return
    cmd = [sys.executable, "-m", "sessionrec.cli", "train", "--config",
           config, "--data", str(data), "--out", str(run), "--overwrite",
           "--set", f"seed={seed}", "--set", f"model.params.seed={seed}",
           "--set", "model.params.progress=false", "--set", "model.params.threads=1"]
    if epochs:
        cmd += ["--set", f"model.params.n_epochs={epochs}"]
    for s in sets:
        cmd += ["--set", s]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "SESSIONREC_THREADS": "1"}
    t0 = time.time()
    subprocess.run(cmd, check=True, env=env, cwd=ROOT)
    load = " / ".join(f"{x:.1f}" for x in os.getloadavg())
    (run / "COMMAND.txt").write_text(
        "sessionrec " + " ".join(cmd[3:]) + f"\nwall {time.time() - t0:.0f} s, load average "
        f"after {load}, 2 cores\n", encoding="utf-8")


def next_n(run: Path, data: Path, horizon: int) -> None:
    from sessionrec.evaluation.next_n import NEXT_N_JSON, next_n_run

    if not (run / NEXT_N_JSON).is_file():
        next_n_run(run, data, horizon, (5, 10, 20))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--variants", nargs="+", default=["base", "pf"])
    parser.add_argument("--epochs", type=int, default=None, help="override n_epochs")
    parser.add_argument("--horizon", type=int, default=5)
    parser.add_argument("--jobs", type=int, default=1, help="trainings run at once")
    args = parser.parse_args()
    from sessionrec.cli import prepared_data
    from sessionrec.config import load_config
    from sessionrec.runs import RunConfig

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    sets = VARIANTS
    unknown = sorted(set(args.variants) - set(sets))
    if unknown:
        raise SystemExit(f"unknown variants {unknown}; known: {sorted(sets)}")
    data = out / "data"
    if not (data / "manifest.json").is_file():
        cfg = load_config(RunConfig, args.config, [])
        data = prepared_data(cfg, out, None)

    def one(job: tuple[str, int]) -> str:
        variant, seed = job
        run = out / f"{variant}-s{seed}"
        train(args.config, data, run, seed, sets[variant], args.epochs)
        next_n(run, data, args.horizon)
        return str(run)

    jobs = [(v, s) for s in args.seeds for v in args.variants]
    with ThreadPoolExecutor(max(1, args.jobs)) as pool:
        for done in pool.map(one, jobs):
            print("done", done, flush=True)


if __name__ == "__main__":
    main()
