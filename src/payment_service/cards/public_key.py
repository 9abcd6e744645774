"""Where an encrypt-only process (the API) finds the current public key.

`PublicKeyFile` reads `CARD_PUBLIC_KEY_FILE` (the JSON that `payment-service keys export-public`
prints and `cards keys rotate` writes) and reads it again when the file changes (checked at most
once per `check_seconds`), so a rotation needs no API restart. A file that becomes unreadable or
invalid keeps the last good key and logs why. `StaticPublicKey` is `CARD_PUBLIC_KEY`.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from payment_service.cards.keys import PublicCardKey
from payment_service.core.errors import KeyConfigError

log = logging.getLogger(__name__)


class PublicKeySource(Protocol):
    def current(self) -> PublicCardKey:
        """The key to seal to now."""
        ...


class StaticPublicKey:
    def __init__(self, key: PublicCardKey) -> None:
        self._key = key

    def current(self) -> PublicCardKey:
        return self._key


def _stamp(path: Path) -> tuple[int, int, int]:
    info = os.stat(path)
    return info.st_ino, info.st_mtime_ns, info.st_size


class PublicKeyFile:
    """The public key in a file, followed through rotations."""

    def __init__(
        self,
        path: Path,
        *,
        check_seconds: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._path = path
        self._check_seconds = check_seconds
        self._clock = clock
        try:
            self._stamp = _stamp(path)
        except OSError:
            raise KeyConfigError(
                f"CARD_PUBLIC_KEY_FILE {path} cannot be read: run "
                "`payment-service cards keys init` on the processor's side and publish the key"
            ) from None
        self._key = self._read()
        self._checked_at = clock()

    def _read(self) -> PublicCardKey:
        return PublicCardKey.parse(
            self._path.read_text(encoding="utf-8"), where=f"CARD_PUBLIC_KEY_FILE {self._path}"
        )

    def current(self) -> PublicCardKey:
        now = self._clock()
        if now - self._checked_at >= self._check_seconds:
            self._checked_at = now
            self._refresh()
        return self._key

    def _refresh(self) -> None:
        try:
            stamp = _stamp(self._path)
            if stamp == self._stamp:
                return
            key = self._read()
        except (OSError, KeyConfigError) as exc:
            log.error("card public key not reloaded, still sealing to %s: %s", self._key.kid, exc)
            return
        self._stamp = stamp
        if key.kid != self._key.kid:
            log.info("card public key changed: now sealing to %s", key.kid)
        self._key = key
