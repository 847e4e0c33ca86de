"""GRU4Rec training speed: ours vs the official PyTorch implementation, side by side.

Both train the same parameter set on the same data in the same script, alternately (official
first in each pair), one CPU thread each, so that the ratio compares like with like on a
shared machine. The official code is *not* part of sessionrec: pass the folder of a checkout
of the authors' repository (hidasib/GRU4Rec_PyTorch_Official) with ``--official``; it is run
as its own ``run.py`` command line, untouched. It predates NumPy 2 (its weight initialisation
turns float64 under NumPy 2's promotion rules and fails) and pandas 3, so give it its own
interpreter with ``--official-python``, e.g. a venv made with ``--system-site-packages`` (same
torch) plus ``pip install numpy==1.26.4 pandas==2.2.3 joblib``.

Data: yoochoose-100k from ``../shared/data`` (``*_train_full.tsv.gz`` / ``*_test.tsv.gz``,
already in the official column layout), decompressed into a temporary folder for the official
code; ours reads the same files through ``sessionrec train --config``. Parameters: those of
``configs/yoochoose-100k/gru4rec-official-best.toml`` (the official ``rsc15_xe_shared_100_best``
set), with ``--epochs`` epochs.

Speed: the official code prints each epoch's time; its training seconds are their sum (data
loading and its sample-store set-up excluded). Ours: ``train.train_seconds`` of the run's
metrics.json (sampler set-up included, data loading excluded). The ratio is official seconds /
our seconds for the same epochs over the same events, so neither side's event-counting
convention matters. Accuracy (Recall@20 / MRR@20 on the test split; the official evaluator in
its ``conservative`` tie mode, ours with pessimistic ties, both full ranking) is reported to
show that both trained the same kind of model; seeds differ, so small differences are noise.

    python benchmarks/gru4rec_official.py --official PATH/GRU4Rec_PyTorch_Official \
        --official-python PATH/venv/bin/python --epochs 2
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _report import load_average, machine, update_section

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "yoochoose-100k"
CONFIG = "configs/yoochoose-100k/gru4rec-official-best.toml"
ONE_THREAD = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "SESSIONREC_THREADS": "1"}
EPOCH_LINE = re.compile(r"Epoch\d+ --> loss: [\d.naninf]+ \t\(([\d.]+)s\)")
RESULT_LINE = re.compile(r"Recall@20: ([\d.]+) MRR@20: ([\d.]+)")


def official_params(config: Path, epochs: int) -> str:
    """Our config's model parameters as the official ``-ps`` string (lists joined by /)."""
    params = tomllib.loads(config.read_text())["model"]["params"]
    params["n_epochs"] = epochs
    out = []
    for key, value in params.items():
        if isinstance(value, list):
            value = "/".join(str(v) for v in value)
        elif isinstance(value, bool):
            value = str(value)
        out.append(f"{key}={value}")
    return ",".join(out)


def run_official(python: str, official: Path, train: Path, test: Path, params: str) -> dict:
    env = {**os.environ, **ONE_THREAD}
    out = subprocess.run([python, str(official / "run.py"), str(train), "-ps", params,
                          "-d", "cpu", "-t", str(test), "-m", "20", "-e", "conservative"],
                         capture_output=True, text=True, env=env, check=False)
    if out.returncode:
        raise RuntimeError(f"the official run failed:\n{out.stdout[-2000:]}\n{out.stderr[-2000:]}")
    seconds = [float(s) for s in EPOCH_LINE.findall(out.stdout)]
    recall, mrr = (float(x) for x in RESULT_LINE.search(out.stdout).groups())
    return {"train_s": sum(seconds), "epochs": len(seconds), "recall": recall, "mrr": mrr}


def run_ours(epochs: int, out: Path) -> dict:
    env = {**os.environ, **ONE_THREAD}
    subprocess.run([sys.executable, "-m", "sessionrec.cli", "train", "--config", CONFIG,
                    "--out", str(out), "--overwrite", "--threads", "1",
                    "--set", f"model.params.n_epochs={epochs}",
                    "--set", "model.params.progress=false"],
                   check=True, env=env, cwd=ROOT, capture_output=True)
    m = json.loads((out / "metrics.json").read_text())
    return {"train_s": m["train"]["train_seconds"], "epochs": m["train"]["epochs"],
            "recall": m["metrics"]["recall@20"], "mrr": m["metrics"]["mrr@20"],
            "steps": m["train"]["steps"]}


