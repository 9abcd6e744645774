"""Logging for every process: one line per event, JSON, card data filtered out before formatting.

The filter sits on the handler, so it sees records from every library (aiohttp, Quix, asyncpg)
and redacts anything that looks like a card number, at every level, before it is written.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime

from payment_service.cards.redact import CardDataFilter
from payment_service.config.settings import Settings

_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}


class JsonFormatter(logging.Formatter):
    def __init__(self, process: str) -> None:
        super().__init__()
        self._process = process

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "process": self._process,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            # exc_text is what the card-data filter already rendered and redacted.
            entry["exception"] = record.exc_text or self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def configure_logging(settings: Settings, process: str) -> None:
    """Send every logger's records, redacted, as JSON lines to stderr."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(process))
    handler.addFilter(CardDataFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel("DEBUG" if settings.debug else settings.log_level.upper())
