"""Readiness for orchestrators: GET /healthz answers 200 when the database (and the logs database
and Redis, when configured) answer, else 503 naming what failed. /api/status stays the cheap
liveness probe: it touches neither."""

from __future__ import annotations

import redis
from django.conf import settings
from django.db import connections
from django.http import HttpRequest, JsonResponse

PROBE_TIMEOUT = 2.0  # seconds: an orchestrator's probe must not hang on a stalled server

_redis: redis.Redis | None = None


def _redis_client() -> redis.Redis:
    global _redis
    if _redis is None:
        _redis = redis.Redis.from_url(
            settings.REDIS_CONN_STRING, socket_timeout=PROBE_TIMEOUT, socket_connect_timeout=PROBE_TIMEOUT
        )
    return _redis


def _check_database(alias: str) -> str:
    try:
        with connections[alias].cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:
        connections[alias].close_if_unusable_or_obsolete()
        return f"error: {type(exc).__name__}"
    return "ok"


def _check_redis() -> str:
    if not settings.REDIS_CONN_STRING:
        return "disabled"
    try:
        _redis_client().ping()
    except Exception as exc:
        return f"error: {type(exc).__name__}"
    return "ok"


def healthz(request: HttpRequest) -> JsonResponse:
    checks = {"database": _check_database("default"), "redis": _check_redis()}
    if "logs" in settings.DATABASES:
        checks["logs_database"] = _check_database("logs")
    ready = all(value in ("ok", "disabled") for value in checks.values())
    return JsonResponse({"status": "ok" if ready else "unavailable", **checks}, status=200 if ready else 503)
