"""Card encryption, key rings, rotation, fingerprints, and the masked types' text forms."""

from __future__ import annotations

import base64
import hashlib
import json
import uuid

import pytest

from payment_service.app.keys import key_ring
from payment_service.cards.crypto import (
    Envelope,
    KeyRing,
    decrypt_card_number,
    decrypt_security_code,
    encrypt_card_number,
    encrypt_security_code,
    fingerprint,
    generate_key_spec,
)
from payment_service.config.settings import Settings
from payment_service.core.errors import (
    CardCryptoError,
    DecryptionError,
    KeyConfigError,
    MalformedEnvelope,
    UnknownKeyId,
)
from payment_service.core.masking import CardNumber, SecurityCode

pytestmark = pytest.mark.unit

PAN = "4242424242424242"
K1 = generate_key_spec("k1")
K2 = generate_key_spec("k2")


def _txid() -> str:
    return str(uuid.uuid4())


@pytest.fixture
def ring() -> KeyRing:
    return KeyRing.parse(K1)


def test_round_trip(ring: KeyRing) -> None:
    txid = _txid()
    sealed = encrypt_card_number(ring, CardNumber(PAN), txid)
    assert decrypt_card_number(ring, sealed, txid) == CardNumber(PAN)
    assert decrypt_card_number(ring, sealed.encode(), txid) == CardNumber(PAN)


def test_security_code_round_trip(ring: KeyRing) -> None:
    txid = _txid()
    sealed = encrypt_security_code(ring, SecurityCode("123"), txid)
    assert decrypt_security_code(ring, sealed, txid) == SecurityCode("123")


def test_nonce_is_fresh_each_time(ring: KeyRing) -> None:
    txid = _txid()
    first, second = (
        Envelope.from_str(encrypt_card_number(ring, CardNumber(PAN), txid)) for _ in "ab"
    )
    assert first.nonce != second.nonce
    assert first.ciphertext != second.ciphertext
    assert len(first.nonce) == 12


def test_other_transaction_id_fails(ring: KeyRing) -> None:
    sealed = encrypt_card_number(ring, CardNumber(PAN), _txid())
    with pytest.raises(DecryptionError):
        decrypt_card_number(ring, sealed, _txid())


def test_purpose_is_bound(ring: KeyRing) -> None:
    """A card-number envelope cannot be opened as a security code, even for its transaction."""
    txid = _txid()
    sealed = encrypt_card_number(ring, CardNumber(PAN), txid)
    with pytest.raises(DecryptionError):
        decrypt_security_code(ring, sealed, txid)


def test_raw_wrong_aad_fails(ring: KeyRing) -> None:
    envelope = ring.encrypt(b"payload", b"aad-1")
    assert ring.decrypt(envelope, b"aad-1") == b"payload"
    with pytest.raises(DecryptionError):
        ring.decrypt(envelope, b"aad-2")


@pytest.mark.parametrize("field", ["nonce", "ct"])
def test_tampered_envelope_fails(ring: KeyRing, field: str) -> None:
    txid = _txid()
    data = Envelope.from_str(encrypt_card_number(ring, CardNumber(PAN), txid)).to_dict()
    raw = bytearray(base64.b64decode(str(data[field])))
    raw[0] ^= 0x01
    data[field] = base64.b64encode(bytes(raw)).decode()
    with pytest.raises(DecryptionError):
        decrypt_card_number(ring, json.dumps(data), txid)


def test_same_kid_other_key_fails() -> None:
    txid = _txid()
    sealed = encrypt_card_number(KeyRing.parse(K1), CardNumber(PAN), txid)
    with pytest.raises(DecryptionError):
        decrypt_card_number(KeyRing.parse(generate_key_spec("k1")), sealed, txid)


