"""Benchmark: scored events per minute of the full-ranking evaluator.

A GRU-sized scorer (item embedding of 100 -> tanh -> linear layer to every item, the cost of
GRU4Rec's output layer; ``score_next`` overridden to score a whole batch with one matmul)
ranks ~40k items for every next-item target of synthetic test sessions. Three figures:

* end to end: ``evaluate(...)`` with that scorer (scoring + ranking + top-K + coverage);
* evaluator only: the same with a scorer that hands out precomputed score blocks, i.e. what
  the evaluator itself costs per prediction;
* scorer only: the scorer's matmuls alone.

Results go to docs/benchmarks.md (section "evaluate").

    python benchmarks/evaluate.py --threads 2
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import machine, timings, update_section
from sessionrec.data.sessions import Sessions
from sessionrec.evaluation import evaluate, target_events
from sessionrec.models.base import SessionRecommender


class ProjectionScorer(SessionRecommender):
    """Random, untrained stand-in for a GRU: scores = W tanh(E[last item]) + b."""

    name = "bench-projection"

    def __init__(self, dim: int = 100, seed: int = 0) -> None:
        super().__init__(dim=dim, seed=seed)

    def _fit(self, train: Sessions, valid: Sessions | None) -> None:
        g = torch.Generator().manual_seed(self.get_params()["seed"])
        dim = self.get_params()["dim"]
        self.embedding_ = torch.randn(self.n_items_, dim, generator=g)
        self.output_ = torch.randn(self.n_items_, dim, generator=g) / dim**0.5
        self.bias_ = torch.randn(self.n_items_, generator=g) * 0.1

    def _score(self, prefixes: list[np.ndarray], users: np.ndarray | None) -> torch.Tensor:
        last = torch.tensor([int(p[-1]) for p in prefixes])
        return torch.addmm(self.bias_, torch.tanh(self.embedding_[last]), self.output_.t())

    def score_next(
        self, sessions: Sessions, targets: np.ndarray, batch_size: int = 512
    ) -> Iterator[tuple[np.ndarray, torch.Tensor]]:
        # Benchmark data has no unknown items, so the previous event is the prefix's last item.
        self._check_fitted()
        previous = torch.from_numpy(sessions.items[targets - 1])
        for lo in range(0, len(targets), batch_size):
            h = torch.tanh(self.embedding_[previous[lo : lo + batch_size]])
            yield targets[lo : lo + batch_size], torch.addmm(self.bias_, h, self.output_.t())


class PrecomputedScorer(ProjectionScorer):
    """Hands out slices of one precomputed score block: measures the evaluator alone."""

    name = "bench-precomputed"

    def score_next(
        self, sessions: Sessions, targets: np.ndarray, batch_size: int = 512
    ) -> Iterator[tuple[np.ndarray, torch.Tensor]]:
        h = torch.tanh(self.embedding_[: min(batch_size, self.n_items_)])
        block = torch.addmm(self.bias_, h, self.output_.t())
        for lo in range(0, len(targets), batch_size):
            chunk = targets[lo : lo + batch_size]
            yield chunk, block[: len(chunk)]


def synthetic_sessions(
    n_sessions: int, n_items: int, mean_length: float, rng: np.random.Generator
) -> Sessions:
    """Sessions of Zipf-distributed items, lengths 1 + Poisson(mean_length - 1)."""
    lengths = 1 + rng.poisson(mean_length - 1, n_sessions)
    offsets = np.zeros(n_sessions + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    weights = 1.0 / np.arange(1, n_items + 1) ** 0.8
    items = rng.choice(n_items, size=int(offsets[-1]), p=weights / weights.sum())
    return Sessions(items.astype(np.int64), offsets, np.zeros(len(items), dtype=np.int64),
                    np.full(n_sessions, -1, dtype=np.int64), np.arange(n_sessions), n_items)


def timed(fn, repeats: int) -> float:
    """Best wall time of ``repeats`` runs (after one warm-up)."""
    return min(timings(fn, repeats))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--items", type=int, default=40_000)
    parser.add_argument("--dim", type=int, default=100)
    parser.add_argument("--test-sessions", type=int, default=10_000)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--ties", default="pessimistic")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-doc", action="store_true", help="do not update docs/benchmarks.md")
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    train = synthetic_sessions(50_000, args.items, 5.0, rng)
    test = synthetic_sessions(args.test_sessions, args.items, 5.0, rng)
    n_targets = len(target_events(test, "next-item")[0])
    model = ProjectionScorer(dim=args.dim).fit(train)
    bare = PrecomputedScorer(dim=args.dim).fit(train)

    def run(m: SessionRecommender) -> None:
        evaluate(m, train, test, ties=args.ties, batch_size=args.batch_size)

    def scorer_only() -> None:
        with torch.no_grad():
            for _ in model.score_next(test, target_events(test, "next-item")[0],
                                      args.batch_size):
                pass

    figures = {
        "end to end": timed(lambda: run(model), args.repeats),
        "evaluator only": timed(lambda: run(bare), args.repeats),
        "scorer only": timed(scorer_only, args.repeats),
    }
    per_min = {name: n_targets / s * 60 for name, s in figures.items()}
    result = evaluate(model, train, test, ties=args.ties, batch_size=args.batch_size)
    assert result.n_predictions == n_targets

    command = (f"python benchmarks/evaluate.py --threads {args.threads} --items {args.items} "
               f"--dim {args.dim} --test-sessions {args.test_sessions} "
               f"--batch-size {args.batch_size} --ties {args.ties}")
    lines = [
        "## evaluate: full-ranking evaluator throughput",
        "",
        f"Machine: {machine()}; torch {torch.__version__} with "
        f"{torch.get_num_threads()} intra-op threads. Command: `{command}`.",
        "",
        f"{n_targets:,} next-item targets ({args.test_sessions:,} synthetic sessions) ranked "
        f"against all {args.items:,} items, {args.ties} ties, K = 1, 5, 10, 20 (recall, MRR, "
        "NDCG, hit rate, coverage, popularity). Scorer: item embedding "
        f"{args.dim} -> tanh -> linear to every item (the size of a GRU4Rec output layer), "
        "one matmul per batch. Best of "
        f"{args.repeats} runs.",
        "",
        "| what is timed | seconds | µs per event | scored events / min |",
        "|---|---:|---:|---:|",
    ]
    for name, sec in figures.items():
        lines.append(f"| {name} | {sec:.2f} | {sec / n_targets * 1e6:.1f} | "
                     f"{per_min[name]:,.0f} |")
    lines += [
        "",
        f"The scorer's matmul (2 x {args.dim} x {args.items:,} FLOP per event) bounds the "
        "end-to-end figure; the evaluator's own cost per event is the 'evaluator only' row.",
    ]
    if not args.no_doc:
        update_section("evaluate", "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
