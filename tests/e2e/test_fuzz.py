"""Fuzzing the live API from its own /openapi.json (schemathesis): no 500s, no off-schema answers.

Every operation, authenticated with a real key, with inputs that fit the schema and inputs that
break it; each check failure names the operation and the request (schemathesis prints a curl
line to replay it). Bounded by `MAX_EXAMPLES` per operation and mode.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok
from schemathesis.generation.modes import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.fixtures.service import Merchant, Service

pytestmark = pytest.mark.e2e

MAX_EXAMPLES = 150
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


def _fuzz(operation: Any, mode: GenerationMode, base_url: str, headers: dict[str, str]) -> None:
    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    def run(case: Any) -> None:
        case.call_and_validate(base_url=base_url, headers=headers, checks=CHECKS, timeout=30)

    run()


@pytest.mark.timeout(300)  # about a minute here; the default 120 s is too tight on a busy CI
def test_no_input_gives_a_500_or_an_undocumented_answer(
    service: Service, merchant: Merchant
) -> None:
    schema = schemathesis.openapi.from_url(f"{service.api_url}/openapi.json")
    failures: dict[str, str] = {}
    ran = []
    for result in schema.get_all_operations():
        if not isinstance(result, Ok):
            failures[f"invalid operation in /openapi.json: {result.err()}"] = ""
            continue
        operation = result.ok()
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            started = time.monotonic()
            try:
                _fuzz(operation, mode, service.api_url, merchant.headers)
            except Unsatisfiable:
                # Nothing to break: no parameters, or only strings that take anything.
                assert mode is GenerationMode.NEGATIVE, operation.label
            except (Exception, BaseExceptionGroup) as exc:  # run all; report every failure
                failures[f"{operation.label} [{mode.value}]"] = str(exc)[:3000]
            ran.append(f"{operation.label} [{mode.value}] {time.monotonic() - started:.1f}s")
    print("\n".join(ran))
    assert len(ran) >= 2 * 5, ran
    assert failures == {}, "\n\n".join(f"{k}:\n{v}" for k, v in failures.items())
