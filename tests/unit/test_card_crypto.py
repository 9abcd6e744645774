"""Card crypto: HPKE seal/open with bound info, wrong info/key, tampering, legacy v1, rewrap."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import uuid

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from payment_service.cards import envelope
from payment_service.cards.crypto import CardOpener, CardSealer, LegacyKeyRing
from payment_service.cards.envelope import ALG, Sealed
from payment_service.cards.fingerprint import FingerprintKey
from payment_service.cards.keys import SUITE, CardKeyPair, StaticKeyProvider
from payment_service.cards.public_key import StaticPublicKey
from payment_service.core.errors import (
    CardCryptoError,
    DecryptionError,
    EnvelopeMismatch,
    KeyConfigError,
    MalformedEnvelope,
    UnknownKeyId,
)
from payment_service.core.masking import CardNumber, SecurityCode

pytestmark = pytest.mark.unit

PAN = "4242424242424242"
LEGACY_KEY = os.urandom(32)
LEGACY_SPEC = "old1:" + base64.b64encode(LEGACY_KEY).decode()


@pytest.fixture
def pair() -> CardKeyPair:
    return CardKeyPair.generate("ck_test_1")


@pytest.fixture
def sealer(pair: CardKeyPair) -> CardSealer:
    return CardSealer(StaticPublicKey(pair.public))


@pytest.fixture
def opener(pair: CardKeyPair) -> CardOpener:
    return CardOpener(StaticKeyProvider([pair]), LegacyKeyRing.parse(LEGACY_SPEC))


def txid() -> str:
    return str(uuid.uuid4())


def seal_v1(purpose: envelope.Purpose, subject: str, digits: str) -> str:
    """A legacy envelope as the old API wrote it (the service can no longer write one)."""
    nonce = os.urandom(12)
    aad = envelope.legacy_associated_data(purpose, subject)
    ct = AESGCM(LEGACY_KEY).encrypt(nonce, digits.encode(), aad)
    b64 = envelope.b64encode
    return json.dumps({"v": 1, "kid": "old1", "nonce": b64(nonce), "ct": b64(ct)})


def test_round_trip_of_every_purpose(sealer: CardSealer, opener: CardOpener) -> None:
    t = txid()
    assert opener.open_card_number(sealer.seal_card_number(CardNumber(PAN), t), t).reveal() == PAN
    code = sealer.seal_security_code(SecurityCode("123"), t)
    assert opener.open_security_code(code, t).reveal() == "123"
    on_file = sealer.seal_card_on_file(CardNumber(PAN), "pm_abcdefgh12")
    assert opener.open_card_on_file(on_file, "pm_abcdefgh12").reveal() == PAN


def test_envelope_shape_names_key_and_suite(sealer: CardSealer, pair: CardKeyPair) -> None:
    t = txid()
    text = sealer.seal_card_number(CardNumber(PAN), t)
    data = json.loads(text)
    assert data["v"] == 2
    assert data["alg"] == ALG
    assert data["kid"] == pair.kid
    assert (data["purpose"], data["subject"]) == ("card_number", t)
    assert PAN not in text
    # Fresh ephemeral key per seal: the same value never gives the same envelope.
    assert text != sealer.seal_card_number(CardNumber(PAN), t)


def test_info_bytes_are_the_documented_ones() -> None:
    assert envelope.info("card_number", "t1") == b"payment-service/card/v2\x00card_number\x00t1"


def test_an_outside_producer_with_only_cryptography_interoperates(
    pair: CardKeyPair, opener: CardOpener
) -> None:
    """What docs/security.md tells another team to do, written without our helpers."""
    t = txid()
    public = pair.public.to_dict()
    from cryptography.hazmat.primitives import hpke
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PublicKey

    suite = hpke.Suite(hpke.KEM.X25519, hpke.KDF.HKDF_SHA256, hpke.AEAD.AES_256_GCM)
    key = X25519PublicKey.from_public_bytes(base64.b64decode(public["public_key"]))
    info = b"payment-service/card/v2\x00card_number\x00" + t.encode()
    ct = suite.encrypt(PAN.encode(), key, info=info)
    text = json.dumps(
        {"v": 2, "alg": public["alg"], "kid": public["kid"], "ct": base64.b64encode(ct).decode()}
    )
    assert opener.open_card_number(text, t).reveal() == PAN


def test_another_transaction_is_a_mismatch(sealer: CardSealer, opener: CardOpener) -> None:
    text = sealer.seal_card_number(CardNumber(PAN), txid())
    with pytest.raises(EnvelopeMismatch) as caught:
        opener.open_card_number(text, txid())
    assert caught.value.failure_code == "card_data_mismatch"


def test_another_purpose_is_a_mismatch(sealer: CardSealer, opener: CardOpener) -> None:
    t = txid()
    text = sealer.seal_card_number(CardNumber("4242424242424"), t)
    with pytest.raises(EnvelopeMismatch):
        opener.open_security_code(text, t)


def test_without_hints_a_wrong_binding_is_only_unreadable(
    pair: CardKeyPair, opener: CardOpener
) -> None:
    """HPKE alone cannot tell another binding from tampering: without hints it is unreadable."""
    t = txid()
    ct = SUITE.encrypt(PAN.encode(), pair.public.public_key(), info=envelope.info("card_number", t))
    text = Sealed(pair.kid, ct).to_str()
    assert opener.open_card_number(text, t).reveal() == PAN
    with pytest.raises(DecryptionError) as caught:
        opener.open_card_number(text, txid())
    assert not isinstance(caught.value, EnvelopeMismatch)
    assert caught.value.failure_code == "card_data_unreadable"


def test_lying_hints_do_not_help(sealer: CardSealer, opener: CardOpener) -> None:
    """Rewriting the hints to the expected binding still fails: the info is what binds."""
    text = sealer.seal_card_number(CardNumber(PAN), "t-other")
    forged = json.loads(text)
    forged["subject"] = "t-mine"
    with pytest.raises(DecryptionError):
        opener.open_card_number(json.dumps(forged), "t-mine")


def test_wrong_key_under_the_same_kid(sealer: CardSealer, pair: CardKeyPair) -> None:
    other = CardOpener(StaticKeyProvider([CardKeyPair.generate(pair.kid)]))
    t = txid()
    with pytest.raises(DecryptionError):
        other.open_card_number(sealer.seal_card_number(CardNumber(PAN), t), t)


def test_unknown_key_id(opener: CardOpener) -> None:
    stranger = CardSealer(StaticPublicKey(CardKeyPair.generate("ck_stranger").public))
    t = txid()
    with pytest.raises(UnknownKeyId) as caught:
        opener.open_card_number(stranger.seal_card_number(CardNumber(PAN), t), t)
    assert caught.value.failure_code == "card_key_unknown"
    assert "ck_stranger" in str(caught.value)


@pytest.mark.parametrize("position", [0, 31, 32, 40, -1])
def test_tampered_ciphertext_is_unreadable(
    sealer: CardSealer, opener: CardOpener, position: int
) -> None:
    t = txid()
    data = json.loads(sealer.seal_card_number(CardNumber(PAN), t))
    raw = bytearray(base64.b64decode(data["ct"]))
    raw[position] ^= 0x01
    data["ct"] = base64.b64encode(bytes(raw)).decode()
    with pytest.raises(DecryptionError) as caught:
        opener.open_card_number(json.dumps(data), t)
    assert not isinstance(caught.value, EnvelopeMismatch)


@pytest.mark.parametrize(
    "mutate",
    [
        lambda d: d.pop("alg"),
        lambda d: d.update(alg="HPKE-X25519-HKDF-SHA256-CHACHA20POLY1305"),
        lambda d: d.update(v=3),
        lambda d: d.update(v="2"),
        lambda d: d.update(kid="bad kid!"),
        lambda d: d.update(ct="not base64!"),
        lambda d: d.update(ct=base64.b64encode(b"short").decode()),
        lambda d: d.pop("subject"),
        lambda d: d.update(purpose="other"),
        lambda d: d.update(extra=1),
    ],
)
def test_strict_parsing(sealer: CardSealer, opener: CardOpener, mutate: object) -> None:
    data = json.loads(sealer.seal_card_number(CardNumber(PAN), "t"))
    mutate(data)  # type: ignore[operator]
    with pytest.raises(MalformedEnvelope):
        opener.open_card_number(json.dumps(data), "t")


@pytest.mark.parametrize("text", ["[]", "null", "{", b"\xff", '{"v":2,"v":2}'])
def test_non_envelopes(opener: CardOpener, text: str | bytes) -> None:
    with pytest.raises(MalformedEnvelope):
        envelope.parse(text)


def test_legacy_v1_still_opens(opener: CardOpener) -> None:
    t = txid()
    assert opener.open_card_number(seal_v1("card_number", t, PAN), t).reveal() == PAN
    assert opener.open_security_code(seal_v1("security_code", t, "456"), t).reveal() == "456"
    with pytest.raises(DecryptionError):
        opener.open_card_number(seal_v1("card_number", t, PAN), txid())


def test_legacy_v1_needs_the_legacy_key(pair: CardKeyPair) -> None:
    t = txid()
    without = CardOpener(StaticKeyProvider([pair]))
    with pytest.raises(UnknownKeyId):
        without.open_card_number(seal_v1("card_number", t, PAN), t)


def test_the_legacy_ring_cannot_seal() -> None:
    ring = LegacyKeyRing.parse(LEGACY_SPEC)
    assert not hasattr(ring, "encrypt")
    assert "old1" in repr(ring)
    assert LEGACY_SPEC.partition(":")[2] not in repr(ring)


def test_the_sealer_cannot_open(sealer: CardSealer) -> None:
    assert not any(hasattr(sealer, name) for name in ("open", "open_card_number", "rewrap"))


def test_rewrap_to_the_current_key_and_from_v1(pair: CardKeyPair) -> None:
    new = CardKeyPair.generate("ck_test_2")
    t = txid()
    old_text = CardSealer(StaticPublicKey(pair.public)).seal_security_code(SecurityCode("321"), t)
    opener = CardOpener(StaticKeyProvider([new, pair]), LegacyKeyRing.parse(LEGACY_SPEC))
    rewrapped = opener.rewrap(old_text, "security_code", t)
    assert rewrapped is not None
    assert envelope.key_id_of(rewrapped) == "ck_test_2"
    assert opener.rewrap(rewrapped, "security_code", t) is None
    assert opener.open_security_code(rewrapped, t).reveal() == "321"
    converted = opener.rewrap(seal_v1("security_code", t, "654"), "security_code", t)
    assert converted is not None
    assert json.loads(converted)["v"] == 2
    # Re-sealed only under the new key: the old one is not needed for it any more.
    assert CardOpener(StaticKeyProvider([new])).open_security_code(converted, t).reveal() == "654"
    assert envelope.key_id_of(seal_v1("security_code", t, "1")) == "v1:old1"


def test_non_digit_data_is_refused_without_echo(sealer: CardSealer) -> None:
    with pytest.raises(CardCryptoError) as caught:
        sealer.seal("12ab34", "card_number", "t")
    assert "12ab34" not in str(caught.value)


def test_fingerprint_is_keyed_versioned_and_stable() -> None:
    key_a = FingerprintKey.parse("fpk1:" + base64.b64encode(os.urandom(32)).decode())
    key_b = FingerprintKey.parse("fpk2:" + base64.b64encode(os.urandom(32)).decode())
    card = CardNumber(PAN)
    fp = key_a.fingerprint(card)
    assert fp == key_a.fingerprint(CardNumber(PAN))
    assert fp.startswith("fpk1:")
    assert len(fp) == len("fpk1:") + 64
    assert fp != key_b.fingerprint(card)
    assert fp != key_a.fingerprint(CardNumber("4111111111111111"))
    assert hashlib.sha256(PAN.encode()).hexdigest() not in fp
    assert PAN not in fp
    assert repr(key_a) == "FingerprintKey(version='fpk1')"


@pytest.mark.parametrize(
    "spec",
    [
        "",
        "fpk1",
        "fpk1:not-base64!",
        "fpk1:" + base64.b64encode(b"short").decode(),
        "fpk1:" + base64.b64encode(b"a" * 40).decode(),
        "FPK 1:" + base64.b64encode(os.urandom(32)).decode(),
    ],
)
def test_weak_or_malformed_fingerprint_keys_are_refused(spec: str) -> None:
    with pytest.raises(KeyConfigError) as caught:
        FingerprintKey.parse(spec)
    assert "CARD_FINGERPRINT_KEY" in str(caught.value)


# Every way a value becomes text, including the old ones on purpose.
FORMS = [str, repr, lambda v: f"{v}", lambda v: f"{v!r}", lambda v: f"{v!s:>40}", format]
FORMS += [lambda v: "{}".format(v), lambda v: "%s" % v, lambda v: "%r" % (v,)]  # noqa: UP031, UP032
FORMS += [lambda v: str([v]), lambda v: str({"k": v})]


@pytest.mark.parametrize("form", FORMS)
def test_card_number_text_forms_hide_digits(form: object) -> None:
    text = form(CardNumber(PAN))  # type: ignore[operator]
    assert PAN not in text
    assert PAN[:12] not in text
    assert "4242" in text  # the last four are allowed
    assert "visa" in text


@pytest.mark.parametrize("form", FORMS)
def test_security_code_text_forms_hide_digits(form: object) -> None:
    text = form(SecurityCode("987"))  # type: ignore[operator]
    assert "987" not in text
    assert "9" not in text


@pytest.mark.parametrize("form", FORMS)
def test_key_types_text_forms_hide_material(form: object, pair: CardKeyPair) -> None:
    secret = pair.private_b64()
    fingerprint_key = FingerprintKey.parse("fpk1:" + secret)
    for value in (pair, StaticKeyProvider([pair]), fingerprint_key):
        text = form(value)  # type: ignore[operator]
        assert secret not in text
        assert base64.b64decode(secret).hex() not in text
