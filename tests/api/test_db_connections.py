"""A web worker's database connections stay bounded however many /api and admin requests it serves.

Django runs each request of an ASGI server in a thread of its own; a connection kept open per
thread would pile up until the database refuses new ones. Counted on the server itself.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from django.conf import settings
from django.db import connection

from tests.api_client import Api
from tests.conftest import live, make_user, start_gateway

pytestmark = [live]

CALLS = 300
BOUND = 6  # over the idle count: a few pooled connections, never one per request


def server_connections() -> int:
    with connection.cursor() as cursor:
        if settings.DATABASE_ENGINE == "postgresql":
            cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()")
        else:
            cursor.execute("SELECT count(*) FROM information_schema.processlist WHERE db = DATABASE()")
        return cursor.fetchone()[0]


@pytest.mark.skipif(settings.DATABASE_ENGINE == "sqlite3", reason="counts a database server's connections")
def test_api_and_admin_requests_leave_no_connections_behind():
    user = make_user("connie")
    Api(user)  # gives the user an access token
    auth = {"Authorization": user.access_token, "New-Api-User": str(user.pk)}
    gw = start_gateway()
    try:
        with httpx.Client(base_url=gw.url, timeout=20) as client:

            def call(i: int) -> int:
                if i % 3 == 0:
                    return client.get("/api/status").status_code
                if i % 3 == 1:
                    return client.get("/api/user/self", headers=auth).status_code
                return client.get("/admin/login/").status_code

            assert {call(i) for i in range(6)} == {200}
            idle = server_connections()
            with ThreadPoolExecutor(4) as pool:
                for start in range(0, CALLS, 30):  # stop at the first sign of growth
                    assert set(pool.map(call, range(start, start + 30))) == {200}
                    assert server_connections() <= idle + BOUND, f"after {start + 30} calls"
    finally:
        gw.stop()
