"""The chaos suite's processor talks to the bank with production's bank settings.

The test session shortens the bank client's timeouts (read 2 s, total 3 s, not-sent budget 2 s:
`tests/fixtures/service.py`) so that the e2e tests' outages end quickly. A fault suite run that
way measures a configuration nobody deploys: a 3 s bank exceeds the 2 s read timeout, and a
bank simulator down for 3 s outlasts the 2 s budget. So, for each chaos test, the session's
processor is restarted with every `BankSettings` field (but the URL) at its default, and every
restart within the scenario (`ServiceProcess.start`) keeps them; the session's settings come back
after it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from payment_service.config.settings import BankSettings
from tests.fixtures.service import Service

PREFIX = "BANKING_API_"


def production_bank_env() -> dict[str, str]:
    """`BANKING_API_*` for every bank setting but the URL, at the code's defaults."""
    return {
        f"{PREFIX}{name.upper()}": str(field.default)
        for name, field in BankSettings.model_fields.items()
        if name != "url"
    }


@pytest.fixture(autouse=True)
async def production_bank_settings(service: Service) -> AsyncIterator[dict[str, str]]:
    processor = service.processes.get("processor")
    if processor is None:
        pytest.fail("the chaos suite needs the test session's own stack (make chaos / make test)")
    session_env = processor.env
    production = production_bank_env()
    processor.stop()
    processor.env = {**session_env, **production}
    processor.start()
    try:
        await service.wait_healthy()
        yield production
    finally:
        processor.stop()
        processor.env = session_env
        processor.start()
        await service.wait_healthy()