def test_unknown_kid(ring: KeyRing) -> None:
    txid = _txid()
    sealed = encrypt_card_number(KeyRing.parse(K2), CardNumber(PAN), txid)
    with pytest.raises(UnknownKeyId) as info:
        decrypt_card_number(ring, sealed, txid)
    assert info.value.kid == "k2"
    assert isinstance(info.value, CardCryptoError)


def test_rotation() -> None:
    """Encrypt under k1; after rotation to [k2, k1] it still opens, and wants re-wrapping."""
    txid, aad = _txid(), b"card_number:x"
    old_ring, new_ring = KeyRing.parse(K1), KeyRing.parse(f"{K2},{K1}")
    assert new_ring.primary_kid == "k2"
    assert new_ring.kids == ("k2", "k1")
    sealed = encrypt_card_number(old_ring, CardNumber(PAN), txid)
    assert decrypt_card_number(new_ring, sealed, txid) == CardNumber(PAN)
    envelope = Envelope.from_str(sealed)
    assert new_ring.needs_rewrap(envelope)
    assert not old_ring.needs_rewrap(envelope)

    old = old_ring.encrypt(b"payload", aad)
    rewrapped = new_ring.rewrap(old, aad)
    assert rewrapped.kid == "k2"
    assert not new_ring.needs_rewrap(rewrapped)
    assert new_ring.decrypt(rewrapped, aad) == b"payload"
    assert new_ring.rewrap(rewrapped, aad) is rewrapped


def test_the_root_parses_the_ring_from_settings() -> None:
    ring = key_ring(Settings(encryption_key=f"{K1},{K2}"))  # type: ignore[arg-type]
    assert ring.kids == ("k1", "k2")
    with pytest.raises(KeyConfigError, match="ENCRYPTION_KEY is not set"):
        key_ring(Settings(encryption_key=None))


def test_ring_repr_shows_no_key_material() -> None:
    key = K1.split(":", 1)[1]
    assert key not in repr(KeyRing.parse(K1))
    assert repr(KeyRing.parse(K1)) == "KeyRing(kids=('k1',))"


SHORT_KEY = base64.b64encode(b"s3cr3t-key-material-16").decode()
LONG_KEY = base64.b64encode(b"x" * 48).decode()
NOT_B64 = "not*base64*but-secret-looking-key-text"


@pytest.mark.parametrize(
    ("spec", "message"),
    [  # explicit ids keep key material out of test names
        pytest.param("", "is empty", id="empty"),
        pytest.param("   ", "is empty", id="blank"),
        pytest.param(SHORT_KEY, "entry 1: expected 'kid:base64key'", id="no-kid"),
        pytest.param(f"k1:{SHORT_KEY}", "must decode to 32 bytes, not 22", id="short-key"),
        pytest.param(f"k1:{LONG_KEY}", "must decode to 32 bytes, not 48", id="long-key"),
        pytest.param(f"k1:{NOT_B64}", "entry 1: key is not valid base64", id="not-base64"),
        pytest.param(f"{K1},:{SHORT_KEY}", "entry 2: expected 'kid:base64key'", id="empty-kid"),
        pytest.param(f"{K1},k2:", "entry 2: expected 'kid:base64key'", id="empty-key"),
        pytest.param(f"{K1},bad kid!:{SHORT_KEY}", "entry 2: key id must match", id="bad-kid"),
        pytest.param(f"{K1},{K1}", "duplicate key id 'k1'", id="duplicate-kid"),
        pytest.param(f"{K1},", "entry 2: expected 'kid:base64key'", id="trailing-comma"),
    ],
)
def test_malformed_key_specs(spec: str, message: str) -> None:
    with pytest.raises(KeyConfigError) as info:
        KeyRing.parse(spec)
    text = str(info.value)
    assert message in text
    for secret in (SHORT_KEY, LONG_KEY, NOT_B64, K1.split(":", 1)[1], "s3cr3t"):
        assert secret not in text
    # No chained exception (e.g. binascii's) that a traceback would print along with it.
    assert info.value.__cause__ is None
    assert info.value.__context__ is None or info.value.__suppress_context__


