"""The running service talks to a secured broker, each process as its own principal.

The whole e2e suite passing proves the processor and the API can do their jobs under the ACLs
(tests/integration/test_kafka_security.py shows what they cannot do); these check that each
process really is who it should be, and that no password leaks where logs are read.
"""

from __future__ import annotations

from pathlib import Path

import aiohttp
import pytest

from tests.fixtures.service import Merchant, Service, payment_body

pytestmark = pytest.mark.e2e


def environ_of(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes()
    pairs = (item.split(b"=", 1) for item in raw.split(b"\0") if b"=" in item)
    return {k.decode(): v.decode(errors="replace") for k, v in pairs}


def test_the_processor_and_the_api_each_log_in_as_their_own_principal(service: Service) -> None:
    if not service.owns_processes or not service.stack.kafka_secured:
        pytest.skip("needs the processes of this session on a secured broker")
    environ = {}
    for name in ("processor", "api", "banksim", "dispatcher"):
        proc = service.processes[name].proc
        assert proc is not None
        environ[name] = environ_of(proc.pid)
    for name in ("processor", "api"):
        assert environ[name]["KAFKA_SECURITY_PROTOCOL"] != "PLAINTEXT"
        assert environ[name]["KAFKA_SASL_USERNAME"] == name
        assert environ[name]["KAFKA_SASL_PASSWORD"] == service.stack.kafka_users[name]
    for name in ("banksim", "dispatcher"):  # they use no Kafka
        assert "KAFKA_SASL_PASSWORD" not in environ[name]
    assert "CARD_PRIVATE_KEYS_DIR" not in environ["dispatcher"]


async def test_no_kafka_password_appears_in_any_log(
    service: Service, merchant: Merchant, http: aiohttp.ClientSession
) -> None:
    if not service.stack.kafka_users:
        pytest.skip("needs the Kafka users of the stack")
    body = payment_body(merchant.merchant_id)
    async with http.post("/api/v1/payments/process", json=body, headers=merchant.headers) as resp:
        assert resp.status == 200
    # The service's logs, and the stack's own (kafka.log, the bootstrap task's, ...).
    stack_logs = sorted((service.stack.state_dir / "logs").glob("*.log"))
    logs = service.logs() + b"".join(path.read_bytes() for path in stack_logs)
    assert logs
    for user, password in service.stack.kafka_users.items():
        assert password.encode() not in logs, f"the password of {user} is in a log"
