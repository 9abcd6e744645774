"""Card keys: the key directory, the providers, the public key file, secrets and who holds what."""

from __future__ import annotations

import base64
import json
import os
import stat
from pathlib import Path

import pytest
from pydantic import SecretStr, ValidationError

from payment_service.app.api import build_api
from payment_service.app.custody import card_opener, key_provider, public_key_source
from payment_service.cards import keydir
from payment_service.cards.crypto import CardOpener, CardSealer
from payment_service.cards.keydir import FileKeyProvider
from payment_service.cards.keys import CardKeyPair, PublicCardKey, parse_private_keys
from payment_service.cards.public_key import PublicKeyFile, StaticPublicKey
from payment_service.config.secrets import check_secret, secret_bytes
from payment_service.config.settings import KafkaSettings, Settings
from payment_service.core.errors import KeyConfigError, UnknownKeyId
from payment_service.core.masking import CardNumber

pytestmark = pytest.mark.unit

PAN = "4242424242424242"


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def test_init_creates_one_private_key_file_0600_and_is_idempotent(tmp_path: Path) -> None:
    directory = tmp_path / "keys"
    public, created = keydir.init(directory)
    assert created
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    key_file = directory / f"{public.kid}.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert (directory / "current").read_text().strip() == public.kid
    again, created_again = keydir.init(directory)
    assert (again.kid, created_again) == (public.kid, False)
    assert again.public_bytes == public.public_bytes


def test_a_key_file_others_can_read_is_refused(tmp_path: Path) -> None:
    public, _ = keydir.init(tmp_path)
    os.chmod(tmp_path / f"{public.kid}.key", 0o644)
    with pytest.raises(KeyConfigError, match="chmod 600"):
        keydir.read_keys(tmp_path)


def test_rotate_then_retire(tmp_path: Path) -> None:
    first, _ = keydir.init(tmp_path)
    second = keydir.generate(tmp_path, make_current=True)
    infos = {i.kid: i.current for i in keydir.list_keys(tmp_path)}
    assert infos == {first.kid: False, second.kid: True}
    with pytest.raises(KeyConfigError, match="current"):
        keydir.remove(tmp_path, second.kid)
    keydir.remove(tmp_path, first.kid)
    assert [i.kid for i in keydir.list_keys(tmp_path)] == [second.kid]


def test_the_file_provider_finds_a_rotated_key_without_restart(tmp_path: Path) -> None:
    first, _ = keydir.init(tmp_path)
    clock = Clock()
    provider = FileKeyProvider(tmp_path, refresh_seconds=1.0, check_seconds=3600, clock=clock)
    opener = CardOpener(provider)
    stranger = CardSealer(_static(CardKeyPair.generate("ck_stranger").public))
    with pytest.raises(UnknownKeyId):
        opener.open_card_number(stranger.seal_card_number(CardNumber(PAN), "t"), "t")
    second = keydir.generate(tmp_path, make_current=True)
    sealed = CardSealer(_static(second.public)).seal_card_number(CardNumber(PAN), "t")
    # A key id met for the first time re-reads the directory at once, even right after a
    # re-read for an id that is not ours.
    assert opener.open_card_number(sealed, "t").reveal() == PAN
    assert provider.current_kid() == second.kid
    assert first.kid in provider.kids()


