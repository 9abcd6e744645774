"""Length floors for secrets: at least 32 bytes of entropy, and no trivially weak values.

A value that is base64 (standard or URL-safe, padded or not) counts by its decoded bytes, as the
generated ones are written; anything else counts by its UTF-8 bytes. Either way it must reach
`MIN_SECRET_BYTES` and use enough distinct byte values that it cannot be one repeated character
or a short pattern. Messages name the variable, never the value.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Final

MIN_SECRET_BYTES: Final = 32
MIN_DISTINCT_BYTES: Final = 12
_B64: Final = re.compile(r"^[A-Za-z0-9+/_-]+={0,2}$")


def secret_bytes(value: str) -> bytes:
    """The bytes a secret stands for: decoded when it is base64, else its UTF-8 text."""
    text = value.strip()
    if _B64.fullmatch(text):
        core = text.rstrip("=")
        padded = core + "=" * (-len(core) % 4)
        try:
            return base64.b64decode(padded.replace("-", "+").replace("_", "/"), validate=True)
        except (binascii.Error, ValueError):
            pass
    return text.encode("utf-8")


def weakness(raw: bytes) -> str | None:
    """Why `raw` is too weak to be a secret, or None when it is not."""
    if len(raw) < MIN_SECRET_BYTES:
        return f"is {len(raw)} bytes; at least {MIN_SECRET_BYTES} random bytes are needed"
    if len(set(raw)) < MIN_DISTINCT_BYTES:
        return "is trivially weak (a repeated character or a short pattern)"
    return None


def check_secret(name: str, value: str) -> str | None:
    """A message naming `name` when `value` is too weak, else None."""
    problem = weakness(secret_bytes(value))
    return f"{name} {problem}" if problem else None
