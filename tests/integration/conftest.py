import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import LIVE_ROUTERS, RedisServer, Router  # noqa: E402


@pytest.fixture(autouse=True)
def no_router_outlives_its_test():
    """A test that fails half-way must not leave a router (and its embedded Redis) running."""
    yield
    while LIVE_ROUTERS:
        LIVE_ROUTERS.pop().kill()


@pytest.fixture
def redis_server(tmp_path):
    server = RedisServer(str(tmp_path / "redis")).start()
    yield server
    server.stop()


@pytest.fixture
def router(tmp_path, redis_server):
    """A running omnirouted on a private redis-server; .redis is a client of that server."""
    r = Router(str(tmp_path), redis_server.address).start()
    r.redis_server = redis_server
    r.redis = redis_server.client()
    r.key_prefix = r.prefix
    yield r
    r.stop()


def pytest_configure(config):
    config.addinivalue_line("markers", "faults: the fault suite (test_faults.py), `make test-faults` runs it alone")
