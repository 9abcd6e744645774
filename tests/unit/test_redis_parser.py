"""The Redis client parses replies with hiredis (the C parser), not redis-py's pure-Python one."""

from __future__ import annotations

import redis.utils
from redis._parsers import _AsyncHiredisParser
from redis.asyncio import Redis

from payment_service.config.settings import RedisSettings
from payment_service.ops.redis_client import redis_client


def test_hiredis_is_installed_and_chosen() -> None:
    assert redis.utils.HIREDIS_AVAILABLE
    client: Redis = redis_client(RedisSettings())
    connection = client.connection_pool.make_connection()  # type: ignore[no-untyped-call]
    assert isinstance(connection._parser, _AsyncHiredisParser)
