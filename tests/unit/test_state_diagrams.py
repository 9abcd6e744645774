"""The state diagrams that docs publish are the ones the tables draw (no hand-drawn copy)."""

from __future__ import annotations

from pathlib import Path

import pytest

from payment_service.app import cli
from payment_service.core.diagram import states_page
from payment_service.core.states import PAYMENT_TRANSITIONS, REFUND_TRANSITIONS

pytestmark = pytest.mark.unit

PUBLISHED = Path(__file__).resolve().parents[2] / "docs" / "states.md"


def test_docs_publish_exactly_what_the_tables_draw() -> None:
    assert PUBLISHED.read_text(encoding="utf-8") == states_page(), (
        "docs/states.md is stale: run `payment-service states --mermaid > docs/states.md`"
    )


def test_the_cli_prints_the_published_page(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["states", "--mermaid"]) == 0
    assert capsys.readouterr().out == states_page()


def test_every_row_of_each_table_is_one_arrow() -> None:
    arrows = [line.strip() for line in states_page().splitlines() if " --> " in line]
    arrows = [a for a in arrows if "[*]" not in a]
    rows = [*PAYMENT_TRANSITIONS.items(), *REFUND_TRANSITIONS.items()]
    assert arrows == [f"{s.value} --> {t.value}: {e.value}" for (s, e), t in rows]
