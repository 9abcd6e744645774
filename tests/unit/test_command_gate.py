"""The processor's first step: who signed a command, and may they send it (no broker needed)."""

from __future__ import annotations

import datetime as dt

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from payment_service.core.producers import ProducerRecord, Refusal, actor_of
from payment_service.kafka.signing import Signer, public_text
from payment_service.streams.authorize import CommandGate, Verified

pytestmark = pytest.mark.unit

TEAM = Ed25519PrivateKey.generate()
API = Ed25519PrivateKey.generate()


class Directory:
    def __init__(self, *records: ProducerRecord) -> None:
        self.records = {r.name: r for r in records}
        self.reads = 0

    async def producer(self, name: str) -> ProducerRecord | None:
        self.reads += 1
        return self.records.get(name)


def _team(**changes: object) -> ProducerRecord:
    values: dict[str, object] = {
        "name": "team-a",
        "merchants": frozenset({"m_1"}),
        "commands": frozenset({"payment"}),
        "public_key": public_text(TEAM.public_key()),
        **changes,
    }
    return ProducerRecord(**values)  # type: ignore[arg-type]


def _gate(directory: Directory, ttl: float = 60.0) -> CommandGate:
    return CommandGate(directory, API.public_key(), ttl_seconds=ttl)


async def _check(gate: CommandGate, headers: dict[str, str]) -> Verified | Refusal:
    return await gate.check(b"txn_1", b"value", headers)


async def test_a_registered_producers_signed_command_is_verified() -> None:
    gate = _gate(Directory(_team()))
    verified = await _check(gate, Signer("team-a", TEAM).command_headers(b"txn_1", b"value"))
    assert isinstance(verified, Verified)
    assert verified.producer.name == "team-a"
    assert gate.allowed(verified, "payment", "m_1") is None


async def test_the_api_is_verified_with_its_own_key_and_may_act_for_anyone() -> None:
    gate = _gate(Directory())
    verified = await _check(gate, Signer("api", API).command_headers(b"txn_1", b"value"))
    assert isinstance(verified, Verified)
    assert gate.allowed(verified, "refund", "any_merchant") is None


@pytest.mark.parametrize(
    ("headers", "code"),
    [
        ({}, "signature_missing"),
        ({"producer-id": "team-a", "signed-at": "1"}, "signature_missing"),
        ({"producer-id": "team-a", "signed-at": "1", "signature": "%%"}, "signature_invalid"),
        ({"producer-id": "team-a", "signed-at": "x", "signature": "A" * 88}, "signature_invalid"),
    ],
)
async def test_missing_or_malformed_headers_are_refused(headers: dict[str, str], code: str) -> None:
    refusal = await _check(_gate(Directory(_team())), headers)
    assert isinstance(refusal, Refusal)
    assert refusal.code == code
    assert refusal.answer_to is None  # nobody verified to answer


async def test_an_unknown_producer_a_bad_signature_and_a_revoked_producer_are_refused() -> None:
    stranger = Signer("nobody", TEAM).command_headers(b"txn_1", b"value")
    refusal = await _check(_gate(Directory(_team())), stranger)
    assert isinstance(refusal, Refusal)
    assert refusal.code == "producer_unknown"
    forged = Signer("team-a", Ed25519PrivateKey.generate()).command_headers(b"txn_1", b"value")
    refusal = await _check(_gate(Directory(_team())), forged)
    assert isinstance(refusal, Refusal)
    # Not answered on team-a's topic: whoever sent it is not team-a.
    assert (refusal.code, refusal.answer_to) == ("signature_invalid", None)
    as_api = Signer("api", TEAM).command_headers(b"txn_1", b"value")
    refusal = await _check(_gate(Directory(_team())), as_api)
    assert isinstance(refusal, Refusal)
    assert refusal.code == "signature_invalid"
    revoked = _team(revoked_at=dt.datetime.now(dt.UTC))
    good = Signer("team-a", TEAM).command_headers(b"txn_1", b"value")
    refusal = await _check(_gate(Directory(revoked)), good)
    assert isinstance(refusal, Refusal)
    assert (refusal.code, refusal.answer_to) == ("producer_revoked", "team-a")


async def test_a_merchant_or_command_type_not_granted_is_refused() -> None:
    gate = _gate(Directory(_team()))
    verified = await _check(gate, Signer("team-a", TEAM).command_headers(b"txn_1", b"value"))
    assert isinstance(verified, Verified)
    for kind, merchant in (("payment", "m_other"), ("refund", "m_1")):
        refusal = gate.allowed(verified, kind, merchant)  # type: ignore[arg-type]
        assert refusal is not None
        assert (refusal.code, refusal.answer_to) == ("producer_not_authorized", "team-a")


async def test_the_registry_is_read_again_after_its_ttl_so_revocation_takes_effect() -> None:
    directory = Directory(_team())
    headers = Signer("team-a", TEAM).command_headers(b"txn_1", b"value")
    cached = _gate(directory, ttl=60.0)
    assert isinstance(await _check(cached, headers), Verified)
    directory.records["team-a"] = _team(revoked_at=dt.datetime.now(dt.UTC))
    assert isinstance(await _check(cached, headers), Verified)  # within the TTL
    assert directory.reads == 1
    fresh = _gate(directory, ttl=1e-9)
    assert isinstance(await _check(fresh, headers), Verified | Refusal)
    refusal = await _check(fresh, headers)
    assert isinstance(refusal, Refusal)
    assert refusal.code == "producer_revoked"


def test_the_actor_names_the_api_key_or_the_producer() -> None:
    assert actor_of("api", "api:abc123") == "api:abc123"
    assert actor_of("api", None) == "api"
    assert actor_of("team-a", "api:abc123") == "producer:team-a"
