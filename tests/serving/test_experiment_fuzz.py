"""Fuzz the experiment's endpoints (recommendations and feedback) with schemathesis: never a
5xx, and every answer matches the documented schema and status codes.

A purchase's rules across fields (at least one buyer id; one price per product) are not in the
JSON schema, so a schema-valid purchase may rightly get a 422: that one check is left out."""

from __future__ import annotations

import schemathesis
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from schemathesis.checks import positive_data_acceptance

from sessionrec.experiments.config import ExperimentConfig, VariantSpec
from sessionrec.experiments.eventlog import open_event_log
from sessionrec.serving.app import create_app
from sessionrec.serving.store import MemoryStore

from .helpers import make_bundle, settings

config = ExperimentConfig("fuzz", "salt", "user", None, None, 14.0, 0.2, "control", 30.0,
                          (VariantSpec("control", "cooc", 0.5), VariantSpec("b", "b", 0.5)))
app = create_app(settings(), store=MemoryStore(session_ttl_s=1800, user_ttl_s=86400),
                 experiment=config,
                 variants={"control": make_bundle(), "b": make_bundle(key=b"tinykey2")},
                 event_log=open_event_log("sqlite://:memory:"))
# The other endpoints are the same as without an experiment (fuzzed in test_fuzz.py).
schema = schemathesis.openapi.from_asgi("/openapi.json", app).include(
    path_regex=r"^/v1/(events|feedback/.*|sessions/\{session_id\}/recommendations|experiment)$")


@schema.parametrize()
@hypothesis_settings(max_examples=25, deadline=None, derandomize=True,
                     suppress_health_check=list(HealthCheck))
def test_experiment_api_never_fails_and_keeps_its_schema(case):
    response = case.call()
    assert response.status_code < 500, (
        f"{case.method} {case.formatted_path}: {response.status_code} {response.text[:300]}")
    case.validate_response(response, excluded_checks=[positive_data_acceptance])
