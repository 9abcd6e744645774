"""The API's self-protection, as pure parts: token buckets, key lookups (the cap: test_shedding)."""

from __future__ import annotations

import asyncio

import pytest

from payment_service.config.settings import ApiSettings
from payment_service.core.errors import AuthenticationFailed, RateLimited
from payment_service.http.guards import ApiKeyAuth
from payment_service.http.protection import TokenBuckets, key_prefix, server_limits

pytestmark = pytest.mark.unit

GOOD = "psk_abcdefghijkl_" + "s" * 43


def test_a_bucket_admits_its_burst_then_refills_at_its_rate() -> None:
    buckets = TokenBuckets(rate=2.0, burst=3)
    assert [buckets.take("a", now=100.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert buckets.take("a", now=100.0) == pytest.approx(0.5)
    assert buckets.take("b", now=100.0) == 0.0  # names do not share
    assert buckets.take("a", now=100.5) == 0.0
    assert buckets.take("a", now=100.5) > 0


def test_buckets_forget_the_least_recent_names() -> None:
    buckets = TokenBuckets(rate=1.0, burst=1, max_tracked=2)
    for name in ("a", "b", "c"):
        buckets.take(name, now=0.0)
    assert buckets.take("a", now=0.0) == 0.0  # forgotten: a full bucket again
    assert buckets.take("c", now=0.0) > 0


def test_key_prefix_names_the_key_without_its_secret() -> None:
    assert key_prefix(f"Bearer {GOOD}") == "psk_abcdefghijkl"
    assert key_prefix("Basic abc") is None
    assert key_prefix(None) is None


def test_server_limits_are_explicit() -> None:
    limits = server_limits(ApiSettings())
    assert limits["keepalive_timeout"] < 3630  # aiohttp's default is an hour
    assert {"max_line_size", "max_field_size", "max_headers", "lingering_time"} <= set(limits)


class CountingKeys:
    """A MerchantKeys that knows one key and counts lookups; `gate` holds lookups open."""

    def __init__(self) -> None:
        self.lookups = 0
        self.gate = asyncio.Event()
        self.gate.set()

    async def merchant_for_key(self, presented_key: str) -> str | None:
        self.lookups += 1
        await self.gate.wait()
        return "m_1" if presented_key == GOOD else None


async def test_unknown_keys_are_remembered_for_a_while() -> None:
    keys = CountingKeys()
    auth = ApiKeyAuth(keys, negative_cache_seconds=60)
    bogus = "psk_abcdefghijkl_" + "x" * 43
    for _ in range(50):
        with pytest.raises(AuthenticationFailed):
            await auth.merchant_for(f"Bearer {bogus}", "10.0.0.1")
    assert keys.lookups == 1
    assert await auth.merchant_for(f"Bearer {GOOD}", "10.0.0.1") == "m_1"
    assert await auth.merchant_for(f"Bearer {GOOD}", "10.0.0.1") == "m_1"
    assert keys.lookups == 2


async def test_concurrent_requests_with_one_key_share_one_lookup() -> None:
    keys = CountingKeys()
    keys.gate.clear()
    auth = ApiKeyAuth(keys)
    waiting = [asyncio.ensure_future(auth.merchant_for(f"Bearer {GOOD}")) for _ in range(20)]
    await asyncio.sleep(0)
    keys.gate.set()
    assert await asyncio.gather(*waiting) == ["m_1"] * 20
    assert keys.lookups == 1


async def test_a_flood_of_distinct_bogus_keys_costs_a_bounded_number_of_lookups() -> None:
    keys = CountingKeys()
    auth = ApiKeyAuth(keys, lookups=TokenBuckets(rate=0.001, burst=5))
    statuses = []
    for i in range(100):
        try:
            await auth.merchant_for(f"Bearer psk_{i:012d}_{'x' * 43}", "10.0.0.9")
        except (AuthenticationFailed, RateLimited) as exc:
            statuses.append(exc.status)
    assert keys.lookups == 5
    assert statuses.count(401) == 5
    assert statuses.count(429) == 95
    # Another client's known key is looked up as usual.
    assert await auth.merchant_for(f"Bearer {GOOD}", "10.0.0.10") == "m_1"


@pytest.mark.parametrize(
    "authorization",
    [
        "Bearer psk_abc\udcff\udcfe",  # how aiohttp hands over a header that is not UTF-8
        "Bearer psk_ab\x00c",
        "Bearer psk_ab\u00e9c",
        "Bearer " + "p" * 5000,
    ],
    ids=["surrogate-escaped", "nul", "non-ascii", "huge"],
)
async def test_keys_that_cannot_be_keys_are_401_without_a_lookup(authorization: str) -> None:
    keys = CountingKeys()
    with pytest.raises(AuthenticationFailed):
        await ApiKeyAuth(keys).merchant_for(authorization)
    assert keys.lookups == 0
