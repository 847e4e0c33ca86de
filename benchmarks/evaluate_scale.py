"""Benchmark: full-ranking evaluation at 43k items, the code before vs after sparse scores.

Data: ``diginetica-srgnn-dev`` (needs ``../shared/data``), prepared with
``sessionrec prepare --source diginetica-srgnn`` (837k training events, 42,988 items, 54,001
next-item cases). For every model and both code versions, one fresh Python process loads the
splits, fits the model, evaluates it (next-item, pessimistic ties, K = 1, 5, 10, 20) and, for
the kNN models, times single live requests (``recommend([prefix], 20)`` for 1,000 test
prefixes, one at a time). It reports evaluate seconds, HR@20 / MRR@20, peak RSS after fit and
after evaluate, and live p50 / p99.

"before" is the source tree of a git commit (``--before``, default: the last commit before the
sparse evaluator), extracted with ``git archive`` into a temporary folder and put first on the
child's ``PYTHONPATH``; "after" is this checkout. Every figure is a ratio from the same run; the
1-minute load average before each child is recorded beside it (the machine is shared).

    python benchmarks/evaluate_scale.py --threads 2
    python benchmarks/evaluate_scale.py --models pop,vsknn --skip-before-for stan
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tarfile
import tempfile
from io import BytesIO
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import machine, update_section

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT / ".." / "shared" / "data" / "diginetica-srgnn-dev"
BEFORE = "c79ee3f"  # main just before sparse scores: the dense evaluator
KNN = ("sknn", "vsknn", "stan")

# What each child runs: plain API of both versions (fit, evaluate, recommend, score_next).
CHILD = r'''
import json, os, resource, sys, time
import numpy as np, torch
from sessionrec.evaluation import evaluate
from sessionrec.models.base import SessionRecommender, get_model_class
from sessionrec.runs import load_splits

data, name, threads, live = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
torch.set_num_threads(threads)
torch.set_num_interop_threads(1)

class Projection(SessionRecommender):
    """A 100-d neural scorer: W tanh(E[last item]) + b, one matmul per batch."""
    name = "bench-projection-100d"
    def _fit(self, train, valid):
        g = torch.Generator().manual_seed(0)
        self.e_ = torch.randn(self.n_items_, 100, generator=g)
        self.w_ = torch.randn(self.n_items_, 100, generator=g) / 10
        self.b_ = torch.randn(self.n_items_, generator=g) * 0.1
    def _score(self, prefixes, users):
        last = torch.tensor([int(p[-1]) for p in prefixes])
        return torch.addmm(self.b_, torch.tanh(self.e_[last]), self.w_.t())
    def score_next(self, sessions, targets, batch_size=512):
        prev = torch.from_numpy(sessions.items[targets - 1])
        for lo in range(0, len(targets), batch_size):
            h = torch.tanh(self.e_[prev[lo:lo + batch_size]])
            yield targets[lo:lo + batch_size], torch.addmm(self.b_, h, self.w_.t())

def rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

splits = load_splits(data)
if name == "matmul-100d":  # the projection's matmuls alone: the ceiling for any 100-d scorer
    model = Projection(); model.fit(splits.train)
    targets = np.flatnonzero(splits.test.position_in_session() >= 1)
    t = time.perf_counter(); c = time.process_time()
    with torch.no_grad():
        for _ in model.score_next(splits.test, targets):
            pass
    print("RESULT " + json.dumps({"fit_s": 0.0, "eval_s": time.perf_counter() - t,
        "eval_cpu_s": time.process_time() - c, "n": len(targets), "hr20": float("nan"),
        "mrr20": float("nan"), "rss_fit_mb": rss_mb(), "rss_eval_mb": rss_mb()}))
    sys.exit(0)
model = Projection() if name == "projection-100d" else get_model_class(name)()
t = time.perf_counter(); model.fit(splits.train); fit_s = time.perf_counter() - t
rss_fit = rss_mb()
t = time.perf_counter(); c = time.process_time()
result = evaluate(model, splits.train, splits.test, ks=(1, 5, 10, 20))
eval_s = time.perf_counter() - t; eval_cpu_s = time.process_time() - c
out = {"fit_s": fit_s, "eval_s": eval_s, "eval_cpu_s": eval_cpu_s, "n": result.n_predictions,
       "hr20": result.metrics()["hitrate@20"], "mrr20": result.metrics()["mrr@20"],
       "rss_fit_mb": rss_fit, "rss_eval_mb": rss_mb()}
if live:
    test = splits.test
    rng = np.random.default_rng(0)
    targets = np.flatnonzero(test.position_in_session() >= 1)
    pick = rng.choice(targets, live, replace=False)
    starts = test.offsets[:-1][test.session_of_event()[pick]]
    prefixes = [test.items[s:t] for s, t in zip(starts, pick)]
    for p in prefixes[:20]:
        model.recommend([p], 20)  # warm-up
    times, cpu = [], []
    for p in prefixes:
        c = time.process_time(); t = time.perf_counter()
        model.recommend([p], 20)
        times.append(time.perf_counter() - t); cpu.append(time.process_time() - c)
    out["live_p50_ms"] = float(np.percentile(times, 50) * 1e3)
    out["live_p99_ms"] = float(np.percentile(times, 99) * 1e3)
    out["live_cpu_p50_ms"] = float(np.percentile(cpu, 50) * 1e3)
    out["live_cpu_p99_ms"] = float(np.percentile(cpu, 99) * 1e3)
print("RESULT " + json.dumps(out))
'''


def source_tree(commit: str, into: Path) -> Path:
    """``src/`` of ``commit`` extracted into ``into``; returns the folder to import from."""
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", "--format=tar", commit, "src"],
                             check=True, capture_output=True).stdout
    with tarfile.open(fileobj=BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    return into / "src"


def run_child(src: Path, data: Path, model: str, threads: int, live: int) -> dict:
    env = {**os.environ, "PYTHONPATH": str(src)}
    load = os.getloadavg()[0]
    proc = subprocess.run([sys.executable, "-c", CHILD, str(data), model, str(threads),
                           str(live)], env=env, capture_output=True, text=True, check=False)
    line = [x for x in proc.stdout.splitlines() if x.startswith("RESULT ")]
    if proc.returncode or not line:
        raise RuntimeError(f"{model} in {src} failed:\n{proc.stderr[-3000:]}")
    return {**json.loads(line[-1][len("RESULT "):]), "load": load}


def prepared(data: Path | None, tmp: Path) -> Path:
    if data is not None:
        return data
    out = tmp / "diginetica-srgnn"
    subprocess.run([sys.executable, "-m", "sessionrec.cli", "prepare", "--source",
                    "diginetica-srgnn", "--input", str(SHARED), "--out", str(out)],
                   check=True, capture_output=True)
    return out


def shown_args(argv: list[str]) -> list[str]:
    """The command line as documented: the prepared data folder as ``DATA`` (no machine path;
    it is ``sessionrec prepare --source diginetica-srgnn --out DATA``), labels quoted."""
    out = []
    for i, arg in enumerate(argv):
        if i and argv[i - 1] == "--data":
            out.append("DATA")
        elif " " in arg:
            out.append(f'"{arg}"')
        else:
            out.append(arg)
    return out


def fmt_ratio(before: float | None, after: float) -> str:
    return f"{before / after:.1f}×" if before else "—"


def table(rows: dict[str, dict[str, dict]]) -> str:
    lines = ["| model | evaluate s before | evaluate s after | speed-up | evaluate CPU s before "
             "/ after | CPU speed-up | load before / after "
             "| HR@20 before / after | MRR@20 before / after | peak RSS MB fit / evaluate "
             "(after) | peak RSS MB evaluate (before) | live p50 / p99 ms before | "
             "live p50 / p99 ms after |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for model, r in rows.items():
        b, a = r.get("before"), r["after"]

        def cpu(x: dict) -> str:
            return f"{x['eval_cpu_s']:.1f}" if "eval_cpu_s" in x else "—"

        def live(x: dict | None) -> str:
            if not x or "live_p99_ms" not in x:
                return "—"
            return (f"{x['live_p50_ms']:.2f} / {x['live_p99_ms']:.2f} (CPU "
                    f"{x['live_cpu_p50_ms']:.2f} / {x['live_cpu_p99_ms']:.2f})")

        lines.append(
            f"| {model} | {b['eval_s']:.1f} | {a['eval_s']:.1f} | "
            f"{fmt_ratio(b['eval_s'], a['eval_s'])} | {cpu(b)} / {cpu(a)} | "
            f"{fmt_ratio(b.get('eval_cpu_s'), a.get('eval_cpu_s', 0) or 1)} | "
            f"{b['load']:.1f} / {a['load']:.1f} | "
            f"{100 * b['hr20']:.2f} / {100 * a['hr20']:.2f} | "
            f"{100 * b['mrr20']:.2f} / {100 * a['mrr20']:.2f} | "
            f"{a['rss_fit_mb']:.0f} / {a['rss_eval_mb']:.0f} | {b['rss_eval_mb']:.0f} | "
            f"{live(b)} | {live(a)} |" if b else
            f"| {model} | — | {a['eval_s']:.1f} | — | — / {cpu(a)} | — | — / {a['load']:.1f} | "
            f"— / {100 * a['hr20']:.2f} | — / {100 * a['mrr20']:.2f} | "
            f"{a['rss_fit_mb']:.0f} / {a['rss_eval_mb']:.0f} | — | — | {live(a)} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, help="prepared diginetica-srgnn folder")
    parser.add_argument("--models", default="pop,vsknn,sknn,stan,projection-100d")
    parser.add_argument("--skip-before-for", default="",
                        help="models timed only with the new code (comma-separated)")
    parser.add_argument("--before", default=BEFORE, help="git commit of the 'before' code")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--live", type=int, default=1000, help="live requests per kNN model")
    parser.add_argument("--before-label", default="the dense evaluator",
                        help="what the 'before' code is, for the doc")
    parser.add_argument("--section", default="evaluate-scale",
                        help="docs/benchmarks.md section to write (a subset run: its own)")
    parser.add_argument("--no-doc", action="store_true")
    args = parser.parse_args()
    skip = set(filter(None, args.skip_before_for.split(",")))
    rows: dict[str, dict[str, dict]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        data = prepared(args.data, Path(tmp))
        before_src = source_tree(args.before, Path(tmp) / "before")
        for model in args.models.split(","):
            live = args.live if model in KNN else 0
            rows[model] = {}
            if model not in skip:
                rows[model]["before"] = run_child(before_src, data, model, args.threads, live)
                print(model, "before", rows[model]["before"], flush=True)
            rows[model]["after"] = run_child(ROOT / "src", data, model, args.threads, live)
            print(model, "after", rows[model]["after"], flush=True)
    body = "\n".join([
        "## evaluate at scale: diginetica-srgnn-dev, dense vs sparse scores"
        if args.section == "evaluate-scale" else
        f"## evaluate at scale: diginetica-srgnn-dev, {args.models} ({args.section})",
        "",
        f"Machine: {machine()}; 2 cores, CPU only, torch {args.threads} intra-op threads; "
        "**shared with other sessions** (load = 1-minute load average before each run; "
        "compare the ratios, not the seconds). Command: `python benchmarks/evaluate_scale.py "
        f"{' '.join(shown_args(sys.argv[1:]))}`. 'before' = the code at `{args.before}` "
        f"({args.before_label}), 'after' = this commit; one process per cell.",
        "",
        "54,001 next-item cases ranked against all 42,988 items, pessimistic ties, K = 1, 5, "
        "10, 20. evaluate s = `evaluate()` wall time (scoring included, fit excluded). Peak "
        "RSS = the process's maximum resident set (data loading included) after fit and after "
        "evaluate. Live = `recommend([prefix], 20)` one request at a time for "
        f"{args.live:,} random test prefixes, wall time (CPU time of the process in "
        "brackets: what the request cost "
        "without waiting for a core on the shared machine). projection-100d: a random 100-d "
        "neural scorer (W tanh(E[last]) + b, "
        "one matmul per batch), for the dense path. matmul-100d: the same scorer's matmuls "
        "alone, nothing ranked (the ceiling of any 100-d scorer's scored events/min here).",
        "",
        table(rows),
        "",
        "scored events / min (after): " + ", ".join(
            f"{m} {60 * r['after']['n'] / r['after']['eval_s']:,.0f}" for m, r in rows.items()),
    ])
    print(body)
    if not args.no_doc:
        update_section(args.section, body)


if __name__ == "__main__":
    main()
