"""Fixtures for the channel-upkeep, playground, task-list and Turnstile tests."""

from __future__ import annotations

import pytest

from accounts.options import options
from tests.api.conftest import Api
from tests.ops.fake_ops import FakeOps


@pytest.fixture(scope="session")
def fake_ops_server() -> FakeOps:
    return FakeOps().start()


@pytest.fixture
def fake_ops(fake_ops_server: FakeOps) -> FakeOps:
    fake_ops_server.reset()
    yield fake_ops_server
    fake_ops_server.reset()


@pytest.fixture(autouse=True)
def _fresh_options():
    options.invalidate()
    yield
    options.invalidate()


@pytest.fixture
def as_admin(admin_user) -> Api:
    return Api(admin_user)


@pytest.fixture
def as_alice(alice) -> Api:
    return Api(alice)


@pytest.fixture
def as_bob(bob) -> Api:
    return Api(bob)
