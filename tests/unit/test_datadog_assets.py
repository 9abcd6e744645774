"""The dashboard and monitors under ops/datadog/ name only metrics the code emits, as they are.

"Emits" is the catalogue (`ops/metric_catalog.py`): `Metrics` takes nothing else, and every entry
of it is used by the code (checked here). Queries must also use each metric as its type allows
(percentiles of distributions, `.as_count()` of counts) and filter or group only by its tags.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from payment_service.ops import metric_catalog
from payment_service.ops.metric_catalog import (
    BY_NAME,
    CATALOG,
    CONSTANT_TAGS,
    Metric,
    markdown_table,
)

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
ASSETS = ROOT / "ops" / "datadog"
SOURCE = ROOT / "src" / "payment_service"
# `aggregator:metric{filters}` optionally followed by ` by {keys}` and `.as_count()`.
REFERENCE = re.compile(
    r"(?P<agg>[a-z0-9]+):(?P<name>[a-z][a-z0-9_.]*)\{(?P<filters>[^}]*)\}"
    r"(?:\s*by\s*\{(?P<by>[^}]*)\})?(?P<count>\.as_count\(\))?"
)
PERCENTILES = {"p50", "p75", "p90", "p95", "p99", "p999"}
SPACE_AGGREGATORS = {"sum", "avg", "min", "max"}
ALLOWED_EXTRA_TAGS = {"host"}  # added by the agent
ID_TAGS = {"transaction_id", "merchant_id", "refund_id", "correlation_id", "reference"}


def _metric_queries(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        if node.get("data_source") == "metrics" and "query" in node:
            yield node["query"]
        for value in node.values():
            yield from _metric_queries(value)
    elif isinstance(node, list):
        for value in node:
            yield from _metric_queries(value)


def dashboard_queries() -> list[str]:
    return list(_metric_queries(json.loads((ASSETS / "dashboard.json").read_text())))


def monitor_queries() -> list[str]:
    monitors = json.loads((ASSETS / "monitors.json").read_text())
    assert monitors, "no monitors"
    for monitor in monitors:
        assert monitor["type"] == "query alert", monitor["name"]
        assert {"name", "query", "message", "options"} <= set(monitor)
    return [m["query"] for m in monitors]


def _tag_keys(text: str | None) -> set[str]:
    keys = set()
    for part in re.split(r",|\s+(?:AND|OR)\s+", text or ""):
        part = part.strip().lstrip("!")
        if part and part != "*" and not part.startswith("$"):
            keys.add(part.split(":", 1)[0])
    return keys


def check(query: str) -> list[str]:
    """What is wrong with one query's metric references (empty: nothing)."""
    found = list(REFERENCE.finditer(query))
    if not found:
        return [f"no metric reference in {query!r}"]
    problems = []
    for ref in found:
        name, agg = ref["name"], ref["agg"]
        metric: Metric | None = BY_NAME.get(name)
        if metric is None:
            problems.append(f"{name} is not emitted (not in ops/metric_catalog.py)")
            continue
        if agg in PERCENTILES and metric.kind != "distribution":
            problems.append(f"{name}: {agg} of a {metric.kind}")
        if agg not in PERCENTILES and agg not in SPACE_AGGREGATORS:
            problems.append(f"{name}: unknown aggregator {agg}")
        if metric.kind == "distribution" and agg not in PERCENTILES:
            problems.append(f"{name}: a distribution is read by percentile")
        if bool(ref["count"]) != (metric.kind == "count"):
            problems.append(f"{name}: .as_count() is for counts, and counts need it")
        allowed = set(metric.tags) | set(CONSTANT_TAGS) | ALLOWED_EXTRA_TAGS
        unknown = (_tag_keys(ref["filters"]) | _tag_keys(ref["by"])) - allowed
        if unknown:
            problems.append(f"{name}: tags {sorted(unknown)} are not on it")
    return problems


@pytest.mark.parametrize("source", ["dashboard", "monitors"])
def test_queries_reference_only_emitted_metrics_with_their_tags(source: str) -> None:
    queries = dashboard_queries() if source == "dashboard" else monitor_queries()
    problems = [p for query in queries for p in check(query)]
    assert not problems, "\n".join(problems)


def test_the_dashboard_shows_every_metric() -> None:
    shown = {ref["name"] for q in dashboard_queries() for ref in REFERENCE.finditer(q)}
    assert set(BY_NAME) - shown == set()


def test_the_check_catches_what_it_should() -> None:
    assert check("sum:payment.no_such{*}.as_count()")
    assert check("p99:payment.api.requests{*}.as_count()")  # percentile of a count
    assert check("avg:payment.api.duration_ms{*}")  # a distribution by average
    assert check("sum:payment.api.requests{*}")  # a count without .as_count()
    assert check("sum:payment.api.requests{transaction_id:x}.as_count()")
    assert not check("sum:payment.api.requests{$env,status:5*} by {route}.as_count()")


def test_every_catalogued_metric_is_emitted_by_the_code() -> None:
    code = "\n".join(
        path.read_text() for path in SOURCE.rglob("*.py") if path.name != "metric_catalog.py"
    )
    names = [n for n, v in vars(metric_catalog).items() if isinstance(v, Metric)]
    unused = [n for n in names if not re.search(rf"\bcatalog\.{n}\b", code)]
    assert not unused, f"catalogued but never emitted: {unused}"


def test_the_catalogue_is_well_formed() -> None:
    assert len(BY_NAME) == len(CATALOG)
    for metric in CATALOG:
        assert re.fullmatch(r"[a-z][a-z0-9_.]*", metric.name), metric
        assert not set(metric.tags) & ID_TAGS, f"{metric.name}: ids are not tags"
        assert not set(metric.tags) & set(CONSTANT_TAGS), metric.name
        assert metric.description


def test_the_documented_metric_list_is_the_catalogue() -> None:
    text = (ROOT / "docs" / "operations.md").read_text()
    begin = text.index("<!-- metrics:begin")
    start = text.index("\n", begin) + 1
    end = text.index("<!-- metrics:end -->")
    assert text[start:end] == markdown_table(), "run: payment-service metrics --markdown"
