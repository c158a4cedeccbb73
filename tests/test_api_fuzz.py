"""Property-based run of the whole API against its own OpenAPI spec (schemathesis): no server errors.

The app runs under uvicorn on a real port with a real database and S3 store;
schemathesis reads ``/openapi.json`` from it and sends generated requests, valid
and invalid, to every operation as an admin (the role that reaches every
route), and as an operator for the routes an operator uses. A 5xx answer, or a
response that does not match its declared schema, fails the operation's test.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from cctv.config import Settings
from cctv.objectstore import ensure_evidence_bucket, make_client
from tests.api_support import ADMIN, OPERATOR
from tests.webapp_support import ServedApp, served_app

pytestmark = pytest.mark.service

# The live feed never ends by design; tests/test_alert_feed.py reads it with a real client.
STREAMING = "/api/v1/alerts/stream"
EXAMPLES = 12


@pytest.fixture(scope="module")
def fuzzed_app(tmp_path_factory: pytest.TempPathFactory, stack: Any) -> Iterator[ServedApp]:
    tmp = tmp_path_factory.mktemp("fuzz")
    base = stack.settings_for(Settings(data_dir=tmp), f"fz{uuid.uuid4().hex[:6]}")
    ensure_evidence_bucket(make_client(base.s3), base.s3)  # as the evidence worker does at start-up
    with served_app(base, f"sqlite:///{tmp / 'fuzz.db'}") as served:
        yield served


@pytest.fixture(scope="module")
def api_schema(fuzzed_app: ServedApp) -> schemathesis.BaseSchema:
    schema = schemathesis.openapi.from_url(f"{fuzzed_app.base_url}/openapi.json")
    return schema.exclude(path=STREAMING)


def fuzz(app: ServedApp, schema: schemathesis.BaseSchema, headers: dict[str, str], checks: list[Any]) -> int:
    """Every operation of ``schema`` with generated requests; fails listing each operation that broke."""
    failures: list[str] = []
    operations = [result.ok() for result in schema.get_all_operations()]
    for operation in operations:

        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,  # the same requests every run: a failure reproduces
            database=None,
        )
        @given(case=operation.as_strategy())
        def run(case: schemathesis.Case) -> None:
            case.call_and_validate(base_url=app.base_url, headers=headers, checks=checks)

        try:
            run()
        except (Exception, BaseExceptionGroup) as exc:  # one run reports every broken operation
            failures.append(f"{operation.label}: {str(exc)[:1500]}")
    assert not failures, f"{len(failures)} operation(s) failed:\n\n" + "\n\n".join(failures)
    return len(operations)


def test_no_operation_answers_a_server_error_or_breaks_its_schema(
    fuzzed_app: ServedApp, api_schema: schemathesis.BaseSchema
) -> None:
    checks = [
        not_a_server_error,
        status_code_conformance,
        content_type_conformance,
        response_schema_conformance,
    ]
    assert fuzz(fuzzed_app, api_schema, ADMIN, checks) >= 60


def test_an_operator_gets_no_server_error_either(
    fuzzed_app: ServedApp, api_schema: schemathesis.BaseSchema
) -> None:
    """The operator's routes, fuzzed with the operator's key: the 403s of other routes are not errors."""
    subset = api_schema.include(path_regex="^/api/v1/(incidents|cameras|alerts)")
    assert fuzz(fuzzed_app, subset, OPERATOR, [not_a_server_error]) >= 5
