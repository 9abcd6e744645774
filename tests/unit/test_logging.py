"""The log format: JSON lines with the context's ids and the service tags, card data scrubbed from
every field (the context's too), warnings and uncaught exceptions as JSON, per-task contexts."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import sys
import threading
import warnings
from collections.abc import Iterator
from typing import Any

import pytest

from payment_service.config.settings import DatadogSettings, Settings
from payment_service.ops.logcontext import bind, current, log_context
from payment_service.ops.logs import configure_logging

pytestmark = pytest.mark.unit

CARD = "4111 1111 1111 1111"


@pytest.fixture
def stream(monkeypatch: pytest.MonkeyPatch) -> Iterator[io.StringIO]:
    """configure_logging() into a string; the logging state and the hooks restored after."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    for name in ("excepthook", "unraisablehook"):
        monkeypatch.setattr(sys, name, getattr(sys, name))
    monkeypatch.setattr(threading, "excepthook", threading.excepthook)
    out = io.StringIO()
    monkeypatch.setattr(sys, "stderr", out)
    settings = Settings.model_validate(
        {"log_level": "INFO", "datadog": DatadogSettings.model_validate({"version": "9.9.9"})}
    )
    configure_logging(settings, "api")
    try:
        yield out
    finally:
        logging.captureWarnings(False)
        root.handlers[:], root.level = handlers, level


def lines(out: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.getvalue().splitlines()]


def test_a_line_carries_the_context_and_the_service_tags(stream: io.StringIO) -> None:
    log = logging.getLogger("payment_service.test")
    with log_context(correlation_id="c-1", transaction_id="t-1"):
        bind(merchant_id="m-1")
        log.info("captured %s", "ok")
    log.info("outside")
    inside, outside = lines(stream)
    assert inside["message"] == "captured ok"
    assert (inside["correlation_id"], inside["transaction_id"], inside["merchant_id"]) == (
        "c-1",
        "t-1",
        "m-1",
    )
    assert (inside["dd.service"], inside["dd.env"], inside["dd.version"]) == (
        "payment-service",
        "local",
        "9.9.9",
    )
    assert inside["process"] == "api"
    assert inside["level"] == "info"
    assert "correlation_id" not in outside


def test_card_data_is_scrubbed_from_the_context_too(stream: io.StringIO) -> None:
    with log_context(correlation_id=CARD):  # a client chooses its correlation id
        logging.getLogger("t").warning("number %s", "4242424242424242", extra={"cvv": "123"})
    (entry,) = lines(stream)
    text = json.dumps(entry)
    assert "4111" not in text.replace("****1111", "")
    assert "4242424242424242" not in text
    assert entry["cvv"] == "[REDACTED]"


def test_an_id_given_with_the_record_wins_over_the_context(stream: io.StringIO) -> None:
    with log_context(transaction_id="from-context"):
        logging.getLogger("t").info("x", extra={"transaction_id": "explicit"})
    assert lines(stream)[0]["transaction_id"] == "explicit"


def test_trace_ids_outside_a_span_are_left_out(stream: io.StringIO) -> None:
    log = logging.getLogger("t")
    log.info("no span", extra={"dd.trace_id": "0", "dd.span_id": "0"})
    log.info("span", extra={"dd.trace_id": "6b0f4801", "dd.span_id": "42"})
    no_span, in_span = lines(stream)
    assert "dd.trace_id" not in no_span
    assert "dd.span_id" not in no_span
    assert (in_span["dd.trace_id"], in_span["dd.span_id"]) == ("6b0f4801", "42")


async def test_concurrent_tasks_keep_their_own_ids(stream: io.StringIO) -> None:
    log = logging.getLogger("t")
    both_bound = asyncio.Barrier(2)

    async def handle(txn: str) -> None:
        bind(transaction_id=txn, correlation_id=f"c-{txn}")
        await both_bound.wait()  # the other task has bound its ids too
        log.info("done %s", txn)

    await asyncio.gather(handle("a"), handle("b"))
    for entry in lines(stream):
        txn = entry["message"].removeprefix("done ")
        assert entry["transaction_id"] == txn
        assert entry["correlation_id"] == f"c-{txn}"
    assert current() == {}  # the tasks' bindings never reached their parent


def test_log_context_starts_clean_and_restores(stream: io.StringIO) -> None:
    with log_context(correlation_id="outer"):
        with log_context(transaction_id="inner"):
            assert dict(current()) == {"transaction_id": "inner"}
        assert dict(current()) == {"correlation_id": "outer"}
    assert current() == {}
    with pytest.raises(ValueError, match="not a log context field"):
        bind(card_number="x")


def test_warnings_become_json_lines(stream: io.StringIO) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.warn("old api", DeprecationWarning, stacklevel=1)
    (entry,) = lines(stream)
    assert entry["logger"] == "py.warnings"
    assert "DeprecationWarning: old api" in entry["message"]


def test_uncaught_exceptions_become_json_lines(stream: io.StringIO) -> None:
    try:
        raise RuntimeError(f"boom with {CARD}")
    except RuntimeError as exc:
        sys.excepthook(type(exc), exc, exc.__traceback__)
        thread = threading.Thread(name="worker")
        threading.excepthook(threading.ExceptHookArgs([type(exc), exc, exc.__traceback__, thread]))
    main, worker = lines(stream)
    assert main["level"] == "critical"
    assert "RuntimeError" in main["exception"]
    assert worker["message"] == "uncaught exception in thread worker"
    assert "1111 1111 1111" not in main["exception"]
