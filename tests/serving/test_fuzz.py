"""Fuzz every operation of the OpenAPI spec with schemathesis: never a 5xx, and every answer
matches the documented schema and status codes."""

from __future__ import annotations

import schemathesis
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings

from sessionrec.serving.app import create_app
from sessionrec.serving.store import MemoryStore

from .helpers import make_bundle, settings

app = create_app(settings(admin_token="secret"), bundle=make_bundle(),
                 store=MemoryStore(session_ttl_s=1800, user_ttl_s=86400))
schema = schemathesis.openapi.from_asgi("/openapi.json", app)


@schema.parametrize()
@hypothesis_settings(max_examples=25, deadline=None, derandomize=True,
                     suppress_health_check=list(HealthCheck))
def test_api_never_fails_and_keeps_its_schema(case):
    response = case.call()
    assert response.status_code < 500, (
        f"{case.method} {case.formatted_path}: {response.status_code} {response.text[:300]}")
    case.validate_response(response)
