"""Fixtures for the channel-upkeep, playground, task-list and Turnstile tests."""

from __future__ import annotations

import pytest

from tests.ops.fake_ops import FakeOps


@pytest.fixture(scope="session")
def fake_ops_server() -> FakeOps:
    return FakeOps().start()


@pytest.fixture
def fake_ops(fake_ops_server: FakeOps) -> FakeOps:
    fake_ops_server.reset()
    yield fake_ops_server
    fake_ops_server.reset()

