"""Prometheus metrics of the serving app (``GET /metrics``).

Each app owns its registry (tests build many apps in one process). With several API workers
(``sessionrec serve --workers N``) ``PROMETHEUS_MULTIPROC_DIR`` is set before the workers
start, every worker writes its samples there and ``/metrics`` aggregates all of them.
"""

from __future__ import annotations

import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)

LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03, 0.05,
                   0.1, 0.25, 0.5, 1.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128)


class Metrics:
    """Request latency and counts, fallbacks, store errors, state conflicts and resets."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.latency = Histogram("sessionrec_request_seconds", "Request latency in the app",
                                 ["endpoint"], buckets=LATENCY_BUCKETS, registry=r)
        self.requests = Counter("sessionrec_requests", "Requests answered",
                                ["endpoint", "status"], registry=r)
        self.fallbacks = Counter("sessionrec_fallbacks", "Answers from the fallback recommender",
                                 ["reason"], registry=r)
        self.store_errors = Counter("sessionrec_store_errors", "State store operations that failed",
                                    ["op"], registry=r)
        self.conflicts = Counter("sessionrec_state_conflicts",
                                 "Compare-and-set writes retried (a concurrent update won)",
                                 registry=r)
        self.resets = Counter("sessionrec_state_resets",
                              "Stored states dropped (written by another model, or unreadable)",
                              ["kind"], registry=r)
        self.sessions_ended = Counter("sessionrec_sessions_ended", "Sessions ended",
                                      ["how"], registry=r)
        self.batch_size = Histogram("sessionrec_step_batch_size", "Model steps per batch",
                                    buckets=BATCH_BUCKETS, registry=r)
        self.reloads = Counter("sessionrec_reloads", "Model reloads", ["result"], registry=r)
        self._experiment: ExperimentMetrics | None = None

    def experiment(self) -> ExperimentMetrics:
        """The experiment's counters, registered on first use (once per app, however often
        the app starts)."""
        if self._experiment is None:
            self._experiment = ExperimentMetrics(self.registry)
        return self._experiment

    def render(self) -> tuple[bytes, str]:
        """The exposition text (all workers' samples in multi-process mode) and its type."""
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            from prometheus_client import multiprocess

            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
            return generate_latest(registry), CONTENT_TYPE_LATEST
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


class ExperimentMetrics:
    """Counters of an online experiment, in the app's registry (only with ``--experiment``)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        r = registry
        self.assignments = Counter("sessionrec_experiment_assignments",
                                   "Units assigned (first assignment row logged)", ["variant"],
                                   registry=r)
        self.recommendations = Counter("sessionrec_experiment_recommendations",
                                       "Answers of the experiment per assigned variant",
                                       ["variant"], registry=r)
        self.variant_fallbacks = Counter("sessionrec_experiment_variant_fallbacks",
                                         "Answers where the variant's model failed and control "
                                         "answered", ["variant"], registry=r)
        self.feedback = Counter("sessionrec_feedback", "Feedback requests accepted",
                                ["kind", "result"], registry=r)
        self.orphans = Counter("sessionrec_feedback_orphans",
                               "Feedback on an unknown or expired recommendation_id",
                               ["kind", "why"], registry=r)
        self.log_errors = Counter("sessionrec_event_log_errors",
                                  "Event log writes or reads that failed or timed out", ["op"],
                                  registry=r)
