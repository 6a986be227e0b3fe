"""Shared fixtures: personas (root, alice, bob), a fake OpenAI upstream, and a live gateway.

The gateway is the real thing: Daphne serving newapi_site.asgi in a subprocess, pointed at the
test database (PostgreSQL by default) and the real Redis. Tests that talk to it must commit
their rows, so they use `@pytest.mark.django_db(transaction=True)` (the `live` marker below).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from accounts.models import Token, User
from newapi_site.option_defaults import DEFAULT_OPTIONS
from newapi_site.options import update_option
from newapi_site.roles import ROLE_ADMIN, ROLE_COMMON, ROLE_ROOT
from relay.models import Channel
from tests.fakes.openai_upstream import FakeOpenAI

ROOT = Path(__file__).resolve().parent.parent
live = pytest.mark.django_db(transaction=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, timeout: float = 20.0, proc: subprocess.Popen | None = None) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listening on {port}")


def gateway_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment a gateway subprocess needs to share this test session's database."""
    env = dict(os.environ)
    db = connection.settings_dict
    engine = settings.DATABASE_ENGINE
    if engine == "postgresql":
        env["SQL_DSN"] = f"postgres://{db['USER']}@{db['HOST']}:{db['PORT'] or 5432}/{db['NAME']}"
    elif engine == "mysql":
        env["SQL_DSN"] = f"{db['USER']}:{db['PASSWORD']}@tcp({db['HOST']}:{db['PORT']})/{db['NAME']}"
    else:
        env["SQL_DSN"] = ""
        env["SQLITE_PATH"] = db["NAME"]
    env.update(extra or {})
    return env


class Gateway:
    def __init__(self, port: int, proc: subprocess.Popen) -> None:
        self.port = port
        self.proc = proc

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def v1(self) -> str:
        return f"{self.url}/v1"

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def start_gateway(extra_env: dict[str, str] | None = None) -> Gateway:
    port = free_port()
    log = open(Path(settings.DATA_DIR) / f"gateway-{port}.log", "wb")
    proc = subprocess.Popen(
        # The production web worker (Daphne plus its uvloop, socket and write-path settings).
        [sys.executable, "-m", "relay.edge.web_worker", "-b", "127.0.0.1", "-p", str(port), "newapi_site.asgi:application"],
        cwd=ROOT,
        env=gateway_env(extra_env),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    wait_port(port, proc=proc)
    return Gateway(port, proc)


@pytest.fixture(scope="session")
def fake_upstream() -> FakeOpenAI:
    return FakeOpenAI().start()


@pytest.fixture(scope="session")
def gateway(django_db_setup, django_db_blocker) -> Gateway:
    gw = start_gateway()
    yield gw
    gw.stop()


# -- personas ----------------------------------------------------------------------------
def make_user(username: str, role: int = ROLE_COMMON, quota: int = 10_000_000, group: str = "default", **extra) -> User:
    user = User(username=username, role=role, quota=quota, group=group, display_name=username, **extra)
    user.set_password(f"{username}-password")
    user.save()
    return user


def make_token(user: User, **fields) -> Token:
    fields.setdefault("name", f"{user.username}-token")
    fields.setdefault("unlimited_quota", True)
    return Token.objects.create(user_id=user.pk, **fields)


def make_channel(base_url: str, key: str = "upstream-key", models: str = "gpt-4o-mini,text-embedding-3-small,gpt-3.5-turbo-instruct", **fields) -> Channel:
    fields.setdefault("name", f"channel-{key}")
    fields.setdefault("type", 1)
    fields.setdefault("group", "default")
    channel = Channel.objects.create(base_url=base_url, key=key, models=models, **fields)
    propagated()
    return channel


@pytest.fixture
def root_user(db) -> User:
    return make_user("root", role=ROLE_ROOT, quota=100_000_000)


@pytest.fixture
def admin_user(db) -> User:
    return make_user("admin1", role=ROLE_ADMIN)


@pytest.fixture
def alice(db) -> User:
    return make_user("alice")


@pytest.fixture
def bob(db) -> User:
    return make_user("bob", group="vip")


def propagated() -> None:
    """Wait until every gateway process on this machine has applied the changes announced so far
    (a marker sent after them on the bus comes back from each: milliseconds on either bus)."""
    from newapi_site import bus

    bus.wait_for_listeners()


@pytest.fixture(autouse=True)
def _fresh_login_limit():
    """The per-IP login limit is always on (20 per 20 minutes): every test starts with a fresh budget."""
    from newapi_site.api import ratelimit

    ratelimit.reset_memory()
    if settings.REDIS_CONN_STRING:
        from newapi_site import redis as r

        client = r.sync_redis()
        keys = list(client.scan_iter(match=r.key("rateLimit", "CT*"), count=1000))
        if keys:
            client.delete(*keys)
    yield


@pytest.fixture(autouse=True)
def _fresh_options():
    """Every test starts from the options table as it is now (in-process copy dropped)."""
    from newapi_site.options import options

    options.invalidate()
    yield
    options.invalidate()


# -- /api clients, one per persona (access token + New-Api-User) ----------------------------
@pytest.fixture
def anon():
    from tests.api_client import Api

    return Api()


@pytest.fixture
def as_alice(alice):
    from tests.api_client import Api

    return Api(alice)


@pytest.fixture
def as_bob(bob):
    from tests.api_client import Api

    return Api(bob)


@pytest.fixture
def as_admin(admin_user):
    from tests.api_client import Api

    return Api(admin_user)


@pytest.fixture
def as_root(root_user):
    from tests.api_client import Api

    return Api(root_user)


def settle() -> None:
    """Apply every queued billing write now (the gateway batches them off the response path)."""
    from billing.writer import wait_idle

    wait_idle()


@pytest.fixture(autouse=True)
def _settle_before_flush(request):
    """A live test ends with the gateway's billing writes applied, so the table flush that
    follows it never races a batch still being written (which can deadlock on PostgreSQL)."""
    marker = request.node.get_closest_marker("django_db")
    if marker is None or not marker.kwargs.get("transaction"):
        yield
        return
    request.getfixturevalue("transactional_db")  # set up first, so torn down after us
    yield
    try:
        settle()
    except TimeoutError:
        pass


@pytest.fixture(scope="session", autouse=True)
def _clean_redis_keys():
    """This run's Redis keys (balances, queues) carry a per-run prefix; remove them at the end."""
    yield
    if settings.REDIS_CONN_STRING:
        from newapi_site import redis as r

        client = r.sync_redis()
        keys = list(client.scan_iter(match=r.key("*"), count=1000))
        if keys:
            client.delete(*keys)


@pytest.fixture
def limits():
    """Sets the per-user model request rate limit (total, success per minute); off again after."""

    def set_limits(count: int, success: int) -> None:
        update_option("ModelRequestRateLimitCount", str(count))
        update_option("ModelRequestRateLimitSuccessCount", str(success))
        update_option("ModelRequestRateLimitEnabled", "true")
        propagated()

    yield set_limits
    update_option("ModelRequestRateLimitEnabled", "false")
    update_option("ModelRequestRateLimitCount", "0")
    update_option("ModelRequestRateLimitSuccessCount", "1000")
    propagated()


@pytest.fixture
def auto_disable():
    """Automatic channel disabling on, with two retries; the defaults again after."""
    update_option("AutomaticDisableChannelEnabled", "true")
    update_option("RetryTimes", "2")
    propagated()
    yield
    update_option("AutomaticDisableChannelEnabled", "false")
    update_option("RetryTimes", DEFAULT_OPTIONS.get("RetryTimes", "0"))
    propagated()
