"""Unit tests read settings from their arguments and the environment only.

The settings classes also read `.stack/local.env` and `.env` (config/sections.py); once
`make up` has written them in the checkout, a unit test would see the local stack's values.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pydantic_settings import BaseSettings

import payment_service.config.settings  # defines every settings class
import payment_service.config.webhooks  # noqa: F401


def _ours(cls: type[BaseSettings]) -> Iterator[type[BaseSettings]]:
    for sub in cls.__subclasses__():
        if sub.__module__.startswith("payment_service."):
            yield sub
        yield from _ours(sub)


@pytest.fixture(autouse=True)
def _no_env_files(monkeypatch: pytest.MonkeyPatch) -> None:
    for cls in set(_ours(BaseSettings)):
        monkeypatch.setitem(cls.model_config, "env_file", None)