def floor_seconds(steps: int, repeats: int = 200) -> float:
    """Seconds that the step's matrix products alone take for ``steps`` steps (one thread):
    the GRU layer's and the output layer's forward + backward on the config's shapes
    (:func:`gru4rec_scale.floor_ms`), what any implementation of these steps computes."""
    from gru4rec_scale import floor_ms

    p = tomllib.loads((ROOT / CONFIG).read_text())["model"]["params"]
    f = floor_ms(int(p["batch_size"]), int(p["layers"][-1]), int(p["n_sample"]), 1, repeats)
    return steps * (f["gru_cpu"] + f["output_cpu"]) / 1000


def decompress(src: Path, dst: Path) -> Path:
    with gzip.open(src, "rb") as fin, dst.open("wb") as fout:
        shutil.copyfileobj(fin, fout)
    return dst


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--official", type=Path, required=True,
                        help="folder of a checkout of the official GRU4Rec_PyTorch_Official")
    parser.add_argument("--official-python", default=sys.executable,
                        help="interpreter for the official code (NumPy < 2, pandas < 3)")
    parser.add_argument("--data", type=Path, default=DATA, help="the yoochoose-100k folder")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=2, help="official/ours pairs")
    parser.add_argument("--no-doc", action="store_true")
    args = parser.parse_args()
    if not (args.official / "run.py").is_file():
        sys.exit(f"{args.official}: no run.py (pass the official repository's folder)")
    params = official_params(ROOT / CONFIG, args.epochs)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        train = decompress(args.data / "yoochoose-clicks-100k_train_full.tsv.gz",
                           tmp / "train.tsv")
        test = decompress(args.data / "yoochoose-clicks-100k_test.tsv.gz", tmp / "test.tsv")
        for i in range(args.repeats):
            before = load_average()
            off = run_official(args.official_python, args.official, train, test, params)
            ours = run_ours(args.epochs, tmp / f"ours{i}")
            floor = floor_seconds(ours["steps"])
            rows.append({"official": off, "ours": ours, "floor": floor,
                         "load": f"{before} → {load_average()}"})
            print(f"pair {i}: official {off}, ours {ours}", flush=True)
    lines = [
        "## GRU4Rec: ours vs the official PyTorch code, side by side",
        "",
        f"Machine: {machine()}, CPU only, one thread for each (OMP/MKL/torch). Command: "
        f"`python benchmarks/gru4rec_official.py --official OFFICIAL_CHECKOUT "
        f"--official-python OFFICIAL_VENV/bin/python --epochs "
        f"{args.epochs} --repeats {args.repeats}`. Data: yoochoose-100k (train_full → test). "
        f"Parameters: `{CONFIG}` (the official `rsc15_xe_shared_100_best`: 100 units, batch "
        "32, 2,048 negatives, cross-entropy with log-Q), "
        f"{args.epochs} epochs. Each pair ran official first, then ours; training seconds "
        "exclude data loading (see the script's docstring). Recall/MRR@20: official "
        "evaluator in `conservative` tie mode vs ours with pessimistic ties (different "
        "seeds). Floor s: the CPU seconds of the same steps' matrix products alone (the GRU "
        "layer's and the output layer's forward + backward on the config's shapes, median of "
        "200, one thread, measured after each pair): no implementation of these steps trains "
        "faster, so official s / floor s bounds the speed ratio any implementation can reach "
        "on this machine.",
        "",
        "| pair | official train s | ours train s | speed ratio (official s / ours s) "
        "| floor s | reachable ratio (official s / floor s) "
        "| official R@20 / MRR@20 | ours R@20 / MRR@20 | load avg (before → after) |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for i, r in enumerate(rows):
        o, u = r["official"], r["ours"]
        lines.append(f"| {i} | {o['train_s']:.1f} | {u['train_s']:.1f} | "
                     f"{o['train_s'] / u['train_s']:.2f}× | {r['floor']:.1f} | "
                     f"{o['train_s'] / r['floor']:.2f}× | {o['recall']:.4f} / {o['mrr']:.4f} "
                     f"| {u['recall']:.4f} / {u['mrr']:.4f} | {r['load']} |")
    text = "\n".join(lines)
    print(text)
    if not args.no_doc:
        update_section("gru4rec-official", text)


if __name__ == "__main__":
    main()
