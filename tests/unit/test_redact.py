"""The card-data log filter: numbers, sensitive fields, arguments, extras, tracebacks."""

from __future__ import annotations

import io
import logging
import uuid
from collections.abc import Iterator

import pytest

from payment_service.cards.redact import CardDataFilter, is_sensitive_key, redact_text, redact_value
from payment_service.core.masking import CardNumber, SecurityCode

pytestmark = pytest.mark.unit

PAN = "4242424242424242"
MASKED = "[REDACTED ****4242]"


@pytest.fixture
def capture() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    """A private logger whose handler carries the filter and a formatter that shows extras."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(CardDataFilter())
    handler.setFormatter(logging.Formatter("%(message)s|%(cvv)s|%(order)s"))
    logger = logging.getLogger(f"test.redact.{uuid.uuid4().hex}")
    logger.propagate = False
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    yield logger, stream
    logger.removeHandler(handler)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f"card {PAN} ok", f"card {MASKED} ok"),
        ("card 4242 4242 4242 4242.", f"card {MASKED}."),
        ("card 4242-4242-4242-4242", f"card {MASKED}"),
        ("amex 378282246310005", "amex [REDACTED ****0005]"),
        ("qty 2 4242424242424242", f"qty 2 {MASKED}"),  # a leading group is not swallowed
        (f"{PAN},{PAN}", f"{MASKED},{MASKED}"),
        (f"pan={PAN}", "pan=[REDACTED]"),
        ("4242424242424241", "4242424242424241"),  # fails Luhn
        ("order 123456789012", "order 123456789012"),  # too short
        ("id 42424242424242424242424", "id 42424242424242424242424"),  # longer than 19
        ("amount 10.00 EUR", "amount 10.00 EUR"),
        ("cvv=123 cvc: 456", "cvv=[REDACTED] cvc: [REDACTED]"),
        ('{"cvv": "123", "x": 1}', '{"cvv": [REDACTED], "x": 1}'),
        ("{'security_code': '123'}", "{'security_code': [REDACTED]}"),
        ("card_cvv=123&next=1", "card_cvv=[REDACTED]&next=1"),
        ("Card-Number: 5555555555554444", "Card-Number: [REDACTED]"),
        ("CVV2=999", "CVV2=[REDACTED]"),
        ("cvv_present=true pancake=1", "cvv_present=true pancake=1"),
    ],
)
def test_redact_text(text: str, expected: str) -> None:
    assert redact_text(text) == expected


def test_sensitive_keys() -> None:
    for key in ("cvv", "CVC", "security_code", "securityCode", "card-number", "cardNumber", "pan"):
        assert is_sensitive_key(key)
    for other in ("card_last4", "number", "cvv_present", 7):
        assert not is_sensitive_key(other)


def test_redact_value_is_identity_when_clean() -> None:
    value = {"a": [1, "x", (2.5, None)], "b": True}
    assert redact_value(value) is value
    assert redact_value({"cvv": "1"}) == {"cvv": "[REDACTED]"}
    assert redact_value([{"card": {"card_number": PAN, "n": PAN}}]) == [
        {"card": {"card_number": "[REDACTED]", "n": MASKED}}
    ]
    assert redact_value(int(PAN)) == MASKED


def test_message_and_args(capture: tuple[logging.Logger, io.StringIO]) -> None:
    logger, stream = capture
    logger.info("charging %s for %s", PAN, "order-1", extra={"cvv": None, "order": 1})
    assert stream.getvalue() == f"charging {MASKED} for order-1|[REDACTED]|1\n"


def test_mapping_arg(capture: tuple[logging.Logger, io.StringIO]) -> None:
    logger, stream = capture
    logger.info("code %(cvv)s card %(n)s", {"cvv": "123", "n": PAN}, extra={"cvv": 0, "order": 0})
    assert stream.getvalue() == f"code [REDACTED] card {MASKED}|[REDACTED]|0\n"


def test_int_arg_with_percent_d(capture: tuple[logging.Logger, io.StringIO]) -> None:
    logger, stream = capture
    logger.info("card %d", int(PAN), extra={"cvv": "", "order": ""})
    assert stream.getvalue() == f"card {MASKED}|[REDACTED]|\n"


def test_dict_arg_repr(capture: tuple[logging.Logger, io.StringIO]) -> None:
    logger, stream = capture
    logger.info("body %s", {"card_number": PAN, "cvv": "987"}, extra={"cvv": "", "order": ""})
    out = stream.getvalue()
    assert PAN not in out
    assert "987" not in out
    assert "'card_number': [REDACTED]" in out


def test_extras_are_scrubbed(capture: tuple[logging.Logger, io.StringIO]) -> None:
    logger, stream = capture
    logger.warning(
        "payment failed",
        extra={"cvv": "123", "order": {"security_code": "123", "note": f"card {PAN}"}},
    )
    out = stream.getvalue()
    assert "123" not in out
    assert PAN not in out
    assert f"'note': 'card {MASKED}'" in out


def test_object_whose_str_leaks(capture: tuple[logging.Logger, io.StringIO]) -> None:
    class Leaky:
        def __str__(self) -> str:
            return f"Leaky({PAN})"

    logger, stream = capture
    logger.info("got %s", Leaky(), extra={"cvv": "", "order": Leaky()})
    assert stream.getvalue() == f"got Leaky({MASKED})|[REDACTED]|Leaky({MASKED})\n"


def test_masked_types_pass_untouched(capture: tuple[logging.Logger, io.StringIO]) -> None:
    logger, stream = capture
    logger.info(
        "card %s code %s", CardNumber(PAN), SecurityCode("123"), extra={"cvv": "", "order": 1}
    )
    assert (
        stream.getvalue() == "card CardNumber(visa ****4242) code SecurityCode(***)|[REDACTED]|1\n"
    )


def test_clean_record_keeps_template_and_args() -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "order %s of %d", ("o-1", 3), None)
    record.trace = "abc"
    assert CardDataFilter().filter(record) is True
    assert record.msg == "order %s of %d"
    assert record.args == ("o-1", 3)
    assert record.trace == "abc"  # type: ignore[attr-defined]


def test_dirty_record_is_formatted_once() -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "card %s", (PAN,), None)
    CardDataFilter().filter(record)
    assert record.msg == f"card {MASKED}"
    assert not record.args
    assert record.getMessage() == f"card {MASKED}"


def test_broken_format_drops_args() -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "card %s %s", (PAN,), None)
    CardDataFilter().filter(record)
    assert record.getMessage() == "card %s %s [arguments dropped]"


def test_trace_ids_are_left_alone() -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "m", (), None)
    setattr(record, "dd.span_id", PAN)  # the name has a dot
    CardDataFilter().filter(record)
    assert getattr(record, "dd.span_id") == PAN


def test_exception_text(capture: tuple[logging.Logger, io.StringIO]) -> None:
    logger, stream = capture
    try:
        raise ValueError(f"bad card {PAN} cvv=321")
    except ValueError:
        logger.exception("failed", extra={"cvv": "", "order": ""})
    out = stream.getvalue()
    assert PAN not in out
    assert "321" not in out
    assert f"ValueError: bad card {MASKED} cvv=[REDACTED]" in out


def test_stack_info(capture: tuple[logging.Logger, io.StringIO]) -> None:
    logger, stream = capture
    card = PAN  # noqa: F841 - locals are not in stack text, but the source line is
    logger.info("here", stack_info=True, extra={"cvv": "", "order": ""})
    assert "Stack (most recent call last)" in stream.getvalue()
    assert PAN not in stream.getvalue()