def test_an_unknown_key_id_re_reads_the_directory_at_most_once_per_interval(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    keydir.init(tmp_path)
    clock = Clock()
    provider = FileKeyProvider(tmp_path, refresh_seconds=1.0, check_seconds=3600, clock=clock)
    reads: list[Path] = []
    real = keydir.read_keys

    def counted(directory: Path) -> tuple[dict[str, CardKeyPair], str]:
        reads.append(directory)
        return real(directory)

    monkeypatch.setattr(keydir, "read_keys", counted)
    for _ in range(100):
        assert provider.private_key("ck_not_ours") is None
    assert len(reads) == 1
    clock.now = 1.5
    assert provider.private_key("ck_not_ours") is None
    assert len(reads) == 2


def test_the_file_provider_forgets_a_retired_key(tmp_path: Path) -> None:
    first, _ = keydir.init(tmp_path)
    clock = Clock()
    provider = FileKeyProvider(tmp_path, check_seconds=5.0, clock=clock)
    keydir.generate(tmp_path, make_current=True)
    keydir.remove(tmp_path, first.kid)
    clock.now = 10.0
    assert provider.private_key(first.kid) is None


def test_a_broken_directory_keeps_the_keys_already_loaded(tmp_path: Path) -> None:
    first, _ = keydir.init(tmp_path)
    clock = Clock()
    provider = FileKeyProvider(tmp_path, check_seconds=1.0, clock=clock)
    (tmp_path / "current").write_text("ck_missing\n")
    clock.now = 5.0
    assert provider.current_kid() == first.kid
    assert provider.private_key(first.kid) is not None


def _static(public: PublicCardKey) -> StaticPublicKey:
    return StaticPublicKey(public)


def test_the_public_key_file_is_followed_through_a_rotation(tmp_path: Path) -> None:
    keys, public_file = tmp_path / "keys", tmp_path / "public.json"
    first, _ = keydir.init(keys)
    keydir.write_public(public_file, first)
    clock = Clock()
    source = PublicKeyFile(public_file, check_seconds=1.0, clock=clock)
    assert source.current().kid == first.kid
    second = keydir.generate(keys, make_current=True).public
    keydir.write_public(public_file, second)
    assert source.current().kid == first.kid  # checked at most once a second
    clock.now = 1.5
    assert source.current().kid == second.kid
    public_file.write_text("not json")
    clock.now = 3.0
    assert source.current().kid == second.kid  # a broken file keeps the last good key


def test_public_key_json_round_trip_and_inline_forms() -> None:
    public = CardKeyPair.generate("ck_a").public
    exported = json.loads(public.to_json())
    assert set(exported) == {"kid", "alg", "public_key", "created_at"}
    assert PublicCardKey.parse(public.to_json()).public_bytes == public.public_bytes
    inline = f"ck_a:{exported['public_key']}"
    assert PublicCardKey.parse(inline).public_bytes == public.public_bytes
    with pytest.raises(KeyConfigError):
        PublicCardKey.parse('{"kid": "ck_a", "alg": "RSA", "public_key": "AAAA"}')


def test_inline_private_keys_and_errors_without_the_value() -> None:
    a, b = CardKeyPair.generate("ck_a"), CardKeyPair.generate("ck_b")
    spec = f"ck_a:{a.private_b64()},ck_b:{b.private_b64()}"
    provider = key_provider(Settings(card_private_keys=SecretStr(spec)))
    assert provider.current_kid() == "ck_a"
    assert provider.kids() == ("ck_a", "ck_b")
    for bad in ("ck_a", "ck_a:" + b64(b"short"), f"bad kid:{a.private_b64()}", f"{spec},{spec}"):
        with pytest.raises(KeyConfigError) as caught:
            parse_private_keys(bad)
        assert a.private_b64() not in str(caught.value)


def test_settings_name_the_missing_key() -> None:
    with pytest.raises(KeyConfigError, match="CARD_PRIVATE_KEYS_DIR"):
        card_opener(Settings())
    with pytest.raises(KeyConfigError, match="CARD_PUBLIC_KEY_FILE"):
        public_key_source(Settings())


@pytest.mark.parametrize(
    "held",
    [
        {"card_private_keys": SecretStr("ck_a:" + b64(os.urandom(32)))},
        {"card_private_keys_dir": Path("/nonexistent")},
        {"encryption_key": SecretStr("k1:" + b64(os.urandom(32)))},
    ],
)
def test_the_api_refuses_to_start_holding_a_private_key(held: dict[str, object]) -> None:
    settings = Settings(card_public_key="ck_a:" + b64(os.urandom(32)), **held)  # type: ignore[arg-type]
    with pytest.raises(KeyConfigError, match="must not hold private card keys") as caught:
        build_api(settings)
    assert next(iter(held)).upper() in str(caught.value)


@pytest.mark.parametrize(
    ("value", "weak"),
    [
        (b64(os.urandom(32)), False),
        (base64.urlsafe_b64encode(os.urandom(32)).decode().rstrip("="), False),
        ("correct horse battery staple, but a long one" * 1, False),
        (b64(os.urandom(24)), True),
        ("a" * 64, True),
        ("ab" * 32, True),
        ("changeme", True),
    ],
)
def test_secret_length_floor(value: str, weak: bool) -> None:
    assert (check_secret("SECRET_KEY", value) is not None) == weak


def test_base64_secrets_count_by_decoded_bytes() -> None:
    raw = os.urandom(32)
    assert secret_bytes(b64(raw)) == raw
    assert secret_bytes(base64.urlsafe_b64encode(raw).decode().rstrip("=")) == raw


def test_production_refuses_weak_secrets_naming_them() -> None:
    strong = "fpk1:" + b64(os.urandom(32))
    # TLS to Kafka, so that only the secrets can be what production refuses.
    tls = KafkaSettings(bootstrap_servers="b:9093", security_protocol="SASL_SSL")
    Settings(environment="production", kafka=tls, secret_key=SecretStr(b64(os.urandom(32))))
    Settings(environment="production", kafka=tls, card_fingerprint_key=SecretStr(strong))
    for name, value in (
        ("secret_key", "short"),
        ("card_fingerprint_key", "fpk1:" + b64(b"x" * 32)),
        ("card_private_keys", "ck_a:" + b64(bytes(32))),
    ):
        with pytest.raises(ValidationError) as caught:
            Settings(environment="production", kafka=tls, **{name: SecretStr(value)})  # type: ignore[arg-type]
        assert name.upper() in str(caught.value)
        assert value not in str(caught.value)
    # Outside production the same values are allowed (and the roots warn).
    assert Settings(environment="test", secret_key=SecretStr("short")).secret_problems()