def test_generate_key_spec() -> None:
    kid, key = generate_key_spec("2026-01").split(":")
    assert kid == "2026-01"
    assert len(base64.b64decode(key)) == 32
    assert generate_key_spec("a") != generate_key_spec("a")
    with pytest.raises(KeyConfigError):
        generate_key_spec("no spaces")


def test_envelope_round_trip_and_shape(ring: KeyRing) -> None:
    envelope = ring.encrypt(b"payload", b"aad")
    text = envelope.to_str()
    assert " " not in text
    assert set(json.loads(text)) == {"v", "kid", "nonce", "ct"}
    assert json.loads(text)["v"] == 1
    assert Envelope.from_str(text) == envelope
    assert Envelope.from_dict(envelope.to_dict()) == envelope


def _valid_dict() -> dict[str, object]:
    return dict(KeyRing.parse(K1).encrypt(b"payload", b"aad").to_dict())


@pytest.mark.parametrize(
    "mutate",
    [
        lambda d: d.update(v=2),
        lambda d: d.update(v="1"),
        lambda d: d.update(v=True),
        lambda d: d.pop("kid"),
        lambda d: d.update(extra="x"),
        lambda d: d.update(kid=""),
        lambda d: d.update(kid="k 1"),
        lambda d: d.update(kid=7),
        lambda d: d.update(nonce="***"),
        lambda d: d.update(nonce=base64.b64encode(b"short").decode()),
        lambda d: d.update(ct=base64.b64encode(b"tooshort").decode()),
        lambda d: d.update(ct=None),
        lambda d: d.update(ct="é"),
    ],
)
def test_envelope_strict_parsing(mutate: object) -> None:
    data = _valid_dict()
    mutate(data)  # type: ignore[operator]
    with pytest.raises(MalformedEnvelope):
        Envelope.from_dict(data)
    with pytest.raises(MalformedEnvelope):
        Envelope.from_str(json.dumps(data))


@pytest.mark.parametrize("text", ["", "not json", "[]", "null", b"\xff\xfe", '{"v":1,"v":1}'])
def test_envelope_rejects_non_objects(text: str | bytes) -> None:
    with pytest.raises(MalformedEnvelope):
        Envelope.from_str(text)


def test_repeated_field_rejected() -> None:
    text = Envelope.from_dict(_valid_dict()).to_str()
    with pytest.raises(MalformedEnvelope, match="repeats"):
        Envelope.from_str(text[:-1] + ',"kid":"k1"}')


def test_envelope_never_contains_card_number(ring: KeyRing) -> None:
    for _ in range(50):
        sealed = encrypt_card_number(ring, CardNumber(PAN), _txid())
        assert PAN not in sealed
        assert PAN.encode() not in base64.b64decode(json.loads(sealed)["ct"])


FULLWIDTH_PAN = "\uff14\uff12" * 8  # str.isdigit() is true for these, and they are not ASCII


def test_non_digit_card_data_rejected_without_echo(ring: KeyRing) -> None:
    with pytest.raises(CardCryptoError) as info:
        encrypt_card_number(ring, CardNumber(FULLWIDTH_PAN), _txid())
    assert FULLWIDTH_PAN[:2] not in str(info.value)


def test_fingerprint() -> None:
    key_a, key_b = b"a" * 32, b"b" * 32
    card = CardNumber(PAN)
    fp = fingerprint(key_a, card)
    assert fp == fingerprint(key_a, CardNumber(PAN))
    assert len(fp) == 64
    assert int(fp, 16) >= 0
    assert fp != fingerprint(key_b, card)
    assert fp != fingerprint(key_a, CardNumber("4111111111111111"))
    assert fp != hashlib.sha256(PAN.encode()).hexdigest()
    assert PAN not in fp
    with pytest.raises(KeyConfigError):
        fingerprint(b"", card)


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
