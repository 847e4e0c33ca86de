"""Leak-free full-ranking evaluation: metrics, the evaluator, significance and reports."""

from sessionrec.evaluation.evaluator import PROTOCOLS, EvalResult, evaluate, target_events
from sessionrec.evaluation.metrics import (
    TIE_MODES,
    metric_values,
    mrr_at_k,
    ndcg_at_k,
    ranks_from_scores,
    recall_at_k,
    top_k,
)
from sessionrec.evaluation.report import markdown_table, read_results, write_results
from sessionrec.evaluation.significance import (
    BootstrapCI,
    bootstrap_ci,
    compare_results,
    paired_bootstrap,
)

__all__ = [
    "PROTOCOLS",
    "TIE_MODES",
    "BootstrapCI",
    "EvalResult",
    "bootstrap_ci",
    "compare_results",
    "evaluate",
    "markdown_table",
    "metric_values",
    "mrr_at_k",
    "ndcg_at_k",
    "paired_bootstrap",
    "ranks_from_scores",
    "read_results",
    "recall_at_k",
    "target_events",
    "top_k",
    "write_results",
]
