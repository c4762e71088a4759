"""The worker's tests run on both brokers: the ORM broker (the default) and Redis, a
``redis-server`` of the test session's own on a free loopback port."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.processes import BROKERS, RedisServer, broker_env, redis_server


@pytest.fixture(scope="session")
def redis(tmp_path_factory) -> Iterator[RedisServer]:
    with redis_server(tmp_path_factory.mktemp("redis")) as server:
        yield server


@pytest.fixture(params=BROKERS)
def broker(request) -> Iterator[dict[str, str]]:
    """The environment for ``Console`` that puts its worker on the broker of the test's id."""
    server = request.getfixturevalue("redis") if request.param == "redis" else None
    with broker_env(request.param, server) as env:
        yield env
