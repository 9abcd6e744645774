"""Who holds which signing key (docs/kafka.md, "Signing"), decided once from the settings.

The API gets the private key it signs its commands with (as producer `api`) and the processor's
public key; the processor gets the API's public key and the private key it signs results with.
A missing or malformed key stops the process with `KeyConfigError` naming the variable; a
private key file readable by others is refused (it must be 0600, like the card keys).
"""

from __future__ import annotations

from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from payment_service.config.secrets import check_secret
from payment_service.config.settings import Settings
from payment_service.core.errors import KeyConfigError
from payment_service.core.producers import API_PRODUCER
from payment_service.kafka.signing import (
    PROCESSOR_SIGNER,
    Signer,
    SigningKeyError,
    new_key_pair,
    private_key_from_text,
    public_key_from_text,
    read_key_file,
)

HINT = "`payment-service signing init --dir DIR` writes the key pairs"


def _path(settings: Settings, name: str) -> Path:
    path: Path | None = getattr(settings, name)
    if path is None:
        raise KeyConfigError(f"{name.upper()} is not set: {HINT}")
    return path


def _text(path: Path, variable: str) -> str:
    try:
        return read_key_file(path)
    except (OSError, UnicodeDecodeError) as exc:
        raise KeyConfigError(f"{variable}: cannot read {path} ({type(exc).__name__})") from None


def _private(settings: Settings, name: str) -> Ed25519PrivateKey:
    path = _path(settings, name)
    variable = name.upper()
    text = _text(path, variable)
    if path.stat().st_mode & 0o077:
        raise KeyConfigError(f"{variable}: {path} must be readable by its owner only (0600)")
    problem = check_secret(variable, text)
    if problem and settings.environment == "production":
        raise KeyConfigError(problem)
    try:
        return private_key_from_text(text, variable)
    except SigningKeyError as exc:
        raise KeyConfigError(str(exc)) from None


def _public(settings: Settings, name: str) -> Ed25519PublicKey:
    variable = name.upper()
    try:
        return public_key_from_text(_text(_path(settings, name), variable), variable)
    except SigningKeyError as exc:
        raise KeyConfigError(str(exc)) from None


def api_signer(settings: Settings) -> Signer:
    return Signer(API_PRODUCER, _private(settings, "command_signing_key_file"))


def result_verify_key(settings: Settings) -> Ed25519PublicKey:
    return _public(settings, "result_verify_key_file")


def result_signer(settings: Settings) -> Signer:
    return Signer(PROCESSOR_SIGNER, _private(settings, "result_signing_key_file"))


def command_verify_key(settings: Settings) -> Ed25519PublicKey:
    return _public(settings, "command_verify_key_file")


def init_key_dir(directory: Path) -> list[str]:
    """Write the two key pairs into `directory` (private 0600) unless they exist; report."""
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    report = []
    for stem in ("api-command", "processor-result"):
        private, public = directory / f"{stem}.key", directory / f"{stem}.pub"
        if private.exists() and public.exists():
            report.append(f"{stem}: kept")
            continue
        private_text, public_text = new_key_pair()
        private.touch(mode=0o600, exist_ok=True)
        private.chmod(0o600)
        private.write_text(private_text + "\n", encoding="ascii")
        public.write_text(public_text + "\n", encoding="ascii")
        report.append(f"{stem}: created {private} (0600) and {public}")
    return report
