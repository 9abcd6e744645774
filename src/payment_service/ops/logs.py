"""Logging for every process: one line per event, JSON, card data filtered out before formatting.

Every line is a JSON object on stderr: our records, every library's (aiohttp, Quix, asyncpg,
ddtrace), librdkafka's own (its clients are given a logger: `kafka/security.diagnostics_config`),
Python warnings, and uncaught exceptions of the main thread, other threads and finalizers.

Two filters sit on the handler, so they see records from every logger: `ContextFilter` adds the
ids of the request or command being handled (`logcontext`), then `CardDataFilter` redacts
anything that looks like card data from the message and every field, at every level. Each line
also names the service, env and version (unified service tagging, `dd.*` as Datadog reads them)
and, with tracing on, the trace and span ids (ddtrace's log injection).
"""

from __future__ import annotations

import json
import logging
import sys
import threading
from datetime import UTC, datetime
from types import TracebackType
from typing import Any

from payment_service.cards.redact import CardDataFilter
from payment_service.config.settings import Settings
from payment_service.ops.logcontext import ContextFilter

_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}
# ddtrace injects these on every record; outside a span its ids are "0", which says nothing.
_TRACE_IDS = ("dd.trace_id", "dd.span_id")

log = logging.getLogger(__name__)


class JsonFormatter(logging.Formatter):
    def __init__(self, process: str, service_tags: dict[str, str] | None = None) -> None:
        super().__init__()
        self._process = process
        self._service_tags = service_tags or {}

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
        if entry.get("dd.trace_id") in ("0", 0):
            for key in _TRACE_IDS:
                entry.pop(key, None)
        for key, value in self._service_tags.items():
            entry.setdefault(key, value)
        if record.exc_info:
            # exc_text is what the card-data filter already rendered and redacted.
            entry["exception"] = record.exc_text or self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def configure_logging(settings: Settings, process: str) -> None:
    """Send every logger's records, with their context and redacted, as JSON lines to stderr."""
    handler = logging.StreamHandler(sys.stderr)
    dd = settings.datadog
    tags = {"dd.service": dd.service, "dd.env": dd.env, "dd.version": dd.version}
    handler.setFormatter(JsonFormatter(process, tags))
    handler.addFilter(ContextFilter())
    handler.addFilter(CardDataFilter())  # last: it also scrubs what the context added
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel("DEBUG" if settings.debug else settings.log_level.upper())
    logging.captureWarnings(True)  # warnings.warn() -> logger "py.warnings"
    _route_uncaught_exceptions()


def _route_uncaught_exceptions() -> None:
    """What Python would print as a plain traceback on stderr becomes a JSON record instead."""

    def main_thread(
        kind: type[BaseException], exc: BaseException, tb: TracebackType | None
    ) -> None:
        if issubclass(kind, KeyboardInterrupt):
            sys.__excepthook__(kind, exc, tb)
            return
        log.critical("uncaught exception", exc_info=(kind, exc, tb))

    def other_thread(args: threading.ExceptHookArgs) -> None:
        if args.exc_value is None or issubclass(args.exc_type, SystemExit):
            return
        name = args.thread.name if args.thread is not None else "?"
        exc_info = (args.exc_type, args.exc_value, args.exc_traceback)
        log.error("uncaught exception in thread %s", name, exc_info=exc_info)

    def unraisable(args: Any) -> None:
        exc_info = (args.exc_type, args.exc_value, args.exc_traceback)
        log.warning("exception ignored in %r: %s", args.object, args.err_msg, exc_info=exc_info)

    sys.excepthook = main_thread
    threading.excepthook = other_thread
    sys.unraisablehook = unraisable
