"""The processor's card keys in a directory (`CARD_PRIVATE_KEYS_DIR`), and the tasks that manage it.

Layout (the directory mode 0700, written only by `payment-service cards keys ...`):

    <kid>.key    {"kid", "alg", "private_key": base64 of the raw 32 bytes, "created_at"}, mode 0600
    current      the id of the current key (the marker); its mtime is when it became current

Files are written to a temporary name and renamed, so a reader never sees half a key. A key file
that others may read is refused, as ssh refuses a private key with loose permissions.

`FileKeyProvider` is the `CardKeyProvider` over such a directory. It re-reads the directory when
asked for a key id it does not hold, so a key added by a rotation works without a restart: at
once the first time it meets that id, then at most once per `refresh_seconds` (envelopes under
ids that are not ours cannot make it re-read the directory for every message). It also re-reads
it when the directory changed (checked at most every `check_seconds`), so a retired key is
forgotten.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import stat
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from payment_service.cards.envelope import ALG, KID
from payment_service.cards.keys import CardKeyPair, PublicCardKey
from payment_service.core.errors import KeyConfigError

log = logging.getLogger(__name__)

MARKER: Final = "current"
SUFFIX: Final = ".key"
_MAX_MISSED: Final = 1024


@dataclass(frozen=True)
class KeyInfo:
    """What `cards keys list` shows of a key: never its material."""

    kid: str
    created_at: dt.datetime | None
    current: bool


def _write(path: Path, text: str, mode: int) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "w", encoding="utf-8") as file:
        file.write(text)
        file.flush()
        os.fsync(file.fileno())
    os.replace(tmp, path)


def _read_pair(path: Path) -> CardKeyPair:
    where = str(path)
    if stat.S_IMODE(path.stat().st_mode) & 0o077:
        raise KeyConfigError(f"{where} may be read by others: chmod 600 it")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise KeyConfigError(f"{where}: not a card key file") from None
    if not isinstance(data, dict) or data.get("alg") != ALG or data.get("kid") != path.stem:
        raise KeyConfigError(f"{where}: not a card key file for {ALG} named by its kid")
    created = data.get("created_at")
    created_at = dt.datetime.fromisoformat(created) if isinstance(created, str) else None
    return CardKeyPair.from_b64(path.stem, str(data.get("private_key")), created_at, where=where)


def read_keys(directory: Path) -> tuple[dict[str, CardKeyPair], str]:
    """Every key pair in `directory` and the current key id; `KeyConfigError` if inconsistent."""
    if not directory.is_dir():
        raise KeyConfigError(f"CARD_PRIVATE_KEYS_DIR {directory} is not a directory")
    pairs = {p.stem: _read_pair(p) for p in sorted(directory.glob(f"*{SUFFIX}"))}
    try:
        current = (directory / MARKER).read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        raise KeyConfigError(
            f"{directory} has no current key: run `payment-service cards keys init`"
        ) from None
    if current not in pairs:
        raise KeyConfigError(f"{directory}/{MARKER} names {current!r}, which has no key file")
    return pairs, current


def write_public(path: Path, public: PublicCardKey) -> None:
    """Publish the current public key (not secret, mode 0644) for the API and producers."""
    path.parent.mkdir(parents=True, exist_ok=True)
    _write(path, public.to_json(), 0o644)


def generate(directory: Path, *, make_current: bool, kid: str | None = None) -> CardKeyPair:
    """A new key pair in `directory` (created 0700 if missing); optionally the current one."""
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    pair = CardKeyPair.generate(kid)
    path = directory / f"{pair.kid}{SUFFIX}"
    if path.exists():
        raise KeyConfigError(f"{path} exists already")
    record = {
        "kid": pair.kid,
        "alg": ALG,
        "private_key": pair.private_b64(),
        "created_at": pair.created_at.isoformat() if pair.created_at else None,
    }
    _write(path, json.dumps(record) + "\n", 0o600)
    if make_current:
        set_current(directory, pair.kid)
    return pair


def set_current(directory: Path, kid: str) -> None:
    """Make `kid` (which must have its key file) the key producers seal to."""
    if not KID.fullmatch(kid) or not (directory / f"{kid}{SUFFIX}").exists():
        raise KeyConfigError(f"no key {kid!r} in {directory}")
    _write(directory / MARKER, kid + "\n", 0o600)


def init(directory: Path) -> tuple[PublicCardKey, bool]:
    """The current public key, generating a first key pair if the directory has none."""
    if (directory / MARKER).exists():
        pairs, current = read_keys(directory)
        return pairs[current].public, False
    return generate(directory, make_current=True).public, True


def current_since(directory: Path) -> dt.datetime:
    """When the current key became current (the marker's mtime)."""
    mtime = (directory / MARKER).stat().st_mtime
    return dt.datetime.fromtimestamp(mtime, dt.UTC)


def list_keys(directory: Path) -> list[KeyInfo]:
    pairs, current = read_keys(directory)
    return [KeyInfo(kid, p.created_at, kid == current) for kid, p in pairs.items()]


def remove(directory: Path, kid: str) -> None:
    """Delete a key file for good (the caller has checked nothing still needs it)."""
    _, current = read_keys(directory)
    if kid == current:
        raise KeyConfigError(f"{kid} is the current key: rotate first")
    path = directory / f"{kid}{SUFFIX}"
    if not KID.fullmatch(kid) or not path.exists():
        raise KeyConfigError(f"no key {kid!r} in {directory}")
    path.unlink()


class FileKeyProvider:
    """`CardKeyProvider` over a key directory, re-read when it changes (no restart needed)."""

    def __init__(
        self,
        directory: Path,
        *,
        refresh_seconds: float = 1.0,
        check_seconds: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._dir = directory
        self._refresh_seconds = refresh_seconds
        self._check_seconds = check_seconds
        self._clock = clock
        self._pairs, self._current = read_keys(directory)
        self._stamp = self._dir_stamp()
        self._loaded_at = self._checked_at = clock()
        self._missed: set[str] = set()

    def _dir_stamp(self) -> tuple[int, int]:
        marker = self._dir / MARKER
        return self._dir.stat().st_mtime_ns, marker.stat().st_mtime_ns

    def _reload(self) -> None:
        self._loaded_at = self._clock()
        try:
            self._pairs, self._current = read_keys(self._dir)
            self._stamp = self._dir_stamp()
        except (KeyConfigError, OSError) as exc:
            # Keep serving with the keys we have; the operator sees why.
            log.error("card key directory not reloaded: %s", exc)
            return
        log.info("card keys reloaded: %s (current %s)", ", ".join(self._pairs), self._current)

    def _check(self) -> None:
        now = self._clock()
        if now - self._checked_at < self._check_seconds:
            return
        self._checked_at = now
        try:
            changed = self._dir_stamp() != self._stamp
        except OSError:
            changed = True
        if changed:
            self._reload()

    def current_kid(self) -> str:
        self._check()
        return self._current

    def current_public(self) -> PublicCardKey:
        self._check()
        return self._pairs[self._current].public

    def private_key(self, kid: str) -> X25519PrivateKey | None:
        self._check()
        if kid not in self._pairs:
            first_miss = kid not in self._missed
            if first_miss or self._clock() - self._loaded_at >= self._refresh_seconds:
                if len(self._missed) >= _MAX_MISSED:
                    self._missed.clear()
                self._missed.add(kid)
                self._reload()  # a rotation may have added it
        pair = self._pairs.get(kid)
        return pair.private_key if pair else None

    def kids(self) -> tuple[str, ...]:
        self._check()
        return (self._current, *(k for k in self._pairs if k != self._current))

    def __repr__(self) -> str:
        return f"FileKeyProvider({str(self._dir)!r})"
