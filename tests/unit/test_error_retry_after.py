"""Every 503 tells the client when to retry (Retry-After), as /openapi.json documents."""

from __future__ import annotations

import pytest

from payment_service.core.errors import NotAccepted, Overloaded, PaymentServiceError
from payment_service.http.errors import OUTAGE_RETRY_AFTER_SECONDS, error_response

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("error", "retry_after"),
    [
        (NotAccepted("Kafka did not acknowledge in time"), str(OUTAGE_RETRY_AFTER_SECONDS)),
        (Overloaded("too many requests in flight", retry_after_seconds=3), "3"),
    ],
)
def test_a_503_says_when_to_retry(error: PaymentServiceError, retry_after: str) -> None:
    response = error_response(error, "corr-1")
    assert response.status == 503
    assert response.headers["Retry-After"] == retry_after
